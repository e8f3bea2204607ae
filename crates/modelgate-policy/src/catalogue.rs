//! The rule catalogue (`data/rules.toml`), compiled into the binary.

use crate::Severity;
use modelgate_formats::NoteKind;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The catalogue as shipped.
pub const RULES_TOML: &str = include_str!("../data/rules.toml");

/// A rule: what a finding means, why it matters and how to fix it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier (`MG101`).
    pub id: String,
    /// Stable kebab-case name (`pickle-denied-global`).
    pub name: String,
    /// Default severity.
    pub severity: Severity,
    /// The scanner observation that raises it, or `pickle-global`.
    pub note: String,
    /// One line: what was found.
    pub summary: String,
    /// What the rule detects.
    pub description: String,
    /// Why it matters.
    pub why: String,
    /// What to do.
    pub fix: String,
    /// CWE number, where one applies.
    #[serde(default)]
    pub cwe: Option<u32>,
    /// CVEs and advisories.
    #[serde(default)]
    pub references: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rule: Vec<Rule>,
}

/// All rules, indexed.
#[derive(Debug)]
pub struct Catalogue {
    rules: Vec<Rule>,
    by_id: HashMap<String, usize>,
}

include!(concat!(env!("OUT_DIR"), "/rule_ids.rs"));

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Catalogue {
    /// Parses a catalogue and checks it: unique ids and names, every scanner observation covered.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("rule catalogue: {e}"))?;
        let mut by_id = HashMap::new();
        let mut names = HashMap::new();
        for (i, rule) in file.rule.iter().enumerate() {
            if by_id.insert(rule.id.clone(), i).is_some() {
                return Err(format!("rule catalogue: duplicate id {}", rule.id));
            }
            if names.insert(rule.name.clone(), i).is_some() {
                return Err(format!("rule catalogue: duplicate name {}", rule.name));
            }
        }
        let catalogue = Catalogue { rules: file.rule, by_id };
        for kind in NoteKind::ALL {
            if catalogue.rules.iter().all(|r| r.note != kind.as_str()) {
                return Err(format!("rule catalogue: no rule for scanner observation {}", kind.as_str()));
            }
        }
        for rule in &catalogue.rules {
            // `pickle-global`: decided by the pickle lists; `policy`: raised by the policy itself
            // (pins, suppressions), not by a scanner observation; `remote`: raised by checking a
            // download against its listing.
            if !matches!(rule.note.as_str(), "pickle-global" | "policy" | "remote")
                && !NoteKind::ALL.iter().any(|k| k.as_str() == rule.note)
            {
                return Err(format!(
                    "rule catalogue: {} refers to unknown observation {}",
                    rule.id, rule.note
                ));
            }
        }
        Ok(catalogue)
    }

    /// The shipped catalogue.
    pub fn builtin() -> &'static Catalogue {
        static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
        CATALOGUE.get_or_init(|| match Catalogue::parse(RULES_TOML) {
            Ok(c) => c,
            // The shipped data is checked by the test suite; a broken build must not pass silently.
            Err(e) => panic!("{e}"),
        })
    }

    /// Every rule, in catalogue order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule by id (`MG101`) or name (`pickle-denied-global`), case-insensitively.
    pub fn find(&self, key: &str) -> Option<&Rule> {
        let upper = key.to_ascii_uppercase();
        self.by_id
            .get(&upper)
            .map(|&i| &self.rules[i])
            .or_else(|| self.rules.iter().find(|r| r.name.eq_ignore_ascii_case(key)))
    }

    /// A rule by its typed id (generated from the same data, so it is always there).
    pub fn get(&self, id: RuleId) -> &Rule {
        match self.by_id.get(id.as_str()) {
            Some(&i) => &self.rules[i],
            None => panic!("rule {id} missing from the catalogue"),
        }
    }

    /// The rule raised by a scanner observation. `unrecognised-binary` has two (MG002/MG003),
    /// chosen by the evaluator.
    pub(crate) fn for_note(&self, kind: NoteKind) -> &Rule {
        let name = kind.as_str();
        match self.rules.iter().find(|r| r.note == name) {
            Some(rule) => rule,
            None => panic!("no rule for observation {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogue_is_consistent() {
        let c = Catalogue::parse(RULES_TOML).unwrap();
        for rule in c.rules() {
            assert!(rule.id.starts_with("MG") && rule.id.len() == 5, "{}", rule.id);
            assert!(rule.name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'), "{}", rule.name);
            assert!(!rule.summary.contains('\n') && !rule.summary.ends_with('.'), "{}", rule.id);
            assert!(
                !rule.description.trim().is_empty()
                    && !rule.why.trim().is_empty()
                    && !rule.fix.trim().is_empty()
            );
        }
        assert_eq!(c.find("mg101").unwrap().name, "pickle-denied-global");
        assert_eq!(c.find("pickle-malformed").unwrap().id, "MG105");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let one = "[[rule]]\nid='MG001'\nname='a'\nseverity='high'\nnote='malformed'\nsummary='s'\ndescription='d'\nwhy='w'\nfix='f'\n";
        let two = format!("{one}{}", one.replace("name='a'", "name='b'"));
        assert!(Catalogue::parse(&two).unwrap_err().contains("duplicate id"));
    }
}
