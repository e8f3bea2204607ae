//! The one place where bytes are read.
//!
//! A [`Stream`] is a forward-only reader with a small look-ahead buffer. Every byte it pulls from
//! the underlying reader is fed, exactly once, to a SHA-256 hasher before any parser sees it, so a
//! scan reads each byte once and still reports the digest of the whole stream. Parsers never read
//! the underlying file themselves: they `peek`, `read` and `skip` through a `Stream`, and when they
//! are done [`Stream::finish`] drains whatever they did not need, so the digest always covers
//! every byte.
//!
//! Formats whose index lives at the end (zip) additionally need a little random access. That is
//! what a [`Window`] gives: positioned reads of a byte range without moving the stream. Random
//! reads are not hashed; they only locate structures that the forward pass then reads (and hashes)
//! in order.

use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Size of one read from the underlying reader. 64–256 KiB keeps the buffer in L2 while keeping
/// syscall overhead negligible (`docs/performance.md`).
pub const CHUNK: usize = 128 * 1024;

/// [`Limits::PEEK`](crate::Limits::PEEK)
pub const MAX_PEEK: usize = crate::limits::Limits::PEEK;

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// Streams at least this long hash on a helper thread, so hashing the whole file overlaps with
/// parsing (and with hashing archive members) on the scanning thread.
pub const THREADED_HASH_THRESHOLD: u64 = 8 * 1024 * 1024;

/// How a stream hashes the bytes it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    /// Do not hash (the bytes were already hashed on their way into memory).
    None,
    /// Hash on the reading thread.
    Inline,
    /// Hash on a helper thread.
    Threaded,
}

enum Hasher {
    None,
    Inline(Box<Sha256>),
    Threaded(ThreadedSha256),
}

impl Hasher {
    fn new(mode: HashMode) -> Hasher {
        match mode {
            HashMode::None => Hasher::None,
            HashMode::Inline => Hasher::Inline(Box::default()),
            HashMode::Threaded => match ThreadedSha256::spawn() {
                Some(threaded) => Hasher::Threaded(threaded),
                None => Hasher::Inline(Box::default()),
            },
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::None => {}
            Hasher::Inline(h) => h.update(data),
            Hasher::Threaded(h) => h.update(data),
        }
    }

    fn finalize(self) -> Sha256Digest {
        match self {
            Hasher::None => [0; 32],
            Hasher::Inline(h) => h.finalize().into(),
            Hasher::Threaded(h) => h.finalize(),
        }
    }
}

/// SHA-256 computed on a helper thread. Chunks are copied into pooled buffers and sent over a
/// bounded channel, so memory stays at a few chunks whatever the stream length.
struct ThreadedSha256 {
    tx: Option<SyncSender<Vec<u8>>>,
    pool: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<Sha256Digest>>,
    fallback: Option<Box<Sha256>>,
}

impl ThreadedSha256 {
    fn spawn() -> Option<ThreadedSha256> {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let (pool_tx, pool) = sync_channel::<Vec<u8>>(8);
        let handle = std::thread::Builder::new()
            .name("modelgate-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for chunk in rx {
                    hasher.update(&chunk);
                    // The pool may be full or gone; either way the buffer is simply dropped.
                    let _ = pool_tx.try_send(chunk);
                }
                hasher.finalize().into()
            })
            .ok()?;
        Some(ThreadedSha256 { tx: Some(tx), pool, handle: Some(handle), fallback: None })
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(fallback) = &mut self.fallback {
            fallback.update(data);
            return;
        }
        let mut buf = self.pool.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.clear();
        buf.extend_from_slice(data);
        let sent = self.tx.as_ref().map(|tx| tx.send(buf).is_ok()).unwrap_or(false);
        if !sent {
            // The helper thread is gone (it cannot panic on its own, but be robust): a digest
            // of part of the stream would be wrong, so poison the result loudly instead.
            self.fallback = Some(Box::default());
        }
    }

    fn finalize(mut self) -> Sha256Digest {
        drop(self.tx.take());
        let joined = self.handle.take().map(|h| h.join());
        match (self.fallback, joined) {
            (None, Some(Ok(digest))) => digest,
            // Unreachable in practice; an all-ones digest never matches a pin.
            _ => [0xff; 32],
        }
    }
}

/// Random access to a range of bytes: the scanned file itself, an in-memory buffer, or a window
/// into either.
pub trait RandomAccess {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Reads at `offset`, like `pread`; returns the number of bytes read (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// True when the range is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn slice_read_at(data: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    if start >= data.len() {
        return 0;
    }
    let n = buf.len().min(data.len() - start);
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}

/// Random access to a file through positioned reads, which never move the file cursor that the
/// forward [`Stream`] uses.
pub struct FileRandomAccess {
    file: std::fs::File,
    len: u64,
}

impl FileRandomAccess {
    /// Wraps an open file whose length is `len`.
    pub fn new(file: std::fs::File, len: u64) -> FileRandomAccess {
        FileRandomAccess { file, len }
    }
}

impl RandomAccess for FileRandomAccess {
    fn len(&self) -> u64 {
        self.len
    }
    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }
    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        // The handle is dedicated to random access, so moving its cursor is harmless.
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Dyn(&'a dyn RandomAccess),
    Slice(&'a [u8]),
}

impl Source<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Dyn(ra) => ra.read_at(offset, buf),
            Source::Slice(data) => Ok(slice_read_at(data, offset, buf)),
        }
    }
}

/// A byte range of some [`RandomAccess`] (or of memory), addressed from 0.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    source: Source<'a>,
    base: u64,
    len: u64,
}

impl<'a> Window<'a> {
    /// The whole of `source`.
    pub fn new(source: &'a dyn RandomAccess) -> Window<'a> {
        Window { source: Source::Dyn(source), base: 0, len: source.len() }
    }

    /// The whole of a byte slice.
    pub fn from_slice(data: &'a [u8]) -> Window<'a> {
        Window { source: Source::Slice(data), base: 0, len: data.len() as u64 }
    }

    /// Length of the window.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A sub-range, or `None` if it does not fit inside this window.
    pub fn sub(&self, offset: u64, len: u64) -> Option<Window<'a>> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then_some(Window { source: self.source, base: self.base + offset, len })
    }

    /// Reads exactly `buf.len()` bytes at `offset` (relative to the window).
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the window"));
        }
        let mut done = 0;
        while done < buf.len() {
            match self.source.read_at(self.base + offset + done as u64, &mut buf[done..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A forward reader over `[offset, offset + len)` of the window.
    pub fn reader(&self, offset: u64, len: u64) -> Option<WindowReader<'a>> {
        let window = self.sub(offset, len)?;
        Some(WindowReader { window, pos: 0 })
    }
}

/// Reads a [`Window`] front to back.
pub struct WindowReader<'a> {
    window: Window<'a>,
    pos: u64,
}

impl Read for WindowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.window.len - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.window.source.read_at(self.window.base + self.pos, &mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// A line read by [`Stream::read_line`]: a bounded prefix of its bytes, and its full length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The first bytes of the line, without the newline (at most the `keep` asked for).
    pub prefix: Vec<u8>,
    /// Length of the line without the newline.
    pub len: u64,
    /// False when the stream ended before a newline.
    pub terminated: bool,
}

impl Line {
    /// True when `prefix` holds the whole line.
    pub fn is_complete(&self) -> bool {
        self.prefix.len() as u64 == self.len
    }
}

/// A forward-only, hashing, peekable reader. See the module documentation.
pub struct Stream<'a> {
    inner: Box<dyn Read + 'a>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    hasher: Hasher,
    eof: bool,
    window: Option<Window<'a>>,
}

impl<'a> Stream<'a> {
    /// A stream over `inner`, hashing as `mode` says.
    pub fn new(inner: impl Read + 'a, mode: HashMode) -> Stream<'a> {
        Stream {
            inner: Box::new(inner),
            buf: vec![0; CHUNK + MAX_PEEK].into_boxed_slice(),
            start: 0,
            end: 0,
            base: 0,
            hasher: Hasher::new(mode),
            eof: false,
            window: None,
        }
    }

    /// Attaches random access to the same bytes this stream reads (offsets are stream offsets).
    pub fn with_window(mut self, window: Window<'a>) -> Stream<'a> {
        self.window = Some(window);
        self
    }

    /// Random access to this stream's bytes, when the bytes come from something seekable.
    pub fn window(&self) -> Option<Window<'a>> {
        self.window
    }

    /// Offset of the next byte a read would return.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Makes at least `want` bytes available (fewer only at the end of the stream) and returns
    /// everything buffered. `want` is capped at [`MAX_PEEK`].
    pub fn fill(&mut self, want: usize) -> io::Result<&[u8]> {
        let want = want.min(MAX_PEEK);
        if self.end - self.start < want && !self.eof {
            if self.buf.len() - self.start < want {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            while self.end - self.start < want && !self.eof {
                let n = read_retrying(&mut *self.inner, &mut self.buf[self.end..])?;
                if n == 0 {
                    self.eof = true;
                } else {
                    self.hasher.update(&self.buf[self.end..self.end + n]);
                    self.end += n;
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Up to `n` bytes of look-ahead (fewer only at the end of the stream); nothing is consumed.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let avail = self.fill(n)?;
        Ok(&avail[..avail.len().min(n)])
    }

    /// True when every byte has been consumed.
    pub fn at_eof(&mut self) -> io::Result<bool> {
        Ok(self.fill(1)?.is_empty())
    }

    /// Marks `n` buffered bytes as consumed. Panics if fewer are buffered (a caller bug).
    pub fn consume_buffered(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "consumed more than was buffered");
        self.start += n;
    }

    /// Reads one byte, or `None` at the end.
    #[inline]
    pub fn read_u8(&mut self) -> io::Result<Option<u8>> {
        if self.start < self.end {
            let b = self.buf[self.start];
            self.start += 1;
            return Ok(Some(b));
        }
        let byte = self.fill(1)?.first().copied();
        if byte.is_some() {
            self.start += 1;
        }
        Ok(byte)
    }

    /// Reads exactly `N` bytes, or `None` if the stream ends first (the partial bytes are consumed).
    #[inline]
    pub fn read_array<const N: usize>(&mut self) -> io::Result<Option<[u8; N]>> {
        if let Some(bytes) = self.buf.get(self.start..self.start + N)
            && self.start + N <= self.end
        {
            let mut out = [0u8; N];
            out.copy_from_slice(bytes);
            self.start += N;
            return Ok(Some(out));
        }
        let avail = self.fill(N)?;
        if avail.len() < N {
            let n = avail.len();
            self.start += n;
            return Ok(None);
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&avail[..N]);
        self.start += N;
        Ok(Some(out))
    }

    /// Reads up to `n` bytes into a new vector; shorter only at the end of the stream. The caller
    /// bounds `n`: this allocates it.
    pub fn read_vec(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(CHUNK));
        while out.len() < n {
            let avail = self.fill((n - out.len()).min(MAX_PEEK))?;
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(n - out.len());
            out.extend_from_slice(&avail[..take]);
            self.start += take;
        }
        Ok(out)
    }

    /// Consumes `n` bytes, keeping the first `keep` of them. Returns the kept bytes and how many
    /// were consumed in all (less than `n` only at the end of the stream).
    pub fn read_prefix_skip_rest(&mut self, n: u64, keep: usize) -> io::Result<(Vec<u8>, u64)> {
        let keep = (keep as u64).min(n) as usize;
        let kept = self.read_vec(keep)?;
        let skipped = if kept.len() == keep { self.skip(n - keep as u64)? } else { 0 };
        Ok((kept.clone(), kept.len() as u64 + skipped))
    }

    /// Consumes `n` bytes (hashing them) without keeping them. Returns how many were consumed:
    /// less than `n` only at the end of the stream.
    pub fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let buffered = (self.end - self.start) as u64;
            if buffered > 0 {
                let take = buffered.min(left) as usize;
                self.start += take;
                left -= take as u64;
                continue;
            }
            if self.eof {
                break;
            }
            // Refill from the start of the buffer: nothing buffered needs keeping.
            self.base += self.end as u64;
            self.start = 0;
            self.end = 0;
            let cap = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX).max(CHUNK));
            let got = read_retrying(&mut *self.inner, &mut self.buf[..cap])?;
            if got == 0 {
                self.eof = true;
            } else {
                self.hasher.update(&self.buf[..got]);
                self.end = got;
            }
        }
        Ok(n - left)
    }

    /// Reads a `\n`-terminated line, keeping at most `keep` bytes of it but consuming all of it.
    pub fn read_line(&mut self, keep: usize) -> io::Result<Line> {
        let mut prefix = Vec::new();
        let mut len = 0u64;
        loop {
            let avail = self.fill(1)?;
            if avail.is_empty() {
                return Ok(Line { prefix, len, terminated: false });
            }
            let (chunk, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], true),
                None => (avail, false),
            };
            let room = keep.saturating_sub(prefix.len());
            prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
            len += chunk.len() as u64;
            let used = chunk.len() + usize::from(found);
            self.start += used;
            if found {
                return Ok(Line { prefix, len, terminated: true });
            }
        }
    }

    /// A reader over the next `n` bytes of this stream.
    pub fn take_next(&mut self, n: u64) -> Take<'_, 'a> {
        Take { stream: self, left: n }
    }

    /// Consumes the rest of the stream and returns its total length and SHA-256.
    pub fn finish(mut self) -> io::Result<(u64, Sha256Digest)> {
        self.skip(u64::MAX)?;
        let len = self.base + self.end as u64;
        Ok((len, self.hasher.finalize()))
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && out.len() >= CHUNK && !self.eof {
            // Large read with nothing buffered: read straight into the caller's buffer.
            let n = read_retrying(&mut *self.inner, out)?;
            if n == 0 {
                self.eof = true;
            }
            self.hasher.update(&out[..n]);
            self.base += self.end as u64 + n as u64;
            self.start = 0;
            self.end = 0;
            return Ok(n);
        }
        let avail = self.fill(1)?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.start += n;
        Ok(n)
    }
}

impl BufRead for Stream<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.fill(1)?;
        }
        Ok(&self.buf[self.start..self.end])
    }
    fn consume(&mut self, amt: usize) {
        self.start += amt.min(self.end - self.start);
    }
}

/// The next `n` bytes of a [`Stream`], as a reader. Dropping it early leaves the rest unread.
pub struct Take<'s, 'a> {
    stream: &'s mut Stream<'a>,
    left: u64,
}

impl Take<'_, '_> {
    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// Consumes the rest; returns how many bytes were skipped.
    pub fn skip_rest(&mut self) -> io::Result<u64> {
        let n = self.stream.skip(self.left)?;
        self.left -= n;
        Ok(n)
    }
}

impl Read for Take<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = (out.len() as u64).min(self.left) as usize;
        let n = self.stream.read(&mut out[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl BufRead for Take<'_, '_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.left == 0 {
            return Ok(&[]);
        }
        let buf = self.stream.fill_buf()?;
        let n = (buf.len() as u64).min(self.left) as usize;
        Ok(&buf[..n])
    }
    fn consume(&mut self, amt: usize) {
        let amt = (amt as u64).min(self.left) as usize;
        self.stream.consume(amt);
        self.left -= amt as u64;
    }
}

fn read_retrying(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Hex form of a digest.
pub fn hex(digest: &Sha256Digest) -> String {
    use std::fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> Sha256Digest {
        Sha256::digest(data).into()
    }

    /// A reader that returns at most 7 bytes per call, to exercise refills.
    struct Dribble<'d>(&'d [u8]);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn digest_covers_every_byte_whatever_is_consumed() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for mode in [HashMode::Inline, HashMode::Threaded] {
            let mut s = Stream::new(Dribble(&data), mode);
            assert_eq!(s.peek(3).unwrap(), &data[..3]);
            assert_eq!(s.read_u8().unwrap(), Some(data[0]));
            s.skip(1000).unwrap();
            assert_eq!(s.position(), 1001);
            let v = s.read_vec(70_000).unwrap();
            assert_eq!(v, &data[1001..71_001]);
            let (len, digest) = s.finish().unwrap();
            assert_eq!(len, data.len() as u64);
            assert_eq!(digest, sha(&data));
        }
    }

    #[test]
    fn peek_across_refills_and_lines() {
        let mut data = b"abc\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 200_000));
        data.extend_from_slice(b"\nend");
        let mut s = Stream::new(Dribble(&data), HashMode::Inline);
        let line = s.read_line(2).unwrap();
        assert_eq!(line, Line { prefix: b"ab".to_vec(), len: 3, terminated: true });
        let long = s.read_line(10).unwrap();
        assert_eq!(long.len, 200_000);
        assert!(long.terminated);
        assert_eq!(s.peek(MAX_PEEK).unwrap(), b"end");
        let last = s.read_line(10).unwrap();
        assert!(!last.terminated);
        assert!(s.at_eof().unwrap());
        assert_eq!(s.finish().unwrap().1, sha(&data));
    }

    #[test]
    fn take_limits_reads_and_large_reads_bypass_buffer() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut s = Stream::new(&data[..], HashMode::Inline);
        let mut first = vec![0; 10];
        s.read_exact(&mut first).unwrap();
        let mut t = s.take_next(500_000);
        let mut got = Vec::new();
        t.read_to_end(&mut got).unwrap();
        assert_eq!(got, &data[10..500_010]);
        let mut big = vec![0; 300_000];
        s.read_exact(&mut big).unwrap();
        assert_eq!(big, &data[500_010..800_010]);
        assert_eq!(s.position(), 800_010);
        assert_eq!(s.finish().unwrap(), (1_000_000, sha(&data)));
    }

    #[test]
    fn windows_bound_reads() {
        let data = b"0123456789".to_vec();
        let w = Window::from_slice(&data);
        let sub = w.sub(2, 5).unwrap();
        let mut buf = [0; 3];
        sub.read_exact_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"345");
        assert!(sub.read_exact_at(3, &mut buf).is_err());
        assert!(w.sub(8, 3).is_none());
        let mut r = sub.reader(1, 4).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"3456");
    }
}
