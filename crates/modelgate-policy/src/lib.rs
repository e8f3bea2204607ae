//! Policy: turns a scan's neutral inventory into findings and a verdict.
//!
//! The [`Catalogue`] (`data/rules.toml`) defines every rule: a stable id, a default severity, and
//! the text that explains it. [`PickleLists`] holds the pickle allow-list and deny-list
//! (`data/pickle-allow.toml`, `data/pickle-deny.toml`), each entry with its reason; [`TemplateLists`]
//! the names chat templates may reach (`data/jinja-names.toml`). A [`Policy`]
//! is the built-in defaults plus a team's `modelgate.toml`. [`evaluate`] walks a scanned file's
//! inventory and produces [`Finding`]s; [`Verdict::of`] decides pass or fail. No code here reads
//! model bytes.

mod catalogue;
mod config;
mod evaluate;
pub mod hydra_lists;
pub mod paths;
pub mod pickle_lists;
pub mod pins;
mod severity;
pub mod signatures;
pub mod suppress;
pub mod template_lists;

pub use catalogue::{Catalogue, RULES_TOML, Rule, RuleId};
pub use config::{PathFilter, Policy, PolicyError, RuleSetting};
pub use evaluate::{Finding, Location, Suppressed, apply_suppressions, evaluate};
pub use pickle_lists::PickleLists;
pub use severity::{FailOn, Severity};
pub use template_lists::TemplateLists;

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No finding at or above the threshold.
    Pass,
    /// At least one finding at or above the threshold.
    Fail,
}

impl Verdict {
    /// The verdict for a set of findings under a threshold (suppressed findings do not count).
    pub fn of<'f>(findings: impl IntoIterator<Item = &'f Finding>, fail_on: FailOn) -> Verdict {
        if findings.into_iter().any(|f| f.suppressed.is_none() && fail_on.fails(f.severity)) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    /// `pass` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}
