//! Rules are named in code by their typed id (`RuleId`, generated from `data/rules.toml`), never
//! by an `"MGxxx"` string that could drift from the catalogue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_policy::{Catalogue, RuleId};
use std::path::Path;

#[test]
fn every_typed_id_is_a_catalogue_rule_in_order() {
    let catalogue = Catalogue::builtin();
    let ids: Vec<&str> = catalogue.rules().iter().map(|r| r.id.as_str()).collect();
    let typed: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(ids, typed);
    for id in RuleId::ALL {
        assert_eq!(catalogue.get(*id).id, id.as_str());
    }
}

/// `"MG101"` as a string literal in library or binary code (outside `#[cfg(test)]` and comments).
#[test]
fn no_rule_id_string_literals_in_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pattern = regex::Regex::new(r#""MG[0-9]{3}""#).unwrap();
    let mut offenders = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy();
                // Only sources: the integration tests (`tests/`) name rules to check them.
                if name != "tests" && name != "target" {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || !path.components().any(|c| c.as_os_str() == "src")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                let t = line.trim_start();
                if t.starts_with("//") || t.starts_with('#') {
                    continue;
                }
                if pattern.is_match(line) {
                    offenders.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(&root).unwrap().display(),
                        n + 1,
                        t
                    ));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "rule ids as strings (use RuleId):\n{}", offenders.join("\n"));
}
