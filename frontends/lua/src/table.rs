//! Lua tables: an array part for the keys `1..=n` and a hash part, an
//! open-addressing table with linear probing whose slot order is the
//! traversal order (so `next` resumes from any key). Float keys with an
//! integer value are stored as integers (`t[1.0]` is `t[1]`); NaN and nil
//! keys are rejected by the caller. A key set to nil stays as a dead entry
//! until the next rehash, as in lua5.4, so clearing fields during a
//! traversal is allowed.

use crate::value::{float_to_int_exact, StrRef, TableRef, Value};
use std::cell::Cell;

/// A key's identity: its variant and payload bits. Strings are interned
/// and float keys normalized, so equal keys have equal bits.
#[inline(always)]
fn key_bits(k: Value) -> (u8, u64) {
    match k {
        Value::Nil => (0, 0),
        Value::Bool(b) => (1, b as u64),
        Value::Int(i) => (2, i as u64),
        Value::Float(f) => (3, f.to_bits()),
        Value::Str(s) => (STR_TAG, s.0 as u64),
        Value::Table(t) => (5, t.0 as u64),
        Value::Func(f) => (6, f.0 as u64),
        Value::Builtin(b) => (7, b as u64),
        Value::Thread(c) => (8, c.0 as u64),
        Value::Userdata(u) => (9, u.0 as u64),
    }
}

/// The [`key_bits`] tag of strings.
const STR_TAG: u8 = 4;

/// The value a key's identity stands for (the inverse of [`key_bits`]).
fn key_value(tag: u8, bits: u64) -> Value {
    match tag {
        1 => Value::Bool(bits != 0),
        2 => Value::Int(bits as i64),
        3 => Value::Float(f64::from_bits(bits)),
        // (A long key comes back as its bytes' first object.)
        4 => Value::Str(crate::value::StrRef(bits as u32, 0)),
        5 => Value::Table(TableRef(bits as u32)),
        6 => Value::Func(crate::value::FnRef(bits as u32)),
        7 => Value::Builtin(bits as u32),
        8 => Value::Thread(crate::value::CoRef(bits as u32)),
        9 => Value::Userdata(crate::value::UdRef(bits as u32)),
        _ => Value::Nil,
    }
}

/// A hash-part slot: the key's identity (tag 0: empty) and the value.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    bits: u64,
    tag: u8,
    value: Value,
}

impl Slot {
    /// Whether the slot's key is the string `s`.
    #[inline(always)]
    fn holds_str(&self, s: StrRef) -> bool {
        self.tag == STR_TAG && self.bits == s.0 as u64
    }
}

/// The hash part: open addressing with linear probing.
#[derive(Default, Debug)]
pub struct HashPart {
    slots: Vec<Slot>,
    /// Occupied slots (live and dead entries).
    used: usize,
}

impl HashPart {
    fn with_capacity(n: usize) -> Self {
        let mut h = HashPart::default();
        if n > 0 {
            h.slots = vec![Slot::default(); (n * 4 / 3 + 1).next_power_of_two()];
        }
        h
    }

    #[inline(always)]
    fn home(&self, tag: u8, bits: u64) -> usize {
        let h = (bits ^ ((tag as u64) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot holding `k`, if any.
    #[inline(always)]
    fn find(&self, k: Value) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        let (tag, bits) = key_bits(k);
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag, bits);
        loop {
            let s = &self.slots[i];
            if s.bits == bits && s.tag == tag {
                return Some(i);
            }
            if s.tag == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline(always)]
    pub fn get(&self, k: Value) -> Option<Value> {
        self.find(k).map(|i| self.slots[i].value)
    }

    /// The value under the string `s`, trying slot `hint` first and
    /// setting `hint` to where a full probe found it; by reference, so a
    /// hit on the hint costs one bounds check (an index returned from
    /// both paths was checked again after they met).
    #[inline(always)]
    fn get_str_hinted(&self, s: StrRef, hint: &Cell<u32>) -> Option<&Value> {
        let h = hint.get() as usize;
        if self.slots.get(h).is_some_and(|slot| slot.holds_str(s)) {
            return Some(&self.slots[h].value);
        }
        let i = self.find(Value::Str(s))?;
        hint.set(i as u32);
        Some(&self.slots[i].value)
    }

    /// [`HashPart::get_str_hinted`] for writing.
    #[inline(always)]
    fn get_str_hinted_mut(&mut self, s: StrRef, hint: &Cell<u32>) -> Option<&mut Value> {
        let h = hint.get() as usize;
        if self.slots.get(h).is_some_and(|slot| slot.holds_str(s)) {
            return Some(&mut self.slots[h].value);
        }
        let i = self.find(Value::Str(s))?;
        hint.set(i as u32);
        Some(&mut self.slots[i].value)
    }

    fn get_mut(&mut self, k: Value) -> Option<&mut Value> {
        self.find(k).map(|i| &mut self.slots[i].value)
    }

    /// Whether inserting one more key needs a rehash (load factor 3/4).
    fn full(&self) -> bool {
        (self.used + 1) * 4 > self.slots.len() * 3
    }

    /// Inserts a key known to be absent, with room for it.
    fn insert_new(&mut self, k: Value, v: Value) {
        let (tag, bits) = key_bits(k);
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag, bits);
        while self.slots[i].tag != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            bits,
            tag,
            value: v,
        };
        self.used += 1;
    }

    /// Rebuilds with room for `extra` more keys, keeping live entries that
    /// `keep` accepts.
    fn rebuild(&mut self, extra: usize, mut keep: impl FnMut(Value, Value) -> bool) {
        let old = std::mem::take(&mut self.slots);
        let live: Vec<(Value, Value)> = old
            .into_iter()
            .filter(|s| s.tag != 0 && !matches!(s.value, Value::Nil))
            .map(|s| (key_value(s.tag, s.bits), s.value))
            .filter(|&(k, v)| keep(k, v))
            .collect();
        let need = live.len() + extra;
        self.used = 0;
        self.slots = if need == 0 {
            Vec::new()
        } else {
            vec![Slot::default(); (need * 4 / 3 + 1).next_power_of_two().max(4)]
        };
        for (k, v) in live {
            self.insert_new(k, v);
        }
    }

    /// The entry in slot `i` (key, value) if the slot is occupied.
    #[inline]
    fn slot(&self, i: usize) -> Option<(Value, Value)> {
        let s = self.slots[i];
        (s.tag != 0).then(|| (key_value(s.tag, s.bits), s.value))
    }

    /// Makes the entry of `k` (if any) a dead one: its value nil.
    pub fn clear_value(&mut self, k: Value) {
        if let Some(v) = self.get_mut(k) {
            *v = Value::Nil;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Value, Value)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.tag != 0)
            .map(|s| (key_value(s.tag, s.bits), s.value))
    }
}

/// A Lua table.
#[derive(Default, Debug)]
pub struct Table {
    /// `arr[i]` is the value of key `i + 1`.
    pub arr: Vec<Value>,
    pub hash: HashPart,
    pub meta: Option<TableRef>,
    /// What the interpreter learnt about this table as a metatable.
    meta_facts: MetaFacts,
}

/// Facts about a table's metamethod fields that the interpreter looks up
/// on every miss and every new key of the objects it is the metatable of
/// (lua5.4's `flags`): which events are known absent, and the `__index`
/// field when it is a table (a class). Read through `&Table` (hence
/// cells), learnt on lookup, and forgotten on every write to the hash
/// part, so a fact is never stale. Eight bytes: every table carries them.
#[derive(Debug)]
struct MetaFacts {
    /// Bit `e`: the field of event `e` (the interpreter's numbering, below
    /// 32) is known to be nil.
    absent: Cell<u32>,
    /// The table `__index` holds, when known ([`NO_INDEX_TABLE`]: not
    /// known, or not a table).
    index_table: Cell<u32>,
}

/// [`MetaFacts::index_table`] when no table is known.
const NO_INDEX_TABLE: u32 = u32::MAX;

impl Default for MetaFacts {
    fn default() -> Self {
        MetaFacts {
            absent: Cell::new(0),
            index_table: Cell::new(NO_INDEX_TABLE),
        }
    }
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
        Self::with_array(Vec::with_capacity(narr), nhash)
    }

    /// A table whose array part is `arr` (empty, its capacity the room
    /// wanted) with room for `nhash` fields.
    #[inline]
    pub fn with_array(arr: Vec<Value>, nhash: usize) -> Self {
        debug_assert!(arr.is_empty());
        Table {
            arr,
            hash: HashPart::with_capacity(nhash),
            meta: None,
            meta_facts: MetaFacts::default(),
        }
    }

    /// Whether the metamethod field of event number `event` is known to be
    /// nil (see [`MetaFacts`]).
    #[inline(always)]
    pub fn known_absent(&self, event: u32) -> bool {
        self.meta_facts.absent.get() & (1 << event) != 0
    }

    /// Records that the field of event number `event` is nil.
    #[inline]
    pub fn learn_absent(&self, event: u32) {
        let f = &self.meta_facts.absent;
        f.set(f.get() | (1 << event));
    }

    /// The table the `__index` field holds, when it was looked up since
    /// the last write to the hash part and was a table.
    #[inline(always)]
    pub fn known_index_table(&self) -> Option<TableRef> {
        let t = self.meta_facts.index_table.get();
        (t != NO_INDEX_TABLE).then_some(TableRef(t))
    }

    /// Records that the `__index` field holds the table `t`.
    #[inline]
    pub fn learn_index_table(&self, t: TableRef) {
        self.meta_facts.index_table.set(t.0);
    }

    /// Forgets every [`MetaFacts`] entry: the hash part is about to change.
    #[inline(always)]
    fn forget_meta_facts(&mut self) {
        *self.meta_facts.absent.get_mut() = 0;
        *self.meta_facts.index_table.get_mut() = NO_INDEX_TABLE;
    }

    /// Approximate heap bytes owned (for the collector's accounting).
    pub fn size_bytes(&self) -> usize {
        64 + self.arr.capacity() * 16 + self.hash.capacity() * 32
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
        self.hash.get(Value::Int(i)).unwrap_or(Value::Nil)
    }

    /// The item at integer key `i` when it is a non-nil value of the
    /// array part, by reference (copied whole, see
    /// [`Table::get_str_hinted`]).
    #[inline(always)]
    pub fn array_item(&self, i: i64) -> Option<&Value> {
        self.arr
            .get((i as u64).wrapping_sub(1) as usize)
            .filter(|v| !matches!(v, Value::Nil))
    }

    /// The value for a string key (strings are interned: identity lookup).
    #[inline(always)]
    pub fn get_str(&self, k: Value) -> Value {
        if self.hash.is_empty() {
            return Value::Nil;
        }
        self.hash.get(k).unwrap_or(Value::Nil)
    }

    /// [`Table::get_str`] for the string `s`, trying the hash slot `hint`
    /// first (an instruction's inline cache, [`crate::bytecode::Proto`]'s
    /// `slot_hints`) and pointing it at the slot a full probe finds.
    /// Returns the slot's value by reference (a nil one for an absent
    /// key), so the caller copies it to its destination whole: a value
    /// returned by copy was split by LLVM into tag and payload stores
    /// that the next instruction's 16-byte load of the register could
    /// not be forwarded from (a store-forwarding stall per field read).
    #[inline(always)]
    pub fn get_str_hinted(&self, s: StrRef, hint: &Cell<u32>) -> &Value {
        static NIL: Value = Value::Nil;
        self.hash.get_str_hinted(s, hint).unwrap_or(&NIL)
    }

    /// [`Table::replace_field`] for the string `s` with an inline cache
    /// as for [`Table::get_str_hinted`].
    #[inline(always)]
    pub fn replace_field_hinted(&mut self, s: StrRef, v: &Value, hint: &Cell<u32>) -> bool {
        match self.hash.get_str_hinted_mut(s, hint) {
            Some(slot) if !matches!(slot, Value::Nil) => {
                Value::copy_into(slot, v);
                self.forget_meta_facts();
                true
            }
            _ => false,
        }
    }

    /// Stores `v` under the string key `k` if `k` is already present with
    /// a non-nil value (then no `__newindex` applies and nothing grows);
    /// false, storing nothing, otherwise. One probe for `obj.field = v`.
    #[inline(always)]
    pub fn replace_field(&mut self, k: Value, v: Value) -> bool {
        if self.hash.is_empty() {
            return false;
        }
        match self.hash.find(k) {
            Some(i) if !matches!(self.hash.slots[i].value, Value::Nil) => {
                self.forget_meta_facts();
                self.hash.slots[i].value = v;
                true
            }
            _ => false,
        }
    }

    /// The raw store `t[k] = v` for a string key `k` if it needs no
    /// growth of the hash part (the key is present, `v` is nil, or there
    /// is room for one more key); false, storing nothing, otherwise. Same
    /// effect as [`Table::set`] when it returns true.
    #[inline]
    pub fn set_str_without_growth(&mut self, k: Value, v: Value) -> bool {
        debug_assert!(matches!(k, Value::Str(_)));
        self.forget_meta_facts();
        if let Some(slot) = self.hash.get_mut(k) {
            *slot = v;
            return true;
        }
        self.insert_absent_without_growth(k, v)
    }

    /// [`Table::set_str_without_growth`] for the string `s`, finding a
    /// present slot through `hint` first (as [`Table::get_str_hinted`]).
    #[inline]
    pub fn set_str_without_growth_hinted(&mut self, s: StrRef, v: Value, hint: &Cell<u32>) -> bool {
        self.forget_meta_facts();
        if let Some(slot) = self.hash.get_str_hinted_mut(s, hint) {
            *slot = v;
            return true;
        }
        self.insert_absent_without_growth(Value::Str(s), v)
    }

    /// The rest of a store without growth once key `k` is known absent
    /// from the hash part: nil stores nothing; any other value goes in a
    /// free slot, or false if there is none.
    #[inline(always)]
    fn insert_absent_without_growth(&mut self, k: Value, v: Value) -> bool {
        if matches!(v, Value::Nil) {
            return true;
        }
        if self.hash.slots.is_empty() || self.hash.full() {
            return false;
        }
        self.hash.insert_new(k, v);
        true
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

    /// A table constructor's positional item `i` (`SetList`): like
    /// [`Table::set_int`], but a nil that continues the array part is
    /// stored there too, as lua5.4 sizes a constructor's array part to its
    /// items: `#{nil, 2}` is 2 there, a border at the array's end.
    pub fn set_list_item(&mut self, i: i64, v: Value) {
        if (i as u64).wrapping_sub(1) == self.arr.len() as u64 && matches!(v, Value::Nil) {
            if !self.hash.is_empty() {
                self.remove_hash(Value::Int(i));
            }
            self.arr.push(v);
        } else {
            self.set_int(i, v);
        }
    }

    fn remove_hash(&mut self, k: Value) {
        if let Some(slot) = self.hash.get_mut(k) {
            *slot = Value::Nil;
            self.forget_meta_facts();
        }
    }

    /// Moves keys `len+1, len+2, …` from the hash part to the array part.
    fn migrate(&mut self) {
        loop {
            let next = Value::Int(self.arr.len() as i64 + 1);
            match self.hash.get(next) {
                Some(v) if !matches!(v, Value::Nil) => {
                    self.arr.push(v);
                    self.remove_hash(next);
                }
                _ => return,
            }
        }
    }

    fn set_hash(&mut self, k: Value, v: Value) {
        self.forget_meta_facts();
        if let Some(slot) = self.hash.get_mut(k) {
            *slot = v;
            return;
        }
        if matches!(v, Value::Nil) {
            return;
        }
        if self.hash.full() {
            // Like lua5.4's rehash: move integer keys to the array part if
            // it would be more than half full, drop dead entries, resize.
            self.rehash(k);
            if let Value::Int(i) = k {
                if (i as u64).wrapping_sub(1) < self.arr.len() as u64 {
                    self.arr[(i - 1) as usize] = v;
                    return;
                }
            }
        }
        self.hash.insert_new(k, v);
    }

    /// Resizes the array part to the largest power of two `n` such that
    /// more than `n/2` of the keys `1..=n` are present (counting `extra`);
    /// then rebuilds the hash part with room for one more key.
    fn rehash(&mut self, extra: Value) {
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
        for (k, v) in self.hash.iter() {
            if let (Value::Int(i), false) = (k, matches!(v, Value::Nil)) {
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
        if optimal > self.arr.len() {
            self.arr.resize(optimal, Value::Nil);
            let arr = &mut self.arr;
            self.hash.rebuild(1, |k, v| {
                if let Value::Int(i) = k {
                    if i >= 1 && (i as u64) <= optimal as u64 {
                        arr[(i - 1) as usize] = v;
                        return false;
                    }
                }
                true
            });
        } else {
            let grow = self.hash.capacity().max(4);
            self.hash.rebuild(grow.max(1), |_, _| true);
        }
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
        // lua5.4 compares `next`'s key with the stored ones by exact type,
        // and a float with an integer value is always stored as that
        // integer: `next(t, 1.0)` is an invalid key there.
        if let Value::Float(f) = k {
            if float_to_int_exact(f).is_some() {
                return Err(());
            }
        }
        let k = norm_key(k);
        let (arr_from, hash_from) = match k {
            Value::Nil => (0, 0),
            Value::Int(i) if i >= 1 && (i as u64) <= self.arr.len() as u64 => (i as usize, 0),
            _ => (usize::MAX, self.hash.find(k).ok_or(())? + 1),
        };
        if arr_from != usize::MAX {
            for i in arr_from..self.arr.len() {
                if !matches!(self.arr[i], Value::Nil) {
                    return Ok(Some((Value::Int(i as i64 + 1), self.arr[i])));
                }
            }
        }
        for i in hash_from..self.hash.capacity() {
            if let Some((k, v)) = self.hash.slot(i) {
                if !matches!(v, Value::Nil) {
                    return Ok(Some((k, v)));
                }
            }
        }
        Ok(None)
    }

    /// Every value and the key of every live entry (for the collector's
    /// marking). A dead entry's key is not kept alive, as in lua5.4: the
    /// collector may free it (a weak table clears entries so), and the
    /// entry, value nil, is only a place a traversal goes through.
    pub fn for_each_ref(&self, mut f: impl FnMut(Value)) {
        for &v in &self.arr {
            f(v);
        }
        for (k, v) in self.hash.iter() {
            if !matches!(v, Value::Nil) {
                f(k);
                f(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_stores_without_growth_refuse_only_when_full() {
        let key = |i: u32| Value::Str(crate::value::StrRef(i, 0));
        let mut t = Table::default();
        assert!(
            !t.set_str_without_growth(key(1), Value::Int(1)),
            "no hash part yet: a store must grow it"
        );
        assert!(
            t.set_str_without_growth(key(1), Value::Nil),
            "a nil store of an absent key"
        );
        let mut t = Table::with_capacity(0, 3);
        let cap = t.hash.capacity();
        let mut stored = 0;
        for i in 0..64 {
            if !t.set_str_without_growth(key(i), Value::Int(i as i64)) {
                break;
            }
            stored += 1;
        }
        assert_eq!(t.hash.capacity(), cap, "never grows");
        assert!((3..64).contains(&stored), "stores until full: {stored}");
        for i in 0..stored {
            assert!(matches!(t.get_str(key(i)), Value::Int(n) if n == i as i64));
        }
        // A present key (even set to nil) is stored in place when full.
        assert!(t.set_str_without_growth(key(0), Value::Nil));
        assert!(t.set_str_without_growth(key(0), Value::Int(7)));
        assert!(matches!(t.get_str(key(0)), Value::Int(7)));
    }

    #[test]
    fn hinted_lookups_agree_with_plain_ones_whatever_the_hint() {
        let s = |i: u32| crate::value::StrRef(i, 0);
        let mut t = Table::default();
        let hint = Cell::new(0);
        assert!(
            matches!(t.get_str_hinted(s(1), &hint), Value::Nil),
            "empty table"
        );
        assert!(!t.replace_field_hinted(s(1), &Value::Int(1), &hint));
        for i in 0..40 {
            t.set(Value::Str(s(i)), Value::Int(i as i64));
        }
        for i in 0..48 {
            // A stale hint (another key's slot, or out of range) is only
            // a slower lookup; a hit leaves the hint at the key's slot.
            for start in [0, 7, 1000] {
                let hint = Cell::new(start);
                let v = *t.get_str_hinted(s(i), &hint);
                assert!(v.raw_eq(t.get_str(Value::Str(s(i)))), "key {i}");
                if i < 40 {
                    let again = hint.get();
                    assert!(
                        matches!(*t.get_str_hinted(s(i), &hint), Value::Int(n) if n == i as i64)
                    );
                    assert_eq!(hint.get(), again, "a hit keeps the hint");
                }
            }
        }
        // Stores through a hint: present keys only, and they forget the
        // metatable facts like every other write.
        t.learn_absent(3);
        let hint = Cell::new(1000);
        assert!(t.replace_field_hinted(s(5), &Value::Int(-5), &hint));
        assert!(!t.known_absent(3));
        assert!(matches!(t.get_str(Value::Str(s(5))), Value::Int(-5)));
        assert!(
            !t.replace_field_hinted(s(99), &Value::Int(1), &hint),
            "absent key"
        );
        t.set(Value::Str(s(6)), Value::Nil);
        assert!(
            !t.replace_field_hinted(s(6), &Value::Int(1), &hint),
            "dead key"
        );
    }

    #[test]
    fn hinted_stores_without_growth_agree_with_plain_ones() {
        let s = |i: u32| crate::value::StrRef(i, 0);
        let mut plain = Table::with_capacity(0, 3);
        let mut hinted = Table::with_capacity(0, 3);
        let hint = Cell::new(0);
        // New keys until full, a dead key revived, a nil store of an
        // absent key, each with stale and fresh hints.
        for (i, v) in [
            (1, 1),
            (2, 2),
            (1, 0),
            (1, 3),
            (9, 0),
            (3, 4),
            (4, 5),
            (5, 6),
        ] {
            let v = if v == 0 { Value::Nil } else { Value::Int(v) };
            hint.set(if i % 2 == 0 { 1000 } else { hint.get() });
            let a = plain.set_str_without_growth(Value::Str(s(i)), v);
            let b = hinted.set_str_without_growth_hinted(s(i), v, &hint);
            assert_eq!(a, b, "key {i}");
            for k in 0..10 {
                let k = Value::Str(s(k));
                assert!(plain.get_str(k).raw_eq(hinted.get_str(k)));
            }
        }
        assert!(matches!(hinted.get_str(Value::Str(s(1))), Value::Int(3)));
        hinted.learn_absent(2);
        assert!(hinted.set_str_without_growth_hinted(s(1), Value::Int(8), &hint));
        assert!(!hinted.known_absent(2), "a store forgets the facts");
    }

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

    #[test]
    fn metamethod_facts_are_forgotten_on_writes() {
        let key = Value::Str(crate::value::StrRef(7, 0));
        let mut t = Table::default();
        assert!(t.known_index_table().is_none());
        t.learn_absent(3);
        t.learn_index_table(TableRef(5));
        assert!(t.known_absent(3) && !t.known_absent(4));
        assert_eq!(t.known_index_table(), Some(TableRef(5)));
        t.set(key, Value::Int(1));
        assert!(
            !t.known_absent(3) && t.known_index_table().is_none(),
            "a new key"
        );
        t.learn_absent(3);
        t.learn_index_table(TableRef(5));
        assert!(t.replace_field(key, Value::Int(2)));
        assert!(
            !t.known_absent(3) && t.known_index_table().is_none(),
            "a store"
        );
        t.learn_absent(3);
        t.set(key, Value::Nil);
        assert!(!t.known_absent(3), "a removal");
        t.learn_absent(3);
        t.set_int(1, Value::Int(5));
        assert!(t.known_absent(3), "the array part holds no metamethods");
        assert!(
            std::mem::size_of::<Table>() <= 72,
            "every table carries the facts: keep them small"
        );
    }
}
