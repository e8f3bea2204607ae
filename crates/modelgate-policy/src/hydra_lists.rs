//! The Hydra `_target_` lists (`data/hydra-targets.toml`) and the judgment of one target
//! against them. The formats crate reports every target it reads; this decides.

use serde::Deserialize;
use std::sync::OnceLock;

/// The lists as shipped.
pub const HYDRA_TARGETS_TOML: &str = include_str!("../data/hydra-targets.toml");

/// Allowed target prefixes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    /// Dotted prefixes (`nemo.`).
    pub prefixes: Vec<String>,
    /// Why.
    pub reason: String,
}

/// Denied parts of a dotted target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DenyEntry {
    /// Exact parts.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Part prefixes.
    #[serde(default)]
    pub part_prefixes: Vec<String>,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<AllowEntry>,
    #[serde(default)]
    deny: Vec<DenyEntry>,
}

/// The parsed lists.
#[derive(Debug, Default)]
pub struct HydraLists {
    allow: Vec<AllowEntry>,
    deny: Vec<DenyEntry>,
}

impl HydraLists {
    /// Parses and checks a list file.
    pub fn parse(text: &str) -> Result<HydraLists, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("hydra-targets.toml: {e}"))?;
        if file.allow.iter().any(|e| e.reason.trim().is_empty() || e.prefixes.is_empty())
            || file
                .deny
                .iter()
                .any(|e| e.reason.trim().is_empty() || (e.parts.is_empty() && e.part_prefixes.is_empty()))
        {
            return Err("hydra-targets.toml: every entry needs names and a reason".into());
        }
        Ok(HydraLists { allow: file.allow, deny: file.deny })
    }

    /// The shipped lists.
    pub fn builtin() -> &'static HydraLists {
        static LISTS: OnceLock<HydraLists> = OnceLock::new();
        LISTS.get_or_init(|| match HydraLists::parse(HYDRA_TARGETS_TOML) {
            Ok(l) => l,
            // The shipped data is checked by the test suite; a broken build must not pass silently.
            Err(e) => panic!("{e}"),
        })
    }

    /// Why a `_target_` value is not acceptable, or `None` if it is.
    pub fn problem(&self, target: &str) -> Option<String> {
        if target.is_empty() || target.starts_with(['|', '>', '*', '!', '[', '{']) {
            return Some(
                "cannot be read without a full YAML parser (block scalar, alias, tag or empty value)".into(),
            );
        }
        let parts: Vec<&str> = target.split('.').collect();
        let identifiers = parts.iter().all(|p| {
            let mut c = p.chars();
            c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        });
        if !identifiers {
            return Some("is not a dotted Python name".into());
        }
        for p in &parts {
            if let Some(e) = self.deny.iter().find(|e| {
                e.parts.iter().any(|d| d == p) || e.part_prefixes.iter().any(|d| p.starts_with(d.as_str()))
            }) {
                return Some(format!("reaches {p:?}: {}", e.reason.trim_end_matches('.')));
            }
        }
        if !self.allow.iter().any(|e| e.prefixes.iter().any(|pre| target.starts_with(pre.as_str()))) {
            let all: Vec<&str> =
                self.allow.iter().flat_map(|e| e.prefixes.iter().map(String::as_str)).collect();
            return Some(format!("is outside the allow-list ({})", all.join(" ")));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_judge_targets() {
        let l = HydraLists::parse(HYDRA_TARGETS_TOML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.problem("nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor"), None);
        assert_eq!(l.problem("torch.optim.AdamW"), None);
        for bad in [
            "os.system",
            "nemo.utils.os.system",
            "nemo.x.__builtins__",
            ">",
            "",
            "torch.optim.Adam W",
            "mylab.Model",
        ] {
            assert!(l.problem(bad).is_some(), "{bad}");
        }
        assert!(HydraLists::parse("[[allow]]\nprefixes = [\"x.\"]\nreason = \"\"\n").is_err());
    }
}
