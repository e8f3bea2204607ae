//! The documentation's relative links point at files that exist (docs move and get renamed;
//! a dead link in a security tool's docs is a dead end for the user who needed it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `[text](target)` targets in a Markdown document, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let root = root();
    let mut docs = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut dead = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with('#') || link.starts_with("mailto:") {
                continue;
            }
            let file = link.split('#').next().unwrap();
            let target = doc.parent().unwrap().join(file);
            checked += 1;
            if !target.exists() {
                dead.push(format!("{}: {link}", doc.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

/// docs/report-format.md lists every format name a report can carry.
#[test]
fn the_report_format_lists_every_format() {
    let doc = std::fs::read_to_string(root().join("docs/report-format.md")).unwrap();
    let line =
        doc.lines().find(|l| l.starts_with("| `format` | string | `missing`")).expect("the format row");
    let mut names = std::collections::HashSet::new();
    for f in modelgate_formats::Format::ALL {
        assert!(names.insert(f.as_str()), "{} twice in Format::ALL", f.as_str());
        assert!(
            line.contains(&format!("`{}`", f.as_str())),
            "docs/report-format.md does not list `{}`",
            f.as_str()
        );
    }
}
