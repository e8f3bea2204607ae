//! GitHub Actions: workflow-command annotations and the Markdown job summary.
//!
//! GitHub shows at most 10 annotations per level per step (the rest are dropped silently), so the
//! most severe come first and the summary says how many were left out. The job summary is
//! limited to 1 MiB per step: a verdict table first, details folded, truncated with a note.
//! Annotation paths are relative to `GITHUB_WORKSPACE` ([`super::location`]), as GitHub needs to
//! put them on the diff.

use super::location::Locator;
use super::{Run, one_line};
use modelgate_policy::{Finding, Severity};
use std::fmt::Write;

/// Annotations per level that GitHub displays.
pub const ANNOTATIONS_PER_LEVEL: usize = 10;
/// The job summary's size limit per step.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

fn command(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium | Severity::Low => "warning",
        Severity::Info => "notice",
    }
}

/// Escapes a workflow-command message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow-command property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `::error`/`::warning`/`::notice` lines: unsuppressed findings, most severe first, at
/// most [`ANNOTATIONS_PER_LEVEL`] per level. Returns the lines and how many were left out.
pub fn annotations(run: &Run<'_>) -> (String, usize) {
    let locator = Locator::from_env();
    let mut all: Vec<(String, &Finding)> = run
        .artifacts
        .iter()
        .flat_map(|a| {
            let path = locator.place(&a.path).path().to_string();
            a.findings.iter().map(move |f| (path.clone(), f))
        })
        .filter(|(_, f)| f.suppressed.is_none())
        .collect();
    all.sort_by(|a, b| b.1.severity.cmp(&a.1.severity).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::new();
    let mut per_level = std::collections::HashMap::new();
    let mut dropped = 0;
    for (path, f) in all {
        let level = command(f.severity);
        let n = per_level.entry(level).or_insert(0usize);
        if *n >= ANNOTATIONS_PER_LEVEL {
            dropped += 1;
            continue;
        }
        *n += 1;
        let mut place = String::new();
        if let Some(m) = &f.location.member {
            place = format!(" (in {m}");
            if let Some(o) = f.location.offset {
                place.push_str(&format!(" at offset {o}"));
            }
            place.push(')');
        }
        let _ = writeln!(
            out,
            "::{level} file={},line=1,title={}::{}",
            escape_property(&path),
            escape_property(&format!("{} {} ({})", f.rule.id, f.rule.name, f.severity)),
            escape_data(&format!("{}{place}. Fix: {}", f.message, one_line(&f.rule.fix)))
        );
    }
    (out, dropped)
}

/// The Markdown job summary.
pub fn summary(run: &Run<'_>, dropped_annotations: usize) -> String {
    let mut out = String::new();
    let verdict = run.verdict.as_str().to_uppercase();
    let icon = if verdict == "PASS" { "✅" } else { "❌" };
    let _ = writeln!(out, "## {icon} modelgate: {verdict}\n");
    let _ = writeln!(
        out,
        "| files | bytes scanned | critical | high | medium | low | info | suppressed | fail-on |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let counts = run.counts();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        run.artifacts.len(),
        run.bytes(),
        counts[0].1,
        counts[1].1,
        counts[2].1,
        counts[3].1,
        counts[4].1,
        run.suppressed(),
        run.fail_on
    );
    if dropped_annotations > 0 {
        let _ = writeln!(
            out,
            "GitHub shows at most {ANNOTATIONS_PER_LEVEL} annotations per level; {dropped_annotations} more finding(s) are only listed below.\n"
        );
    }
    let with_findings: Vec<_> = run.artifacts.iter().filter(|a| !a.findings.is_empty()).collect();
    if with_findings.is_empty() {
        let _ = writeln!(out, "No findings.");
        return out;
    }
    let _ = writeln!(out, "| file | worst | findings |");
    let _ = writeln!(out, "|---|---|---|");
    for a in &with_findings {
        let worst = a.findings.iter().filter(|f| f.suppressed.is_none()).map(|f| f.severity).max();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            cell(&a.path),
            worst.map(|s| s.as_str()).unwrap_or("suppressed"),
            a.findings.len()
        );
    }
    let _ = writeln!(out, "\n<details><summary>All findings</summary>\n");
    let mut details = String::new();
    for a in &with_findings {
        let _ = writeln!(details, "\n#### `{}`\n", cell(&a.path));
        for f in &a.findings {
            let place = match (&f.location.member, f.location.offset) {
                (Some(m), Some(o)) => format!(" in `{}` at offset {o}", cell(m)),
                (Some(m), None) => format!(" in `{}`", cell(m)),
                (None, Some(o)) => format!(" at offset {o}"),
                (None, None) => String::new(),
            };
            let status = match &f.suppressed {
                Some(s) => format!(" — *suppressed: {}*", cell(&s.reason)),
                None => String::new(),
            };
            let _ = writeln!(
                details,
                "- **{}** `{}` {}{place}: {}{status}",
                f.severity,
                f.rule.id,
                f.rule.name,
                cell(&f.message)
            );
        }
    }
    let room = SUMMARY_LIMIT.saturating_sub(out.len() + 512);
    if details.len() > room {
        let mut cut = room;
        while !details.is_char_boundary(cut) {
            cut -= 1;
        }
        details.truncate(cut);
        details.push_str("\n\n… truncated to stay within GitHub's 1 MiB job-summary limit; the JSON or SARIF report has every finding.\n");
    }
    out.push_str(&details);
    let _ = writeln!(out, "\n</details>");
    out
}

/// Text safe inside a Markdown table cell or code span.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
