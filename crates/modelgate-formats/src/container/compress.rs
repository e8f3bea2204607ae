//! Compression wrappers (gzip, zlib, bzip2, xz, lzma): the decompressed content is scanned as a
//! child, under the expansion budget.
//!
//! Decompression streams: the compressed bytes are pulled through the parent [`Stream`] (so they
//! are hashed once), the decompressed bytes feed the child stream, and nothing is buffered beyond
//! a decoder's own window. The readers mirror Python's (what joblib, `gzip.open` and friends use):
//!
//! * gzip: every member to the end, as `gzip.GzipFile` does (zero padding between members is
//!   skipped); each member's CRC-32 and length are checked.
//! * bzip2: concatenated streams are read to the end, as `bz2.BZ2File` does.
//! * xz and lzma ("lzma alone", joblib's `compress='lzma'`): concatenated streams, each of
//!   either kind, are read to the end, as `lzma.LZMAFile` does with FORMAT_AUTO.
//! * zstd: every frame to the end (the `zstd` tool, python-zstandard with `read_across_frames`),
//!   each frame's window held to [`crate::Limits::max_in_memory`] before anything is allocated.
//! * zlib: one stream.
//!
//! Whatever follows the last stream is returned as trailing data. Corrupt or truncated data ends
//! the decompressed content where the error is, with a [`NoteKind::Malformed`] note; what came
//! before is still inspected. Dictionaries count against [`crate::Limits::max_in_memory`]: a
//! header asking for more is a [`NoteKind::LimitExceeded`] note, and nothing is allocated for it.

use super::Fuse;
use crate::container::{ExpansionBudget, FuseOnError, Tap};
use crate::driver::{Driver, How, Rest, child_node, scan_node, scan_trailing};
use crate::inventory::{Format, Node, Note, NoteKind, Relation};
use crate::stream::{HashMode, Stream};
use lzma_rust2::{Action, LzmaStream, Status, XzStream};
use std::io::{self, BufRead, Read};

const GZIP_MAGIC: &[u8; 2] = b"\x1f\x8b";
const XZ_MAGIC: &[u8; 6] = b"\xfd7zXZ\x00";
/// A Zstandard frame (RFC 8878 §3.1.1).
pub(crate) const ZSTD_MAGIC: &[u8; 4] = b"\x28\xb5\x2f\xfd";
/// [`Limits::DECODER_OVERHEAD`](crate::Limits::DECODER_OVERHEAD)
pub(crate) const DECODER_OVERHEAD: u64 = crate::limits::Limits::DECODER_OVERHEAD;

/// joblib's legacy (pre-0.10) compressed pickle, still read by `joblib.load`
/// (`numpy_pickle_compat.read_zfile`): `ZF`, the pickle's length as `hex()` left-justified to 19
/// bytes (parsed with `int(…, 16)`), one more space from joblib <= 0.8.4, then a zlib stream. The
/// length of the header before the zlib stream, when `h` starts with one. Loose on the length's
/// spelling (any hex-looking field): the zlib header after it decides, and failing closed on an
/// odd length costs nothing — the stream is scanned either way.
pub(crate) fn joblib_zf_header(h: &[u8]) -> Option<usize> {
    const FIELD: usize = 2 + 19;
    let field = h.get(2..FIELD).filter(|_| h.starts_with(b"ZF"))?;
    let hexish = field.iter().all(|b| b.is_ascii_hexdigit() || b" \t_+-xX".contains(b));
    if !hexish || !field.iter().any(u8::is_ascii_hexdigit) {
        return None;
    }
    [FIELD, FIELD + 1]
        .into_iter()
        .find(|&at| h.get(at..).is_some_and(is_zlib) && (at == FIELD || h[FIELD] == b' '))
}

/// A zlib stream, or one behind joblib's legacy `ZF` header ([`joblib_zf_header`]).
pub(crate) fn is_zlib_or_zf(h: &[u8]) -> bool {
    is_zlib(h) || joblib_zf_header(h).is_some()
}

pub(crate) fn is_zlib(h: &[u8]) -> bool {
    h.len() >= 2 && h[0] == 0x78 && (u16::from(h[0]) << 8 | u16::from(h[1])) % 31 == 0 && h[1] & 0x20 == 0
}

/// `lzma.FORMAT_ALONE` (what joblib's `compress=('lzma', …)` writes): a properties byte, a
/// dictionary size, and an uncompressed size that is either unknown (all ones) or sane.
pub(crate) fn is_lzma_alone(h: &[u8]) -> bool {
    if h.len() < 13 || h[0] >= 225 {
        return false;
    }
    let dict = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    let size = u64::from_le_bytes([h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12]]);
    let dict_ok =
        dict >= 4096 && (dict.is_power_of_two() || (dict.is_multiple_of(3) && (dict / 3).is_power_of_two()));
    h[0] == 0x5d && dict_ok && (size == u64::MAX || size < 1 << 48)
}

/// Scans compressed data: its decompressed content becomes one child node.
pub(crate) fn scan(format: Format, s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    // joblib's legacy `ZF` wrapper: its header is skipped, the zlib stream after it is what
    // `joblib.load` decompresses and unpickles.
    if format == Format::Zlib
        && let Ok(head) = s.peek(2 + 19 + 1 + 2)
        && let Some(skip) = joblib_zf_header(head)
        && s.skip(skip as u64).is_err()
    {
        return Rest::Drain;
    }
    let start = s.position();
    let dict_cap = ctx.limits().max_in_memory;
    if format == Format::Lzma
        && let Ok(head) = s.peek(5)
        && head.len() == 5
    {
        let dict = u64::from(u32::from_le_bytes([head[1], head[2], head[3], head[4]]));
        if dict > dict_cap {
            node.note(
                Note::new(
                    NoteKind::LimitExceeded,
                    format!("the LZMA header asks for a {dict}-byte dictionary, more than the {dict_cap}-byte in-memory limit; the content was not decompressed or inspected"),
                )
                .at(start),
            );
            return Rest::Drain;
        }
    }
    // The ratio is checked against the compressed size when it is known (random access), and
    // against the compressed bytes consumed so far otherwise.
    let known = s.window().map(|w| w.len().saturating_sub(start));
    let mut budget = ExpansionBudget::new(ctx, known.unwrap_or(u64::MAX));
    let dynamic = known.is_none().then_some((ctx.limits().max_ratio, ctx.limits().ratio_floor));
    let mem_kb = u32::try_from(dict_cap.saturating_add(DECODER_OVERHEAD) / 1024)
        .unwrap_or(u32::MAX - 1)
        .min(u32::MAX - 1);
    let mut outcome = Outcome::default();
    let mut crc = flate2::Crc::new();
    let mut fused = None;
    let child = {
        let dec = Decompressor::new(format, s, &mut outcome, dynamic, mem_kb);
        let tap = Tap::new(dec, &mut crc, Some(&mut budget));
        let stream = Stream::new(Fuse::new(tap, &mut fused), HashMode::Inline);
        scan_node(
            stream,
            ctx,
            child_node(format!("decompressed {format}"), Relation::Decompressed, start),
            How::Sniff,
        )
    };
    ctx.add_expanded(child.size);
    let mut child = child;
    let consumed = s.position().saturating_sub(start);
    let mut stopped = false;
    if budget.exceeded() {
        stopped = true;
        let detail = match known {
            Some(_) => budget.describe(),
            None => format!(
                "decompression stopped after {} bytes (the scan's total expansion limit); the rest was not inspected",
                child.size
            ),
        };
        child.note(Note::new(NoteKind::LimitExceeded, detail));
    }
    if let Some((produced, ratio)) = outcome.ratio_exceeded {
        stopped = true;
        child.note(Note::new(
            NoteKind::LimitExceeded,
            format!("decompression stopped after {produced} bytes from {consumed} compressed bytes: more than {ratio} times expansion (a decompression bomb, or a model too large for the configured limits); the rest was not inspected"),
        ));
    }
    if outcome.memory {
        stopped = true;
        node.note(
            Note::new(
                NoteKind::LimitExceeded,
                format!("the {format} data asks for a dictionary larger than the in-memory limit of {dict_cap} bytes allows; decompression stopped after {} bytes and the rest was not inspected", child.size),
            )
            .at(outcome.error_at.unwrap_or(start)),
        );
    }
    if let Some(error) = &outcome.failure {
        stopped = true;
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!("corrupt or truncated {format} data: {error}; the {} bytes decompressed before the error were inspected, a reader stops there", child.size),
            )
            .at(outcome.error_at.unwrap_or(start)),
        );
    }
    node.children.push(child);
    if stopped {
        return Rest::Drain;
    }
    if !outcome.unused.is_empty() {
        let prefix = std::mem::take(&mut outcome.unused);
        trailing_with_prefix(prefix, s, ctx, node);
        return Rest::Drain;
    }
    Rest::Trailing
}

/// What decompression found, reported back once the child scan is done.
#[derive(Default)]
struct Outcome {
    /// The decoder's error, if the data is corrupt or truncated.
    failure: Option<String>,
    /// The decoder refused the dictionary size.
    memory: bool,
    /// Offset in the compressed stream where decoding stopped on an error.
    error_at: Option<u64>,
    /// (bytes produced, ratio) when the ratio limit stopped a stream of unknown size.
    ratio_exceeded: Option<(u64, u64)>,
    /// Bytes the decoder took in that follow the end of its stream (lzma only).
    unused: Vec<u8>,
}

/// The decoder of the member being read.
enum Member<'s, 'a> {
    Gzip { dec: flate2::bufread::DeflateDecoder<&'s mut Stream<'a>>, crc: flate2::Crc },
    Zlib(flate2::bufread::ZlibDecoder<&'s mut Stream<'a>>),
    Bzip2(FuseOnError<bzip2::bufread::BzDecoder<&'s mut Stream<'a>>>),
    Xz { s: &'s mut Stream<'a>, dec: Box<XzStream> },
    Lzma { s: &'s mut Stream<'a>, dec: Box<LzmaStream> },
    Zstd(Box<ruzstd::decoding::StreamingDecoder<&'s mut Stream<'a>, ruzstd::decoding::FrameDecoder>>),
}

enum State<'s, 'a> {
    /// Before the first member, or between members.
    Between(&'s mut Stream<'a>),
    In(Member<'s, 'a>),
    Done,
}

/// Decompresses every member of a compressed stream, reading the compressed bytes from the parent
/// stream exactly (so that whatever follows stays in the parent). Errors end the output and are
/// recorded in the [`Outcome`].
struct Decompressor<'s, 'a, 'o> {
    format: Format,
    state: State<'s, 'a>,
    outcome: &'o mut Outcome,
    start: u64,
    members: u64,
    produced: u64,
    /// (ratio, floor) checked against the compressed bytes consumed so far.
    dynamic: Option<(u64, u64)>,
    mem_kb: u32,
}

impl<'s, 'a, 'o> Decompressor<'s, 'a, 'o> {
    fn new(
        format: Format,
        s: &'s mut Stream<'a>,
        outcome: &'o mut Outcome,
        dynamic: Option<(u64, u64)>,
        mem_kb: u32,
    ) -> Decompressor<'s, 'a, 'o> {
        Decompressor {
            format,
            start: s.position(),
            state: State::Between(s),
            outcome,
            members: 0,
            produced: 0,
            dynamic,
            mem_kb,
        }
    }

    fn fail(&mut self, at: u64, error: &io::Error) {
        if error.kind() == io::ErrorKind::OutOfMemory {
            self.outcome.memory = true;
        } else {
            self.outcome.failure = Some(error.to_string());
        }
        self.outcome.error_at = Some(at);
        self.state = State::Done;
    }

    /// Starts the next member if one follows (the first one always does).
    fn start_member(&mut self, s: &'s mut Stream<'a>) -> io::Result<State<'s, 'a>> {
        let first = self.members == 0;
        if !first && !self.next_member_follows(s)? {
            return Ok(State::Done);
        }
        self.members += 1;
        Ok(State::In(match self.format {
            Format::Gzip => {
                gzip_header(s)?;
                Member::Gzip { dec: flate2::bufread::DeflateDecoder::new(s), crc: flate2::Crc::new() }
            }
            Format::Zlib => Member::Zlib(flate2::bufread::ZlibDecoder::new(s)),
            Format::Bzip2 => Member::Bzip2(FuseOnError::new(bzip2::bufread::BzDecoder::new(s))),
            Format::Zstd => {
                let cap = self.mem_kb.saturating_mul(1024);
                match ruzstd::decoding::StreamingDecoder::new_with_max_window_size(s, u64::from(cap)) {
                    Ok(dec) => Member::Zstd(Box::new(dec)),
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("zstd frame header: {e}"),
                        ));
                    }
                }
            }
            // Python's `lzma.LZMAFile` reads with FORMAT_AUTO (joblib's xz and lzma compressors,
            // pandas): each stream may be xz or lzma-alone, whatever the first one was.
            _ if s.peek(XZ_MAGIC.len())?.starts_with(XZ_MAGIC) => {
                Member::Xz { s, dec: Box::new(XzStream::new_mem_limit(false, self.mem_kb)) }
            }
            _ => Member::Lzma { s, dec: Box::new(LzmaStream::new_mem_limit(self.mem_kb, None)) },
        }))
    }

    /// Whether another member starts here, as the format's Python reader would decide. Padding
    /// that readers skip between members is consumed.
    fn next_member_follows(&self, s: &mut Stream<'_>) -> io::Result<bool> {
        match self.format {
            Format::Gzip => {
                // gzip.GzipFile skips NUL padding after a member.
                loop {
                    let buf = s.fill_buf()?;
                    let zeros = buf.iter().take_while(|&&b| b == 0).count();
                    if zeros == 0 {
                        break;
                    }
                    s.consume(zeros);
                }
                Ok(s.peek(2)? == GZIP_MAGIC)
            }
            Format::Bzip2 => {
                let head = s.peek(10)?;
                Ok(head.len() == 10
                    && head.starts_with(b"BZh")
                    && (b'1'..=b'9').contains(&head[3])
                    && (&head[4..10] == b"1AY&SY" || &head[4..10] == b"\x17\x72\x45\x38\x50\x90"))
            }
            Format::Xz | Format::Lzma => {
                // `lzma.LZMAFile` (FORMAT_AUTO) reads concatenated streams as one, each xz or
                // lzma-alone: a pickle cut across two lzma-alone streams is one pickle to
                // `joblib.load`. After an xz stream, stream padding: NUL bytes in multiples of
                // four.
                loop {
                    let head = s.peek(13)?;
                    if head.starts_with(XZ_MAGIC) || is_lzma_alone(head) {
                        return Ok(true);
                    }
                    if self.format == Format::Xz && head.len() >= 4 && head[..4] == [0; 4] {
                        s.consume_buffered(4);
                        continue;
                    }
                    return Ok(false);
                }
            }
            Format::Zstd => Ok(s.peek(4)?.starts_with(ZSTD_MAGIC)),
            // zlib: one stream; anything after it is trailing data.
            _ => Ok(false),
        }
    }

    fn position(&self) -> Option<u64> {
        Some(match &self.state {
            State::Between(s) => s.position(),
            State::In(Member::Gzip { dec, .. }) => dec.get_ref().position(),
            State::In(Member::Zlib(dec)) => dec.get_ref().position(),
            State::In(Member::Bzip2(dec)) => dec.get_ref().get_ref().position(),
            State::In(Member::Xz { s, .. }) | State::In(Member::Lzma { s, .. }) => s.position(),
            State::In(Member::Zstd(dec)) => dec.get_ref().position(),
            State::Done => return None,
        })
    }

    /// Finishes a member whose decoder has ended: checks the gzip trailer, and returns the state
    /// that follows.
    fn end_member(&mut self, member: Member<'s, 'a>) -> io::Result<State<'s, 'a>> {
        let s = match member {
            Member::Gzip { dec, crc } => {
                let s = dec.into_inner();
                let at = s.position();
                let Some(trailer) = s.read_array::<8>()? else {
                    self.outcome.error_at = Some(at);
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the gzip member ends before its CRC-32 and length",
                    ));
                };
                let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                let stored_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                if stored_crc != crc.sum() || stored_len != crc.amount() {
                    self.outcome.error_at = Some(at);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "gzip member {} stores CRC-32 0x{stored_crc:08x} and length {stored_len}, but its data has CRC-32 0x{:08x} and length {} (mod 2^32); Python's gzip raises here",
                            self.members,
                            crc.sum(),
                            crc.amount()
                        ),
                    ));
                }
                s
            }
            Member::Zlib(dec) => dec.into_inner(),
            Member::Bzip2(dec) => dec.into_inner().into_inner(),
            Member::Xz { s, .. } => s,
            Member::Zstd(dec) => dec.into_inner(),
            Member::Lzma { s, dec } => {
                self.outcome.unused = dec.unused_input().to_vec();
                s
            }
        };
        self.start_member(s)
    }

    fn check_ratio(&mut self) -> bool {
        let Some((ratio, floor)) = self.dynamic else {
            return true;
        };
        let consumed = self.position().map_or(0, |p| p.saturating_sub(self.start)).max(1);
        if self.produced > floor && self.produced > consumed.saturating_mul(ratio) {
            self.outcome.ratio_exceeded = Some((self.produced, ratio));
            self.state = State::Done;
            return false;
        }
        true
    }
}

impl Read for Decompressor<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let at = self.position().unwrap_or(self.start);
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Between(s) => match self.start_member(s) {
                    Ok(state) => self.state = state,
                    Err(e) => {
                        self.fail(at, &e);
                        return Ok(0);
                    }
                },
                State::In(mut member) => match member.read(buf) {
                    Ok(0) => match self.end_member(member) {
                        Ok(state) => self.state = state,
                        Err(e) => {
                            let at = self.outcome.error_at.unwrap_or(at);
                            self.fail(at, &e);
                            return Ok(0);
                        }
                    },
                    Ok(n) => {
                        if let Member::Gzip { crc, .. } = &mut member {
                            crc.update(&buf[..n]);
                        }
                        self.state = State::In(member);
                        self.produced = self.produced.saturating_add(n as u64);
                        if !self.check_ratio() {
                            return Ok(0);
                        }
                        return Ok(n);
                    }
                    Err(e) => {
                        let at = member_position(&member);
                        self.fail(at, &e);
                        return Ok(0);
                    }
                },
            }
        }
    }
}

fn member_position(member: &Member<'_, '_>) -> u64 {
    match member {
        Member::Gzip { dec, .. } => dec.get_ref().position(),
        Member::Zlib(dec) => dec.get_ref().position(),
        Member::Bzip2(dec) => dec.get_ref().get_ref().position(),
        Member::Xz { s, .. } | Member::Lzma { s, .. } => s.position(),
        Member::Zstd(dec) => dec.get_ref().position(),
    }
}

impl Member<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Member::Gzip { dec, .. } => dec.read(buf),
            Member::Zlib(dec) => dec.read(buf),
            Member::Bzip2(dec) => dec.read(buf),
            Member::Xz { s, dec } => push_read(s, |i, o, a| dec.process(i, o, a), buf),
            Member::Lzma { s, dec } => push_read(s, |i, o, a| dec.process(i, o, a), buf),
            Member::Zstd(dec) => dec.read(buf),
        }
    }
}

/// Drives a push-style decoder (`process(input, output, action)`) from a stream's buffer,
/// consuming exactly what it took. Returns 0 at the end of its stream.
fn push_read(
    s: &mut Stream<'_>,
    mut process: impl FnMut(&[u8], &mut [u8], Action) -> io::Result<lzma_rust2::StreamResult>,
    out: &mut [u8],
) -> io::Result<usize> {
    let mut idle = 0;
    loop {
        let input = s.fill_buf()?;
        let action = if input.is_empty() { Action::Finish } else { Action::Run };
        let r = process(input, out, action)?;
        s.consume(r.bytes_consumed);
        if r.bytes_produced > 0 || r.status == Status::StreamEnd {
            return Ok(r.bytes_produced);
        }
        if r.bytes_consumed > 0 {
            idle = 0;
            continue;
        }
        if action == Action::Finish {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the compressed data ends before the end of its stream",
            ));
        }
        idle += 1;
        if idle > 8 {
            return Err(io::Error::other("the decoder made no progress"));
        }
    }
}

/// Parses a gzip member header as Python's `gzip` module does (which ignores reserved flags and
/// does not check the header CRC).
fn gzip_header(s: &mut Stream<'_>) -> io::Result<()> {
    let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "the data ends inside a gzip header");
    let fixed = s.read_array::<10>()?.ok_or_else(truncated)?;
    if &fixed[..2] != GZIP_MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a gzip header"));
    }
    if fixed[2] != 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown gzip compression method {}", fixed[2]),
        ));
    }
    let flags = fixed[3];
    if flags & 0x04 != 0 {
        let len = s.read_array::<2>()?.ok_or_else(truncated)?;
        let len = u64::from(u16::from_le_bytes(len));
        if s.skip(len)? != len {
            return Err(truncated());
        }
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 && !skip_c_string(s)? {
            return Err(truncated());
        }
    }
    if flags & 0x02 != 0 && s.skip(2)? != 2 {
        return Err(truncated());
    }
    Ok(())
}

/// Consumes bytes up to and including a NUL; false if the stream ends first.
fn skip_c_string(s: &mut Stream<'_>) -> io::Result<bool> {
    loop {
        let buf = s.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        if let Some(i) = buf.iter().position(|&b| b == 0) {
            s.consume(i + 1);
            return Ok(true);
        }
        let n = buf.len();
        s.consume(n);
    }
}

/// Scans what follows a stream whose decoder took in the first bytes of it: those bytes, then the
/// rest of the parent stream, as one trailing child.
fn trailing_with_prefix(prefix: Vec<u8>, s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) {
    let offset = s.position().saturating_sub(prefix.len() as u64);
    let reader = io::Cursor::new(prefix).chain(s.take_next(u64::MAX));
    scan_trailing(reader, offset, ctx, node);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Limits, Options, scan_bytes};
    use std::io::Write;

    /// A protocol-0 pickle that imports `posix.system` and calls it.
    pub(crate) const EVIL: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";
    /// A harmless protocol-2 pickle (`{}`).
    const BENIGN: &[u8] = b"\x80\x02}q\x00.";

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).expect("xz writer");
        w.write_all(data).expect("write");
        w.finish().expect("finish")
    }

    fn lzma_alone(data: &[u8]) -> Vec<u8> {
        let options = lzma_rust2::LzmaOptions::with_preset(1);
        let mut w = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &options, None).expect("lzma writer");
        w.write_all(data).expect("write");
        w.finish().expect("finish")
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    /// Python's `lzma.compress(EVIL, format=FORMAT_XZ)`.
    const PY_XZ: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a301001f63706f7369780a73797374656d0a2853276563686f2070776e6564270a74522e00e5f16ab424054fe3000138201829770c1fb6f37d010000000004595a";
    /// Python's `lzma.compress(EVIL, format=FORMAT_ALONE)` (what joblib writes for 'lzma').
    const PY_LZMA: &str = "5d00008000ffffffffffffffff00319c0a22f60cf80ba3dbdb6d007db60e9320cc54668e6de476fea44dba0ef934a2dfafdc1ffffeef8000";
    /// Python's `bz2.compress(EVIL)`.
    const PY_BZ2: &str = "425a68393141592653592fe16945000005d380001040c118000e63cce020003140d34323262140d0c9a32621bdd3658262e1d0543ac0fe70658490e22bf1772453850902fe169450";

    fn globals(node: &Node) -> Vec<String> {
        node.pickle().map(|p| p.globals.iter().map(|g| g.qualified()).collect()).unwrap_or_default()
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// A zstd frame whose header asks for a window larger than the in-memory limit: a finding,
    /// and nothing allocated for it.
    #[test]
    fn a_zstd_window_beyond_the_memory_limit_is_refused() {
        // Frame header: magic, descriptor 0x00 (window descriptor present, no content size),
        // window descriptor 0xf0 (exponent 30: a 1 TiB window), then a raw last block.
        let mut data = ZSTD_MAGIC.to_vec();
        data.extend_from_slice(&[0x00, 0xf0, 0x01, 0x00, 0x00]);
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Zstd);
        assert!(!root.notes.is_empty() || root.children.iter().any(|c| !c.notes.is_empty()), "{root:?}");
    }

    pub(crate) fn scan_with(data: &[u8], limits: Limits) -> Node {
        scan_bytes(data, Options { limits, trace: None })
    }

    #[test]
    fn every_format_exposes_the_pickle() {
        let cases: Vec<(Format, Vec<u8>)> = vec![
            (Format::Gzip, gzip(EVIL)),
            (Format::Zlib, zlib(EVIL)),
            (Format::Bzip2, bzip2(EVIL)),
            (Format::Xz, xz(EVIL)),
            (Format::Lzma, lzma_alone(EVIL)),
            (Format::Xz, hex(PY_XZ)),
            (Format::Lzma, hex(PY_LZMA)),
            (Format::Bzip2, hex(PY_BZ2)),
            (Format::Zstd, zstd(EVIL)),
            // Two frames, the pickle cut between them: read as one stream.
            (Format::Zstd, [zstd(&EVIL[..10]), zstd(&EVIL[10..])].concat()),
        ];
        for (format, data) in cases {
            let root = scan_bytes(&data, Options::default());
            assert_eq!(root.format, format);
            assert_eq!(root.size, data.len() as u64);
            assert!(root.notes.is_empty(), "{format}: {:?}", root.notes);
            assert_eq!(root.children.len(), 1, "{format}");
            let child = &root.children[0];
            assert_eq!(child.relation, Some(Relation::Decompressed));
            assert_eq!(child.name, format!("decompressed {format}"));
            assert_eq!(child.size, EVIL.len() as u64);
            assert_eq!(child.format, Format::Pickle);
            assert_eq!(globals(child), vec!["posix.system".to_string()], "{format}");
        }
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut data = gzip(BENIGN);
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend(gzip(EVIL));
        let root = scan_bytes(&data, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        let child = &root.children[0];
        assert_eq!(child.size, (BENIGN.len() + EVIL.len()) as u64);
        assert_eq!(globals(child), vec!["posix.system".to_string()]);
    }

    #[test]
    fn concatenated_bzip2_and_xz_streams_are_read_to_the_end() {
        for (a, b) in [
            (bzip2(BENIGN), bzip2(EVIL)),
            (xz(BENIGN), {
                let mut v = vec![0u8; 8];
                v.extend(xz(EVIL));
                v
            }),
        ] {
            let data = [a, b].concat();
            let root = scan_bytes(&data, Options::default());
            assert!(root.notes.is_empty(), "{:?}", root.notes);
            assert_eq!(globals(&root.children[0]), vec!["posix.system".to_string()]);
        }
    }

    #[test]
    fn data_after_the_stream_is_trailing() {
        let cases = [gzip(BENIGN), zlib(BENIGN), bzip2(BENIGN), xz(BENIGN), lzma_alone(BENIGN)];
        for compressed in cases {
            let data = [compressed.clone(), EVIL.to_vec()].concat();
            let root = scan_bytes(&data, Options::default());
            assert_eq!(kinds(&root), vec![NoteKind::TrailingData], "{}", root.format);
            assert_eq!(root.children.len(), 2);
            assert_eq!(root.children[0].size, BENIGN.len() as u64);
            let trailing = &root.children[1];
            assert_eq!(trailing.relation, Some(Relation::Trailing));
            assert_eq!(trailing.parent_offset, Some(compressed.len() as u64));
            assert_eq!(trailing.size, EVIL.len() as u64, "{}", root.format);
            assert_eq!(globals(trailing), vec!["posix.system".to_string()]);
        }
    }

    /// The pickle followed by incompressible filler, so that a cut halfway leaves the pickle in
    /// the decompressed part.
    fn evil_then_filler() -> Vec<u8> {
        let mut data = EVIL.to_vec();
        let mut x = 0x1234_5678u32;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push(x as u8);
        }
        data
    }

    #[test]
    fn truncated_data_is_malformed_and_the_prefix_inspected() {
        let plain = evil_then_filler();
        for compressed in [gzip(&plain), zlib(&plain), bzip2(&plain), xz(&plain), lzma_alone(&plain)] {
            let cut = &compressed[..compressed.len() / 2];
            let root = scan_bytes(cut, Options::default());
            assert!(kinds(&root).contains(&NoteKind::Malformed), "{}: {:?}", root.format, root.notes);
            let child = &root.children[0];
            assert!(child.size > 0 && child.size < plain.len() as u64, "{}: {}", root.format, child.size);
            assert_eq!(globals(child), vec!["posix.system".to_string()], "{}", root.format);
        }
    }

    #[test]
    fn corrupt_gzip_crc_is_malformed() {
        let mut data = gzip(EVIL);
        let n = data.len();
        data[n - 8] ^= 0xff;
        let root = scan_bytes(&data, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::Malformed]);
        assert!(root.notes[0].detail.contains("CRC-32"));
        assert_eq!(globals(&root.children[0]), vec!["posix.system".to_string()]);
    }

    fn small_limits() -> Limits {
        Limits { ratio_floor: 1 << 20, max_ratio: 100, ..Limits::default() }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_ratio_limit() {
        // 200 members of 1 MiB of zeros: 200 MiB from about 200 KiB.
        let member = gzip(&vec![0u8; 1 << 20]);
        let data: Vec<u8> = member.iter().copied().cycle().take(member.len() * 200).collect();
        let root = scan_with(&data, small_limits());
        let child = &root.children[0];
        assert!(kinds(child).contains(&NoteKind::LimitExceeded), "{:?}", child.notes);
        let allowed = (data.len() as u64 * 100).max(1 << 20);
        assert!(child.size <= allowed + 1, "{} > {allowed}", child.size);
        assert!(child.size < 200 << 20);
        // Everything compressed was still read and hashed.
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn bombs_in_every_format_stop() {
        let zeros = vec![0u8; 8 << 20];
        let limits = Limits { ratio_floor: 1 << 20, max_ratio: 10, ..Limits::default() };
        for data in [zlib(&zeros), bzip2(&zeros), xz(&zeros), lzma_alone(&zeros)] {
            let root = scan_with(&data, limits.clone());
            let child = &root.children[0];
            assert!(kinds(child).contains(&NoteKind::LimitExceeded), "{}: {:?}", root.format, child.notes);
            assert!(child.size < 8 << 20);
        }
    }

    #[test]
    fn the_total_expansion_limit_applies() {
        let data = gzip(&vec![7u8; 3 << 20]);
        let limits = Limits { max_expanded_bytes: 1 << 20, ..Limits::default() };
        let root = scan_with(&data, limits);
        let child = &root.children[0];
        assert!(kinds(child).contains(&NoteKind::LimitExceeded));
        assert!(child.size <= (1 << 20) + 1);
    }

    #[test]
    fn a_nested_bomb_without_random_access_stops_at_the_ratio() {
        // gzip inside gzip: the inner stream has no window, so its ratio is checked as it goes.
        let inner = gzip(&vec![0u8; 16 << 20]);
        let outer = gzip(&inner);
        let limits = Limits { ratio_floor: 1 << 20, max_ratio: 50, ..Limits::default() };
        let root = scan_with(&outer, limits);
        let inner_node = &root.children[0];
        assert_eq!(inner_node.format, Format::Gzip);
        let content = &inner_node.children[0];
        assert!(kinds(content).contains(&NoteKind::LimitExceeded), "{:?}", content.notes);
        assert!(content.size < 16 << 20);
    }

    #[test]
    fn a_huge_lzma_dictionary_is_refused() {
        let mut data = lzma_alone(EVIL);
        data[1..5].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        let root = scan_bytes(&data, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::LimitExceeded]);
        assert!(root.children.is_empty());
        assert_eq!(root.size, data.len() as u64);
        // A dictionary within the limit is fine (preset 1 declares 1 MiB).
        let limits = Limits { max_in_memory: 1 << 20, ..Limits::default() };
        let root = scan_with(&lzma_alone(EVIL), limits);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
    }

    #[test]
    fn an_xz_dictionary_over_the_limit_is_a_limit() {
        let big = {
            let mut options = lzma_rust2::XzOptions::with_preset(1);
            options.lzma_options.dict_size = 32 << 20;
            let mut w = lzma_rust2::XzWriter::new(Vec::new(), options).expect("writer");
            w.write_all(EVIL).expect("write");
            w.finish().expect("finish")
        };
        // 1 MiB of dictionary (plus the decoder's overhead allowance) is not enough.
        let limits = Limits { max_in_memory: 1 << 20, ..Limits::default() };
        let root = scan_with(&big, limits);
        assert!(kinds(&root).contains(&NoteKind::LimitExceeded), "{:?}", root.notes);
        assert_eq!(root.children[0].size, 0);
        // The default limit is.
        let root = scan_bytes(&big, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(globals(&root.children[0]), vec!["posix.system".to_string()]);
    }

    #[test]
    fn gzip_header_fields_are_skipped() {
        // FEXTRA, FNAME, FCOMMENT, FHCRC all set.
        let mut data = vec![0x1f, 0x8b, 8, 0x1e, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        data.extend_from_slice(b"name\0comment\0");
        data.extend_from_slice(&[0, 0]);
        let plain = gzip(EVIL);
        data.extend_from_slice(&plain[10..]);
        let root = scan_bytes(&data, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(globals(&root.children[0]), vec!["posix.system".to_string()]);
    }

    /// Deterministic pseudo-random numbers for the robustness tests.
    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Every prefix and a few hundred byte flips of `sample` scan without panicking; the whole
    /// input is always accounted for.
    pub(crate) fn robustness(sample: &[u8], flips: usize, seed: u64) {
        let limits = Limits { ratio_floor: 1 << 20, max_in_memory: 1 << 20, ..Limits::default() };
        for cut in 0..=sample.len() {
            let root = scan_with(&sample[..cut], limits.clone());
            assert_eq!(root.size, cut as u64);
        }
        let mut rng = Rng(seed);
        for _ in 0..flips {
            let mut m = sample.to_vec();
            for _ in 0..1 + rng.next() % 3 {
                let at = (rng.next() % m.len() as u64) as usize;
                m[at] = rng.next() as u8;
            }
            let root = scan_with(&m, limits.clone());
            assert_eq!(root.size, m.len() as u64);
        }
    }

    #[test]
    fn robustness_truncations_and_flips() {
        let plain = [BENIGN, EVIL, &[0u8; 300]].concat();
        for (seed, sample) in
            [gzip(&plain), zlib(&plain), bzip2(&plain), xz(&plain), lzma_alone(&plain)].iter().enumerate()
        {
            robustness(sample, 300, seed as u64 + 1);
        }
    }
}
