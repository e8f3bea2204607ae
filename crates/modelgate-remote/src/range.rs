//! Random access to a remote file with HTTP range requests, checked against the download.
//!
//! Some formats keep their index at the end (a zip's central directory) or are listed before
//! they are read (tar, 7z). For a local file the scanner reads those with positioned reads; for
//! a download of many gigabytes that cannot be held in memory, [`RangeAccess`] fetches just the
//! bytes asked for, in aligned blocks of [`BLOCK`] bytes, while the body streams into the scanner.
//!
//! A server could answer a range request with other bytes than it puts in the body (a benign
//! central directory for the scanner, a payload for everyone else). So every block fetched by
//! range is hashed, the body is hashed block by block as it streams past ([`Consistency`]), and
//! any difference is reported ([`crate::fetch::Problem::Inconsistent`]); the file's digest is
//! always that of the body.
//!
//! Memory: [`CACHE_BLOCKS`] cached blocks (4 MiB), plus, for a large read (a central directory,
//! itself bounded by the zip reader at 64 MiB), the caller's buffer; 16 bytes per block of the
//! file for the body's block digests (64 KiB per GiB). Traffic: at most [`MAX_RANDOM_BYTES`] and
//! [`MAX_RANDOM_REQUESTS`] per file; beyond that reads fail and the scanner reports what it could
//! not inspect (it never passes it silently).

use crate::display_url;
use crate::http::{Deadline, Http, Timed, Want};
use modelgate_formats::stream::RandomAccess;
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header::CONTENT_RANGE;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

/// Alignment and size of the blocks fetched and compared.
pub const BLOCK: u64 = 256 << 10;
/// Blocks kept in memory for small reads.
pub const CACHE_BLOCKS: usize = 16;
/// Bytes fetched by range requests for one file, at most.
pub const MAX_RANDOM_BYTES: u64 = 256 << 20;
/// Range requests for one file, at most.
pub const MAX_RANDOM_REQUESTS: u32 = 2048;

type BlockDigest = [u8; 16];

fn digest(data: &[u8]) -> BlockDigest {
    let full = Sha256::digest(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Block digests of the body as it streams, compared with the blocks fetched by range.
#[derive(Default)]
pub struct Consistency {
    /// Digests of the body's complete blocks, in order.
    body: Vec<BlockDigest>,
    /// The block being streamed.
    current: Sha256,
    current_len: u64,
    /// Digests of blocks fetched by range before the body reached them.
    pending: BTreeMap<u64, BlockDigest>,
    /// Offset of the first block whose bytes differ.
    mismatch: Option<u64>,
}

impl Consistency {
    /// Feeds body bytes, in order.
    pub fn body(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (BLOCK - self.current_len) as usize;
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            self.current_len += take as u64;
            data = &data[take..];
            if self.current_len == BLOCK {
                self.close_block();
            }
        }
    }

    /// Ends the body (its last block may be short).
    pub fn end(&mut self) {
        if self.current_len > 0 {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        let hasher = std::mem::take(&mut self.current);
        let mut d = [0u8; 16];
        d.copy_from_slice(&hasher.finalize()[..16]);
        let index = self.body.len() as u64;
        if let Some(fetched) = self.pending.remove(&index)
            && fetched != d
        {
            self.note_mismatch(index);
        }
        self.body.push(d);
        self.current_len = 0;
    }

    fn fetched(&mut self, index: u64, d: BlockDigest) {
        match self.body.get(index as usize) {
            Some(seen) if *seen != d => self.note_mismatch(index),
            Some(_) => {}
            None => {
                if self.pending.insert(index, d).is_some_and(|before| before != d) {
                    self.note_mismatch(index);
                }
            }
        }
    }

    fn note_mismatch(&mut self, index: u64) {
        let at = index * BLOCK;
        self.mismatch = Some(self.mismatch.map_or(at, |m| m.min(at)));
    }

    /// The first offset where a range answer differed from the body, if any.
    pub fn mismatch(&self) -> Option<u64> {
        self.mismatch
    }

    /// Blocks fetched by range that the body never reached (it was shorter than declared).
    pub fn unconfirmed(&self) -> usize {
        self.pending.len()
    }
}

/// Random access over HTTP range requests. See the module documentation.
pub struct RangeAccess<'h> {
    http: &'h Http,
    url: Url,
    len: u64,
    consistency: Rc<RefCell<Consistency>>,
    state: RefCell<State>,
    deadline: Option<Deadline>,
}

#[derive(Default)]
struct State {
    cache: VecDeque<(u64, Vec<u8>)>,
    bytes: u64,
    requests: u32,
}

impl<'h> RangeAccess<'h> {
    /// Random access to the `len` bytes at `url`, checked through `consistency` (which the body
    /// reader must feed).
    pub fn new(http: &'h Http, url: Url, len: u64, consistency: Rc<RefCell<Consistency>>) -> RangeAccess<'h> {
        RangeAccess { http, url, len, consistency, state: RefCell::new(State::default()), deadline: None }
    }

    /// Range requests (and reading their answers) stop at `deadline`: the file's transfer
    /// deadline covers its random access too.
    pub fn within(mut self, deadline: Deadline) -> RangeAccess<'h> {
        self.deadline = Some(deadline);
        self
    }

    /// Range requests made so far.
    pub fn requests(&self) -> u32 {
        self.state.borrow().requests
    }

    /// Fetches blocks `first..=last` in one request and hands each to `each` (index, bytes).
    fn fetch_blocks(&self, first: u64, last: u64, mut each: impl FnMut(u64, &[u8])) -> io::Result<()> {
        let start = first * BLOCK;
        let end = ((last + 1) * BLOCK).min(self.len);
        {
            let mut st = self.state.borrow_mut();
            if st.requests >= MAX_RANDOM_REQUESTS || st.bytes + (end - start) > MAX_RANDOM_BYTES {
                return Err(io::Error::other(format!(
                    "random-access budget spent ({MAX_RANDOM_REQUESTS} range requests or {MAX_RANDOM_BYTES} bytes per file)"
                )));
            }
            st.requests += 1;
            st.bytes += end - start;
        }
        let shown = display_url(&self.url);
        let resp = self
            .http
            .get_within(&self.url, Want::Range(start, end), self.deadline.as_ref())
            .map_err(io::Error::other)?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(io::Error::other(format!(
                "{shown}: a range request was answered with HTTP {} instead of 206",
                resp.status().as_u16()
            )));
        }
        let expected = format!("bytes {start}-{}/{}", end - 1, self.len);
        let got = resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if got != expected {
            return Err(io::Error::other(format!(
                "{shown}: asked for {expected}, the server answered Content-Range {got:?}"
            )));
        }
        let deadline = self.deadline.unwrap_or_else(|| Deadline::after(Duration::MAX));
        let mut body = Timed::new(resp, deadline).take(end - start);
        let mut block = vec![0u8; BLOCK as usize];
        for index in first..=last {
            let want = (self.len - index * BLOCK).min(BLOCK) as usize;
            body.read_exact(&mut block[..want])?;
            let d = digest(&block[..want]);
            self.consistency.borrow_mut().fetched(index, d);
            each(index, &block[..want]);
        }
        Ok(())
    }

    /// One block through the cache.
    fn with_block<T>(&self, index: u64, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
        if let Some((_, data)) = self.state.borrow().cache.iter().find(|(i, _)| *i == index) {
            return Ok(f(data));
        }
        let mut fetched = Vec::new();
        self.fetch_blocks(index, index, |_, data| fetched = data.to_vec())?;
        let out = f(&fetched);
        let mut st = self.state.borrow_mut();
        if st.cache.len() >= CACHE_BLOCKS {
            st.cache.pop_front();
        }
        st.cache.push_back((index, fetched));
        Ok(out)
    }
}

impl RandomAccess for RangeAccess<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let first = offset / BLOCK;
        let last = (offset + n as u64 - 1) / BLOCK;
        if last - first <= 1 {
            // Small reads go through the cache, one block at a time.
            let within = (offset - first * BLOCK) as usize;
            let take = (BLOCK as usize - within).min(n);
            self.with_block(first, |data| buf[..take].copy_from_slice(&data[within..within + take]))?;
            return Ok(take);
        }
        // A large read: one request for every block it touches, copied straight into `buf`.
        let buf = &mut buf[..n];
        self.fetch_blocks(first, last, |index, data| {
            let block_start = index * BLOCK;
            let from = offset.max(block_start);
            let to = (offset + n as u64).min(block_start + data.len() as u64);
            if from < to {
                let src = &data[(from - block_start) as usize..(to - block_start) as usize];
                buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        })?;
        Ok(n)
    }
}

/// A `Read` over a response body that feeds the body's bytes to a [`Consistency`].
pub struct Checked<R> {
    inner: R,
    consistency: Rc<RefCell<Consistency>>,
}

impl<R: Read> Checked<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, consistency: Rc<RefCell<Consistency>>) -> Checked<R> {
        Checked { inner, consistency }
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.consistency.borrow_mut().end();
        } else {
            self.consistency.borrow_mut().body(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_range_blocks_are_compared_in_either_order() {
        let data: Vec<u8> = (0..(BLOCK * 2 + 100)).map(|i| (i % 251) as u8).collect();
        let block = |i: u64| {
            let s = (i * BLOCK) as usize;
            digest(&data[s..((i + 1) * BLOCK).min(data.len() as u64) as usize])
        };
        // Fetched before the body reaches it, and after.
        let mut c = Consistency::default();
        c.fetched(2, block(2));
        c.body(&data[..(BLOCK as usize + 7)]);
        c.fetched(0, block(0));
        c.body(&data[(BLOCK as usize + 7)..]);
        c.end();
        assert_eq!(c.mismatch(), None);
        assert_eq!(c.unconfirmed(), 0);
        // A lie about the last block.
        let mut c = Consistency::default();
        c.fetched(2, digest(b"something else"));
        c.body(&data);
        c.end();
        assert_eq!(c.mismatch(), Some(2 * BLOCK));
    }
}
