//! The pickle allow-list and deny-list (`data/pickle-allow.toml`, `data/pickle-deny.toml`) and
//! the classification of a global against them.
//!
//! Allow-list first: a global is acceptable only if an allow entry names it. The deny-list never
//! makes anything acceptable; it marks which unlisted globals are critical rather than high, and
//! attribute chains (`pathlib` + `os.system`) are resolved against it so that a harmless module
//! cannot launder a dangerous object.

use serde::Deserialize;
use std::collections::HashMap;

/// The allow-list as shipped.
pub const ALLOW_TOML: &str = include_str!("../data/pickle-allow.toml");
/// The deny-list as shipped.
pub const DENY_TOML: &str = include_str!("../data/pickle-deny.toml");

/// One allow-list entry: an exact global, every name of one module, or a module prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AllowEntry {
    /// Exact module.
    #[serde(default)]
    pub module: Option<String>,
    /// Exact name (possibly dotted), or `*` for every name in `module`.
    #[serde(default)]
    pub name: Option<String>,
    /// A module and all its submodules, any name.
    #[serde(default)]
    pub module_prefix: Option<String>,
    /// Why constructing this from pickle data is inert.
    pub reason: String,
    /// Where the entry was observed or justified.
    #[serde(default)]
    pub source: Option<String>,
    /// Loaders the entry is limited to (`torchscript`, `torch-zip`, …).
    #[serde(default)]
    pub loaders: Option<Vec<String>>,
}

/// One deny-list entry: a whole module (and its submodules), or some of its names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyEntry {
    /// The module.
    pub module: String,
    /// Only these names (and dotted names starting with them); the whole module when absent.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Why importing it is dangerous.
    pub reason: String,
    /// Advisories and CVEs.
    #[serde(default)]
    pub references: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<AllowEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyFile {
    #[serde(default)]
    deny: Vec<DenyEntry>,
}

/// What the lists say about one global.
#[derive(Debug, Clone)]
pub enum Class<'a> {
    /// On the allow-list.
    Allowed(&'a AllowEntry),
    /// On the deny-list.
    Denied(&'a DenyEntry),
    /// A dotted or dunder name; `target` is the denied object it reaches, if any.
    Traversal {
        /// What is suspicious about the name.
        why: String,
        /// The deny entry and the `module.name` the chain resolves to.
        target: Option<(&'a DenyEntry, String)>,
    },
    /// Neither: not known to be safe.
    Unlisted,
}

/// The compiled lists.
#[derive(Debug, Clone, Default)]
pub struct PickleLists {
    allow: Vec<AllowEntry>,
    exact: HashMap<(String, String), Vec<usize>>,
    whole_module: HashMap<String, Vec<usize>>,
    prefixes: Vec<usize>,
    deny: Vec<DenyEntry>,
    deny_module: HashMap<String, usize>,
    deny_names: HashMap<String, Vec<usize>>,
    /// Components of the longest denied module name: how far along a dotted name a split can
    /// still land on the deny-list.
    deny_depth: usize,
}

impl PickleLists {
    /// The shipped lists.
    pub fn builtin() -> Result<PickleLists, String> {
        let mut lists = PickleLists::default();
        lists.add_allow_toml(ALLOW_TOML, "pickle-allow.toml")?;
        lists.add_deny_toml(DENY_TOML, "pickle-deny.toml")?;
        lists.check()?;
        Ok(lists)
    }

    /// Adds allow entries from TOML text (`[[allow]]` tables).
    pub fn add_allow_toml(&mut self, text: &str, origin: &str) -> Result<(), String> {
        let file: AllowFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        for entry in file.allow {
            self.add_allow(entry).map_err(|e| format!("{origin}: {e}"))?;
        }
        Ok(())
    }

    /// Adds deny entries from TOML text (`[[deny]]` tables).
    pub fn add_deny_toml(&mut self, text: &str, origin: &str) -> Result<(), String> {
        let file: DenyFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        for entry in file.deny {
            if entry.reason.trim().is_empty() {
                return Err(format!("{origin}: deny entry for {} has no reason", entry.module));
            }
            let i = self.deny.len();
            self.deny_depth = self.deny_depth.max(entry.module.split('.').count());
            match &entry.names {
                None => {
                    if self.deny_module.insert(entry.module.clone(), i).is_some() {
                        return Err(format!("{origin}: module {} is denied twice", entry.module));
                    }
                }
                Some(names) => {
                    if names.is_empty() {
                        return Err(format!(
                            "{origin}: deny entry for {} has an empty names list",
                            entry.module
                        ));
                    }
                    self.deny_names.entry(entry.module.clone()).or_default().push(i);
                }
            }
            self.deny.push(entry);
        }
        Ok(())
    }

    /// Adds one allow entry.
    pub fn add_allow(&mut self, entry: AllowEntry) -> Result<(), String> {
        if entry.reason.trim().is_empty() {
            return Err("allow entry without a reason".into());
        }
        let i = self.allow.len();
        match (&entry.module, &entry.name, &entry.module_prefix) {
            (Some(m), Some(n), None) if n == "*" => self.whole_module.entry(m.clone()).or_default().push(i),
            (Some(m), Some(n), None) => self.exact.entry((m.clone(), n.clone())).or_default().push(i),
            (None, None, Some(_)) => self.prefixes.push(i),
            _ => {
                return Err("an allow entry needs either module and name, or module-prefix".into());
            }
        }
        self.allow.push(entry);
        Ok(())
    }

    /// No global may be both allowed and denied: an allow entry would silently win.
    fn check(&self) -> Result<(), String> {
        for (module, name) in self.exact.keys() {
            if let Some(d) = self.denied(module, name) {
                return Err(format!(
                    "{module}.{name} is on the allow-list but denied by the {} entry",
                    d.module
                ));
            }
        }
        for module in self.whole_module.keys() {
            if self.deny_module_of(module).is_some() || self.deny_names.contains_key(module) {
                return Err(format!("every name of {module} is allowed but the module has deny entries"));
            }
        }
        Ok(())
    }

    /// Number of allow entries and deny entries.
    pub fn len(&self) -> (usize, usize) {
        (self.allow.len(), self.deny.len())
    }

    /// True when both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    fn allowed(&self, module: &str, name: &str, loader: &str) -> Option<&AllowEntry> {
        let applies = |i: &usize| {
            let e = &self.allow[*i];
            e.loaders.as_ref().is_none_or(|l| l.iter().any(|x| x == loader))
        };
        let key = (module.to_string(), name.to_string());
        if let Some(i) = self.exact.get(&key).and_then(|v| v.iter().find(|i| applies(i))) {
            return Some(&self.allow[*i]);
        }
        if let Some(i) = self.whole_module.get(module).and_then(|v| v.iter().find(|i| applies(i))) {
            return Some(&self.allow[*i]);
        }
        self.prefixes.iter().filter(|i| applies(i)).map(|&i| &self.allow[i]).find(|e| {
            e.module_prefix.as_deref().is_some_and(|p| {
                module == p || module.strip_prefix(p).is_some_and(|rest| rest.starts_with('.'))
            })
        })
    }

    /// True if the module, or a parent package of it, is denied as a whole (`os`, `subprocess`).
    pub fn is_denied_module(&self, module: &str) -> bool {
        self.deny_module_of(module).is_some()
    }

    fn deny_module_of(&self, module: &str) -> Option<&DenyEntry> {
        // The module itself or any parent package.
        let mut m = module;
        loop {
            if let Some(&i) = self.deny_module.get(m) {
                return Some(&self.deny[i]);
            }
            match m.rfind('.') {
                Some(dot) => m = &m[..dot],
                None => return None,
            }
        }
    }

    fn denied(&self, module: &str, name: &str) -> Option<&DenyEntry> {
        if let Some(d) = self.deny_module_of(module) {
            return Some(d);
        }
        let first = name.split('.').next().unwrap_or(name);
        self.deny_names
            .get(module)?
            .iter()
            .map(|&i| &self.deny[i])
            .find(|d| d.names.as_ref().is_some_and(|names| names.iter().any(|n| n == name || n == first)))
    }

    /// Classifies a global (`module`, `name`) read by `loader` (`pickle`, `torch-zip`, …).
    pub fn classify(&self, module: &str, name: &str, loader: &str) -> Class<'_> {
        if let Some(entry) = self.allowed(module, name, loader) {
            return Class::Allowed(entry);
        }
        if let Some(entry) = self.denied(module, name) {
            return Class::Denied(entry);
        }
        let parts: Vec<&str> = name.split('.').collect();
        // find_class follows the dotted name attribute by attribute: `pathlib` + `os.system` is
        // `pathlib.os.system`, i.e. `os.system`. Resolve every split against the deny-list.
        // A split resolves to a denied target only where its head (or `module.head`) has a
        // denied module as a prefix, or is a module with denied names; the first such split is
        // never longer than the longest denied module name. Looking no further keeps a name of
        // thousands of components (`a.q.q.q…`) linear instead of cubic.
        let mut target = None;
        for k in 1..parts.len().min(self.deny_depth.saturating_add(1)) {
            let (head, rest) = (parts[..k].join("."), parts[k..].join("."));
            for candidate in [head.clone(), format!("{module}.{head}")] {
                if let Some(d) = self.denied(&candidate, &rest) {
                    target = Some((d, format!("{candidate}.{rest}")));
                    break;
                }
            }
            if target.is_some() {
                break;
            }
        }
        let dunder = parts.iter().find(|p| p.len() > 4 && p.starts_with("__") && p.ends_with("__"));
        match (dunder, target) {
            (Some(d), target) => {
                Class::Traversal { why: format!("the name reaches the dunder attribute {d}"), target }
            }
            (None, Some(t)) => {
                Class::Traversal { why: format!("the dotted name resolves to {}", t.1), target: Some(t) }
            }
            (None, None) => Class::Unlisted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> PickleLists {
        let mut l = PickleLists::default();
        l.add_allow_toml(
            r#"
[[allow]]
module = "collections"
name = "OrderedDict"
reason = "r"
[[allow]]
module-prefix = "__torch__"
reason = "r"
loaders = ["torchscript"]
[[allow]]
module = "numpy.random._pickle"
name = "*"
reason = "r"
"#,
            "test",
        )
        .unwrap();
        l.add_deny_toml(
            r#"
[[deny]]
module = "os"
reason = "r"
[[deny]]
module = "asyncio"
reason = "r"
[[deny]]
module = "builtins"
names = ["eval", "getattr"]
reason = "r"
"#,
            "test",
        )
        .unwrap();
        l.check().unwrap();
        l
    }

    #[test]
    fn allow_first_then_deny_then_unlisted() {
        let l = lists();
        assert!(matches!(l.classify("collections", "OrderedDict", "pickle"), Class::Allowed(_)));
        assert!(matches!(
            l.classify("numpy.random._pickle", "__randomstate_ctor", "pickle"),
            Class::Allowed(_)
        ));
        assert!(matches!(l.classify("os", "system", "pickle"), Class::Denied(_)));
        assert!(matches!(
            l.classify("asyncio.unix_events", "_UnixSubprocessTransport._start", "pickle"),
            Class::Denied(_)
        ));
        assert!(matches!(l.classify("builtins", "eval", "pickle"), Class::Denied(_)));
        assert!(matches!(l.classify("builtins", "getattr.__call__", "pickle"), Class::Denied(_)));
        assert!(matches!(l.classify("builtins", "print", "pickle"), Class::Unlisted));
        assert!(matches!(l.classify("smtplib", "SMTP", "pickle"), Class::Unlisted));
    }

    #[test]
    fn loader_scoped_entries() {
        let l = lists();
        assert!(matches!(l.classify("__torch__.model", "Net", "torchscript"), Class::Allowed(_)));
        assert!(matches!(l.classify("__torch__.model", "Net", "pickle"), Class::Unlisted));
    }

    /// Fuzz seed 53, case 609,534: a GLOBAL whose name is 3,700 components (`_ru.q.q.q…`) took a
    /// second, and each extra component cost more (every split joined and looked up the whole
    /// name). Splits stop at the longest denied module name; the answers stay the same.
    #[test]
    fn very_long_dotted_names_resolve_the_same_way() {
        let l = lists();
        let deep = format!("os.{}system", "q.".repeat(20_000));
        match l.classify("pathlib", &deep, "pickle") {
            Class::Traversal { target: Some((d, _)), .. } => assert_eq!(d.module, "os"),
            other => panic!("{other:?}"),
        }
        let harmless = format!("{}os.system", "q.".repeat(20_000));
        assert!(matches!(l.classify("pathlib", &harmless, "pickle"), Class::Unlisted));
    }

    #[test]
    fn attribute_chains_are_resolved() {
        let l = lists();
        match l.classify("pathlib", "os.system", "pickle") {
            Class::Traversal { target: Some((d, t)), .. } => {
                assert_eq!((d.module.as_str(), t.as_str()), ("os", "os.system"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(l.classify("numpy", "__builtins__", "pickle"), Class::Traversal { .. }));
        assert!(matches!(
            l.classify("builtins", "print.__self__.__dict__.get", "pickle"),
            Class::Traversal { .. }
        ));
        assert!(matches!(
            l.classify("collections", "OrderedDict.__init__", "pickle"),
            Class::Traversal { .. }
        ));
        assert!(matches!(l.classify("mypkg", "Outer.Inner", "pickle"), Class::Unlisted));
    }

    #[test]
    fn contradictions_are_rejected() {
        let mut l = lists();
        l.add_allow(AllowEntry {
            module: Some("os".into()),
            name: Some("getcwd".into()),
            module_prefix: None,
            reason: "x".into(),
            source: None,
            loaders: None,
        })
        .unwrap();
        assert!(l.check().is_err());
    }
}
