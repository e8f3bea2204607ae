//! CycloneDX ML-BOM (`--sbom FILE`, `--sbom-spec 1.5|1.6|1.7`). All BOM code lives here.
//!
//! A small typed serde model of exactly what we emit: the emitted subset is valid in 1.5, 1.6 and
//! 1.7 alike, so only `specVersion` changes. One `machine-learning-model` component per model —
//! a model directory (a Hugging Face repository, a SavedModel) is one component with its files
//! nested as `file` components; other model files are components of their own; every other
//! scanned file is a `file` component. Findings become `vulnerabilities` whose `affects` are
//! BOM-links to the component. Output is deterministic for the same inputs (serial number derived
//! from the content; `SOURCE_DATE_EPOCH` fixes the timestamp).

use super::Run;
use super::gitlab::uuid_from;
use crate::run::{Artifact, HubRepo};
use modelgate_formats::stream::hex;
use modelgate_formats::{Detail, Node};
use modelgate_policy::pins::oms_root_digest;
use modelgate_policy::suppress::Date;
use modelgate_policy::{Finding, Severity};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The CycloneDX versions we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Spec {
    #[value(name = "1.5")]
    V1_5,
    #[value(name = "1.6")]
    V1_6,
    #[value(name = "1.7")]
    V1_7,
}

impl Spec {
    fn as_str(self) -> &'static str {
        match self {
            Spec::V1_5 => "1.5",
            Spec::V1_6 => "1.6",
            Spec::V1_7 => "1.7",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    lifecycles: Vec<Lifecycle>,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Lifecycle {
    phase: &'static str,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ComponentType {
    Application,
    MachineLearningModel,
    Data,
    File,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(rename = "type")]
    kind: ComponentType,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_card: Option<ModelCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pedigree: Option<Pedigree>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    data: Vec<ComponentData>,
}

impl Component {
    fn new(kind: ComponentType, bom_ref: String, name: String) -> Component {
        Component {
            kind,
            bom_ref,
            name,
            version: None,
            description: None,
            hashes: Vec::new(),
            licenses: Vec::new(),
            purl: None,
            external_references: Vec::new(),
            properties: Vec::new(),
            components: Vec::new(),
            model_card: None,
            pedigree: None,
            data: Vec::new(),
        }
    }
}

/// `licenses[]`: an exact SPDX id, or a name when the card's license is not one.
#[derive(Serialize)]
struct LicenseChoice {
    license: License,
}

#[derive(Serialize)]
struct License {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize)]
struct Pedigree {
    ancestors: Vec<Component>,
}

/// `component.data[]` of a `data` component.
#[derive(Serialize)]
struct ComponentData {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<DataContents>,
}

#[derive(Serialize)]
struct DataContents {
    url: String,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize, Clone)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelCard {
    #[serde(skip_serializing_if = "Option::is_none")]
    model_parameters: Option<ModelParameters>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    architecture_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_architecture: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    datasets: Vec<DatasetRef>,
}

#[derive(Serialize)]
struct DatasetRef {
    #[serde(rename = "ref")]
    reference: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

#[derive(Serialize)]
struct Vulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    id: String,
    source: Source,
    ratings: Vec<Rating>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cwes: Vec<u32>,
    description: String,
    detail: String,
    recommendation: String,
    analysis: Analysis,
    affects: Vec<Affect>,
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Source {
    name: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Rating {
    source: RatingSource,
    severity: &'static str,
    method: &'static str,
}

#[derive(Serialize)]
struct RatingSource {
    name: &'static str,
}

#[derive(Serialize)]
struct Analysis {
    state: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    response: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct Affect {
    #[serde(rename = "ref")]
    reference: String,
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property { name: name.to_string(), value: value.into() }
}

fn sha256(node: &Node) -> Hash {
    Hash { alg: "SHA-256", content: hex(&node.sha256) }
}

fn holds_model(node: &Node) -> bool {
    node.format.is_model() || node.children.iter().any(holds_model)
}

/// Files that make their directory a model directory.
fn marks_model_dir(name: &str) -> bool {
    matches!(name, "config.json" | "saved_model.pb" | "model_index.json" | "keras_metadata.pb" | "model.sig")
        || name.ends_with(".safetensors.index.json")
        || name.ends_with(".bin.index.json")
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".")
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where each artifact goes: the model directory it belongs to, if any. A Hugging Face
/// repository is always one model.
fn model_dirs(artifacts: &[Artifact]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for a in artifacts.iter().filter(|a| !a.missing) {
        if let Some(repo) = hub_repo(a) {
            dirs.insert(repo.root.clone());
        } else if marks_model_dir(base_name(&a.path)) {
            dirs.insert(dir_of(&a.path).to_string());
        }
    }
    dirs
}

fn hub_repo(a: &Artifact) -> Option<&HubRepo> {
    a.origin.as_ref().and_then(|o| o.repo.as_ref())
}

/// Where a downloaded file came from.
fn distribution(a: &Artifact) -> Vec<ExternalReference> {
    a.origin
        .iter()
        .map(|o| ExternalReference { kind: "distribution", url: o.url.clone(), comment: None })
        .collect()
}

/// `pkg:huggingface/<org>/<name>@<commit>`, with `repository_url` for a hub other than
/// huggingface.co (the purl spec's form for Hugging Face models).
fn hub_purl(repo: &HubRepo) -> String {
    let mut purl = format!("pkg:huggingface/{}@{}", repo.id, repo.commit.to_lowercase());
    if repo.endpoint != "https://huggingface.co" {
        purl.push_str(&format!("?repository_url={}", repo.endpoint));
    }
    purl
}

fn containing_dir<'d>(path: &str, dirs: &'d BTreeSet<String>) -> Option<&'d String> {
    dirs.iter().filter(|d| d.as_str() == "." || path.starts_with(&format!("{d}/"))).max_by_key(|d| d.len())
}

fn counts_props(findings: &[&Finding]) -> Vec<Property> {
    let mut out = vec![prop(
        "modelgate:findings",
        findings.iter().filter(|f| f.suppressed.is_none()).count().to_string(),
    )];
    for s in Severity::ALL {
        let n = findings.iter().filter(|f| f.suppressed.is_none() && f.severity == s).count();
        if n > 0 {
            out.push(prop(&format!("modelgate:findings:{s}"), n.to_string()));
        }
    }
    out
}

fn file_component(a: &Artifact, kind: ComponentType, run: &Run<'_>) -> Component {
    let findings: Vec<&Finding> = a.findings.iter().collect();
    let failing = findings.iter().any(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity));
    let mut properties = vec![
        prop("modelgate:path", &a.path),
        prop("modelgate:format", a.node.format.as_str()),
        prop("modelgate:size", a.node.size.to_string()),
    ];
    properties.push(prop("modelgate:verdict", if failing { "fail" } else { "pass" }));
    properties.extend(counts_props(&findings));
    let prefix = if kind == ComponentType::File { "file" } else { "model" };
    let mut c = Component::new(kind, format!("{prefix}:{}", a.path), base_name(&a.path).to_string());
    c.hashes = vec![sha256(&a.node)];
    c.external_references = distribution(a);
    c.properties = properties;
    if kind == ComponentType::MachineLearningModel {
        let mut facts = CardFacts::default();
        facts.add(&a.node);
        facts.apply(&mut c, [a.node.format.as_str()].into_iter().collect());
    }
    c
}

/// What the files of one model say about it, offline: config.json, the model card's front
/// matter, GGUF metadata, safetensors and ONNX headers, Keras configs, TensorFlow checkpoint
/// indexes, skops schemas.
#[derive(Default)]
struct CardFacts {
    task: Option<String>,
    family: Option<String>,
    architecture: Option<String>,
    /// Parameters in safetensors files (summed over shards) and in GGUF files.
    safetensors_parameters: u64,
    gguf_parameters: u64,
    /// Elements of the TensorFlow checkpoints' tensors (summed over indexes).
    checkpoint_parameters: u64,
    dtypes: BTreeSet<String>,
    context_length: Option<u64>,
    quantization: Option<String>,
    tokenizer_class: Option<String>,
    vocab_size: Option<u64>,
    chat_templates: BTreeSet<String>,
    languages: Vec<String>,
    licenses: Vec<String>,
    license_name: Option<String>,
    datasets: Vec<String>,
    base_models: Vec<String>,
    library: Option<String>,
    writer: Vec<(String, String)>,
    pickle_loader: Option<String>,
}

fn first<T: Clone>(slot: &mut Option<T>, value: Option<&T>) {
    if slot.is_none() {
        *slot = value.cloned();
    }
}

fn extend_unique(list: &mut Vec<String>, values: &[String]) {
    for v in values {
        if !list.contains(v) {
            list.push(v.clone());
        }
    }
}

/// A TensorFlow numeric dtype in the safetensors/GGUF spelling the other formats use (`F32`);
/// `None` for strings, resources and variants.
fn tf_dtype(name: &str) -> Option<&'static str> {
    Some(match name {
        "DT_FLOAT" => "F32",
        "DT_DOUBLE" => "F64",
        "DT_HALF" => "F16",
        "DT_BFLOAT16" => "BF16",
        "DT_INT8" => "I8",
        "DT_INT16" => "I16",
        "DT_INT32" => "I32",
        "DT_INT64" => "I64",
        "DT_UINT8" => "U8",
        "DT_UINT16" => "U16",
        "DT_UINT32" => "U32",
        "DT_UINT64" => "U64",
        "DT_BOOL" => "BOOL",
        "DT_COMPLEX64" => "C64",
        _ => return None,
    })
}

impl CardFacts {
    fn add(&mut self, node: &Node) {
        match &node.detail {
            Detail::HfConfig(c) => {
                first(&mut self.family, c.model_type.as_ref());
                first(&mut self.architecture, c.architectures.first());
                first(&mut self.context_length, c.context_length.as_ref());
                first(&mut self.tokenizer_class, c.tokenizer_class.as_ref());
                first(&mut self.vocab_size, c.vocab_size.as_ref());
                if c.chat_templates > 0 {
                    self.chat_templates.insert(node.name.clone());
                }
            }
            Detail::ModelCard(card) => {
                first(&mut self.task, card.pipeline_tag.as_ref());
                first(&mut self.library, card.library_name.as_ref());
                first(&mut self.license_name, card.license_name.as_ref());
                extend_unique(&mut self.licenses, &card.licenses);
                extend_unique(&mut self.datasets, &card.datasets);
                extend_unique(&mut self.base_models, &card.base_models);
                extend_unique(&mut self.languages, &card.languages);
            }
            Detail::Gguf(g) => {
                first(&mut self.family, g.architecture.as_ref());
                first(&mut self.context_length, g.context_length.as_ref());
                first(&mut self.quantization, g.file_type.as_ref());
                if let Some(l) = &g.license {
                    extend_unique(&mut self.licenses, std::slice::from_ref(l));
                }
                self.gguf_parameters += g.parameter_count;
                self.dtypes.extend(g.tensor_types.keys().cloned());
                self.chat_templates.extend(g.chat_templates.iter().cloned());
            }
            Detail::Safetensors(st) => {
                self.safetensors_parameters += st.parameter_count;
                self.dtypes.extend(st.dtypes.keys().cloned());
            }
            Detail::Onnx(o) => {
                if let Some(p) = &o.producer_name {
                    let version = o.producer_version.as_deref().unwrap_or("");
                    self.writer.push(("onnx-producer".into(), format!("{p} {version}").trim().to_string()));
                }
            }
            Detail::Graph(g) => {
                for (k, v) in &g.facts {
                    if matches!(k.as_str(), "keras_version" | "backend" | "tensorflow_version") {
                        self.writer.push((k.replace('_', "-"), v.clone()));
                    }
                }
            }
            Detail::CheckpointIndex(c) => {
                self.checkpoint_parameters = self.checkpoint_parameters.saturating_add(c.elements);
                self.dtypes.extend(c.dtypes.ops.iter().filter_map(|d| tf_dtype(&d.name)).map(str::to_string));
            }
            Detail::Pickle(p) => first(&mut self.pickle_loader, Some(&p.loader.as_str().to_string())),
            Detail::Skops(s) => {
                if let Some(v) = &s.skops_version {
                    self.writer.push(("skops-version".into(), v.clone()));
                }
                if let Some(root) = s.globals.first() {
                    first(&mut self.architecture, Some(&root.qualified()));
                }
            }
            _ => {}
        }
        for child in &node.children {
            self.add(child);
        }
    }

    fn parameters(&self) -> u64 {
        self.safetensors_parameters.max(self.gguf_parameters).max(self.checkpoint_parameters)
    }

    /// Fills the component's model card, licenses and lineage.
    fn apply(self, c: &mut Component, formats: BTreeSet<&str>) {
        let mut properties: Vec<Property> =
            formats.iter().map(|f| prop("modelgate:model-format", *f)).collect();
        let params = self.parameters();
        if params > 0 {
            properties.push(prop("cdx:ai-ml:model:parameter:count", human_count(params)));
            properties.push(prop("modelgate:parameters", params.to_string()));
        }
        let hyper = |name: &str, v: String| prop(&format!("cdx:ai-ml:model:hyperparameter:{name}"), v);
        if let Some(n) = self.context_length {
            properties.push(hyper("context_length", n.to_string()));
        }
        if let Some(q) = &self.quantization {
            properties.push(hyper("quantization", q.clone()));
        }
        if let Some(t) = &self.tokenizer_class {
            properties.push(hyper("tokenizer_class", t.clone()));
        }
        if let Some(n) = self.vocab_size {
            properties.push(hyper("vocab_size", n.to_string()));
        }
        if !self.languages.is_empty() {
            properties.push(prop("cdx:ai-ml:model:language", self.languages.join(",")));
        }
        if !self.dtypes.is_empty() {
            properties
                .push(prop("modelgate:dtypes", self.dtypes.iter().cloned().collect::<Vec<_>>().join(",")));
        }
        for t in &self.chat_templates {
            properties.push(prop("modelgate:chat-template", t));
        }
        if let Some(l) = &self.library {
            properties.push(prop("modelgate:library", l));
        }
        for (k, v) in &self.writer {
            properties.push(prop(&format!("modelgate:{k}"), v));
        }
        if let Some(l) = &self.pickle_loader {
            properties.push(prop("modelgate:pickle-loader", l));
        }
        let parameters = ModelParameters {
            task: self.task,
            architecture_family: self.family,
            model_architecture: self.architecture,
            datasets: self.datasets.iter().map(|d| DatasetRef { reference: dataset_ref(d) }).collect(),
        };
        let has_parameters = parameters.task.is_some()
            || parameters.architecture_family.is_some()
            || parameters.model_architecture.is_some()
            || !parameters.datasets.is_empty();
        c.model_card = Some(ModelCard { model_parameters: has_parameters.then_some(parameters), properties });
        c.licenses = self
            .licenses
            .iter()
            .filter(|l| !l.eq_ignore_ascii_case("other") || self.license_name.is_none())
            .map(|l| license(l))
            .chain(
                self.license_name
                    .iter()
                    .map(|n| LicenseChoice { license: License { id: None, name: Some(n.clone()) } }),
            )
            .collect();
        if !self.base_models.is_empty() {
            let ancestors = self
                .base_models
                .iter()
                .map(|b| {
                    let mut a = Component::new(
                        ComponentType::MachineLearningModel,
                        format!("{}:base:{b}", c.bom_ref),
                        b.clone(),
                    );
                    a.purl = huggingface_purl(b);
                    a
                })
                .collect();
            c.pedigree = Some(Pedigree { ancestors });
        }
    }
}

/// The signature checks the policy required, on the model components they are about: a link to
/// the signature file and who signed (or why it did not verify).
fn signatures(components: &mut [Component], outcomes: &[crate::signatures::Outcome], spec: Spec) {
    for o in outcomes {
        let Some(c) = components
            .iter_mut()
            .find(|c| c.bom_ref == format!("model:{}", o.model) || c.bom_ref == format!("file:{}", o.model))
        else {
            continue;
        };
        if let Some(sig) = &o.signature {
            // `digital-signature` is new in 1.6; 1.5 has only `other`.
            let (kind, comment) = match spec {
                Spec::V1_5 => ("other", Some("digital signature".to_string())),
                _ => ("digital-signature", None),
            };
            c.external_references.push(ExternalReference { kind, url: super::sarif::uri(sig), comment });
        }
        match &o.result {
            Ok(v) => {
                c.properties.push(prop("modelgate:signature:status", "verified"));
                c.properties.push(prop("modelgate:signature:signer", v.signer.to_string()));
                c.properties.push(prop("modelgate:signature:format", v.format));
            }
            Err(why) => {
                c.properties.push(prop("modelgate:signature:status", "failed"));
                c.properties.push(prop("modelgate:signature:reason", super::one_line(why)));
            }
        }
    }
}

/// `7B`, `184M`, `1.5K`: the parameter-count style of the cdx:ai-ml taxonomy.
fn human_count(n: u64) -> String {
    let (value, unit) = match n {
        0..1_000 => return n.to_string(),
        1_000..1_000_000 => (n as f64 / 1e3, "K"),
        1_000_000..1_000_000_000 => (n as f64 / 1e6, "M"),
        1_000_000_000..1_000_000_000_000 => (n as f64 / 1e9, "B"),
        _ => (n as f64 / 1e12, "T"),
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

fn dataset_ref(name: &str) -> String {
    format!("data:{name}")
}

/// A Hugging Face repository id (`org/name`) as a purl; `None` for anything else (a local path,
/// a URL).
fn huggingface_purl(id: &str) -> Option<String> {
    let (org, name) = id.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s != "."
            && s != ".."
    };
    (ok(org) && ok(name)).then(|| format!("pkg:huggingface/{org}/{name}"))
}

/// SPDX license ids in their exact case, from the SPDX license list (see the file's header).
const SPDX_IDS: &str = include_str!("../../data/spdx-license-ids.txt");

/// A card's license as a BOM license: the exact-case SPDX id when it is one (model cards write
/// `apache-2.0`; SPDX and the schema want `Apache-2.0`), else its name.
fn license(value: &str) -> LicenseChoice {
    let id = SPDX_IDS.lines().filter(|l| !l.starts_with('#')).find(|id| id.eq_ignore_ascii_case(value));
    LicenseChoice { license: License { id, name: id.is_none().then(|| value.to_string()) } }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn rfc3339(secs: i64) -> String {
    let (date, s) = Date::from_unix(secs);
    format!("{date}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Seconds since the epoch: `SOURCE_DATE_EPOCH` when set (reproducible output), else now.
pub fn now_secs() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// Renders the BOM. `root_name` names the scanned repository or directory.
pub fn render(run: &Run<'_>, spec: Spec, root_name: &str) -> String {
    let dirs = model_dirs(run.artifacts);
    let mut key = format!("{}|{}", spec.as_str(), env!("CARGO_PKG_VERSION"));
    for a in run.artifacts {
        key.push_str(&format!("|{}:{}", a.path, hex(&a.node.sha256)));
    }
    let uuid = uuid_from(&key);
    let serial = format!("urn:uuid:{uuid}");
    let bom_link = |r: &str| format!("urn:cdx:{uuid}/1#{}", super::sarif::uri(r));

    // Group files into model directories and standalone components.
    let mut grouped: BTreeMap<String, Vec<&Artifact>> = BTreeMap::new();
    let mut components = Vec::new();
    let mut affected_ref: BTreeMap<String, String> = BTreeMap::new();
    for a in run.artifacts.iter().filter(|a| !a.missing) {
        match containing_dir(&a.path, &dirs) {
            Some(d) => grouped.entry(d.clone()).or_default().push(a),
            None => {
                let kind = if holds_model(&a.node) {
                    ComponentType::MachineLearningModel
                } else {
                    ComponentType::File
                };
                let c = file_component(a, kind, run);
                affected_ref.insert(a.path.clone(), c.bom_ref.clone());
                components.push(c);
            }
        }
    }
    for (dir, files) in &grouped {
        let nested: Vec<Component> =
            files.iter().map(|a| file_component(a, ComponentType::File, run)).collect();
        for (a, c) in files.iter().zip(&nested) {
            affected_ref.insert(a.path.clone(), c.bom_ref.clone());
        }
        let digests: Vec<(String, String)> = files
            .iter()
            .map(|a| {
                (a.path.strip_prefix(&format!("{dir}/")).unwrap_or(&a.path).to_string(), hex(&a.node.sha256))
            })
            .collect();
        let findings: Vec<&Finding> = files.iter().flat_map(|a| &a.findings).collect();
        let failing = findings.iter().any(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity));
        let mut properties = vec![
            prop("modelgate:path", dir),
            prop("modelgate:oms-root-digest", format!("sha256:{}", oms_root_digest(&digests))),
            prop("modelgate:files", files.len().to_string()),
            prop("modelgate:verdict", if failing { "fail" } else { "pass" }),
        ];
        properties.extend(counts_props(&findings));
        let formats: BTreeSet<&str> = files.iter().map(|a| a.node.format.as_str()).collect();
        let repo = files.iter().find_map(|a| hub_repo(a).filter(|r| r.root == *dir));
        let name = match repo {
            Some(r) => r.id.clone(),
            None if dir == "." => root_name.to_string(),
            None => base_name(dir).to_string(),
        };
        let mut c = Component::new(ComponentType::MachineLearningModel, format!("model:{dir}"), name);
        c.version = repo.map(|r| r.commit.clone());
        c.purl = repo.map(|r| r.purl.clone().unwrap_or_else(|| hub_purl(r)));
        c.external_references = repo
            .map(|r| ExternalReference {
                kind: if r.purl.is_some() { "distribution" } else { "vcs" },
                url: if r.purl.is_some() { r.endpoint.clone() } else { format!("{}/{}", r.endpoint, r.id) },
                comment: None,
            })
            .into_iter()
            .collect();
        c.properties = properties;
        c.components = nested;
        let mut facts = CardFacts::default();
        for a in files {
            facts.add(&a.node);
        }
        facts.apply(&mut c, formats);
        components.push(c);
    }
    signatures(&mut components, run.signatures, spec);
    // Datasets the model cards name, as `data` components the models depend on.
    let mut datasets: BTreeMap<String, Component> = BTreeMap::new();
    let mut model_datasets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &components {
        let refs = c.model_card.iter().flat_map(|m| &m.model_parameters).flat_map(|p| &p.datasets);
        for r in refs {
            let name = r.reference.strip_prefix("data:").unwrap_or(&r.reference).to_string();
            model_datasets.entry(c.bom_ref.clone()).or_default().push(r.reference.clone());
            datasets.entry(r.reference.clone()).or_insert_with(|| {
                let mut d = Component::new(ComponentType::Data, r.reference.clone(), name.clone());
                d.data = vec![ComponentData {
                    kind: "dataset",
                    contents: huggingface_purl(&name)
                        .map(|_| DataContents { url: format!("https://huggingface.co/datasets/{name}") }),
                    name,
                }];
                d
            });
        }
    }
    let model_refs: Vec<String> = components.iter().map(|c| c.bom_ref.clone()).collect();
    components.extend(datasets.into_values());
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));

    let root_ref = "scan-root".to_string();
    let mut vulnerabilities = Vec::new();
    for a in run.artifacts {
        for f in &a.findings {
            let target = affected_ref.get(&a.path).cloned().unwrap_or_else(|| root_ref.clone());
            let (state, response, detail) = match (&f.suppressed, f.severity >= Severity::High) {
                (Some(s), _) => {
                    ("exploitable", vec!["will_not_fix"], Some(format!("accepted by policy: {}", s.reason)))
                }
                (None, true) => ("exploitable", Vec::new(), None),
                (None, false) => ("in_triage", Vec::new(), None),
            };
            let mut properties =
                vec![prop("modelgate:rule-name", &f.rule.name), prop("modelgate:path", &a.path)];
            if let Some(m) = &f.location.member {
                properties.push(prop("modelgate:member", m));
            }
            if let Some(o) = f.location.offset {
                properties.push(prop("modelgate:offset", o.to_string()));
            }
            if let Some(e) = &f.evidence {
                properties.push(prop("modelgate:evidence", e));
            }
            vulnerabilities.push(Vulnerability {
                bom_ref: format!("finding:{}", vulnerabilities.len() + 1),
                id: f.rule.id.clone(),
                source: Source {
                    name: "modelgate",
                    url: format!(
                        "{}/blob/main/docs/policy.md#{}",
                        env!("CARGO_PKG_REPOSITORY"),
                        f.rule.id.to_lowercase()
                    ),
                },
                ratings: vec![Rating {
                    source: RatingSource { name: "modelgate" },
                    severity: f.severity.as_str(),
                    method: "other",
                }],
                cwes: f.rule.cwe.into_iter().collect(),
                description: f.message.clone(),
                detail: super::one_line(&f.rule.description),
                recommendation: super::one_line(&f.rule.fix),
                analysis: Analysis { state, response, detail },
                affects: vec![Affect { reference: bom_link(&target) }],
                properties,
            });
        }
    }

    let failing = run.failing() > 0;
    let mut tool = Component::new(ComponentType::Application, "tool:modelgate".into(), "modelgate".into());
    tool.version = Some(env!("CARGO_PKG_VERSION").into());
    tool.description = Some("Static scanner and policy gate for ML model files".into());
    tool.external_references =
        vec![ExternalReference { kind: "website", url: env!("CARGO_PKG_REPOSITORY").into(), comment: None }];
    let mut root = Component::new(ComponentType::Application, root_ref.clone(), root_name.to_string());
    root.description = Some("The files scanned by modelgate".into());
    root.properties = vec![
        prop("modelgate:verdict", if failing { "fail" } else { "pass" }),
        prop("modelgate:fail-on", run.fail_on.to_string()),
    ];
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: spec.as_str(),
        serial_number: serial,
        version: 1,
        metadata: Metadata {
            timestamp: rfc3339(now_secs()),
            lifecycles: vec![Lifecycle { phase: "build" }],
            tools: Tools { components: vec![tool] },
            component: root,
        },
        dependencies: std::iter::once(Dependency { reference: root_ref.clone(), depends_on: model_refs })
            .chain(components.iter().map(|c| Dependency {
                reference: c.bom_ref.clone(),
                depends_on: model_datasets.remove(&c.bom_ref).unwrap_or_default(),
            }))
            .collect(),
        components,
        vulnerabilities,
    };
    let mut out = serde_json::to_string_pretty(&bom).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_669_200), "2026-11-26T05:00:00Z");
    }
}
