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
use modelgate_formats::{Format, Node};
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
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_card: Option<ModelCard>,
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
    architecture_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_architecture: Option<String>,
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

/// Formats that are models themselves (a file holding one of these anywhere is a model).
fn model_format(f: Format) -> bool {
    matches!(
        f,
        Format::Pickle
            | Format::PytorchZip
            | Format::Torchscript
            | Format::PytorchLegacy
            | Format::PytorchLegacyTar
            | Format::Numpy
            | Format::NumpyNpz
            | Format::Joblib
            | Format::Hdf5
            | Format::TfSavedmodel
            | Format::Onnx
            | Format::Tflite
            | Format::Gguf
            | Format::Safetensors
            | Format::GitLfsPointer
    )
}

fn holds_model(node: &Node) -> bool {
    model_format(node.format) || node.children.iter().any(holds_model)
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
    Component {
        kind,
        bom_ref: format!("{}:{}", if kind == ComponentType::File { "file" } else { "model" }, a.path),
        name: base_name(&a.path).to_string(),
        version: None,
        purl: None,
        description: None,
        hashes: vec![sha256(&a.node)],
        external_references: distribution(a),
        properties,
        components: Vec::new(),
        model_card: (kind == ComponentType::MachineLearningModel).then(|| model_card(&a.node)),
    }
}

/// What the files say about the model, offline.
fn model_card(node: &Node) -> ModelCard {
    let mut properties = vec![prop("modelgate:model-format", node.format.as_str())];
    if let Some(p) = node.pickle().or_else(|| node.children.iter().find_map(|c| c.pickle())) {
        properties.push(prop("modelgate:pickle-loader", p.loader.as_str()));
    }
    ModelCard { model_parameters: None, properties }
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
        components.push(Component {
            kind: ComponentType::MachineLearningModel,
            bom_ref: format!("model:{dir}"),
            name: match repo {
                Some(r) => r.id.clone(),
                None if dir == "." => root_name.to_string(),
                None => base_name(dir).to_string(),
            },
            version: repo.map(|r| r.commit.clone()),
            purl: repo.map(hub_purl),
            description: None,
            hashes: Vec::new(),
            external_references: repo
                .map(|r| ExternalReference {
                    kind: "vcs",
                    url: format!("{}/{}", r.endpoint, r.id),
                    comment: None,
                })
                .into_iter()
                .collect(),
            properties,
            components: nested,
            model_card: Some(ModelCard {
                model_parameters: None,
                properties: formats.iter().map(|f| prop("modelgate:model-format", *f)).collect(),
            }),
        });
    }
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
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: spec.as_str(),
        serial_number: serial,
        version: 1,
        metadata: Metadata {
            timestamp: rfc3339(now_secs()),
            lifecycles: vec![Lifecycle { phase: "build" }],
            tools: Tools {
                components: vec![Component {
                    kind: ComponentType::Application,
                    bom_ref: "tool:modelgate".into(),
                    name: "modelgate".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    purl: None,
                    description: Some("Static scanner and policy gate for ML model files".into()),
                    hashes: Vec::new(),
                    external_references: vec![ExternalReference {
                        kind: "website",
                        url: env!("CARGO_PKG_REPOSITORY").into(),
                        comment: None,
                    }],
                    properties: Vec::new(),
                    components: Vec::new(),
                    model_card: None,
                }],
            },
            component: Component {
                kind: ComponentType::Application,
                bom_ref: root_ref.clone(),
                name: root_name.to_string(),
                version: None,
                purl: None,
                description: Some("The files scanned by modelgate".into()),
                hashes: Vec::new(),
                external_references: Vec::new(),
                properties: vec![
                    prop("modelgate:verdict", if failing { "fail" } else { "pass" }),
                    prop("modelgate:fail-on", run.fail_on.to_string()),
                ],
                components: Vec::new(),
                model_card: None,
            },
        },
        dependencies: std::iter::once(Dependency {
            reference: root_ref.clone(),
            depends_on: components.iter().map(|c| c.bom_ref.clone()).collect(),
        })
        .chain(components.iter().map(|c| Dependency { reference: c.bom_ref.clone(), depends_on: Vec::new() }))
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
