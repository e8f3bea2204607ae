//! Inventory in, findings out. This is the only place where an observation becomes a finding.

use crate::Severity;
use crate::catalogue::{Catalogue, Rule, RuleId};
use crate::config::Policy;
use crate::pickle_lists::Class;
use crate::suppress::Date;
use modelgate_formats::pickle::{Callee, PickleInventory};
use modelgate_formats::{Format, Node, Note, NoteKind, Relation};
use serde::Serialize;

/// Where a finding is: the archive member (nested members joined with `!`) and the byte offset
/// within it. The file itself is the artifact the finding belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// Member path inside the file; `None` for the file itself.
    pub member: Option<String>,
    /// Offset within the member (or file), where known.
    pub offset: Option<u64>,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule.
    pub rule: &'static Rule,
    /// Effective severity (after policy overrides).
    pub severity: Severity,
    /// What exactly was found, in one line.
    pub message: String,
    /// Where.
    pub location: Location,
    /// The exact thing seen (a global, a member name).
    pub evidence: Option<String>,
    /// Set when a suppression in the policy accepts this finding: it stays in reports but no
    /// longer counts towards the verdict.
    pub suppressed: Option<Suppressed>,
}

/// Why a finding is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// The suppression's reason.
    pub reason: String,
    /// Its expiry date, if it has one.
    pub expires: Option<Date>,
}

impl Finding {
    /// A finding of a policy-level rule (pins, suppressions), at the file level.
    pub fn policy(
        rule_id: RuleId,
        policy: &Policy,
        message: String,
        evidence: Option<String>,
    ) -> Option<Finding> {
        let rule = Catalogue::builtin().get(rule_id);
        let severity = policy.severity_of(&rule.id, rule.severity)?;
        Some(Finding {
            rule,
            severity,
            message,
            location: Location { member: None, offset: None },
            evidence,
            suppressed: None,
        })
    }
}

/// Marks the findings of one file that a live suppression covers, and adds a finding for each
/// expired suppression that names the file (the findings it covered count again).
pub fn apply_suppressions(
    findings: &mut Vec<Finding>,
    path: &str,
    sha256: &str,
    policy: &Policy,
    today: Date,
) {
    for f in findings.iter_mut() {
        if let Some(s) =
            policy.suppressions.iter().find(|s| !s.expired(today) && s.covers(&f.rule.id, path, sha256))
        {
            f.suppressed = Some(Suppressed { reason: s.reason.clone(), expires: s.expires });
        }
    }
    for s in policy.suppressions.iter().filter(|s| s.expired(today) && s.matches_file(path, sha256)) {
        let expired = s.expires.map(|d| d.to_string()).unwrap_or_default();
        let message = format!(
            "the suppression of {} for {:?} (\"{}\") expired on {expired}; what it covered is reported again",
            s.rule,
            s.path,
            one_line(&s.reason)
        );
        if let Some(f) = Finding::policy(
            RuleId::SuppressionExpired,
            policy,
            message,
            Some(format!("{} {}", s.rule, s.path)),
        ) {
            findings.push(f);
        }
    }
}

/// "Named like a model" has one definition, beside the formats' (the content still decides the
/// format; a name only makes an unknown file stricter, never laxer).
fn looks_like_model(name: &str) -> bool {
    modelgate_formats::inventory::is_model_name(name)
}

/// `data/unknown-binary-names.toml`: the names under which an unrecognised binary is judged as a
/// model (MG002) — wrappers that loaders open by name. The one place, with the model extensions,
/// that decides an unknown binary's severity.
pub const UNKNOWN_BINARY_NAMES_TOML: &str = include_str!("../data/unknown-binary-names.toml");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnknownBinaryNames {
    name: Vec<UnknownBinaryName>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnknownBinaryName {
    suffix: String,
    #[allow(dead_code)] // Read by people and checked to be present by a test.
    reason: String,
}

fn unknown_binary_suffixes() -> &'static [String] {
    static SUFFIXES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SUFFIXES.get_or_init(|| match toml::from_str::<UnknownBinaryNames>(UNKNOWN_BINARY_NAMES_TOML) {
        Ok(list) => list.name.into_iter().map(|n| n.suffix.to_ascii_lowercase()).collect(),
        // The shipped data is checked by the test suite; a broken build must not pass silently.
        Err(e) => panic!("data/unknown-binary-names.toml: {e}"),
    })
}

/// An unrecognised binary under this name counts as a model (MG002, high): a model extension,
/// or a name a loader opens as a wrapper (`data/unknown-binary-names.toml`).
fn unknown_binary_is_model(name: &str) -> bool {
    let file = name.rsplit(['/', '\\', '!']).next().unwrap_or(name).to_ascii_lowercase();
    looks_like_model(&file) || unknown_binary_suffixes().iter().any(|s| file.ends_with(s.as_str()))
}

/// Evaluates one scanned file (`path` as it will be reported) against the policy.
pub fn evaluate(root: &Node, path: &str, policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut trail = Vec::new();
    visit(root, path, policy, &mut trail, &mut out);
    out.sort_by(|a, b| {
        (&a.location, a.rule.id.as_str(), &a.message).cmp(&(&b.location, b.rule.id.as_str(), &b.message))
    });
    out
}

fn visit<'n>(node: &'n Node, path: &str, policy: &Policy, trail: &mut Vec<&'n Node>, out: &mut Vec<Finding>) {
    let member = member_path(trail);
    let named = trail
        .iter()
        .rev()
        .find(|n| n.relation == Some(Relation::Member))
        .map(|n| n.name.as_str())
        .unwrap_or(path);
    let catalogue = Catalogue::builtin();
    let notes = &node.notes;
    for note in notes.iter().filter(|n| !trusted_by_policy(n, policy)) {
        if note.kind == NoteKind::TemplateName {
            template_finding(note, policy, &member, out);
            continue;
        }
        if note.kind == NoteKind::HydraTarget {
            // Every `_target_` read is reported; `data/hydra-targets.toml` judges it.
            let target = note.evidence.as_deref().unwrap_or_default();
            if let Some(why) = crate::hydra_lists::HydraLists::builtin().problem(target) {
                let message = format!("{} {why}", note.detail);
                let location = Location { member: member.clone(), offset: note.offset };
                push(out, policy, catalogue.for_note(note.kind), message, location, note.evidence.clone());
            }
            continue;
        }
        let rule = match note.kind {
            NoteKind::UnrecognisedBinary if unknown_binary_is_model(named) => {
                catalogue.get(RuleId::UnrecognisedModelFile)
            }
            NoteKind::UnrecognisedBinary => catalogue.get(RuleId::UnrecognisedBinary),
            kind => catalogue.for_note(kind),
        };
        push(
            out,
            policy,
            rule,
            note.detail.clone(),
            Location { member: member.clone(), offset: note.offset },
            note.evidence.clone(),
        );
    }
    let is_file = trail.last().is_none_or(|n| n.relation == Some(Relation::Member));
    if is_file
        && matches!(node.format, Format::Text | Format::Json | Format::Empty | Format::Image)
        && looks_like_model(named)
    {
        let what = match node.format {
            Format::Empty => "is empty".to_string(),
            other => format!("holds {other} data, not a model format"),
        };
        push(
            out,
            policy,
            catalogue.get(RuleId::UnrecognisedModelFile),
            format!("{named} is named like a model but {what}"),
            Location { member: member.clone(), offset: None },
            None,
        );
    }
    if let Some(pickle) = node.pickle() {
        pickle_findings(pickle, policy, &member, out);
    }
    if let modelgate_formats::Detail::Skops(skops) = &node.detail {
        skops_findings(skops, policy, &member, out);
    }
    for child in &node.children {
        trail.push(child);
        visit(child, path, policy, trail, out);
        trail.pop();
    }
}

/// True when the policy file trusts the named thing a note is about: a Keras config module
/// (`[[allow.keras-module]]`, the module or a parent package), an ONNX operator domain
/// (`[[allow.onnx-domain]]`) or a TensorFlow/TFLite custom op (`[[allow.tf-op]]`). Trust covers
/// only "unknown" findings: an op that reads files or runs Python, or a Keras function that loads
/// other models, is reported whatever the policy trusts.
fn trusted_by_policy(note: &Note, policy: &Policy) -> bool {
    let Some(name) = note.evidence.as_deref() else { return false };
    match note.kind {
        NoteKind::KerasForeignModule => {
            // Never a module the pickle deny-list names (`os`, `subprocess`, `builtins`…), nor a
            // denied attribute of another module.
            let (module, attr) = name.rsplit_once('.').unwrap_or((name, ""));
            if policy.pickle.is_denied_module(module)
                || matches!(policy.pickle.classify(module, attr, "keras"), Class::Denied(_))
            {
                return false;
            }
            let mut prefix = name;
            loop {
                if policy.trusts("keras-module", prefix).is_some() {
                    return true;
                }
                match prefix.rsplit_once('.') {
                    Some((parent, _)) => prefix = parent,
                    None => return false,
                }
            }
        }
        NoteKind::TfUnknownOp | NoteKind::TfliteCustomOp => policy.trusts("tf-op", name).is_some(),
        // Evidence is `domain::op`; trust is per domain.
        NoteKind::OnnxCustomDomain => {
            name.split_once("::").is_some_and(|(domain, _)| policy.trusts("onnx-domain", domain).is_some())
        }
        _ => false,
    }
}

/// A name a parsed chat template reaches, judged against `data/jinja-names.toml`: nothing when
/// allowed or a key of the caller's data, MG506 when denied, MG508 when not reviewed.
fn template_finding(note: &Note, policy: &Policy, member: &Option<String>, out: &mut Vec<Finding>) {
    use crate::template_lists::{TemplateClass, TemplateLists};
    let catalogue = Catalogue::builtin();
    let evidence = note.evidence.as_deref().unwrap_or_default();
    let (rule, why) = match TemplateLists::builtin().classify(evidence) {
        TemplateClass::Allowed(_) | TemplateClass::Data => return,
        TemplateClass::Denied(entry) => {
            (catalogue.get(RuleId::ChatTemplateInjection), one_line(&entry.reason))
        }
        TemplateClass::Unlisted(why) => (catalogue.for_note(NoteKind::TemplateName), why.to_string()),
    };
    let message = format!("{}: {why}", note.detail);
    let location = Location { member: member.clone(), offset: note.offset };
    push(out, policy, rule, message, location, note.evidence.clone());
}

fn member_path(trail: &[&Node]) -> Option<String> {
    (!trail.is_empty()).then(|| modelgate_formats::member_path(trail))
}

fn push(
    out: &mut Vec<Finding>,
    policy: &Policy,
    rule: &'static Rule,
    message: String,
    location: Location,
    evidence: Option<String>,
) {
    if let Some(severity) = policy.severity_of(&rule.id, rule.severity) {
        out.push(Finding { rule, severity, message, location, evidence, suppressed: None });
    }
}

fn pickle_findings(p: &PickleInventory, policy: &Policy, member: &Option<String>, out: &mut Vec<Finding>) {
    let loader = p.loader.as_str();
    for (index, g) in p.globals.iter().enumerate() {
        let qualified = g.qualified();
        let Some((rule, what)) = classify_global(policy, &g.module, &g.name, loader) else {
            continue;
        };
        let written = g.written_as.as_ref().map(|w| format!(" (written as {w})")).unwrap_or_default();
        let calls = calls_of(p, index);
        let message = format!("{} imports {qualified}{written}, {what}{calls}", p.loader.as_str_pretty());
        push(
            out,
            policy,
            rule,
            message,
            Location { member: member.clone(), offset: Some(g.offset) },
            Some(qualified),
        );
    }
}

/// The pickle classification as a rule and the words that explain it, or `None` when the global
/// is acceptable (allow-listed, or trusted by the policy file).
fn classify_global(
    policy: &Policy,
    module: &str,
    name: &str,
    loader: &str,
) -> Option<(&'static Rule, String)> {
    let catalogue = Catalogue::builtin();
    Some(match policy.pickle.classify(module, name, loader) {
        Class::Allowed(_) => return None,
        Class::Denied(entry) => (
            catalogue.get(RuleId::PickleDeniedGlobal),
            format!("which is denied: {}", one_line(&entry.reason)),
        ),
        Class::Traversal { why, target: Some((entry, resolved)) } => (
            catalogue.get(RuleId::PickleAttributeTraversal),
            format!("{why}; {resolved} is denied: {}", one_line(&entry.reason)),
        ),
        Class::Traversal { why, target: None } => (catalogue.get(RuleId::PickleAttributeTraversal), why),
        Class::Unlisted => {
            policy.extra_trust(module, name).is_none().then_some(())?;
            (catalogue.get(RuleId::PickleUnlistedGlobal), "which is not on the allow-list".to_string())
        }
    })
}

/// A skops schema's imports, classified with the pickle lists under the loader `skops`.
fn skops_findings(
    s: &modelgate_formats::skops::SkopsInventory,
    policy: &Policy,
    member: &Option<String>,
    out: &mut Vec<Finding>,
) {
    for g in &s.globals {
        let Some((rule, what)) =
            classify_global(policy, &g.module, &g.name, modelgate_formats::skops::LOADER)
        else {
            continue;
        };
        let qualified = g.qualified();
        let nodes = if g.count > 1 {
            format!("{} {}s, first", g.count, g.node)
        } else {
            let article = if g.node.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
            format!("{article} {}", g.node)
        };
        let message = format!(
            "the skops schema imports {qualified} ({nodes} at {}), {what}; {}",
            g.path,
            modelgate_formats::skops::effect(&g.node)
        );
        push(out, policy, rule, message, Location { member: member.clone(), offset: None }, Some(qualified));
    }
}

fn calls_of(p: &PickleInventory, index: usize) -> String {
    let sites: Vec<String> = p
        .calls
        .iter()
        .filter(|c| matches!(c.callee, Callee::Global { index: i } if i == index))
        .map(|c| {
            if c.count > 1 {
                format!("{} ×{} (first at offset {})", c.opcode, c.count, c.offset)
            } else {
                format!("{} at offset {}", c.opcode, c.offset)
            }
        })
        .collect();
    if sites.is_empty() { String::new() } else { format!("; called by {}", sites.join(", ")) }
}

/// A reason as one line without its final full stop (it is embedded in a longer message).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").trim_end_matches('.').to_string()
}

trait PrettyLoader {
    fn as_str_pretty(&self) -> &'static str;
}

impl PrettyLoader for modelgate_formats::pickle::PickleLoader {
    fn as_str_pretty(&self) -> &'static str {
        use modelgate_formats::pickle::PickleLoader as L;
        match self {
            L::Pickle => "the pickle",
            L::Joblib => "the joblib pickle",
            L::TorchZip => "the PyTorch pickle",
            L::Torchscript => "the TorchScript pickle",
            L::TorchLegacy => "the legacy PyTorch pickle",
            L::NumpyObject => "the NumPy object-array pickle",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(looks_like_model("models/pytorch_model.bin"));
        // Wrapper names loaders open: an unknown binary under them is a model, not data.
        for name in ["model.pkl.z", "m.gz", "m.bz2", "m.xz", "m.lzma", "m.zst", "ckpt.pth.tar", "weights.DAT"]
        {
            assert!(unknown_binary_is_model(name), "{name}");
        }
        assert!(!unknown_binary_is_model("archive/data/0") && !unknown_binary_is_model("notes.txt"));
        assert!(!unknown_binary_is_model("tokenizer.model"), "sentencepiece data is not a wrapper");
        let list: UnknownBinaryNames = toml::from_str(UNKNOWN_BINARY_NAMES_TOML).unwrap();
        assert!(list.name.iter().all(|n| n.suffix.starts_with('.') && !n.reason.trim().is_empty()));
        assert!(looks_like_model("X.PT"));
        assert!(!looks_like_model("README.md"));
        assert!(!looks_like_model("archive/data/0"));
    }
}
