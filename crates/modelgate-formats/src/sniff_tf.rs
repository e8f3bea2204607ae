//! Content recognition for the TensorFlow files that have no magic number of their own: the
//! protobufs next to `saved_model.pb` and the checkpoint index (issue 3; kept apart from
//! `sniff.rs` so each format family's rules stay together).

use crate::inventory::Format;
use crate::protobuf::slice as protobuf;
use crate::sniff::WINDOW;
use crate::stream::Stream;

/// The magic number ending every TensorFlow table file (LevelDB's format, `table/format.h`).
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// `keras_metadata.pb` and `fingerprint.pb`, from the first fields of the message (`fields`:
/// number, wire type and value or length, as `sniff_protobuf` collected them).
pub(crate) fn protobuf(h: &[u8], fields: &[(u64, u64, u64)]) -> Option<Format> {
    let first = *fields.first()?;
    // SavedMetadata{1: nodes}: the first node's identifier (field 4) is `_tf_keras_…`.
    if (first.0, first.1) == (1, 2) {
        let (_, tag_len) = protobuf::varint(h)?;
        let (len, len_len) = protobuf::varint(h.get(tag_len..)?)?;
        let start = tag_len + len_len;
        let end = start.saturating_add(usize::try_from(len).ok()?).min(h.len());
        let node = h.get(start..end)?;
        let keras = protobuf::fields(node)
            .map_while(Result::ok)
            .any(|f| f.number == 4 && f.bytes().is_some_and(|b| b.starts_with(b"_tf_keras")));
        if keras {
            return Some(Format::TfKerasMetadata);
        }
    }
    // FingerprintDef{1–5: uint64 hashes, 6: version, 7: uuid}: small, and parsed whole.
    if (first.0, first.1) == (1, 0) && h.len() < WINDOW {
        let all: Result<Vec<_>, _> = protobuf::fields(h).collect();
        let ok = all.is_ok_and(|fs| {
            fs.len() >= 3
                && fs.iter().all(|f| match f.number {
                    1..=5 => f.varint().is_some(),
                    6 | 7 => f.bytes().is_some(),
                    _ => false,
                })
        });
        if ok {
            return Some(Format::TfFingerprint);
        }
    }
    None
}

/// A TensorFlow table (the checkpoint index `variables.index`): the last eight bytes are the
/// table magic. `head` is the stream's first `WINDOW` bytes (all of it when shorter).
pub(crate) fn is_checkpoint_index(s: &Stream<'_>, head: &[u8]) -> bool {
    let tail = if head.len() < WINDOW {
        head.len().checked_sub(8).and_then(|at| head.get(at..)).and_then(|b| <[u8; 8]>::try_from(b).ok())
    } else {
        s.window().and_then(|w| {
            let mut buf = [0u8; 8];
            let at = w.len().checked_sub(8)?;
            w.read_exact_at(at, &mut buf).ok().map(|()| buf)
        })
    };
    // A table holds at least a footer (48 bytes).
    head.len() >= 48 && tail.is_some_and(|t| u64::from_le_bytes(t) == TABLE_MAGIC)
}
