//! The scan driver: every byte stream goes through `scan_node`, which sniffs its format,
//! hands it to that format's parser, notes any data the parser did not account for, and finishes
//! the stream (so its digest covers every byte). Containers call back into the driver for each
//! member, so a member is treated exactly like a file.

use crate::inventory::{Format, Node, Note, NoteKind, Relation};
use crate::pickle::PickleLoader;
use crate::sniff;
use crate::stream::{HashMode, Stream};
use std::io::Read;

pub use crate::limits::Limits;

/// What a [`Trace`] is told while a scan runs (for `modelgate inspect`).
#[derive(Debug)]
pub enum TraceEvent<'e> {
    /// A byte stream starts: its name (empty for the file), relation and detected format.
    Enter {
        /// Member or embedded name.
        name: &'e str,
        /// Relation to the parent.
        relation: Option<Relation>,
        /// Detected format.
        format: Format,
    },
    /// A pickle opcode was executed.
    Opcode {
        /// Offset in the current stream.
        offset: u64,
        /// Opcode name.
        name: &'static str,
        /// Its argument, rendered.
        arg: &'e str,
        /// What it did (resolved global, call), rendered.
        note: &'e str,
    },
    /// The current byte stream ends.
    Leave,
}

/// Receives [`TraceEvent`]s.
pub trait Trace {
    /// Called for each event.
    fn event(&mut self, event: TraceEvent<'_>);
}

/// State carried through one scan.
pub(crate) struct Ctx<'t> {
    pub(crate) limits: Limits,
    pub(crate) depth: u32,
    pub(crate) trace: Option<&'t mut dyn Trace>,
    /// Bytes produced by decompression so far.
    pub(crate) expanded: u64,
    /// Set while a sniffer trial-parses a window: no embedded scans, no tracing.
    pub(crate) trial: bool,
    /// Directory of the scanned file, when the scan is of a file on disk.
    pub(crate) base_dir: Option<std::path::PathBuf>,
    /// Name of the scanned file, when the scan is of a file on disk.
    pub(crate) file_name: Option<String>,
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(limits: Limits, trace: Option<&'t mut dyn Trace>) -> Ctx<'t> {
        Ctx { limits, depth: 0, trace, expanded: 0, trial: false, base_dir: None, file_name: None }
    }

    fn trace(&mut self, event: TraceEvent<'_>) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.event(event);
        }
    }
}

/// How the driver should treat a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// Detect the format from the content.
    Sniff,
    /// The loader unpickles this stream whatever it looks like (one `load()` call when `single`).
    Pickle { loader: PickleLoader, single: bool },
    /// The loader treats the bytes as raw data (tensor storage): detect the format, but data that
    /// is merely unrecognised, or only starts like a pickle, is not worth a note.
    Data,
}

/// What a parser says about the bytes it did not consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// The parser stopped at the end of what the loader reads; anything after is trailing data.
    Trailing,
    /// The rest is accounted for (opaque content, or the parse stopped at an error already noted).
    Drain,
}

/// Scans one stream into `node`. I/O errors from the stream end the parse with a note; the caller
/// decides whether the underlying source failed.
pub(crate) fn scan_node(s: Stream<'_>, ctx: &mut Ctx<'_>, node: Node, how: How) -> Node {
    let quiet = how == How::Data;
    let mut node = scan_node_with(
        s,
        ctx,
        node,
        |s, ctx| match how {
            How::Pickle { .. } => Format::Pickle,
            How::Sniff | How::Data => sniff::sniff(s, ctx),
        },
        |format, s, ctx, node| match how {
            How::Pickle { loader, single: true } => {
                crate::pickle::scan_one(s, ctx, node, loader);
                Rest::Trailing
            }
            How::Pickle { .. } => crate::pickle::scan(s, ctx, node),
            How::Sniff => dispatch_hunting(format, s, ctx, node),
            How::Data => dispatch(format, s, ctx, node),
        },
    );
    if quiet {
        let imports = node.pickle().is_some_and(|p| !p.globals.is_empty() || !p.calls.is_empty());
        node.notes.retain(|n| match n.kind {
            NoteKind::UnrecognisedBinary => false,
            NoteKind::PickleMalformed | NoteKind::TrailingData => imports,
            _ => true,
        });
        if node.format == Format::Pickle && !imports && node.notes.is_empty() {
            // Raw data that happens to start like a pickle.
            node.format = Format::Unknown;
            node.detail = crate::inventory::Detail::None;
            node.children.clear();
        }
    }
    node
}

/// Scans one stream with a custom format decision and parser; shared by [`scan_node`] and
/// containers whose members the loader treats in a fixed way.
pub(crate) fn scan_node_with(
    mut s: Stream<'_>,
    ctx: &mut Ctx<'_>,
    mut node: Node,
    detect: impl FnOnce(&mut Stream<'_>, &mut Ctx<'_>) -> Format,
    parse: impl FnOnce(Format, &mut Stream<'_>, &mut Ctx<'_>, &mut Node) -> Rest,
) -> Node {
    if ctx.depth >= ctx.limits.max_depth {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "nested more than {} levels deep; the content was hashed but not inspected",
                ctx.limits.max_depth
            ),
        ));
        finish(s, &mut node);
        return node;
    }
    ctx.depth += 1;
    let format = detect(&mut s, ctx);
    node.format = format;
    ctx.trace(TraceEvent::Enter { name: &node.name, relation: node.relation, format });
    let rest = parse(format, &mut s, ctx, &mut node);
    crate::repo::check_name(ctx, &mut node);
    if rest == Rest::Trailing {
        trailing(&mut s, ctx, &mut node);
    }
    ctx.trace(TraceEvent::Leave);
    finish(s, &mut node);
    ctx.depth -= 1;
    node
}

/// [`dispatch`], and for text, JSON and unrecognised binaries a search of every byte for pickle
/// import forms (docs/formats.md, "Recognition"): what a loader would unpickle is scanned as an
/// embedded pickle even where the sniffer's trial parse gave up. Raw tensor storage
/// ([`How::Data`]) is never unpickled and is not searched.
fn dispatch_hunting(format: Format, s: &mut Stream<'_>, ctx: &mut Ctx<'_>, node: &mut Node) -> Rest {
    if ctx.trial || !matches!(format, Format::Text | Format::Json | Format::Unknown) {
        return dispatch(format, s, ctx, node);
    }
    let window = if s.position() == 0 { s.window() } else { None };
    let mut hunt = crate::pickle::hunt::Hunt::default();
    {
        let tee = crate::pickle::hunt::Tee { inner: s.take_next(u64::MAX), hunt: &mut hunt };
        let mut inner = Stream::new(tee, HashMode::None);
        if let Some(w) = window {
            inner = inner.with_window(w);
        }
        if dispatch(format, &mut inner, ctx, node) == Rest::Trailing {
            trailing(&mut inner, ctx, node);
        }
        // The rest, so that the search sees every byte (a read error is the outer stream's).
        let _ = inner.skip(u64::MAX);
    }
    hunt.finish(ctx, node);
    Rest::Drain
}

pub(crate) fn dispatch(format: Format, s: &mut Stream<'_>, ctx: &mut Ctx<'_>, node: &mut Node) -> Rest {
    match format {
        Format::Pickle => crate::pickle::scan(s, ctx, node),
        Format::Numpy => crate::numpy::scan(s, ctx, node),
        Format::Zip => crate::container::zip::scan(s, ctx, node),
        Format::Tar => crate::container::tar::scan(s, ctx, node),
        Format::Gzip | Format::Bzip2 | Format::Xz | Format::Lzma | Format::Zlib => {
            crate::container::compress::scan(format, s, ctx, node)
        }
        Format::SevenZip => crate::container::sevenz::scan(s, ctx, node),
        Format::Hdf5 => crate::hdf5::scan(s, ctx, node),
        Format::TfSavedmodel | Format::TfGraphDef | Format::TfKerasMetadata => {
            crate::savedmodel::scan(format, s, ctx, node)
        }
        Format::Tflite => crate::tflite::scan(s, ctx, node),
        Format::TfCheckpointIndex => crate::tf_checkpoint::scan(s, ctx, node),
        Format::Onnx => crate::onnx::scan(s, ctx, node),
        Format::Gguf => crate::gguf::scan(s, ctx, node),
        Format::Safetensors => crate::safetensors::scan(s, ctx, node),
        Format::Json | Format::Text => crate::repo::scan_text(format, s, ctx, node),
        // Recognised but not inspected: fail closed (no sniffer produces these today).
        Format::Protobuf | Format::TfCheckpointData => {
            node.note(Note::new(
                NoteKind::UnsupportedFormat,
                format!("{format} model: recognised by its content, but this version of modelgate cannot inspect it yet"),
            ));
            Rest::Drain
        }
        Format::GitLfsPointer => {
            crate::sniff::parse_lfs_pointer(s, node);
            Rest::Drain
        }
        Format::Elf | Format::Pe | Format::MachO | Format::Script => {
            node.note(Note::new(NoteKind::Executable, format!("{format} executable content")));
            Rest::Drain
        }
        Format::Unknown => {
            node.note(Note::new(NoteKind::UnrecognisedBinary, "binary data of no recognised format"));
            Rest::Drain
        }
        _ => Rest::Drain,
    }
}

/// Reads the rest of a stream that a parser needs whole (a JSON document, a table), up to
/// `max_in_memory`. A read error is a malformed note and a larger stream a limit note, both
/// naming `what`; either way `None`, and the caller drains the rest.
pub(crate) fn read_whole(s: &mut Stream<'_>, ctx: &Ctx<'_>, node: &mut Node, what: &str) -> Option<Vec<u8>> {
    let limit = ctx.limits.max_in_memory;
    let max = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    match s.read_vec(max) {
        Ok(data) if data.len() as u64 > limit => {
            node.note(Note::new(
                NoteKind::LimitExceeded,
                format!("{what} larger than {limit} bytes; it was not inspected"),
            ));
            None
        }
        Ok(data) => Some(data),
        Err(e) => {
            node.note(Note::new(NoteKind::Malformed, format!("{what} could not be read: {e}")));
            None
        }
    }
}

/// Notes bytes left after a structure the loader stops reading at, and scans them by content
/// (polyglots hide payloads there).
fn trailing(s: &mut Stream<'_>, ctx: &mut Ctx<'_>, node: &mut Node) {
    let offset = s.position();
    if matches!(s.at_eof(), Ok(false)) {
        scan_trailing(s.take_next(u64::MAX), offset, ctx, node);
    }
}

/// Scans bytes that follow the structure `node` describes as a child of their own, and notes
/// them; `offset` is where they start in `node`'s bytes. Nothing is noted if there are none.
pub(crate) fn scan_trailing(reader: impl Read, offset: u64, ctx: &mut Ctx<'_>, node: &mut Node) {
    let child = scan_node(
        Stream::new(reader, HashMode::Inline),
        ctx,
        child_node(format!("data after offset {offset}"), Relation::Trailing, offset),
        How::Sniff,
    );
    if child.size == 0 {
        return;
    }
    node.note(
        Note::new(
            NoteKind::TrailingData,
            format!(
                "{} bytes follow the end of the {} structure at offset {offset}; the loader never reads them",
                child.size, node.format
            ),
        )
        .at(offset),
    );
    node.children.push(child);
}

fn finish(s: Stream<'_>, node: &mut Node) {
    match s.finish() {
        Ok((size, digest)) => {
            node.size = size;
            node.sha256 = digest;
        }
        Err(e) => {
            node.note(Note::new(NoteKind::Malformed, format!("the data could not be read to the end: {e}")));
        }
    }
}

/// A fresh child node.
pub(crate) fn child_node(name: String, relation: Relation, parent_offset: u64) -> Node {
    let mut node = Node::new(name, Some(relation));
    node.parent_offset = Some(parent_offset);
    node
}

/// Scans bytes embedded in a pickle (a bytes value that looks like a pickle or a zip). The
/// result is kept only if it says something: data that merely starts like a pickle and fails to
/// parse without importing anything is just data.
pub(crate) fn scan_embedded(reader: impl Read, ctx: &mut Ctx<'_>, name: String, offset: u64) -> Option<Node> {
    if ctx.trial {
        let mut s = Stream::new(reader, HashMode::None);
        let _ = s.skip(u64::MAX);
        return None;
    }
    let node = scan_node(
        Stream::new(reader, HashMode::Inline),
        ctx,
        child_node(name, Relation::Embedded, offset),
        How::Sniff,
    );
    let imports = node.pickle().is_some_and(|p| !p.globals.is_empty() || !p.calls.is_empty());
    let says_something = imports
        || !node.children.is_empty()
        || node
            .notes
            .iter()
            .any(|n| !matches!(n.kind, NoteKind::PickleMalformed | NoteKind::UnrecognisedBinary));
    says_something.then_some(node)
}
