//! The pickle memo in a few bytes per entry.
//!
//! CPython's unpickler memoizes nearly every value it builds (protocol 4 writes MEMOIZE after
//! each string, tuple, list, dict and object), so a pickled list of two million dicts has four
//! million memo entries. Keeping a full [`Value`] for each cost hundreds of bytes an entry; here
//! an entry is a 4-byte slot:
//!
//! - `None`, `True`, `False`, small non-negative integers, globals and call results are encoded in
//!   the slot itself and never forgotten (globals and objects are what the verdict is about);
//! - any other value is kept in full in a side table. Plain data ([`Value::is_plain`]: scalars,
//!   strings, bytes without an embedded file, containers, tuples of such) is kept there only
//!   while it is among the most recent [`RETAIN_ENTRIES`] such entries (and [`RETAIN_BYTES`] of
//!   text); older plain entries shrink to a tag saying what kind of value they were. A string
//!   that has been a STACK_GLOBAL operand (a module or class name the pickler may refer back to
//!   with BINGET) is never forgotten.
//!
//! A forgotten string read back with GET is unknown: if it is then used as a STACK_GLOBAL operand
//! the global is unresolved, a finding, not a silent pass. docs/performance.md has the figures.

use super::value::{FORGOTTEN, Kind, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// [`Limits::PICKLE_MEMO_RETAIN_ENTRIES`](crate::Limits::PICKLE_MEMO_RETAIN_ENTRIES)
pub(crate) const RETAIN_ENTRIES: usize = crate::limits::Limits::PICKLE_MEMO_RETAIN_ENTRIES;
/// [`Limits::PICKLE_MEMO_RETAIN_BYTES`](crate::Limits::PICKLE_MEMO_RETAIN_BYTES)
pub(crate) const RETAIN_BYTES: usize = crate::limits::Limits::PICKLE_MEMO_RETAIN_BYTES;
/// Keys this far beyond the dense part go to the sparse map (PUT may name any key).
const DENSE_GAP: u64 = 1 << 16;
const SPARSE_MAX: usize = crate::limits::Limits::PICKLE_MEMO_SPARSE;

const EMPTY: u32 = 0;
const NONE: u32 = 1;
const FALSE: u32 = 2;
const TRUE: u32 = 3;
const STR: u32 = 4;
const BYTES: u32 = 5;
const NUMBER: u32 = 6;
const TUPLE: u32 = 7;
const LIST: u32 = 8;
const DICT: u32 = 9;
const SET: u32 = 10;
const FROZENSET: u32 = 11;
/// Slots `INT_BASE..TAG` are the integers `0..TAG - INT_BASE`.
const INT_BASE: u32 = 16;
const TAG: u32 = 3 << 30;
const TAG_GLOBAL: u32 = 1 << 30;
const TAG_HEAP: u32 = 2 << 30;
const TAG_FULL: u32 = 3 << 30;
const INDEX: u32 = (1 << 30) - 1;

/// Why [`Memo::put`] did not store an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The memo holds `limit` entries already.
    Limit,
}

#[derive(Default)]
pub(crate) struct Memo {
    dense: Vec<u32>,
    sparse: HashMap<u64, u32>,
    /// Distinct keys written (MEMOIZE's key is this count, as CPython's `len(self.memo)`).
    count: usize,
    full: Vec<Value>,
    free: Vec<u32>,
    /// Keys of plain entries kept in full, oldest first.
    recent: VecDeque<u64>,
    recent_bytes: usize,
    /// STACK_GLOBAL operands: never forgotten.
    names: HashSet<Box<str>>,
    limit: usize,
}

fn text_cost(v: &Value) -> usize {
    match v {
        Value::Str(t) => t.text.len(),
        Value::Bytes(b) => b.prefix.len(),
        Value::Tuple(t) => t.items.iter().map(text_cost).sum(),
        _ => 0,
    }
}

fn forgotten_code(v: &Value) -> u32 {
    match v {
        Value::None => NONE,
        Value::Bool(false) => FALSE,
        Value::Bool(true) => TRUE,
        Value::Int(_) | Value::BigInt(_) | Value::Float(_) => NUMBER,
        Value::Short(_) | Value::Str(_) => STR,
        Value::Bytes(_) => BYTES,
        Value::Container(Kind::List, _) => LIST,
        Value::Container(Kind::Dict, _) => DICT,
        Value::Container(Kind::Set, _) => SET,
        Value::Container(Kind::FrozenSet, _) => FROZENSET,
        _ => TUPLE,
    }
}

impl Memo {
    pub(crate) fn new(limit: usize) -> Memo {
        Memo { limit, ..Memo::default() }
    }

    /// Distinct keys written.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    #[inline]
    fn slot(&self, key: u64) -> u32 {
        match usize::try_from(key).ok().and_then(|k| self.dense.get(k)) {
            Some(&s) => s,
            None => self.sparse.get(&key).copied().unwrap_or(EMPTY),
        }
    }

    fn slot_mut(&mut self, key: u64) -> Option<&mut u32> {
        if key < self.dense.len() as u64 + DENSE_GAP && !self.sparse.contains_key(&key) {
            let k = key as usize;
            if k >= self.dense.len() {
                self.dense.resize(k + 1, EMPTY);
            }
            return Some(&mut self.dense[k]);
        }
        if !self.sparse.contains_key(&key) && self.sparse.len() >= SPARSE_MAX {
            return None;
        }
        Some(self.sparse.entry(key).or_insert(EMPTY))
    }

    /// Marks a string as a STACK_GLOBAL operand.
    pub(crate) fn pin_name(&mut self, name: &str) {
        if !self.names.contains(name) {
            self.names.insert(name.into());
        }
    }

    pub(crate) fn put(&mut self, key: u64, v: Value) -> Result<(), Full> {
        let old = self.slot(key);
        if old == EMPTY && self.count >= self.limit {
            return Err(Full::Limit);
        }
        let code = match &v {
            Value::None => NONE,
            Value::Bool(false) => FALSE,
            Value::Bool(true) => TRUE,
            Value::Int(i) if (0..i64::from(TAG - INT_BASE)).contains(i) => INT_BASE + *i as u32,
            Value::Global(g) if *g <= INDEX => TAG_GLOBAL | *g,
            Value::Heap(h) if *h <= INDEX => TAG_HEAP | *h,
            _ => EMPTY,
        };
        let Some(slot) = self.slot_mut(key) else {
            return Err(Full::Limit);
        };
        let old = std::mem::replace(slot, code);
        if old == EMPTY {
            self.count += 1;
        } else if old & TAG == TAG_FULL {
            let i = old & INDEX;
            self.recent_bytes = self.recent_bytes.saturating_sub(text_cost(&self.full[i as usize]));
            self.full[i as usize] = Value::None;
            self.free.push(i);
        }
        if code != EMPTY {
            return Ok(());
        }
        let plain = v.is_plain();
        if plain {
            self.recent_bytes += text_cost(&v);
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.full[i as usize] = v;
                i
            }
            None => {
                self.full.push(v);
                (self.full.len() - 1) as u32
            }
        };
        if let Some(slot) = self.slot_mut(key) {
            *slot = TAG_FULL | i;
        }
        if plain {
            self.recent.push_back(key);
            self.forget_old();
        }
        Ok(())
    }

    fn forget_old(&mut self) {
        while self.recent.len() > RETAIN_ENTRIES || self.recent_bytes > RETAIN_BYTES {
            let Some(key) = self.recent.pop_front() else { break };
            let slot = self.slot(key);
            if slot & TAG != TAG_FULL {
                continue;
            }
            let i = slot & INDEX;
            let v = &self.full[i as usize];
            if !v.is_plain() {
                continue;
            }
            if let Some(s) = v.as_str()
                && self.names.contains(s)
            {
                continue;
            }
            let code = forgotten_code(v);
            self.recent_bytes = self.recent_bytes.saturating_sub(text_cost(v));
            self.full[i as usize] = Value::None;
            self.free.push(i);
            if let Some(s) = self.slot_mut(key) {
                *s = code;
            }
        }
    }

    /// The value under `key`, or `None` when the key was never written.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<Value> {
        let slot = self.slot(key);
        Some(match slot {
            EMPTY => return None,
            NONE => Value::None,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            STR => Value::Unknown("a string the memo no longer keeps (docs/performance.md)"),
            BYTES => Value::Unknown("bytes the memo no longer keeps (docs/performance.md)"),
            NUMBER => Value::Unknown("a number the memo no longer keeps (docs/performance.md)"),
            TUPLE => Value::Unknown("a tuple the memo no longer keeps (docs/performance.md)"),
            LIST => Value::Container(Kind::List, FORGOTTEN),
            DICT => Value::Container(Kind::Dict, FORGOTTEN),
            SET => Value::Container(Kind::Set, FORGOTTEN),
            FROZENSET => Value::Container(Kind::FrozenSet, FORGOTTEN),
            s if s & TAG == TAG_GLOBAL => Value::Global(s & INDEX),
            s if s & TAG == TAG_HEAP => Value::Heap(s & INDEX),
            s if s & TAG == TAG_FULL => self.full[(s & INDEX) as usize].clone(),
            s => Value::Int(i64::from(s - INT_BASE)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_old_plain_ones_shrink_to_their_kind() {
        let mut m = Memo::new(1 << 24);
        m.put(0, Value::str("os")).unwrap();
        m.pin_name("os");
        m.put(1, Value::Global(7)).unwrap();
        m.put(2, Value::Int(5)).unwrap();
        m.put(3, Value::Int(-5)).unwrap();
        m.put(4, Value::Container(Kind::Dict, 3)).unwrap();
        for k in 5..(5 + RETAIN_ENTRIES as u64 + 10) {
            m.put(k, Value::str("x")).unwrap();
        }
        assert_eq!(m.get(0).and_then(|v| v.as_str().map(str::to_string)).as_deref(), Some("os"));
        assert!(matches!(m.get(1), Some(Value::Global(7))));
        assert!(matches!(m.get(2), Some(Value::Int(5))));
        assert!(matches!(m.get(3), Some(Value::Unknown(_))), "-5 was plain and is forgotten");
        assert!(matches!(m.get(4), Some(Value::Container(Kind::Dict, FORGOTTEN))));
        assert!(matches!(m.get(5), Some(Value::Unknown(_))));
        assert!(m.get(5 + RETAIN_ENTRIES as u64).and_then(|v| v.as_str().map(str::to_string)).is_some());
        assert!(m.get(1 << 40).is_none());
        assert_eq!(m.len(), 5 + RETAIN_ENTRIES + 10);
        assert!(m.full.len() <= RETAIN_ENTRIES + 2);
    }

    #[test]
    fn the_limit_counts_distinct_keys_and_sparse_keys_work() {
        let mut m = Memo::new(2);
        m.put(1 << 40, Value::Int(1)).unwrap();
        m.put(1 << 40, Value::Int(2)).unwrap();
        m.put(3, Value::Int(3)).unwrap();
        assert_eq!(m.put(4, Value::Int(4)), Err(Full::Limit));
        assert!(matches!(m.get(1 << 40), Some(Value::Int(2))));
        assert!(m.get(4).is_none());
    }
}
