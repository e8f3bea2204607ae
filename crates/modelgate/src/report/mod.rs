//! Reports. Each output format is its own module; all of them read the same [`Run`].

pub mod cyclonedx;
pub mod github;
pub mod gitlab;
pub mod json;
pub mod junit;
pub mod location;
pub mod sarif;
pub mod text;

use crate::run::Artifact;
use crate::walk::Skipped;
use modelgate_formats::stream::hex;
use modelgate_policy::{FailOn, Finding, Policy, Severity, Verdict};

/// Everything a report needs about one scan.
pub struct Run<'a> {
    pub artifacts: &'a [Artifact],
    pub fail_on: FailOn,
    pub verdict: Verdict,
    /// Signature checks required by the policy (`[[signatures]]`).
    pub signatures: &'a [crate::signatures::Outcome],
    /// What the walk left out on purpose.
    pub skipped: Skipped,
    /// Policy and lockfile entries that matched nothing that was scanned.
    pub unmatched: &'a [Unmatched],
}

/// A `[[signatures]]` or `[[suppress]]` entry of the policy, or a model of the lockfile, that
/// matched nothing that was scanned: the requirement it states was not checked this time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Unmatched {
    /// `signatures`, `suppress` or `pin`.
    pub table: &'static str,
    /// The entry's `path` as written.
    pub path: String,
    /// The file the entry is in.
    pub origin: String,
}

impl Unmatched {
    /// One line for the text summary.
    pub fn line(&self) -> String {
        let what = match self.table {
            "pin" => format!("the pinned model {:?} in {}", self.path, self.origin),
            table => format!("[[{table}]] path {:?} in {}", self.path, self.origin),
        };
        format!("modelgate: warning: {what} matched nothing that was scanned; it was not checked")
    }
}

/// The `[[signatures]]` tables that covered no model and the `[[suppress]]` entries that named no
/// scanned file.
pub fn unmatched_entries(
    policy: &Policy,
    artifacts: &[Artifact],
    signatures: &[crate::signatures::Outcome],
) -> Vec<Unmatched> {
    let origin = policy.source.clone().unwrap_or_else(|| "the policy".into());
    let mut out = Vec::new();
    for rule in &policy.signatures {
        if !signatures.iter().any(|o| rule.covers(&o.model)) {
            out.push(Unmatched { table: "signatures", path: rule.path.clone(), origin: origin.clone() });
        }
    }
    // Artifacts without content (a missing pinned file, a link) can carry suppressed findings too;
    // they have no digest to match.
    let files: Vec<(&str, String)> = artifacts
        .iter()
        .map(|a| (a.path.as_str(), if a.missing { String::new() } else { hex(&a.node.sha256) }))
        .collect();
    for s in &policy.suppressions {
        if !files.iter().any(|(path, sha)| s.matches_file(path, sha)) {
            out.push(Unmatched { table: "suppress", path: s.path.clone(), origin: origin.clone() });
        }
    }
    out
}

impl Run<'_> {
    fn active(&self) -> impl Iterator<Item = &Finding> {
        self.artifacts.iter().flat_map(|a| &a.findings).filter(|f| f.suppressed.is_none())
    }

    /// Findings per severity, most severe first (suppressed findings not counted).
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|s| (s, self.active().filter(|f| f.severity == s).count()))
    }

    /// Findings at or above the fail-on threshold (suppressed findings not counted).
    pub fn failing(&self) -> usize {
        self.active().filter(|f| self.fail_on.fails(f.severity)).count()
    }

    /// Findings a suppression accepted.
    pub fn suppressed(&self) -> usize {
        self.artifacts.iter().flat_map(|a| &a.findings).filter(|f| f.suppressed.is_some()).count()
    }

    /// Total bytes scanned.
    pub fn bytes(&self) -> u64 {
        self.artifacts.iter().map(|a| a.node.size).sum()
    }
}

/// One line of a rule's multi-line text.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
