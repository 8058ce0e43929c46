//! Lua tables: an array part for the keys `1..=n` and an insertion-ordered
//! hash part (so `next` can resume from any key). Float keys with an
//! integer value are stored as integers (`t[1.0]` is `t[1]`); NaN and nil
//! keys are rejected by the caller.

use crate::value::{float_to_int_exact, TableRef, Value};
use indexmap::IndexMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A hash-part key: a value compared by identity (strings are interned)
/// or by numeric value, never NaN or nil.
#[derive(Clone, Copy, Debug)]
pub struct Key(pub Value);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        match (self.0, other.0) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a.raw_eq(b),
        }
    }
}
impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let (tag, bits): (u64, u64) = match self.0 {
            Value::Nil => (0, 0),
            Value::Bool(b) => (1, b as u64),
            Value::Int(i) => (2, i as u64),
            Value::Float(f) => (3, f.to_bits()),
            Value::Str(s) => (4, s.0 as u64),
            Value::Table(t) => (5, t.0 as u64),
            Value::Func(f) => (6, f.0 as u64),
            Value::Builtin(b) => (7, b as u64),
        };
        h.write_u64(bits ^ (tag << 59));
    }
}

/// A small multiplicative hasher for [`Key`] (keys are already well mixed
/// integers or arena indices).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type HashPart = IndexMap<Key, Value, BuildHasherDefault<KeyHasher>>;

/// A Lua table.
#[derive(Default, Debug)]
pub struct Table {
    /// `arr[i]` is the value of key `i + 1`.
    pub arr: Vec<Value>,
    pub hash: HashPart,
    /// Entries of `hash` whose value is nil (kept so `next` can go on
    /// from a key removed during traversal; purged when they dominate).
    dead: usize,
    pub meta: Option<TableRef>,
}

/// Normalizes a float key with an integer value to the integer.
#[inline]
pub fn norm_key(k: Value) -> Value {
    if let Value::Float(f) = k {
        if let Some(i) = float_to_int_exact(f) {
            return Value::Int(i);
        }
    }
    k
}

impl Table {
    pub fn with_capacity(narr: usize, nhash: usize) -> Self {
        Table {
            arr: Vec::with_capacity(narr),
            hash: HashPart::with_capacity_and_hasher(nhash, Default::default()),
            dead: 0,
            meta: None,
        }
    }

    /// Approximate heap bytes owned (for the collector's accounting).
    pub fn size_bytes(&self) -> usize {
        64 + self.arr.capacity() * 16 + self.hash.capacity() * 40
    }

    #[inline]
    pub fn get_int(&self, i: i64) -> Value {
        let idx = (i as u64).wrapping_sub(1);
        if idx < self.arr.len() as u64 {
            return self.arr[idx as usize];
        }
        if self.hash.is_empty() {
            return Value::Nil;
        }
        self.hash
            .get(&Key(Value::Int(i)))
            .copied()
            .unwrap_or(Value::Nil)
    }

    /// The value for a string key (strings are interned: identity lookup).
    #[inline]
    pub fn get_str(&self, k: Value) -> Value {
        if self.hash.is_empty() {
            return Value::Nil;
        }
        self.hash.get(&Key(k)).copied().unwrap_or(Value::Nil)
    }

    /// Raw get for any key.
    #[inline]
    pub fn get(&self, k: Value) -> Value {
        match k {
            Value::Int(i) => self.get_int(i),
            Value::Str(_) => self.get_str(k),
            Value::Nil => Value::Nil,
            Value::Float(f) => match float_to_int_exact(f) {
                Some(i) => self.get_int(i),
                None if f.is_nan() => Value::Nil,
                None => self.get_str(k),
            },
            _ => self.get_str(k),
        }
    }

    /// Raw set; the key is not nil or NaN (the caller checked) and is
    /// normalized here.
    pub fn set(&mut self, k: Value, v: Value) {
        let k = norm_key(k);
        if let Value::Int(i) = k {
            self.set_int(i, v);
            return;
        }
        self.set_hash(k, v);
    }

    pub fn set_int(&mut self, i: i64, v: Value) {
        let idx = (i as u64).wrapping_sub(1);
        let len = self.arr.len() as u64;
        if idx < len {
            self.arr[idx as usize] = v;
            return;
        }
        if idx == len && !matches!(v, Value::Nil) {
            self.arr.push(v);
            if !self.hash.is_empty() {
                // The key may have lived in the hash part; then pull the
                // following keys into the array too.
                self.remove_hash(Value::Int(i));
                self.migrate();
            }
            return;
        }
        self.set_hash(Value::Int(i), v);
    }

    fn remove_hash(&mut self, k: Value) {
        if let Some(slot) = self.hash.get_mut(&Key(k)) {
            if !matches!(*slot, Value::Nil) {
                *slot = Value::Nil;
                self.dead += 1;
            }
        }
    }

    /// Moves keys `len+1, len+2, …` from the hash part to the array part.
    fn migrate(&mut self) {
        loop {
            let next = Value::Int(self.arr.len() as i64 + 1);
            match self.hash.get(&Key(next)).copied() {
                Some(v) if !matches!(v, Value::Nil) => {
                    self.arr.push(v);
                    self.remove_hash(next);
                }
                _ => return,
            }
        }
    }

    fn set_hash(&mut self, k: Value, v: Value) {
        match self.hash.get_mut(&Key(k)) {
            Some(slot) => {
                let was_nil = matches!(*slot, Value::Nil);
                let is_nil = matches!(v, Value::Nil);
                *slot = v;
                if was_nil && !is_nil {
                    self.dead -= 1;
                } else if !was_nil && is_nil {
                    self.dead += 1;
                }
            }
            None => {
                if matches!(v, Value::Nil) {
                    return;
                }
                if self.hash.len() == self.hash.capacity() {
                    // The hash part is full: like lua5.4's rehash, move
                    // integer keys to the array part if it would be more
                    // than half full, and drop dead entries.
                    if self.rehash(k) {
                        if let Value::Int(i) = k {
                            if (i as u64).wrapping_sub(1) < self.arr.len() as u64 {
                                self.arr[(i - 1) as usize] = v;
                                return;
                            }
                        }
                    }
                } else if self.dead > 8 && self.dead * 2 > self.hash.len() {
                    self.hash.retain(|_, v| !matches!(v, Value::Nil));
                    self.dead = 0;
                }
                self.hash.insert(Key(k), v);
            }
        }
    }

    /// Resizes the array part to the largest power of two `n` such that
    /// more than `n/2` of the keys `1..=n` are present (counting `extra`);
    /// returns whether the array part grew.
    fn rehash(&mut self, extra: Value) -> bool {
        let mut nums = [0usize; 65];
        let mut total = 0usize;
        let mut count = |i: i64| {
            if i >= 1 {
                let b = 64 - ((i - 1) as u64).leading_zeros() as usize;
                nums[b] += 1;
                total += 1;
            }
        };
        for (i, v) in self.arr.iter().enumerate() {
            if !matches!(v, Value::Nil) {
                count(i as i64 + 1);
            }
        }
        for (k, v) in &self.hash {
            if let (Value::Int(i), false) = (k.0, matches!(v, Value::Nil)) {
                count(i);
            }
        }
        if let Value::Int(i) = extra {
            count(i);
        }
        let mut acc = 0usize;
        let mut optimal = 0usize;
        for (b, &n) in nums.iter().enumerate().take(63) {
            let two = 1usize << b;
            acc += n;
            if acc > two / 2 {
                optimal = two;
            }
            if two / 2 >= total {
                break;
            }
        }
        let grew = optimal > self.arr.len();
        if grew {
            self.arr.resize(optimal, Value::Nil);
            let arr = &mut self.arr;
            self.hash.retain(|k, v| {
                if let Value::Int(i) = k.0 {
                    if i >= 1 && (i as u64) <= optimal as u64 {
                        arr[(i - 1) as usize] = *v;
                        return false;
                    }
                }
                !matches!(v, Value::Nil)
            });
        } else {
            self.hash.retain(|_, v| !matches!(v, Value::Nil));
        }
        self.dead = 0;
        grew
    }

    /// A border (`#t`): `n` with `t[n] ~= nil` and `t[n+1] == nil` (or 0).
    pub fn border(&self) -> i64 {
        let n = self.arr.len();
        if n > 0 && matches!(self.arr[n - 1], Value::Nil) {
            // Binary search in the array part: arr[lo-1] present (or lo =
            // 0), arr[hi-1] absent.
            let (mut lo, mut hi) = (0usize, n);
            while hi - lo > 1 {
                let m = (lo + hi) / 2;
                if matches!(self.arr[m - 1], Value::Nil) {
                    hi = m;
                } else {
                    lo = m;
                }
            }
            return lo as i64;
        }
        if self.hash.is_empty() || matches!(self.get_int(n as i64 + 1), Value::Nil) {
            return n as i64;
        }
        // Unbounded search in the hash part, then binary search.
        let mut i = n as u64 + 1;
        let mut j = i * 2;
        while !matches!(self.get_int(j as i64), Value::Nil) {
            i = j;
            if j > (i64::MAX as u64) / 2 {
                // Pathological: linear search.
                let mut k = 1i64;
                while !matches!(self.get_int(k), Value::Nil) {
                    k += 1;
                }
                return k - 1;
            }
            j *= 2;
        }
        while j - i > 1 {
            let m = (i + j) / 2;
            if matches!(self.get_int(m as i64), Value::Nil) {
                j = m;
            } else {
                i = m;
            }
        }
        i as i64
    }

    /// The entry after `k` in traversal order (`k` nil: the first), or
    /// `Err(())` if `k` is not a key of the table.
    #[allow(clippy::result_unit_err)]
    pub fn next(&self, k: Value) -> Result<Option<(Value, Value)>, ()> {
        let k = norm_key(k);
        let mut hash_from = 0;
        let arr_from = match k {
            Value::Nil => 0,
            Value::Int(i) if i >= 1 && (i as u64) <= self.arr.len() as u64 => i as usize,
            _ => {
                hash_from = self.hash.get_index_of(&Key(k)).ok_or(())? + 1;
                usize::MAX
            }
        };
        if arr_from != usize::MAX {
            for i in arr_from..self.arr.len() {
                if !matches!(self.arr[i], Value::Nil) {
                    return Ok(Some((Value::Int(i as i64 + 1), self.arr[i])));
                }
            }
        }
        for i in hash_from..self.hash.len() {
            let (k, v) = self.hash.get_index(i).expect("in range");
            if !matches!(v, Value::Nil) {
                return Ok(Some((k.0, *v)));
            }
        }
        Ok(None)
    }

    /// Every value and key (for the collector's marking).
    pub fn for_each_ref(&self, mut f: impl FnMut(Value)) {
        for &v in &self.arr {
            f(v);
        }
        for (k, &v) in &self.hash {
            f(k.0);
            f(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_hash_parts_agree() {
        let mut t = Table::default();
        t.set(Value::Int(2), Value::Int(20));
        assert_eq!(t.arr.len(), 0);
        t.set(Value::Float(1.0), Value::Int(10));
        assert_eq!(t.arr.len(), 2, "key 2 migrates once key 1 exists");
        assert!(matches!(t.get(Value::Float(2.0)), Value::Int(20)));
        assert_eq!(t.border(), 2);
        t.set(Value::Int(2), Value::Nil);
        assert_eq!(t.border(), 1);
        let mut sparse = Table::default();
        for i in 2..=1000 {
            sparse.set_int(i, Value::Bool(true));
        }
        assert!(
            sparse.arr.len() >= 512,
            "dense integer keys move to the array part"
        );
        assert!(matches!(sparse.get_int(700), Value::Bool(true)));
        assert!(matches!(sparse.get_int(1), Value::Nil));
        t.set(Value::Int(4), Value::Int(1));
        let mut keys = vec![];
        let mut k = Value::Nil;
        while let Some((nk, _)) = t.next(k).unwrap() {
            keys.push(nk);
            k = nk;
        }
        assert_eq!(keys.len(), 2);
        assert!(t.next(Value::Int(99)).is_err());
    }
}
