//! The command-line contract: exit codes, the JSON report, explain and inspect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

mod common;
use common::{code, modelgate};

/// `posix.system("echo pwned")` as a protocol-0 pickle (threats.md P-02).
const EVIL_P0: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";
/// `mylab.models.Net()`: a class no allow-list knows (high, not critical).
const UNLISTED: &[u8] = b"\x80\x04\x8c\x0cmylab.models\x8c\x03Net\x93)R.";
/// `{"a": [1, 2]}` pickled with protocol 4.
const BENIGN_P4: &[u8] = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01K\x02es.";

fn report(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).expect("report written")).expect("report is JSON")
}

#[test]
fn benign_file_passes_with_exit_0_and_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dict.pkl"), BENIGN_P4).unwrap();
    let out = modelgate(&["scan", "dict.pkl", "--json", "report.json"], dir.path());
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let r = report(dir.path(), "report.json");
    assert_eq!(r["report_version"], 1);
    assert_eq!(r["modelgate_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["fail_on"], "high");
    let a = &r["artifacts"][0];
    assert_eq!(a["path"], "dict.pkl");
    assert_eq!(a["size"], BENIGN_P4.len());
    assert_eq!(a["format"], "pickle");
    assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(a["findings"].as_array().unwrap().len(), 0);
    assert_eq!(r["summary"]["artifacts"], 1);
    assert_eq!(r["summary"]["findings"], 0);
}

#[test]
fn malicious_pickle_fails_with_exit_1_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    // CVE-2025-10155: a protocol-0 pickle (no magic) saved under a weights name.
    std::fs::write(dir.path().join("weights.bin"), EVIL_P0).unwrap();
    let out = modelgate(&["scan", "--json", "r.json", "weights.bin"], dir.path());
    assert_eq!(code(&out), 1);
    let r = report(dir.path(), "r.json");
    assert_eq!(r["verdict"], "fail");
    let f = &r["artifacts"][0]["findings"][0];
    assert_eq!(f["rule"], "MG101");
    assert_eq!(f["name"], "pickle-denied-global");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["evidence"], "posix.system");
    assert_eq!(f["location"]["offset"], 0);
    assert!(f["location"]["member"].is_null());
    assert!(f["message"].as_str().unwrap().contains("REDUCE"));
    assert!(!f["fix"].as_str().unwrap().is_empty());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MG101") && stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn fail_on_moves_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.pkl"), EVIL_P0).unwrap();
    assert_eq!(code(&modelgate(&["scan", "--fail-on", "none", "evil.pkl"], dir.path())), 0);
    assert_eq!(code(&modelgate(&["scan", "--fail-on", "critical", "evil.pkl"], dir.path())), 1);
    // An unlisted global (high) passes at fail-on critical, fails at high.
    std::fs::write(dir.path().join("unlisted.pkl"), UNLISTED).unwrap();
    assert_eq!(code(&modelgate(&["scan", "--fail-on", "critical", "unlisted.pkl"], dir.path())), 0);
    assert_eq!(code(&modelgate(&["scan", "unlisted.pkl"], dir.path())), 1);
    let bad = modelgate(&["scan", "--fail-on", "severe", "evil.pkl"], dir.path());
    assert_eq!(code(&bad), 2);
}

#[test]
fn gate_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = modelgate(&["scan", "no-such-model.pt"], dir.path());
    assert_eq!(code(&missing), 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-model.pt"));
    assert_eq!(code(&modelgate(&["scan", "--no-such-flag"], dir.path())), 2);
    assert_eq!(code(&modelgate(&["frobnicate"], dir.path())), 2);
    std::fs::write(dir.path().join("p.toml"), "fail-on = \"high\"\nfial-on = \"low\"\n").unwrap();
    std::fs::write(dir.path().join("x.pkl"), BENIGN_P4).unwrap();
    let bad_policy = modelgate(&["scan", "--policy", "p.toml", "x.pkl"], dir.path());
    assert_eq!(code(&bad_policy), 2);
    let err = String::from_utf8_lossy(&bad_policy.stderr);
    assert!(err.contains("p.toml:2:1: ") && err.contains("fial-on"), "{err}");
    assert_eq!(code(&modelgate(&["scan", "--policy", "absent.toml", "x.pkl"], dir.path())), 2);
}

#[cfg(unix)]
#[test]
fn special_files_in_a_tree_are_an_error_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.pkl"), BENIGN_P4).unwrap();
    let status = Command::new("mkfifo").arg(dir.path().join("pipe")).status();
    if !status.is_ok_and(|s| s.success()) {
        return;
    }
    let out = modelgate(&["scan", "."], dir.path());
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pipe"));
}

#[test]
fn directories_are_scanned_by_content_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("sub")).unwrap();
    // picklescan's directory mode skipped all three of these (threats.md §7).
    std::fs::write(models.join("noext"), EVIL_P0).unwrap();
    std::fs::write(models.join("sub/model.weights"), EVIL_P0).unwrap();
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
    let mut h = header.to_vec();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(b' ');
    }
    h.push(b'\n');
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(&h);
    npy.extend_from_slice(EVIL_P0);
    std::fs::write(models.join("array.npy"), &npy).unwrap();
    std::fs::write(models.join("README.md"), "# a model\n").unwrap();
    let out = modelgate(&["scan", "models", "--json", "r.json"], dir.path());
    assert_eq!(code(&out), 1);
    let r = report(dir.path(), "r.json");
    let paths: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["models/README.md", "models/array.npy", "models/noext", "models/sub/model.weights"]);
    for a in &r["artifacts"].as_array().unwrap()[1..] {
        assert!(a["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "MG101"), "{a}");
    }
    let npy_finding = &r["artifacts"][1]["findings"][0];
    assert_eq!(npy_finding["location"]["member"], "<object array pickle>");
    // Same input, same bytes.
    let again = modelgate(&["scan", "models", "--json", "r2.json"], dir.path());
    assert_eq!(code(&again), 1);
    let first = std::fs::read(dir.path().join("r.json")).unwrap();
    assert_eq!(first, std::fs::read(dir.path().join("r2.json")).unwrap());
}

#[test]
fn an_empty_directory_passes_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = modelgate(&["scan", "empty"], dir.path());
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no files"));
}

#[test]
fn a_policy_file_in_the_working_directory_is_used() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unlisted.pkl"), UNLISTED).unwrap();
    assert_eq!(code(&modelgate(&["scan", "unlisted.pkl"], dir.path())), 1);
    std::fs::write(
        dir.path().join("modelgate.toml"),
        "[[allow.pickle]]\nglobal = \"mylab.models.Net\"\nreason = \"test: our own model class\"\n",
    )
    .unwrap();
    assert_eq!(code(&modelgate(&["scan", "unlisted.pkl"], dir.path())), 0);
    // The command line still wins over the file's threshold.
    std::fs::write(dir.path().join("evil.pkl"), EVIL_P0).unwrap();
    assert_eq!(code(&modelgate(&["scan", "--fail-on", "none", "evil.pkl"], dir.path())), 0);
}

#[test]
fn explain_describes_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let list = modelgate(&["explain"], dir.path());
    assert_eq!(code(&list), 0);
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    for line in text.lines() {
        let id = line.split_whitespace().next().unwrap();
        let one = modelgate(&["explain", id], dir.path());
        assert_eq!(code(&one), 0);
        let body = String::from_utf8_lossy(&one.stdout);
        assert!(body.contains("Why it matters") && body.contains("How to fix"), "{id}: {body}");
    }
    assert!(text.contains("MG101"));
    let by_name = modelgate(&["explain", "pickle-frame-violation"], dir.path());
    assert!(String::from_utf8_lossy(&by_name.stdout).starts_with("MG106"));
    assert_eq!(code(&modelgate(&["explain", "MG999"], dir.path())), 2);
}

#[test]
fn inspect_lists_opcodes_globals_and_calls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.pkl"), EVIL_P0).unwrap();
    let out = modelgate(&["inspect", "evil.pkl"], dir.path());
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GLOBAL") && text.contains("REDUCE"), "{text}");
    assert!(text.contains("posix.system") && text.contains("DENIED"), "{text}");
    let json = modelgate(&["inspect", "--json", "evil.pkl"], dir.path());
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["inventory"]["detail"]["globals"][0]["module"], "posix");
    assert_eq!(v["findings"][0]["rule"], "MG101");
}

/// Graph formats show their op inventory; TFLite builtin codes by their schema names.
#[test]
fn inspect_shows_graph_ops_by_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = modelgate(&["inspect", "tests/fixtures/benign/keras-tf/matmul.tflite"], &root);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("graph: operator_codes=1 ops [FULLY_CONNECTED×1]"), "{text}");
    let out =
        modelgate(&["inspect", "tests/fixtures/benign/keras-tf/tf_module_savedmodel/saved_model.pb"], &root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("graph: tags=serve") && text.contains("SaveV2×"), "{text}");
}

#[test]
fn the_readme_examples_behave_as_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = modelgate(&["scan", "examples", "--json", "-"], &root);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for a in r["artifacts"].as_array().unwrap() {
        let path = a["path"].as_str().unwrap();
        let rules: Vec<&str> =
            a["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
        if path.starts_with("examples/benign-model/")
            || path.starts_with("examples/ci/")
            || path.starts_with("examples/scale/")
        {
            assert!(rules.is_empty(), "{path}: {rules:?}");
        } else {
            assert!(path.starts_with("examples/malicious-model/"), "{path}");
            if path.ends_with(".bin") {
                assert_eq!(rules, ["MG101"], "{path}");
            }
        }
    }
}

/// `tf.saved_model.save` and Keras 3 `model.export()` directories pass with no finding at all:
/// the checkpoint's data shards are recognised through their index, as TensorFlow finds them.
#[test]
fn saved_model_directories_pass_with_zero_findings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = modelgate(
        &[
            "scan",
            "tests/fixtures/benign/keras-tf/tf_module_savedmodel",
            "tests/fixtures/benign/keras-tf/keras3_export",
            "--json",
            "-",
        ],
        &root,
    );
    assert_eq!(code(&out), 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["findings"], 0, "{r}");
    let shards: Vec<&Value> = r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["path"].as_str().unwrap().contains("variables.data-"))
        .collect();
    assert_eq!(shards.len(), 2);
    assert!(shards.iter().all(|a| a["format"] == "tf-checkpoint-data"), "{shards:?}");

    // Without its index a shard is just an unrecognised binary again.
    let dir = tempfile::tempdir().unwrap();
    let shard = "variables.data-00000-of-00001";
    std::fs::copy(
        root.join("tests/fixtures/benign/keras-tf/tf_module_savedmodel/variables").join(shard),
        dir.path().join(shard),
    )
    .unwrap();
    let out = modelgate(&["scan", ".", "--json", "-"], dir.path());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["artifacts"][0]["findings"][0]["rule"], "MG003", "{r}");
}

/// The checkpoint index says how many shards there are and how far into each its tensors reach:
/// a cut shard, or a shard named for another shard count, fails the index (MG005).
#[test]
fn a_shard_that_does_not_match_its_index_is_malformed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let from = root.join("tests/fixtures/benign/keras-tf/keras3_export/variables");
    let shard = "variables.data-00000-of-00001";
    let index_rules = |dir: &Path| {
        let out = modelgate(&["scan", ".", "--json", "-"], dir);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let index =
            r["artifacts"].as_array().unwrap().iter().find(|a| a["path"] == "variables.index").cloned();
        let index = index.unwrap_or_else(|| panic!("no index in {r}"));
        assert_eq!(index["format"], "tf-checkpoint-index");
        let rules: Vec<String> = index["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        (code(&out), rules, index.to_string())
    };

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("variables.index"), dir.path().join("variables.index")).unwrap();
    let data = std::fs::read(from.join(shard)).unwrap();
    std::fs::write(dir.path().join(shard), &data).unwrap();
    assert_eq!(index_rules(dir.path()).1, Vec::<String>::new());

    std::fs::write(dir.path().join(shard), &data[..data.len() - 1]).unwrap();
    let (exit, rules, index) = index_rules(dir.path());
    assert_eq!((exit, rules), (1, vec!["MG005".to_string()]));
    assert!(index.contains(&format!("up to byte {}", data.len())), "{index}");

    std::fs::remove_file(dir.path().join(shard)).unwrap();
    std::fs::write(dir.path().join("variables.data-00000-of-00002"), &data).unwrap();
    let (exit, rules, index) = index_rules(dir.path());
    assert_eq!((exit, rules), (1, vec!["MG005".to_string()]));
    assert!(index.contains("one of 2 shards"), "{index}");
}
