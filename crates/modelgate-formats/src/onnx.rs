//! ONNX models (`onnx/onnx.proto`), walked field by field off the stream.
//!
//! `ModelProto` is a protobuf message without a length or an end marker; its `graph` field holds
//! the initializers, so it can be gigabytes. The walk never buffers a field: sub-messages are
//! walked in place (`crate::protobuf`), names and paths are kept up to a small bound, and tensor
//! contents (`raw_data`, `float_data`, …) are skipped by length while the stream hashes them.
//!
//! What is looked at: the main graph, every subgraph (`If`/`Loop`/`Scan` attributes `g` and
//! `graphs`), graphs of training info, and model-local functions (field 25). Findings:
//!
//! * a tensor whose `external_data` `location` is absolute, escapes the model's directory with
//!   `..`, or — when the model is a file on disk — resolves through a symbolic link outside the
//!   model's directory (CVE-2022-25882, CVE-2024-27318, CVE-2025-51480, CVE-2026-34447);
//! * a node from an operator domain outside the standard set: the runtime needs a native custom
//!   operator library to load it. Calls to functions defined in the model itself are not custom.
//!
//! Field numbers are those of onnx 1.17+ (`formats.md` §4).

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Node, Note, NoteKind};
use crate::protobuf::{self, Field, Value, Wire, WireError, next_field};
use crate::stream::Stream;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Operator domains every ONNX runtime build knows (ONNX itself, ONNX-ML, training, and the
/// contrib domains that ship inside onnxruntime and PyTorch's exporter).
pub const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
];

const MAX_DEPTH: u32 = crate::limits::Limits::ONNX_DEPTH;
const KEEP: usize = crate::limits::Limits::ONNX_NAME_KEPT;
const KEEP_PATH: usize = crate::limits::Limits::ONNX_PATH_KEPT;
const MAX_LISTED: usize = crate::limits::Limits::ONNX_LISTED;
const MAX_OPERATORS: usize = crate::limits::Limits::ONNX_OPERATORS;

/// What the inventory records about an ONNX model.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OnnxInfo {
    /// `ir_version`.
    pub ir_version: Option<u64>,
    /// `producer_name`.
    pub producer_name: Option<String>,
    /// `producer_version`.
    pub producer_version: Option<String>,
    /// `domain` of the model.
    pub domain: Option<String>,
    /// `model_version`.
    pub model_version: Option<u64>,
    /// `opset_import`: (domain, version).
    pub opsets: Vec<Opset>,
    /// `metadata_props` (key, value), in file order.
    pub metadata_props: Vec<MetadataProp>,
    /// Graphs walked (the main graph, subgraphs, training and function bodies).
    pub graphs: u64,
    /// Nodes in all graphs and functions.
    pub nodes: u64,
    /// Initializers (dense and sparse) in all graphs.
    pub initializers: u64,
    /// Model-local functions, as `domain::name`.
    pub functions: Vec<String>,
    /// Operators used, as `domain::op_type` (domain empty for the default ONNX domain), with
    /// their node counts.
    pub operators: BTreeMap<String, u64>,
    /// `external_data` locations, in file order.
    pub external_data: Vec<String>,
}

/// An `opset_import` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Opset {
    /// Operator domain (`""` is the default ONNX domain).
    pub domain: String,
    /// Opset version.
    pub version: u64,
}

/// A `metadata_props` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MetadataProp {
    /// Key.
    pub key: String,
    /// Value (cut to a few KiB).
    pub value: String,
}

struct Walk<'p> {
    info: OnnxInfo,
    notes: Vec<Note>,
    /// (domain, op_type) → (count, offset of the first node).
    ops: BTreeMap<(String, String), (u64, u64)>,
    local_functions: BTreeSet<(String, String)>,
    /// Directory of the model file, for symlink checks.
    base_dir: Option<&'p Path>,
    checked_locations: BTreeSet<String>,
}

pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    // Only the scanned file itself sits in a directory whose links can be checked.
    let base_dir = if ctx.depth() == 1 { ctx.base_dir() } else { None };
    let mut w = Walk {
        info: OnnxInfo::default(),
        notes: Vec::new(),
        ops: BTreeMap::new(),
        local_functions: BTreeSet::new(),
        base_dir,
        checked_locations: BTreeSet::new(),
    };
    if let Err(e) = w.model(s) {
        w.notes.push(
            Note::new(NoteKind::Malformed, format!("ONNX protobuf cannot be parsed: {}", e.what)).at(e.at),
        );
    }
    w.operator_notes();
    node.notes.append(&mut w.notes);
    node.detail = Detail::Onnx(Box::new(w.info));
    Rest::Drain
}

fn len_of(field: &Field) -> Option<u64> {
    match field.value {
        Value::Len(n) => Some(n),
        _ => None,
    }
}

fn wrong_type(field: &Field, what: &str) -> WireError {
    WireError::new(field.at, format!("field {} of {what} has the wrong wire type", field.number))
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_LISTED {
        list.push(item);
    }
}

impl Walk<'_> {
    fn model(&mut self, s: &mut Stream<'_>) -> Wire<()> {
        let end = u64::MAX;
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1, Value::Varint(v)) => self.info.ir_version = Some(v),
                (5, Value::Varint(v)) => self.info.model_version = Some(v),
                (2, Value::Len(n)) => self.info.producer_name = Some(protobuf::string(s, n, KEEP)?),
                (3, Value::Len(n)) => self.info.producer_version = Some(protobuf::string(s, n, KEEP)?),
                (4, Value::Len(n)) => self.info.domain = Some(protobuf::string(s, n, KEEP)?),
                (7, Value::Len(n)) => self.graph(s, end_of(s, n), 1)?,
                (8, Value::Len(n)) => {
                    let opset = self.opset(s, end_of(s, n))?;
                    push_bounded(&mut self.info.opsets, opset);
                }
                (14, Value::Len(n)) => {
                    let (key, value) = self.string_entry(s, end_of(s, n), KEEP)?;
                    push_bounded(&mut self.info.metadata_props, MetadataProp { key, value });
                }
                (20, Value::Len(n)) => self.training_info(s, end_of(s, n), 1)?,
                (25, Value::Len(n)) => self.function(s, end_of(s, n), 1)?,
                (1 | 5 | 2 | 3 | 4 | 7 | 8 | 14 | 20 | 25, _) => {
                    return Err(wrong_type(&f, "ModelProto"));
                }
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(())
    }

    fn opset(&mut self, s: &mut Stream<'_>, end: u64) -> Wire<Opset> {
        let mut opset = Opset { domain: String::new(), version: 0 };
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1, Value::Len(n)) => opset.domain = protobuf::string(s, n, KEEP)?,
                (2, Value::Varint(v)) => opset.version = v,
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(opset)
    }

    /// `StringStringEntryProto{1: key, 2: value}`.
    fn string_entry(&mut self, s: &mut Stream<'_>, end: u64, keep: usize) -> Wire<(String, String)> {
        let (mut key, mut value) = (String::new(), String::new());
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1, Value::Len(n)) => key = protobuf::string(s, n, KEEP)?,
                (2, Value::Len(n)) => value = protobuf::string(s, n, keep)?,
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok((key, value))
    }

    fn enter(&self, s: &Stream<'_>, depth: u32) -> Wire<()> {
        if depth > MAX_DEPTH {
            return Err(WireError::new(
                s.position(),
                format!("messages nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// `GraphProto{1: node, 5: initializer, 15: sparse_initializer}`.
    fn graph(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        self.info.graphs += 1;
        while let Some(f) = next_field(s, end)? {
            match f.number {
                1 => {
                    let n = len_of(&f).ok_or_else(|| wrong_type(&f, "GraphProto"))?;
                    self.node(s, end_of(s, n), depth + 1, f.at)?;
                }
                5 => {
                    let n = len_of(&f).ok_or_else(|| wrong_type(&f, "GraphProto"))?;
                    self.info.initializers += 1;
                    self.tensor(s, end_of(s, n), depth + 1)?;
                }
                15 => {
                    let n = len_of(&f).ok_or_else(|| wrong_type(&f, "GraphProto"))?;
                    self.info.initializers += 1;
                    self.sparse_tensor(s, end_of(s, n), depth + 1)?;
                }
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(())
    }

    /// `NodeProto{4: op_type, 7: domain, 5: attribute}`.
    fn node(&mut self, s: &mut Stream<'_>, end: u64, depth: u32, at: u64) -> Wire<()> {
        self.enter(s, depth)?;
        self.info.nodes += 1;
        let (mut op_type, mut domain) = (String::new(), String::new());
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (4, Value::Len(n)) => op_type = protobuf::string(s, n, KEEP)?,
                (7, Value::Len(n)) => domain = protobuf::string(s, n, KEEP)?,
                (5, Value::Len(n)) => self.attribute(s, end_of(s, n), depth + 1)?,
                (4 | 7 | 5, _) => return Err(wrong_type(&f, "NodeProto")),
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        let key = (domain, op_type);
        if let Some(entry) = self.ops.get_mut(&key) {
            entry.0 += 1;
        } else if self.ops.len() < MAX_OPERATORS {
            self.ops.insert(key, (1, at));
        }
        Ok(())
    }

    /// `AttributeProto{5: t, 6: g, 10: tensors, 11: graphs, 22: sparse_tensor,
    /// 23: sparse_tensors}`.
    fn attribute(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (6 | 11, Value::Len(n)) => self.graph(s, end_of(s, n), depth + 1)?,
                (5 | 10, Value::Len(n)) => self.tensor(s, end_of(s, n), depth + 1)?,
                (22 | 23, Value::Len(n)) => self.sparse_tensor(s, end_of(s, n), depth + 1)?,
                (6 | 11 | 5 | 10 | 22 | 23, _) => return Err(wrong_type(&f, "AttributeProto")),
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(())
    }

    /// `SparseTensorProto{1: values, 2: indices}`.
    fn sparse_tensor(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1 | 2, Value::Len(n)) => self.tensor(s, end_of(s, n), depth + 1)?,
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(())
    }

    /// `TensorProto{8: name, 13: external_data, 14: data_location}`; the data is skipped.
    fn tensor(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        let mut name = String::new();
        let mut location: Option<(String, u64)> = None;
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (8, Value::Len(n)) => name = protobuf::string(s, n, KEEP)?,
                (13, Value::Len(n)) => {
                    let (key, value) = self.string_entry(s, end_of(s, n), KEEP_PATH)?;
                    if key == "location" {
                        location = Some((value, f.at));
                    }
                }
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        if let Some((location, at)) = location {
            if self.info.external_data.len() < MAX_LISTED && !self.info.external_data.contains(&location) {
                self.info.external_data.push(location.clone());
            }
            self.check_location(&name, &location, at);
        }
        Ok(())
    }

    /// `FunctionProto{1: name, 7: node, 10: domain}`.
    fn function(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        self.info.graphs += 1;
        let (mut name, mut domain) = (String::new(), String::new());
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1, Value::Len(n)) => name = protobuf::string(s, n, KEEP)?,
                (10, Value::Len(n)) => domain = protobuf::string(s, n, KEEP)?,
                (7, Value::Len(n)) => self.node(s, end_of(s, n), depth + 1, f.at)?,
                (1 | 10 | 7, _) => return Err(wrong_type(&f, "FunctionProto")),
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        push_bounded(&mut self.info.functions, format!("{domain}::{name}"));
        self.local_functions.insert((domain, name));
        Ok(())
    }

    /// `TrainingInfoProto{1: initialization, 3: algorithm}` (both graphs).
    fn training_info(&mut self, s: &mut Stream<'_>, end: u64, depth: u32) -> Wire<()> {
        self.enter(s, depth)?;
        while let Some(f) = next_field(s, end)? {
            match (f.number, f.value) {
                (1 | 3, Value::Len(n)) => self.graph(s, end_of(s, n), depth + 1)?,
                _ => protobuf::skip_value(s, &f)?,
            }
        }
        Ok(())
    }

    fn check_location(&mut self, tensor: &str, location: &str, at: u64) {
        if self.checked_locations.len() >= MAX_LISTED || !self.checked_locations.insert(location.to_string())
        {
            return;
        }
        let problem = match lexical_escape(location) {
            Some(why) => Some(why),
            None => self.base_dir.and_then(|dir| symlink_escape(dir, Path::new(location))),
        };
        if let Some(why) = problem {
            self.notes.push(
                Note::new(
                    NoteKind::OnnxExternalDataPath,
                    format!(
                        "tensor {tensor:?} keeps its data in an external file at {location:?}, which {why}; loading the model reads (and re-saving it writes) that file"
                    ),
                )
                .at(at)
                .evidence(location),
            );
        }
    }

    fn operator_notes(&mut self) {
        let mut info_ops = BTreeMap::new();
        let mut custom = 0;
        for ((domain, op), (count, at)) in &self.ops {
            info_ops.insert(format!("{domain}::{op}"), *count);
            if STANDARD_DOMAINS.contains(&domain.as_str())
                || self.local_functions.contains(&(domain.clone(), op.clone()))
            {
                continue;
            }
            custom += 1;
            if custom > 100 {
                continue;
            }
            self.notes.push(
                Note::new(
                    NoteKind::OnnxCustomDomain,
                    format!(
                        "{count} node(s) run operator {op:?} from domain {domain:?}, which is not a standard ONNX domain; the runtime needs a native custom-operator library to load it"
                    ),
                )
                .at(*at)
                .evidence(format!("{domain}::{op}")),
            );
        }
        self.info.operators = info_ops;
    }
}

/// Where a sub-message of `len` bytes that starts here ends.
fn end_of(s: &Stream<'_>, len: u64) -> u64 {
    s.position().saturating_add(len)
}

/// Why a location escapes the model directory on its face: absolute (POSIX or Windows), a NUL
/// byte, or `..` components that climb above the start after normalisation.
pub(crate) fn lexical_escape(location: &str) -> Option<String> {
    if location.contains('\0') {
        return Some("contains a NUL byte (the path is cut there by C file APIs)".into());
    }
    let bytes = location.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if location.starts_with('/') || location.starts_with('\\') || drive {
        return Some("is an absolute path".into());
    }
    if location.starts_with('~') {
        return Some("starts at a home directory".into());
    }
    let mut depth = 0i64;
    for part in location.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("climbs out of the model's directory with `..`".into());
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// Why a relative location that stays inside the directory on its face still leads outside it:
/// a component that is a symbolic link whose target lies outside `dir`.
///
/// A Hugging Face cache snapshot (`models--org--name/snapshots/<revision>/`) is made of links
/// into the repository's own blob store (`models--org--name/blobs/`), which `huggingface_hub`
/// writes and the files' content lives in: targets there are inside the model.
pub(crate) fn symlink_escape(dir: &Path, location: &Path) -> Option<String> {
    let base = dir.canonicalize().ok()?;
    let blobs = base
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "snapshots"))
        .and_then(Path::parent)
        .filter(|repo| repo.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("--")))
        .map(|repo| repo.join("blobs"));
    let mut path = PathBuf::from(dir);
    let mut linked = false;
    for part in location.components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::ParentDir => {
                path.push("..");
            }
            _ => {}
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            linked = true;
        }
    }
    if !linked {
        return None;
    }
    match path.canonicalize() {
        Ok(real) if real.starts_with(&base) => None,
        Ok(real) if blobs.as_ref().is_some_and(|b| real.starts_with(b)) => None,
        Ok(real) => Some(format!(
            "is a symbolic link that resolves outside the model's directory (to {})",
            real.display()
        )),
        Err(_) => Some("goes through a symbolic link whose target cannot be resolved".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::tests::{fl, fv};
    use crate::{Format, Options, scan_bytes};

    fn tensor(name: &str, location: Option<&str>) -> Vec<u8> {
        let mut t = fv(1, 2);
        t.extend(fv(2, 1));
        t.extend(fl(8, name.as_bytes()));
        match location {
            Some(loc) => {
                let mut e = fl(1, b"location");
                e.extend(fl(2, loc.as_bytes()));
                t.extend(fl(13, &e));
                t.extend(fv(14, 1));
            }
            None => t.extend(fl(9, &[0u8; 8])),
        }
        t
    }

    fn node(op: &str, domain: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut n = fl(1, b"x");
        n.extend(fl(2, b"y"));
        n.extend(fl(4, op.as_bytes()));
        for a in attrs {
            n.extend(fl(5, a));
        }
        if !domain.is_empty() {
            n.extend(fl(7, domain.as_bytes()));
        }
        n
    }

    fn model(graph: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut m = fv(1, 8);
        m.extend(fl(2, b"test"));
        m.extend(fl(7, graph));
        let mut op = fl(1, b"");
        op.extend(fv(2, 17));
        m.extend(fl(8, &op));
        let mut kv = fl(1, b"author");
        kv.extend(fl(2, b"me"));
        m.extend(fl(14, &kv));
        m.extend_from_slice(extra);
        m
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    fn info(node: &Node) -> &OnnxInfo {
        match &node.detail {
            Detail::Onnx(i) => i,
            other => panic!("no ONNX detail: {other:?}"),
        }
    }

    #[test]
    fn a_plain_model_is_inventoried() {
        let mut g = fl(1, &node("Relu", "", &[]));
        g.extend(fl(5, &tensor("W", None)));
        let data = model(&g, &[]);
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Onnx);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        let i = info(&root);
        assert_eq!(i.ir_version, Some(8));
        assert_eq!(i.producer_name.as_deref(), Some("test"));
        assert_eq!(i.opsets, vec![Opset { domain: String::new(), version: 17 }]);
        assert_eq!(i.metadata_props[0].key, "author");
        assert_eq!(i.nodes, 1);
        assert_eq!(i.initializers, 1);
        assert_eq!(i.operators.get("::Relu"), Some(&1));
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn traversal_and_custom_domains_in_subgraphs_and_functions() {
        // If node whose else-branch holds a custom op and an initializer that climbs out.
        let mut sub = fl(1, &node("MyEvilOp", "com.evil", &[]));
        sub.extend(fl(5, &tensor("W", Some("subdir/../../etc/passwd"))));
        let mut attr = fl(1, b"else_branch");
        attr.extend(fl(6, &sub));
        attr.extend(fv(20, 5));
        let mut g = fl(1, &node("If", "", &[attr]));
        g.extend(fl(5, &tensor("A", Some("/etc/shadow"))));
        g.extend(fl(5, &tensor("B", Some("weights/ok.bin"))));
        // A call to a model-local function is not a custom operator.
        g.extend(fl(1, &node("LocalFn", "my.local", &[])));
        let mut func = fl(1, b"LocalFn");
        func.extend(fl(7, &node("Exec", "com.other", &[])));
        func.extend(fl(10, b"my.local"));
        let data = model(&g, &fl(25, &func));
        let root = scan_bytes(&data, Options::default());
        let paths: Vec<&str> = root
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::OnnxExternalDataPath)
            .filter_map(|n| n.evidence.as_deref())
            .collect();
        assert_eq!(paths, vec!["subdir/../../etc/passwd", "/etc/shadow"]);
        let custom: Vec<&str> = root
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::OnnxCustomDomain)
            .filter_map(|n| n.evidence.as_deref())
            .collect();
        assert_eq!(custom, vec!["com.evil::MyEvilOp", "com.other::Exec"]);
        let i = info(&root);
        assert_eq!(i.graphs, 3);
        assert_eq!(i.functions, vec!["my.local::LocalFn".to_string()]);
        assert_eq!(i.external_data.len(), 3);
    }

    #[test]
    fn large_initializers_stream_through() {
        // 48 MiB of raw_data, read forward only: skipped by length, never buffered.
        let big = 48usize << 20;
        let mut t = fv(1, big as u64 / 4);
        t.extend(fv(2, 1));
        t.extend(fl(8, b"W"));
        let mut header = Vec::new();
        crate::protobuf::tests::enc_varint(9 << 3 | 2, &mut header);
        crate::protobuf::tests::enc_varint(big as u64, &mut header);
        let tensor_len = t.len() + header.len() + big;
        let mut g = fl(1, &node("Relu", "", &[]));
        crate::protobuf::tests::enc_varint(5 << 3 | 2, &mut g);
        crate::protobuf::tests::enc_varint(tensor_len as u64, &mut g);
        g.extend(&t);
        g.extend(&header);
        g.resize(g.len() + big, 0x3f);
        let data = model(&g, &[]);
        let root = crate::scan_reader(&data[..], Options::default()).unwrap();
        assert_eq!(root.format, Format::Onnx);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(info(&root).initializers, 1);
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn lexical_checks() {
        for bad in ["/etc/passwd", "..\\x", "a/../../b", "C:\\x", "\\\\srv\\s", "~/x", "a\0b", "../x"] {
            assert!(lexical_escape(bad).is_some(), "{bad}");
        }
        for ok in ["w.bin", "a/b/../c", "./x", "data/.hidden"] {
            assert!(lexical_escape(ok).is_none(), "{ok}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_directory_are_found() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("weights.bin")).unwrap();
        std::fs::write(dir.path().join("real.bin"), b"y").unwrap();
        std::os::unix::fs::symlink("real.bin", dir.path().join("inside.bin")).unwrap();
        let mut g = fl(5, &tensor("W", Some("weights.bin")));
        g.extend(fl(5, &tensor("V", Some("inside.bin"))));
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model(&g, &[])).unwrap();
        let root = crate::scan_file(&path, Options::default()).unwrap();
        assert_eq!(kinds(&root), vec![NoteKind::OnnxExternalDataPath]);
        assert_eq!(root.notes[0].evidence.as_deref(), Some("weights.bin"));
        // The same bytes without a directory: nothing to resolve.
        let root = scan_bytes(&std::fs::read(&path).unwrap(), Options::default());
        assert!(root.notes.is_empty());
    }

    /// huggingface_hub's cache: `snapshots/<rev>/` holds links into the repository's `blobs/`.
    /// Those stay inside the model; a link from a snapshot to anywhere else does not.
    #[test]
    fn hub_cache_snapshots_link_into_their_blob_store() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--name");
        let snapshot = repo.join("snapshots").join("0123abc");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs").join("9f86d0"), b"w").unwrap();
        std::os::unix::fs::symlink("../../blobs/9f86d0", snapshot.join("model.onnx_data")).unwrap();
        std::fs::write(cache.path().join("elsewhere"), b"x").unwrap();
        std::os::unix::fs::symlink("../../../elsewhere", snapshot.join("other.bin")).unwrap();
        assert_eq!(symlink_escape(&snapshot, Path::new("model.onnx_data")), None);
        assert!(symlink_escape(&snapshot, Path::new("other.bin")).is_some());
        // The same layout under a directory that is not a hub cache repository is not trusted.
        let plain = cache.path().join("plain").join("snapshots").join("rev");
        std::fs::create_dir_all(&plain).unwrap();
        std::os::unix::fs::symlink("../../../models--org--name/blobs/9f86d0", plain.join("w")).unwrap();
        assert!(symlink_escape(&plain, Path::new("w")).is_some());
    }

    #[test]
    fn broken_models_are_malformed_and_never_panic() {
        let mut g = fl(1, &node("If", "", &[]));
        g.extend(fl(5, &tensor("A", Some("x.bin"))));
        let data = model(&g, &[]);
        for cut in 3..data.len() {
            let root = scan_bytes(&data[..cut], Options::default());
            if root.format == Format::Onnx {
                assert_eq!(root.size, cut as u64);
            }
        }
        // Deep nesting: a graph in an attribute in a node in a graph… 200 levels.
        let mut g = fl(1, &node("Relu", "", &[]));
        for _ in 0..200 {
            let mut attr = fl(1, b"then_branch");
            attr.extend(fl(6, &g));
            g = fl(1, &node("If", "", &[attr]));
        }
        let root = scan_bytes(&model(&g, &[]), Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::Malformed]);
        assert!(root.notes[0].detail.contains("nested"));
    }
}
