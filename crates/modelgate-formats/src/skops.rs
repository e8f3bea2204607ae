//! skops (`skops.io.dump`, `.skops`): a zip whose root `schema.json` describes the object tree and
//! whose other members hold the arrays (`.npy`, `.npz`) and bytes (`.bin`) it refers to.
//!
//! `skops.io.load` builds every JSON object that has a `__loader__` into a node of that class and
//! then constructs it; most node classes import `__module__`.`__class__` (and some call it with data
//! from the file). The walker here records every name a node would import, with the node kind
//! that imports it, so the policy can classify them with the pickle allow-list (loader `skops`).
//! It never imports anything.
//!
//! What a node kind imports (skops 0.16, `skops/io/_general.py`, `_numpy.py`, `_scipy.py`,
//! `_sklearn.py`, `old/`):
//!
//! * `module.class`, called with data from the file: `DictNode` (no arguments), `ListNode`,
//!   `SetNode`, `TupleNode` (named tuples), `ConstructorFromReduceNode`, `NdArrayNode` (any class
//!   other than `numpy.ndarray` is called with the array), `RandomStateNode`,
//!   `RandomGeneratorNode`, `LossNode` (the constructor of a reduce node).
//! * `module.class`, instantiated with `__new__` and given the stored state: `ObjectNode`.
//! * `module.class`, imported and handed over as an object: `FunctionNode`, `TypeNode`; the
//!   protocol-0 `FunctionNode` imports `content.module_path`.`content.function` instead.
//! * `operator.<class>` called with stored arguments: `OperatorFuncNode`.
//! * `getattr(<object>, content.func)`: `MethodNode` (recorded as `module.class.func`).
//! * `numpy.random.<name>` for the bit generator a `RandomGeneratorNode` names.
//! * Only checked against skops' own trusted list, built from fixed classes: `DefaultDictNode`,
//!   `BytesNode`, `BytearrayNode`, `MaskedArrayNode`, `DTypeNode`, `SparseMatrixNode`, `TreeNode`,
//!   `QuantileForestNode`, `PartialNode`. They are recorded too, as
//!   skops' `get_untrusted_types` reports them.
//! * Nothing: `JsonNode` (its content is parsed with `json.loads`), `SliceNode`, `CachedNode`.
//!
//! Any other `__loader__` makes `skops.io.load` fail today, but it is what a newer skops (or a
//! crafted file) would dispatch on, so it is a finding of its own, and its `module.class` is
//! recorded as imported.
//!
//! The document is decoded the way Python's `json.loads(bytes)` decodes it (UTF-8 with or without
//! a byte-order mark, UTF-16 and UTF-32), so re-encoding `schema.json` does not hide it. It is
//! parsed with `serde_json`, whose nesting limit (128) bounds the recursion, into at most
//! `crate::json::MAX_VALUES` values; a deeper or larger document is a limit finding.

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Format, GraphInventory, Node, Note, NoteKind, Relation, Role, cap_notes};
use crate::keras::{Seg, path_string};
use crate::stream::{HashMode, Stream, Window};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// The loader name allow-list entries are scoped with (`loaders = ["skops"]`).
pub const LOADER: &str = "skops";

/// [`Limits::SKOPS_GLOBALS`](crate::Limits::SKOPS_GLOBALS)
pub const MAX_GLOBALS: usize = crate::limits::Limits::SKOPS_GLOBALS;
const MAX_FILES: usize = crate::limits::Limits::SKOPS_FILES;
const MAX_NOTES: usize = crate::limits::Limits::SKOPS_NOTES;
const MAX_DEPTH: usize = crate::limits::Limits::SKOPS_DEPTH;
const MAX_PATH: usize = crate::limits::Limits::SKOPS_PATH;

/// Node kinds skops 0.16 registers (`skops.io._audit.NODE_TYPE_MAPPING`; the allow-list harvest,
/// `support/allowlist/cases_skops.py`, fails when the installed skops registers others).
const KNOWN_LOADERS: &[&str] = &[
    "DictNode",
    "DefaultDictNode",
    "ListNode",
    "SetNode",
    "TupleNode",
    "BytesNode",
    "BytearrayNode",
    "SliceNode",
    "FunctionNode",
    "MethodNode",
    "PartialNode",
    "TypeNode",
    "ConstructorFromReduceNode",
    "ObjectNode",
    "JsonNode",
    "OperatorFuncNode",
    "CachedNode",
    "NdArrayNode",
    "MaskedArrayNode",
    "DTypeNode",
    "RandomStateNode",
    "RandomGeneratorNode",
    "SparseMatrixNode",
    "TreeNode",
    "LossNode",
    "QuantileForestNode",
];

/// What a skops schema says `skops.io.load` would rebuild.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SkopsInventory {
    /// The `protocol` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<i64>,
    /// The `_skops_version` key (the writer's version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skops_version: Option<String>,
    /// Nodes per `__loader__`, in order of first appearance.
    pub loaders: GraphInventory,
    /// Every distinct name a node would import, in order of first appearance.
    pub globals: Vec<SkopsGlobal>,
    /// Archive members the schema reads (`file` keys), in order, without repeats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// One name a skops node imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkopsGlobal {
    /// The module.
    pub module: String,
    /// The attribute (dotted for a `MethodNode`'s method).
    pub name: String,
    /// The node kind (`__loader__`) that imports it.
    pub node: String,
    /// Where the first such node is in the document (`content.steps.content[0]`).
    pub path: String,
    /// Nodes of this kind importing this name.
    pub count: u64,
}

impl SkopsGlobal {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// What `skops.io.load` does with what a node of this kind names (for messages).
pub fn effect(node: &str) -> &'static str {
    match node {
        "DictNode"
        | "ListNode"
        | "SetNode"
        | "TupleNode"
        | "ConstructorFromReduceNode"
        | "NdArrayNode"
        | "RandomStateNode"
        | "RandomGeneratorNode"
        | "LossNode" => "skops.io.load imports it and calls it with data from the file",
        "ObjectNode" => {
            "skops.io.load imports it, creates an instance with __new__ and sets the stored state"
        }
        "FunctionNode" | "TypeNode" => "skops.io.load imports it and hands it to the model as an object",
        "OperatorFuncNode" => "skops.io.load calls it with arguments from the file",
        "MethodNode" => "skops.io.load looks the method up on the rebuilt object by name",
        n if KNOWN_LOADERS.contains(&n) => "skops.io.load checks it against its trusted types",
        _ => "a loader modelgate does not know; a skops that registers it would import it",
    }
}

/// True when a JSON document (already parsed) has the shape of a skops schema: a top-level object
/// with `__loader__` or `_skops_version`.
fn is_schema(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key("__loader__") || m.contains_key("_skops_version"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Text that claims to be a skops schema even if it does not parse.
fn claims(text: &str) -> bool {
    let b = text.as_bytes();
    contains(b, b"\"__loader__\"") && contains(b, b"\"__module__\"") && contains(b, b"\"__class__\"")
}

/// Decodes bytes the way Python's `json.loads(bytes)` does (`json.detect_encoding`): BOMs for
/// UTF-32, UTF-16 and UTF-8, then the NUL pattern of the first four bytes. Unpaired surrogates
/// (which Python keeps with `surrogatepass`) become U+FFFD.
fn decode_like_python(b: &[u8]) -> Cow<'_, str> {
    let utf16 = |b: &[u8], be: bool| {
        let units = b
            .chunks_exact(2)
            .map(|c| if be { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) });
        char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect::<String>()
    };
    let utf32 = |b: &[u8], be: bool| {
        b.chunks_exact(4)
            .map(|c| {
                let u = if be {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                };
                char::from_u32(u).unwrap_or('\u{fffd}')
            })
            .collect::<String>()
    };
    if let Some(rest) = b.strip_prefix(b"\x00\x00\xfe\xff") {
        return Cow::Owned(utf32(rest, true));
    }
    if let Some(rest) = b.strip_prefix(b"\xff\xfe\x00\x00") {
        return Cow::Owned(utf32(rest, false));
    }
    if let Some(rest) = b.strip_prefix(b"\xfe\xff") {
        return Cow::Owned(utf16(rest, true));
    }
    if let Some(rest) = b.strip_prefix(b"\xff\xfe") {
        return Cow::Owned(utf16(rest, false));
    }
    if let Some(rest) = b.strip_prefix(b"\xef\xbb\xbf") {
        return String::from_utf8_lossy(rest);
    }
    if b.len() >= 4 {
        if b[0] == 0 {
            return Cow::Owned(if b[1] != 0 { utf16(b, true) } else { utf32(b, true) });
        }
        if b[1] == 0 {
            return Cow::Owned(if b[2] != 0 || b[3] != 0 { utf16(b, false) } else { utf32(b, false) });
        }
    } else if b.len() == 2 {
        if b[0] == 0 {
            return Cow::Owned(utf16(b, true));
        }
        if b[1] == 0 {
            return Cow::Owned(utf16(b, false));
        }
    }
    String::from_utf8_lossy(b)
}

/// Walks `data` as a skops schema if it is one (or claims to be one and is broken). Returns false,
/// leaving `node` untouched, for any other document. `source` names the document in messages.
/// With `quick`, a document that does not spell `"__loader__"` or `"_skops_version"` literally is
/// not parsed at all (the cheap path for every JSON file; a key written with `\u` escapes is only
/// found by the full parse, which the root `schema.json` of a zip always gets).
pub(crate) fn scan_schema(data: &[u8], source: &str, node: &mut Node, quick: bool) -> bool {
    let text = decode_like_python(data);
    let raw = text.as_bytes();
    if quick && !contains(raw, b"\"__loader__\"") && !contains(raw, b"\"_skops_version\"") {
        return false;
    }
    let value: Value = match crate::json::from_str(&text, crate::json::MAX_VALUES) {
        Ok(v) if is_schema(&v) => v,
        Ok(_) => return false,
        Err(e) if claims(&text) || (crate::json::is_too_many(&e) && contains(raw, b"_skops_version")) => {
            let note = if crate::json::is_too_many(&e) {
                Note::new(
                    NoteKind::LimitExceeded,
                    format!(
                        "{source} is a skops schema of more than {} JSON values; its nodes were not inspected",
                        crate::json::MAX_VALUES
                    ),
                )
            } else if e.to_string().contains("recursion limit") {
                Note::new(
                    NoteKind::LimitExceeded,
                    format!(
                        "{source} names skops loaders but nests deeper than JSON parsers go ({e}); its nodes were not inspected"
                    ),
                )
            } else {
                Note::new(
                    NoteKind::Malformed,
                    format!(
                        "{source} names skops loaders but could not be parsed as JSON ({e}); its nodes were not inspected"
                    ),
                )
            };
            node.note(note);
            node.detail = Detail::Skops(Box::default());
            return true;
        }
        Err(_) => return false,
    };
    let mut w = Walker {
        source,
        inv: SkopsInventory::default(),
        notes: Vec::new(),
        index: HashMap::new(),
        files: HashMap::new(),
        path: Vec::new(),
        globals_full: false,
    };
    w.top(&value);
    w.visit(&value);
    let Walker { inv, mut notes, .. } = w;
    cap_notes(&mut notes, MAX_NOTES, NoteKind::Malformed, &format!("{source}: skops schema"));
    node.notes.extend(notes);
    node.detail = Detail::Skops(Box::new(inv));
    true
}

/// Scans the root `schema.json` of a zip: whatever its content, `skops.io.load` reads it with
/// `json.loads`. A skops schema is walked; anything else is scanned by content like any member.
pub(crate) fn scan_schema_member(
    format: Format,
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
) -> Rest {
    let Some(data) = crate::driver::read_whole(s, ctx, node, "schema.json") else {
        return Rest::Drain;
    };
    if scan_schema(&data, "schema.json", node, false) {
        node.format = Format::Json;
        return Rest::Drain;
    }
    // Not a skops schema: the member is whatever its content is.
    let mut inner = Stream::new(&data[..], HashMode::None).with_window(Window::from_slice(&data));
    if ctx.parse_as(format, &mut inner, node) == Rest::Trailing {
        let at = inner.position();
        if matches!(inner.at_eof(), Ok(false)) {
            crate::driver::scan_trailing(inner.take_next(u64::MAX), at, ctx, node);
        }
    }
    Rest::Drain
}

struct Walker<'w> {
    source: &'w str,
    inv: SkopsInventory,
    notes: Vec<Note>,
    index: HashMap<(String, String, String), usize>,
    files: HashMap<String, ()>,
    path: Vec<Seg<'w>>,
    globals_full: bool,
}

impl<'w> Walker<'w> {
    fn here(&self) -> String {
        let mut at = path_string(&self.path);
        if at.is_empty() {
            return "the root".to_string();
        }
        if at.len() > MAX_PATH {
            let mut cut = at.len() - MAX_PATH;
            while !at.is_char_boundary(cut) {
                cut += 1;
            }
            at = format!("…{}", &at[cut..]);
        }
        at
    }

    fn problem(&mut self, kind: NoteKind, what: String, evidence: Option<String>) {
        let mut note = Note::new(kind, format!("{}: {what} (at {})", self.source, self.here()));
        note.evidence = evidence;
        self.notes.push(note);
    }

    fn top(&mut self, v: &Value) {
        let Some(map) = v.as_object() else { return };
        match map.get("protocol") {
            Some(p) if p.as_i64().is_some() => self.inv.protocol = p.as_i64(),
            Some(p) => self.problem(
                NoteKind::Malformed,
                format!("the protocol is {p}, not an integer; skops.io.load cannot pick node versions"),
                None,
            ),
            None => self.problem(
                NoteKind::Malformed,
                "no protocol key; skops.io.load fails on this file".to_string(),
                None,
            ),
        }
        if let Some(version) = map.get("_skops_version") {
            self.inv.skops_version = Some(match version.as_str() {
                Some(s) => s.chars().take(64).collect(),
                None => version.to_string().chars().take(64).collect(),
            });
        }
        if !map.contains_key("__loader__") {
            self.problem(
                NoteKind::Malformed,
                "the root object has no __loader__; skops.io.load fails on this file".to_string(),
                None,
            );
        }
    }

    fn visit(&mut self, value: &'w Value) {
        if self.path.len() >= MAX_DEPTH {
            self.problem(
                NoteKind::LimitExceeded,
                format!("nested more than {MAX_DEPTH} levels; deeper nodes were not inspected"),
                None,
            );
            return;
        }
        match value {
            Value::Object(map) => {
                if let Some(loader) = map.get("__loader__") {
                    self.node(map, loader);
                }
                for (key, child) in map {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        self.path.push(Seg::Key(key));
                        self.visit(child);
                        self.path.pop();
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        self.path.push(Seg::Index(i));
                        self.visit(child);
                        self.path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn node(&mut self, map: &'w serde_json::Map<String, Value>, loader: &Value) {
        let Some(loader) = loader.as_str() else {
            self.problem(NoteKind::Malformed, format!("__loader__ is {loader}, not a string"), None);
            return;
        };
        self.inv.loaders.count(loader);
        let module = map.get("__module__").and_then(Value::as_str);
        let class = map.get("__class__").and_then(Value::as_str);
        let (Some(module), Some(class)) = (module, class) else {
            self.problem(
                NoteKind::Malformed,
                format!("a {loader} without string __module__ and __class__; skops.io.load fails on it"),
                None,
            );
            return;
        };
        if let Some(file) = map.get("file").and_then(Value::as_str)
            && self.files.len() < MAX_FILES
            && self.files.insert(file.to_string(), ()).is_none()
        {
            self.inv.files.push(file.to_string());
        }
        let content = map.get("content");
        match loader {
            "JsonNode" | "SliceNode" | "CachedNode" => {}
            "FunctionNode" => {
                self.record(module, class, loader);
                // Protocol 0: the function is named in the content.
                let old = content
                    .and_then(|c| Some((c.get("module_path")?.as_str()?, c.get("function")?.as_str()?)));
                if let Some((m, f)) = old {
                    self.record(m, f, loader);
                }
            }
            "OperatorFuncNode" => {
                if module != "operator" {
                    self.problem(
                        NoteKind::Malformed,
                        format!("an OperatorFuncNode from module {module}; skops.io.load refuses anything but operator"),
                        Some(format!("{module}.{class}")),
                    );
                }
                self.record("operator", class, loader);
            }
            "MethodNode" => {
                self.record(module, class, loader);
                if let Some(func) = content.and_then(|c| c.get("func")).and_then(Value::as_str) {
                    self.record(module, &format!("{class}.{func}"), loader);
                }
            }
            "RandomGeneratorNode" => {
                self.record(module, class, loader);
                if let Some(name) = content.and_then(|c| c.get("bit_generator")).and_then(bit_generator_name)
                {
                    self.record("numpy.random", &name, loader);
                }
            }
            known if KNOWN_LOADERS.contains(&known) => self.record(module, class, loader),
            unknown => {
                self.problem(
                    NoteKind::SkopsUnknownLoader,
                    format!(
                        "a node with __loader__ {unknown:?} for {module}.{class}; skops 0.16 has no such loader, so this file was written by a skops modelgate does not know, or was crafted"
                    ),
                    Some(unknown.chars().take(128).collect()),
                );
                self.record(module, class, loader);
            }
        }
    }

    fn record(&mut self, module: &str, name: &str, node: &str) {
        let key = (module.to_string(), name.to_string(), node.to_string());
        if let Some(&i) = self.index.get(&key) {
            self.inv.globals[i].count += 1;
            return;
        }
        if self.inv.globals.len() >= MAX_GLOBALS {
            if !self.globals_full {
                self.globals_full = true;
                self.problem(
                    NoteKind::LimitExceeded,
                    format!("more than {MAX_GLOBALS} distinct imports; the rest were not inspected"),
                    None,
                );
            }
            return;
        }
        self.index.insert(key, self.inv.globals.len());
        let path = self.here();
        self.inv.globals.push(SkopsGlobal {
            module: module.to_string(),
            name: name.to_string(),
            node: node.to_string(),
            path,
            count: 1,
        });
    }
}

/// The bit generator a `RandomGeneratorNode` names: `{"bit_generator": "PCG64", …}` (protocols 0
/// and 1), or a `DictNode` whose `bit_generator` entry is a `JsonNode` holding `"PCG64"`.
fn bit_generator_name(v: &Value) -> Option<String> {
    if let Some(s) = v.get("bit_generator").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    let entry = v.get("content")?.get("bit_generator")?;
    let raw = entry.get("content")?.as_str()?;
    // The name is one JSON string; anything larger is not parsed (it would be built whole).
    match crate::json::from_str(raw, 1).ok()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// skops's archive layout: `skops.io.load` reads the member named exactly `schema.json` at the
/// root of any zip with `json.loads`, whatever else the archive is (src/layout.rs).
pub(crate) struct SkopsLayout;

impl crate::layout::ArchiveLayout for SkopsLayout {
    fn name(&self) -> &'static str {
        "skops"
    }

    fn open(&self, format: Format, names: &[&str]) -> Option<Box<dyn crate::layout::LayoutReader>> {
        Some(Box::new(SkopsReader {
            plain: format == Format::Zip,
            names: names.iter().map(|n| n.to_string()).collect(),
        }))
    }
}

/// [`SkopsLayout`] applied to one zip.
struct SkopsReader {
    /// A zip of no more specific kind (a skops file is recognised by its `schema.json`).
    plain: bool,
    names: Vec<String>,
}

impl crate::layout::LayoutReader for SkopsReader {
    fn role(&self, name: &str) -> Option<Role> {
        // skops.io.load reads `schema.json` by exact name with json.loads, whatever it looks like
        // and whatever else the archive is (a .keras or torch zip with one is also a skops file).
        (name == "schema.json").then_some(Role::SkopsSchema)
    }

    fn claims(&self, role: Option<Role>) -> bool {
        role == Some(Role::SkopsSchema)
    }

    fn scan_member(
        &mut self,
        stream: Stream<'_>,
        ctx: &mut dyn Driver,
        child: Node,
        _role: Option<Role>,
    ) -> Node {
        crate::driver::scan_node_with(stream, ctx, child, |s, ctx| ctx.sniff(s), scan_schema_member)
    }

    fn finish(&mut self, archive: &mut Node, _members: &HashMap<String, u64>) {
        if self.plain {
            skops_layout(archive, &self.names);
        } else {
            skops_polyglot(archive);
        }
    }
}

/// A plain zip whose root `schema.json` turned out to be a skops schema is a skops file; one that
/// carries a skops schema under any other name is a skops file `skops.io.load` cannot read.
fn skops_layout(node: &mut Node, entries: &[String]) {
    fn schema(c: &Node) -> Option<&SkopsInventory> {
        match &c.detail {
            Detail::Skops(s) if c.relation == Some(Relation::Member) => Some(s),
            _ => None,
        }
    }
    let root = node.children.iter().rposition(|c| c.name == "schema.json" && schema(c).is_some());
    let Some(root) = root else {
        if let Some(other) = node.children.iter().find(|c| schema(c).is_some()) {
            node.note(
                Note::new(
                    NoteKind::Malformed,
                    format!(
                        "member {} is a skops schema, but skops.io.load reads only a member named exactly schema.json at the archive root, and this archive has no such schema",
                        other.name
                    ),
                )
                .evidence(other.name.clone()),
            );
        }
        for c in node.children.iter_mut().filter(|c| c.role == Some(Role::SkopsSchema)) {
            c.role = None;
        }
        return;
    };
    node.format = Format::Skops;
    let names: std::collections::HashSet<&str> = entries.iter().map(String::as_str).collect();
    let missing: Vec<String> = schema(&node.children[root])
        .map(|s| s.files.iter().filter(|f| !names.contains(f.as_str())).cloned().collect())
        .unwrap_or_default();
    if let Some(first) = missing.first() {
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!(
                    "schema.json reads {} member{} the archive does not contain (first {first}); skops.io.load fails on it",
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" }
                ),
            )
            .evidence(first.clone()),
        );
    }
}

/// A `.keras`, torch or other specific archive that also holds a root `schema.json` skops schema
/// is two models in one file: `skops.io.load` reads the schema, the other loader the rest.
fn skops_polyglot(node: &mut Node) {
    let polyglot = node.children.iter().any(|c| {
        c.name == "schema.json"
            && c.relation == Some(Relation::Member)
            && matches!(c.detail, Detail::Skops(_))
    });
    if polyglot {
        let format = node.format;
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!(
                    "this {format} archive is also a skops file (a skops schema as its root schema.json): skops.io.load and the {format} loader read different models from it"
                ),
            )
            .evidence("schema.json".to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(json: &str) -> Node {
        let mut node = Node::new("", None);
        assert!(scan_schema(json.as_bytes(), "schema.json", &mut node, true), "not taken as a skops schema");
        node
    }

    fn globals(node: &Node) -> Vec<(String, String)> {
        match &node.detail {
            Detail::Skops(s) => s.globals.iter().map(|g| (g.qualified(), g.node.clone())).collect(),
            _ => panic!("no skops detail"),
        }
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    const LR: &str = r#"{"__class__": "LogisticRegression", "__module__": "sklearn.linear_model._logistic",
        "__loader__": "ObjectNode", "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
        "content": {"C": {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": "1.0", "is_json": true},
          "coef_": {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode", "type": "numpy", "file": "1.npy"}},
        "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": [
          {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}]}},
        "protocol": 2, "_skops_version": "0.16.0"}"#;

    #[test]
    fn a_plain_estimator() {
        let n = scan(LR);
        assert!(n.notes.is_empty(), "{:?}", n.notes);
        assert_eq!(
            globals(&n),
            [
                ("sklearn.linear_model._logistic.LogisticRegression".into(), "ObjectNode".into()),
                ("builtins.dict".into(), "DictNode".into()),
                ("numpy.ndarray".into(), "NdArrayNode".into()),
                ("builtins.list".into(), "ListNode".into()),
                ("builtins.str".into(), "TypeNode".into()),
            ]
        );
        let Detail::Skops(s) = &n.detail else { unreachable!() };
        assert_eq!((s.protocol, s.skops_version.as_deref()), (Some(2), Some("0.16.0")));
        assert_eq!(s.files, ["1.npy"]);
        assert_eq!(s.globals[2].path, "content.content.coef_");
    }

    #[test]
    fn other_json_is_left_alone() {
        let mut node = Node::new("", None);
        assert!(!scan_schema(br#"{"model_type": "bert"}"#, "x", &mut node, false));
        assert!(!scan_schema(b"[1, 2]", "x", &mut node, false));
        assert!(!scan_schema(b"{not json", "x", &mut node, false));
        assert!(node.notes.is_empty());
    }

    #[test]
    fn gadgets_by_every_route() {
        let n = scan(
            r#"{"__loader__": "ObjectNode", "__module__": "m", "__class__": "C", "protocol": 2, "content": [
            {"__loader__": "FunctionNode", "__module__": "builtins", "__class__": "eval"},
            {"__loader__": "FunctionNode", "__module__": "x", "__class__": "y", "content": {"module_path": "os", "function": "system"}},
            {"__loader__": "OperatorFuncNode", "__module__": "operator", "__class__": "attrgetter", "attrs": {}},
            {"__loader__": "MethodNode", "__module__": "m", "__class__": "C", "content": {"func": "__reduce__", "obj": {}}},
            {"__loader__": "RandomGeneratorNode", "__module__": "numpy.random._generator", "__class__": "Generator",
             "content": {"bit_generator": {"__loader__": "DictNode", "__module__": "builtins", "__class__": "dict",
               "content": {"bit_generator": {"__loader__": "JsonNode", "__module__": "builtins", "__class__": "str", "content": "\"PCG64\""}}}}},
            {"__loader__": "ConstructorFromReduceNode", "__module__": "builtins", "__class__": "exec", "content": {}},
            {"__loader__": "JsonNode", "__module__": "os", "__class__": "system", "content": "1"}]}"#,
        );
        let g: Vec<String> = globals(&n).into_iter().map(|(q, _)| q).collect();
        assert_eq!(
            g,
            [
                "m.C",
                "builtins.eval",
                "x.y",
                "os.system",
                "operator.attrgetter",
                "m.C",
                "m.C.__reduce__",
                "numpy.random._generator.Generator",
                "numpy.random.PCG64",
                "builtins.dict",
                "builtins.exec"
            ]
        );
        assert!(n.notes.is_empty(), "{:?}", n.notes);
    }

    #[test]
    fn problems_are_noted() {
        let n = scan(
            r#"{"__loader__": "ReduceNode", "__module__": "evil", "__class__": "Thing", "protocol": 2}"#,
        );
        assert_eq!(kinds(&n), [NoteKind::SkopsUnknownLoader]);
        assert_eq!(globals(&n), [("evil.Thing".into(), "ReduceNode".into())]);
        let n = scan(r#"{"__loader__": "ObjectNode", "__module__": "m", "__class__": "C"}"#);
        assert_eq!(kinds(&n), [NoteKind::Malformed]);
        let n = scan(
            r#"{"__loader__": "OperatorFuncNode", "__module__": "os", "__class__": "system", "protocol": 2}"#,
        );
        assert_eq!(kinds(&n), [NoteKind::Malformed]);
        assert_eq!(globals(&n), [("operator.system".into(), "OperatorFuncNode".into())]);
        let n = scan(
            r#"{"__loader__": "ObjectNode", "__module__": "m", "__class__": "C", "protocol": 2, "content": {"__loader__": 3}}"#,
        );
        assert_eq!(kinds(&n), [NoteKind::Malformed]);
        let mut node = Node::new("", None);
        assert!(scan_schema(
            br#"{"__loader__": "ObjectNode", "__module__": "m", "__class__": "C", "#,
            "s",
            &mut node,
            true
        ));
        assert_eq!(kinds(&node), [NoteKind::Malformed]);
        let deep = format!(
            r#"{{"__loader__": "ObjectNode", "__module__": "m", "__class__": "C", "protocol": 2, "content": {}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut node = Node::new("", None);
        assert!(scan_schema(deep.as_bytes(), "s", &mut node, true));
        assert_eq!(kinds(&node), [NoteKind::LimitExceeded]);
    }

    #[test]
    fn encodings_python_accepts() {
        let utf16: Vec<u8> = LR.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let bom16 = [&b"\xff\xfe"[..], &utf16].concat();
        let bom8 = [&b"\xef\xbb\xbf"[..], LR.as_bytes()].concat();
        let utf32be: Vec<u8> = LR.chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
        for data in [utf16, bom16, bom8, utf32be] {
            let mut node = Node::new("", None);
            assert!(scan_schema(&data, "s", &mut node, false));
            assert_eq!(globals(&node).len(), 5);
        }
    }

    #[test]
    fn escaped_keys_need_the_full_parse() {
        let escaped = LR
            .replace("\"__loader__\"", "\"\\u005f_loader__\"")
            .replace("\"_skops_version\"", "\"\\u005fskops_version\"");
        let mut node = Node::new("", None);
        assert!(!scan_schema(escaped.as_bytes(), "s", &mut node, true));
        assert!(scan_schema(escaped.as_bytes(), "s", &mut node, false));
        assert_eq!(globals(&node).len(), 5);
    }

    #[test]
    fn a_loose_schema_json_is_walked_too() {
        // An unpacked skops archive: the schema is a JSON file of its own.
        let n =
            crate::scan_bytes(LR.replace("TypeNode", "FunctionNode").as_bytes(), crate::Options::default());
        assert_eq!(n.format, Format::Json);
        assert!(globals(&n).contains(&("builtins.str".into(), "FunctionNode".into())), "{:?}", globals(&n));
        let n = crate::scan_bytes(br#"{"architectures": ["BertModel"]}"#, crate::Options::default());
        assert!(!matches!(n.detail, Detail::Skops(_)));
    }

    #[test]
    fn distinct_globals_are_bounded() {
        let items: Vec<String> = (0..MAX_GLOBALS + 10)
            .map(|i| format!(r#"{{"__loader__": "TypeNode", "__module__": "m{i}", "__class__": "C"}}"#))
            .collect();
        let json = format!(
            r#"{{"__loader__": "ListNode", "__module__": "builtins", "__class__": "list", "protocol": 2, "content": [{}]}}"#,
            items.join(",")
        );
        let n = scan(&json);
        assert_eq!(kinds(&n), [NoteKind::LimitExceeded]);
        assert_eq!(globals(&n).len(), MAX_GLOBALS);
    }
}
