//! The policy: the built-in defaults plus what a team's `modelgate.toml` changes.
//!
//! A policy can raise or lower a rule's severity, switch a rule off (only with a written reason),
//! move the fail-on threshold, and add trust for named pickle globals. It can never make a
//! denied global acceptable: that takes an explicit, reasoned override of the rule itself.

use crate::catalogue::Catalogue;
use crate::paths::Base;
use crate::pickle_lists::{Class, PickleLists};
use crate::signatures::{SignatureFile, SignatureRule};
use crate::suppress::{Suppression, SuppressionFile};
use crate::{FailOn, Severity};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A policy that cannot be used. The message names the file, key and line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// What the policy says about one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetting {
    /// Replacement severity.
    pub severity: Option<Severity>,
    /// False switches the rule off.
    pub enabled: bool,
    /// Why the default was changed.
    pub reason: Option<String>,
}

/// The effective policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The fail-on threshold.
    pub fail_on: FailOn,
    /// Per-rule settings, by rule id.
    pub rules: HashMap<String, RuleSetting>,
    /// The pickle lists (built-in plus additions).
    pub pickle: PickleLists,
    /// Globals the policy file added trust for: exact `module.name` strings.
    pub extra_globals: HashMap<String, String>,
    /// Module prefixes the policy file added trust for.
    pub extra_modules: Vec<(String, String)>,
    /// Other names the policy file trusts, by kind (`keras-module`, `onnx-domain`, `tf-op`):
    /// (name, reason).
    pub extra_names: BTreeMap<&'static str, Vec<(String, String)>>,
    /// Fail on any file that the lockfile does not pin exactly (like `scan --locked`).
    pub require_pins: bool,
    /// Which paths are scanned (gitignore-style patterns): `include` (default everything) minus
    /// `exclude`.
    pub paths: PathFilter,
    /// Accepted findings.
    pub suppressions: Vec<Suppression>,
    /// Models that must be signed, and by whom (`[[signatures]]`).
    pub signatures: Vec<SignatureRule>,
    /// Where the policy came from (for messages), `None` for the built-in default.
    pub source: Option<String>,
    /// The policy file read from disk, if any: its directory is the base of every path the policy
    /// matches ([`Policy::base`]).
    pub file: Option<PathBuf>,
}

/// `include`/`exclude` patterns with gitignore semantics, matched against canonical keys
/// ([`crate::paths`]): relative to the policy's base directory.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Option<Gitignore>,
    exclude: Option<Gitignore>,
    /// The patterns as written.
    pub patterns: (Vec<String>, Vec<String>),
}

impl PathFilter {
    fn new(include: &[String], exclude: &[String], origin: &str) -> Result<PathFilter, PolicyError> {
        let build = |key: &str, patterns: &[String]| -> Result<Option<Gitignore>, PolicyError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut b = GitignoreBuilder::new("");
            for p in patterns {
                b.add_line(None, p)
                    .map_err(|e| PolicyError(format!("{origin}: {key}: bad pattern {p:?}: {e}")))?;
            }
            b.build().map(Some).map_err(|e| PolicyError(format!("{origin}: {key}: {e}")))
        };
        Ok(PathFilter {
            include: build("include", include)?,
            exclude: build("exclude", exclude)?,
            patterns: (include.to_vec(), exclude.to_vec()),
        })
    }

    /// True if a file (or, with `is_dir`, a directory) at this `/`-separated relative path is
    /// scanned. Directories are only pruned by `exclude`; `include` decides per file.
    pub fn includes(&self, path: &str, is_dir: bool) -> bool {
        // A path outside the base is absolute: patterns without a `/` (`*.tmp`) still apply to
        // it; anchored ones cannot match it.
        let path = path.trim_start_matches('/');
        if self.exclude.as_ref().is_some_and(|g| g.matched_path_or_any_parents(path, is_dir).is_ignore()) {
            return false;
        }
        is_dir || self.include.as_ref().is_none_or(|g| g.matched_path_or_any_parents(path, false).is_ignore())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    #[serde(default)]
    fail_on: Option<FailOn>,
    #[serde(default)]
    require_pins: bool,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    rules: BTreeMap<String, RuleFile>,
    #[serde(default)]
    allow: AllowFile,
    #[serde(default)]
    suppress: Vec<SuppressionFile>,
    #[serde(default)]
    signatures: Vec<SignatureFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AllowFile {
    #[serde(default)]
    pickle: Vec<PickleAllowFile>,
    #[serde(default)]
    keras_module: Vec<NamedAllowFile>,
    #[serde(default)]
    onnx_domain: Vec<NamedAllowFile>,
    #[serde(default)]
    tf_op: Vec<NamedAllowFile>,
}

/// `[[allow.keras-module]] name = "…"`, and the like: trust for one named thing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedAllowFile {
    name: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PickleAllowFile {
    #[serde(default)]
    global: Option<String>,
    #[serde(default)]
    module: Option<String>,
    reason: String,
}

impl Policy {
    /// The built-in default policy.
    pub fn builtin() -> Result<Policy, PolicyError> {
        Ok(Policy {
            fail_on: FailOn::default(),
            rules: HashMap::new(),
            pickle: PickleLists::builtin().map_err(PolicyError)?,
            extra_globals: HashMap::new(),
            extra_modules: Vec::new(),
            extra_names: BTreeMap::new(),
            require_pins: false,
            paths: PathFilter::default(),
            suppressions: Vec::new(),
            signatures: Vec::new(),
            source: None,
            file: None,
        })
    }

    /// Reads a policy file on top of the defaults.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read policy {}: {e}", path.display())))?;
        let mut policy = Policy::parse(&text, &path.display().to_string())?;
        policy.file = Some(path.to_path_buf());
        Ok(policy)
    }

    /// The directory every path in the policy is relative to: the policy file's directory, else
    /// the working directory.
    pub fn base(&self) -> Base {
        match &self.file {
            Some(f) => Base::of_file(f),
            None => Base::cwd(),
        }
    }

    /// Parses policy text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text)
            .map_err(|e| PolicyError(format!("{origin}: {}", e.to_string().trim_end())))?;
        let mut policy = Policy::builtin()?;
        policy.source = Some(origin.to_string());
        if let Some(fail_on) = file.fail_on {
            policy.fail_on = fail_on;
        }
        policy.require_pins = file.require_pins;
        policy.paths = PathFilter::new(&file.include, &file.exclude, origin)?;
        let catalogue = Catalogue::builtin();
        for raw in file.suppress {
            let Some(rule) = catalogue.find(&raw.rule) else {
                return Err(PolicyError(format!(
                    "{origin}: [[suppress]] rule {:?}: no such rule (see `modelgate explain`)",
                    raw.rule
                )));
            };
            let id = rule.id.clone();
            policy.suppressions.push(Suppression::from_file(raw, id, origin)?);
        }
        for raw in file.signatures {
            policy.signatures.push(SignatureRule::from_file(raw, origin)?);
        }
        for (kind, entries) in [
            ("keras-module", file.allow.keras_module),
            ("onnx-domain", file.allow.onnx_domain),
            ("tf-op", file.allow.tf_op),
        ] {
            for e in entries {
                if e.reason.trim().is_empty() || e.name.trim().is_empty() {
                    return Err(PolicyError(format!(
                        "{origin}: [[allow.{kind}]] entries need a `name` and a `reason`"
                    )));
                }
                if kind == "keras-module" && policy.pickle.is_denied_module(&e.name) {
                    return Err(PolicyError(format!(
                        "{origin}: [[allow.keras-module]] {:?} is denied (see pickle-deny.toml); it cannot be trusted",
                        e.name
                    )));
                }
                policy.extra_names.entry(kind).or_default().push((e.name, e.reason));
            }
        }
        for (key, setting) in file.rules {
            let Some(rule) = catalogue.find(&key) else {
                return Err(PolicyError(format!(
                    "{origin}: [rules.{key}]: no such rule (see `modelgate explain`)"
                )));
            };
            let reason = setting.reason.filter(|r| !r.trim().is_empty());
            let enabled = setting.enabled.unwrap_or(true);
            if reason.is_none() && (!enabled || setting.severity.is_some_and(|s| s < rule.severity)) {
                return Err(PolicyError(format!(
                    "{origin}: [rules.{key}]: switching a rule off or lowering its severity needs a `reason`"
                )));
            }
            policy.rules.insert(rule.id.clone(), RuleSetting { severity: setting.severity, enabled, reason });
        }
        for allow in file.allow.pickle {
            if allow.reason.trim().is_empty() {
                return Err(PolicyError(format!("{origin}: [[allow.pickle]] entries need a `reason`")));
            }
            match (allow.global, allow.module) {
                (Some(global), None) => {
                    if !global.contains('.') {
                        return Err(PolicyError(format!(
                            "{origin}: [[allow.pickle]] global {global:?} must be module.name"
                        )));
                    }
                    // However the string splits into module and name, it must not reach a denied object.
                    let dots: Vec<usize> = global.match_indices('.').map(|(i, _)| i).collect();
                    let denied = dots.iter().any(|&i| {
                        matches!(
                            policy.pickle.classify(&global[..i], &global[i + 1..], "pickle"),
                            Class::Denied(_) | Class::Traversal { .. }
                        )
                    });
                    if denied {
                        return Err(PolicyError(format!(
                            "{origin}: [[allow.pickle]] {global} is on the deny-list; allow-list additions cannot trust it (override rule MG101 with a reason if you must)"
                        )));
                    }
                    policy.extra_globals.insert(global, allow.reason);
                }
                (None, Some(module)) => {
                    if matches!(policy.pickle.classify(&module, "x", "pickle"), Class::Denied(_)) {
                        return Err(PolicyError(format!(
                            "{origin}: [[allow.pickle]] module {module} is on the deny-list; allow-list additions cannot trust it"
                        )));
                    }
                    policy.extra_modules.push((module, allow.reason));
                }
                _ => {
                    return Err(PolicyError(format!(
                        "{origin}: [[allow.pickle]] entries need exactly one of `global` or `module`"
                    )));
                }
            }
        }
        Ok(policy)
    }

    /// The policy file's reason for trusting a global, if it adds trust for it. Only globals the
    /// built-in lists leave unlisted can be trusted this way; the evaluator never asks for denied
    /// or traversing names.
    pub fn extra_trust(&self, module: &str, name: &str) -> Option<&str> {
        let qualified = format!("{module}.{name}");
        if let Some(reason) = self.extra_globals.get(&qualified) {
            return Some(reason);
        }
        self.extra_modules
            .iter()
            .find(|(m, _)| {
                module == m || module.strip_prefix(m.as_str()).is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, reason)| reason.as_str())
    }

    /// The policy file's reason for trusting a named thing of a kind (`keras-module`,
    /// `onnx-domain`, `tf-op`).
    pub fn trusts(&self, kind: &str, name: &str) -> Option<&str> {
        self.extra_names.get(kind)?.iter().find(|(n, _)| n == name).map(|(_, r)| r.as_str())
    }

    /// The effective severity of a rule, or `None` if the policy switched it off.
    pub fn severity_of(&self, rule_id: &str, default: Severity) -> Option<Severity> {
        match self.rules.get(rule_id) {
            Some(s) if !s.enabled => None,
            Some(s) => Some(s.severity.unwrap_or(default)),
            None => Some(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let err = Policy::parse("fail-on = \"high\"\nfail_onn = \"low\"\n", "p.toml").unwrap_err().0;
        assert!(err.contains("p.toml") && err.contains("line 2") && err.contains("fail_onn"), "{err}");
        let err = Policy::parse("fail-on = \"severe\"\n", "p.toml").unwrap_err().0;
        assert!(err.contains("severe"), "{err}");
        let err = Policy::parse("[rules.MG999]\nseverity = \"low\"\n", "p.toml").unwrap_err().0;
        assert!(err.contains("MG999"), "{err}");
    }

    #[test]
    fn weakening_needs_a_reason() {
        assert!(Policy::parse("[rules.MG301]\nenabled = false\n", "p").is_err());
        assert!(Policy::parse("[rules.MG102]\nseverity = \"low\"\n", "p").is_err());
        let p = Policy::parse("[rules.MG301]\nenabled = false\nreason = \"our own TorchScript\"\n[rules.MG003]\nseverity = \"high\"\n", "p").unwrap();
        assert_eq!(p.severity_of("MG301", Severity::Medium), None);
        assert_eq!(p.severity_of("MG003", Severity::Low), Some(Severity::High));
    }

    #[test]
    fn paths_suppressions_and_pins() {
        let p = Policy::parse(
            r#"
require-pins = true
include = ["models/"]
exclude = ["*.md", "models/tmp/"]

[[suppress]]
rule = "torchscript-code"
path = "models/**/*.pt"
reason = "our own TorchScript exports"
expires = 2099-12-31

[[suppress]]
rule = "MG102"
path = "models/a.pkl"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
reason = "reviewed on 2026-11-01"
expires = "2000-01-01"

[[allow.onnx-domain]]
name = "com.mycompany"
reason = "our kernels, shipped with the runtime image"
"#,
            "p",
        )
        .unwrap();
        assert!(p.require_pins);
        assert!(p.paths.includes("models/x.pt", false));
        assert!(!p.paths.includes("models/README.md", false));
        assert!(!p.paths.includes("models/tmp/x.pt", false));
        assert!(!p.paths.includes("data/x.pt", false));
        assert!(p.paths.includes("models", true));
        assert_eq!(p.suppressions.len(), 2);
        assert_eq!(p.suppressions[0].rule, "MG301");
        assert!(p.suppressions[0].covers("MG301", "models/v1/net.pt", "ab"));
        assert!(!p.suppressions[0].covers("MG301", "other/net.pt", "ab"));
        assert!(!p.suppressions[1].covers("MG102", "models/a.pkl", "ff"));
        assert!(p.suppressions[1].expired(crate::suppress::Date::today()));
        assert!(p.trusts("onnx-domain", "com.mycompany").is_some());
        assert!(Policy::parse("[[suppress]]\nrule = \"MG102\"\npath = \"x\"\n", "p").is_err());
        assert!(
            Policy::parse("[[suppress]]\nrule = \"MG999\"\npath = \"x\"\nreason = \"r\"\n", "p").is_err()
        );
        assert!(
            Policy::parse(
                "[[suppress]]\nrule = \"MG102\"\npath = \"x\"\nreason = \"r\"\nexpires = \"soon\"\n",
                "p"
            )
            .is_err()
        );
    }

    #[test]
    fn allow_additions_cannot_trust_denied_globals() {
        let p = Policy::parse(
            "[[allow.pickle]]\nglobal = \"mypkg.models.Net\"\nreason = \"our model class\"\n",
            "p",
        )
        .unwrap();
        assert!(p.extra_trust("mypkg.models", "Net").is_some());
        assert!(p.extra_trust("mypkg.models", "Other").is_none());
        assert!(Policy::parse("[[allow.pickle]]\nglobal = \"os.system\"\nreason = \"no\"\n", "p").is_err());
        assert!(
            Policy::parse("[[allow.pickle]]\nglobal = \"pathlib.os.system\"\nreason = \"no\"\n", "p")
                .is_err()
        );
    }
}
