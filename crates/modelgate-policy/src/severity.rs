//! Severities and the fail-on threshold.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never a problem by itself.
    Info,
    /// Unusual, low risk.
    Low,
    /// Needs a look.
    Medium,
    /// The model cannot be vouched for (the default threshold).
    High,
    /// Loading the model runs attacker-controlled code or equivalent.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        match s {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => {
                Err(format!("unknown severity {other:?} (expected critical, high, medium, low or info)"))
            }
        }
    }
}

/// The severity at or above which a finding fails the gate, or `None` to never fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FailOn {
    /// Fail on findings at or above this severity.
    AtLeast(Severity),
    /// Never fail (report only).
    Never,
}

impl Default for FailOn {
    fn default() -> FailOn {
        FailOn::AtLeast(Severity::High)
    }
}

impl FailOn {
    /// True if a finding of this severity fails the gate.
    pub fn fails(self, severity: Severity) -> bool {
        match self {
            FailOn::AtLeast(threshold) => severity >= threshold,
            FailOn::Never => false,
        }
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailOn::AtLeast(s) => s.fmt(f),
            FailOn::Never => f.write_str("none"),
        }
    }
}

impl FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<FailOn, String> {
        match s {
            "none" => Ok(FailOn::Never),
            other => other.parse::<Severity>().map(FailOn::AtLeast).map_err(|_| {
                format!(
                    "unknown fail-on level {other:?} (expected critical, high, medium, low, info or none)"
                )
            }),
        }
    }
}

impl TryFrom<String> for FailOn {
    type Error = String;
    fn try_from(s: String) -> Result<FailOn, String> {
        s.parse()
    }
}

impl From<FailOn> for String {
    fn from(f: FailOn) -> String {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_thresholds() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        let high: FailOn = "high".parse().unwrap();
        assert!(
            high.fails(Severity::Critical) && high.fails(Severity::High) && !high.fails(Severity::Medium)
        );
        assert!(!"none".parse::<FailOn>().unwrap().fails(Severity::Critical));
        assert!("severe".parse::<FailOn>().is_err());
    }
}
