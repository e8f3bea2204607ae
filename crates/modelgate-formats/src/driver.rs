//! The one way back from a parser into the scan driver.
//!
//! A parser gets a `&mut dyn Driver` and nothing else of the driver: it asks it for the scan's
//! [`Limits`], to scan a child stream (an archive member, decompressed content, an embedded
//! pickle, data after the structure), to count bytes against the expansion budget, and for the
//! few facts about the scan it may depend on (nesting depth, the scanned file's directory and
//! name, whether it runs inside a sniffer's trial parse, whether someone traces it). The scan
//! context behind it is private to `scan.rs`. This module, `inventory`, `stream` and `limits` are
//! the core that format modules import (docs/architecture.md; a test checks the imports).

use crate::inventory::PickleLoader;
use crate::inventory::{Format, Node, NoteKind, Relation};
use crate::limits::Limits;
use crate::stream::{Stream, Window};
use std::io::Read;
use std::path::Path;

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

/// Decides the format of a stream scanned with a custom decision ([`scan_node_with`]).
pub(crate) type Detect<'f> = dyn FnMut(&mut Stream<'_>, &mut dyn Driver) -> Format + 'f;
/// Parses a stream scanned with a custom decision ([`scan_node_with`]).
pub(crate) type ParseWith<'f> = dyn FnMut(Format, &mut Stream<'_>, &mut dyn Driver, &mut Node) -> Rest + 'f;

/// What a sniff rule sees: the stream's first bytes (up to [`crate::sniff::WINDOW`]), its
/// length when known, and random access to all of it when the source offers it.
pub(crate) struct Probe<'p> {
    /// The first bytes; never empty past the `empty` rule.
    pub(crate) head: &'p [u8],
    /// The stream's length, when known.
    pub(crate) total: Option<u64>,
    /// Random access to the stream's bytes, when the source offers it.
    pub(crate) window: Option<Window<'p>>,
}

/// A sniff rule: the format of the stream, if this rule recognises it.
pub(crate) type Sniff = fn(&Probe<'_>, &mut dyn Driver) -> Option<Format>;

/// A parse entry: inventories the stream into the node and says what the rest of it is.
pub(crate) type Parse = fn(Format, &mut Stream<'_>, &mut dyn Driver, &mut Node) -> Rest;

/// What a parser may ask of the scan driver.
pub(crate) trait Driver {
    /// The scan's limits.
    fn limits(&self) -> &Limits;
    /// Nesting depth of the stream being parsed (1 for the scanned file itself).
    fn depth(&self) -> u32;
    /// True while a sniffer trial-parses a window: no embedded scans, no tracing.
    fn is_trial(&self) -> bool;
    /// Enters or leaves trial mode; returns the previous mode.
    fn set_trial(&mut self, trial: bool) -> bool;
    /// True when someone receives [`TraceEvent`]s (rendering them costs time otherwise saved).
    fn tracing(&self) -> bool;
    /// Reports an event to the tracer, if there is one (and not in trial mode).
    fn trace(&mut self, event: TraceEvent<'_>);
    /// Directory of the scanned file, when the scan is of a file on disk.
    fn base_dir(&self) -> Option<&Path>;
    /// Name of the scanned file, when the scan is of a file on disk.
    fn file_name(&self) -> Option<&str>;
    /// Bytes produced by decompression so far in this scan.
    fn expanded(&self) -> u64;
    /// Counts bytes produced by decompression against the scan's budget.
    fn add_expanded(&mut self, bytes: u64);
    /// Scans a child stream like a file: sniff (or as `how` says), parse, note trailing data, hash.
    fn scan_stream(&mut self, s: Stream<'_>, node: Node, how: How) -> Node;
    /// Scans a child stream with a custom format decision and parser.
    fn scan_stream_with(
        &mut self,
        s: Stream<'_>,
        node: Node,
        detect: &mut Detect<'_>,
        parse: &mut ParseWith<'_>,
    ) -> Node;
    /// The loaders' archive layouts, in the order containers consult them (src/layout.rs).
    fn archive_layouts(&self) -> &'static [&'static dyn crate::layout::ArchiveLayout];
    /// Decides a stream's format by content (the registry's sniff rules).
    fn sniff(&mut self, s: &mut Stream<'_>) -> Format;
    /// Parses a stream as `format` with that format's registered parser, into `node` (for a
    /// layout that reads a member whose format it already decided).
    fn parse_as(&mut self, format: Format, s: &mut Stream<'_>, node: &mut Node) -> Rest;
    /// Scans bytes that follow the structure `node` describes as a child, and notes them.
    fn scan_trailing_data(&mut self, reader: &mut dyn Read, offset: u64, node: &mut Node);
    /// Scans bytes embedded in a value; keeps the result only if it says something.
    fn scan_embedded_data(&mut self, reader: &mut dyn Read, name: String, offset: u64) -> Option<Node>;
    /// A fresh, quiet driver in trial mode at the same depth, with other limits (a candidate
    /// parse that must not touch this scan's state).
    fn trial_driver(&self, limits: Limits) -> Box<dyn Driver + '_>;
}

/// Scans one child stream into `node` (see [`Driver::scan_stream`]).
pub(crate) fn scan_node(s: Stream<'_>, ctx: &mut dyn Driver, node: Node, how: How) -> Node {
    ctx.scan_stream(s, node, how)
}

/// Scans one stream with a custom format decision and parser; for containers whose members the
/// loader treats in a fixed way.
pub(crate) fn scan_node_with(
    s: Stream<'_>,
    ctx: &mut dyn Driver,
    node: Node,
    detect: impl FnOnce(&mut Stream<'_>, &mut dyn Driver) -> Format,
    parse: impl FnOnce(Format, &mut Stream<'_>, &mut dyn Driver, &mut Node) -> Rest,
) -> Node {
    let (mut detect, mut parse) = (Some(detect), Some(parse));
    ctx.scan_stream_with(
        s,
        node,
        &mut |s, ctx| detect.take().map_or(Format::Unknown, |d| d(s, ctx)),
        &mut |f, s, ctx, node| parse.take().map_or(Rest::Drain, |p| p(f, s, ctx, node)),
    )
}

/// Scans bytes that follow the structure `node` describes (see [`Driver::scan_trailing_data`]);
/// `offset` is where they start in `node`'s bytes. Nothing is noted if there are none.
pub(crate) fn scan_trailing(reader: impl Read, offset: u64, ctx: &mut dyn Driver, node: &mut Node) {
    let mut reader = reader;
    ctx.scan_trailing_data(&mut reader, offset, node);
}

/// Scans bytes embedded in a pickle (a bytes value that looks like a pickle or a zip); see
/// [`Driver::scan_embedded_data`].
pub(crate) fn scan_embedded(
    reader: impl Read,
    ctx: &mut dyn Driver,
    name: String,
    offset: u64,
) -> Option<Node> {
    let mut reader = reader;
    ctx.scan_embedded_data(&mut reader, name, offset)
}

/// A fresh child node.
pub(crate) fn child_node(name: String, relation: Relation, parent_offset: u64) -> Node {
    let mut node = Node::new(name, Some(relation));
    node.parent_offset = Some(parent_offset);
    node
}

/// Reads the rest of a stream that a parser needs whole (a JSON document, a table), up to
/// `max_in_memory`. A read error is a malformed note and a larger stream a limit note, both
/// naming `what`; either way `None`, and the caller drains the rest.
pub(crate) fn read_whole(
    s: &mut Stream<'_>,
    ctx: &dyn Driver,
    node: &mut Node,
    what: &str,
) -> Option<Vec<u8>> {
    use crate::inventory::Note;
    let limit = ctx.limits().max_in_memory;
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
