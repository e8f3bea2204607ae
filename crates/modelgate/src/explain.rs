//! `modelgate explain`: the rule catalogue, on the command line.

use crate::error::GateError;
use crate::report::one_line;
use modelgate_policy::Catalogue;
use std::fmt::Write;

pub fn run(rule: Option<&str>) -> Result<String, GateError> {
    let catalogue = Catalogue::builtin();
    let mut out = String::new();
    let Some(key) = rule else {
        for r in catalogue.rules() {
            let _ = writeln!(out, "{}  {:<8}  {:<28} {}", r.id, r.severity.as_str(), r.name, r.summary);
        }
        return Ok(out);
    };
    let r = catalogue
        .find(key)
        .ok_or_else(|| GateError::Usage(format!("no rule {key:?}; `modelgate explain` lists them")))?;
    let _ = writeln!(out, "{} {} ({} by default)\n", r.id, r.name, r.severity);
    let _ = writeln!(out, "{}\n", r.summary);
    let _ = writeln!(out, "What it detects\n  {}\n", one_line(&r.description));
    let _ = writeln!(out, "Why it matters\n  {}\n", one_line(&r.why));
    let _ = writeln!(out, "How to fix or allow it\n  {}", one_line(&r.fix));
    if let Some(cwe) = r.cwe {
        let _ = writeln!(out, "\nCWE-{cwe}");
    }
    if !r.references.is_empty() {
        let _ = writeln!(out, "\nReferences: {}", r.references.join(", "));
    }
    let _ = writeln!(
        out,
        "\nChange it in modelgate.toml:\n  [rules.{}]\n  severity = \"{}\"   # or: enabled = false\n  reason = \"why this is acceptable here\"",
        r.id, r.severity
    );
    Ok(out)
}
