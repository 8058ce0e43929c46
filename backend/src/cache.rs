//! A code cache: machine code keyed by the content of what was compiled.
//!
//! A compilation unit's key is a content hash of its final graph (for
//! example `vssa::live_graph_key` after optimization or replay): two
//! compilations with the same key would produce the same code, so the
//! second one can take the first one's machine code and skip scheduling
//! and code generation. After a deoptimization only the units whose key
//! changed are compiled again; every other unit is a cache hit.
//!
//! The cache is bounded by machine-code bytes: inserting past the budget
//! evicts the least recently used entries. Entries are shared
//! ([`Arc<OwnedCode>`]): eviction only drops the cache's handle, and the
//! memory is freed when the last unit that still runs the code lets go of
//! it, so nothing a caller holds is ever freed under it.

use crate::jit::OwnedCode;
use std::collections::HashMap;
use std::sync::Arc;
use vssa::Addr;

/// Machine code by unit key, least recently used first out.
#[derive(Debug)]
pub struct CodeCache {
    entries: HashMap<Addr, Entry>,
    /// Bytes of machine code the cache may keep alive.
    budget: usize,
    /// Bytes of machine code of the entries.
    used: usize,
    /// Logical time of the latest get or insert.
    clock: u64,
    stats: CacheStats,
}

#[derive(Debug)]
struct Entry {
    code: Arc<OwnedCode>,
    last_use: u64,
}

/// What the cache did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
}

/// The default budget: far more than any Brainfuck program's code, so a
/// run never evicts what it will use again; small next to memory.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl Default for CodeCache {
    fn default() -> Self {
        CodeCache::new(DEFAULT_CACHE_BYTES)
    }
}

impl CodeCache {
    /// An empty cache keeping at most `budget` bytes of machine code (0:
    /// keeps nothing, every lookup misses).
    pub fn new(budget: usize) -> CodeCache {
        CodeCache {
            entries: HashMap::new(),
            budget,
            used: 0,
            clock: 0,
            stats: CacheStats::default(),
        }
    }

    /// The code compiled for `key`, if cached; counts a hit or a miss.
    pub fn get(&mut self, key: &Addr) -> Option<Arc<OwnedCode>> {
        self.clock += 1;
        match self.entries.get_mut(key) {
            Some(e) => {
                e.last_use = self.clock;
                self.stats.hits += 1;
                Some(Arc::clone(&e.code))
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Files `code` under `key` (replacing what was there), then evicts the
    /// least recently used other entries until the cache fits its budget.
    /// Code larger than the whole budget is not kept.
    pub fn insert(&mut self, key: Addr, code: Arc<OwnedCode>) {
        let size = code_bytes(&code);
        if size > self.budget {
            return;
        }
        self.clock += 1;
        self.stats.inserts += 1;
        if let Some(old) = self.entries.insert(
            key,
            Entry {
                code,
                last_use: self.clock,
            },
        ) {
            self.used -= code_bytes(&old.code);
        }
        self.used += size;
        while self.used > self.budget {
            // Linear in the entries: evictions are rare and the cache holds
            // one entry per compiled unit.
            let Some(victim) = self
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(k, e)| (e.last_use, **k))
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&victim) {
                self.used -= code_bytes(&e.code);
                self.stats.evictions += 1;
            }
        }
    }

    /// Drops the entry of `key`, if any (the code stays alive where used).
    pub fn remove(&mut self, key: &Addr) -> Option<Arc<OwnedCode>> {
        let e = self.entries.remove(key)?;
        self.used -= code_bytes(&e.code);
        Some(e.code)
    }

    /// Drops every entry (code still used elsewhere stays alive there).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of machine code the entries hold.
    pub fn bytes(&self) -> usize {
        self.used
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn contains(&self, key: &Addr) -> bool {
        self.entries.contains_key(key)
    }
}

/// What an entry costs the budget: its machine code, at least one byte so
/// that empty functions still count.
fn code_bytes(code: &OwnedCode) -> usize {
    code.stats().code_size.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Jit, JitOptions};
    use vssa::{Graph, Type};

    /// A function returning `value`, in memory of its own.
    fn owned(jit: &mut Jit, value: i64) -> Arc<OwnedCode> {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let v = g.iconst(Type::I32, value).unwrap();
        let r = g.ret(e.ctrl, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        let s = vssa_schedule::schedule(&g).unwrap();
        Arc::new(jit.compile_owned(&g, &s, &[], "k").unwrap())
    }

    fn key(n: u8) -> Addr {
        Addr([n; 16])
    }

    fn run(code: &OwnedCode) -> u32 {
        let mut ctx = [0u8; 8];
        // SAFETY: the function reads nothing from the context and calls no host.
        unsafe { code.call(ctx.as_mut_ptr()) }
    }

    #[test]
    fn hits_after_insert_and_counts() {
        let mut jit = Jit::new(JitOptions::default()).unwrap();
        let mut c = CodeCache::default();
        assert!(c.get(&key(1)).is_none());
        c.insert(key(1), owned(&mut jit, 7));
        let got = c.get(&key(1)).expect("cached");
        assert_eq!(run(&got), 7);
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 1,
                misses: 1,
                inserts: 1,
                evictions: 0
            }
        );
    }

    #[test]
    fn evicts_least_recently_used_to_fit_the_budget() {
        let mut jit = Jit::new(JitOptions::default()).unwrap();
        let a = owned(&mut jit, 1);
        let size = a.stats().code_size;
        assert!(size > 0);
        // Room for two functions of this size.
        let mut c = CodeCache::new(2 * size);
        c.insert(key(1), a);
        c.insert(key(2), owned(&mut jit, 2));
        assert!(c.get(&key(1)).is_some()); // 1 is now more recent than 2
        c.insert(key(3), owned(&mut jit, 3));
        assert!(c.contains(&key(1)) && c.contains(&key(3)));
        assert!(!c.contains(&key(2)), "the least recently used goes");
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.bytes(), 2 * size);
    }

    #[test]
    fn evicted_code_stays_alive_while_held() {
        let mut jit = Jit::new(JitOptions::default()).unwrap();
        let a = owned(&mut jit, 41);
        let mut c = CodeCache::new(a.stats().code_size);
        c.insert(key(1), Arc::clone(&a));
        c.insert(key(2), owned(&mut jit, 2));
        assert!(!c.contains(&key(1)));
        // The cache let go; our handle still runs the code.
        assert_eq!(run(&a), 41);
        drop(jit);
        assert_eq!(run(&a), 41, "owned code outlives the JIT that compiled it");
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let mut jit = Jit::new(JitOptions::default()).unwrap();
        let mut c = CodeCache::new(0);
        c.insert(key(1), owned(&mut jit, 1));
        assert!(c.is_empty());
        assert!(c.get(&key(1)).is_none());
    }

    #[test]
    fn replacing_a_key_keeps_the_byte_count_right() {
        let mut jit = Jit::new(JitOptions::default()).unwrap();
        let mut c = CodeCache::default();
        c.insert(key(1), owned(&mut jit, 1));
        let one = c.bytes();
        c.insert(key(1), owned(&mut jit, 2));
        assert_eq!(c.bytes(), one);
        assert_eq!(c.len(), 1);
        assert_eq!(run(&c.get(&key(1)).unwrap()), 2);
        assert!(c.remove(&key(1)).is_some());
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }
}
