//! SARIF 2.1.0 (`--sarif FILE`) for GitHub code scanning and other SARIF consumers.
//!
//! One run; `tool.driver.rules` is the whole catalogue; each finding is a result located at its
//! file (a repository-relative URI, line 1: model files have no lines), with the archive member
//! and byte offset in the message and properties — never in the URI, which must name a file in
//! the repository. Fingerprints are stable across runs: rule, path, file digest and what was found.

use super::{Run, one_line};
use modelgate_formats::stream::hex;
use modelgate_policy::{Catalogue, Finding, Rule, Severity};
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
    automation_details: Value,
    results: Vec<Value>,
}

/// Renders the SARIF log.
pub fn render(run: &Run<'_>) -> String {
    let catalogue = Catalogue::builtin();
    let index: BTreeMap<&str, usize> =
        catalogue.rules().iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let rules: Vec<Value> = catalogue.rules().iter().map(rule).collect();
    let mut results = Vec::new();
    for a in run.artifacts {
        let digest = if a.missing { String::new() } else { hex(&a.node.sha256) };
        for (f, print) in a.findings.iter().zip(fingerprints(&a.findings, &a.path, &digest)) {
            let rule_index = index.get(f.rule.id.as_str()).copied().unwrap_or(0);
            results.push(result(f, &a.path, &digest, &print, rule_index));
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
            automation_details: json!({ "id": "modelgate/" }),
            results,
        }],
    };
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}

fn rule(r: &Rule) -> Value {
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
        "defaultConfiguration": { "level": level(r.severity) },
        "properties": {
            "tags": tags,
            "precision": "high",
            "problem.severity": match level(r.severity) { "error" => "error", "warning" => "warning", _ => "recommendation" },
            "security-severity": security_severity(r.severity),
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

fn result(f: &Finding, path: &str, digest: &str, print: &str, rule_index: usize) -> Value {
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
                "artifactLocation": { "uri": uri(path), "uriBaseId": "%SRCROOT%" },
                "region": { "startLine": 1 }
            }
        }],
        "partialFingerprints": { "primaryLocationLineHash": format!("{print}:1") },
        "properties": properties,
    });
    if path.contains("://") {
        // A downloaded file (hf://…, https://…): an absolute URI, not relative to the checkout.
        r["locations"][0]["physicalLocation"]["artifactLocation"] = json!({ "uri": uri(path) });
    }
    if let Some(m) = &f.location.member {
        r["locations"][0]["logicalLocations"] = json!([{ "fullyQualifiedName": m, "kind": "member" }]);
    }
    if let Some(s) = &f.suppressed {
        r["suppressions"] = json!([{ "kind": "external", "justification": s.reason }]);
    }
    r
}

/// A repository-relative URI reference for a reported path: percent-encoded except for the
/// characters that are safe in a path.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded_paths() {
        assert_eq!(uri("models/a b/ü.pt"), "models/a%20b/%C3%BC.pt");
        assert_eq!(uri("x.pt"), "x.pt");
        assert_eq!(uri("100%.bin"), "100%25.bin");
    }
}
