//! SARIF 2.1.0 (`--sarif FILE`) for GitHub code scanning and other SARIF consumers.
//!
//! One run; `tool.driver.rules` is the whole catalogue, each rule with the severity the policy
//! in force gives it (a rule re-graded in `modelgate.toml` changes its level and
//! `security-severity`; a rule switched off is `enabled: false`) and a `helpUri` into
//! docs/policy.md. Each finding is a result located at its file (relative to the repository root,
//! see [`super::location`]; line 1: model files have no lines), with the archive member and byte
//! offset in the message and properties — never in the URI, which must name a file. Fingerprints
//! are stable across runs: rule, path, file digest and what was found.

use super::location::Locator;
pub use super::location::uri;
use super::{Run, one_line};
use modelgate_formats::stream::hex;
use modelgate_policy::{Catalogue, Finding, Policy, Rule, Severity};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The SARIF level for a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score for a severity (>9 critical, 7–8.9 high, 4–6.9 medium,
/// 0.1–3.9 low).
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.1",
    }
}

#[derive(Serialize)]
struct Sarif {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<SarifRun>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun {
    tool: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    automation_details: Option<Value>,
    results: Vec<Value>,
}

/// Renders the SARIF log. `category` becomes `automationDetails.id`: code scanning keeps one set
/// of alerts per category, so scans of different folders need different ones. Without it the
/// uploader derives one from the workflow, job and matrix values.
pub fn render(run: &Run<'_>, policy: &Policy, category: Option<&str>) -> String {
    let catalogue = Catalogue::builtin();
    let index: BTreeMap<&str, usize> =
        catalogue.rules().iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let rules: Vec<Value> = catalogue.rules().iter().map(|r| rule(r, policy)).collect();
    let locator = Locator::from_env();
    let mut results = Vec::new();
    for a in run.artifacts {
        let digest = if a.missing { String::new() } else { hex(&a.node.sha256) };
        let place = locator.place(&a.path);
        for (f, print) in a.findings.iter().zip(fingerprints(&a.findings, place.path(), &digest)) {
            let rule_index = index.get(f.rule.id.as_str()).copied().unwrap_or(0);
            results.push(result(f, place.sarif(), &digest, &print, rule_index));
        }
    }
    let log = Sarif {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![SarifRun {
            tool: json!({
                "driver": {
                    "name": "modelgate",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules,
                }
            }),
            automation_details: category.filter(|c| !c.is_empty()).map(|c| json!({ "id": c })),
            results,
        }],
    };
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}

/// Where a rule is documented.
pub fn help_uri(id: &str) -> String {
    format!(
        "{}/blob/v{}/docs/policy.md#{}",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION"),
        id.to_ascii_lowercase()
    )
}

fn rule(r: &Rule, policy: &Policy) -> Value {
    // The severity the policy in force applies; a rule switched off keeps its catalogue severity
    // for the score and is marked disabled.
    let applied = policy.severity_of(&r.id, r.severity);
    let severity = applied.unwrap_or(r.severity);
    let markdown = format!(
        "**{}**\n\n{}\n\n**Why it matters.** {}\n\n**How to fix or allow it.** {}\n\n`modelgate explain {}`",
        r.summary,
        one_line(&r.description),
        one_line(&r.why),
        one_line(&r.fix),
        r.id
    );
    let mut tags = vec!["security".to_string(), "ml-model".to_string(), family(&r.id).to_string()];
    if let Some(cwe) = r.cwe {
        tags.push(format!("external/cwe/cwe-{cwe}"));
    }
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": { "text": r.summary },
        "fullDescription": { "text": one_line(&r.description) },
        "help": { "text": format!("{} {} {}", one_line(&r.description), one_line(&r.why), one_line(&r.fix)), "markdown": markdown },
        "helpUri": help_uri(&r.id),
        "defaultConfiguration": { "level": level(severity), "enabled": applied.is_some() },
        "properties": {
            "tags": tags,
            "precision": "high",
            "problem.severity": match level(severity) { "error" => "error", "warning" => "warning", _ => "recommendation" },
            "security-severity": security_severity(severity),
            "severity": severity.as_str(),
        }
    })
}

fn family(id: &str) -> &'static str {
    match id.get(..3) {
        Some("MG0") => "file",
        Some("MG1") => "pickle",
        Some("MG2") => "archive",
        Some("MG3") => "pytorch",
        Some("MG4") => "keras-tensorflow",
        Some("MG5") => "onnx-gguf-safetensors",
        Some("MG6") => "repository",
        Some("MG7") => "policy",
        Some("MG8") => "signature",
        Some("MG9") => "remote",
        _ => "other",
    }
}

/// Stable fingerprints of a file's findings: the same finding in the same file content keeps its
/// fingerprint across runs. Findings alike in rule, member, offset and evidence (one Lambda
/// reached through several config paths) are told apart by their order of occurrence.
pub fn fingerprints(findings: &[Finding], path: &str, digest: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    findings
        .iter()
        .map(|f| {
            let key = format!(
                "{}|{path}|{digest}|{}|{}|{}",
                f.rule.id,
                f.location.member.as_deref().unwrap_or(""),
                f.location.offset.map(|o| o.to_string()).unwrap_or_default(),
                f.evidence.as_deref().unwrap_or(""),
            );
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            let key = if *n > 1 { format!("{key}|{n}") } else { key };
            Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
        })
        .collect()
}

fn result(f: &Finding, location: Value, digest: &str, print: &str, rule_index: usize) -> Value {
    let mut where_ = String::new();
    if let Some(m) = &f.location.member {
        where_.push_str(&format!(" [member {m}"));
        if let Some(o) = f.location.offset {
            where_.push_str(&format!(", offset {o}"));
        }
        where_.push(']');
    } else if let Some(o) = f.location.offset {
        where_.push_str(&format!(" [offset {o}]"));
    }
    let mut properties = json!({ "severity": f.severity.as_str() });
    if let Some(m) = &f.location.member {
        properties["member"] = json!(m);
    }
    if let Some(o) = f.location.offset {
        properties["offset"] = json!(o);
    }
    if let Some(e) = &f.evidence {
        properties["evidence"] = json!(e);
    }
    if !digest.is_empty() {
        properties["sha256"] = json!(digest);
    }
    let mut r = json!({
        "ruleId": f.rule.id,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": format!("{}{where_}", f.message) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": location,
                "region": { "startLine": 1 }
            }
        }],
        "partialFingerprints": { "primaryLocationLineHash": format!("{print}:1") },
        "properties": properties,
    });
    if let Some(m) = &f.location.member {
        r["locations"][0]["logicalLocations"] = json!([{ "fullyQualifiedName": m, "kind": "member" }]);
    }
    if let Some(s) = &f.suppressed {
        r["suppressions"] = json!([{ "kind": "external", "justification": s.reason }]);
    }
    r
}
