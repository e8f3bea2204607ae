//! Archives and compression wrappers. Members are scanned through the driver like files; nothing
//! is ever extracted to disk.

pub(crate) mod compress;
#[cfg(test)]
mod limits_tests;
pub(crate) mod sevenz;
pub(crate) mod tar;
pub(crate) mod torch_tar;
pub(crate) mod zip;

use crate::driver::Driver;
use crate::inventory::{Node, Note, NoteKind};
use crate::stream::Stream;
use std::io::{self, Read};

/// Reads the rest of a forward-only stream into memory so an archive that keeps its index at the
/// end (zip, 7z) can be opened, up to `max_in_memory` bytes; beyond that the archive cannot be
/// inspected, which is noted as a limit (never a silent skip).
pub(crate) fn buffer_for_random_access(
    s: &mut Stream<'_>,
    ctx: &dyn Driver,
    node: &mut Node,
    what: &str,
) -> Option<Vec<u8>> {
    let limit = ctx.limits().max_in_memory;
    let data = match s.read_vec(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX)) {
        Ok(d) => d,
        Err(e) => {
            node.note(Note::new(NoteKind::ArchiveMalformed, format!("read error: {e}")));
            return None;
        }
    };
    if data.len() as u64 > limit {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "{what} larger than {limit} bytes inside a compressed stream cannot be opened without holding it in memory; its members were not inspected"
            ),
        ));
        return None;
    }
    Some(data)
}

/// Limits on what one decompressing reader may produce: a ratio to its compressed size (beyond a
/// floor) and what is left of the scan's total.
pub(crate) struct ExpansionBudget {
    allowed: u64,
    produced: u64,
    exceeded: bool,
    compressed: u64,
}

impl ExpansionBudget {
    pub(crate) fn new(ctx: &dyn Driver, compressed: u64) -> ExpansionBudget {
        let by_ratio = compressed.saturating_mul(ctx.limits().max_ratio).max(ctx.limits().ratio_floor);
        let left = ctx.limits().max_expanded_bytes.saturating_sub(ctx.expanded());
        ExpansionBudget { allowed: by_ratio.min(left), produced: 0, exceeded: false, compressed }
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "decompression stopped after {} bytes from {} compressed bytes (ratio or total expansion limit; a decompression bomb, or a model too large for the configured limits); the rest was not inspected",
            self.produced, self.compressed
        )
    }
}

/// A reader that, once its inner reader has failed, keeps returning that failure without
/// calling it again. libbz2-rs-sys (like libbzip2) leaves a decoder that reported corrupt data
/// in a state it must not be resumed from; resuming it indexes out of bounds inside an
/// `extern "C"` function, which aborts the process instead of unwinding.
pub(crate) struct FuseOnError<R> {
    inner: R,
    failed: Option<(std::io::ErrorKind, String)>,
}

impl<R> FuseOnError<R> {
    pub(crate) fn new(inner: R) -> FuseOnError<R> {
        FuseOnError { inner, failed: None }
    }

    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for FuseOnError<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some((kind, what)) = &self.failed {
            return Err(std::io::Error::new(*kind, what.clone()));
        }
        self.inner.read(buf).inspect_err(|e| self.failed = Some((e.kind(), e.to_string())))
    }
}

/// A reader that feeds a CRC-32 and enforces an expansion budget on the bytes passing through.
pub(crate) struct Tap<'a, R> {
    inner: R,
    crc: &'a mut flate2::Crc,
    budget: Option<&'a mut ExpansionBudget>,
}

impl<'a, R: Read> Tap<'a, R> {
    pub(crate) fn new(
        inner: R,
        crc: &'a mut flate2::Crc,
        budget: Option<&'a mut ExpansionBudget>,
    ) -> Tap<'a, R> {
        Tap { inner, crc, budget }
    }
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut max = buf.len();
        if let Some(b) = self.budget.as_deref_mut() {
            if b.produced >= b.allowed {
                // Probe one byte: only an actual excess is a finding.
                let mut probe = [0u8; 1];
                return match self.inner.read(&mut probe)? {
                    0 => Ok(0),
                    _ => {
                        b.exceeded = true;
                        Err(io::Error::other("expansion limit reached"))
                    }
                };
            }
            max = max.min(usize::try_from(b.allowed - b.produced).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.crc.update(&buf[..n]);
        if let Some(b) = self.budget.as_deref_mut() {
            b.produced += n as u64;
        }
        Ok(n)
    }
}

/// A reader that turns an error into the end of the data, remembering the first error. A child
/// scan then sees clean, truncated content (and gets a size and digest for what it read), and the
/// caller reports the error where it belongs.
pub(crate) struct Fuse<'e, R> {
    inner: R,
    error: &'e mut Option<io::Error>,
}

impl<'e, R: Read> Fuse<'e, R> {
    pub(crate) fn new(inner: R, error: &'e mut Option<io::Error>) -> Fuse<'e, R> {
        Fuse { inner, error }
    }
}

impl<R: Read> Read for Fuse<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    *self.error = Some(e);
                    return Ok(0);
                }
            }
        }
    }
}

/// Why an archive path is unsafe to extract, if it is.
pub(crate) fn unsafe_path(name: &str, unix_mode: Option<u32>) -> Option<String> {
    if unix_mode.is_some_and(|m| m & 0o170000 == 0o120000) {
        return Some("a symbolic link (extraction can write or read outside the target directory)".into());
    }
    let n = name.replace('\\', "/");
    if n.starts_with('/')
        || (n.len() >= 2 && n.as_bytes()[1] == b':' && n.as_bytes()[0].is_ascii_alphabetic())
    {
        return Some("an absolute path".into());
    }
    if n.split('/').any(|c| c == "..") {
        return Some("a path that climbs out of the archive with '..'".into());
    }
    None
}
