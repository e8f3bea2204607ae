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

/// A policy file as read, each entry with the byte range it came from so that every error can
/// name its line and column. Each top-level key, each rule and each array entry is
/// deserialized on its own ([`read_policy_file`]), so one bad entry does not hide the next.
#[derive(Default)]
struct PolicyFile {
    fail_on: Option<FailOn>,
    require_pins: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    /// Where `include` and `exclude` were written.
    paths_at: Span,
    rules: Vec<(Span, String, RuleFile)>,
    allow: AllowFile,
    suppress: Vec<(Span, SuppressionFile)>,
    signatures: Vec<(Span, SignatureFile)>,
}

type Span = std::ops::Range<usize>;

/// Every problem found in one policy file, each as `origin:line:column: message`, in the order
/// of the file.
struct Diagnostics<'t> {
    text: &'t str,
    origin: &'t str,
    errors: Vec<(usize, String)>,
}

impl<'t> Diagnostics<'t> {
    fn new(text: &'t str, origin: &'t str) -> Self {
        Diagnostics { text, origin, errors: Vec::new() }
    }

    /// Records `message` at `span`. A message that already starts with the origin (the entry
    /// checks in `suppress.rs` and `signatures.rs` name it) keeps the rest.
    fn push(&mut self, span: &Span, message: impl std::fmt::Display) {
        let message = message.to_string();
        let prefix = format!("{}: ", self.origin);
        let message = message.strip_prefix(&prefix).unwrap_or(&message).trim_end().to_string();
        self.errors.push((span.start, message));
    }

    fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn finish<T>(self, value: T) -> Result<T, PolicyError> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        let mut errors = self.errors.clone();
        errors.sort_by_key(|(at, _)| *at);
        let lines: Vec<String> = errors
            .iter()
            .map(|(at, m)| {
                let (line, col) = self.line_col(*at);
                format!("{}:{line}:{col}: {m}", self.origin)
            })
            .collect();
        Err(PolicyError(lines.join("\n")))
    }
}

/// Deserializes one value, recording its error (with the most precise span the deserializer
/// gives) instead of stopping.
fn read_value<T: serde::de::DeserializeOwned>(
    value: toml::Spanned<toml::de::DeValue<'_>>,
    d: &mut Diagnostics<'_>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(toml::de::ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            d.push(&e.span().unwrap_or(span), e.message());
            None
        }
    }
}

/// An array of tables, entry by entry.
fn read_array<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Spanned<toml::de::DeValue<'_>>,
    d: &mut Diagnostics<'_>,
) -> Vec<(Span, T)> {
    let span = value.span();
    match value.into_inner() {
        toml::de::DeValue::Array(items) => items
            .iter()
            .cloned()
            .filter_map(|item| {
                let at = item.span();
                read_value(item, d).map(|v| (at, v))
            })
            .collect(),
        _ => {
            d.push(&span, format!("`{key}` must be an array of tables (`[[{key}]]`)"));
            Vec::new()
        }
    }
}

/// A table, key by key.
fn read_table<'i>(
    key: &str,
    value: toml::Spanned<toml::de::DeValue<'i>>,
    d: &mut Diagnostics<'_>,
) -> Vec<(Span, String, toml::Spanned<toml::de::DeValue<'i>>)> {
    let span = value.span();
    match value.into_inner() {
        toml::de::DeValue::Table(t) => {
            t.into_iter().map(|(k, v)| (k.span(), k.into_inner().into_owned(), v)).collect()
        }
        _ => {
            d.push(&span, format!("`{key}` must be a table"));
            Vec::new()
        }
    }
}

/// Reads a policy file, collecting every syntax and structure error.
fn read_policy_file(text: &str, d: &mut Diagnostics<'_>) -> PolicyFile {
    let (root, syntax) = toml::de::DeTable::parse_recoverable(text);
    for e in &syntax {
        d.push(&e.span().unwrap_or(0..0), e.message());
    }
    let mut file = PolicyFile::default();
    if !syntax.is_empty() {
        return file;
    }
    for (key, value) in root.into_inner() {
        let at = key.span();
        match key.as_ref().as_ref() {
            "fail-on" => file.fail_on = read_value(value, d),
            "require-pins" => file.require_pins = read_value(value, d).unwrap_or_default(),
            "include" => {
                file.paths_at = at;
                file.include = read_value(value, d).unwrap_or_default();
            }
            "exclude" => {
                file.paths_at = at;
                file.exclude = read_value(value, d).unwrap_or_default();
            }
            "rules" => {
                for (at, id, v) in read_table("rules", value, d) {
                    if let Some(r) = read_value(v, d) {
                        file.rules.push((at, id, r));
                    }
                }
            }
            "allow" => {
                for (at, kind, v) in read_table("allow", value, d) {
                    match kind.as_str() {
                        "pickle" => file.allow.pickle.extend(read_array("allow.pickle", v, d)),
                        "keras-module" => file.allow.keras_module.extend(read_array("allow.keras-module", v, d)),
                        "onnx-domain" => file.allow.onnx_domain.extend(read_array("allow.onnx-domain", v, d)),
                        "tf-op" => file.allow.tf_op.extend(read_array("allow.tf-op", v, d)),
                        other => d.push(
                            &at,
                            format!("unknown field `allow.{other}`, expected one of `pickle`, `keras-module`, `onnx-domain`, `tf-op`"),
                        ),
                    }
                }
            }
            "suppress" => file.suppress = read_array("suppress", value, d),
            "signatures" => file.signatures = read_array("signatures", value, d),
            other => d.push(
                &at,
                format!(
                    "unknown field `{other}`, expected one of `fail-on`, `require-pins`, `include`, `exclude`, `rules`, `allow`, `suppress`, `signatures`"
                ),
            ),
        }
    }
    file
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

/// `[[allow.*]]` entries, each with where it was written.
#[derive(Default)]
struct AllowFile {
    pickle: Vec<(Span, PickleAllowFile)>,
    keras_module: Vec<(Span, NamedAllowFile)>,
    onnx_domain: Vec<(Span, NamedAllowFile)>,
    tf_op: Vec<(Span, NamedAllowFile)>,
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

    /// Parses policy text (`origin` names it in errors). Every error in the file is reported at
    /// once, one per line, each as `origin:line:column: message`.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let mut d = Diagnostics::new(text, origin);
        let file = read_policy_file(text, &mut d);
        let mut policy = Policy::builtin()?;
        policy.source = Some(origin.to_string());
        if let Some(fail_on) = file.fail_on {
            policy.fail_on = fail_on;
        }
        policy.require_pins = file.require_pins;
        match PathFilter::new(&file.include, &file.exclude, origin) {
            Ok(paths) => policy.paths = paths,
            Err(e) => d.push(&file.paths_at, e),
        }
        let catalogue = Catalogue::builtin();
        for (at, raw) in file.suppress {
            let Some(rule) = catalogue.find(&raw.rule) else {
                d.push(
                    &at,
                    format!("[[suppress]] rule {:?}: no such rule (see `modelgate explain`)", raw.rule),
                );
                continue;
            };
            let id = rule.id.clone();
            match Suppression::from_file(raw, id, origin) {
                Ok(s) => policy.suppressions.push(s),
                Err(e) => d.push(&at, e),
            }
        }
        for (at, raw) in file.signatures {
            match SignatureRule::from_file(raw, origin) {
                Ok(s) => policy.signatures.push(s),
                Err(e) => d.push(&at, e),
            }
        }
        for (kind, entries) in [
            ("keras-module", file.allow.keras_module),
            ("onnx-domain", file.allow.onnx_domain),
            ("tf-op", file.allow.tf_op),
        ] {
            for (at, e) in entries {
                if e.reason.trim().is_empty() || e.name.trim().is_empty() {
                    d.push(&at, format!("[[allow.{kind}]] entries need a `name` and a `reason`"));
                    continue;
                }
                if kind == "keras-module" && policy.pickle.is_denied_module(&e.name) {
                    d.push(
                        &at,
                        format!(
                            "[[allow.keras-module]] {:?} is denied (see pickle-deny.toml); it cannot be trusted",
                            e.name
                        ),
                    );
                    continue;
                }
                policy.extra_names.entry(kind).or_default().push((e.name, e.reason));
            }
        }
        for (at, key, setting) in file.rules {
            let Some(rule) = catalogue.find(&key) else {
                d.push(&at, format!("[rules.{key}]: no such rule (see `modelgate explain`)"));
                continue;
            };
            let reason = setting.reason.filter(|r| !r.trim().is_empty());
            let enabled = setting.enabled.unwrap_or(true);
            if reason.is_none() && (!enabled || setting.severity.is_some_and(|s| s < rule.severity)) {
                d.push(
                    &at,
                    format!("[rules.{key}]: switching a rule off or lowering its severity needs a `reason`"),
                );
                continue;
            }
            policy.rules.insert(rule.id.clone(), RuleSetting { severity: setting.severity, enabled, reason });
        }
        for (at, allow) in file.allow.pickle {
            if let Err(why) = policy.add_pickle_trust(allow) {
                d.push(&at, why);
            }
        }
        d.finish(policy)
    }

    /// One `[[allow.pickle]]` entry: trust added for a global or a module that the built-in
    /// lists leave unlisted — never for a denied one.
    fn add_pickle_trust(&mut self, allow: PickleAllowFile) -> Result<(), String> {
        if allow.reason.trim().is_empty() {
            return Err("[[allow.pickle]] entries need a `reason`".into());
        }
        match (allow.global, allow.module) {
            (Some(global), None) => {
                if !global.contains('.') {
                    return Err(format!("[[allow.pickle]] global {global:?} must be module.name"));
                }
                // However the string splits into module and name, it must not reach a denied object.
                let dots: Vec<usize> = global.match_indices('.').map(|(i, _)| i).collect();
                let denied = dots.iter().any(|&i| {
                    matches!(
                        self.pickle.classify(&global[..i], &global[i + 1..], "pickle"),
                        Class::Denied(_) | Class::Traversal { .. }
                    )
                });
                if denied {
                    return Err(format!(
                        "[[allow.pickle]] {global} is on the deny-list; allow-list additions cannot trust it (override rule MG101 with a reason if you must)"
                    ));
                }
                self.extra_globals.insert(global, allow.reason);
            }
            (None, Some(module)) => {
                if matches!(self.pickle.classify(&module, "x", "pickle"), Class::Denied(_)) {
                    return Err(format!(
                        "[[allow.pickle]] module {module} is on the deny-list; allow-list additions cannot trust it"
                    ));
                }
                self.extra_modules.push((module, allow.reason));
            }
            _ => return Err("[[allow.pickle]] entries need exactly one of `global` or `module`".into()),
        }
        Ok(())
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
        assert!(err.starts_with("p.toml:2:1: ") && err.contains("fail_onn"), "{err}");
        let err = Policy::parse("fail-on = \"severe\"\n", "p.toml").unwrap_err().0;
        assert!(err.contains("severe"), "{err}");
        let err = Policy::parse("[rules.MG999]\nseverity = \"low\"\n", "p.toml").unwrap_err().0;
        assert!(err.contains("MG999"), "{err}");
    }

    /// Every error of a file at once, in file order, each with its line and column: a user fixes
    /// them in one pass instead of one run per mistake.
    #[test]
    fn every_error_is_reported_with_its_line_and_column() {
        let text = "fail-on = \"severe\"\n\
                    colour = true\n\
                    [rules.MG999]\n\
                    severity = \"low\"\n\
                    [rules.MG102]\n\
                    severity = \"low\"\n\
                    [[allow.pickle]]\n\
                    global = \"os.system\"\n\
                    reason = \"no\"\n\
                    [[allow.pickle]]\n\
                    global = \"mylab.Net\"\n\
                    [[suppress]]\n\
                    rule = \"MG101\"\n\
                    path = \"a.pt\"\n\
                    reason = \"\"\n";
        let err = Policy::parse(text, "p.toml").unwrap_err().0;
        let lines: Vec<&str> = err.lines().collect();
        let at: Vec<String> =
            lines.iter().map(|l| l.splitn(4, ':').take(3).collect::<Vec<_>>().join(":")).collect();
        assert_eq!(
            at,
            [
                "p.toml:1:11",
                "p.toml:2:1",
                "p.toml:3:8",
                "p.toml:5:8",
                "p.toml:7:1",
                "p.toml:10:1",
                "p.toml:12:1"
            ],
            "{err}"
        );
        assert!(lines[0].contains("severe"), "{err}");
        assert!(lines[1].contains("colour"), "{err}");
        assert!(lines[2].contains("MG999"), "{err}");
        assert!(lines[3].contains("needs a `reason`"), "{err}");
        assert!(lines[4].contains("deny-list"), "{err}");
        assert!(lines[5].contains("reason"), "{err}");
        assert!(lines[6].contains("suppression needs a `reason`"), "{err}");
        // A syntax error stops at the syntax: structure is not judged on a file that did not parse.
        let err = Policy::parse("fail-on = \n[rules\n", "p.toml").unwrap_err().0;
        assert!(err.starts_with("p.toml:1:"), "{err}");
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
