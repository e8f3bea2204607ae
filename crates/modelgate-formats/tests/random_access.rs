//! `scan_reader_at`: a forward-only source with random access to the same bytes (a download
//! with range requests) is scanned exactly like a file, including what only random access can
//! see (a zip behind a prefix).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::stream::RandomAccess;
use modelgate_formats::{Format, Options, scan_bytes, scan_reader, scan_reader_at};
use std::io;

struct Slice<'a>(&'a [u8]);

impl RandomAccess for Slice<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset as usize).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

#[test]
fn random_access_scans_like_a_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = std::fs::read(root.join("tests/fixtures/malicious/torch-zip/prepended_junk.pt")).unwrap();
    let file = scan_bytes(&data, Options::default());
    let remote = scan_reader_at(&data[..], &Slice(&data), Options::default()).unwrap();
    assert_eq!(remote.format, file.format);
    assert_eq!(remote.sha256, file.sha256);
    assert_eq!(remote.size, file.size);
    assert_eq!(remote.children.len(), file.children.len());
    assert_eq!(remote.notes, file.notes);
    // Forward only, the zip behind the prefix is not seen as one.
    let forward = scan_reader(&data[..], Options::default()).unwrap();
    assert_eq!(file.format, Format::PytorchZip);
    assert_ne!(forward.format, file.format);
}
