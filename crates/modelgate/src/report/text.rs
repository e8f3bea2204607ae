//! The human summary printed on standard output.

use super::{Run, one_line};
use std::fmt::Write;

/// Renders the summary. Files without findings are counted, not listed.
pub fn render(run: &Run<'_>, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        for a in run.artifacts.iter().filter(|a| !a.findings.is_empty()) {
            let failing = a.findings.iter().any(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity));
            let format = if a.missing { "missing".to_string() } else { a.node.format.to_string() };
            let _ = writeln!(out, "{}  {} ({format})", if failing { "FAIL" } else { "warn" }, a.path);
            for f in &a.findings {
                let mut place = String::new();
                if let Some(m) = &f.location.member {
                    place.push_str(m);
                }
                if let Some(o) = f.location.offset {
                    if !place.is_empty() {
                        place.push(' ');
                    }
                    let _ = write!(place, "@{o}");
                }
                let _ = writeln!(
                    out,
                    "  {:<8} {} {}{}",
                    f.severity.as_str(),
                    f.rule.id,
                    f.rule.name,
                    if place.is_empty() { String::new() } else { format!("  [{place}]") }
                );
                let _ = writeln!(out, "           {}", f.message);
                match &f.suppressed {
                    Some(s) => {
                        let until = s.expires.map(|d| format!(" until {d}")).unwrap_or_default();
                        let _ = writeln!(out, "           suppressed{until}: {}", one_line(&s.reason));
                    }
                    None => {
                        let _ = writeln!(out, "           fix: {}", first_sentence(&one_line(&f.rule.fix)));
                    }
                }
            }
        }
    }
    for s in run.signatures {
        let _ = writeln!(out, "{}", s.line());
    }
    let counts: Vec<String> =
        run.counts().iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {s}")).collect();
    let files = run.artifacts.len();
    let _ = writeln!(
        out,
        "modelgate: {} — {} file{} ({}), {}; fail-on {}",
        run.verdict.as_str().to_uppercase(),
        files,
        if files == 1 { "" } else { "s" },
        human_bytes(run.bytes()),
        if counts.is_empty() {
            "no findings".to_string()
        } else {
            format!("findings: {}", counts.join(", "))
        },
        run.fail_on
    );
    let suppressed = run.suppressed();
    if suppressed > 0 {
        let _ = writeln!(
            out,
            "modelgate: {suppressed} finding(s) suppressed by the policy (listed above, not counted)"
        );
    }
    out
}

fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(i) => &text[..=i],
        None => text,
    }
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}
