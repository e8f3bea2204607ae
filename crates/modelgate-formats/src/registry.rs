//! The format registry: one ordered list of every format's sniff rule and parse entry.
//!
//! The sniffer ([`crate::sniff`]) walks [`REGISTRY`] from the top and stops at the first rule
//! that recognises the stream's first bytes; the driver ([`crate::scan`]) walks it again to find
//! the parser of the format that was decided (the first entry listing it). Adding a format is
//! one module with a sniff rule and a parse function, and one line here (docs/architecture.md).
//!
//! **The order is a security property.** Structural tests that can tell a valid file apart come
//! before loose magic checks, so that a valid file of one format is never read as another
//! (docs/formats.md, "Recognition"): a safetensors header length whose first byte is 0x80 is not
//! a pickle PROTO; a pickle is trial-parsed only after every magic number failed; text and the
//! rules for data without any magic (a TensorFlow checkpoint index, MessagePack) come last. A
//! test pins the order (`registry_order_is_pinned`); changing it is a reviewed decision.
//!
//! Two decisions are not rules of this list because they look at the whole stream rather than
//! its first bytes, and they are made after it, in [`crate::sniff::sniff`]: a zip
//! end-of-central-directory record at the end of a stream whose start is something else makes it
//! a zip (with a scanned prefix), unless the start is a valid tar header or a strict safetensors
//! header.

use crate::driver::{Driver, Parse, Probe, Rest, Sniff};
use crate::inventory::{Format, Note, NoteKind};

/// One line of the registry.
pub(crate) struct Entry {
    /// A name for the rule (pinned by the order test).
    pub(crate) name: &'static str,
    /// How the format is recognised; `None` for formats no sniff rule produces (they are decided
    /// by a parent's layout, or only parsed).
    pub(crate) sniff: Option<Sniff>,
    /// The formats this entry's sniff rule can decide and its parser handles.
    pub(crate) formats: &'static [Format],
    /// The parser; `None` when a recognised stream has nothing more to inventory.
    pub(crate) parse: Option<Parse>,
}

/// An entry whose rule is a test of the first bytes deciding one format.
macro_rules! magic {
    ($name:literal, $format:expr, |$h:ident| $test:expr, $parse:expr) => {
        Entry {
            name: $name,
            sniff: Some(|p, _| {
                let $h: &[u8] = p.head;
                ($test).then_some($format)
            }),
            formats: &[$format],
            parse: $parse,
        }
    };
}

/// Compression wrappers share one parser.
const DECOMPRESS: Option<Parse> = Some(crate::container::compress::scan);

/// Native code and scripts are noted, not parsed.
const EXECUTABLE: Option<Parse> = Some(|format, _, _, node| {
    node.note(Note::new(NoteKind::Executable, format!("{format} executable content")));
    Rest::Drain
});

/// Protobuf models share the SavedModel parser (ONNX has its own).
const SAVEDMODEL: Option<Parse> = Some(crate::savedmodel::scan);

/// Every format, in sniff order (see the module documentation: the order is a security property).
#[rustfmt::skip]
pub(crate) static REGISTRY: &[Entry] = &[
    magic!("empty", Format::Empty, |h| h.is_empty(), None),
    // Before every magic number: a strict safetensors header (its length may start with 0x80).
    Entry {
        name: "safetensors-strict",
        sniff: Some(|p, _| crate::safetensors::is_structural(p.head, p.total).then_some(Format::Safetensors)),
        formats: &[Format::Safetensors],
        parse: Some(|_, s, ctx, node| crate::safetensors::scan(s, ctx, node)),
    },
    magic!("zip", Format::Zip, |h| crate::sniff::is_zip(h), Some(|_, s, ctx, node| crate::container::zip::scan(s, ctx, node))),
    magic!("numpy", Format::Numpy, |h| h.starts_with(b"\x93NUMPY"), Some(|_, s, ctx, node| crate::numpy::scan(s, ctx, node))),
    magic!("pickle-proto", Format::Pickle, |h| h.len() >= 2 && h[0] == 0x80 && h[1] <= 5, Some(|_, s, ctx, node| crate::pickle::scan(s, ctx, node))),
    magic!("gzip", Format::Gzip, |h| h.starts_with(b"\x1f\x8b"), DECOMPRESS),
    magic!("bzip2", Format::Bzip2, |h| crate::sniff::is_bzip2(h), DECOMPRESS),
    magic!("xz", Format::Xz, |h| h.starts_with(b"\xfd7zXZ\x00"), DECOMPRESS),
    magic!("7z", Format::SevenZip, |h| h.starts_with(b"7z\xbc\xaf\x27\x1c"), Some(|_, s, ctx, node| crate::container::sevenz::scan(s, ctx, node))),
    magic!("zlib", Format::Zlib, |h| crate::container::compress::is_zlib_or_zf(h), DECOMPRESS),
    magic!("lzma", Format::Lzma, |h| crate::container::compress::is_lzma_alone(h), DECOMPRESS),
    magic!("zstd", Format::Zstd, |h| h.starts_with(crate::container::compress::ZSTD_MAGIC), DECOMPRESS),
    magic!("hdf5", Format::Hdf5, |h| crate::sniff::is_hdf5(h), Some(|_, s, ctx, node| crate::hdf5::scan(s, ctx, node))),
    magic!("gguf", Format::Gguf, |h| h.starts_with(b"GGUF"), Some(|_, s, ctx, node| crate::gguf::scan(s, ctx, node))),
    magic!("tflite", Format::Tflite, |h| h.len() >= 8 && &h[4..8] == b"TFL3", Some(|_, s, ctx, node| crate::tflite::scan(s, ctx, node))),
    magic!("safetensors", Format::Safetensors, |h| crate::sniff::is_safetensors(h), Some(|_, s, ctx, node| crate::safetensors::scan(s, ctx, node))),
    magic!("elf", Format::Elf, |h| h.starts_with(b"\x7fELF"), EXECUTABLE),
    magic!("mach-o", Format::MachO, |h| crate::sniff::is_macho(h), EXECUTABLE),
    magic!("pe", Format::Pe, |h| crate::sniff::is_pe(h), EXECUTABLE),
    magic!("git-lfs-pointer", Format::GitLfsPointer, |h| h.starts_with(b"version https://git-lfs.github.com/spec/"), Some(|_, s, _, node| {
        crate::sniff::parse_lfs_pointer(s, node);
        Rest::Drain
    })),
    magic!("script", Format::Script, |h| h.starts_with(b"#!"), EXECUTABLE),
    magic!("tar", Format::Tar, |h| crate::sniff::is_tar(h), Some(|_, s, ctx, node| crate::container::tar::scan(s, ctx, node))),
    magic!("image", Format::Image, |h| crate::sniff::is_image(h), None),
    // After every magic number: pickles of protocol 0 and 1 have none, so they are trial-parsed.
    Entry {
        name: "pickle-trial",
        sniff: Some(|p, ctx| {
            (crate::pickle::opcode_byte(p.head[0]) && crate::sniff::trial_parse_pickle(p.head, p.total, ctx))
                .then_some(Format::Pickle)
        }),
        formats: &[Format::Pickle],
        parse: Some(|_, s, ctx, node| crate::pickle::scan(s, ctx, node)),
    },
    // Protobuf messages have no magic: ONNX and the TensorFlow files by their first fields.
    Entry { name: "tf-savedmodel-schema", sniff: Some(|p, _| crate::sniff::savedmodel_schema(p.head)), formats: &[Format::TfSavedmodel], parse: SAVEDMODEL },
    Entry {
        name: "tf-keras-metadata",
        sniff: Some(|p, _| crate::sniff::tf_metadata(p.head)),
        formats: &[Format::TfKerasMetadata, Format::TfFingerprint],
        parse: Some(|format, s, ctx, node| match format {
            Format::TfKerasMetadata => crate::savedmodel::scan(format, s, ctx, node),
            _ => Rest::Drain,
        }),
    },
    Entry { name: "onnx", sniff: Some(|p, _| crate::sniff::onnx(p.head)), formats: &[Format::Onnx], parse: Some(|_, s, ctx, node| crate::onnx::scan(s, ctx, node)) },
    Entry { name: "tf-savedmodel", sniff: Some(|p, _| crate::sniff::savedmodel_loose(p.head)), formats: &[Format::TfSavedmodel], parse: SAVEDMODEL },
    Entry { name: "tf-graphdef", sniff: Some(|p, _| crate::sniff::graph_def(p.head)), formats: &[Format::TfGraphDef], parse: SAVEDMODEL },
    Entry { name: "text", sniff: Some(|p, _| crate::sniff::text(p.head)), formats: &[Format::Json, Format::Text], parse: Some(crate::repo::scan_text) },
    // Binary data ending in the TensorFlow table magic (no magic at its start).
    Entry {
        name: "tf-checkpoint-index",
        sniff: Some(|p, _| crate::sniff_tf::is_checkpoint_index(p.window, p.head).then_some(Format::TfCheckpointIndex)),
        formats: &[Format::TfCheckpointIndex],
        parse: Some(|_, s, ctx, node| crate::tf_checkpoint::scan(s, ctx, node)),
    },
    // Last: a strict check of the whole stream, for data that has no magic at all.
    Entry { name: "msgpack", sniff: Some(crate::msgpack::sniff), formats: &[Format::Msgpack], parse: Some(|_, s, ctx, node| crate::msgpack::scan(s, ctx, node)) },
    // Recognised but not inspected: fail closed (no sniff rule produces these today).
    Entry {
        name: "unsupported",
        sniff: None,
        formats: &[Format::Protobuf, Format::TfCheckpointData],
        parse: Some(|format, _, _, node| {
            node.note(Note::new(
                NoteKind::UnsupportedFormat,
                format!("{format} model: recognised by its content, but this version of modelgate cannot inspect it yet"),
            ));
            Rest::Drain
        }),
    },
    Entry {
        name: "unknown",
        sniff: None,
        formats: &[Format::Unknown],
        parse: Some(|_, _, _, node| {
            node.note(Note::new(NoteKind::UnrecognisedBinary, "binary data of no recognised format"));
            Rest::Drain
        }),
    },
];

/// The loaders' archive layouts (src/layout.rs), in the order containers consult them: the
/// first whose member names match decides the archive's format (torch before Keras before npz),
/// and every one that applies reads the archive (skops applies to every zip; its hooks run
/// first).
pub(crate) static LAYOUTS: &[&dyn crate::layout::ArchiveLayout] = &[
    &crate::skops::SkopsLayout,
    &crate::torch::TorchZipLayout,
    &crate::keras::KerasLayout,
    &crate::numpy::NpzLayout,
];

/// The names of the registry's entries, in sniff order.
pub(crate) fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}

/// The parser for a decided format: the first entry that lists it.
pub(crate) fn parser(format: Format) -> Option<Parse> {
    REGISTRY.iter().find(|e| e.formats.contains(&format)).and_then(|e| e.parse)
}

/// The format the first matching sniff rule decides, or [`Format::Unknown`].
pub(crate) fn sniff(probe: &Probe<'_>, ctx: &mut dyn Driver) -> Format {
    REGISTRY.iter().filter_map(|e| e.sniff).find_map(|rule| rule(probe, ctx)).unwrap_or(Format::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sniff order is a security property (see the module documentation): this list changes only
    /// with a reviewed reason.
    #[test]
    fn registry_order_is_pinned() {
        assert_eq!(
            names(),
            [
                "empty",
                "safetensors-strict",
                "zip",
                "numpy",
                "pickle-proto",
                "gzip",
                "bzip2",
                "xz",
                "7z",
                "zlib",
                "lzma",
                "zstd",
                "hdf5",
                "gguf",
                "tflite",
                "safetensors",
                "elf",
                "mach-o",
                "pe",
                "git-lfs-pointer",
                "script",
                "tar",
                "image",
                "pickle-trial",
                "tf-savedmodel-schema",
                "tf-keras-metadata",
                "onnx",
                "tf-savedmodel",
                "tf-graphdef",
                "text",
                "tf-checkpoint-index",
                "msgpack",
                "unsupported",
                "unknown",
            ]
        );
        let layouts: Vec<&str> = LAYOUTS.iter().map(|l| l.name()).collect();
        assert_eq!(layouts, ["skops", "torch-zip", "keras", "numpy-npz"]);
    }

    /// Every format a sniff rule can decide has an entry; every entry's formats exist once per
    /// parser (the first entry listing a format is its parser).
    #[test]
    fn every_sniffed_format_has_an_entry() {
        for format in Format::ALL {
            let listed = REGISTRY.iter().filter(|e| e.formats.contains(format)).count();
            let by_layout = matches!(
                format,
                Format::PytorchZip
                    | Format::Torchscript
                    | Format::PytorchLegacy
                    | Format::PytorchLegacyTar
                    | Format::NumpyNpz
                    | Format::Joblib
                    | Format::Skops
                    | Format::Keras
            );
            assert!(listed >= 1 || by_layout, "{format} has no registry entry");
        }
    }
}
