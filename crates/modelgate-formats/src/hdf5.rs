//! HDF5 files (Keras 2 `.h5`, Keras 3 legacy `.h5` and `.weights.h5`), read in pure Rust.
//!
//! libhdf5 is never linked: its 1.10 line crashes on mutated `model_config` attributes
//! (shared/docs/formats.md §1.4). `hdf5-reader` parses the metadata; this module drives it:
//!
//! * **The bytes.** The crate wants random access (`Storage: Send + Sync + 'static`). A scanned
//!   file's [`Window`] is borrowed, so the parser runs on a scoped worker thread whose storage
//!   forwards each range request over a channel to the scanning thread, which serves it from the
//!   window. Only metadata is ever requested (object headers, heaps, B-tree nodes), never dataset
//!   data, so a multi-GB weights file is not read twice or held in memory; the forward stream
//!   still reads (and hashes) every byte once. Streams without a window (a compressed archive
//!   member) are buffered up to `max_in_memory`. The worker also contains any panic in the crate:
//!   it becomes a malformed-file note.
//! * **Budgets.** Per-read and total bytes served, object headers parsed, and group nesting are
//!   bounded; the crate's own `max_*` options are set. Hitting one is a limit note.
//! * **Traversal.** Our own walk over object headers (not the crate's link-resolving group API),
//!   with a visited set against hard-link cycles: it sees every link as stored, so external links,
//!   soft links that resolve through one, external raw-data files and virtual datasets are
//!   reported rather than followed.
//! * **Keras.** The root attributes `model_config`, `training_config`, `keras_version` and
//!   `backend` are read whatever their string type (vlen ASCII or UTF-8, fixed length, compact or
//!   dense attribute storage) and the configs go to [`crate::keras`]. `layer_names` (split into
//!   `layer_names0`, `layer_names1`… when long) gives the layer count.
//!
//! Any parser error is a malformed-file note: a file the scanner cannot read is not vouched for.

use crate::container::buffer_for_random_access;
use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, GraphInventory, Node, Note, NoteKind};
use crate::stream::{Stream, Window};
use hdf5_reader::error::Error as H5Error;
use hdf5_reader::io::Cursor;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::messages::link::LinkTarget;
use hdf5_reader::messages::shared::SharedMessage;
use hdf5_reader::{Attribute, Hdf5File, OpenOptions, Storage, StorageBuffer};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

const MAX_READ: u64 = crate::limits::Limits::HDF5_READ;
const MAX_TOTAL_READ: u64 = crate::limits::Limits::HDF5_TOTAL_READ;
const MAX_OBJECTS: usize = crate::limits::Limits::HDF5_OBJECTS;
const MAX_DEPTH: usize = crate::limits::Limits::HDF5_DEPTH;
const MAX_SOFT_HOPS: usize = crate::limits::Limits::HDF5_SOFT_HOPS;
const WORKER_STACK: usize = crate::limits::Limits::HDF5_WORKER_STACK;
/// Root attributes read for Keras.
const KERAS_ATTRS: &[&str] = &["model_config", "training_config", "keras_version", "backend"];

pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    user_block(s, ctx, node);
    let outcome = match s.window() {
        Some(w) => run_over_window(w),
        None => {
            let Some(data) = buffer_for_random_access(s, ctx, node, "an HDF5 file") else {
                return Rest::Drain;
            };
            run_in_memory(data)
        }
    };
    apply(outcome, ctx, node);
    Rest::Drain
}

/// The superblock may follow a user block of 512, 1024, 2048… bytes, which HDF5 readers skip and
/// other readers may not (`pickle.load` of a polyglot): its content is scanned like a file of its
/// own, and kept when it is anything but padding or unrecognised data.
fn user_block(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) {
    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";
    let Ok(head) = s.peek(crate::limits::Limits::PEEK) else {
        return;
    };
    let mut at = 0usize;
    while at + SIG.len() <= head.len() && &head[at..at + SIG.len()] != SIG {
        at = if at == 0 { 512 } else { at * 2 };
    }
    if at == 0 || at + SIG.len() > head.len() {
        return;
    }
    let child = crate::driver::scan_node(
        Stream::new(s.take_next(at as u64), crate::stream::HashMode::Inline),
        ctx,
        crate::driver::child_node("HDF5 user block".into(), crate::inventory::Relation::Prefix, 0),
        crate::driver::How::Sniff,
    );
    let padding = matches!(child.format, crate::inventory::Format::Unknown | crate::inventory::Format::Empty)
        && child.children.is_empty()
        && child.notes.iter().all(|n| n.kind == NoteKind::UnrecognisedBinary);
    if !padding {
        node.children.push(child);
    }
}

/// What the worker found.
#[derive(Default)]
struct Outcome {
    /// Root attributes Keras reads, decoded as text (or why they could not be), and where their
    /// value is stored in the file when known.
    attrs: Vec<(String, Result<String, String>, Option<u64>)>,
    /// Number of layer names listed under `layer_names` (root or `model_weights`).
    layer_names: Option<usize>,
    notes: Vec<Note>,
    groups: u64,
    datasets: u64,
}

fn apply(outcome: Outcome, ctx: &mut dyn Driver, node: &mut Node) {
    node.notes.extend(outcome.notes);
    let mut inv = GraphInventory::default();
    for (name, value, offset) in &outcome.attrs {
        match value {
            Ok(text) if name == "model_config" || name == "training_config" => {
                crate::keras::scan_config(
                    text.as_bytes(),
                    &format!("the {name} attribute"),
                    *offset,
                    ctx,
                    node,
                    &mut inv,
                );
            }
            Ok(text) => inv.fact(name, text.chars().take(64).collect::<String>()),
            Err(e) => {
                let mut note = Note::new(
                    NoteKind::Malformed,
                    format!(
                        "the root attribute {name} cannot be read as text ({e}); Keras could not load it either"
                    ),
                );
                note.offset = *offset;
                node.note(note);
            }
        }
    }
    if let Some(n) = outcome.layer_names {
        inv.fact("layer_names", n.to_string());
    }
    inv.fact("groups", outcome.groups.to_string());
    inv.fact("datasets", outcome.datasets.to_string());
    node.detail = Detail::Graph(Box::new(inv));
}

// -- Giving the crate the bytes ------------------------------------------------------------------

type Request = (u64, usize);
type Response = Result<Vec<u8>, String>;

/// A `Storage` that asks the scanning thread for each range.
struct Proxy {
    len: u64,
    channel: Mutex<(SyncSender<Request>, Receiver<Response>)>,
    served: AtomicU64,
    over_budget: AtomicBool,
}

impl Storage for Proxy {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(H5Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.len.saturating_sub(offset),
            });
        }
        let served = self.served.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        if len as u64 > MAX_READ || served > MAX_TOTAL_READ {
            self.over_budget.store(true, Ordering::Relaxed);
            return Err(H5Error::ResourceLimit(format!(
                "metadata read of {len} bytes at {offset} is over modelgate's budget"
            )));
        }
        let channel =
            self.channel.lock().map_err(|_| H5Error::Other("the reader channel is poisoned".into()))?;
        channel.0.send((offset, len)).map_err(|_| H5Error::Other("the scanning thread is gone".into()))?;
        match channel.1.recv() {
            Ok(Ok(bytes)) => Ok(StorageBuffer::from_vec(bytes)),
            Ok(Err(e)) => Err(H5Error::Other(e)),
            Err(_) => Err(H5Error::Other("the scanning thread is gone".into())),
        }
    }
}

/// Parses on a worker thread, serving its reads from `w` on this one.
fn run_over_window(w: Window<'_>) -> Outcome {
    let (req_tx, req_rx) = sync_channel::<Request>(1);
    let (resp_tx, resp_rx) = sync_channel::<Response>(1);
    let proxy = Arc::new(Proxy {
        len: w.len(),
        channel: Mutex::new((req_tx, resp_rx)),
        served: AtomicU64::new(0),
        over_budget: AtomicBool::new(false),
    });
    std::thread::scope(|scope| {
        let worker_proxy = Arc::clone(&proxy);
        let spawned = std::thread::Builder::new()
            .name("modelgate-hdf5".into())
            .stack_size(WORKER_STACK)
            .spawn_scoped(scope, move || {
                let over = Arc::clone(&worker_proxy);
                parse(worker_proxy, &over.over_budget)
            });
        // The worker holds the only other handle on the proxy (and so on the request sender):
        // once it finishes, the requests stop.
        drop(proxy);
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => return failed(format!("could not start the HDF5 reader: {e}")),
        };
        for (offset, len) in req_rx {
            let mut buf = vec![0u8; len];
            let resp = w
                .read_exact_at(offset, &mut buf)
                .map(|()| buf)
                .map_err(|e| format!("read error at {offset}: {e}"));
            if resp_tx.send(resp).is_err() {
                break;
            }
        }
        handle.join().unwrap_or_else(|_| failed("the HDF5 reader failed on this file".into()))
    })
}

/// Parses bytes already in memory (also on a worker, to contain a crate panic).
fn run_in_memory(data: Vec<u8>) -> Outcome {
    let storage = Arc::new(hdf5_reader::BytesStorage::new(data));
    let never = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("modelgate-hdf5".into())
            .stack_size(WORKER_STACK)
            .spawn_scoped(scope, || parse(storage, &never));
        match spawned {
            Ok(h) => h.join().unwrap_or_else(|_| failed("the HDF5 reader failed on this file".into())),
            Err(e) => failed(format!("could not start the HDF5 reader: {e}")),
        }
    })
}

fn failed(why: String) -> Outcome {
    Outcome { notes: vec![Note::new(NoteKind::Malformed, why)], ..Default::default() }
}

// -- The walk (on the worker) -------------------------------------------------------------------

fn parse(storage: Arc<dyn Storage>, over_budget: &AtomicBool) -> Outcome {
    let mut out = Outcome::default();
    let options = OpenOptions::default()
        .with_chunk_cache_bytes(0)
        .with_max_read_bytes(MAX_READ as usize)
        .with_max_chunk_bytes(MAX_READ as usize)
        .with_max_object_header_bytes(MAX_READ as usize);
    let error_note = |context: &str, e: &H5Error| {
        if over_budget.load(Ordering::Relaxed) || matches!(e, H5Error::ResourceLimit(_)) {
            Note::new(
                NoteKind::LimitExceeded,
                format!("{context}: {e}; the rest of the HDF5 structure was not inspected"),
            )
        } else {
            Note::new(
                NoteKind::Malformed,
                format!("{context}: {e}; HDF5 readers fail on this file (or disagree about it)"),
            )
        }
    };
    let file = match Hdf5File::from_storage_with_options(storage, options) {
        Ok(f) => f,
        Err(e) => {
            out.notes.push(error_note("the HDF5 superblock cannot be read", &e));
            return out;
        }
    };
    let root = match file.root_group() {
        Ok(r) => r,
        Err(e) => {
            out.notes.push(error_note("the HDF5 root group cannot be read", &e));
            return out;
        }
    };
    let sb = file.superblock();
    let (base, offset_size) = (sb.base_address, usize::from(sb.offset_size));
    let raw = root.raw_attributes().unwrap_or_default();
    // Where a value lives: the global heap collection of a variable-length string (its
    // reference is length, collection address, index), else the root's object header.
    let stored_at = |name: &str| {
        let inline = base.checked_add(root.address());
        let Some(r) = raw.iter().find(|r| r.name() == name) else {
            return inline;
        };
        let data = &r.message().raw_data;
        match data.get(4..4 + offset_size) {
            Some(addr) if data.len() == 8 + offset_size => {
                let mut le = [0u8; 8];
                le[..addr.len().min(8)].copy_from_slice(&addr[..addr.len().min(8)]);
                base.checked_add(u64::from_le_bytes(le))
            }
            _ => inline,
        }
    };
    match root.attributes() {
        Ok(attrs) => {
            for name in KERAS_ATTRS {
                if let Some(a) = attrs.iter().find(|a| a.name == *name) {
                    out.attrs.push((name.to_string(), attr_text(a), stored_at(name)));
                }
            }
            out.layer_names = merged_count(&attrs, "layer_names");
        }
        Err(e) => out.notes.push(error_note("the root group's attributes cannot be read", &e)),
    }
    if out.layer_names.is_none()
        && let Ok(weights) = root.group("model_weights")
        && let Ok(attrs) = weights.attributes()
    {
        out.layer_names = merged_count(&attrs, "layer_names");
    }
    let mut walk = Walk { file: &file, visited: HashSet::new(), links: HashMap::new(), out: &mut out };
    if let Err((context, e)) = walk.run(root.address()) {
        let note = error_note(&context, &e);
        walk.out.notes.push(note);
    }
    out
}

/// An attribute's text, whatever its string type.
fn attr_text(a: &Attribute) -> Result<String, String> {
    if let Some(strings) = &a.decoded_strings {
        return Ok(strings.concat());
    }
    match a.read_string() {
        Ok(s) => Ok(s),
        Err(first) => a.read_strings().map(|v| v.concat()).map_err(|_| first.to_string()),
    }
}

/// How many strings `name` (or `name0`, `name1`, … when Keras split a long list) holds.
fn merged_count(attrs: &[Attribute], name: &str) -> Option<usize> {
    let count = |a: &Attribute| {
        a.decoded_strings
            .as_ref()
            .map(Vec::len)
            .or_else(|| a.read_strings().ok().map(|v| v.len()))
            .unwrap_or(0)
    };
    if let Some(a) = attrs.iter().find(|a| a.name == name) {
        return Some(count(a));
    }
    let mut total = None;
    for i in 0.. {
        let Some(a) = attrs.iter().find(|a| a.name == format!("{name}{i}")) else {
            break;
        };
        *total.get_or_insert(0) += count(a);
    }
    total
}

/// What a link points at, as stored.
#[derive(Clone)]
enum Target {
    Hard(u64),
    Soft(String),
    External(String, String),
}

struct Walk<'f, 'o> {
    file: &'f Hdf5File,
    visited: HashSet<u64>,
    /// Each group's links by name (for resolving soft links).
    links: HashMap<u64, Vec<(String, Target)>>,
    out: &'o mut Outcome,
}

type WalkError = (String, H5Error);

/// The highest object header message type the HDF5 file format specification defines: 0x0017,
/// the file space info message (0x0000 NIL … 0x0010 header continuation, 0x0011 symbol table, …).
const MAX_DEFINED_MESSAGE_TYPE: u16 = 0x0017;

/// Message types libhdf5 can store as shared (`H5O_SHARE_IS_SHARABLE`): dataspace, datatype,
/// fill value (old and new), filter pipeline, attribute.
const SHAREABLE_MESSAGE_TYPES: [u16; 6] = [0x0001, 0x0003, 0x0004, 0x0005, 0x000B, 0x000C];

impl Walk<'_, '_> {
    fn run(&mut self, root: u64) -> Result<(), WalkError> {
        let base = self.file.superblock().base_address;
        let mut stack = vec![(root, "/".to_string(), 0usize)];
        let mut softs = Vec::new();
        while let Some((addr, path, depth)) = stack.pop() {
            if !self.visited.insert(addr) {
                continue;
            }
            if self.visited.len() > MAX_OBJECTS {
                self.out.notes.push(Note::new(
                    NoteKind::LimitExceeded,
                    format!("more than {MAX_OBJECTS} HDF5 objects; the rest were not inspected"),
                ));
                return Ok(());
            }
            let header = self.file.get_or_parse_header(addr).map_err(|e| {
                if matches!(e, H5Error::UnsupportedLayoutClass(3)) {
                    self.out.notes.push(
                        Note::new(
                            NoteKind::Hdf5ExternalReference,
                            format!("{path} is a virtual dataset: reading it makes the HDF5 library open the source files its mapping names"),
                        )
                        .at(base.saturating_add(addr))
                        .evidence(path.clone()),
                    );
                }
                (format!("the HDF5 object {path}"), e)
            });
            let header = match header {
                Ok(h) => h,
                // A virtual dataset is reported above; carry on with the rest of the file.
                Err((_, H5Error::UnsupportedLayoutClass(3))) => continue,
                Err(e) => return Err(e),
            };
            let mut children = Vec::new();
            let mut is_group = false;
            for msg in &header.messages {
                match msg {
                    HdfMessage::SymbolTable(st) => {
                        is_group = true;
                        self.old_style_links(st.btree_address, st.heap_address, &mut children)
                            .map_err(|e| (format!("the links of group {path}"), e))?;
                    }
                    HdfMessage::Link(link) => {
                        is_group = true;
                        children.push((link.name.clone(), target(&link.target)));
                    }
                    HdfMessage::LinkInfo(li) => {
                        is_group = true;
                        self.dense_links(li, &mut children)
                            .map_err(|e| (format!("the links of group {path}"), e))?;
                    }
                    HdfMessage::ExternalFiles(ef) => {
                        let names =
                            self.external_file_names(ef.heap_address, ef.slots.iter().map(|s| s.name_offset));
                        self.out.notes.push(
                            Note::new(
                                NoteKind::Hdf5ExternalReference,
                                format!("dataset {path} stores its data in external file(s) {names:?}: reading it opens them"),
                            )
                            .at(base.saturating_add(addr))
                            .evidence(names.join(", ")),
                        );
                    }
                    // Only dataspace, datatype, fill value, filter pipeline and attribute messages
                    // can be shared. A message of any other type flagged as shared (a link whose
                    // flag byte was flipped) makes libhdf5 refuse the object ("bad flag
                    // combination"), while this reader would take it for a reference elsewhere
                    // and lose it: the link it held would vanish from the walk.
                    HdfMessage::Shared(
                        SharedMessage::SharedInOhdr { message_type, .. }
                        | SharedMessage::SharedInSohm { message_type, .. },
                    ) if !SHAREABLE_MESSAGE_TYPES.contains(message_type) => {
                        self.out.notes.push(
                            Note::new(
                                NoteKind::Malformed,
                                format!("the object header of {path} holds a message of type {message_type:#06x} flagged as shared, which HDF5 allows only for dataspaces, datatypes, fill values, filters and attributes; libhdf5 refuses the object"),
                            )
                            .at(base.saturating_add(addr))
                            .evidence(format!("{message_type:#06x}")),
                        );
                    }
                    // The format defines message types up to 0x17. libhdf5 skips an undefined one
                    // (unless its flags say fail), and with it whatever it stands in place of —
                    // a flipped header continuation hides every link behind it. No writer emits one.
                    HdfMessage::Unknown { type_id, .. } if *type_id > MAX_DEFINED_MESSAGE_TYPE => {
                        self.out.notes.push(
                            Note::new(
                                NoteKind::Malformed,
                                format!("the object header of {path} holds a message of type {type_id:#06x}, which the HDF5 format does not define; libhdf5 skips it, and anything it replaced (a header continuation, a link table) is not read"),
                            )
                            .at(base.saturating_add(addr))
                            .evidence(format!("{type_id:#06x}")),
                        );
                    }
                    _ => {}
                }
            }
            if is_group {
                self.out.groups += 1;
            } else {
                self.out.datasets += 1;
            }
            for (name, t) in &children {
                let child_path = join(&path, name);
                match t {
                    Target::Hard(a) if depth + 1 < MAX_DEPTH => {
                        stack.push((*a, child_path, depth + 1));
                    }
                    Target::Hard(_) => self.out.notes.push(Note::new(
                        NoteKind::LimitExceeded,
                        format!("HDF5 groups nested more than {MAX_DEPTH} deep at {child_path}; deeper objects were not inspected"),
                    )),
                    Target::Soft(to) => softs.push((addr, path.clone(), child_path, to.clone())),
                    Target::External(file, obj) => self.out.notes.push(
                        Note::new(
                            NoteKind::Hdf5ExternalReference,
                            format!("{child_path} is an external link to {obj} in file {file:?}: opening it makes the HDF5 library open that file"),
                        )
                        .at(base.saturating_add(addr))
                        .evidence(format!("{file}:{obj}")),
                    ),
                }
            }
            if is_group {
                self.links.insert(addr, children);
            }
        }
        for (group, group_path, link_path, to) in softs {
            let at = base.saturating_add(group);
            if let Some((file, obj)) = self.soft_leaves_file(root, group, &group_path, &to) {
                self.out.notes.push(
                    Note::new(
                        NoteKind::Hdf5ExternalReference,
                        format!("{link_path} is a soft link to {to}, which resolves through an external link to {obj} in file {file:?}"),
                    )
                    .at(at)
                    .evidence(format!("{link_path} -> {to}")),
                );
            }
        }
        Ok(())
    }

    /// Follows a soft link's path through the links seen; the external link it crosses, if any.
    fn soft_leaves_file(
        &self,
        root: u64,
        group: u64,
        _group_path: &str,
        to: &str,
    ) -> Option<(String, String)> {
        let mut pending: Vec<(u64, String)> = vec![(group, to.to_string())];
        for _ in 0..MAX_SOFT_HOPS {
            let (base, path) = pending.pop()?;
            let mut at = if path.starts_with('/') { root } else { base };
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
            for (i, part) in parts.iter().enumerate() {
                let links = self.links.get(&at)?;
                let (_, t) = links.iter().find(|(n, _)| n == part)?;
                match t {
                    Target::Hard(a) => at = *a,
                    Target::External(f, o) => return Some((f.clone(), o.clone())),
                    Target::Soft(next) => {
                        let rest = parts[i + 1..].join("/");
                        let joined = if rest.is_empty() {
                            next.clone()
                        } else {
                            format!("{}/{rest}", next.trim_end_matches('/'))
                        };
                        pending.push((at, joined));
                        break;
                    }
                }
            }
        }
        None
    }

    fn old_style_links(
        &self,
        btree: u64,
        heap_address: u64,
        out: &mut Vec<(String, Target)>,
    ) -> Result<(), H5Error> {
        let sb = self.file.superblock();
        let (os, ls) = (sb.offset_size, sb.length_size);
        let storage = self.file.storage();
        let heap = hdf5_reader::local_heap::LocalHeap::parse_at_storage(storage, heap_address, os, ls)?;
        let leaves =
            hdf5_reader::btree_v1::collect_btree_v1_leaves_storage(storage, btree, os, ls, None, &[], None)?;
        for (_key, snod) in leaves {
            let prefix_len = 8 + 2 * usize::from(os);
            let prefix = storage.read_range(snod, prefix_len)?;
            let count = match prefix.get(6..8) {
                Some(b) if prefix.starts_with(b"SNOD") => usize::from(u16::from_le_bytes([b[0], b[1]])),
                _ => {
                    return Err(H5Error::InvalidData(format!("no symbol table node at {snod:#x}")));
                }
            };
            let len = 8 + count * (2 * usize::from(os) + 4 + 4 + 16);
            let bytes = storage.read_range(snod, len)?;
            let mut cursor = Cursor::new(bytes.as_ref());
            let node = hdf5_reader::symbol_table::SymbolTableNode::parse(&mut cursor, os, ls)?;
            for entry in &node.entries {
                let name = heap.get_string_storage(entry.link_name_offset, storage)?;
                let t = if entry.cache_type == 2 {
                    let at = u32::from_le_bytes([
                        entry.scratch[0],
                        entry.scratch[1],
                        entry.scratch[2],
                        entry.scratch[3],
                    ]);
                    Target::Soft(heap.get_string_storage(u64::from(at), storage)?)
                } else {
                    Target::Hard(entry.object_header_address)
                };
                out.push((name, t));
            }
        }
        Ok(())
    }

    fn dense_links(
        &self,
        li: &hdf5_reader::messages::link_info::LinkInfoMessage,
        out: &mut Vec<(String, Target)>,
    ) -> Result<(), H5Error> {
        let sb = self.file.superblock();
        let (os, ls) = (sb.offset_size, sb.length_size);
        if Cursor::is_undefined_offset(li.fractal_heap_address, os) {
            return Ok(());
        }
        let storage = self.file.storage();
        let heap = hdf5_reader::fractal_heap::FractalHeap::parse_at_storage(
            storage,
            li.fractal_heap_address,
            os,
            ls,
        )?;
        let header = hdf5_reader::btree_v2::BTreeV2Header::parse_at_storage(
            storage,
            li.btree_name_index_address,
            os,
            ls,
        )?;
        let records = hdf5_reader::btree_v2::collect_btree_v2_records_storage(
            storage,
            &header,
            os,
            ls,
            None,
            &[],
            None,
        )?;
        let mut cache = hdf5_reader::fractal_heap::FractalHeapDirectBlockCache::default();
        for record in &records {
            let heap_id = match record {
                hdf5_reader::btree_v2::BTreeV2Record::LinkNameHash { heap_id, .. }
                | hdf5_reader::btree_v2::BTreeV2Record::CreationOrder { heap_id, .. } => heap_id,
                _ => continue,
            };
            let bytes =
                heap.get_object_storage_cached_with_registry(heap_id, storage, os, ls, &mut cache, None)?;
            let mut cursor = Cursor::new(&bytes);
            let link = hdf5_reader::messages::link::parse(&mut cursor, os, ls, bytes.len())?;
            out.push((link.name.clone(), target(&link.target)));
        }
        Ok(())
    }

    fn external_file_names(&self, heap_address: u64, offsets: impl Iterator<Item = u64>) -> Vec<String> {
        let sb = self.file.superblock();
        let storage = self.file.storage();
        let heap = hdf5_reader::local_heap::LocalHeap::parse_at_storage(
            storage,
            heap_address,
            sb.offset_size,
            sb.length_size,
        );
        offsets
            .take(16)
            .map(|o| match &heap {
                Ok(h) => h.get_string_storage(o, storage).unwrap_or_else(|_| "?".into()),
                Err(_) => "?".into(),
            })
            .collect()
    }
}

fn target(t: &LinkTarget) -> Target {
    match t {
        LinkTarget::Hard { address } => Target::Hard(*address),
        LinkTarget::Soft { path } => Target::Soft(path.clone()),
        LinkTarget::External { filename, path } => Target::External(filename.clone(), path.clone()),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') { format!("{parent}{name}") } else { format!("{parent}/{name}") }
}

#[cfg(test)]
mod tests {
    use crate::inventory::NoteKind;
    use crate::{Options, scan_bytes, scan_reader};

    const LAMBDA_H5: &[u8] =
        include_bytes!("../../../tests/fixtures/malicious/keras-tf/k06_tf_keras_lambda_os_system.h5");

    fn kinds(node: &crate::Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn through_the_window_and_from_memory_alike() {
        let windowed = scan_bytes(LAMBDA_H5, Options::default());
        // A forward-only reader has no window: the file is buffered and parsed in memory.
        let streamed = scan_reader(LAMBDA_H5, Options::default()).unwrap();
        for node in [&windowed, &streamed] {
            assert_eq!(kinds(node), [NoteKind::KerasLambda]);
            assert!(node.notes[0].evidence.as_deref().unwrap_or("").contains("system"));
            assert_eq!(node.size, LAMBDA_H5.len() as u64);
        }
        assert_eq!(windowed.sha256, streamed.sha256);
    }

    #[test]
    fn broken_files_are_malformed_not_panics() {
        let mut cut = LAMBDA_H5[..LAMBDA_H5.len() / 3].to_vec();
        let node = scan_bytes(&cut, Options::default());
        assert!(kinds(&node).contains(&NoteKind::Malformed), "{:?}", node.notes);
        cut.truncate(64);
        let node = scan_bytes(&cut, Options::default());
        assert!(!node.notes.is_empty());
    }
}
