//! Symbolic values of the pickle machine.
//!
//! The machine keeps just enough of each value to resolve globals, follow calls and let loaders
//! (torch, joblib) read their own metadata: small scalars exactly, strings and bytes as a bounded
//! prefix plus their full length, containers as their first few items. Mutable containers and
//! call results live in a heap so that BUILD, SETITEM and APPEND see the same object the memo
//! holds.

use std::rc::Rc;

/// [`Limits::PICKLE_CONTAINER_ITEMS_KEPT`](crate::Limits::PICKLE_CONTAINER_ITEMS_KEPT)
pub(crate) const CONTAINER_KEEP: usize = crate::limits::Limits::PICKLE_CONTAINER_ITEMS_KEPT;
/// [`Limits::PICKLE_TEXT_KEPT`](crate::Limits::PICKLE_TEXT_KEPT)
pub(crate) const TEXT_KEEP: usize = crate::limits::Limits::PICKLE_TEXT_KEPT;
/// [`Limits::PICKLE_BYTES_KEPT`](crate::Limits::PICKLE_BYTES_KEPT)
pub(crate) const BLOB_KEEP: usize = crate::limits::Limits::PICKLE_BYTES_KEPT;
/// [`Limits::PICKLE_TUPLE_DEPTH`](crate::Limits::PICKLE_TUPLE_DEPTH)
pub(crate) const TUPLE_DEPTH: u32 = crate::limits::Limits::PICKLE_TUPLE_DEPTH;

/// A string value: a bounded prefix and the full length in bytes (UTF-8).
#[derive(Debug)]
pub(crate) struct Text {
    pub(crate) text: Box<str>,
    pub(crate) len: u64,
}

impl Text {
    pub(crate) fn is_complete(&self) -> bool {
        self.text.len() as u64 == self.len
    }
}

/// A bytes value: a bounded prefix and the full length.
#[derive(Debug)]
pub(crate) struct Blob {
    pub(crate) prefix: Box<[u8]>,
    pub(crate) len: u64,
    /// Index of the child node the bytes were scanned as, if they looked like a model file.
    pub(crate) embedded: Option<usize>,
}

/// A tuple: its first [`CONTAINER_KEEP`] items, and how deeply tuples nest in it (1 for a
/// tuple of no tuples).
#[derive(Debug)]
pub(crate) struct Tuple {
    pub(crate) items: Box<[Value]>,
    pub(crate) depth: u32,
}

impl Tuple {
    /// A tuple of `items` (the first [`CONTAINER_KEEP`]); items nested [`TUPLE_DEPTH`] deep
    /// already are replaced by [`Value::Unknown`].
    pub(crate) fn value(mut items: Vec<Value>) -> Value {
        items.truncate(CONTAINER_KEEP);
        let mut depth = 1;
        for item in &mut items {
            let d = item.tuple_depth();
            if d >= TUPLE_DEPTH {
                *item = Value::Unknown("tuples nested too deeply");
            } else {
                depth = depth.max(d + 1);
            }
        }
        Value::Tuple(Rc::new(Tuple { items: items.into(), depth }))
    }
}

/// Longest string kept inline in a [`Value`] (no allocation).
pub(crate) const SHORT_MAX: usize = 22;

/// A complete string of at most [`SHORT_MAX`] bytes, held inline.
#[derive(Clone, Copy)]
pub(crate) struct Short {
    len: u8,
    bytes: [u8; SHORT_MAX],
}

impl Short {
    pub(crate) fn new(s: &str) -> Option<Short> {
        if s.len() > SHORT_MAX {
            return None;
        }
        let mut bytes = [0u8; SHORT_MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Short { len: s.len() as u8, bytes })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Built only from a `&str` in `new`.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What kind of container a [`Value::Container`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    List,
    Dict,
    Set,
    FrozenSet,
}

/// The id of a container whose contents are no longer kept (see `Containers` in vm.rs).
pub(crate) const FORGOTTEN: u32 = u32::MAX;

/// A value on the stack or in the memo.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for `i64`, kept as little-endian two's-complement bytes when short.
    BigInt(Option<Rc<[u8]>>),
    Float(f64),
    /// A complete short string, inline.
    Short(Short),
    Str(Rc<Text>),
    Bytes(Rc<Blob>),
    Tuple(Rc<Tuple>),
    /// A call result (an object) in the heap.
    Heap(u32),
    /// A list, dict or set: its kind, and its id among containers ([`FORGOTTEN`] once its
    /// contents are no longer kept).
    Container(Kind, u32),
    /// A global resolved by GLOBAL/INST/STACK_GLOBAL: index into the inventory's globals.
    Global(u32),
    /// Something the machine cannot know statically (the reason says why).
    Unknown(&'static str),
}

impl Value {
    pub(crate) fn str(s: &str) -> Value {
        match Short::new(s) {
            Some(short) => Value::Short(short),
            None => Value::Str(Rc::new(Text { text: s.into(), len: s.len() as u64 })),
        }
    }

    /// The string, when it is a complete `str`.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Short(s) => Some(s.as_str()),
            Value::Str(t) if t.is_complete() => Some(&t.text),
            _ => None,
        }
    }

    /// True for data that can never name code, be called with effect or hold an embedded
    /// stream: scalars, strings, bytes without an embedded file, and tuples of such. Only these
    /// may be forgotten when the memo outgrows its retention budget.
    pub(crate) fn is_plain(&self) -> bool {
        match self {
            Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::BigInt(_)
            | Value::Float(_)
            | Value::Short(_)
            | Value::Str(_) => true,
            Value::Bytes(b) => b.embedded.is_none(),
            Value::Tuple(t) => t.depth <= 2 && t.items.iter().all(Value::is_plain),
            Value::Container(..) => true,
            Value::Heap(_) | Value::Global(_) | Value::Unknown(_) => false,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    pub(crate) fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(t) => Some(&t.items),
            _ => None,
        }
    }

    /// How deeply tuples nest in this value (0 when it is not a tuple).
    pub(crate) fn tuple_depth(&self) -> u32 {
        match self {
            Value::Tuple(t) => t.depth,
            _ => 0,
        }
    }
}

fn key_bit(k: &str) -> u64 {
    // FNV-1a over the key's bytes; the top six bits pick the bit.
    let h =
        k.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    1 << (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// What kind of heap object.
#[derive(Debug)]
pub(crate) enum Obj {
    List {
        items: Vec<Value>,
        dropped: u64,
    },
    Dict {
        items: Vec<(Value, Value)>,
        dropped: u64,
        /// See [`Obj::set_item`].
        keys: u64,
        /// See [`Obj::set_item`].
        index: Option<std::collections::HashMap<Box<str>, usize>>,
    },
    Set {
        items: Vec<Value>,
        dropped: u64,
        frozen: bool,
    },
    /// The result of a call (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST), a persistent load or an
    /// extension lookup.
    Instance {
        callee: Value,
        args: Value,
        opcode: &'static str,
        offset: u64,
        state: Option<Value>,
    },
}

impl Obj {
    /// Adds an item; true when it is kept (not only counted).
    pub(crate) fn push_item(&mut self, value: Value) -> bool {
        match self {
            Obj::List { items, dropped } | Obj::Set { items, dropped, .. } => {
                if items.len() < CONTAINER_KEEP {
                    items.push(value);
                    return true;
                }
                *dropped += 1;
            }
            Obj::Dict { .. } | Obj::Instance { .. } => {}
        }
        false
    }

    /// Sets a dict item; true when a new item is kept.
    pub(crate) fn set_item(&mut self, key: Value, value: Value) -> bool {
        if let Obj::Dict { items, dropped, keys, index } = self {
            // `keys` has a bit set per kept string key (a hash of it), so that the
            // search for an overwritten key, needed only when the bit is set, is skipped for the
            // thousands of new keys SETITEMS adds to a large dict.
            // Once the dict holds CONTAINER_KEEP items the bits are all but full: a key index
            // built once then answers for the rest (a vocabulary adds a million keys).
            let k = key.as_str();
            let bit = k.map_or(0, key_bit);
            if let Some(k) = k
                && *keys & bit != 0
            {
                let found = match index {
                    Some(index) => index.get(k).copied(),
                    None => items.iter().position(|(existing, _)| existing.as_str() == Some(k)),
                };
                if let Some(i) = found {
                    items[i].1 = value;
                    return false;
                }
            }
            if items.len() < CONTAINER_KEEP {
                *keys |= bit;
                items.push((key, value));
                if items.len() == CONTAINER_KEEP {
                    let map = items
                        .iter()
                        .enumerate()
                        .rev()
                        .filter_map(|(i, (k, _))| Some((Box::<str>::from(k.as_str()?), i)))
                        .collect();
                    *index = Some(map);
                }
                return true;
            }
            *dropped += 1;
        }
        false
    }
}
