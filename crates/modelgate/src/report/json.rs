//! The JSON report, version 1 (`docs/report-format.md`).

use super::{Run, one_line};
use modelgate_formats::Node;
use modelgate_formats::stream::hex;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bumped on any incompatible change to the report's shape.
pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Report<'a> {
    report_version: u32,
    modelgate_version: &'static str,
    verdict: &'static str,
    fail_on: String,
    artifacts: Vec<Artifact<'a>>,
    /// Signature checks (additive in version 1; present only when the policy requires any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    signatures: Vec<crate::signatures::Json<'a>>,
    /// Policy and lockfile entries that matched nothing scanned (additive in version 1).
    unmatched: &'a [super::Unmatched],
    summary: Summary,
}

#[derive(Serialize)]
struct Artifact<'a> {
    path: &'a str,
    size: u64,
    sha256: String,
    format: &'static str,
    members: Vec<Member>,
    findings: Vec<Finding<'a>>,
    /// Set when the bytes were not downloaded (`docs/scale.md`): the source listed this SHA-256
    /// and the inventory came from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance>,
}

#[derive(Serialize)]
struct Provenance {
    sha256: &'static str,
    inventory: &'static str,
    bytes_read: bool,
}

#[derive(Serialize)]
struct Member {
    name: String,
    size: u64,
    sha256: String,
    format: &'static str,
}

#[derive(Serialize)]
struct Finding<'a> {
    rule: &'a str,
    name: &'a str,
    severity: &'static str,
    message: &'a str,
    location: Location<'a>,
    evidence: Option<&'a str>,
    fix: String,
    suppressed: Option<Suppressed<'a>>,
}

#[derive(Serialize)]
struct Suppressed<'a> {
    reason: &'a str,
    expires: Option<String>,
}

#[derive(Serialize)]
struct Location<'a> {
    member: Option<&'a str>,
    offset: Option<u64>,
}

#[derive(Serialize)]
struct Summary {
    artifacts: usize,
    bytes: u64,
    findings: usize,
    failing: usize,
    suppressed: usize,
    by_severity: BTreeMap<&'static str, usize>,
    /// What the walk left out on purpose (additive in version 1).
    skipped: crate::walk::Skipped,
}

/// Renders the report.
pub fn render(run: &Run<'_>) -> String {
    let artifacts = run
        .artifacts
        .iter()
        .map(|a| Artifact {
            path: &a.path,
            size: a.node.size,
            // A pinned file that was not found has no content to hash.
            sha256: if a.missing { String::new() } else { hex(&a.node.sha256) },
            format: a.placeholder().unwrap_or(a.node.format.as_str()),
            members: members(&a.node),
            provenance: a.origin.as_ref().filter(|o| o.from_cache).map(|_| Provenance {
                sha256: "listed-by-source",
                inventory: "cache",
                bytes_read: false,
            }),
            findings: a
                .findings
                .iter()
                .map(|f| Finding {
                    rule: &f.rule.id,
                    name: &f.rule.name,
                    severity: f.severity.as_str(),
                    message: &f.message,
                    location: Location { member: f.location.member.as_deref(), offset: f.location.offset },
                    evidence: f.evidence.as_deref(),
                    fix: one_line(&f.rule.fix),
                    suppressed: f
                        .suppressed
                        .as_ref()
                        .map(|s| Suppressed { reason: &s.reason, expires: s.expires.map(|d| d.to_string()) }),
                })
                .collect(),
        })
        .collect();
    let report = Report {
        report_version: REPORT_VERSION,
        modelgate_version: env!("CARGO_PKG_VERSION"),
        verdict: run.verdict.as_str(),
        fail_on: run.fail_on.to_string(),
        artifacts,
        signatures: run.signatures.iter().map(crate::signatures::Outcome::json).collect(),
        unmatched: run.unmatched,
        summary: Summary {
            artifacts: run.artifacts.len(),
            bytes: run.bytes(),
            findings: run.artifacts.iter().map(|a| a.findings.len()).sum(),
            failing: run.failing(),
            suppressed: run.suppressed(),
            by_severity: run.counts().iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            skipped: run.skipped,
        },
    };
    let mut out = serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}

/// Every node below the file, with the same member paths findings use.
fn members(root: &Node) -> Vec<Member> {
    let mut out = Vec::new();
    let mut trail: Vec<&Node> = Vec::new();
    fn go<'n>(node: &'n Node, trail: &mut Vec<&'n Node>, out: &mut Vec<Member>) {
        for child in &node.children {
            trail.push(child);
            out.push(Member {
                name: modelgate_formats::member_path(trail),
                size: child.size,
                sha256: hex(&child.sha256),
                format: child.format.as_str(),
            });
            go(child, trail, out);
            trail.pop();
        }
    }
    go(root, &mut trail, &mut out);
    out
}
