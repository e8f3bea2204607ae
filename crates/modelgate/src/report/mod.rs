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
use modelgate_policy::{FailOn, Finding, Severity, Verdict};

/// Everything a report needs about one scan.
pub struct Run<'a> {
    pub artifacts: &'a [Artifact],
    pub fail_on: FailOn,
    pub verdict: Verdict,
    /// Signature checks required by the policy (`[[signatures]]`).
    pub signatures: &'a [crate::signatures::Outcome],
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
