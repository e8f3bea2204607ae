//! GitLab reports: Code Quality (`--gitlab-codequality`, every tier) and SAST
//! (`--gitlab-sast`, Ultimate; security-report schema 15.x). Paths are relative to the repository
//! root (`CI_PROJECT_DIR`; see [`super::location`]).

use super::location::Locator;
use super::sarif::fingerprints;
use super::{Run, one_line};
use modelgate_formats::stream::hex;
use modelgate_policy::Severity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The security-report schema version the SAST report declares.
pub const SAST_SCHEMA_VERSION: &str = "15.2.1";

fn codequality_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "blocker",
        Severity::High => "critical",
        Severity::Medium => "major",
        Severity::Low => "minor",
        Severity::Info => "info",
    }
}

/// Code Quality JSON: one issue per unsuppressed finding.
pub fn codequality(run: &Run<'_>) -> String {
    let mut issues = Vec::new();
    let locator = Locator::from_env();
    for a in run.artifacts {
        let digest = if a.missing { String::new() } else { hex(&a.node.sha256) };
        let at = locator.place(&a.path);
        let prints = fingerprints(&a.findings, at.path(), &digest);
        for (f, print) in a.findings.iter().zip(prints).filter(|(f, _)| f.suppressed.is_none()) {
            let place = f.location.member.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default();
            issues.push(json!({
                "description": format!("{} {}: {}{place}", f.rule.id, f.rule.name, f.message),
                "check_name": f.rule.id,
                "fingerprint": print,
                "severity": codequality_severity(f.severity),
                "location": { "path": at.path(), "lines": { "begin": 1 } },
                "categories": ["Security"],
            }));
        }
    }
    let mut out = serde_json::to_string_pretty(&Value::Array(issues)).unwrap_or_default();
    out.push('\n');
    out
}

fn sast_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Info",
    }
}

/// A UUID (version-4 layout) derived from a key, so reports are deterministic.
pub fn uuid_from(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hexed: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hexed[..8], &hexed[8..12], &hexed[12..16], &hexed[16..20], &hexed[20..])
}

/// The SAST report. `start`/`end` are `YYYY-MM-DDTHH:MM:SS` (UTC, no zone, as the schema wants).
pub fn sast(run: &Run<'_>, start: &str, end: &str) -> String {
    let mut vulnerabilities = Vec::new();
    let locator = Locator::from_env();
    for a in run.artifacts {
        let digest = if a.missing { String::new() } else { hex(&a.node.sha256) };
        let at = locator.place(&a.path);
        let prints = fingerprints(&a.findings, at.path(), &digest);
        for (f, fp) in a.findings.iter().zip(prints).filter(|(f, _)| f.suppressed.is_none()) {
            let place = f.location.member.as_ref().map(|m| format!(" (member {m})")).unwrap_or_default();
            let mut identifiers = vec![json!({
                "type": "modelgate_rule",
                "name": format!("{} {}", f.rule.id, f.rule.name),
                "value": f.rule.id,
            })];
            if let Some(cwe) = f.rule.cwe {
                identifiers.push(json!({
                    "type": "cwe",
                    "name": format!("CWE-{cwe}"),
                    "value": cwe.to_string(),
                    "url": format!("https://cwe.mitre.org/data/definitions/{cwe}.html"),
                }));
            }
            vulnerabilities.push(json!({
                "id": uuid_from(&fp),
                "name": f.rule.summary,
                "description": format!("{}{place}. {}", f.message, one_line(&f.rule.why)),
                "severity": sast_severity(f.severity),
                "solution": one_line(&f.rule.fix),
                "location": { "file": at.path(), "start_line": 1, "end_line": 1 },
                "identifiers": identifiers,
            }));
        }
    }
    let analyzer = json!({
        "id": "modelgate",
        "name": "modelgate",
        "version": env!("CARGO_PKG_VERSION"),
        "vendor": { "name": "modelgate" },
        "url": env!("CARGO_PKG_REPOSITORY"),
    });
    let report = json!({
        "version": SAST_SCHEMA_VERSION,
        "schema": format!("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v{SAST_SCHEMA_VERSION}/dist/sast-report-format.json"),
        "scan": {
            "analyzer": analyzer,
            "scanner": analyzer,
            "type": "sast",
            "start_time": start,
            "end_time": end,
            "status": "success",
        },
        "vulnerabilities": vulnerabilities,
    });
    let mut out = serde_json::to_string_pretty(&report).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let u = uuid_from("x");
        assert_eq!(u, uuid_from("x"));
        assert_ne!(u, uuid_from("y"));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
