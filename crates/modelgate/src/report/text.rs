//! The human summary printed on standard output.

use super::{Run, one_line};
use std::fmt::Write;

/// Renders the summary. Files without findings are counted, not listed.
pub fn render(run: &Run<'_>, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        for a in run.artifacts.iter().filter(|a| !a.findings.is_empty()) {
            let failing = a.findings.iter().any(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity));
            let format = a.placeholder().map_or_else(|| a.node.format.to_string(), str::to_string);
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
                        let _ = writeln!(out, "           fix: {}", one_line(&f.rule.fix));
                        let _ = writeln!(out, "           more: modelgate explain {}", f.rule.id);
                    }
                }
            }
        }
    }
    for s in run.signatures {
        let _ = writeln!(out, "{}", s.line());
    }
    for u in run.unmatched {
        let _ = writeln!(out, "{}", u.line());
    }
    if let Some(line) = skipped_line(&run.skipped) {
        let _ = writeln!(out, "{line}");
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

/// The rendered summary with ANSI colours (`--color`): the verdict words and severities.
/// Applied to finished text so the layout stays the same with and without colour.
pub fn paint(text: &str) -> String {
    const RESET: &str = "\x1b[0m";
    let colour = |word: &str| match word {
        "FAIL" | "critical" => Some("\x1b[1;31m"),
        "high" => Some("\x1b[31m"),
        "medium" | "warn" => Some("\x1b[33m"),
        "low" | "info" => Some("\x1b[36m"),
        "PASS" => Some("\x1b[1;32m"),
        _ => None,
    };
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let rest = &line[indent..];
        let (head, tail) = match rest.strip_prefix("modelgate: ") {
            Some(after) => {
                out.push_str(&line[..indent]);
                out.push_str("modelgate: ");
                after.split_at(after.find(' ').unwrap_or(after.len()))
            }
            None => {
                out.push_str(&line[..indent]);
                rest.split_at(rest.find(' ').unwrap_or(rest.len()))
            }
        };
        match colour(head) {
            Some(c) if indent <= 2 => {
                out.push_str(c);
                out.push_str(head);
                out.push_str(RESET);
            }
            _ => out.push_str(head),
        }
        out.push_str(tail);
    }
    out
}

/// `modelgate: not scanned: 1 .git directory, 2 files excluded by the policy`.
fn skipped_line(s: &crate::walk::Skipped) -> Option<String> {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if s.git_directories > 0 {
        parts.push(plural(s.git_directories, ".git directory", ".git directories"));
    }
    if s.excluded_files > 0 {
        parts.push(plural(s.excluded_files, "file", "files") + " left out by include/exclude");
    }
    if s.excluded_directories > 0 {
        parts.push(plural(s.excluded_directories, "directory", "directories") + " left out by exclude");
    }
    if s.repeated_directories > 0 {
        parts.push(
            plural(s.repeated_directories, "directory", "directories")
                + " reached again through a symbolic link (walked once)",
        );
    }
    (!parts.is_empty()).then(|| format!("modelgate: not scanned: {}", parts.join(", ")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_colours_verdicts_and_severities_only() {
        let text =
            "FAIL  a.pkl (pickle)\n  critical MG101 x\n           fix: high time\nmodelgate: PASS — 1 file\n";
        let painted = paint(text);
        assert!(painted.starts_with("\x1b[1;31mFAIL\x1b[0m  a.pkl"), "{painted:?}");
        assert!(painted.contains("  \x1b[1;31mcritical\x1b[0m MG101"), "{painted:?}");
        assert!(painted.contains("fix: high time"), "{painted:?}");
        assert!(painted.contains("modelgate: \x1b[1;32mPASS\x1b[0m"), "{painted:?}");
        let plain: String =
            painted.replace("\x1b[1;31m", "").replace("\x1b[1;32m", "").replace("\x1b[0m", "");
        assert_eq!(plain, text);
    }
}
