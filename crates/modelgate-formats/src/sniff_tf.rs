//! Content recognition for the TensorFlow files that have no magic number of their own: the
//! protobufs next to `saved_model.pb` and the checkpoint index (issue 3; kept apart from
//! `sniff.rs` so each format family's rules stay together).

use crate::inventory::Format;
use crate::limits::Limits;
use crate::protobuf::slice as protobuf;

const WINDOW: usize = Limits::PEEK;
use crate::stream::Window;

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

/// A `saved_model.pb` without `saved_model_schema_version` (proto3 leaves a 0 out; TensorFlow
/// does not check it) or with it after the meta graphs: only fields 1 (varint 0 or 1) and 2
/// (`MetaGraphDef`), and the first meta graph looks like one: only message fields 1–7, with a
/// `graph_def` whose first node has a name and an op, or a `meta_info_def` with tags or a
/// TensorFlow version.
pub(crate) fn is_saved_model(h: &[u8]) -> bool {
    is_saved_model_inner(h).unwrap_or(false)
}

fn is_saved_model_inner(h: &[u8]) -> Option<bool> {
    let top = protobuf::lenient(h, 16)?;
    let ok_top = top.iter().all(|&(n, w, v, _)| (n, w) == (2, 2) || ((n, w) == (1, 0) && v <= 1));
    let mg = top.iter().find(|f| (f.0, f.1) == (2, 2))?.3;
    let mg_fields = protobuf::lenient(mg, 16)?;
    if !ok_top
        || mg_fields.is_empty()
        || !mg_fields.iter().all(|&(n, w, _, _)| w == 2 && (1..=7).contains(&n))
    {
        return Some(false);
    }
    if let Some(graph) = mg_fields.iter().find(|f| f.0 == 2) {
        return graph_def_shape(graph.3);
    }
    let info = mg_fields.iter().find(|f| f.0 == 1)?;
    let inf = protobuf::lenient(info.3, 16)?;
    let has = |k: u64| inf.iter().any(|&(n, w, _, b)| n == k && w == 2 && ident(b));
    Some(inf.iter().all(|&(n, _, _, _)| (1..=8).contains(&n)) && (has(4) || has(5)))
}

/// Letters, digits and `_./-:>`: what TensorFlow node names and op names are made of.
fn ident(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_./-:>".contains(c))
}

/// A `GraphDef{1 node, 2 library, 3 version (varint), 4 versions}` whose first node is a
/// `NodeDef` (message fields 1–7) with a name and an op; a graph without nodes must still have
/// some field.
fn graph_def_shape(graph: &[u8]) -> Option<bool> {
    let gf = protobuf::lenient(graph, 16)?;
    let shape_ok = gf.iter().all(|&(n, w, _, _)| matches!((n, w), (1 | 2 | 4, 2) | (3, 0)));
    let Some(node) = gf.iter().find(|f| f.0 == 1) else {
        return Some(shape_ok && !gf.is_empty());
    };
    let nf = protobuf::lenient(node.3, 16)?;
    let name = nf.iter().find(|f| (f.0, f.1) == (1, 2)).is_some_and(|f| ident(f.3));
    let op = nf.iter().find(|f| (f.0, f.1) == (2, 2)).is_some_and(|f| ident(f.3));
    Some(shape_ok && name && op && nf.iter().all(|&(n, w, _, _)| (1..=7).contains(&n) && w == 2))
}

/// A bare `GraphDef`: a TF1 frozen graph (`convert_variables_to_constants`, the Object Detection
/// API's `frozen_inference_graph.pb`) or `tf.io.write_graph` output, which
/// `tf.compat.v1.GraphDef.ParseFromString` + `import_graph_def` (and OpenCV's TensorFlow importer)
/// load. It must start with a node, so a graph of only a library or versions is not taken for one.
pub(crate) fn is_graph_def(h: &[u8]) -> bool {
    protobuf::lenient(h, 1).is_some_and(|first| first.first().is_some_and(|f| (f.0, f.1) == (1, 2)))
        && graph_def_shape(h).unwrap_or(false)
}

/// A TensorFlow table (the checkpoint index `variables.index`): the last eight bytes are the
/// table magic. `head` is the stream's first `WINDOW` bytes (all of it when shorter).
pub(crate) fn is_checkpoint_index(window: Option<Window<'_>>, head: &[u8]) -> bool {
    let tail = if head.len() < WINDOW {
        head.len().checked_sub(8).and_then(|at| head.get(at..)).and_then(|b| <[u8; 8]>::try_from(b).ok())
    } else {
        window.and_then(|w| {
            let mut buf = [0u8; 8];
            let at = w.len().checked_sub(8)?;
            w.read_exact_at(at, &mut buf).ok().map(|()| buf)
        })
    };
    // A table holds at least a footer (48 bytes).
    head.len() >= 48 && tail.is_some_and(|t| u64::from_le_bytes(t) == TABLE_MAGIC)
}
