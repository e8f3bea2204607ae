//! Defence in depth for streams sniffed as text, JSON or unrecognised binary (docs/formats.md,
//! "Recognition"): every pickle import form in them (`c<module>\n<name>\n`,
//! `i<module>\n<name>\n`, string operands and STACK_GLOBAL) is a pickle candidate, parsed from
//! there. A candidate that reaches STOP after importing, or that calls an imported global, is
//! scanned as an embedded pickle of the stream, so a pickle our trial parse rejected earlier than
//! CPython does is still inspected.
//!
//! The search runs over the bytes as the stream's own parser reads them ([`Tee`]); around each
//! hit a bounded segment is kept (with some bytes before it, where a MARK may open an INST or
//! OBJ), and the candidates are parsed when the stream ends.

use super::recognise::{ImportForm, import_forms};
use super::{Callee, End, PickleLoader, PlainLoader, Session};
use crate::driver::{Driver, Rest};
use crate::inventory::{Format, Node, Note, NoteKind, Relation};
use crate::stream::{HashMode, Stream};
use std::io::Read;

const LOOKBACK: usize = crate::limits::Limits::HUNT_LOOKBACK;
const SEGMENT: usize = crate::limits::Limits::HUNT_SEGMENT;
const MAX_SEGMENTS: usize = crate::limits::Limits::HUNT_SEGMENTS;
const CANDIDATE_OPCODES: u64 = crate::limits::Limits::HUNT_CANDIDATE_OPCODES;
const MARK_STARTS: usize = crate::limits::Limits::HUNT_MARK_STARTS;

struct Segment {
    start: u64,
    data: Vec<u8>,
    hits: Vec<(u64, bool)>,
}

/// Collects import forms while the bytes stream through.
#[derive(Default)]
pub(crate) struct Hunt {
    /// Stream offset of the next byte fed.
    pos: u64,
    /// The last bytes fed (up to LOOKBACK), for forms that straddle two reads.
    back: Vec<u8>,
    segments: Vec<Segment>,
    /// Offset of the last hit recorded (hits are found again while they sit in `back`).
    last_hit: Option<u64>,
    /// First hit that no segment could hold.
    dropped: Option<u64>,
    /// Bytes fed but not yet searched (searched in batches, whatever the size of the reads).
    pending: Vec<u8>,
}

/// Bytes searched at a time.
const BATCH: usize = 1 << 16;
/// Bytes of `back` searched again with each batch: forms that start there and end in the batch
/// (two names of at most MAX_NAME bytes and their opcodes).
const RESEARCH: usize = 2 * 256 + 16;

impl Hunt {
    fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= BATCH {
            let batch = std::mem::take(&mut self.pending);
            self.search(&batch);
        }
    }

    fn search(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        // Extend the open segment first.
        if let Some(seg) = self.segments.last_mut() {
            let seg_end = seg.start + seg.data.len() as u64;
            if seg_end == self.pos && seg.data.len() < SEGMENT {
                let take = chunk.len().min(SEGMENT - seg.data.len());
                seg.data.extend_from_slice(&chunk[..take]);
            }
        }
        let region_start = self.pos - self.back.len() as u64;
        let from = self.back.len().saturating_sub(RESEARCH);
        let mut region = std::mem::take(&mut self.back);
        region.extend_from_slice(chunk);
        for ImportForm { offset, inst } in import_forms(&region, from) {
            let at = region_start + offset as u64;
            if self.last_hit.is_some_and(|h| at <= h) {
                continue;
            }
            self.last_hit = Some(at);
            let covered = self.segments.last_mut().filter(|s| {
                at >= s.start && at < s.start + s.data.len() as u64 && at + 512 <= s.start + SEGMENT as u64
            });
            if let Some(seg) = covered {
                seg.hits.push((at, inst));
                continue;
            }
            if self.segments.len() >= MAX_SEGMENTS {
                self.dropped.get_or_insert(at);
                continue;
            }
            let from = offset.saturating_sub(LOOKBACK);
            let data = region[from..region.len().min(from + SEGMENT)].to_vec();
            self.segments.push(Segment { start: region_start + from as u64, data, hits: vec![(at, inst)] });
        }
        self.pos += chunk.len() as u64;
        let keep = region.len().min(LOOKBACK);
        region.drain(..region.len() - keep);
        self.back = region;
    }

    /// Parses the candidates and adds what they found to `node`.
    pub(crate) fn finish(mut self, ctx: &mut dyn Driver, node: &mut Node) {
        let batch = std::mem::take(&mut self.pending);
        self.search(&batch);
        for seg in &self.segments {
            let mut parsed_to = 0u64;
            for &(hit, inst) in &seg.hits {
                if hit < parsed_to {
                    continue;
                }
                let rel = (hit - seg.start) as usize;
                let marks = seg.data[rel.saturating_sub(LOOKBACK)..rel]
                    .iter()
                    .enumerate()
                    .rev()
                    .filter(|&(_, &b)| b == b'(')
                    .map(|(i, _)| rel.saturating_sub(LOOKBACK) + i)
                    .take(MARK_STARTS);
                // INST needs a MARK below it: only starts at a MARK can run it.
                let starts: Vec<usize> =
                    if inst { marks.collect() } else { std::iter::once(rel).chain(marks).collect() };
                for start in starts {
                    if let Some(len) = accept(&seg.data[start..], ctx) {
                        let at = seg.start + start as u64;
                        embed(&seg.data[start..], at, ctx, node);
                        parsed_to = at + len;
                        break;
                    }
                }
            }
        }
        if let Some(at) = self.dropped {
            node.note(
                Note::new(
                    NoteKind::LimitExceeded,
                    format!("more pickle import forms than the {MAX_SEGMENTS} places kept for parsing them; the one at offset {at} and later ones were not parsed"),
                )
                .at(at),
            );
        }
    }
}

/// Runs a quiet candidate parse; `Some(bytes consumed)` when it is a pickle: STOP after an
/// import, or a call of an imported global.
fn accept(data: &[u8], ctx: &dyn Driver) -> Option<u64> {
    let mut limits = ctx.limits().clone();
    limits.pickle_opcodes = CANDIDATE_OPCODES;
    let mut tctx = ctx.trial_driver(limits);
    let mut node = Node::new("", None);
    let mut session = Session::new(PickleLoader::Pickle);
    let mut s = Stream::new(data, HashMode::None);
    let (end, _) = session.run(&mut node, &mut s, &mut *tctx, &mut PlainLoader, |_, _| ());
    let inv = session.inventory();
    let calls_global = inv.calls.iter().any(|c| matches!(c.callee, Callee::Global { .. }));
    let stopped = matches!(end, End::Stop(_)) && !inv.globals.is_empty();
    (calls_global || stopped).then(|| s.position())
}

/// Scans an accepted candidate as an embedded pickle of `node`.
fn embed(data: &[u8], at: u64, ctx: &mut dyn Driver, node: &mut Node) {
    let child = crate::driver::scan_node_with(
        Stream::new(data, HashMode::Inline),
        ctx,
        crate::driver::child_node(format!("pickle at offset {at}"), Relation::Embedded, at),
        |_, _| Format::Pickle,
        |_, s, ctx, node| {
            crate::pickle::scan(s, ctx, node);
            Rest::Drain
        },
    );
    node.children.push(child);
}

/// A reader that shows every byte it passes on to a [`Hunt`].
pub(crate) struct Tee<'h, R> {
    pub(crate) inner: R,
    pub(crate) hunt: &'h mut Hunt,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hunt.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(data: &[u8], chunk: usize) -> Vec<u64> {
        let mut h = Hunt::default();
        for c in data.chunks(chunk) {
            h.feed(c);
        }
        let batch = std::mem::take(&mut h.pending);
        h.search(&batch);
        h.segments.iter().flat_map(|s| s.hits.iter().map(|h| h.0)).collect()
    }

    #[test]
    fn forms_are_found_across_reads() {
        let mut data = vec![b'x'; 10_000];
        data.extend_from_slice(b"cos\nsystem\n(S'id'\ntR.");
        data.extend(vec![b'y'; 3 << 20]);
        data.extend_from_slice(b"cos\nsystem\n");
        for chunk in [1, 7, 4096, 1 << 16] {
            assert_eq!(hits(&data, chunk), [10_000, 10_021 + (3 << 20)], "chunk {chunk}");
        }
    }
}
