//! Downloading one file into the scanner, and checking it against what the hub lists.
//!
//! The body is read once. Each chunk passes a `Tap` (byte count, git blob id, the temporary
//! file under `--download-dir`, progress) and goes straight into the scanner, which hashes it and
//! parses it as it arrives. Memory per download is bounded:
//!
//! - files whose size is known and at most [`Options::in_memory_max`] (8 MiB by default) are read
//!   into memory first and scanned there, like a local file: small files need no range requests;
//! - larger files stream; random access (a zip's central directory) is served by HTTP range
//!   requests checked against the body ([`crate::range`]): a few MiB whatever the file size;
//! - a server that does not answer range requests (no `Accept-Ranges: bytes`) gets the
//!   forward-only scan, in which a zip is held in memory up to `Limits::max_in_memory` (64 MiB)
//!   and beyond that reported as not inspected (`MG004`, which fails the gate by default).
//!
//! A transfer that fails (a timeout, a body shorter than its `Content-Length`, a refused
//! request) is an [`Error`]: nothing about the file is reported as if it had been scanned.

use crate::http::{Deadline, Http, Timed, Want};
use crate::hub::{BlobId, status_error};
use crate::range::{Checked, Consistency, RangeAccess};
use crate::{Error, display_url};
use modelgate_formats::stream::hex;
use modelgate_formats::{Limits, Node, Options as ScanOptions};
use reqwest::Url;
use reqwest::header::ACCEPT_RANGES;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::rc::Rc;

/// What the file should be, according to its listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Size in bytes.
    pub size: Option<u64>,
    /// SHA-256 (lowercase hex): the LFS object id.
    pub sha256: Option<String>,
    /// Git blob id (SHA-1 or SHA-256 of `blob <size>\0` + content), for files kept in git
    /// rather than LFS.
    pub git_blob: Option<BlobId>,
}

/// How to fetch.
pub struct Options<'a> {
    /// Scan limits.
    pub limits: Limits,
    /// Files of at most this many bytes (when the size is known up front) are read into memory
    /// and scanned there.
    pub in_memory_max: u64,
    /// Keep a copy of the body in a temporary file in this directory.
    pub download_dir: Option<&'a Path>,
    /// Told how many more bytes arrived.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { limits: Limits::default(), in_memory_max: 8 << 20, download_dir: None, progress: None }
    }
}

/// A difference between the download and its listing: reported as a finding, never ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The SHA-256 of the body is not the LFS object id the hub lists.
    Sha256 {
        /// Listed.
        expected: String,
        /// Downloaded.
        actual: String,
    },
    /// The git blob id of the body is not the one the hub lists.
    GitBlob {
        /// Listed.
        expected: String,
        /// Downloaded.
        actual: String,
    },
    /// The body's length is not the listed size.
    Size {
        /// Listed.
        expected: u64,
        /// Downloaded.
        actual: u64,
    },
    /// A range request returned other bytes than the body holds at that offset.
    Inconsistent {
        /// The first offset that differs (block-aligned).
        offset: u64,
    },
    /// A digest the listing gives cannot be checked.
    Unverifiable {
        /// Why, in one line.
        why: String,
    },
}

/// A downloaded and scanned file.
pub struct Fetched {
    /// The scan result; `node.sha256` is the digest of the body.
    pub node: Node,
    /// Differences from the listing.
    pub problems: Vec<Problem>,
    /// The body, in a temporary file in the download directory (deleted when dropped).
    pub download: Option<tempfile::TempPath>,
    /// Range requests made for random access.
    pub range_requests: u32,
}

/// Downloads `url`, scanning it as it arrives, and compares it with `expect`.
pub fn fetch(
    http: &Http,
    url: &Url,
    what: &str,
    expect: &Expect,
    opts: &Options<'_>,
) -> Result<Fetched, Error> {
    let shown = display_url(url);
    let deadline = Deadline::after(http.settings().download_timeout);
    let resp = http.get_within(url, Want::Whole, Some(&deadline))?;
    let status = resp.status();
    if !status.is_success() || status.as_u16() == 206 {
        return Err(status_error(&shown, status, http.has_token(), what));
    }
    let content_length = resp.content_length();
    let ranges = resp
        .headers()
        .get(ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("bytes")));
    let declared = content_length.or(expect.size);

    let temp = match opts.download_dir {
        Some(dir) => Some(
            tempfile::Builder::new()
                .prefix(".modelgate-")
                .suffix(".part")
                .tempfile_in(dir)
                .map_err(|source| Error::Write { path: dir.display().to_string(), source })?,
        ),
        None => None,
    };
    let write_error = Rc::new(RefCell::new(None));
    // A git blob id hashes a header with the size before the content, so the size must be known
    // before the first byte: the listed size, else the Content-Length.
    let blob_size = expect.size.or(content_length);
    let blob = match (&expect.git_blob, blob_size) {
        (Some(BlobId::Sha1(_)), Some(n)) => Some(BlobHash::sha1(n)),
        (Some(BlobId::Sha256(_)), Some(n)) => Some(BlobHash::sha256(n)),
        _ => None,
    };
    // A body may not run past its listed size (one byte more proves the mismatch): a server
    // cannot keep a download going forever.
    let cap = expect.size.map_or(u64::MAX, |n| n.saturating_add(1));
    let mut tap = Tap {
        inner: Timed::new(resp, deadline).take(cap),
        blob,
        file: temp.as_ref().map(|t| BufWriter::with_capacity(1 << 20, t.as_file())),
        write_error: Rc::clone(&write_error),
        progress: opts.progress,
    };
    let scan_options = || ScanOptions { limits: opts.limits.clone(), trace: None };
    let transfer = |e: io::Error| Error::Transfer { url: shown.clone(), why: explain(&e) };
    let mut range_requests = 0;
    let mut consistency_result = None;
    let node = match declared {
        Some(n) if n <= opts.in_memory_max => {
            let mut data = Vec::with_capacity(n as usize);
            (&mut tap).take(opts.in_memory_max + 1).read_to_end(&mut data).map_err(|e| {
                write_error
                    .borrow_mut()
                    .take()
                    .map_or_else(|| transfer(e), |w| write_failed(temp.as_ref(), w))
            })?;
            if data.len() as u64 <= opts.in_memory_max {
                modelgate_formats::scan_bytes(&data, scan_options())
            } else {
                // Longer than announced: keep streaming, forward only.
                modelgate_formats::scan_reader(io::Cursor::new(data).chain(&mut tap), scan_options())
                    .map_err(|e| scan_failed(e, &write_error, temp.as_ref(), &transfer))?
            }
        }
        Some(n) if ranges => {
            let consistency = Rc::new(RefCell::new(Consistency::default()));
            let random = RangeAccess::new(http, url.clone(), n, Rc::clone(&consistency)).within(deadline);
            let body = Checked::new(&mut tap, Rc::clone(&consistency));
            let node = modelgate_formats::scan_reader_at(body, &random, scan_options())
                .map_err(|e| scan_failed(e, &write_error, temp.as_ref(), &transfer))?;
            range_requests = random.requests();
            consistency_result = consistency.borrow().mismatch();
            node
        }
        _ => modelgate_formats::scan_reader(&mut tap, scan_options())
            .map_err(|e| scan_failed(e, &write_error, temp.as_ref(), &transfer))?,
    };
    if let Some(mut f) = tap.file.take() {
        f.flush().map_err(|e| write_failed(temp.as_ref(), e))?;
    }
    let blob = tap.blob.take();
    drop(tap);
    if let Some(e) = write_error.borrow_mut().take() {
        return Err(write_failed(temp.as_ref(), e));
    }

    let mut problems = Vec::new();
    if let Some(expected) = expect.size
        && expected != node.size
    {
        problems.push(Problem::Size { expected, actual: node.size });
    }
    if let Some(expected) = &expect.sha256 {
        let actual = hex(&node.sha256);
        if *expected != actual {
            problems.push(Problem::Sha256 { expected: expected.clone(), actual });
        }
    }
    match (&expect.git_blob, blob) {
        (Some(BlobId::Sha1(expected) | BlobId::Sha256(expected)), Some(h)) => {
            let actual = h.finish();
            if *expected != actual {
                problems.push(Problem::GitBlob { expected: expected.clone(), actual });
            }
        }
        (Some(BlobId::Sha1(expected) | BlobId::Sha256(expected)), None) => {
            problems.push(Problem::Unverifiable {
                why: format!(
                    "the listed git blob id {expected} cannot be checked: neither the listing nor the server gives the size it hashes"
                ),
            });
        }
        (Some(BlobId::Unexpected(listed)), _) => problems.push(Problem::Unverifiable {
            why: format!(
                "the listing gives the blob id {listed:?}, which is not a git object id (SHA-1 or SHA-256)"
            ),
        }),
        (None, _) => {}
    }
    // Blocks fetched beyond the end of a body shorter than announced are covered by the size
    // problem (and the digest).
    if let Some(offset) = consistency_result {
        problems.push(Problem::Inconsistent { offset });
    }
    Ok(Fetched { node, problems, download: temp.map(|t| t.into_temp_path()), range_requests })
}

/// An error with its causes, in one line ("error decoding response body: operation timed out").
fn explain(e: &io::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !why.contains(&more) {
            why.push_str(": ");
            why.push_str(&more);
        }
        source = s.source();
    }
    if !why.contains("download deadline")
        && (e.kind() == io::ErrorKind::TimedOut || why.contains("timed out"))
    {
        why.push_str(" (no data within the read timeout)");
    }
    why
}

fn write_failed(temp: Option<&tempfile::NamedTempFile>, source: io::Error) -> Error {
    Error::Write { path: temp.map(|t| t.path().display().to_string()).unwrap_or_default(), source }
}

fn scan_failed(
    e: io::Error,
    write_error: &Rc<RefCell<Option<io::Error>>>,
    temp: Option<&tempfile::NamedTempFile>,
    transfer: &impl Fn(io::Error) -> Error,
) -> Error {
    match write_error.borrow_mut().take() {
        Some(w) => write_failed(temp, w),
        None => transfer(e),
    }
}

/// The git blob id being computed, in the repository's object format.
enum BlobHash {
    Sha1(Sha1),
    Sha256(Sha256),
}

impl BlobHash {
    fn sha1(size: u64) -> BlobHash {
        let mut h = Sha1::new();
        h.update(format!("blob {size}\0").as_bytes());
        BlobHash::Sha1(h)
    }

    fn sha256(size: u64) -> BlobHash {
        let mut h = Sha256::new();
        h.update(format!("blob {size}\0").as_bytes());
        BlobHash::Sha256(h)
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            BlobHash::Sha1(h) => h.update(data),
            BlobHash::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            BlobHash::Sha1(h) => h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            BlobHash::Sha256(h) => h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// Sees every byte of the body once, on its way to the scanner.
struct Tap<'p, 'f, R> {
    inner: R,
    blob: Option<BlobHash>,
    file: Option<BufWriter<&'f std::fs::File>>,
    write_error: Rc<RefCell<Option<io::Error>>>,
    progress: Option<&'p (dyn Fn(u64) + Sync)>,
}

impl<R: Read> Read for Tap<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        if let Some(h) = &mut self.blob {
            h.update(data);
        }
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(data)
        {
            let copy = io::Error::new(e.kind(), e.to_string());
            *self.write_error.borrow_mut() = Some(e);
            return Err(copy);
        }
        if let Some(p) = self.progress
            && n > 0
        {
            p(n as u64);
        }
        Ok(n)
    }
}
