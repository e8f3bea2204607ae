//! MessagePack documents: Flax weights (`flax.serialization.to_bytes`, `msgpack_serialize`) and
//! spaCy pipeline files (`srsly.msgpack_dumps`: `vocab/strings`, `tokenizer`, component models).
//! Loading them runs no code: MessagePack has no way to name a Python object (Flax's and
//! msgpack-numpy's extension types carry array shapes, dtypes and bytes), so a benign document
//! is recorded as what it is instead of as unrecognised binary data.
//!
//! MessagePack has no magic number, and a few bytes of anything parse as some MessagePack value,
//! so recognition is strict and looks at the whole stream: exactly one top-level map with at
//! least one entry and keys that are strings, byte strings or integers, every length inside the
//! stream, every string valid UTF-8, no reserved byte (0xc1), nesting within
//! [`Limits::MSGPACK_DEPTH`](crate::Limits::MSGPACK_DEPTH), and the map ending at the last byte. Byte strings and extension
//! payloads are skipped by offset, so a large weights file is checked by reading its headers
//! only; the walk is bounded by [`Limits::MSGPACK_ITEMS`](crate::Limits::MSGPACK_ITEMS) values,
//! [`Limits::MSGPACK_TEXT_BYTES`](crate::Limits::MSGPACK_TEXT_BYTES) of string bytes and [`Limits::MSGPACK_READS`](crate::Limits::MSGPACK_READS) reads. A stream
//! the walk cannot finish within them, or without random access to all of it, is not
//! recognised (and stays unrecognised binary, which the policy fails closed on).
//!
//! The rule comes after every other rule of the registry, so it only ever recognises what was
//! unrecognised binary before; the driver still searches every byte for pickle import forms, as
//! it does for unrecognised data (docs/formats.md, "Recognition").

use crate::driver::{Driver, Probe, Rest};
use crate::inventory::{Format, Node};
use crate::limits::Limits;
use crate::stream::{Stream, Window};

/// Bytes fetched per read of the window (small: after a skipped byte string only the next
/// headers are needed).
const CHUNK: usize = 16 << 10;

/// The sniff rule (registered in crate::registry).
pub(crate) fn sniff(p: &Probe<'_>, _ctx: &mut dyn Driver) -> Option<Format> {
    if !matches!(p.head.first(), Some(0x81..=0x8f | 0xde | 0xdf)) {
        return None;
    }
    // The whole stream: through random access, or the head when it is all of it.
    let whole = match p.window {
        Some(w) if p.total.is_none_or(|t| t == w.len()) => w,
        _ if p.head.len() < Limits::PEEK && p.total.is_none_or(|t| t == p.head.len() as u64) => {
            Window::from_slice(p.head)
        }
        _ => return None,
    };
    is_document(whole).then_some(Format::Msgpack)
}

/// The parser: recognition already checked the structure; the bytes are drained (and searched
/// for pickle import forms by the driver).
pub(crate) fn scan(_s: &mut Stream<'_>, _ctx: &mut dyn Driver, _node: &mut Node) -> Rest {
    Rest::Drain
}

/// True when `w` holds exactly one MessagePack map, by the rules in the module documentation.
pub(crate) fn is_document(w: Window<'_>) -> bool {
    let mut c = Cursor { w, pos: 0, buf: Vec::new(), buf_at: 0, reads: 0, text: 0 };
    let Some(first) = c.byte() else {
        return false;
    };
    let entries = match first {
        0x81..=0x8f => u64::from(first & 0x0f),
        0xde => c.uint(2).unwrap_or(0),
        0xdf => c.uint(4).unwrap_or(0),
        _ => return false,
    };
    if entries == 0 || walk(&mut c, entries).is_none() {
        return false;
    }
    c.pos == w.len()
}

/// What is still to read at one nesting level: values of an array, or keys and values of a map.
struct Level {
    left: u64,
    map: bool,
    /// For a map: the next value read is a key.
    key_next: bool,
}

/// Walks the entries of the top-level map; `None` on anything not strictly MessagePack.
fn walk(c: &mut Cursor<'_>, entries: u64) -> Option<()> {
    let mut stack = vec![Level { left: entries.checked_mul(2)?, map: true, key_next: true }];
    let mut items = 0usize;
    while let Some(top) = stack.last_mut() {
        if top.left == 0 {
            stack.pop();
            continue;
        }
        top.left -= 1;
        let is_key = top.map && top.key_next;
        if top.map {
            top.key_next = !top.key_next;
        }
        items += 1;
        if items > Limits::MSGPACK_ITEMS {
            return None;
        }
        let b = c.byte()?;
        let container = match b {
            0x00..=0x7f | 0xe0..=0xff => None,
            0x80..=0x8f => Some((u64::from(b & 0x0f), true)),
            0x90..=0x9f => Some((u64::from(b & 0x0f), false)),
            0xa0..=0xbf => {
                c.text(u64::from(b & 0x1f))?;
                None
            }
            0xc0 | 0xc2 | 0xc3 => None,
            0xc1 => return None,
            0xc4..=0xc6 => {
                let n = c.uint(1 << (b - 0xc4))?;
                c.skip(n)?;
                None
            }
            0xc7..=0xc9 => {
                let n = c.uint(1 << (b - 0xc7))?;
                c.skip(n.checked_add(1)?)?;
                None
            }
            0xca => c.skip(4).map(|_| None)?,
            0xcb => c.skip(8).map(|_| None)?,
            0xcc..=0xcf => c.skip(1 << (b - 0xcc)).map(|_| None)?,
            0xd0..=0xd3 => c.skip(1 << (b - 0xd0)).map(|_| None)?,
            0xd4..=0xd8 => c.skip(1 + (1 << (b - 0xd4))).map(|_| None)?,
            0xd9..=0xdb => {
                let n = c.uint(1 << (b - 0xd9))?;
                c.text(n)?;
                None
            }
            0xdc | 0xdd => Some((c.uint(if b == 0xdc { 2 } else { 4 })?, false)),
            0xde | 0xdf => Some((c.uint(if b == 0xde { 2 } else { 4 })?, true)),
        };
        // Keys are strings, byte strings or integers (Flax and spaCy write strings;
        // msgpack-numpy writes byte strings).
        if is_key
            && !matches!(b, 0x00..=0x7f | 0xe0..=0xff | 0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6 | 0xcc..=0xd3)
        {
            return None;
        }
        if let Some((n, map)) = container {
            if stack.len() >= Limits::MSGPACK_DEPTH {
                return None;
            }
            let left = if map { n.checked_mul(2)? } else { n };
            // Every value takes at least a byte: a count beyond the bytes left is a lie.
            if left > c.w.len().saturating_sub(c.pos) {
                return None;
            }
            stack.push(Level { left, map, key_next: true });
        }
    }
    Some(())
}

/// A forward reader over a window, fetching it in chunks.
struct Cursor<'w> {
    w: Window<'w>,
    pos: u64,
    buf: Vec<u8>,
    buf_at: u64,
    reads: usize,
    text: u64,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8];
        self.read(&mut b)?;
        Some(b[0])
    }

    /// A big-endian unsigned integer of `n` bytes.
    fn uint(&mut self, n: usize) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(&mut b[8 - n..])?;
        Some(u64::from_be_bytes(b))
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.w.len()).then(|| self.pos = end)
    }

    /// A string of `n` bytes, which must be UTF-8.
    fn text(&mut self, n: u64) -> Option<()> {
        self.text = self.text.checked_add(n)?;
        if self.text > Limits::MSGPACK_TEXT_BYTES as u64 || self.pos.checked_add(n)? > self.w.len() {
            return None;
        }
        let mut data = vec![0u8; usize::try_from(n).ok()?];
        self.read(&mut data)?;
        std::str::from_utf8(&data).ok().map(|_| ())
    }

    fn read(&mut self, out: &mut [u8]) -> Option<()> {
        let mut done = 0;
        while done < out.len() {
            let in_buf = self.pos.checked_sub(self.buf_at).filter(|&o| o < self.buf.len() as u64);
            let Some(offset) = in_buf else {
                if self.pos >= self.w.len() || self.reads >= Limits::MSGPACK_READS {
                    return None;
                }
                self.reads += 1;
                let len = (self.w.len() - self.pos).min(CHUNK as u64) as usize;
                self.buf.resize(len, 0);
                self.w.read_exact_at(self.pos, &mut self.buf).ok()?;
                self.buf_at = self.pos;
                continue;
            };
            let offset = offset as usize;
            let n = (self.buf.len() - offset).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[offset..offset + n]);
            done += n;
            self.pos += n as u64;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NoteKind;
    use crate::{Options, scan_bytes};

    fn str8(s: &str) -> Vec<u8> {
        let mut out = vec![0xa0 | s.len() as u8];
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// What `flax.serialization.to_bytes({"params": {"dense": {"kernel": array, "bias": array}}})`
    /// writes: nested maps, arrays as extension type 1 holding `[shape, dtype, bytes]`.
    fn flax(data: &[u8]) -> Vec<u8> {
        let array = |shape: &[u8], bytes: &[u8]| {
            let mut inner = vec![0x93, 0x90 | shape.len() as u8];
            inner.extend_from_slice(shape);
            inner.extend(str8("float32"));
            inner.push(0xc4);
            inner.push(bytes.len() as u8);
            inner.extend_from_slice(bytes);
            let mut ext = vec![0xc7, inner.len() as u8, 1];
            ext.extend(inner);
            ext
        };
        let mut dense = vec![0x82];
        dense.extend(str8("kernel"));
        dense.extend(array(&[2, 2], &[0; 16]));
        dense.extend(str8("bias"));
        dense.extend(array(&[2], data));
        let mut params = vec![0x81];
        params.extend(str8("dense"));
        params.extend(dense);
        let mut top = vec![0x81];
        top.extend(str8("params"));
        top.extend(params);
        top
    }

    #[test]
    fn flax_weights_are_msgpack_and_say_nothing() {
        let doc = flax(&[0; 8]);
        let node = scan_bytes(&doc, Options::default());
        assert_eq!(node.format, Format::Msgpack);
        assert!(node.notes.is_empty(), "{:?}", node.notes);
    }

    #[test]
    fn recognition_is_strict() {
        let doc = flax(&[0; 8]);
        // Cut short, one byte too many, a reserved byte, a non-UTF-8 string, a float key.
        let short = &doc[..doc.len() - 1];
        let long = [&doc[..], b"\x00"].concat();
        let reserved = [0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0xc1];
        let bad_text = [&[0x81, 0xa2, 0xff, 0xfe, 0x01][..]].concat();
        let float_key = [&[0x81, 0xca, 0, 0, 0, 0, 0x01][..]].concat();
        for bad in [short, &long, &reserved, &bad_text, &float_key, b"\x81", b"\x80", b"\x81\xa1a"] {
            let node = scan_bytes(bad, Options::default());
            assert_ne!(node.format, Format::Msgpack, "{bad:?}");
            assert!(node.notes.iter().any(|n| n.kind == NoteKind::UnrecognisedBinary), "{bad:?}");
        }
        // A map count beyond the bytes there are.
        assert!(!is_document(Window::from_slice(b"\xdf\xff\xff\xff\xff\xa1a\x01")));
        // Nesting beyond the limit.
        let mut deep = vec![0x81, 0xa1, b'a'];
        for _ in 0..Limits::MSGPACK_DEPTH {
            deep.extend_from_slice(&[0x91]);
        }
        deep.push(0x01);
        assert!(!is_document(Window::from_slice(&deep)));
    }

    #[test]
    fn a_pickle_in_a_byte_string_is_still_found() {
        let payload = b"cos\nsystem\n(S'id'\ntR.";
        let mut doc = flax(&[0; 8]);
        // Replace the top map with one more entry holding the payload as bytes.
        doc[0] = 0x82;
        doc.extend(str8("x"));
        doc.push(0xc4);
        doc.push(payload.len() as u8);
        doc.extend_from_slice(payload);
        assert!(is_document(Window::from_slice(&doc)));
        let node = scan_bytes(&doc, Options::default());
        assert_eq!(node.format, Format::Msgpack);
        let mut found = false;
        node.walk(&mut |_, n| {
            found |= n.pickle().is_some_and(|p| p.globals.iter().any(|g| g.qualified() == "os.system"));
        });
        assert!(found, "{node:#?}");
    }
}
