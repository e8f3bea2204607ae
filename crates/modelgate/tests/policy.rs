//! The policy file, digest pins and suppressions, end to end through the command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Output;

mod common;
use common::{code, modelgate};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn rules_of(r: &Value, path: &str) -> Vec<String> {
    let a = r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {r}"));
    a["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const BENIGN: &[u8] = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01K\x02es.";
const UNLISTED: &[u8] = b"\x80\x04\x8c\x0cmylab.models\x8c\x03Net\x93)R.";
const EVIL: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";

/// A model directory with two files and a single-file model next to it.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models/bert")).unwrap();
    std::fs::write(dir.path().join("models/bert/config.json"), "{\"hidden\": 4}\n").unwrap();
    std::fs::write(dir.path().join("models/bert/weights.pkl"), BENIGN).unwrap();
    std::fs::write(dir.path().join("models/head.pkl"), BENIGN).unwrap();
    dir
}

#[test]
fn lock_then_scan_locked_reports_every_kind_of_drift() {
    let dir = repo();
    let d = dir.path();
    let lock = modelgate(&["lock", "models/bert", "models/head.pkl"], d);
    assert_eq!(code(&lock), 0, "{}", stderr(&lock));
    let text = std::fs::read_to_string(d.join("modelgate.lock")).unwrap();
    assert!(text.contains("root-digest = \"sha256:") && text.contains(&sha(BENIGN)), "{text}");
    // Stable: locking again changes nothing.
    assert_eq!(code(&modelgate(&["lock", "models/head.pkl", "models/bert"], d)), 0);
    assert_eq!(std::fs::read_to_string(d.join("modelgate.lock")).unwrap(), text);

    let clean = modelgate(&["scan", "--locked", "models", "--json", "-"], d);
    assert_eq!(code(&clean), 0, "{}", stderr(&clean));

    // One byte changed: MG701 with both digests.
    let mut changed = BENIGN.to_vec();
    changed[15] = b'b'; // the dict key "a" becomes "b": still a valid pickle
    std::fs::write(d.join("models/bert/weights.pkl"), &changed).unwrap();
    let out = modelgate(&["scan", "--locked", "models", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    assert_eq!(rules_of(&r, "models/bert/weights.pkl"), ["MG701"]);
    let msg = r["artifacts"][1]["findings"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains(&sha(BENIGN)) && msg.contains(&sha(&changed)), "{msg}");
    std::fs::write(d.join("models/bert/weights.pkl"), BENIGN).unwrap();

    // A file added to the pinned directory: MG702.
    std::fs::write(d.join("models/bert/extra.py"), "print('hi')\n").unwrap();
    let out = modelgate(&["scan", "--locked", "models", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    assert!(rules_of(&report(&out), "models/bert/extra.py").contains(&"MG702".to_string()));
    std::fs::remove_file(d.join("models/bert/extra.py")).unwrap();

    // A pinned file removed: MG703 on a "missing" artifact.
    std::fs::remove_file(d.join("models/head.pkl")).unwrap();
    let out = modelgate(&["scan", "--locked", "models", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    assert_eq!(rules_of(&r, "models/head.pkl"), ["MG703"]);
    let missing = r["artifacts"].as_array().unwrap().iter().find(|a| a["path"] == "models/head.pkl").unwrap();
    assert_eq!(missing["format"], "missing");

    // Scanning only part of the tree does not report the rest as missing.
    assert_eq!(code(&modelgate(&["scan", "--locked", "models/bert"], d)), 0);
}

#[test]
fn lockfile_paths_are_relative_to_the_lockfile_not_the_working_directory() {
    let dir = repo();
    let d = dir.path();
    assert_eq!(code(&modelgate(&["lock", "./models/bert", "models/head.pkl"], d)), 0);
    let text = std::fs::read_to_string(d.join("modelgate.lock")).unwrap();
    assert!(text.contains("path = \"models/bert\"") && text.contains("path = \"models/head.pkl\""), "{text}");

    // From the parent directory, with the repository spelt relatively and absolutely.
    let parent = d.parent().unwrap();
    let name = d.file_name().unwrap().to_str().unwrap();
    let lockfile = format!("{name}/modelgate.lock");
    for models in [format!("{name}/models"), d.join("models").to_string_lossy().into_owned()] {
        let out = modelgate(&["scan", "--locked", "--lockfile", &lockfile, &models, "--json", "-"], parent);
        assert_eq!(code(&out), 0, "{models}: {}", String::from_utf8_lossy(&out.stdout));
    }
    // Locking again from elsewhere writes the same lockfile.
    let abs = d.join("models/bert").to_string_lossy().into_owned();
    assert_eq!(code(&modelgate(&["lock", "--lockfile", &lockfile, &abs], parent)), 0);
    assert_eq!(std::fs::read_to_string(d.join("modelgate.lock")).unwrap(), text);

    // A missing pinned file is shown relative to where the scan ran.
    std::fs::remove_file(d.join("models/head.pkl")).unwrap();
    let out = modelgate(
        &["scan", "--locked", "--lockfile", &lockfile, &format!("{name}/models"), "--json", "-"],
        parent,
    );
    assert_eq!(code(&out), 1);
    assert_eq!(rules_of(&report(&out), &format!("{name}/models/head.pkl")), ["MG703"]);
}

#[test]
fn require_pins_in_the_policy_and_a_missing_lockfile() {
    let dir = repo();
    let d = dir.path();
    std::fs::write(d.join("modelgate.toml"), "require-pins = true\n").unwrap();
    let out = modelgate(&["scan", "models"], d);
    assert_eq!(code(&out), 2, "no lockfile is a gate error");
    assert!(stderr(&out).contains("modelgate lock"));
    assert_eq!(code(&modelgate(&["lock", "models"], d)), 0);
    assert_eq!(code(&modelgate(&["scan", "models"], d)), 0);
    std::fs::write(d.join("models/new.pkl"), BENIGN).unwrap();
    assert_eq!(code(&modelgate(&["scan", "models"], d)), 1);
}

#[test]
fn lfs_pointers_must_name_the_pinned_object() {
    let dir = repo();
    let d = dir.path();
    assert_eq!(code(&modelgate(&["lock", "models/head.pkl"], d)), 0);
    let pointer = |oid: &str| {
        format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n", BENIGN.len())
    };
    std::fs::write(d.join("models/head.pkl"), pointer(&sha(BENIGN))).unwrap();
    let out = modelgate(&["scan", "--locked", "models/head.pkl", "--json", "-"], d);
    assert_eq!(rules_of(&report(&out), "models/head.pkl"), ["MG008"], "not fetched, but the right object");
    std::fs::write(d.join("models/head.pkl"), pointer(&"0".repeat(64))).unwrap();
    let out = modelgate(&["scan", "--locked", "models/head.pkl", "--json", "-"], d);
    let mut rules = rules_of(&report(&out), "models/head.pkl");
    rules.sort();
    assert_eq!(rules, ["MG008", "MG701"]);
}

#[test]
fn suppressions_bind_to_digests_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("net.pkl"), UNLISTED).unwrap();
    let policy = |sha256: &str, expires: &str| {
        format!(
            "[[suppress]]\nrule = \"pickle-unlisted-global\"\npath = \"*.pkl\"\nsha256 = \"{sha256}\"\nreason = \"reviewed: our own class\"\nexpires = {expires}\n"
        )
    };
    std::fs::write(d.join("modelgate.toml"), policy(&sha(UNLISTED), "2999-12-31")).unwrap();
    let out = modelgate(&["scan", "net.pkl", "--json", "-"], d);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out);
    let f = &r["artifacts"][0]["findings"][0];
    assert_eq!(f["rule"], "MG102");
    assert_eq!(f["suppressed"]["reason"], "reviewed: our own class");
    assert_eq!(f["suppressed"]["expires"], "2999-12-31");
    assert_eq!(r["summary"]["suppressed"], 1);
    assert_eq!(r["summary"]["failing"], 0);

    // The file changes: the digest-bound suppression no longer applies.
    let mut other = UNLISTED.to_vec();
    other[5] = b'X';
    std::fs::write(d.join("net.pkl"), &other).unwrap();
    assert_eq!(code(&modelgate(&["scan", "net.pkl"], d)), 1);
    std::fs::write(d.join("net.pkl"), UNLISTED).unwrap();

    // Expired: the finding counts again, and the expiry is itself a finding.
    std::fs::write(d.join("modelgate.toml"), policy(&sha(UNLISTED), "2001-01-01")).unwrap();
    let out = modelgate(&["scan", "net.pkl", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    let mut rules = rules_of(&report(&out), "net.pkl");
    rules.sort();
    assert_eq!(rules, ["MG102", "MG704"]);
}

#[test]
fn trusted_keras_modules_and_tf_ops_but_never_denied_ones() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (from, to) in [
        ("needs-trust/keras-tf/keras3_custom_layer.keras", "custom.keras"),
        ("benign/keras-tf/unknown_op_saved_model.pb", "saved_model.pb"),
        ("benign/keras-tf/custom_op.tflite", "custom.tflite"),
        ("malicious/keras-tf/k02_functional_os_system.keras", "evil.keras"),
        ("malicious/keras-tf/flex_read_file.tflite", "flex_read_file.tflite"),
        ("benign/onnx/custom_domain_in_subgraph.onnx", "custom.onnx"),
    ] {
        std::fs::copy(fixtures.join(from), d.join(to)).unwrap();
    }
    let scan = |policy: Option<&str>| {
        if let Some(text) = policy {
            std::fs::write(d.join("p.toml"), text).unwrap();
        }
        let mut args = vec!["scan", ".", "--json", "-", "--fail-on", "medium"];
        if policy.is_some() {
            args.extend(["--policy", "p.toml"]);
        }
        let out = modelgate(&args, d);
        assert!(code(&out) < 2, "{}", stderr(&out));
        report(&out)
    };
    let r = scan(None);
    assert_eq!(rules_of(&r, "custom.keras"), ["MG402"]);
    assert_eq!(rules_of(&r, "saved_model.pb"), ["MG410"]);
    assert_eq!(rules_of(&r, "custom.tflite"), ["MG411", "MG411"]); // StringUpper, StringLength
    assert!(rules_of(&r, "custom.onnx").iter().all(|r| r == "MG502"), "{r}");
    assert!(!rules_of(&r, "custom.onnx").is_empty(), "{r}");

    let r = scan(Some(
        r#"
[[allow.keras-module]]
name = "mylab"
reason = "our own layers package"

[[allow.tf-op]]
name = "EvilOp"
reason = "our custom kernel, reviewed"

[[allow.tf-op]]
name = "StringUpper"
reason = "registered by our serving binary"

[[allow.tf-op]]
name = "StringLength"
reason = "registered by our serving binary"

[[allow.onnx-domain]]
name = "ai.custom.domain"
reason = "our custom operator library"

[[allow.tf-op]]
name = "FlexReadFile"
reason = "trying to trust a file-reading op"
"#,
    ));
    assert!(rules_of(&r, "custom.keras").is_empty(), "{r}");
    assert!(rules_of(&r, "saved_model.pb").is_empty(), "{r}");
    assert!(rules_of(&r, "custom.tflite").is_empty(), "{r}");
    assert!(rules_of(&r, "custom.onnx").is_empty(), "{r}");
    // Trusting a name never clears what a file-reading op is, nor os.system in a Keras config.
    assert!(rules_of(&r, "flex_read_file.tflite").contains(&"MG408".to_string()), "{r}");
    assert_eq!(rules_of(&r, "evil.keras"), ["MG402"]);

    // A package that only shares a prefix is not trusted.
    let r = scan(Some("[[allow.keras-module]]\nname = \"myla\"\nreason = \"prefix\"\n"));
    assert_eq!(rules_of(&r, "custom.keras"), ["MG402"]);

    // A denied module cannot be trusted at all: the policy is rejected.
    std::fs::write(d.join("p.toml"), "[[allow.keras-module]]\nname = \"os\"\nreason = \"no\"\n").unwrap();
    let out = modelgate(&["scan", ".", "--policy", "p.toml"], d);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot be trusted"), "{}", stderr(&out));
}

#[test]
fn rule_overrides_and_path_filters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models")).unwrap();
    std::fs::create_dir_all(d.join("tests/data")).unwrap();
    std::fs::write(d.join("models/net.pkl"), UNLISTED).unwrap();
    std::fs::write(d.join("tests/data/evil.pkl"), EVIL).unwrap();
    std::fs::write(
        d.join("modelgate.toml"),
        "exclude = [\"tests/\"]\n[rules.MG102]\nseverity = \"critical\"\n",
    )
    .unwrap();
    let out = modelgate(&["scan", ".", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    assert_eq!(r["artifacts"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["artifacts"][1]["findings"][0]["severity"], "critical");
    // An excluded file named on the command line is still scanned.
    let out = modelgate(&["scan", "tests/data/evil.pkl"], d);
    assert_eq!(code(&out), 1);
    std::fs::write(
        d.join("modelgate.toml"),
        "[rules.MG102]\nenabled = false\nreason = \"test\"\nexclude = []\n",
    )
    .unwrap();
    assert_eq!(
        code(&modelgate(&["scan", "models"], d)),
        2,
        "`exclude` inside [rules.MG102] is an unknown key"
    );
    std::fs::write(
        d.join("modelgate.toml"),
        "exclude = [\"tests/\"]\n[rules.MG102]\nenabled = false\nreason = \"test\"\n",
    )
    .unwrap();
    assert_eq!(code(&modelgate(&["scan", "."], d)), 0);
}

#[test]
fn policy_init_check_and_doc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&modelgate(&["policy", "check"], d)), 2, "no policy file");
    let init = modelgate(&["policy", "init"], d);
    assert_eq!(code(&init), 0);
    assert_eq!(code(&modelgate(&["policy", "init"], d)), 2, "does not overwrite");
    let check = modelgate(&["policy", "check"], d);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok"));
    // Every commented example in the starter file is valid once uncommented.
    let starter = std::fs::read_to_string(d.join("modelgate.toml")).unwrap();
    let uncommented: String = starter
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.starts_with('[')
                || l.contains(" = ")
                    && !l.contains("sha256 =")
                    && l.split(' ')
                        .next()
                        .is_some_and(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        })
        .map(|l| format!("{}\n", l.split("  #").next().unwrap_or(l)))
        .collect();
    std::fs::write(d.join("full.toml"), &uncommented).unwrap();
    let full = modelgate(&["policy", "check", "full.toml"], d);
    assert_eq!(code(&full), 0, "{uncommented}\n{}", stderr(&full));
    std::fs::write(d.join("bad.toml"), "fail-on = \"high\"\n[rules.MG301]\nseverity = \"info\"\n").unwrap();
    let bad = modelgate(&["policy", "check", "bad.toml"], d);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("reason"));
}

#[test]
fn docs_policy_md_is_generated_from_the_catalogue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = modelgate(&["policy", "doc"], &root);
    assert_eq!(code(&out), 0);
    let committed = std::fs::read_to_string(root.join("docs/policy.md")).unwrap();
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "docs/policy.md is out of date: run `cargo run -q -p modelgate -- policy doc > docs/policy.md`"
    );
}

/// Every `toml` block in the user documentation is a policy that `policy check` accepts.
#[test]
fn policies_in_the_docs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for doc in ["README.md", "docs/getting-started.md", "docs/policy.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let policy = block.split("```").next().unwrap();
            // Indented blocks (inside list items) are unindented first.
            let policy: String = policy.lines().map(|l| l.trim_start().to_string() + "\n").collect();
            let file = dir.path().join(format!("{}-{i}.toml", doc.replace('/', "-")));
            std::fs::write(&file, &policy).unwrap();
            let out = modelgate(&["policy", "check", file.to_str().unwrap()], dir.path());
            assert_eq!(code(&out), 0, "{doc} block {i}:\n{policy}\n{}", stderr(&out));
            checked += 1;
        }
    }
    assert!(checked >= 2, "found only {checked} policy blocks");
}

/// `[[allow.pickle]]` trusts a class a skops schema names just as it trusts a pickle's global;
/// the denied one next to it stays critical.
#[test]
fn allow_pickle_covers_skops_imports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let schema = |module: &str| {
        format!(
            r#"{{"__loader__": "ObjectNode", "__module__": "{module}", "__class__": "Net", "protocol": 2,
            "_skops_version": "0.16.0", "content": {{"__loader__": "DictNode", "__module__": "builtins",
            "__class__": "dict", "content": {{}}}}}}"#
        )
    };
    std::fs::write(d.join("mine.json"), schema("mylab.models")).unwrap();
    std::fs::write(d.join("evil.json"), schema("posix").replace("ObjectNode", "FunctionNode")).unwrap();
    std::fs::write(d.join("p.toml"), "[[allow.pickle]]\nmodule = \"mylab\"\nreason = \"our estimators\"\n")
        .unwrap();
    let out = modelgate(&["scan", ".", "--json", "-"], d);
    let r = report(&out);
    assert_eq!(rules_of(&r, "mine.json"), ["MG102"]);
    assert_eq!(rules_of(&r, "evil.json"), ["MG101"]); // the whole posix module is denied
    let out = modelgate(&["scan", ".", "--json", "-", "--policy", "p.toml"], d);
    let r = report(&out);
    assert!(rules_of(&r, "mine.json").is_empty(), "{r}");
    assert_eq!(rules_of(&r, "evil.json"), ["MG101"]);
    assert_eq!(code(&out), 1);
}

/// A policy file with several mistakes: `policy check` and `scan` both report every one at once,
/// each on its own line with the file, line and column, and exit 2 (the gate could not run).
#[test]
fn every_policy_error_is_reported_at_once_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = "fail-on = \"severe\"\n[rules.MG999]\nseverity = \"low\"\n[[allow.pickle]]\nglobal = \"os.system\"\nreason = \"x\"\n";
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    std::fs::write(dir.path().join("m.pkl"), BENIGN).unwrap();
    for args in
        [&["policy", "check", "--policy", "bad.toml"][..], &["scan", "--policy", "bad.toml", "m.pkl"][..]]
    {
        let out = modelgate(args, dir.path());
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("modelgate: error: bad.toml:")).collect();
        assert_eq!(lines.len(), 3, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("modelgate: error: bad.toml:1:11: ") && lines[0].contains("severe"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("modelgate: error: bad.toml:2:8: ") && lines[1].contains("MG999"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("modelgate: error: bad.toml:4:1: ") && lines[2].contains("deny-list"),
            "{err}"
        );
    }
}
