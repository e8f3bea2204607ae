//! The chat-template name lists (`data/jinja-names.toml`) and the judgment of what a parsed
//! template reaches against them (the formats crate lists the names; this decides).
//!
//! Allow-list first: an attribute, filter, test or statement passes only when an allow entry
//! names it; the deny entries only decide which of the others are critical. The file's header
//! explains the rule for each kind, and docs/formats.md the analysis that lists the names.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The lists as shipped.
pub const JINJA_NAMES_TOML: &str = include_str!("../data/jinja-names.toml");

/// The kinds a template note's evidence starts with (`attribute:items`).
const KINDS: &[&str] = &["attribute", "filter", "test", "name", "statement", "computed"];

/// One allow or deny entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `attribute`, `filter`, `test`, `name` or `statement`.
    pub kind: String,
    /// Exact names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Name prefixes (deny only).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Why.
    pub reason: String,
    /// Advisories.
    #[serde(default)]
    pub references: Vec<String>,
}

/// The public attributes of one runtime type a template can hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonAttributes {
    /// The type (or types).
    #[serde(rename = "type")]
    pub type_: String,
    /// Its attribute names.
    pub names: Vec<String>,
    /// Where the template gets such values.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    allow: Vec<Entry>,
    #[serde(default)]
    deny: Vec<Entry>,
    #[serde(default)]
    python_attributes: Vec<PythonAttributes>,
}

/// What the lists say about one name a template reaches.
#[derive(Debug, Clone)]
pub enum TemplateClass<'a> {
    /// Allowed by an entry.
    Allowed(&'a Entry),
    /// A key of the caller's data or a variable the renderer supplies.
    Data,
    /// Denied by an entry (MG506, critical).
    Denied(&'a Entry),
    /// Not reviewed (MG508): the words say why.
    Unlisted(&'static str),
}

/// The parsed lists.
#[derive(Debug, Default)]
pub struct TemplateLists {
    allow: HashMap<(String, String), Entry>,
    deny: HashMap<(String, String), Entry>,
    deny_prefixes: Vec<(String, String, Entry)>,
    python: HashMap<String, PythonAttributes>,
}

impl TemplateLists {
    /// Parses and checks a list file.
    pub fn parse(text: &str) -> Result<TemplateLists, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("jinja-names.toml: {e}"))?;
        let mut lists = TemplateLists::default();
        let check = |e: &Entry| -> Result<(), String> {
            if !KINDS.contains(&e.kind.as_str()) || e.kind == "computed" {
                return Err(format!("jinja-names.toml: unknown kind {:?}", e.kind));
            }
            if e.reason.trim().is_empty() {
                return Err(format!("jinja-names.toml: an entry for {:?} has no reason", e.names));
            }
            Ok(())
        };
        for e in file.deny {
            check(&e)?;
            for p in &e.prefixes {
                lists.deny_prefixes.push((e.kind.clone(), p.clone(), e.clone()));
            }
            for n in &e.names {
                lists.deny.insert((e.kind.clone(), n.clone()), e.clone());
            }
        }
        for e in file.allow {
            check(&e)?;
            if !e.prefixes.is_empty() {
                return Err("jinja-names.toml: allow entries name exact names, not prefixes".into());
            }
            for n in &e.names {
                let key = (e.kind.clone(), n.clone());
                if lists.deny.contains_key(&key) || lists.denied_by_prefix(&e.kind, n).is_some() {
                    return Err(format!("jinja-names.toml: {} {n:?} is both allowed and denied", e.kind));
                }
                lists.allow.insert(key, e.clone());
            }
        }
        for t in file.python_attributes {
            for n in &t.names {
                lists.python.entry(n.clone()).or_insert_with(|| t.clone());
            }
        }
        Ok(lists)
    }

    /// The shipped lists.
    pub fn builtin() -> &'static TemplateLists {
        static LISTS: OnceLock<TemplateLists> = OnceLock::new();
        LISTS.get_or_init(|| match TemplateLists::parse(JINJA_NAMES_TOML) {
            Ok(l) => l,
            // The shipped data is checked by the test suite; a broken build must not pass silently.
            Err(e) => panic!("{e}"),
        })
    }

    fn denied_by_prefix(&self, kind: &str, name: &str) -> Option<&Entry> {
        self.deny_prefixes
            .iter()
            .find(|(k, p, _)| k == kind && name.starts_with(p.as_str()))
            .map(|(_, _, e)| e)
    }

    /// Judges the evidence of a template note (`kind:name`).
    pub fn classify(&self, evidence: &str) -> TemplateClass<'_> {
        let Some((kind, name)) = evidence.split_once(':') else {
            return TemplateClass::Unlisted("the analysis reported a name it could not classify");
        };
        if kind == "computed" {
            return TemplateClass::Unlisted("a name the template builds at render time cannot be reviewed");
        }
        let key = (kind.to_string(), name.to_string());
        if let Some(e) = self.deny.get(&key).or_else(|| self.denied_by_prefix(kind, name)) {
            return TemplateClass::Denied(e);
        }
        if let Some(e) = self.allow.get(&key) {
            return TemplateClass::Allowed(e);
        }
        match kind {
            "attribute" if self.python.contains_key(name) => TemplateClass::Unlisted(
                "an attribute of Python or Jinja objects that is not on the reviewed list",
            ),
            "attribute" | "name" => TemplateClass::Data,
            "filter" => TemplateClass::Unlisted("a filter that is not on the reviewed list"),
            "test" => TemplateClass::Unlisted("a test that is not on the reviewed list"),
            "statement" => TemplateClass::Unlisted("a statement that is not on the reviewed list"),
            _ => TemplateClass::Unlisted("a kind of name the lists do not know"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_parse_and_judge() {
        let l = TemplateLists::parse(JINJA_NAMES_TOML).unwrap_or_else(|e| panic!("{e}"));
        let class = |e: &str| match l.classify(e) {
            TemplateClass::Allowed(_) => "allowed",
            TemplateClass::Data => "data",
            TemplateClass::Denied(_) => "denied",
            TemplateClass::Unlisted(_) => "unlisted",
        };
        assert_eq!(class("attribute:__class__"), "denied");
        assert_eq!(class("attribute:_module"), "denied");
        assert_eq!(class("attribute:format"), "allowed");
        assert_eq!(class("attribute:gi_frame"), "denied");
        assert_eq!(class("attribute:items"), "allowed");
        assert_eq!(class("attribute:content"), "data");
        assert_eq!(class("attribute:translate"), "unlisted");
        assert_eq!(class("filter:attr"), "denied");
        assert_eq!(class("filter:tojson"), "allowed");
        assert_eq!(class("filter:pprint"), "unlisted");
        assert_eq!(class("test:defined"), "allowed");
        assert_eq!(class("name:lipsum"), "denied");
        assert_eq!(class("name:messages"), "allowed");
        assert_eq!(class("name:enable_thinking"), "data");
        assert_eq!(class("statement:include"), "denied");
        assert_eq!(class("computed:x"), "unlisted");
    }

    #[test]
    fn bad_lists_are_rejected() {
        for bad in [
            "[[allow]]\nkind = \"filter\"\nnames = [\"x\"]\nreason = \"\"\n",
            "[[allow]]\nkind = \"weird\"\nnames = [\"x\"]\nreason = \"r\"\n",
            "[[deny]]\nkind = \"filter\"\nnames = [\"x\"]\nreason = \"r\"\n[[allow]]\nkind = \"filter\"\nnames = [\"x\"]\nreason = \"r\"\n",
            "[[deny]]\nkind = \"attribute\"\nprefixes = [\"_\"]\nreason = \"r\"\n[[allow]]\nkind = \"attribute\"\nnames = [\"_x\"]\nreason = \"r\"\n",
            "[[allow]]\nkind = \"filter\"\nnames = [\"x\"]\nreason = \"r\"\nextra = 1\n",
        ] {
            assert!(TemplateLists::parse(bad).is_err(), "{bad}");
        }
    }
}
