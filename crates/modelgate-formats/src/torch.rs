//! PyTorch's formats on top of pickle (`torch/serialization.py`).
//!
//! * Zip archives (`torch.save` since 1.6, and `torch.jit.save`): `<prefix>/data.pkl` is unpickled
//!   with a `persistent_load` that turns `('storage', type, key, location, numel)` into the raw
//!   bytes of member `<prefix>/data/<key>`. TorchScript archives add `constants.pkl` and `code/`.
//! * Legacy files: five pickles back to back (magic number, protocol version, system info, the
//!   object, the sorted storage keys), then each storage as an 8-byte element count and its bytes.
//!
//! Besides the pickles, the loader trusts the storage metadata: a tensor whose size, stride and
//! offset reach outside its storage, or a storage whose bytes disagree with the count the pickle
//! declares, is a memory-safety problem for the loader (CVE-2026-24747) and a sign of tampering.

use crate::driver::{Driver, Rest};
use crate::inventory::{Format, Node, Note, NoteKind, Role};
use crate::pickle::value::{Obj, Value};
use crate::pickle::{End, Loader, Machine, PickleLoader, Session};
use crate::stream::Stream;
use std::collections::HashMap;

/// A storage the pickle references through a persistent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub(crate) key: String,
    /// `torch.FloatStorage` …
    pub(crate) storage_type: String,
    /// Elements, as declared.
    pub(crate) numel: u64,
    /// Bytes per element, when the storage type is known.
    pub(crate) element_size: Option<u64>,
    /// Offset of the persistent-id opcode.
    pub(crate) offset: u64,
}

impl StorageRef {
    pub(crate) fn nbytes(&self) -> Option<u64> {
        self.numel.checked_mul(self.element_size?)
    }
}

/// Bytes per element for the storage classes `torch.save` names.
pub(crate) fn element_size(storage_type: &str) -> Option<u64> {
    let name = storage_type.rsplit('.').next().unwrap_or(storage_type);
    Some(match name {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QInt8Storage" | "QUInt8Storage"
        | "QUInt4x2Storage" | "QUInt2x4Storage" | "UntypedStorage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => {
            // Newer dtypes pickle as e.g. `torch.Float8_e4m3fnStorage`.
            if name.starts_with("Float8") || name.starts_with("UInt8") || name.starts_with("Int8") {
                1
            } else if name.starts_with("UInt16") || name.starts_with("Int16") {
                2
            } else if name.starts_with("UInt32") || name.starts_with("Int32") {
                4
            } else if name.starts_with("UInt64") || name.starts_with("Int64") {
                8
            } else {
                return None;
            }
        }
    })
}

/// `torch.load`'s `persistent_load` and tensor rebuilding, for both zip and legacy files.
pub(crate) struct TorchLoader {
    legacy: bool,
    pub(crate) storages: Vec<StorageRef>,
    /// Heap index of each storage object → index in `storages`.
    by_heap: HashMap<u32, usize>,
}

impl TorchLoader {
    pub(crate) fn new(legacy: bool) -> TorchLoader {
        TorchLoader { legacy, storages: Vec::new(), by_heap: HashMap::new() }
    }

    fn reject(&self, m: &mut Machine<'_>, pid: &Value, offset: u64, why: &str) -> Value {
        m.note(
            Note::new(
                NoteKind::PicklePersistentId,
                format!("persistent id that torch.load rejects or cannot map to a storage: {why}"),
            )
            .at(offset)
            .evidence(m.describe(pid)),
        );
        Value::Unknown("persistent id")
    }
}

impl Loader for TorchLoader {
    fn persistent_load(&mut self, m: &mut Machine<'_>, pid: Value, offset: u64) -> Value {
        let Some(items) = pid.as_tuple() else {
            return self.reject(m, &pid, offset, "not a tuple");
        };
        let items = items.to_vec();
        let typename = items.first().and_then(Value::as_str);
        if self.legacy && typename == Some("module") {
            // ('module', class, source_file, source): torch returns the class itself.
            return items.get(1).cloned().unwrap_or(Value::Unknown("module"));
        }
        if typename != Some("storage") {
            return self.reject(m, &pid, offset, "the first item is not 'storage'");
        }
        let data = &items[1..];
        let expected = if self.legacy { 5 } else { 4 };
        if data.len() != expected {
            return self.reject(m, &pid, offset, &format!("{} fields instead of {expected}", data.len()));
        }
        let Some(storage_type) = m.global(&data[0]).map(|g| g.qualified()) else {
            return self.reject(m, &pid, offset, "the storage type is not a global");
        };
        let (Some(key), Some(numel)) = (data[1].as_str().map(str::to_string), data[3].as_int()) else {
            return self.reject(
                m,
                &pid,
                offset,
                "the key is not a string or the element count is not an integer",
            );
        };
        if numel < 0 {
            return self.reject(m, &pid, offset, "negative element count");
        }
        let storage = StorageRef {
            key,
            element_size: element_size(&storage_type),
            storage_type,
            numel: numel as u64,
            offset,
        };
        let v = m.alloc(Obj::Instance {
            callee: data[0].clone(),
            args: pid.clone(),
            opcode: "persistent_load",
            offset,
            state: None,
        });
        let index = match self.storages.iter().position(|s| s.key == storage.key) {
            Some(i) => i,
            None => {
                self.storages.push(storage);
                self.storages.len() - 1
            }
        };
        if let Value::Heap(h) = v {
            self.by_heap.insert(h, index);
        }
        v
    }

    fn after_call(
        &mut self,
        m: &mut Machine<'_>,
        callee: &Value,
        args: &Value,
        _result: &Value,
        offset: u64,
    ) {
        let Some(g) = m.global(callee) else { return };
        if g.module != "torch._utils"
            || !matches!(
                g.name.as_str(),
                "_rebuild_tensor" | "_rebuild_tensor_v2" | "_rebuild_tensor_v3" | "_rebuild_qtensor"
            )
        {
            return;
        }
        let Some(items) = args.as_tuple() else { return };
        let storage = match items.first() {
            Some(Value::Heap(h)) => self.by_heap.get(h).map(|&i| self.storages[i].clone()),
            _ => None,
        };
        let Some(storage) = storage else { return };
        let (Some(storage_offset), Some(size), Some(stride)) = (
            items.get(1).and_then(Value::as_int),
            items.get(2).and_then(Value::as_tuple).and_then(ints),
            items.get(3).and_then(Value::as_tuple).and_then(ints),
        ) else {
            return;
        };
        // Sub-byte quantized types pack several elements into each storage byte.
        let capacity = storage.numel.saturating_mul(packed_elements(&storage.storage_type));
        if let Some(problem) = tensor_bounds_problem(storage_offset, &size, &stride, capacity) {
            let name = m.describe(callee);
            m.note(
                Note::new(
                    NoteKind::TorchTensorBounds,
                    format!("{name} builds a tensor of size {size:?}, stride {stride:?}, offset {storage_offset} on storage '{}' of {} elements: {problem}", storage.key, storage.numel),
                )
                .at(offset)
                .evidence(format!("storage {} size {size:?} stride {stride:?} offset {storage_offset}", storage.key)),
            );
        }
    }
}

/// Elements stored per storage element: 2 for `quint4x2`, 4 for `quint2x4`, else 1.
fn packed_elements(storage_type: &str) -> u64 {
    match storage_type.rsplit('.').next().unwrap_or(storage_type) {
        "QUInt4x2Storage" => 2,
        "QUInt2x4Storage" => 4,
        _ => 1,
    }
}

fn ints(items: &[Value]) -> Option<Vec<i64>> {
    items.iter().map(Value::as_int).collect()
}

/// Why a tensor view does not fit its storage, if it does not.
pub(crate) fn tensor_bounds_problem(offset: i64, size: &[i64], stride: &[i64], numel: u64) -> Option<String> {
    if size.len() != stride.len() {
        return Some(format!("size has {} dimensions but stride has {}", size.len(), stride.len()));
    }
    if offset < 0 || size.iter().any(|&d| d < 0) || stride.iter().any(|&d| d < 0) {
        return Some("negative offset, size or stride".into());
    }
    if size.contains(&0) {
        return None;
    }
    let mut last: i128 = i128::from(offset);
    for (&d, &st) in size.iter().zip(stride) {
        last += i128::from(d - 1) * i128::from(st);
    }
    (last >= i128::from(numel)).then(|| format!("it reaches element {last}, past the end of the storage"))
}

/// Scans a loader pickle of a zip archive (`data.pkl`, `constants.pkl`, `*.debug_pkl`) with
/// torch's semantics; returns the storages it references.
pub(crate) fn scan_archive_pickle(
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    kind: PickleLoader,
) -> Vec<StorageRef> {
    node.format = Format::Pickle;
    let mut session = Session::new(kind);
    let mut loader = TorchLoader::new(false);
    session.run(node, s, ctx, &mut loader, |_, _| ());
    session.finish(node);
    loader.storages
}

/// Continues a legacy torch file after its magic-number pickle.
pub(crate) fn scan_legacy_after_magic(
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    mut session: Session,
) -> Rest {
    node.format = Format::PytorchLegacy;
    session.set_loader(PickleLoader::TorchLegacy);
    let mut plain = crate::pickle::PlainLoader;
    let mut torch = TorchLoader::new(true);
    // Protocol version, then system info: plain pickles.
    for what in ["protocol version", "system info"] {
        let (end, _) = session.run(node, s, ctx, &mut plain, |_, _| ());
        if !matches!(end, End::Stop(_)) {
            layout_note(node, s.position(), &format!("the legacy torch {what} pickle is missing or broken"));
            session.finish(node);
            return Rest::Drain;
        }
    }
    let (end, _) = session.run(node, s, ctx, &mut torch, |_, _| ());
    if !matches!(end, End::Stop(_)) {
        session.finish(node);
        return Rest::Drain;
    }
    let (end, keys) = session.run(node, s, ctx, &mut plain, string_list);
    let keys = match (end, keys.flatten()) {
        (End::Stop(_), Some(keys)) => keys,
        (End::Stop(_), None) => {
            layout_note(node, s.position(), "the legacy torch storage-key pickle is not a list of strings");
            session.finish(node);
            return Rest::Drain;
        }
        _ => {
            session.finish(node);
            return Rest::Drain;
        }
    };
    session.finish(node);
    // Raw storages, in key order: an 8-byte little-endian element count, then the bytes.
    for key in keys {
        let at = s.position();
        let Some(storage) = torch.storages.iter().find(|st| st.key == key).cloned() else {
            layout_note(
                node,
                at,
                &format!(
                    "storage key '{key}' is listed but no tensor references it (torch.load fails an assertion)"
                ),
            );
            return Rest::Drain;
        };
        let Ok(Some(count)) = s.read_array::<8>().map(|o| o.map(u64::from_le_bytes)) else {
            layout_note(node, at, &format!("the file ends before storage '{key}'"));
            return Rest::Drain;
        };
        if count != storage.numel {
            node.note(
                Note::new(
                    NoteKind::TorchStorageMismatch,
                    format!(
                        "storage '{key}' holds {count} elements in the file but the pickle declares {}",
                        storage.numel
                    ),
                )
                .at(at),
            );
        }
        let Some(nbytes) = storage.element_size.and_then(|e| e.checked_mul(count)) else {
            layout_note(node, at, &format!("cannot size storage '{key}' of type {}", storage.storage_type));
            return Rest::Drain;
        };
        if s.skip(nbytes).ok() != Some(nbytes) {
            layout_note(node, at, &format!("the file ends inside storage '{key}'"));
            return Rest::Drain;
        }
    }
    Rest::Trailing
}

fn layout_note(node: &mut Node, offset: u64, detail: &str) {
    node.note(Note::new(NoteKind::Malformed, detail.to_string()).at(offset));
}

fn string_list(m: &Machine<'_>, v: &Value) -> Option<Vec<String>> {
    match m.obj(v)? {
        Obj::List { items, dropped: 0 } => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// Checks the storages a zip archive's pickle references against the archive's members.
pub(crate) fn check_zip_storages(
    archive: &mut Node,
    prefix: &str,
    storages: &[StorageRef],
    members: &HashMap<String, u64>,
) {
    for st in storages {
        let name = format!("{prefix}data/{}", st.key);
        match (members.get(&name.to_ascii_lowercase()), st.nbytes()) {
            (None, _) => archive.note(
                Note::new(NoteKind::TorchStorageMismatch, format!("the pickle references storage '{}' but the archive has no member {name}", st.key))
                    .evidence(name),
            ),
            (Some(&size), Some(nbytes)) if size != nbytes => archive.note(
                Note::new(
                    NoteKind::TorchStorageMismatch,
                    format!("member {name} holds {size} bytes but the pickle declares {} elements of {} ({nbytes} bytes)", st.numel, st.storage_type),
                )
                .evidence(name),
            ),
            _ => {}
        }
    }
}

/// `torch.save`'s and `torch.jit.save`'s zip layout: `<prefix>/data.pkl` (and for TorchScript
/// `code/`, `constants.pkl`), raw storages under `<prefix>/data/`, bookkeeping records
/// (src/layout.rs).
pub(crate) struct TorchZipLayout;

impl crate::layout::ArchiveLayout for TorchZipLayout {
    fn name(&self) -> &'static str {
        "torch-zip"
    }

    fn classify(&self, names: &[&str]) -> Option<Format> {
        let prefix = torch_prefix(names)?;
        let has = |suffix: &str| names.iter().any(|n| n.to_ascii_lowercase() == format!("{prefix}{suffix}"));
        let code = names.iter().any(|n| n.to_ascii_lowercase().starts_with(&format!("{prefix}code/")));
        Some(if code || has("constants.pkl") { Format::Torchscript } else { Format::PytorchZip })
    }

    fn open(&self, format: Format, names: &[&str]) -> Option<Box<dyn crate::layout::LayoutReader>> {
        if !matches!(format, Format::PytorchZip | Format::Torchscript) {
            return None;
        }
        let prefix = torch_prefix(names)?;
        Some(Box::new(TorchZipReader {
            prefix,
            torchscript: format == Format::Torchscript,
            storages: Vec::new(),
        }))
    }
}

/// [`TorchZipLayout`] applied to one archive.
struct TorchZipReader {
    /// The lower-cased archive prefix, with its `/`.
    prefix: String,
    torchscript: bool,
    /// Storages the loader pickles reference.
    storages: Vec<StorageRef>,
}

impl crate::layout::LayoutReader for TorchZipReader {
    fn role(&self, name: &str) -> Option<Role> {
        let lower = name.to_ascii_lowercase();
        let rel = lower.strip_prefix(self.prefix.as_str())?;
        Some(match rel {
            "data.pkl" | "constants.pkl" => Role::LoaderPickle,
            // torch.jit.load reads every pickle of a TorchScript archive with its own unpickler
            // (debug info, traced_inputs.pkl, …).
            r if r.ends_with(".debug_pkl") => Role::LoaderPickle,
            r if self.torchscript && r.ends_with(".pkl") && !r.starts_with("code/") => Role::LoaderPickle,
            r if r.starts_with("data/") => Role::TensorStorage,
            r if r.starts_with("code/") => Role::TorchscriptCode,
            "version"
            | ".data/version"
            | "byteorder"
            | ".data/serialization_id"
            | ".format_version"
            | ".storage_alignment" => Role::LoaderRecord,
            r if r.starts_with("extra/") || r.starts_with(".data/") => Role::LoaderRecord,
            _ => return None,
        })
    }

    fn claims(&self, role: Option<Role>) -> bool {
        role == Some(Role::LoaderPickle)
    }

    fn scan_member(
        &mut self,
        stream: Stream<'_>,
        ctx: &mut dyn Driver,
        child: Node,
        _role: Option<Role>,
    ) -> Node {
        // torch unpickles these whatever they look like.
        let kind = if self.torchscript { PickleLoader::Torchscript } else { PickleLoader::TorchZip };
        let mut found = Vec::new();
        let node = crate::driver::scan_node_with(
            stream,
            ctx,
            child,
            |_, _| Format::Pickle,
            |_, s, ctx, node| {
                found = scan_archive_pickle(s, ctx, node, kind);
                Rest::Trailing
            },
        );
        self.storages.extend(found);
        node
    }

    fn member_start(&self, archive: &mut Node, name: &str, role: Option<Role>, at: u64) {
        if role.is_none() {
            archive.note(
                Note::new(NoteKind::TorchUnexpectedMember, format!("member {name} is not part of the PyTorch archive layout; torch.load ignores it, other tools may not"))
                    .at(at)
                    .evidence(name.to_string()),
            );
        }
    }

    fn member_read(&self, archive: &mut Node, name: &str, method: u16, at: u64) {
        if matches!(method, 12 | 14) {
            archive.note(
                Note::new(
                    NoteKind::ArchiveMalformed,
                    format!(
                        "member {name}: compression method {method} ({}), which torch's reader cannot decompress (torch.load fails on it)",
                        if method == 12 { "bzip2" } else { "LZMA" }
                    ),
                )
                .at(at)
                .evidence(name.to_string()),
            );
        }
    }

    fn member_done(&self, archive: &mut Node, name: &str, role: Option<Role>) {
        if role == Some(Role::TorchscriptCode)
            && !archive.notes.iter().any(|n| n.kind == NoteKind::TorchscriptCode)
        {
            archive.note(
                Note::new(
                    NoteKind::TorchscriptCode,
                    format!(
                        "TorchScript archive with code under {}; torch.jit.load compiles and runs it",
                        name.rsplit_once("code/").map(|(p, _)| format!("{p}code/")).unwrap_or_default()
                    ),
                )
                .evidence(name.to_string()),
            );
        }
    }

    fn finish(&mut self, archive: &mut Node, members: &HashMap<String, u64>) {
        check_zip_storages(archive, &self.prefix, &self.storages, members);
    }
}

/// torch's reader takes the archive prefix from the first central-directory entry, up to the
/// first '/', and is a torch archive if `<prefix>/data.pkl` exists (matched case-insensitively).
fn torch_prefix(names: &[&str]) -> Option<String> {
    let first = names.first()?;
    let slash = first.find('/')?;
    let prefix = first[..=slash].to_ascii_lowercase();
    let data_pkl = format!("{prefix}data.pkl");
    names.iter().any(|n| n.to_ascii_lowercase() == data_pkl).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_bounds() {
        assert_eq!(tensor_bounds_problem(0, &[2, 3], &[3, 1], 6), None);
        assert!(tensor_bounds_problem(0, &[2, 3], &[3, 1], 5).is_some());
        assert!(tensor_bounds_problem(1, &[6], &[1], 6).is_some());
        assert_eq!(tensor_bounds_problem(100, &[0, 3], &[3, 1], 6), None);
        assert!(tensor_bounds_problem(0, &[2], &[1, 1], 6).is_some());
        assert!(tensor_bounds_problem(-1, &[2], &[1], 6).is_some());
        assert!(tensor_bounds_problem(0, &[i64::MAX, 2], &[i64::MAX, 1], 6).is_some());
    }

    #[test]
    fn element_sizes() {
        assert_eq!(element_size("torch.FloatStorage"), Some(4));
        assert_eq!(element_size("torch.BFloat16Storage"), Some(2));
        assert_eq!(element_size("torch.Float8_e4m3fnStorage"), Some(1));
        assert_eq!(element_size("torch.WeirdStorage"), None);
    }
}
