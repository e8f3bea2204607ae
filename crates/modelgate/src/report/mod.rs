//! Reports. Each output format is its own module; all of them read the same [`Run`].

pub mod json;
pub mod text;

use crate::run::Artifact;
use modelgate_policy::{FailOn, Severity, Verdict};

/// Everything a report needs about one scan.
pub struct Run<'a> {
    pub artifacts: &'a [Artifact],
    pub fail_on: FailOn,
    pub verdict: Verdict,
}

impl Run<'_> {
    /// Findings per severity, most severe first.
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|s| {
            (
                s,
                self.artifacts
                    .iter()
                    .flat_map(|a| &a.findings)
                    .filter(|f| f.severity == s)
                    .count(),
            )
        })
    }

    /// Findings at or above the fail-on threshold.
    pub fn failing(&self) -> usize {
        self.artifacts
            .iter()
            .flat_map(|a| &a.findings)
            .filter(|f| self.fail_on.fails(f.severity))
            .count()
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
