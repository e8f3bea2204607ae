//! Static parsers for ML model files. Nothing here executes, imports or loads model content.
//!
//! A scan reads each byte of a file once through a [`stream::Stream`], which hashes it and lets
//! parsers peek ahead. The driver ([`scan`]) sniffs each stream's [`Format`] by content
//! ([`sniff`]), hands it to that format's parser — the pickle engine ([`pickle`]), zip and other
//! containers, NumPy, joblib and torch layouts — and recurses into archive members, compressed
//! content and pickles embedded in pickles the same way. The result is a tree of [`Node`]s: for
//! each stream its size, SHA-256, format, format-specific detail (every global a pickle imports,
//! every call it makes) and [`Note`]s about anything a loader would trip over or that a tamperer
//! would use.
//!
//! The inventory is neutral: deciding which globals are acceptable and how severe a note is
//! belongs to the policy crate.

pub mod card;
mod container;
mod driver;
pub mod gguf;
pub mod inventory;
mod jinja;
mod joblib;
mod json;
mod numpy;
pub mod onnx;
pub mod pickle;
mod protobuf;
mod registry;
pub mod repo;
pub mod safetensors;
pub mod scan;
pub mod skops;
pub mod sniff;
pub mod stream;
mod template;
mod torch;
// Keras and TensorFlow.
mod hdf5;
mod keras;
mod layout;
pub mod limits;
mod marshal;
mod msgpack;
pub mod savedmodel;
mod sniff_tf;
pub mod tf_checkpoint;
mod tflite;

pub use inventory::{Detail, Format, Node, Note, NoteKind, NumpyHeader, Relation, Role, member_path};
pub use scan::{Limits, Trace, TraceEvent};

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use stream::{FileRandomAccess, HashMode, Stream, THREADED_HASH_THRESHOLD, Window};

/// The scanner could not read its input. Problems *in* the input are notes, never errors.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Options for one scan.
#[derive(Default)]
pub struct Options<'t> {
    /// Resource limits.
    pub limits: Limits,
    /// Receives every opcode and stream boundary (for `modelgate inspect`).
    pub trace: Option<&'t mut dyn Trace>,
}

/// The format registry's rules, in the order the sniffer tries them (the order is a security
/// property; docs/architecture.md).
pub fn sniff_order() -> Vec<&'static str> {
    registry::names()
}

/// The loaders' archive layouts, in the order containers consult them (docs/architecture.md).
pub fn archive_layout_order() -> Vec<&'static str> {
    registry::LAYOUTS.iter().map(|l| l.name()).collect()
}

/// Scans a file: reads every byte once, hashes it, and inventories its content.
pub fn scan_file(path: &Path, options: Options<'_>) -> Result<Node, ScanError> {
    let io_err = |source| ScanError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let random = FileRandomAccess::new(std::fs::File::open(path).map_err(io_err)?, len);
    let failure = Rc::new(RefCell::new(None));
    let guarded = Guarded { inner: file, failure: Rc::clone(&failure) };
    let mode = if len >= THREADED_HASH_THRESHOLD { HashMode::Threaded } else { HashMode::Inline };
    let stream = Stream::new(guarded, mode).with_window(Window::new(&random));
    let node = run(stream, options, Some(path));
    if let Some(source) = failure.borrow_mut().take() {
        return Err(io_err(source));
    }
    Ok(node)
}

/// Scans a forward-only byte source (a download, standard input). Archives that need random
/// access are held in memory up to the configured limit.
pub fn scan_reader(reader: impl Read, options: Options<'_>) -> Result<Node, io::Error> {
    let failure = Rc::new(RefCell::new(None));
    let guarded = Guarded { inner: reader, failure: Rc::clone(&failure) };
    let node = run(Stream::new(guarded, HashMode::Threaded), options, None);
    match failure.borrow_mut().take() {
        Some(e) => Err(e),
        None => Ok(node),
    }
}

/// Scans a forward-only byte source that also offers random access to the same bytes (a
/// download whose server answers HTTP range requests). Random reads only locate structures (a
/// zip's central directory, a tar listing); every byte is still read and hashed once, in order,
/// through `reader`, so the result is the same as for a local file with the same content. It is
/// up to `random` to make sure its bytes are the ones `reader` delivers.
pub fn scan_reader_at(
    reader: impl Read,
    random: &dyn stream::RandomAccess,
    options: Options<'_>,
) -> Result<Node, io::Error> {
    let failure = Rc::new(RefCell::new(None));
    let guarded = Guarded { inner: reader, failure: Rc::clone(&failure) };
    let node = run(Stream::new(guarded, HashMode::Threaded).with_window(Window::new(random)), options, None);
    match failure.borrow_mut().take() {
        Some(e) => Err(e),
        None => Ok(node),
    }
}

/// Scans bytes already in memory.
pub fn scan_bytes(data: &[u8], options: Options<'_>) -> Node {
    let stream = Stream::new(data, HashMode::Inline).with_window(Window::from_slice(data));
    run(stream, options, None)
}

/// Scans a stream; `path` is the file it comes from, when it is one (its name and directory
/// matter to a few checks: Python sources by name, ONNX external data through symbolic links).
fn run(stream: Stream<'_>, options: Options<'_>, path: Option<&Path>) -> Node {
    scan::scan_root(stream, options.limits, options.trace, path)
}

/// Remembers the first error of the underlying reader, so a failing disk is reported as "cannot
/// read" rather than as a malformed file. Later reads keep failing.
struct Guarded<R> {
    inner: R,
    failure: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.borrow().is_some() {
            return Err(io::Error::other("the input failed earlier"));
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    *self.failure.borrow_mut() = Some(e);
                    return Err(copy);
                }
                ok => return ok,
            }
        }
    }
}
