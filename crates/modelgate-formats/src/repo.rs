//! Model repositories: the text and JSON files that travel with weights and make loaders run code.
//!
//! * Hugging Face `config.json` / `tokenizer_config.json` (any JSON object, recognised by
//!   content): `auto_map` names Python modules that `trust_remote_code=True` imports; a
//!   `chat_template` is a Jinja program (`crate::jinja`).
//! * TorchServe `MAR-INF/MANIFEST.json` (a JSON object with `model.handler` and the archiver's
//!   `runtime`/`archiverVersion`/`createdOn`): a handler other than TorchServe's built-in ones
//!   is Python that the server imports.
//! * Text with Jinja delimiters (`chat_template.jinja`, or any text): sandbox-escape patterns
//!   always; validity when it reads like a chat template (it mentions `messages`,
//!   `add_generation_prompt`, `bos_token` or `eos_token`).
//! * Hydra configs (NeMo's `model_config.yaml`, or any text with a `_target_` key): a restricted
//!   scan of `_target_:` keys, block or flow style, instead of a YAML parser (see
//!   `hydra_targets`). Every target is reported; the policy's `hydra-targets.toml` judges it.
//! * Python by name: a member or file named `*.py`, `*.pyc`… (`check_name`). Telling Python
//!   source from other text by content is unreliable; a name is what transformers' remote code,
//!   TorchServe handlers and NeMo's artefacts are found by, so a name is the evidence used.

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Format, Node, Note, NoteKind, Relation, Role};
use crate::stream::Stream;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Python file extensions.
const PYTHON_EXTENSIONS: &[&str] = &["py", "pyw", "pyc", "pyo", "pyz"];

/// TorchServe's built-in handlers (`ts/torch_handler/*`), named without a module path.
const TORCHSERVE_BUILTIN_HANDLERS: &[&str] =
    &["image_classifier", "image_segmenter", "object_detector", "text_classifier"];

/// Scans a text or JSON stream (bounded: larger ones are a limit note).
pub(crate) fn scan_text(format: Format, s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let cap = usize::try_from(ctx.limits().max_in_memory).unwrap_or(usize::MAX);
    let data = match s.read_vec(cap.saturating_add(1)) {
        Ok(d) => d,
        Err(_) => return Rest::Drain,
    };
    if data.len() > cap {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "{format} file larger than {cap} bytes: not inspected for chat templates, remote code or Hydra targets"
            ),
        ));
        return Rest::Drain;
    }
    if format == Format::Json && crate::skops::scan_schema(&data, "the document", node, true) {
        return Rest::Drain;
    }
    if format == Format::Json {
        match serde_json::from_slice::<Interesting>(&data) {
            Ok(Interesting(object)) => {
                if let Some(map) = object {
                    // Only the scanned file itself sits in a directory whose links can be checked.
                    let base_dir = if ctx.depth() == 1 { ctx.base_dir() } else { None };
                    check_json(&map, &data, node, base_dir);
                }
                return Rest::Drain;
            }
            Err(e) if crate::json::is_too_many(&e) => {
                node.note(Note::new(
                    NoteKind::LimitExceeded,
                    format!(
                        "a configuration key holds more than {} JSON values; the document was not inspected",
                        crate::json::MAX_VALUES
                    ),
                ));
                return Rest::Drain;
            }
            Err(_) => {}
        }
    }
    if format == Format::Json {
        // Starts like JSON but is not (a `{% … %}` template, or a cut document).
        node.format = Format::Text;
    }
    let text = String::from_utf8_lossy(&data);
    if let Some(card) = crate::card::front_matter(&text) {
        node.detail = Detail::ModelCard(Box::new(card));
    }
    if crate::jinja::has_jinja(&text) {
        let strict = crate::jinja::looks_like_chat_template(&text);
        crate::jinja::note_template(node, &text, "Jinja template", &|o| Some(o as u64), strict);
    }
    if let Some(at) = key_end(&data, "auto_map") {
        node.note(
            Note::new(
                NoteKind::RemoteCode,
                "an `auto_map` key in a document that is not valid JSON (cut or broken): a config that makes transformers import Python code",
            )
            .at(at)
            .evidence("auto_map"),
        );
    }
    if let Some(at) = key_end(&data, "weight_map") {
        node.note(
            Note::new(
                NoteKind::Malformed,
                "a sharded checkpoint index (`weight_map`) that is not valid JSON (cut or broken): transformers cannot tell which shard files it loads",
            )
            .at(at)
            .evidence("weight_map"),
        );
    }
    if text.contains("_target_") {
        // Every target is reported; the policy (`hydra-targets.toml`) decides which are allowed.
        for (target, at) in hydra_targets(&text) {
            node.note(
                Note::new(
                    NoteKind::HydraTarget,
                    format!(
                        "Hydra `_target_: {target}` (instantiating the config, as NeMo's restore_from does, imports and calls it)"
                    ),
                )
                .at(at as u64)
                .evidence(target),
            );
        }
    }
    Rest::Drain
}

/// Top-level keys whose values are kept; everything else in a JSON document is parsed and
/// dropped, so a 30 MB `tokenizer.json` costs no more memory than its text.
const KEPT_KEYS: &[&str] = &[
    "auto_map",
    "weight_map",
    "chat_template",
    "model",
    "runtime",
    "archiverVersion",
    "createdOn",
    "model_type",
    "architectures",
    "tokenizer_class",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "vocab_size",
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "model_max_length",
];

/// A JSON document reduced to the top-level keys in [`KEPT_KEYS`]; `None` when it is not an
/// object. Later duplicates win, as in Python's `json`.
struct Interesting(Option<serde_json::Map<String, Value>>);

impl<'de> serde::Deserialize<'de> for Interesting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Interesting, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V(std::cell::Cell<usize>);
        impl<'de> Visitor<'de> for V {
            type Value = Interesting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Interesting, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some(key) = a.next_key::<String>()? {
                    if key == "model" {
                        // TorchServe's manifest names its handler here; in a tokenizer.json this
                        // is the whole vocabulary, of which nothing is needed.
                        let handler = a.next_value::<Handler>()?.0;
                        let mut model = serde_json::Map::new();
                        if let Some(h) = handler {
                            model.insert("handler".to_string(), Value::String(h));
                        }
                        map.insert(key, Value::Object(model));
                    } else if KEPT_KEYS.contains(&key.as_str()) {
                        // Kept values are bounded like every JSON document parsed whole.
                        map.insert(key, a.next_value_seed(crate::json::Seed { left: &self.0 })?);
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Interesting(Some(map)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Interesting, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Interesting(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
            fn visit_unit<E>(self) -> Result<Interesting, E> {
                Ok(Interesting(None))
            }
        }
        d.deserialize_any(V(std::cell::Cell::new(crate::json::MAX_VALUES)))
    }
}

/// The `handler` string of an object, everything else skipped unparsed.
struct Handler(Option<String>);

/// A JSON string, or `None` for any other value (skipped unparsed).
struct Text(Option<String>);

/// One visitor for both: an object yields its `handler` text, a string itself, anything else
/// nothing; containers are walked with `IgnoredAny`, which builds nothing.
struct Pick {
    in_object: bool,
}

impl<'de> serde::de::Visitor<'de> for Pick {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Option<String>, A::Error> {
        let mut handler = None;
        while let Some(key) = a.next_key::<String>()? {
            if self.in_object && key == "handler" {
                handler = a.next_value::<Text>()?.0;
            } else {
                a.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(handler)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Option<String>, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<String>, E> {
        Ok((!self.in_object).then(|| v.to_string()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
}

impl<'de> serde::Deserialize<'de> for Handler {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Handler, D::Error> {
        d.deserialize_any(Pick { in_object: true }).map(Handler)
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(Pick { in_object: false }).map(Text)
    }
}

/// What the inventory (and the BOM) records about a Hugging Face style config
/// (`config.json`, `tokenizer_config.json`, `generation_config.json`…).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HfConfigInfo {
    /// `model_type`.
    pub model_type: Option<String>,
    /// `architectures`.
    pub architectures: Vec<String>,
    /// `tokenizer_class`.
    pub tokenizer_class: Option<String>,
    /// `transformers_version`.
    pub transformers_version: Option<String>,
    /// `torch_dtype` (or `dtype`).
    pub dtype: Option<String>,
    /// `vocab_size`.
    pub vocab_size: Option<u64>,
    /// `max_position_embeddings` (or `n_positions`, `max_seq_len`, `model_max_length`).
    pub context_length: Option<u64>,
    /// Python modules named by `auto_map`.
    pub remote_code: Vec<String>,
    /// Chat templates present.
    pub chat_templates: u64,
}

const HF_KEYS: &[&str] =
    &["model_type", "architectures", "tokenizer_class", "transformers_version", "auto_map", "chat_template"];

fn hf_config(map: &serde_json::Map<String, Value>) -> Option<HfConfigInfo> {
    if !HF_KEYS.iter().any(|k| map.contains_key(*k)) {
        return None;
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(|s| s.chars().take(256).collect());
    let number = |keys: &[&str]| keys.iter().find_map(|k| map.get(*k).and_then(Value::as_u64));
    Some(HfConfigInfo {
        model_type: text("model_type"),
        architectures: map
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter().filter_map(Value::as_str).take(16).map(|s| s.chars().take(256).collect()).collect()
            })
            .unwrap_or_default(),
        tokenizer_class: text("tokenizer_class"),
        transformers_version: text("transformers_version"),
        dtype: text("torch_dtype").or_else(|| text("dtype")),
        vocab_size: number(&["vocab_size"]),
        context_length: number(&[
            "max_position_embeddings",
            "n_positions",
            "max_seq_len",
            "model_max_length",
        ])
        // tokenizers use 1e30 for "no limit".
        .filter(|&n| n < 1 << 40),
        remote_code: Vec::new(),
        chat_templates: match map.get("chat_template") {
            Some(Value::String(_)) => 1,
            Some(Value::Array(a)) => a.len() as u64,
            _ => 0,
        },
    })
}

/// A sharded checkpoint index (`model.safetensors.index.json`, `pytorch_model.bin.index.json`):
/// transformers joins every `weight_map` value to the model directory and loads that file (a
/// `.bin` shard with `torch.load`), so a value that leaves the directory, on its face or through
/// a symbolic link, loads a file the repository does not contain.
fn shard_paths(
    weight_map: &serde_json::Map<String, Value>,
    raw: &[u8],
    node: &mut Node,
    base_dir: Option<&Path>,
) {
    // Tensors per shard, counted in one pass (a map can name a million tensors).
    let mut shards: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for shard in weight_map.values().filter_map(Value::as_str) {
        *shards.entry(shard).or_default() += 1;
    }
    let at = key_end(raw, "weight_map");
    for (shard, tensors) in shards.into_iter().take(1024) {
        let why = crate::onnx::lexical_escape(shard)
            .or_else(|| base_dir.and_then(|dir| crate::onnx::symlink_escape(dir, Path::new(shard))));
        let Some(why) = why else { continue };
        let mut note = Note::new(
            NoteKind::ShardPathEscape,
            format!(
                "the sharded checkpoint index maps {tensors} tensor(s) to the shard {shard:?}, which {why}; transformers loads that file as part of the model"
            ),
        )
        .evidence(shard.to_string());
        if let Some(at) = at {
            note = note.at(at);
        }
        node.note(note);
    }
}

fn check_json(map: &serde_json::Map<String, Value>, raw: &[u8], node: &mut Node, base_dir: Option<&Path>) {
    let mut info = hf_config(map);
    if let Some(Value::Object(weight_map)) = map.get("weight_map") {
        shard_paths(weight_map, raw, node, base_dir);
    }
    if let Some(auto_map) = map.get("auto_map") {
        let at = key_end(raw, "auto_map");
        let mut refs = Vec::new();
        collect_strings(auto_map, &mut refs, 0);
        let mut modules: Vec<String> = refs.iter().filter_map(|r| module_file(r)).collect();
        modules.sort();
        modules.dedup();
        if let Some(info) = info.as_mut() {
            info.remote_code = modules.iter().take(64).cloned().collect();
        }
        let listed = if modules.is_empty() { "no module names".to_string() } else { modules.join(", ") };
        let mut note = Note::new(
            NoteKind::RemoteCode,
            format!(
                "auto_map names Python code that transformers imports and runs when the model is loaded with trust_remote_code=True: {listed}"
            ),
        )
        .evidence(listed);
        if let Some(at) = at {
            note = note.at(at);
        }
        node.note(note);
    }
    match map.get("chat_template") {
        Some(Value::String(t)) => json_template(node, raw, t, "chat_template"),
        Some(Value::Array(list)) => {
            for item in list.iter().take(64) {
                if let Some(t) = item.get("template").and_then(Value::as_str) {
                    let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                    json_template(node, raw, t, &format!("chat_template {name:?}"));
                }
            }
        }
        _ => {}
    }
    let handler = map.get("model").and_then(|m| m.get("handler")).and_then(Value::as_str);
    let is_manifest = ["runtime", "archiverVersion", "createdOn"].iter().any(|k| map.contains_key(*k));
    if let (Some(handler), true) = (handler, is_manifest)
        && !TORCHSERVE_BUILTIN_HANDLERS.contains(&handler)
    {
        node.note(
            Note::new(
                NoteKind::TorchServeHandler,
                format!(
                    "TorchServe model archive manifest names the custom handler {handler:?}: the server imports and runs that Python code for every request"
                ),
            )
            .evidence(handler),
        );
    }
    if let Some(info) = info {
        node.detail = Detail::HfConfig(Box::new(info));
    }
}

/// Offset of the closing quote of the first `"key"` in `raw` (where the key is complete).
fn key_end(raw: &[u8], key: &str) -> Option<u64> {
    let quoted = format!("\"{key}\"");
    raw.windows(quoted.len()).position(|w| w == quoted.as_bytes()).map(|p| (p + quoted.len() - 1) as u64)
}

/// Analyses a template taken from a JSON document, locating its findings in the raw bytes.
fn json_template(node: &mut Node, raw: &[u8], template: &str, what: &str) {
    let map = locate_json_string(raw, template);
    let locate = |o: usize| map.as_ref().and_then(|m| m.get(o).map(|&r| r as u64));
    crate::jinja::note_template(node, template, what, &locate, true);
}

/// Finds the JSON string literal in `raw` whose value is `value`, and maps each byte of the
/// value to the offset of the raw bytes (or escape) it was decoded from.
fn locate_json_string(raw: &[u8], value: &str) -> Option<Vec<usize>> {
    let want = value.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'"' {
            i += 1;
            continue;
        }
        let (map, decoded, end) = decode_json_string(raw, i + 1);
        if decoded == want {
            return Some(map);
        }
        i = end + 1;
    }
    None
}

/// Decodes the JSON string whose body starts at `from`; returns the byte map, the decoded bytes
/// and the offset of the closing quote (or the end).
fn decode_json_string(raw: &[u8], from: usize) -> (Vec<usize>, Vec<u8>, usize) {
    let (mut map, mut out) = (Vec::new(), Vec::new());
    let mut i = from;
    while i < raw.len() && raw[i] != b'"' {
        let at = i;
        if raw[i] != b'\\' {
            out.push(raw[i]);
            map.push(at);
            i += 1;
            continue;
        }
        let esc = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let ch = match esc {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'u' => {
                let hex = |j: usize| {
                    raw.get(j..j + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let mut code = hex(i).unwrap_or(0xfffd);
                i += 4;
                if (0xd800..0xdc00).contains(&code)
                    && raw.get(i..i + 2) == Some(b"\\u")
                    && let Some(low) = hex(i + 2).filter(|l| (0xdc00..0xe000).contains(l))
                {
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    i += 6;
                }
                char::from_u32(code).unwrap_or('\u{fffd}')
            }
            other => char::from(other),
        };
        let mut buf = [0u8; 4];
        for &b in ch.encode_utf8(&mut buf).as_bytes() {
            out.push(b);
            map.push(at);
        }
    }
    (map, out, i)
}

fn collect_strings(v: &Value, out: &mut Vec<String>, depth: u32) {
    if depth > 8 || out.len() > 256 {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}

/// `modeling_x.MyModel` → `modeling_x.py`; `org/repo--modeling_x.MyModel` →
/// `org/repo--modeling_x.py` (code from another repository).
fn module_file(reference: &str) -> Option<String> {
    let (module, _class) = reference.rsplit_once('.')?;
    (!module.is_empty()).then(|| format!("{module}.py"))
}

/// Every `_target_` key and its value, with the byte offset of the key. Block (`_target_: x`)
/// and flow (`{_target_: x, …}`) styles, quoted or not. A value that a line scan cannot read
/// (empty, a block scalar, an alias, a tag) is returned as written, and then fails the
/// allow-list: a config that hides its target from this scan is reported, not trusted.
pub(crate) fn hydra_targets(text: &str) -> Vec<(String, usize)> {
    const KEY: &str = "_target_";
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find(KEY)).map(|p| p + from) {
        from = pos + KEY.len();
        if out.len() >= 10_000 {
            break;
        }
        // The key starts a mapping entry: after indentation, `- `, `{`, `,` or a quote.
        let before = b[..pos].iter().rev().find(|c| **c != b' ' && **c != b'\t').copied();
        let quoted_key = matches!(before, Some(b'"' | b'\''));
        let key_start =
            matches!(before, None | Some(b'\n' | b'\r' | b'{' | b',' | b'-' | b'?' | b'"' | b'\''));
        if !key_start {
            continue;
        }
        let mut i = pos + KEY.len();
        if quoted_key && matches!(b.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if b.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        // An anchor (`&name value`) only names the value.
        if b.get(i) == Some(&b'&') {
            while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            while matches!(b.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        }
        let rest = text.get(i..).unwrap_or_default();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &rest[1..];
                match body.find(q) {
                    Some(end) => body[..end].to_string(),
                    None => body.lines().next().unwrap_or_default().to_string(),
                }
            }
            _ => {
                let end = rest.find(['\n', '\r', ',', '}', ']']).unwrap_or(rest.len());
                let v = &rest[..end];
                let v = match v.find(" #") {
                    Some(c) => &v[..c],
                    None => v,
                };
                v.trim().to_string()
            }
        };
        out.push((value.chars().take(512).collect(), pos));
    }
    out
}

/// Notes Python code identified by its name: an archive member, or the scanned file itself.
/// TorchScript code inside a TorchScript archive has its own rule.
pub(crate) fn check_name(ctx: &dyn Driver, node: &mut Node) {
    let name = match node.relation {
        Some(Relation::Member) => node.name.clone(),
        None if ctx.depth() == 1 => match ctx.file_name() {
            Some(n) => n.to_string(),
            None => return,
        },
        _ => return,
    };
    if node.role == Some(Role::TorchscriptCode) || node.format.is_archive() {
        return;
    }
    let file = name.rsplit(['/', '\\']).next().unwrap_or(&name);
    let Some((_, ext)) = file.rsplit_once('.') else {
        return;
    };
    if PYTHON_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
        let where_ = if node.relation.is_some() { "inside a model archive" } else { "among the model files" };
        node.note(
            Note::new(
                NoteKind::PythonCode,
                format!(
                    "Python code {where_} ({file}): transformers' trust_remote_code, TorchServe handlers and NeMo import such files when the model is loaded"
                ),
            )
            .evidence(name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, scan_bytes};

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn auto_map_lists_modules() {
        let cfg = br#"{"architectures": ["X"], "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel", "AutoTokenizer": ["tokenization_x.XTok", null]}}"#;
        let root = scan_bytes(cfg, Options::default());
        assert_eq!(root.format, Format::Json);
        assert_eq!(kinds(&root), vec![NoteKind::RemoteCode]);
        assert_eq!(
            root.notes[0].evidence.as_deref(),
            Some("configuration_x.py, modeling_x.py, tokenization_x.py")
        );
        let Detail::HfConfig(info) = &root.detail else { panic!("{:?}", root.detail) };
        assert_eq!(info.remote_code.len(), 3);
        let plain = br#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "max_position_embeddings": 8192, "vocab_size": 128256}"#;
        let root = scan_bytes(plain, Options::default());
        assert!(root.notes.is_empty());
        let Detail::HfConfig(info) = &root.detail else { panic!("{:?}", root.detail) };
        assert_eq!(info.model_type.as_deref(), Some("llama"));
        assert_eq!((info.context_length, info.vocab_size), (Some(8192), Some(128256)));
    }

    /// The note listing `evidence` (`attribute:__class__`), if any.
    fn named<'n>(node: &'n Node, evidence: &str) -> Option<&'n Note> {
        node.notes
            .iter()
            .find(|n| n.kind == NoteKind::TemplateName && n.evidence.as_deref() == Some(evidence))
    }

    #[test]
    fn chat_templates_in_json_and_text() {
        let evil = br#"{"chat_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}"#;
        let root = scan_bytes(evil, Options::default());
        assert!(kinds(&root).iter().all(|k| *k == NoteKind::TemplateName), "{:?}", root.notes);
        let at = evil.windows(9).position(|w| w == b"__class__").unwrap_or(0) as u64;
        assert_eq!(named(&root, "attribute:__class__").and_then(|n| n.offset), Some(at));
        // Offsets are in the file's bytes, through the JSON escapes.
        let escaped = br#"{"chat_template": "\u00e9\n{{ x.\u005f_class__ }}"}"#;
        let root = scan_bytes(escaped, Options::default());
        let at = escaped.windows(6).position(|w| w == br"\u005f").unwrap_or(0) as u64;
        assert_eq!(named(&root, "attribute:__class__").and_then(|n| n.offset), Some(at));
        let list = br#"{"chat_template": [{"name": "default", "template": "{% for m in messages %}{{ m.content }}{% endfor %}"}, {"name": "tool_use", "template": "{% for m in messages %}"}]}"#;
        let root = scan_bytes(list, Options::default());
        assert!(named(&root, "attribute:content").is_some(), "{:?}", root.notes);
        assert_eq!(kinds(&root).iter().filter(|k| **k == NoteKind::TemplateInvalid).count(), 1);
        // A .jinja file starts with `{`: sniffed as JSON, read as text.
        let jinja = b"{%- for message in messages %}{{ message.__init__.__globals__ }}{% endfor %}";
        let root = scan_bytes(jinja, Options::default());
        assert!(named(&root, "attribute:__globals__").is_some(), "{:?}", root.notes);
        // Text with braces is analysed too; `name` is a variable (data), judged by the policy.
        let readme = b"# Model card\n\nUse `{{ name }}` in your prompt.\n";
        let root = scan_bytes(readme, Options::default());
        assert!(kinds(&root).iter().all(|k| *k == NoteKind::TemplateName), "{:?}", root.notes);
        // A broken template is still scanned expression by expression.
        let broken = br#"{"chat_template": "{% for m in messages %}{{ m.__class__ }}"}"#;
        let root = scan_bytes(broken, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::TemplateInjection, NoteKind::TemplateInvalid]);
    }

    #[test]
    fn python_files_by_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let py = dir.path().join("modeling_evil.py");
        std::fs::write(&py, b"import os\nos.system('id')\n").unwrap_or_else(|e| panic!("{e}"));
        let root = crate::scan_file(&py, Options::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kinds(&root), vec![NoteKind::PythonCode]);
        // Without a name there is nothing to go by.
        assert!(scan_bytes(b"import os\n", Options::default()).notes.is_empty());
    }

    #[test]
    fn torchserve_manifests() {
        let custom = br#"{"createdOn": "01/01/2024", "runtime": "python", "model": {"modelName": "m", "handler": "my_handler.py", "serializedFile": "model.pt"}, "archiverVersion": "0.9.0"}"#;
        let root = scan_bytes(custom, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::TorchServeHandler]);
        let builtin = br#"{"runtime": "python", "model": {"handler": "image_classifier"}}"#;
        assert!(scan_bytes(builtin, Options::default()).notes.is_empty());
    }

    #[test]
    fn hydra_targets_block_and_flow() {
        let yaml = "model:\n  preprocessor:\n    _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor\n  optim: {_target_: torch.optim.AdamW, lr: 0.1}\n  evil:\n    \"_target_\": 'os.system'\n  hidden:\n    _target_: &x nemo.utils.os.system # comment\n  block:\n    _target_: >\n      builtins.exec\n  not_a_key: my_target_: x\n";
        let got: Vec<String> = hydra_targets(yaml).into_iter().map(|t| t.0).collect();
        assert_eq!(
            got,
            vec![
                "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                "torch.optim.AdamW",
                "os.system",
                "nemo.utils.os.system",
                ">",
            ]
        );
        // Every target is reported; the policy judges them (modelgate-policy's hydra_lists).
        let root = scan_bytes(yaml.as_bytes(), Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::HydraTarget; 5]);
    }
}
