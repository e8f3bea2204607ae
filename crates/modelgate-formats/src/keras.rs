//! Keras model configurations: the JSON that `load_model` turns back into layers.
//!
//! The same walker reads the root `model_config` and `training_config` attributes of a Keras 2
//! HDF5 file, `config.json` of a Keras 3 `.keras` archive and the per-object metadata JSON of a
//! SavedModel's `keras_metadata.pb`. It visits every value of the document, so nested models,
//! wrappers (`TimeDistributed`, `Bidirectional`), shared layers and a Lambda's `arguments` are all
//! covered, and notes what deserialization would do beyond building layers:
//!
//! * Lambda layers (marshalled bytecode, decoded by [`crate::marshal`]; a function string in any
//!   other form is reported undecoded);
//! * config objects whose `module` lies outside the Keras namespaces;
//! * references to Keras functions that load, fetch or unlock things;
//! * `TFSMLayer` (loads another SavedModel), `TorchModuleWrapper` (a `torch.save` pickle, which is
//!   decoded and scanned as a file of its own), lookup vocabularies read from a path or URL.
//!
//! The document is parsed with `serde_json`, whose nesting limit (128) bounds the recursion.

use crate::driver::Driver;
use crate::inventory::{GraphInventory, Node, Note, NoteKind, Role};
use crate::marshal;
use serde_json::Value;

/// Module prefixes Keras itself (and its official model libraries) serialize.
const KERAS_NAMESPACES: &[&str] = &[
    "keras",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    "keras_hub",
    "keras_cv",
    "keras_nlp",
];

/// Keras functions that load or fetch files, or switch safe mode off (Keras' `LOADING_APIS` and
/// non-modelling APIs).
const UNSAFE_FUNCTIONS: &[&str] = &[
    "get_file",
    "load_model",
    "load_weights",
    "load_img",
    "save_img",
    "save_model",
    "save_weights",
    "plot_model",
    "model_from_json",
    "model_from_yaml",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "enable_unsafe_deserialization",
];

/// Lookup layers whose `vocabulary` may name a file.
const LOOKUP_LAYERS: &[&str] = &["StringLookup", "IndexLookup", "IntegerLookup", "TextVectorization"];

const MAX_DEPTH: usize = crate::limits::Limits::KERAS_DEPTH;

fn in_keras_namespace(module: &str) -> bool {
    KERAS_NAMESPACES
        .iter()
        .any(|ns| module == *ns || module.strip_prefix(ns).is_some_and(|rest| rest.starts_with('.')))
}

/// A list, or a tuple as tf_keras writes it in SavedModel metadata
/// (`{"class_name": "__tuple__", "items": […]}`).
fn tuple_items(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::Array(items) => Some(items),
        Value::Object(o) if o.get("class_name").and_then(Value::as_str) == Some("__tuple__") => {
            o.get("items").and_then(Value::as_array)
        }
        _ => None,
    }
}

/// The last component of a dotted (or `>`/`:`-separated) name.
fn last_component(name: &str) -> &str {
    name.rsplit(['.', '>', ':']).next().unwrap_or(name)
}

/// Parses `json` (what `source` names, e.g. "the model_config attribute"; `offset`: where the
/// document starts in the node's bytes, when known) and walks it.
pub(crate) fn scan_config(
    json: &[u8],
    source: &str,
    offset: Option<u64>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    inv: &mut GraphInventory,
) {
    let value: Value = match crate::json::from_slice(json, crate::json::MAX_VALUES) {
        Ok(v) => v,
        Err(e) if crate::json::is_too_many(&e) => {
            let mut note = Note::new(
                NoteKind::LimitExceeded,
                format!(
                    "{source} holds more than {} JSON values; it was not inspected",
                    crate::json::MAX_VALUES
                ),
            );
            note.offset = offset;
            node.note(note);
            return;
        }
        Err(e) => {
            let mut note = Note::new(
                NoteKind::Malformed,
                format!("{source} is not valid JSON, so Keras cannot load it: {e}"),
            );
            note.offset = offset;
            node.note(note);
            return;
        }
    };
    let mut walker = Walker { source, offset, ctx, node, inv, path: Vec::new() };
    walker.visit(&value);
}

/// Reads a whole config document from a stream (a `.keras` archive's `config.json`), up to the
/// in-memory limit, and walks it.
pub(crate) fn scan_config_stream(
    s: &mut crate::stream::Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
) -> crate::driver::Rest {
    if let Some(data) = crate::driver::read_whole(s, ctx, node, "the Keras config") {
        let mut inv = GraphInventory::default();
        scan_config(&data, "config.json", None, ctx, node, &mut inv);
        node.detail = crate::inventory::Detail::Graph(Box::new(inv));
    }
    crate::driver::Rest::Drain
}

struct Walker<'w, 'c> {
    source: &'w str,
    offset: Option<u64>,
    ctx: &'w mut dyn Driver,
    node: &'w mut Node,
    inv: &'w mut GraphInventory,
    path: Vec<Seg<'c>>,
}

/// One step of the path to a value, for messages (`config.layers[1].config.function`).
pub(crate) enum Seg<'c> {
    Key(&'c str),
    Index(usize),
}

/// A path of [`Seg`]s as `a.b[2].c` (empty for the document itself).
pub(crate) fn path_string(path: &[Seg<'_>]) -> String {
    let mut at = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if at.is_empty() => at.push_str(k),
            Seg::Key(k) => {
                at.push('.');
                at.push_str(k);
            }
            Seg::Index(i) => at.push_str(&format!("[{i}]")),
        }
    }
    at
}

impl<'c> Walker<'_, 'c> {
    fn note(&mut self, mut note: Note) {
        note.offset = self.offset;
        self.node.note(note);
    }

    fn here(&self) -> String {
        let at = path_string(&self.path);
        if at.is_empty() { self.source.to_string() } else { format!("{} at {at}", self.source) }
    }

    fn visit(&mut self, value: &'c Value) {
        if self.path.len() >= MAX_DEPTH {
            self.note(Note::new(
                NoteKind::LimitExceeded,
                format!(
                    "{}: nested more than {MAX_DEPTH} levels; deeper values were not inspected",
                    self.here()
                ),
            ));
            return;
        }
        match value {
            Value::Object(map) => {
                if map.contains_key("class_name") {
                    self.config_object(map);
                }
                for (key, child) in map {
                    self.path.push(Seg::Key(key));
                    self.visit(child);
                    self.path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.visit(child);
                    self.path.pop();
                }
            }
            Value::String(s) => self.dotted_reference(s),
            _ => {}
        }
    }

    /// A serialized object: `{"class_name": …, "config": …, "module": …, "registered_name": …}`.
    fn config_object(&mut self, map: &'c serde_json::Map<String, Value>) {
        let class = map.get("class_name").and_then(Value::as_str).unwrap_or("");
        let config = map.get("config");
        if config.is_some() {
            self.inv.count(class);
        }
        let name = config.and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
        let module = map.get("module").and_then(Value::as_str);
        if let Some(module) = module.filter(|m| !in_keras_namespace(m)) {
            let what = config.and_then(Value::as_str).map(|c| format!("{module}.{c}"));
            self.note(
                Note::new(
                    NoteKind::KerasForeignModule,
                    format!(
                        "{}: a {class} object from module {module}{}, outside the Keras namespaces; deserializing it imports that module and may call into it (CVE-2025-1550)",
                        self.here(),
                        what.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                )
                .evidence(what.unwrap_or_else(|| format!("{module}.{class}"))),
            );
        }
        // A function (or any object) naming a Keras loading or unlocking API.
        let names =
            [config.and_then(Value::as_str), map.get("registered_name").and_then(Value::as_str), Some(class)];
        if let Some(hit) = names.into_iter().flatten().find(|n| UNSAFE_FUNCTIONS.contains(&last_component(n)))
        {
            let full = match module {
                Some(m) if !hit.contains('.') => format!("{m}.{hit}"),
                _ => hit.to_string(),
            };
            self.unsafe_function(&full);
        }
        match class {
            "Lambda" => self.lambda(config, name),
            "TFSMLayer" => {
                let path = config.and_then(|c| c.get("filepath")).and_then(Value::as_str).unwrap_or("?");
                self.note(
                    Note::new(
                        NoteKind::KerasExternalModel,
                        format!("{}: TFSMLayer {name} loads the SavedModel at {path:?} when the model is rebuilt (refused in safe mode only since Keras 3.14)", self.here()),
                    )
                    .evidence(path.to_string()),
                );
            }
            "TorchModuleWrapper" => self.torch_module(config, name),
            c if LOOKUP_LAYERS.contains(&c) => {
                if let Some(vocab) =
                    config.and_then(|c| c.get("vocabulary")).and_then(Value::as_str).filter(|v| !v.is_empty())
                {
                    self.note(
                        Note::new(
                            NoteKind::KerasVocabularyPath,
                            format!("{}: {c} layer {name} reads its vocabulary from {vocab:?} when loaded (arbitrary file read or request, CVE-2025-12058)", self.here()),
                        )
                        .evidence(vocab.to_string()),
                    );
                }
            }
            _ => {}
        }
    }

    /// A string anywhere that spells a Keras loading API in full (`keras.utils.get_file`).
    fn dotted_reference(&mut self, s: &str) {
        if s.len() < 200
            && s.contains('.')
            && UNSAFE_FUNCTIONS.contains(&last_component(s))
            && KERAS_NAMESPACES.iter().any(|ns| s.starts_with(ns))
        {
            self.unsafe_function(s);
        }
    }

    fn unsafe_function(&mut self, full: &str) {
        let what = if last_component(full) == "enable_unsafe_deserialization" {
            "switches Keras safe mode off for the rest of the load (CVE-2025-9906)"
        } else {
            "loads or fetches files when called during deserialization (CVE-2025-8747, CVE-2025-12060)"
        };
        self.note(
            Note::new(
                NoteKind::KerasUnsafeFunction,
                format!("{}: references {full}, which {what}", self.here()),
            )
            .evidence(full.to_string()),
        );
    }

    /// Keras 2: `"function": ["<base64 marshal>", defaults, closure]`, `"function_type":
    /// "lambda"` (or a function named by `"function_type": "function"` and `"module"`).
    /// Keras 3: `"function": {"class_name": "__lambda__", "config": {"code": "<base64>"}}`.
    fn lambda(&mut self, config: Option<&Value>, name: &str) {
        let Some(config) = config else {
            return;
        };
        for (key, kind_key, module_key) in [
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
        ] {
            let Some(f) = config.get(key) else {
                continue;
            };
            let kind = config.get(kind_key).and_then(Value::as_str);
            let code = match f {
                _ if tuple_items(f).is_some() && (kind == Some("lambda") || key == "function") => {
                    tuple_items(f).and_then(|items| items.first()).and_then(Value::as_str)
                }
                Value::Object(obj) if obj.get("class_name").and_then(Value::as_str) == Some("__lambda__") => {
                    let inner = obj.get("config");
                    inner.and_then(|c| c.get("code")).and_then(Value::as_str).or_else(|| {
                        inner.and_then(|c| c.get("value")).and_then(|v| v.get(0)).and_then(Value::as_str)
                    })
                }
                Value::String(s) if kind == Some("lambda") => Some(s.as_str()),
                Value::String(s) if kind == Some("function") => {
                    let module = config.get(module_key).and_then(Value::as_str).unwrap_or("");
                    if !in_keras_namespace(module) {
                        self.note(
                            Note::new(
                                NoteKind::KerasForeignModule,
                                format!("{}: Lambda layer {name} calls {module}.{s}, a function outside the Keras namespaces that the loader looks up by name (CVE-2025-1550 family)", self.here()),
                            )
                            .evidence(format!("{module}.{s}")),
                        );
                    }
                    continue;
                }
                // Any other string (source text, no or an unknown `function_type`): still a
                // Lambda, so still code; reported rather than trusted (modelscan flags every
                // Lambda by class name).
                Value::String(s) if key == "function" => {
                    self.lambda_undecoded(name, key, kind, s);
                    continue;
                }
                _ => continue,
            };
            let Some(code) = code else {
                continue;
            };
            self.lambda_note(name, key, code);
        }
    }

    /// A Lambda whose function is a string in no form modelgate decodes.
    fn lambda_undecoded(&mut self, name: &str, key: &str, kind: Option<&str>, text: &str) {
        let form = match kind {
            Some(k) => format!("function_type {k:?}"),
            None => "no function_type".to_string(),
        };
        self.note(
            Note::new(
                NoteKind::KerasLambda,
                format!(
                    "{}: Lambda layer {name} carries a {key} string with {form}, in no form modelgate decodes; a Lambda layer is Python code, and a loader that accepts this form runs it",
                    self.here()
                ),
            )
            .evidence(text.chars().take(80).collect::<String>()),
        );
    }

    fn lambda_note(&mut self, name: &str, key: &str, code: &str) {
        let decoded = marshal::base64_decode(code)
            .ok_or_else(|| "it is not valid base64".to_string())
            .and_then(|raw| marshal::decode_code(&raw));
        let (detail, evidence) = match decoded {
            Ok(s) => {
                let notable = s.notable();
                let refs = if notable.is_empty() && s.names.is_empty() {
                    "no global names".to_string()
                } else if notable.is_empty() {
                    format!("names {}", s.names.join(", "))
                } else {
                    format!("notably {}", notable.join(", "))
                };
                (
                    format!(
                        "Python {} bytecode ({} from {}, {} code object{}) that references {refs}",
                        s.python,
                        s.name,
                        s.filename,
                        s.code_objects,
                        if s.code_objects == 1 { "" } else { "s" }
                    ),
                    s.evidence(),
                )
            }
            Err(e) => (
                format!("marshalled bytecode that could not be decoded ({e})"),
                code.chars().take(80).collect(),
            ),
        };
        self.note(
            Note::new(
                NoteKind::KerasLambda,
                format!(
                    "{}: Lambda layer {name} carries {detail} in its {key}; loading the model runs it (CVE-2024-3660; legacy .h5 in Keras 3 before 3.12 ignores safe_mode, CVE-2025-9905)",
                    self.here()
                ),
            )
            .evidence(evidence),
        );
    }

    /// `TorchModuleWrapper`: `config.module` holds `torch.save(module)`, base64 (or as a Keras
    /// `__bytes__` object). The bytes are scanned as an embedded file.
    fn torch_module(&mut self, config: Option<&Value>, name: &str) {
        let blob = config.and_then(|c| c.get("module"));
        let bytes = match blob {
            Some(Value::String(s)) => marshal::base64_decode(s),
            Some(Value::Object(o)) => o
                .get("config")
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
                .and_then(|v| v.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()),
            _ => None,
        };
        let scanned = match &bytes {
            Some(b) => format!("the {} embedded bytes are scanned below", b.len()),
            None => "the embedded module could not be decoded".to_string(),
        };
        self.note(
            Note::new(
                NoteKind::KerasTorchModule,
                format!("{}: TorchModuleWrapper layer {name} embeds a torch.save pickle that Keras passes to torch.load when the layer is rebuilt (CVE-2025-49655); {scanned}", self.here()),
            )
            .evidence(name.to_string()),
        );
        if let Some(bytes) = bytes
            && let Some(child) = crate::driver::scan_embedded(
                &bytes[..],
                self.ctx,
                format!("TorchModuleWrapper {name} module"),
                0,
            )
        {
            self.node.children.push(child);
        }
    }
}

/// Keras 3's archive layout: a `.keras` zip is `config.json` next to `metadata.json` or
/// `model.weights.h5`, and `saving_lib` deserializes `config.json` from the archive root,
/// exactly as named (src/layout.rs).
pub(crate) struct KerasLayout;

impl crate::layout::ArchiveLayout for KerasLayout {
    fn name(&self) -> &'static str {
        "keras"
    }

    fn classify(&self, names: &[&str]) -> Option<crate::inventory::Format> {
        let has = |name: &str| names.contains(&name);
        (has("config.json") && (has("metadata.json") || has("model.weights.h5")))
            .then_some(crate::inventory::Format::Keras)
    }

    fn open(
        &self,
        format: crate::inventory::Format,
        _names: &[&str],
    ) -> Option<Box<dyn crate::layout::LayoutReader>> {
        (format == crate::inventory::Format::Keras)
            .then(|| Box::new(KerasReader) as Box<dyn crate::layout::LayoutReader>)
    }
}

/// [`KerasLayout`] applied to one archive.
struct KerasReader;

impl crate::layout::LayoutReader for KerasReader {
    fn role(&self, name: &str) -> Option<Role> {
        (name == "config.json").then_some(Role::KerasConfig)
    }

    fn claims(&self, role: Option<Role>) -> bool {
        role == Some(Role::KerasConfig)
    }

    fn scan_member(
        &mut self,
        stream: crate::stream::Stream<'_>,
        ctx: &mut dyn Driver,
        child: Node,
        _role: Option<Role>,
    ) -> Node {
        crate::driver::scan_node_with(
            stream,
            ctx,
            child,
            |_, _| crate::inventory::Format::Json,
            |_, s, ctx, node| scan_config_stream(s, ctx, node),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn notes(json: &str) -> Vec<Note> {
        let mut node = Node::new("", None);
        let mut inv = GraphInventory::default();
        crate::scan::with_driver(Limits::default(), |ctx| {
            scan_config(json.as_bytes(), "config.json", None, ctx, &mut node, &mut inv)
        });
        node.notes
    }

    fn kinds(json: &str) -> Vec<NoteKind> {
        notes(json).into_iter().map(|n| n.kind).collect()
    }

    #[test]
    fn plain_keras_objects_are_quiet() {
        let cfg = r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [
            {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2,
             "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {}}}}]}}"#;
        assert!(kinds(cfg).is_empty());
    }

    #[test]
    fn foreign_modules_anywhere_are_found() {
        let jfrog = r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda",
            "config": {"name": "l", "arguments": {"x": {"class_name": "function", "module": "os", "config": "system"}}}}]}}"#;
        let n = notes(jfrog);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, NoteKind::KerasForeignModule);
        assert_eq!(n[0].evidence.as_deref(), Some("os.system"));
        assert!(n[0].detail.contains("layers[0].config.arguments.x"), "{}", n[0].detail);
    }

    #[test]
    fn loading_apis_and_unsafe_switches() {
        let k03 = r#"{"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "get_file"}"#;
        assert_eq!(kinds(k03), [NoteKind::KerasUnsafeFunction]);
        let k04 = r#"{"layers": [{"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization"}]}"#;
        assert_eq!(kinds(k04), [NoteKind::KerasUnsafeFunction]);
        assert_eq!(kinds(r#"{"a": "keras.models.load_model"}"#), [NoteKind::KerasUnsafeFunction]);
    }

    #[test]
    fn lambdas_are_decoded() {
        let code = crate::marshal::tests::PY311;
        let k2 = format!(
            r#"{{"class_name": "Lambda", "config": {{"name": "l", "function": ["{code}", null, null], "function_type": "lambda"}}}}"#
        );
        let n = notes(&k2);
        assert_eq!(n[0].kind, NoteKind::KerasLambda);
        assert!(n[0].detail.contains("system"), "{}", n[0].detail);
        let k3 = format!(
            r#"{{"class_name": "Lambda", "config": {{"name": "l", "function": {{"class_name": "__lambda__", "config": {{"code": "{code}"}}}}}}}}"#
        );
        assert_eq!(kinds(&k3), [NoteKind::KerasLambda]);
        let bad = r#"{"class_name": "Lambda", "config": {"name": "l", "function": ["!!", null, null], "function_type": "lambda"}}"#;
        assert_eq!(kinds(bad), [NoteKind::KerasLambda]);
        // Source text with no function_type (modelaudit's malicious_lambda.h5 shape): still a Lambda.
        let source = r#"{"class_name": "Lambda", "config": {"function": "lambda x: eval('1')"}}"#;
        let n = notes(source);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].kind, NoteKind::KerasLambda);
        assert_eq!(n[0].evidence.as_deref(), Some("lambda x: eval('1')"));
        assert!(n[0].detail.contains("no function_type"), "{}", n[0].detail);
        let raw = r#"{"class_name": "Lambda", "config": {"function": "x", "function_type": "raw"}}"#;
        assert_eq!(kinds(raw), [NoteKind::KerasLambda]);
        // A named Keras function (Keras 2 `function_type: "function"`) is not a Lambda body.
        let named = r#"{"class_name": "Lambda", "config": {"function": "relu", "function_type": "function", "module": "keras.activations"}}"#;
        assert!(kinds(named).is_empty());
    }

    #[test]
    fn other_layers() {
        assert_eq!(
            kinds(r#"{"class_name": "TFSMLayer", "config": {"filepath": "/srv/other"}}"#),
            [NoteKind::KerasExternalModel]
        );
        assert_eq!(
            kinds(r#"{"class_name": "StringLookup", "config": {"vocabulary": "/etc/passwd"}}"#),
            [NoteKind::KerasVocabularyPath]
        );
        assert!(kinds(r#"{"class_name": "StringLookup", "config": {"vocabulary": ["a"]}}"#).is_empty());
        assert_eq!(kinds("{not json"), [NoteKind::Malformed]);
    }
}
