//! A minimal protobuf wire-format reader that walks messages straight off a [`Stream`].
//!
//! No schema, no generated code, no buffering: a caller asks for the next field of the message
//! that ends at `end`, then decides what to do with its value — recurse into it (a sub-message,
//! with `end` set to where it stops), keep a bounded prefix of it (a name), or skip it (tensor
//! bytes, which the stream still hashes). Every length is checked against the enclosing message
//! before anything is read, so a multi-gigabyte field costs no memory and a lying length is an
//! error, never an allocation.
//!
//! Wire types 0 (varint), 1 (64-bit), 2 (length-delimited) and 5 (32-bit) are accepted. Groups
//! (3/4) are deprecated, never written by the formats this reads, and rejected.
//!
//! This reader serves files read once, forward (ONNX, whose initializers can be gigabytes).
//! Messages already in memory (a SavedModel graph, a header being sniffed) are walked by
//! [`slice`], the same wire format over a borrowed buffer.

pub(crate) mod slice;

use crate::stream::Stream;

/// A field's value, as far as the wire format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 2: this many bytes follow, not yet consumed.
    Len(u64),
}

/// One field header (and, except for `Len`, its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// The field number.
    pub(crate) number: u64,
    /// The value.
    pub(crate) value: Value,
    /// Offset of the field's tag.
    pub(crate) at: u64,
}

/// Why a message could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// Where.
    pub(crate) at: u64,
    /// What.
    pub(crate) what: String,
}

impl WireError {
    pub(crate) fn new(at: u64, what: impl Into<String>) -> WireError {
        WireError { at, what: what.into() }
    }
}

/// The result of a walk step.
pub(crate) type Wire<T> = Result<T, WireError>;

/// Reads a varint that must end before `end`.
fn varint(s: &mut Stream<'_>, end: u64) -> Wire<u64> {
    let at = s.position();
    let mut v = 0u64;
    for i in 0..10u32 {
        if s.position() >= end {
            return Err(WireError::new(at, "a varint runs past the end of its message"));
        }
        let byte = match s.read_u8() {
            Ok(Some(b)) => b,
            Ok(None) => return Err(WireError::new(at, "the data ends inside a varint")),
            Err(e) => return Err(WireError::new(at, format!("read error: {e}"))),
        };
        if i == 9 && byte > 1 {
            return Err(WireError::new(at, "a varint longer than 64 bits"));
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError::new(at, "a varint longer than 10 bytes"))
}

fn fixed<const N: usize>(s: &mut Stream<'_>, end: u64) -> Wire<[u8; N]> {
    let at = s.position();
    if end.saturating_sub(at) < N as u64 {
        return Err(WireError::new(at, "a fixed-width value runs past the end of its message"));
    }
    match s.read_array::<N>() {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(WireError::new(at, "the data ends inside a fixed-width value")),
        Err(e) => Err(WireError::new(at, format!("read error: {e}"))),
    }
}

/// The next field of the message that ends at `end` (`u64::MAX` for a top-level message, which
/// ends with the stream), or `None` at its end.
pub(crate) fn next_field(s: &mut Stream<'_>, end: u64) -> Wire<Option<Field>> {
    let at = s.position();
    if at == end {
        return Ok(None);
    }
    if at > end {
        return Err(WireError::new(at, "a field runs past the end of its message"));
    }
    if end == u64::MAX {
        match s.at_eof() {
            Ok(true) => return Ok(None),
            Ok(false) => {}
            Err(e) => return Err(WireError::new(at, format!("read error: {e}"))),
        }
    }
    let tag = varint(s, end)?;
    let number = tag >> 3;
    if number == 0 || number > (1 << 29) - 1 {
        return Err(WireError::new(at, format!("invalid field number {number}")));
    }
    let value = match tag & 7 {
        0 => Value::Varint(varint(s, end)?),
        1 => Value::Fixed64(u64::from_le_bytes(fixed::<8>(s, end)?)),
        5 => Value::Fixed32(u32::from_le_bytes(fixed::<4>(s, end)?)),
        2 => {
            let len = varint(s, end)?;
            let left = end.saturating_sub(s.position());
            if len > left {
                return Err(WireError::new(
                    at,
                    format!("field {number} claims {len} bytes but its message has {left} left"),
                ));
            }
            Value::Len(len)
        }
        wire @ (3 | 4) => {
            return Err(WireError::new(
                at,
                format!("field {number} uses the deprecated group wire type {wire}"),
            ));
        }
        wire => {
            return Err(WireError::new(at, format!("field {number} has invalid wire type {wire}")));
        }
    };
    Ok(Some(Field { number, value, at }))
}

/// Consumes `len` bytes; the stream ending first is an error.
pub(crate) fn skip(s: &mut Stream<'_>, len: u64) -> Wire<()> {
    let at = s.position();
    match s.skip(len) {
        Ok(n) if n == len => Ok(()),
        Ok(n) => Err(WireError::new(at, format!("the data ends {n} bytes into a field of {len} bytes"))),
        Err(e) => Err(WireError::new(at, format!("read error: {e}"))),
    }
}

/// Consumes `len` bytes, keeping at most the first `keep`. Returns the kept bytes and whether
/// they are the whole value.
pub(crate) fn bytes(s: &mut Stream<'_>, len: u64, keep: usize) -> Wire<(Vec<u8>, bool)> {
    let at = s.position();
    match s.read_prefix_skip_rest(len, keep) {
        Ok((kept, n)) if n == len => {
            let whole = kept.len() as u64 == len;
            Ok((kept, whole))
        }
        Ok((_, n)) => Err(WireError::new(at, format!("the data ends {n} bytes into a field of {len} bytes"))),
        Err(e) => Err(WireError::new(at, format!("read error: {e}"))),
    }
}

/// Consumes a string field of `len` bytes, keeping at most `keep` bytes (cut at a character
/// boundary, `…` appended when cut). Invalid UTF-8 is replaced, as protobuf runtimes that do not
/// validate would pass it on.
pub(crate) fn string(s: &mut Stream<'_>, len: u64, keep: usize) -> Wire<String> {
    let (raw, whole) = bytes(s, len, keep)?;
    let mut text = String::from_utf8_lossy(&raw).into_owned();
    if !whole {
        while text.ends_with('\u{fffd}') {
            text.pop();
        }
        text.push('…');
    }
    Ok(text)
}

/// Consumes whatever the value of a field still holds (nothing unless it is `Len`).
pub(crate) fn skip_value(s: &mut Stream<'_>, field: &Field) -> Wire<()> {
    match field.value {
        Value::Len(len) => skip(s, len),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stream::HashMode;

    /// Encodes a varint.
    pub(crate) fn enc_varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A varint field.
    pub(crate) fn fv(number: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        enc_varint(number << 3, &mut out);
        enc_varint(v, &mut out);
        out
    }

    /// A length-delimited field.
    pub(crate) fn fl(number: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        enc_varint(number << 3 | 2, &mut out);
        enc_varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn fields_lengths_and_errors() {
        let mut data = fv(1, 300);
        data.extend(fl(2, b"abc"));
        data.extend([0x1d, 1, 2, 3, 4]); // field 3, fixed32
        let mut s = Stream::new(&data[..], HashMode::None);
        let f = next_field(&mut s, u64::MAX).unwrap().unwrap();
        assert_eq!((f.number, f.value), (1, Value::Varint(300)));
        let f = next_field(&mut s, u64::MAX).unwrap().unwrap();
        assert_eq!(f.value, Value::Len(3));
        assert_eq!(string(&mut s, 3, 2).unwrap(), "ab…");
        let f = next_field(&mut s, u64::MAX).unwrap().unwrap();
        assert_eq!(f.value, Value::Fixed32(0x0403_0201));
        assert_eq!(next_field(&mut s, u64::MAX).unwrap(), None);

        // A length beyond the enclosing message.
        let data = fl(2, b"abcdef");
        let mut s = Stream::new(&data[..], HashMode::None);
        assert!(next_field(&mut s, 4).is_err());
        // Groups and invalid wire types.
        for tag in [0x0b_u8, 0x0c, 0x0e, 0x0f, 0x00] {
            let bytes = [tag, 0];
            let mut s = Stream::new(&bytes[..], HashMode::None);
            assert!(next_field(&mut s, u64::MAX).is_err(), "{tag:#x}");
        }
        // An endless varint.
        let mut s = Stream::new(
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
            HashMode::None,
        );
        assert!(next_field(&mut s, u64::MAX).is_err());
        // Truncated bytes.
        let mut s = Stream::new(&[0x12, 0x05, b'a'][..], HashMode::None);
        let f = next_field(&mut s, u64::MAX).unwrap().unwrap();
        assert!(skip_value(&mut s, &f).is_err());
    }
}
