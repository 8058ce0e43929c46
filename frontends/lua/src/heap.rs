//! The Lua heap: one arena per object kind (strings, tables, closures,
//! upvalues), objects addressed by index, and a stop-the-world mark-and-sweep
//! collector. The collector never runs on its own: the interpreter calls
//! [`Heap::should_collect`] at instructions where every live value is in a
//! root (the value stack, the globals, the registry, open upvalues), so no
//! Rust local can hold a reference the collector does not see.
//!
//! Strings' bytes are interned: equal strings share one arena slot, so
//! string equality and table lookup by string are comparisons of the
//! index. A long string still has an object identity of its own
//! ([`crate::value::StrRef`]), as in lua5.4, which interns only short ones.

use crate::bytecode::Proto;
use crate::coroutine::Coroutine;
use crate::table::Table;
use crate::value::{CoRef, FnRef, StrRef, TableRef, UdRef, Value};
use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;

/// An arena of objects of one kind with mark bits and a free list.
pub struct Arena<T> {
    slots: Vec<Option<T>>,
    marks: Vec<bool>,
    free: Vec<u32>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            marks: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Arena<T> {
    pub(crate) fn alloc(&mut self, v: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(v);
            i
        } else {
            self.slots.push(Some(v));
            self.marks.push(false);
            (self.slots.len() - 1) as u32
        }
    }

    #[inline(always)]
    pub fn get(&self, i: u32) -> &T {
        self.slots[i as usize]
            .as_ref()
            .expect("a live object (the collector keeps every reachable one)")
    }

    #[inline(always)]
    pub fn get_mut(&mut self, i: u32) -> &mut T {
        self.slots[i as usize]
            .as_mut()
            .expect("a live object (the collector keeps every reachable one)")
    }

    /// Marks `i`; true if it was not marked yet.
    fn mark(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        let fresh = !*m;
        *m = true;
        fresh
    }

    /// Frees every unmarked object (calling `on_free`), clears the marks;
    /// returns how many objects live.
    fn sweep(&mut self, mut on_free: impl FnMut(u32, T)) -> usize {
        let mut live = 0;
        for i in 0..self.slots.len() {
            if self.marks[i] {
                self.marks[i] = false;
                live += 1;
            } else if let Some(obj) = self.slots[i].take() {
                self.free.push(i as u32);
                on_free(i as u32, obj);
            }
        }
        live
    }

    pub fn live_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// A string object: its bytes (shared with the intern table).
pub struct LuaStr {
    pub bytes: Rc<[u8]>,
}

/// A Lua closure: a prototype and its upvalues.
pub struct Closure {
    pub proto: Rc<Proto>,
    pub upvals: Box<[UpRef]>,
}

/// A full userdata: a metatable and a Rust payload owned by the library
/// that made it (an `io` file). Freeing it drops the payload, so a file
/// nobody can reach is closed by the collection that frees it.
pub struct Userdata {
    pub meta: Option<TableRef>,
    pub data: Box<dyn Any>,
}

/// An upvalue in the heap's upvalue arena.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UpRef(pub u32);

/// An upvalue: open while its variable lives in a stack slot of a thread
/// (the main thread or a coroutine, each with its own stack), closed (it
/// holds the value) once the variable's scope ended.
#[derive(Clone, Copy, Debug)]
pub enum UpVal {
    Open(CoRef, usize),
    Closed(Value),
}

/// The collector's accounting.
pub struct GcStats {
    /// Bytes allocated since the last collection (approximate).
    pub debt: usize,
    /// Collect when `debt` passes this (proportional to live bytes).
    pub threshold: usize,
    pub collections: u64,
    /// Approximate live bytes after the last collection.
    pub live_bytes: usize,
}

/// The largest array part (in slots) whose buffer a freed table gives
/// back for reuse ([`ArrayPool`]).
const POOLED_ARRAY: usize = 4;

/// How many buffers of one size the pool keeps at most (a bound on the
/// memory it holds: 64 Ki buffers of 4 slots are 4 MiB).
const POOL_DEPTH: usize = 1 << 16;

/// The array buffers of freed tables, by capacity (1 to
/// [`POOLED_ARRAY`] slots), for constructors of tables of that size:
/// `{ a, b, c }` then takes an allocation from here instead of `malloc`,
/// and the sweep that freed its table paid no `free` either.
#[derive(Default)]
pub struct ArrayPool {
    free: [Vec<Vec<Value>>; POOLED_ARRAY],
}

impl ArrayPool {
    /// An empty array part with room for exactly `n` values.
    #[inline]
    pub fn take(&mut self, n: usize) -> Vec<Value> {
        if let Some(list) = n.checked_sub(1).and_then(|i| self.free.get_mut(i)) {
            if let Some(v) = list.pop() {
                return v;
            }
        }
        Vec::with_capacity(n)
    }

    /// Keeps the buffer of a freed table's array part, if of a pooled size
    /// and the pool has room for it (else it is freed).
    #[inline]
    fn give(&mut self, mut arr: Vec<Value>) {
        if let Some(list) = arr
            .capacity()
            .checked_sub(1)
            .and_then(|i| self.free.get_mut(i))
        {
            if list.len() < POOL_DEPTH {
                arr.clear();
                list.push(arr);
            }
        }
    }

    /// Bytes held by pooled buffers.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.free
            .iter()
            .enumerate()
            .map(|(i, l)| l.len() * (i + 1) * std::mem::size_of::<Value>())
            .sum()
    }
}

/// A new table with room for `narr` array values and `nhash` fields,
/// its array buffer from `pool` when one fits (split from [`Heap`] so the
/// interpreter's inner loop can call it while it borrows the closures).
#[inline]
pub fn alloc_table(
    tables: &mut Arena<Table>,
    gc: &mut GcStats,
    pool: &mut ArrayPool,
    narr: usize,
    nhash: usize,
) -> TableRef {
    let t = Table::with_array(pool.take(narr), nhash);
    gc.debt += t.size_bytes();
    TableRef(tables.alloc(t))
}

pub struct Heap {
    pub strings: Arena<LuaStr>,
    pub tables: Arena<Table>,
    /// Array buffers of freed tables, for new ones.
    pub arrays: ArrayPool,
    pub closures: Arena<Closure>,
    pub upvals: Arena<UpVal>,
    pub coroutines: Arena<Coroutine>,
    pub userdata: Arena<Userdata>,
    /// Hashed with foldhash, seeded per process: a run-time string is
    /// looked up here at every `string.sub`, concatenation and conversion,
    /// and SipHash (std's default) cost a Json parse 110 M instructions
    /// of 2.5 G; a random seed keeps keys chosen by the program's input
    /// from colliding on purpose, as lua5.4's seeded string hash does.
    interned: HashMap<Rc<[u8]>, u32, foldhash::fast::RandomState>,
    pub gc: GcStats,
    /// Bytes in use against the memory limit (`limits.rs`).
    pub mem: crate::limits::MemoryAccount,
    /// Protos whose constants were marked in the current cycle.
    epoch: u32,
    gray_tables: Vec<u32>,
    gray_closures: Vec<u32>,
    gray_coroutines: Vec<u32>,
    /// The last object number given to a long string.
    long_objects: u32,
    /// The string `__mode`, whose field in a metatable makes a table weak
    /// (a root of its own).
    mode_key: Option<StrRef>,
    /// Weak tables met while marking this cycle: (table, weak keys, weak
    /// values).
    weak: Vec<(u32, bool, bool)>,
}

/// The longest string lua5.4 interns (`LUAI_MAXSHORTLEN`); a longer one
/// made at run time is an object of its own.
pub const MAX_SHORT_LEN: usize = 40;

/// Minimum bytes allocated between collections.
const MIN_THRESHOLD: usize = 4 << 20;

impl Default for Heap {
    fn default() -> Self {
        Heap {
            strings: Arena::default(),
            tables: Arena::default(),
            arrays: ArrayPool::default(),
            closures: Arena::default(),
            upvals: Arena::default(),
            coroutines: Arena::default(),
            userdata: Arena::default(),
            interned: HashMap::default(),
            gc: GcStats {
                debt: 0,
                threshold: MIN_THRESHOLD,
                collections: 0,
                live_bytes: 0,
            },
            mem: Default::default(),
            epoch: 1,
            gray_tables: Vec::new(),
            gray_closures: Vec::new(),
            gray_coroutines: Vec::new(),
            long_objects: 0,
            mode_key: None,
            weak: Vec::new(),
        }
    }
}

impl Heap {
    /// A string with these bytes (the bytes allocated if new). A long one
    /// is a new object (see [`StrRef`]).
    pub fn intern(&mut self, bytes: &[u8]) -> StrRef {
        let object = if bytes.len() > MAX_SHORT_LEN {
            self.long_objects = self.long_objects.wrapping_add(1).max(1);
            self.long_objects
        } else {
            0
        };
        if let Some(&i) = self.interned.get(bytes) {
            return StrRef(i, object);
        }
        let rc: Rc<[u8]> = Rc::from(bytes);
        self.gc.debt += 48 + bytes.len();
        let i = self.strings.alloc(LuaStr { bytes: rc.clone() });
        self.interned.insert(rc, i);
        StrRef(i, object)
    }

    /// [`Heap::intern`] of `s`'s bytes `range` (`string.sub`): looked up
    /// from the heap's own copy, so a substring already interned (every
    /// one-character `s:sub(i, i)` after the first) costs no copy of the
    /// subject's handle.
    pub fn intern_range(&mut self, s: StrRef, range: std::ops::Range<usize>) -> StrRef {
        let bytes = &self.strings.get(s.0).bytes[range.clone()];
        if bytes.len() <= MAX_SHORT_LEN {
            if let Some(&i) = self.interned.get(bytes) {
                return StrRef(i, 0);
            }
        }
        let subject = self.str_rc(s);
        self.intern(&subject[range])
    }

    pub fn str_value(&mut self, bytes: &[u8]) -> Value {
        Value::Str(self.intern(bytes))
    }

    /// A string's bytes as a shared handle (no copy), for a library
    /// function that reads them while it allocates.
    pub fn str_rc(&self, s: StrRef) -> Rc<[u8]> {
        self.strings.get(s.0).bytes.clone()
    }

    #[inline(always)]
    pub fn str_bytes(&self, s: StrRef) -> &[u8] {
        &self.strings.get(s.0).bytes
    }

    pub fn new_table(&mut self, t: Table) -> TableRef {
        self.gc.debt += t.size_bytes();
        TableRef(self.tables.alloc(t))
    }

    /// A new empty table with room for `narr` array values and `nhash`
    /// fields (a constructor's sizes), its array buffer from the pool.
    pub fn new_table_sized(&mut self, narr: usize, nhash: usize) -> TableRef {
        alloc_table(
            &mut self.tables,
            &mut self.gc,
            &mut self.arrays,
            narr,
            nhash,
        )
    }

    #[inline(always)]
    pub fn table(&self, t: TableRef) -> &Table {
        self.tables.get(t.0)
    }

    #[inline(always)]
    pub fn table_mut(&mut self, t: TableRef) -> &mut Table {
        self.tables.get_mut(t.0)
    }

    pub fn new_closure(&mut self, c: Closure) -> FnRef {
        self.gc.debt += 48 + c.upvals.len() * 4;
        FnRef(self.closures.alloc(c))
    }

    pub fn new_upval(&mut self, u: UpVal) -> UpRef {
        self.gc.debt += 32;
        UpRef(self.upvals.alloc(u))
    }

    pub fn new_coroutine(&mut self, c: Coroutine) -> CoRef {
        self.gc.debt += 128 + c.state.stack.len() * 16;
        CoRef(self.coroutines.alloc(c))
    }

    pub fn new_userdata(&mut self, u: Userdata) -> UdRef {
        self.gc.debt += 64;
        UdRef(self.userdata.alloc(u))
    }

    #[inline]
    pub fn userdata(&self, u: UdRef) -> &Userdata {
        self.userdata.get(u.0)
    }

    #[inline]
    pub fn userdata_mut(&mut self, u: UdRef) -> &mut Userdata {
        self.userdata.get_mut(u.0)
    }

    /// Accounts for memory a table grew by (array or hash part).
    #[inline]
    pub fn charge(&mut self, bytes: usize) {
        self.gc.debt += bytes;
    }

    #[inline(always)]
    pub fn should_collect(&self) -> bool {
        self.gc.debt > self.gc.threshold
    }

    /// A full collection: marks from `roots` (and everything reachable),
    /// clears the entries of weak tables whose key or value (as the
    /// table's `__mode` says) is not marked, frees the rest, and sets the
    /// next threshold to the live size.
    pub fn collect(&mut self, roots: impl IntoIterator<Item = Value>, upval_roots: &[UpRef]) {
        // Nothing is freed between collections: use peaks just before one.
        self.note_peak();
        self.epoch = self.epoch.wrapping_add(1).max(1);
        if let Some(k) = self.mode_key {
            self.mark_value(Value::Str(k));
        }
        for v in roots {
            self.mark_value(v);
        }
        for &u in upval_roots {
            self.mark_upval(u);
        }
        self.propagate();
        self.converge_ephemerons();
        self.clear_weak();
        let mut live = 0;
        let interned = &mut self.interned;
        self.strings.sweep(|_, s| {
            interned.remove(&s.bytes);
        });
        for s in interned.keys() {
            live += 48 + s.len();
        }
        // The buffers given to the pool are not live: counted, they raised
        // the next threshold by up to the pool's size (binary-trees 16
        // peaked at 76.5 MB against 66.7 MB without the pool).
        let arrays = &mut self.arrays;
        self.tables.sweep(|_, t| arrays.give(t.arr));
        for t in self.tables.slots.iter().flatten() {
            live += t.size_bytes();
        }
        live += 64 * self.closures.sweep(|_, _| {});
        live += 32 * self.upvals.sweep(|_, _| {});
        live += 64 * self.userdata.sweep(|_, _| {});
        self.coroutines.sweep(|_, _| {});
        for c in self.coroutines.slots.iter().flatten() {
            live += 128 + c.state.stack.len() * 16;
        }
        self.gc.live_bytes = live;
        self.gc.debt = 0;
        self.gc.threshold = live.max(MIN_THRESHOLD);
        self.gc.collections += 1;
    }

    /// Sets the string `__mode` (the interpreter interns it at start).
    pub fn set_mode_key(&mut self, k: StrRef) {
        self.mode_key = Some(k);
    }

    /// Whether table `t` is weak, by its metatable's `__mode`: (weak keys,
    /// weak values).
    fn weakness(&self, t: u32) -> (bool, bool) {
        let (Some(meta), Some(key)) = (self.tables.get(t).meta, self.mode_key) else {
            return (false, false);
        };
        match self.tables.get(meta.0).get_str(Value::Str(key)) {
            Value::Str(m) => {
                let m = self.str_bytes(m);
                (m.contains(&b'k'), m.contains(&b'v'))
            }
            _ => (false, false),
        }
    }

    /// Whether `v` is an object not marked (yet): a weak entry holding it
    /// is cleared if it stays so. Strings count as values, never cleared
    /// (as in lua5.4), so they are marked when met.
    fn unmarked(&self, v: Value) -> bool {
        match v {
            Value::Table(t) => !self.tables.marks[t.0 as usize],
            Value::Func(f) => !self.closures.marks[f.0 as usize],
            Value::Thread(c) => !self.coroutines.marks[c.0 as usize],
            Value::Userdata(u) => !self.userdata.marks[u.0 as usize],
            _ => false,
        }
    }

    /// Marks what a weak table keeps alive: its metatable, strings, and
    /// what its mode does not make weak — for weak keys only (an
    /// ephemeron), a value whose key is marked (others wait for
    /// [`Heap::converge_ephemerons`]).
    fn mark_weak_table(&mut self, t: u32, weak_k: bool, weak_v: bool, buf: &mut Vec<Value>) {
        buf.clear();
        let tab = self.tables.get(t);
        if let Some(m) = tab.meta {
            buf.push(Value::Table(m));
        }
        if !weak_v {
            buf.extend(tab.arr.iter().copied());
        } else {
            buf.extend(
                tab.arr
                    .iter()
                    .copied()
                    .filter(|v| matches!(v, Value::Str(_))),
            );
        }
        for (k, v) in tab.hash.iter() {
            if matches!(v, Value::Nil) {
                continue;
            }
            if !weak_k || matches!(k, Value::Str(_)) || !self.unmarked(k) {
                buf.push(k);
                if !weak_v || matches!(v, Value::Str(_)) {
                    buf.push(v);
                }
            } else if weak_v && matches!(v, Value::Str(_)) {
                buf.push(v);
            }
        }
        self.weak.push((t, weak_k, weak_v));
        for &v in buf.iter() {
            self.mark_value(v);
        }
    }

    /// Weak-key tables (ephemerons): a value is marked once its key is;
    /// marking it may mark other keys, so this repeats until nothing
    /// changes.
    fn converge_ephemerons(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut changed = false;
            for i in 0..self.weak.len() {
                let (t, weak_k, weak_v) = self.weak[i];
                if !weak_k || weak_v {
                    continue;
                }
                buf.clear();
                for (k, v) in self.tables.get(t).hash.iter() {
                    if !matches!(v, Value::Nil) && !self.unmarked(k) && self.unmarked(v) {
                        buf.push(v);
                    }
                }
                if !buf.is_empty() {
                    changed = true;
                    for &v in &buf {
                        self.mark_value(v);
                    }
                    self.propagate();
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Clears the entries of the weak tables met whose weak key or value
    /// is about to be freed (the entry stays as a dead one: its value is
    /// nil, so a traversal in progress can go on).
    fn clear_weak(&mut self) {
        let weak = std::mem::take(&mut self.weak);
        let mut dead = Vec::new();
        for &(t, weak_k, weak_v) in &weak {
            dead.clear();
            let tab = self.tables.get(t);
            for (k, v) in tab.hash.iter() {
                if !matches!(v, Value::Nil)
                    && (weak_k && self.unmarked(k) || weak_v && self.unmarked(v))
                {
                    dead.push(k);
                }
            }
            let arr_dead: Vec<usize> = if weak_v {
                (0..tab.arr.len())
                    .filter(|&i| self.unmarked(tab.arr[i]))
                    .collect()
            } else {
                Vec::new()
            };
            let tab = self.tables.get_mut(t);
            for &k in &dead {
                tab.hash.clear_value(k);
            }
            for i in arr_dead {
                tab.arr[i] = Value::Nil;
            }
        }
    }

    fn mark_value(&mut self, v: Value) {
        match v {
            Value::Str(s) => {
                self.strings.mark(s.0);
            }
            Value::Table(t) if self.tables.mark(t.0) => self.gray_tables.push(t.0),
            Value::Func(f) if self.closures.mark(f.0) => self.gray_closures.push(f.0),
            Value::Thread(c) if self.coroutines.mark(c.0) => self.gray_coroutines.push(c.0),
            Value::Userdata(u) if self.userdata.mark(u.0) => {
                if let Some(m) = self.userdata.get(u.0).meta {
                    self.mark_value(Value::Table(m));
                }
            }
            _ => {}
        }
    }

    fn mark_upval(&mut self, u: UpRef) {
        if self.upvals.mark(u.0) {
            match *self.upvals.get(u.0) {
                UpVal::Closed(v) => self.mark_value(v),
                // The thread whose stack holds the variable stays alive.
                UpVal::Open(t, _) => self.mark_value(Value::Thread(t)),
            }
        }
    }

    fn mark_proto(&mut self, p: &Proto) {
        if p.gc_epoch.get() == self.epoch {
            return;
        }
        p.gc_epoch.set(self.epoch);
        for &k in &p.consts {
            self.mark_value(k);
        }
        for child in &p.protos {
            self.mark_proto(child);
        }
    }

    /// Marks until no gray object is left (an explicit work list: no
    /// recursion over the object graph).
    fn propagate(&mut self) {
        let mut buf = Vec::new();
        loop {
            if let Some(t) = self.gray_tables.pop() {
                let (weak_k, weak_v) = self.weakness(t);
                if weak_k || weak_v {
                    self.mark_weak_table(t, weak_k, weak_v, &mut buf);
                    continue;
                }
                let tab = self.tables.get(t);
                buf.clear();
                tab.for_each_ref(|v| buf.push(v));
                if let Some(m) = tab.meta {
                    buf.push(Value::Table(m));
                }
                for &v in &buf {
                    self.mark_value(v);
                }
            } else if let Some(c) = self.gray_closures.pop() {
                let clo = self.closures.get(c);
                let proto = clo.proto.clone();
                let ups = clo.upvals.clone();
                self.mark_proto(&proto);
                for u in ups.iter() {
                    self.mark_upval(*u);
                }
            } else if let Some(c) = self.gray_coroutines.pop() {
                // A suspended thread's stack is live up to its `live_top`;
                // slots above may hold stale references and are cleared so
                // they are never marked after the thread runs on.
                let co = self.coroutines.get_mut(c);
                let live = co.live_top.min(co.state.stack.len());
                for v in &mut co.state.stack[live..] {
                    *v = Value::Nil;
                }
                buf.clear();
                buf.extend_from_slice(&co.state.stack[..live]);
                buf.extend(co.state.frames.iter().map(|f| Value::Func(f.closure)));
                buf.extend(co.body);
                buf.extend(co.error);
                let ups: Vec<UpRef> = co.state.open_upvals.iter().map(|&(_, u)| u).collect();
                for &v in &buf {
                    self.mark_value(v);
                }
                for u in ups {
                    self.mark_upval(u);
                }
            } else {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_tables_give_their_small_array_buffers_to_new_ones() {
        let mut heap = Heap::default();
        let t = heap.new_table_sized(3, 0);
        heap.table_mut(t).arr.push(Value::Int(1));
        let buf = heap.table(t).arr.as_ptr();
        let big = heap.new_table_sized(POOLED_ARRAY + 1, 0);
        let keep = heap.new_table_sized(3, 0);
        heap.collect([Value::Table(keep)], &[]);
        assert_eq!(heap.tables.live_count(), 1);
        assert_eq!(heap.arrays.free[2].len(), 1, "the 3-slot buffer is kept");
        assert!(
            heap.arrays
                .free
                .iter()
                .all(|l| l.iter().all(|v| v.is_empty())),
            "pooled buffers hold no values"
        );
        let _ = big;
        let again = heap.new_table_sized(3, 0);
        let tab = heap.table(again);
        assert_eq!(tab.arr.as_ptr(), buf, "reused");
        assert!(tab.arr.is_empty() && tab.arr.capacity() == 3);
        assert!(heap.arrays.free[2].is_empty());
        assert!(heap.new_table_sized(0, 0).0 != again.0);
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut pool = ArrayPool::default();
        for _ in 0..POOL_DEPTH + 10 {
            pool.give(Vec::with_capacity(1));
        }
        pool.give(Vec::with_capacity(POOLED_ARRAY + 1));
        pool.give(Vec::new());
        assert_eq!(pool.free[0].len(), POOL_DEPTH);
        assert_eq!(pool.bytes(), POOL_DEPTH * std::mem::size_of::<Value>());
        assert_eq!(pool.take(1).capacity(), 1);
        assert_eq!(pool.free[0].len(), POOL_DEPTH - 1);
        assert_eq!(pool.take(0).capacity(), 0);
    }
}
