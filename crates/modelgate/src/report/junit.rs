//! JUnit XML (`--junit FILE`): one test case per scanned file; a file fails when it has a
//! finding at or above the threshold, with every finding listed in the failure. Test-case names
//! are paths relative to the repository root ([`super::location`]).

use super::location::Locator;
use super::{Run, one_line};
use std::fmt::Write;

/// Escapes text for XML content and attribute values, dropping characters XML 1.0 forbids.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report.
pub fn render(run: &Run<'_>) -> String {
    let failing_files = run
        .artifacts
        .iter()
        .filter(|a| a.findings.iter().any(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity)))
        .count();
    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        out,
        "<testsuites name=\"modelgate\" tests=\"{}\" failures=\"{failing_files}\" errors=\"0\">",
        run.artifacts.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"modelgate scan (fail-on {})\" tests=\"{}\" failures=\"{failing_files}\" errors=\"0\" skipped=\"0\">",
        run.fail_on,
        run.artifacts.len()
    );
    let locator = Locator::from_env();
    for a in run.artifacts {
        let place = locator.place(&a.path);
        let _ = write!(out, "    <testcase classname=\"modelgate\" name=\"{}\"", xml(place.path()));
        let failing: Vec<_> =
            a.findings.iter().filter(|f| f.suppressed.is_none() && run.fail_on.fails(f.severity)).collect();
        if a.findings.is_empty() {
            let _ = writeln!(out, "/>");
            continue;
        }
        let _ = writeln!(out, ">");
        let mut body = String::new();
        for f in &a.findings {
            let place = f.location.member.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default();
            let status = if f.suppressed.is_some() { " (suppressed)" } else { "" };
            let _ = writeln!(
                body,
                "{} {} ({}){status}: {}{place}",
                f.rule.id, f.rule.name, f.severity, f.message
            );
            if f.suppressed.is_none() {
                let _ = writeln!(body, "  fix: {}", one_line(&f.rule.fix));
            }
        }
        if let Some(first) = failing.first() {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                xml(&first.rule.id),
                xml(&format!(
                    "{} finding(s) at or above {}; first: {} {}",
                    failing.len(),
                    run.fail_on,
                    first.rule.id,
                    first.message
                )),
                xml(&body)
            );
        } else {
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&body));
        }
        let _ = writeln!(out, "    </testcase>");
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml("bad\u{1}char"), "bad\u{fffd}char");
    }
}
