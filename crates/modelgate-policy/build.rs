//! Generates the typed rule ids ([`RuleId`] in `src/catalogue.rs`) from `data/rules.toml`, the one
//! list of rules: code names a rule by a variant, never by an `"MGxxx"` string, and a rule removed
//! from the data is a compile error wherever code still raises it.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=data/rules.toml");
    let text = std::fs::read_to_string("data/rules.toml").expect("data/rules.toml");
    let table: toml::Table = text.parse().expect("data/rules.toml is TOML");
    let rules = table.get("rule").and_then(|r| r.as_array()).expect("data/rules.toml has [[rule]]s");
    let mut variants = String::new();
    let mut ids = String::new();
    let mut all = String::new();
    for rule in rules {
        let field =
            |k: &str| rule.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("a rule without {k}"));
        let (id, name, summary) = (field("id"), field("name"), field("summary"));
        let variant: String = name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect();
        let _ = writeln!(variants, "    /// {id} `{name}`: {summary}.\n    {variant},");
        let _ = writeln!(ids, "            RuleId::{variant} => \"{id}\",");
        let _ = writeln!(all, "        RuleId::{variant},");
    }
    let code = format!(
        "/// A rule of the catalogue (`data/rules.toml`), by its name.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n\
         pub enum RuleId {{\n{variants}}}\n\n\
         impl RuleId {{\n\
         \x20   /// Every rule, in catalogue order.\n\
         \x20   pub const ALL: &'static [RuleId] = &[\n{all}    ];\n\n\
         \x20   /// The stable id (`MG101`).\n\
         \x20   pub const fn as_str(self) -> &'static str {{\n        match self {{\n{ids}        }}\n    }}\n}}\n"
    );
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("rule_ids.rs");
    std::fs::write(out, code).expect("write rule_ids.rs");
}
