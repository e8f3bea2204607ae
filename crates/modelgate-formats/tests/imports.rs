//! The import graph of the formats crate (docs/architecture.md, "Module boundaries"): format
//! modules reach the driver only through the core — `inventory`, `stream`, `limits`, the
//! `driver` trait and the `layout` interface — and shared parsing libraries; only `lib.rs`, `scan.rs` (the driver),
//! `registry.rs` and the sniffer see everything. Reads the source files; test modules are not
//! counted.
//!
//! The cross-format edges that remain are listed in `KNOWN` and must match exactly: a new edge
//! fails, and so does one that was removed without the list being updated, so the list only
//! shrinks on purpose.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules every format may import.
const CORE: &[&str] = &["inventory", "stream", "limits", "driver", "layout"];

/// Parsing libraries with no knowledge of the scan (no driver, no registry): any format may use
/// them.
const LIBRARIES: &[&str] = &["protobuf", "json", "marshal", "jinja", "template", "container"];

/// The driver side: the only modules that may import every other one.
const DRIVER: &[&str] = &["lib", "scan", "registry", "sniff"];

/// Cross-format imports that remain (issue 15's step 4 is not finished): `(from, to)`.
const KNOWN: &[(&str, &str)] = &[
    // inventory's Detail holds each format's info type.
    ("inventory", "card"),
    ("inventory", "gguf"),
    ("inventory", "onnx"),
    ("inventory", "pickle"),
    ("inventory", "repo"),
    ("inventory", "safetensors"),
    ("inventory", "skops"),
    ("inventory", "tf_checkpoint"),
    // The oldest torch layout (a tar) still lives with the tar reader.
    ("container/torch_tar", "pickle"),
    ("container/torch_tar", "torch"),
    // The pickle engine knows joblib's and torch's legacy layouts.
    ("pickle", "joblib"),
    ("pickle", "torch"),
    ("joblib", "numpy"),
    ("joblib", "pickle"),
    ("numpy", "pickle"),
    ("torch", "pickle"),
    // Formats that embed another format's document.
    ("hdf5", "keras"),
    ("savedmodel", "keras"),
    ("skops", "keras"),
    ("tflite", "savedmodel"),
    ("repo", "card"),
    ("repo", "onnx"),
    ("repo", "skops"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `pickle/vm.rs` → `pickle` (a folder is one module, except `container`, whose files are each
/// a format); `container/mod.rs` → `container`; `gguf.rs` → `gguf`.
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    match rel.split_once('/') {
        Some(("container", "mod")) => "container".into(),
        Some(("container", file)) => format!("container/{file}"),
        Some((dir, _)) => dir.into(),
        None => rel.into(),
    }
}

/// The modules a file's non-test code names as `crate::…`.
fn imports(text: &str) -> BTreeSet<String> {
    let test_module =
        ["\n#[cfg(test)]\nmod ", "\n#[cfg(test)]\npub(crate) mod "].iter().filter_map(|m| text.find(m)).min();
    let code = match test_module {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let segment = |s: &str| -> String {
                s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
            };
            let first = segment(rest);
            if first.is_empty() {
                // `crate::{…}`: the crate root.
                out.insert("lib".to_string());
                continue;
            }
            if first == "container" {
                let second = rest.strip_prefix("container::").map(segment).unwrap_or_default();
                let files = ["zip", "tar", "sevenz", "compress", "torch_tar"];
                if files.contains(&second.as_str()) {
                    out.insert(format!("container/{second}"));
                    continue;
                }
            }
            // Root items (scan_bytes, Options) and lowercase modules alike.
            let is_module = first.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && std::fs::metadata(src().join(format!("{first}.rs"))).is_ok()
                || src().join(&first).is_dir();
            out.insert(if is_module { first } else { "lib".to_string() });
        }
    }
    out
}

#[test]
fn format_modules_import_only_the_core() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges = BTreeSet::new();
    for path in &files {
        let rel = path.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/");
        if rel.ends_with("tests.rs") {
            continue;
        }
        let from = module_of(&rel);
        let text = std::fs::read_to_string(path).unwrap();
        for to in imports(&text) {
            if to == from || DRIVER.contains(&from.as_str()) {
                continue;
            }
            if CORE.contains(&to.as_str()) || LIBRARIES.contains(&to.as_str()) {
                continue;
            }
            edges.insert((from.clone(), to));
        }
    }
    let known: BTreeSet<(String, String)> =
        KNOWN.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let new: Vec<_> = edges.difference(&known).collect();
    let gone: Vec<_> = known.difference(&edges).collect();
    assert!(
        new.is_empty(),
        "format modules import beyond the core (crate::driver, inventory, stream, limits): {new:?}"
    );
    assert!(gone.is_empty(), "these cross-format imports are gone: remove them from KNOWN: {gone:?}");
}

/// The scan context is the driver's own: no module but `scan.rs` and `lib.rs` names `scan`.
#[test]
fn only_the_driver_sees_the_scan_context() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for path in &files {
        let rel = path.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "scan.rs" || rel == "lib.rs" || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !imports(&text).contains("scan") && !text.contains("Ctx<"),
            "{rel} reaches into the driver's scan context; use crate::driver::Driver"
        );
    }
}
