//! Promotion of memory locations to loop-carried values.
//!
//! A loop that reads a memory location (a *place*: base, offset, alias
//! class, type) on every trip round reads it from memory each time,
//! although the value is the one the previous trip stored there. When no
//! other access in the loop may write the place, [`promote`] carries it in
//! a loop phi instead: the place is loaded once before the loop (on the
//! loop's entry memory), the phi's back-edge value is what the place holds
//! at the end of a trip, and every load of the place on the loop's memory
//! chain is replaced by the value the place holds there: the value of the
//! last store to it, the phi at the loop header, a phi of the values on
//! each way into a merge, or the phi of an inner loop that carries the
//! same place. The stores stay where they are, so memory is exact at every
//! guard, call and exit; what goes is the loads (a later dead-store rule
//! or a closed form may remove stores).
//!
//! A place qualifies in a loop when its base is computed outside the loop,
//! the loop (inner loops included) makes no call, and each of its stores
//! either writes exactly that place or provably cannot touch it
//! ([`crate::alias::Access::may_alias`]). Loops are taken innermost first, so
//! an outer loop finds the inner loops' phis.
//!
//! Bound: only loops at most [`MAX_PROMOTE_HEIGHT`] high (a loop with no
//! loop inside is 1 high, one around it 2) get phis. A long chain of nested
//! loops each carrying a value round its back edge makes the register
//! allocator's time grow quadratically, and every node is walked by at most
//! that many loops, so the pass stays linear in the graph for any depth.
//!
//! Every change is a [`Graph::replace`] of a load; the new loop phis are
//! recorded with their back edges (`vssa-patch` rebuilds a new loop phi
//! from its entry and sets its back edge after the patch's other nodes),
//! so a replayed log reproduces the pass.

use crate::alias::{access, Access};
use crate::graph::{Graph, GraphError, NodeId, UserLists, WordHasher};
use crate::op::Op;
use crate::types::Type;
use smallvec::{smallvec, SmallVec};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Nodes a walk of the pass keeps for a moment: most walks are short, so
/// they stay on the stack (a vector per walk cost an allocation and a free
/// each, most of the pass's allocations).
type Few = SmallVec<[NodeId; 16]>;

/// Loops higher than this keep their places in memory (see the module docs).
pub const MAX_PROMOTE_HEIGHT: u32 = 16;

/// Nodes looked at, at most, to decide whether a base is computed outside
/// a loop; a bigger expression is taken as computed inside (not promoted).
const BASE_WALK: usize = 64;

/// Phi keys of promoted values have this bit set, apart from the keys a
/// front end gives its own loop phis.
const PROMOTED_KEY: u64 = 1 << 63;

/// What [`promote`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromoteStats {
    /// Loops that got at least one promoted value.
    pub loops: u32,
    /// Places carried in loop phis.
    pub values: u32,
    /// Loads replaced by the value their place holds.
    pub loads: u32,
    /// Loops left alone for being higher than [`MAX_PROMOTE_HEIGHT`].
    pub too_high: u32,
}

/// A memory location as loads and stores name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Place {
    base: NodeId,
    offset: i32,
    class: u32,
    ty: Type,
}

impl Place {
    fn of_load(g: &Graph, n: NodeId) -> Option<Place> {
        let (offset, class) = g.op(n).access().filter(|_| g.op(n).is_load())?;
        (g.arity(n) == 3).then(|| Place {
            base: g.input(n, 2),
            offset,
            class,
            ty: g.ty(n),
        })
    }

    fn access(&self) -> Option<Access> {
        Some(Access {
            base: self.base,
            offset: i64::from(self.offset),
            width: i64::from(self.ty.bytes()?),
            class: self.class,
        })
    }
}

/// One loop of the graph, as the memory chain shows it.
struct LoopInfo {
    header: NodeId,
    /// The loop's memory phi, its entry and back-edge values.
    mem: NodeId,
    entry_mem: NodeId,
    back_mem: NodeId,
    /// The loop directly around this one (once that one was walked).
    parent: Option<usize>,
    children: Vec<usize>,
    height: u32,
    /// The chain holds something other than stores and merges (a call),
    /// or could not be followed: nothing is promoted here or around it.
    opaque: bool,
    /// The stores in the loop, inner loops' included (only kept for loops
    /// no higher than the bound).
    stores: Vec<NodeId>,
    /// The loop's own memory states (inner loops' excluded), walk order.
    chain: Vec<NodeId>,
}

/// Promotes places to loop-carried values in every loop of the live graph
/// (see the module docs). Every change is a [`Graph::replace`] of a load.
pub fn promote(g: &mut Graph) -> Result<PromoteStats, GraphError> {
    let mut stats = PromoteStats::default();
    let live = g.live_nodes();
    let users = g.live_users();
    // Every loop with exactly one memory phi whose back edge is set.
    let mut loops: Vec<LoopInfo> = Vec::new();
    for &n in live.iter().rev() {
        if !matches!(g.op(n), Op::Loop { .. }) || g.back_input(n).is_none() {
            continue;
        }
        let mut mems = users[n.index()]
            .iter()
            .copied()
            .filter(|&u| g.ty(u) == Type::Mem && g.is_loop_phi(u) && g.input(u, 0) == n);
        let (Some(mem), None) = (mems.next(), mems.next()) else {
            continue;
        };
        let Some(back_mem) = g.back_input(mem) else {
            continue;
        };
        loops.push(LoopInfo {
            header: n,
            mem,
            entry_mem: g.input(mem, 1),
            back_mem,
            parent: None,
            children: Vec::new(),
            height: 1,
            opaque: false,
            stores: Vec::new(),
            chain: Vec::new(),
        });
    }
    // Innermost first: a front end builds a loop's header before those
    // inside it, so reverse construction order visits inner loops first.
    let mut w = Walk {
        owner: vec![u32::MAX; g.len()],
        top: (0..loops.len()).collect(),
        loop_of_header: HashMap::default(),
        memo: HashMap::default(),
        before: HashMap::default(),
        seen: vec![false; g.len()],
        new_loads: HashMap::default(),
    };
    for (i, l) in loops.iter().enumerate() {
        w.loop_of_header.insert(l.header, i);
    }
    for i in 0..loops.len() {
        w.walk_chain(g, &mut loops, i);
        if loops[i].height > MAX_PROMOTE_HEIGHT {
            stats.too_high += 1;
            continue;
        }
        if loops[i].opaque {
            continue;
        }
        let promoted = w.promote_loop(g, &users, &loops, i, &mut stats)?;
        if promoted > 0 {
            stats.loops += 1;
            stats.values += promoted;
        }
    }
    Ok(stats)
}

/// The pass's maps: keys of node ids and small integers, hashed by
/// [`WordHasher`] (SipHash cost more than half of the pass; no map is
/// iterated, so the hasher changes nothing but time).
type Map<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// The state of the pass across loops.
struct Walk {
    /// For a memory state, the loop whose own chain holds it.
    owner: Vec<u32>,
    /// Union-find over loops: a walked loop's representative is the
    /// outermost walked loop around it that has no parent yet.
    top: Vec<usize>,
    loop_of_header: Map<NodeId, usize>,
    /// What a place holds at a memory state (`None`: not known).
    memo: Map<(NodeId, Place), Option<NodeId>>,
    /// Loads this pass made before loops (their entry values), by memory
    /// state: an outer loop promotes them like the loads it was built with.
    new_loads: Map<NodeId, Vec<NodeId>>,
    /// For a control node, what [`reached_before`] gives: control does
    /// not change during the pass, and one loop's entry is asked about
    /// many headers (a walk per question cost most of the pass on hanoi).
    before: Map<NodeId, Vec<NodeId>>,
    /// Scratch marks for [`reached_before`], all false between its calls.
    seen: Vec<bool>,
}

impl Walk {
    /// Whether loop header `h` lies on some control path into `ctrl` that
    /// does not go round a loop (loop headers are left by their entry):
    /// then `h` comes before `ctrl` and the values it defines are computed
    /// by the time `ctrl` runs. A bounded walk, done once per `ctrl`;
    /// `false` when cut short.
    fn comes_before(&mut self, g: &Graph, h: NodeId, ctrl: NodeId) -> bool {
        self.before
            .entry(ctrl)
            .or_insert_with(|| reached_before(g, ctrl, &mut self.seen))
            .binary_search(&h)
            .is_ok()
    }

    fn find(&mut self, mut i: usize) -> usize {
        let mut root = i;
        while self.top[root] != root {
            root = self.top[root];
        }
        while self.top[i] != root {
            let next = self.top[i];
            self.top[i] = root;
            i = next;
        }
        root
    }

    /// Follows loop `i`'s memory chain back from its back edge to its
    /// phi: its own states, its stores, the loops directly inside it.
    fn walk_chain(&mut self, g: &Graph, loops: &mut [LoopInfo], i: usize) {
        let me = i as u32;
        self.owner[loops[i].mem.index()] = me;
        loops[i].chain.push(loops[i].mem);
        let mut stack: Few = smallvec![loops[i].back_mem];
        let mut stores = Vec::new();
        let mut children = Vec::new();
        let mut opaque = false;
        while let Some(m) = stack.pop() {
            match self.owner[m.index()] {
                o if o == me => continue,
                u32::MAX => {}
                inner => {
                    // A state of a loop inside this one: go round that
                    // loop to its entry.
                    let c = self.find(inner as usize);
                    if c != i && loops[c].parent.is_none() {
                        loops[c].parent = Some(i);
                        self.top[c] = i;
                        children.push(c);
                    }
                    if c != i {
                        stack.push(loops[c].entry_mem);
                    }
                    continue;
                }
            }
            self.owner[m.index()] = me;
            loops[i].chain.push(m);
            let op = g.op(m);
            if op.is_store() && g.arity(m) == 4 {
                stores.push(m);
                stack.push(g.input(m, 1));
            } else if matches!(op, Op::Phi { .. }) && !g.is_loop_phi(m) {
                for k in 1..g.arity(m) {
                    stack.push(g.input(m, k));
                }
            } else if let (Op::Proj { .. }, Some(tuple)) =
                (op, (g.arity(m) == 1).then(|| g.input(m, 0)))
            {
                // A call's memory: it may write anything. Its own memory
                // input is the one input of type Mem.
                opaque = true;
                match (0..g.arity(tuple))
                    .map(|k| g.input(tuple, k))
                    .find(|&x| g.ty(x) == Type::Mem)
                {
                    Some(x) => stack.push(x),
                    None => break,
                }
            } else {
                // Left the loop without meeting its phi, or a loop not
                // walked yet: not a shape this pass knows.
                opaque = true;
                break;
            }
        }
        let mut height = 1u32;
        for &c in &children {
            height = height.max(loops[c].height.saturating_add(1));
            opaque |= loops[c].opaque;
        }
        if height <= MAX_PROMOTE_HEIGHT {
            for &c in &children {
                let inner = std::mem::take(&mut loops[c].stores);
                stores.extend_from_slice(&inner);
                loops[c].stores = inner;
            }
        }
        let l = &mut loops[i];
        l.children = children;
        l.height = height;
        l.opaque = opaque;
        l.stores = stores;
    }

    /// Whether loop `j` is loop `i` or inside it.
    fn inside(loops: &[LoopInfo], mut j: usize, i: usize) -> bool {
        // Loops below `i` are lower than it: a bounded walk up.
        for _ in 0..=MAX_PROMOTE_HEIGHT {
            if j == i {
                return true;
            }
            match loops[j].parent {
                Some(p) => j = p,
                None => return false,
            }
        }
        false
    }

    /// Whether `base` is computed outside loop `i` (a bounded look).
    fn invariant(&mut self, g: &Graph, loops: &[LoopInfo], i: usize, base: NodeId) -> bool {
        let mut stack: Few = smallvec![base];
        let mut seen: Few = Few::new();
        while let Some(n) = stack.pop() {
            if seen.contains(&n) {
                continue;
            }
            if seen.len() >= BASE_WALK {
                return false;
            }
            seen.push(n);
            let op = g.op(n);
            // A loop's own node, or a phi on it: computed in the loop, or
            // (another loop's) before this one; not looked into further.
            let on_loop = match op {
                Op::Phi { .. } if g.arity(n) > 0 => self.loop_of_header.get(&g.input(n, 0)),
                _ => self.loop_of_header.get(&n),
            };
            if let Some(&j) = on_loop {
                if Self::inside(loops, j, i) {
                    return false;
                }
                continue;
            }
            // A phi of a loop the pass does not track (it has no memory
            // phi of its own, e.g. it stores nothing): available at loop
            // `i`'s entry only if that loop comes before `i`. A load after
            // loop `i`, inside such a loop, still reads `i`'s memory.
            let untracked = match op {
                Op::Phi { .. } if g.arity(n) > 0 => Some(g.resolve(g.input(n, 0))),
                Op::Loop { .. } => Some(n),
                _ => None,
            }
            .filter(|&h| matches!(g.op(h), Op::Loop { .. }));
            if let Some(h) = untracked {
                let entry = g.resolve(g.input(loops[i].header, 0));
                if !self.comes_before(g, h, entry) {
                    return false;
                }
                continue;
            }
            if g.ty(n) == Type::Mem {
                match self.owner[n.index()] {
                    u32::MAX => continue,
                    o if Self::inside(loops, o as usize, i) => return false,
                    _ => continue,
                }
            }
            if op.is_control() || matches!(op, Op::Start) {
                continue;
            }
            let first = usize::from(matches!(op, Op::Phi { .. }));
            for k in first..g.arity(n) {
                stack.push(g.input(n, k));
            }
        }
        true
    }

    /// Promotes the places loop `i`'s loads read; returns how many.
    fn promote_loop(
        &mut self,
        g: &mut Graph,
        users: &UserLists,
        loops: &[LoopInfo],
        i: usize,
        stats: &mut PromoteStats,
    ) -> Result<u32, GraphError> {
        let l = &loops[i];
        // The loads on the loop's own chain, by place in first-seen order.
        let mut places: Vec<(Place, SmallVec<[NodeId; 2]>)> = Vec::new();
        let none = Vec::new();
        for &m in &l.chain {
            let made = self.new_loads.get(&m).unwrap_or(&none);
            for &u in users[m.index()].iter().chain(made) {
                let Some(p) = Place::of_load(g, u) else {
                    continue;
                };
                if g.resolve(u) != u || g.input(u, 1) != m {
                    continue;
                }
                match places.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, v)) if !v.contains(&u) => v.push(u),
                    Some(_) => {}
                    None => places.push((p, smallvec![u])),
                }
            }
        }
        let mut promoted = 0;
        for (place, lds) in places {
            if !self.promotable(g, loops, i, place) {
                continue;
            }
            if self.carry(g, users, loops, i, place)?.is_none() {
                continue;
            }
            promoted += 1;
            for ld in lds {
                let at = g.input(ld, 1);
                if let Some(v) = self.value_at(g, loops, at, place)? {
                    if v != ld && g.resolve(ld) == ld && g.resolve(v) != ld {
                        g.replace(ld, v)?;
                        stats.loads += 1;
                    }
                }
            }
        }
        Ok(promoted)
    }

    /// Whether `place` may be carried round loop `i`.
    fn promotable(&mut self, g: &Graph, loops: &[LoopInfo], i: usize, place: Place) -> bool {
        let Some(a) = place.access() else {
            return false;
        };
        if !self.invariant(g, loops, i, place.base) {
            return false;
        }
        loops[i].stores.iter().all(|&s| {
            let Some(b) = access(g, s) else {
                return false;
            };
            let exact = b == a && g.ty(g.input(s, 3)) == place.ty;
            exact || !b.may_alias(&a)
        })
    }

    /// Makes `place`'s phi on loop `i` and closes it with what the place
    /// holds at the end of a trip; `None` if that cannot be found (nothing
    /// changed then but dead nodes).
    fn carry(
        &mut self,
        g: &mut Graph,
        users: &UserLists,
        loops: &[LoopInfo],
        i: usize,
        place: Place,
    ) -> Result<Option<NodeId>, GraphError> {
        let l = &loops[i];
        let entry = match self.load_above(g, users, l, place) {
            Some(ld) => ld,
            None => {
                let entry_ctrl = g.input(l.header, 0);
                let ld = g.build(
                    Op::load(place.offset, place.class),
                    place.ty,
                    &[entry_ctrl, l.entry_mem, place.base],
                )?;
                // An outer loop finds it among the loads on its chain.
                if Place::of_load(g, ld) == Some(place) && g.input(ld, 1) == l.entry_mem {
                    self.new_loads.entry(l.entry_mem).or_default().push(ld);
                }
                ld
            }
        };
        let key = PROMOTED_KEY | place_key(g, place);
        let phi = g.loop_phi(l.header, key, place.ty, entry)?;
        if g.back_input(phi).is_some() || !g.is_loop_phi(phi) {
            return Ok(None);
        }
        self.memo.insert((l.mem, place), Some(phi));
        match self.value_at(g, loops, l.back_mem, place)? {
            Some(back) => {
                g.set_back_input(phi, back)?;
                Ok(Some(phi))
            }
            None => {
                // Closed on itself, the unused phi stays a well-formed
                // (dead) node that a patch log can record.
                g.set_back_input(phi, phi)?;
                self.memo.insert((l.mem, place), None);
                Ok(None)
            }
        }
    }

    /// A load of `place` on loop `l`'s entry memory whose control is
    /// above the loop's entry, along straight control (a branch's test
    /// usually read the place there already).
    fn load_above(
        &self,
        g: &Graph,
        users: &UserLists,
        l: &LoopInfo,
        place: Place,
    ) -> Option<NodeId> {
        let none = Vec::new();
        let made = self.new_loads.get(&l.entry_mem).unwrap_or(&none);
        let candidates: Few = users[l.entry_mem.index()]
            .iter()
            .chain(made)
            .copied()
            .filter(|&u| {
                g.resolve(u) == u
                    && Place::of_load(g, u) == Some(place)
                    && g.input(u, 1) == l.entry_mem
            })
            .collect();
        let mut c = g.input(l.header, 0);
        for _ in 0..BASE_WALK {
            if let Some(&ld) = candidates.iter().find(|&&ld| g.input(ld, 0) == c) {
                return Some(ld);
            }
            c = match g.op(c) {
                Op::Proj { .. } if g.arity(c) == 1 => {
                    let t = g.input(c, 0);
                    match g.op(t) {
                        Op::If | Op::Guard { .. } => g.input(t, 0),
                        _ => return None,
                    }
                }
                Op::Guard { .. } => g.input(c, 0),
                _ => return None,
            };
        }
        None
    }

    /// What `place` holds at memory state `start`, in terms of the values
    /// stored and the phis made so far (`None`: not known). Iterative:
    /// chains of any length.
    fn value_at(
        &mut self,
        g: &mut Graph,
        loops: &[LoopInfo],
        start: NodeId,
        place: Place,
    ) -> Result<Option<NodeId>, GraphError> {
        let Some(want) = place.access() else {
            return Ok(None);
        };
        let mut stack: SmallVec<[(NodeId, bool); 16]> = smallvec![(start, false)];
        while let Some((m, expanded)) = stack.pop() {
            if self.memo.contains_key(&(m, place)) {
                continue;
            }
            let op = g.op(m);
            // The states `m`'s value follows from, or the value itself.
            let mut deps: Few = Few::new();
            let mut known: Option<Option<NodeId>> = None;
            if op.is_store() && g.arity(m) == 4 {
                match access(g, m) {
                    Some(a) if a == want && g.ty(g.input(m, 3)) == place.ty => {
                        known = Some(Some(g.input(m, 3)));
                    }
                    Some(a) if !a.may_alias(&want) => deps.push(g.input(m, 1)),
                    _ => known = Some(None),
                }
            } else if matches!(op, Op::Phi { .. }) && g.ty(m) == Type::Mem && g.arity(m) >= 2 {
                let region = g.input(m, 0);
                match self.loop_of_header.get(&region).copied() {
                    // A loop that does not carry the place: unchanged
                    // through it if nothing in it may write the place.
                    Some(j) => {
                        let lj = &loops[j];
                        let untouched = lj.mem == m
                            && !lj.opaque
                            && lj.height <= MAX_PROMOTE_HEIGHT
                            && lj
                                .stores
                                .iter()
                                .all(|&s| access(g, s).is_some_and(|a| !a.may_alias(&want)));
                        if untouched {
                            deps.push(lj.entry_mem);
                        } else {
                            known = Some(None);
                        }
                    }
                    None if matches!(g.op(region), Op::Region) => {
                        deps.extend((1..g.arity(m)).map(|k| g.input(m, k)));
                    }
                    None => known = Some(None),
                }
            } else {
                known = Some(None);
            }
            if let Some(v) = known {
                self.memo.insert((m, place), v);
                continue;
            }
            if !expanded {
                stack.push((m, true));
                for &d in deps.iter().rev() {
                    stack.push((d, false));
                }
                continue;
            }
            let values: Option<Few> = deps
                .iter()
                .map(|d| self.memo.get(&(*d, place)).copied().flatten())
                .collect();
            let v = match values {
                None => None,
                Some(vs) if op.is_store() || g.is_loop_phi(m) => vs.first().copied(),
                Some(vs) => Some(g.phi(g.input(m, 0), place.ty, &vs)?),
            };
            self.memo.insert((m, place), v);
        }
        Ok(self.memo.get(&(start, place)).copied().flatten())
    }
}

/// A phi key for `place`, the same in every process: from the base's
/// address, the offset, the class and the type.
fn place_key(g: &Graph, place: Place) -> u64 {
    let a = g.addr(place.base).0;
    let mut k = u64::from_le_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    k ^= (place.offset as u32 as u64).rotate_left(17);
    k ^= u64::from(place.class).rotate_left(41);
    k ^= u64::from(place.ty.bytes().unwrap_or(0)).rotate_left(57);
    k & !PROMOTED_KEY
}

/// Control nodes [`Walk::comes_before`] looks at, at most; past that a loop is
/// taken as not before (its values are not promoted on).
const BEFORE_WALK: usize = 512;

/// The loop headers among the control nodes a walk up from `ctrl` (into
/// a loop header by its entry only) meets, sorted: of all of them, or of
/// the first [`BEFORE_WALK`]` + 1` in depth-first order when there are
/// more (the walk gives up there, so a header past them is taken as not
/// before). `seen` marks the nodes met (every entry is reset on return).
fn reached_before(g: &Graph, ctrl: NodeId, seen: &mut Vec<bool>) -> Vec<NodeId> {
    let mut stack = vec![ctrl];
    let mut met: Vec<NodeId> = Vec::new();
    while let Some(c) = stack.pop() {
        if c.index() >= seen.len() {
            seen.resize(c.index() + 1, false);
        }
        if seen[c.index()] {
            continue;
        }
        seen[c.index()] = true;
        met.push(c);
        if met.len() > BEFORE_WALK {
            break;
        }
        match g.op(c) {
            Op::Start => {}
            Op::Region => stack.extend((0..g.arity(c)).map(|k| g.resolve(g.input(c, k)))),
            _ if g.arity(c) > 0 => stack.push(g.resolve(g.input(c, 0))),
            _ => {}
        }
    }
    for &c in &met {
        seen[c.index()] = false;
    }
    met.retain(|&c| matches!(g.op(c), Op::Loop { .. }));
    met.sort_unstable();
    met
}
