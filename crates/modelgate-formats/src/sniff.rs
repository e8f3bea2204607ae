//! Format detection by content. File names are never consulted.
//!
//! Most formats announce themselves with magic bytes at a fixed place. Pickles of protocol 0 and
//! 1 do not (they are plain ASCII opcodes), so a stream that starts with a valid opcode is
//! trial-parsed: if the symbolic machine reaches STOP, imports something, or runs through the
//! whole look-ahead window without an error, it is a pickle (this is what picklescan's maintainer
//! calls the only reliable test, and what CVE-2025-10155 exploited).

use crate::driver::Driver;
use crate::driver::Probe;
use crate::inventory::{Detail, Format, Node, Note, NoteKind};
use crate::pickle::{End, PickleLoader, PlainLoader, Session};
use crate::protobuf::slice::lenient;
use crate::stream::{HashMode, MAX_PEEK, Stream, Window};

/// Bytes looked at to decide a format.
pub const WINDOW: usize = MAX_PEEK;

/// Detects the format of the stream from its first bytes (and, for zips with data in front, its
/// end).
pub(crate) fn sniff(s: &mut Stream<'_>, ctx: &mut dyn Driver) -> Format {
    let head = match s.peek(WINDOW) {
        Ok(h) => h.to_vec(),
        Err(_) => return Format::Unknown,
    };
    let window = s.window();
    let total = window.map(|w| w.len());
    let by_magic = sniff_sized(&head, total, window, ctx);
    // A zip with something in front of it: torch reads the front (a legacy pickle, say),
    // zipfile-based loaders read the zip. Scan it as a zip; the front becomes a scanned prefix.
    // Not when a valid tar header starts the stream: a zip near the end of a tar is one of its
    // members (NeMo's `.nemo` archives hold `model_weights.ckpt`), and tar readers read the tar.
    // Nor when the strong safetensors test passed: the data section is raw bytes.
    let framed = (by_magic == Format::Tar && tar_header_at_zero(&head)) || by_magic == Format::Safetensors;
    if by_magic != Format::Zip && by_magic != Format::Empty && !framed && has_zip_tail(s) {
        return Format::Zip;
    }
    by_magic
}

/// Detects a format from the first bytes alone.
#[cfg(test)]
pub(crate) fn sniff_bytes(head: &[u8], ctx: &mut dyn Driver) -> Format {
    sniff_sized(head, None, None, ctx)
}

/// Detects a format from the first bytes and, when known, the stream's length and random access
/// to it: the first rule of the registry that recognises it (crate::registry; the order is a
/// security property, docs/formats.md, "Recognition").
fn sniff_sized(head: &[u8], total: Option<u64>, window: Option<Window<'_>>, ctx: &mut dyn Driver) -> Format {
    crate::registry::sniff(&Probe { head, total, window }, ctx)
}

/// A zip local header, an empty zip, or a spanned zip's marker.
pub(crate) fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08PK\x03\x04")
}

/// A bzip2 stream header and the first block's (or the end-of-stream) magic.
pub(crate) fn is_bzip2(head: &[u8]) -> bool {
    head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && (&head[4..10] == b"1AY&SY" || &head[4..10] == b"\x17\x72\x45\x38\x50\x90")
}

/// Text by [`is_text`]: JSON when its first non-blank byte opens an object or an array.
pub(crate) fn text(head: &[u8]) -> Option<Format> {
    if !is_text(head) {
        return None;
    }
    let trimmed = head.iter().position(|b| !b.is_ascii_whitespace()).map(|i| head[i]);
    Some(match trimmed {
        Some(b'{') | Some(b'[') => Format::Json,
        _ => Format::Text,
    })
}

pub(crate) fn is_hdf5(h: &[u8]) -> bool {
    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";
    // The superblock may follow a user block of 512, 1024, 2048… bytes.
    let mut at = 0usize;
    while at + SIG.len() <= h.len() {
        if &h[at..at + SIG.len()] == SIG {
            return true;
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
    false
}

pub(crate) fn is_safetensors(h: &[u8]) -> bool {
    if h.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    // Headers over the library's 100 MB limit are still safetensors (and malformed) when the
    // JSON object visibly starts.
    ((2..100 << 20).contains(&n) && h[8] == b'{') || (n >= 100 << 20 && &h[8..10] == b"{\"")
}

pub(crate) fn is_macho(h: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ];
    h.len() >= 8 && MAGICS.iter().any(|m| h.starts_with(m))
}

pub(crate) fn is_pe(h: &[u8]) -> bool {
    if !h.starts_with(b"MZ") || h.len() < 0x40 {
        return false;
    }
    let at = u32::from_le_bytes([h[0x3c], h[0x3d], h[0x3e], h[0x3f]]) as usize;
    match h.get(at..at + 4) {
        Some(sig) => sig == b"PE\0\0",
        // The PE header lies beyond the window: an MZ stub with a plausible pointer is enough.
        None => at > h.len() && at < 1 << 20,
    }
}

/// A valid tar header block at offset 0 (ustar or v7, by its checksum).
fn tar_header_at_zero(h: &[u8]) -> bool {
    h.len() >= 512 && h[0] != 0 && checksum_ok(&h[..512])
}

pub(crate) fn is_tar(h: &[u8]) -> bool {
    // The ustar magic decides even when the header block is cut short (a truncated archive is
    // still an archive, and a broken one).
    if h.len() >= 262 && &h[257..262] == b"ustar" {
        return true;
    }
    if h.len() < 512 {
        return false;
    }
    // Old (v7) tar: no magic, so check the header checksum.
    if checksum_ok(&h[..512]) && h[0] != 0 {
        return true;
    }
    // A damaged first header: GNU tar says "Skipping to next header", finds the next valid one
    // and extracts from there on (Python's tarfile refuses the file). So a ustar header with a
    // good checksum at a later block boundary makes the stream a (broken) tar archive.
    h.chunks_exact(512).skip(1).any(|b| &b[257..262] == b"ustar" && checksum_ok(b))
}

/// True when a 512-byte block's checksum field matches its bytes.
fn checksum_ok(block: &[u8]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field.iter().copied().filter(|b| (b'0'..=b'7').contains(b)).collect();
    let Ok(text) = std::str::from_utf8(&digits) else {
        return false;
    };
    let Ok(stored) = u32::from_str_radix(text, 8) else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
        .sum();
    stored == sum && sum > 8 * 32
}

pub(crate) fn is_image(h: &[u8]) -> bool {
    h.starts_with(b"\x89PNG\r\n\x1a\n")
        || h.starts_with(b"\xff\xd8\xff")
        || h.starts_with(b"GIF87a")
        || h.starts_with(b"GIF89a")
        || (h.len() >= 12 && h.starts_with(b"RIFF") && &h[8..12] == b"WEBP")
}

/// Text: valid UTF-8 (a character cut by the window end is fine) without NULs or most control
/// bytes.
fn is_text(h: &[u8]) -> bool {
    let valid_len = match std::str::from_utf8(h) {
        Ok(_) => h.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    let controls =
        h[..valid_len].iter().filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)).count();
    controls * 100 <= valid_len.max(1)
}

/// The first fields of a protobuf message, as the protobuf rules of the registry test them
/// (number, wire type, value or length); `None` when the window does not start like a message
/// (then none of those rules apply).
fn protobuf_fields(h: &[u8]) -> Option<Vec<(u64, u64, u64)>> {
    let fields: Vec<(u64, u64, u64)> = lenient(h, 16)?.into_iter().map(|(n, w, v, _)| (n, w, v)).collect();
    (!fields.is_empty()).then_some(fields)
}

/// SavedModel: saved_model_schema_version = 1, then meta_graphs.
pub(crate) fn savedmodel_schema(h: &[u8]) -> Option<Format> {
    let fields = protobuf_fields(h)?;
    (fields[0] == (1, 0, 1) && fields.get(1).is_some_and(|f| f.0 == 2 && f.1 == 2))
        .then_some(Format::TfSavedmodel)
}

/// A SavedModel's `keras_metadata.pb` or `fingerprint.pb` (src/sniff_tf.rs).
pub(crate) fn tf_metadata(h: &[u8]) -> Option<Format> {
    crate::sniff_tf::protobuf(h, &protobuf_fields(h)?)
}

/// ONNX ModelProto: only ModelProto fields with their wire types, and an ir_version among them
/// (writers put it first; a reordered file loads all the same).
pub(crate) fn onnx(h: &[u8]) -> Option<Format> {
    const ONNX: &[(u64, u64)] =
        &[(1, 0), (2, 2), (3, 2), (4, 2), (5, 0), (6, 2), (7, 2), (8, 2), (14, 2), (20, 2), (25, 2), (26, 2)];
    let fields = protobuf_fields(h)?;
    (fields.iter().any(|&(f, w, v)| f == 1 && w == 0 && (3..=20).contains(&v))
        && fields.len() >= 2
        && fields.iter().all(|(f, w, _)| ONNX.contains(&(*f, *w))))
    .then_some(Format::Onnx)
}

/// A SavedModel without (or with a late) schema version (src/sniff_tf.rs).
pub(crate) fn savedmodel_loose(h: &[u8]) -> Option<Format> {
    protobuf_fields(h)?;
    crate::sniff_tf::is_saved_model(h).then_some(Format::TfSavedmodel)
}

/// A bare TensorFlow `GraphDef` (src/sniff_tf.rs).
pub(crate) fn graph_def(h: &[u8]) -> Option<Format> {
    protobuf_fields(h)?;
    crate::sniff_tf::is_graph_def(h).then_some(Format::TfGraphDef)
}

/// Runs the pickle machine over the window, quietly. A pickle if it reaches STOP, imports or
/// calls something before failing, or stops only because the window ends: the last opcode's
/// argument goes on past the window (CPython reads any length; a long first string is no reason
/// to stop treating the stream as a pickle), or the stream is still going at the end of the
/// window.
pub(crate) fn trial_parse_pickle(head: &[u8], total: Option<u64>, ctx: &mut dyn Driver) -> bool {
    let was_trial = ctx.set_trial(true);
    let mut node = Node::new("", None);
    let mut session = Session::new(PickleLoader::Pickle);
    let mut s = Stream::new(head, HashMode::None);
    let (end, _) = session.run(&mut node, &mut s, ctx, &mut PlainLoader, |_, _| ());
    let inv = session.inventory();
    // Only an import of something that could exist counts: text such as Python source
    // ("class Net(Module):") parses as a GLOBAL of a name no import system would accept.
    let imports =
        inv.globals.iter().any(|g| is_dotted_identifier(&g.module) && is_dotted_identifier(&g.name));
    let more_follows = head.len() >= WINDOW || total.is_some_and(|t| t > head.len() as u64);
    let failed_at =
        node.notes.iter().rev().find(|n| n.kind == NoteKind::PickleMalformed).and_then(|n| n.offset);
    let ran_out = more_follows
        && failed_at.is_some_and(|o| {
            o + 256 >= head.len() as u64
                || crate::pickle::recognise::runs_past_window(head, o as usize, total)
        });
    ctx.set_trial(was_trial);
    match end {
        End::Stop(_) => true,
        End::Error => imports || ran_out,
        End::Empty => false,
    }
}

/// `a.b.c` where each part is a Python identifier.
fn is_dotted_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// True if the stream ends with a zip end-of-central-directory record (a zip with other data in
/// front of it, which Python's zipfile and many loaders accept).
fn has_zip_tail(s: &Stream<'_>) -> bool {
    let Some(window) = s.window() else {
        return false;
    };
    crate::container::zip::find_eocd(&window).is_some()
}

/// Parses a Git LFS pointer into the node's detail.
pub(crate) fn parse_lfs_pointer(s: &mut Stream<'_>, node: &mut Node) {
    let text = match s.peek(1024) {
        Ok(b) => String::from_utf8_lossy(b).into_owned(),
        Err(_) => String::new(),
    };
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()));
    let oid = field("oid ").unwrap_or_default();
    let size = field("size ").and_then(|v| v.parse().ok());
    node.note(
        Note::new(
            NoteKind::LfsPointer,
            format!(
                "Git LFS pointer instead of the model content (object {oid}{}): LFS object not fetched (actions/checkout needs `lfs: true`)",
                size.map(|s| format!(", {s} bytes")).unwrap_or_default()
            ),
        )
        .evidence(oid.clone()),
    );
    node.detail = Detail::LfsPointer { oid, size };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn detect(bytes: &[u8]) -> Format {
        crate::scan::with_driver(Limits::default(), |ctx| sniff_bytes(bytes, ctx))
    }

    #[test]
    fn magic_formats() {
        assert_eq!(detect(b""), Format::Empty);
        assert_eq!(detect(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(detect(b"\x80\x04\x95"), Format::Pickle);
        assert_eq!(detect(b"\x93NUMPY\x01\x00"), Format::Numpy);
        assert_eq!(detect(b"\x1f\x8b\x08\x00"), Format::Gzip);
        assert_eq!(detect(b"\x78\x9c\x00\x00"), Format::Zlib);
        // joblib's legacy ZF wrapper (19-byte hex length, an optional space, then zlib).
        assert_eq!(detect(b"ZF0x21               \x78\x9c\x00\x00"), Format::Zlib);
        assert_eq!(detect(b"ZF0x21                \x78\x9c\x00\x00"), Format::Zlib);
        assert_eq!(crate::container::compress::joblib_zf_header(b"ZF0x21                \x78\x9c"), Some(22));
        assert_ne!(detect(b"ZF this is not a length\x78\x9c\x00\x00"), Format::Zlib);
        assert_eq!(detect(b"7z\xbc\xaf\x27\x1c\x00\x04"), Format::SevenZip);
        assert_eq!(detect(b"\x89HDF\r\n\x1a\n\x00"), Format::Hdf5);
        assert_eq!(detect(b"GGUF\x03\x00\x00\x00"), Format::Gguf);
        assert_eq!(detect(b"\x1c\x00\x00\x00TFL3\x00\x00"), Format::Tflite);
        assert_eq!(detect(b"\x7fELF\x02\x01\x01"), Format::Elf);
        assert_eq!(detect(b"#!/bin/sh\necho hi\n"), Format::Script);
        assert_eq!(detect(b"{\"a\": 1}\n"), Format::Json);
        assert_eq!(detect(b"hello world\n"), Format::Text);
        assert_eq!(detect(b"\x00\x01\x02\x03\xfe\xff"), Format::Unknown);
        let mut st = 12u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":{}}    ");
        assert_eq!(detect(&st), Format::Safetensors);
        assert_eq!(
            detect(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n"),
            Format::GitLfsPointer
        );
    }

    #[test]
    fn protocol_zero_pickles_are_found_by_trial_parse() {
        assert_eq!(detect(b"cposix\nsystem\n(S'echo pwned'\ntR."), Format::Pickle);
        assert_eq!(detect(b"(dp0\nS'a'\np1\nI1\ns."), Format::Pickle);
        // Payload, then garbage without STOP: still a pickle because it imported something.
        assert_eq!(detect(b"cos\nsystem\n(S'id'\ntR\xff\xfe"), Format::Pickle);
        // Ordinary text is not, Python source included.
        assert_eq!(detect(b"Notes about the model\n"), Format::Text);
        assert_eq!(
            detect(b"class TinyNet(Module):\n    def forward(self, x):\n        return x\n"),
            Format::Text
        );
        assert_eq!(detect(b"README\n"), Format::Text);
    }

    #[test]
    fn protobuf_models() {
        // ONNX: ir_version 8, producer_name "x", graph.
        assert_eq!(detect(b"\x08\x08\x12\x01x\x3a\x00"), Format::Onnx);
        // Fields reordered: producer_name, then ir_version.
        assert_eq!(detect(b"\x12\x01x\x08\x08\x3a\x00"), Format::Onnx);
        // SavedModel: schema version 1, meta_graphs.
        assert_eq!(detect(b"\x08\x01\x12\x02\x0a\x00"), Format::TfSavedmodel);
        // Without the schema version (proto3 leaves a 0 out): meta_graphs{graph_def{node{name, op}}}.
        let node = b"\x0a\x03bad\x12\x06PyFunc";
        let graph = [&[0x0a, node.len() as u8][..], node].concat();
        let mg = [&[0x12, graph.len() as u8][..], &graph].concat();
        let sm = [&[0x12, mg.len() as u8][..], &mg].concat();
        assert_eq!(detect(&sm), Format::TfSavedmodel);
        // A meta graph holding only meta_info_def with tags.
        assert_eq!(detect(b"\x12\x09\x0a\x07\x22\x05serve"), Format::TfSavedmodel);
        // A field 2 string is not a meta graph.
        assert_ne!(detect(b"\x12\x05hello"), Format::TfSavedmodel);
    }
}
