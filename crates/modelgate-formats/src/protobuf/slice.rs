//! The protobuf wire format over a buffer in memory, schema-free: just enough to walk messages by
//! field number.
//!
//! A message is a sequence of fields, each a varint tag (`field number << 3 | wire type`) and a
//! value: a varint (type 0), 8 bytes (1), a length-delimited byte string (2: strings, bytes,
//! nested messages, packed repeated fields) or 4 bytes (5). Groups (3, 4) are obsolete and not
//! used by TensorFlow or ONNX; they are rejected. Nothing is allocated: values borrow from the
//! buffer, and every length is checked against it. Callers that descend into nested messages
//! bound their own recursion.

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The field number.
    pub(crate) number: u64,
    /// Its value.
    pub(crate) value: Value<'a>,
    /// Offset of the tag within the message buffer.
    pub(crate) offset: usize,
}

impl<'a> Field<'a> {
    /// The bytes of a length-delimited field.
    pub(crate) fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value of a varint field.
    pub(crate) fn varint(&self) -> Option<u64> {
        match self.value {
            Value::Varint(v) => Some(v),
            _ => None,
        }
    }

    /// A length-delimited field as text (lossy: names in hostile files need not be UTF-8).
    pub(crate) fn text(&self) -> Option<String> {
        self.bytes().map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Why a buffer is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// Offset in the message buffer.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) what: &'static str,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)
    }
}

/// Iterates the fields of a message; stops after the first error.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The fields of the message in `buf`.
pub(crate) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0, failed: false }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let result = self.field();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<Field<'a>, WireError> {
        let offset = self.pos;
        let err = |what| WireError { offset, what };
        let tag = self.varint().ok_or(err("truncated or overlong tag"))?;
        let number = tag >> 3;
        if number == 0 {
            return Err(err("field number 0"));
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint().ok_or(err("truncated varint"))?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)
                    .ok_or(err("truncated fixed64"))?
                    .try_into()
                    .map_err(|_| err("truncated fixed64"))?,
            )),
            2 => {
                let len = self.varint().ok_or(err("truncated length"))?;
                let len = usize::try_from(len).map_err(|_| err("length beyond the message"))?;
                Value::Bytes(self.take(len).ok_or(err("length beyond the message"))?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)
                    .ok_or(err("truncated fixed32"))?
                    .try_into()
                    .map_err(|_| err("truncated fixed32"))?,
            )),
            _ => return Err(err("unsupported wire type (group or invalid)")),
        };
        Ok(Field { number, value, offset })
    }

    fn varint(&mut self) -> Option<u64> {
        let (v, n) = varint(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
}

/// A field as [`lenient`] reads it: number, wire type, varint value or length, payload.
pub(crate) type Lenient<'a> = (u64, u64, u64, &'a [u8]);

/// The fields of a message that may be cut short at the end of `b` (a sniffing window): a
/// length-delimited field running past the end yields what is there and ends the walk. At most
/// `max` fields. `None`: not a protobuf (a group or invalid wire type, field number 0).
pub(crate) fn lenient(b: &[u8], max: usize) -> Option<Vec<Lenient<'_>>> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < b.len() && out.len() < max {
        let Some((tag, n)) = varint(&b[i..]) else { break };
        i += n;
        let (number, wire) = (tag >> 3, tag & 7);
        if number == 0 {
            return None;
        }
        match wire {
            0 => {
                let Some((v, n)) = b.get(i..).and_then(varint) else { break };
                i += n;
                out.push((number, wire, v, &b[..0]));
            }
            2 => {
                let Some((len, n)) = b.get(i..).and_then(varint) else { break };
                i += n;
                let end = i.saturating_add(usize::try_from(len).ok()?).min(b.len());
                out.push((number, wire, len, b.get(i..end)?));
                i = end;
            }
            1 => i = i.saturating_add(8),
            5 => i = i.saturating_add(4),
            _ => return None,
        }
    }
    Some(out)
}

/// Decodes a varint at the start of `b`: its value and length. `None` if truncated or longer
/// than ten bytes.
pub(crate) fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_wire_type() {
        let msg = b"\x08\x96\x01\x12\x03abc\x19\x01\x00\x00\x00\x00\x00\x00\x00\x25\x02\x00\x00\x00";
        let got: Vec<Field<'_>> = fields(msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0].varint(), Some(150));
        assert_eq!(got[1].bytes(), Some(&b"abc"[..]));
        assert_eq!(got[1].offset, 3);
        assert_eq!(got[2].value, Value::Fixed64(1));
        assert_eq!(got[3].value, Value::Fixed32(2));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &b"\x12\x05ab"[..],
            b"\x0b",
            b"\x00",
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"\x08",
        ] {
            let last = fields(bad).last().unwrap();
            assert!(last.is_err(), "{bad:?}");
        }
        // Huge lengths never allocate or overflow.
        assert!(fields(b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f").next().unwrap().is_err());
    }
}
