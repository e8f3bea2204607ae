//! The scan driver: every byte stream goes through `scan_node`, which sniffs its format,
//! hands it to that format's parser (crate::registry), notes any data the parser did not account
//! for, and finishes the stream (so its digest covers every byte). Containers call back into the
//! driver for each member, through the `Driver` trait (crate::driver), so a member is treated
//! exactly like a file. The scan context, `Ctx`, is private to this module.

use crate::driver::{Detect, Driver, How, ParseWith, Rest, child_node};
use crate::inventory::{Format, Node, Note, NoteKind, Relation};
use crate::sniff;
use crate::stream::{HashMode, Stream};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use crate::driver::{Trace, TraceEvent};
pub use crate::limits::Limits;

/// State carried through one scan.
struct Ctx<'t> {
    limits: Limits,
    depth: u32,
    trace: Option<&'t mut dyn Trace>,
    /// Bytes produced by decompression so far.
    expanded: u64,
    /// Set while a sniffer trial-parses a window: no embedded scans, no tracing.
    trial: bool,
    /// Directory of the scanned file, when the scan is of a file on disk.
    base_dir: Option<PathBuf>,
    /// Name of the scanned file, when the scan is of a file on disk.
    file_name: Option<String>,
}

impl<'t> Ctx<'t> {
    fn new(limits: Limits, trace: Option<&'t mut dyn Trace>) -> Ctx<'t> {
        Ctx { limits, depth: 0, trace, expanded: 0, trial: false, base_dir: None, file_name: None }
    }
}

/// Scans a whole stream (the scanned file); `path` is the file it comes from, when it is one.
pub(crate) fn scan_root(
    s: Stream<'_>,
    limits: Limits,
    trace: Option<&mut dyn Trace>,
    path: Option<&Path>,
) -> Node {
    let mut ctx = Ctx::new(limits, trace);
    if let Some(path) = path {
        ctx.base_dir =
            Some(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf());
        ctx.file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    scan_node(s, &mut ctx, Node::new("", None), How::Sniff)
}

/// Runs `f` with a fresh driver (for unit tests of parsers and sniff rules).
#[cfg(test)]
pub(crate) fn with_driver<R>(limits: Limits, f: impl FnOnce(&mut dyn Driver) -> R) -> R {
    f(&mut Ctx::new(limits, None))
}

impl Driver for Ctx<'_> {
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn depth(&self) -> u32 {
        self.depth
    }
    fn is_trial(&self) -> bool {
        self.trial
    }
    fn set_trial(&mut self, trial: bool) -> bool {
        std::mem::replace(&mut self.trial, trial)
    }
    fn tracing(&self) -> bool {
        self.trace.is_some() && !self.trial
    }
    fn trace(&mut self, event: TraceEvent<'_>) {
        if self.trial {
            return;
        }
        if let Some(t) = self.trace.as_deref_mut() {
            t.event(event);
        }
    }
    fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }
    fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }
    fn expanded(&self) -> u64 {
        self.expanded
    }
    fn add_expanded(&mut self, bytes: u64) {
        self.expanded = self.expanded.saturating_add(bytes);
    }
    fn scan_stream(&mut self, s: Stream<'_>, node: Node, how: How) -> Node {
        scan_node(s, self, node, how)
    }
    fn scan_stream_with(
        &mut self,
        s: Stream<'_>,
        node: Node,
        detect: &mut Detect<'_>,
        parse: &mut ParseWith<'_>,
    ) -> Node {
        scan_node_with(s, self, node, detect, parse)
    }
    fn archive_layouts(&self) -> &'static [&'static dyn crate::layout::ArchiveLayout] {
        crate::registry::LAYOUTS
    }
    fn sniff(&mut self, s: &mut Stream<'_>) -> Format {
        sniff::sniff(s, self)
    }
    fn parse_as(&mut self, format: Format, s: &mut Stream<'_>, node: &mut Node) -> Rest {
        dispatch(format, s, self, node)
    }
    fn scan_trailing_data(&mut self, reader: &mut dyn Read, offset: u64, node: &mut Node) {
        scan_trailing(reader, offset, self, node)
    }
    fn scan_embedded_data(&mut self, reader: &mut dyn Read, name: String, offset: u64) -> Option<Node> {
        scan_embedded(reader, self, name, offset)
    }
    fn trial_driver(&self, limits: Limits) -> Box<dyn Driver + '_> {
        let mut ctx = Ctx::new(limits, None);
        ctx.trial = true;
        ctx.depth = self.depth;
        Box::new(ctx)
    }
}

/// Scans one stream into `node`. I/O errors from the stream end the parse with a note; the caller
/// decides whether the underlying source failed.
fn scan_node(s: Stream<'_>, ctx: &mut Ctx<'_>, node: Node, how: How) -> Node {
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
fn scan_node_with(
    mut s: Stream<'_>,
    ctx: &mut Ctx<'_>,
    mut node: Node,
    detect: impl FnOnce(&mut Stream<'_>, &mut dyn Driver) -> Format,
    parse: impl FnOnce(Format, &mut Stream<'_>, &mut dyn Driver, &mut Node) -> Rest,
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
fn dispatch_hunting(format: Format, s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    if ctx.is_trial() || !format.is_hunted() {
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

/// Hands the stream to its format's parser: the first registry entry that lists the format
/// (crate::registry). Formats without a parser (images, empty streams, those decided by a
/// parent's layout) have nothing more to inventory.
fn dispatch(format: Format, s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    match crate::registry::parser(format) {
        Some(parse) => parse(format, s, ctx, node),
        None => Rest::Drain,
    }
}

/// Notes bytes left after a structure the loader stops reading at, and scans them by content
/// (polyglots hide payloads there).
fn trailing(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) {
    let offset = s.position();
    if matches!(s.at_eof(), Ok(false)) {
        ctx.scan_trailing_data(&mut s.take_next(u64::MAX), offset, node);
    }
}

/// Scans bytes that follow the structure `node` describes as a child of their own, and notes
/// them; `offset` is where they start in `node`'s bytes. Nothing is noted if there are none.
fn scan_trailing(reader: impl Read, offset: u64, ctx: &mut Ctx<'_>, node: &mut Node) {
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

/// Scans bytes embedded in a pickle (a bytes value that looks like a pickle or a zip). The
/// result is kept only if it says something: data that merely starts like a pickle and fails to
/// parse without importing anything is just data.
fn scan_embedded(reader: impl Read, ctx: &mut Ctx<'_>, name: String, offset: u64) -> Option<Node> {
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
