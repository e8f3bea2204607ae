//! Every report format: validated against the official schemas (taken from registry packages by
//! `support/schemas/validate.py`), checked for the properties consumers rely on, and pinned by
//! golden files (regenerate with `MODELGATE_BLESS=1 cargo test -p modelgate --test reports`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run modelgate")
}

fn validate(kind: &[&str], files: &[&Path]) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("support/schemas/validate.py")).args(kind).args(files);
    let out = cmd.output().expect("python3 runs support/schemas/validate.py");
    assert!(
        out.status.success(),
        "{kind:?} validation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Scans the whole fixture corpus and the examples into every format.
fn corpus_reports(dir: &Path, spec: &str) -> Output {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    modelgate(
        &[
            "scan",
            "tests/fixtures",
            "examples",
            "--json",
            &p("r.json"),
            "--sbom",
            &p("bom.json"),
            "--sbom-spec",
            spec,
            "--sarif",
            &p("r.sarif"),
            "--junit",
            &p("junit.xml"),
            "--gitlab-codequality",
            &p("cq.json"),
            "--gitlab-sast",
            &p("sast.json"),
            "-q",
        ],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    )
}

#[test]
fn cyclonedx_boms_validate_for_every_spec() {
    let dir = tempfile::tempdir().unwrap();
    for spec in ["1.5", "1.6", "1.7"] {
        let out = corpus_reports(dir.path(), spec);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let bom_path = dir.path().join(format!("bom-{spec}.json"));
        std::fs::rename(dir.path().join("bom.json"), &bom_path).unwrap();
        validate(&["cyclonedx", spec], &[&bom_path]);
        let bom = read_json(&bom_path);
        assert_eq!(bom["specVersion"], spec);
        assert!(bom["metadata"]["component"]["bom-ref"].is_string(), "GUAC needs metadata.component");
        // Every finding of the JSON report is a vulnerability affecting a component of the BOM.
        let report = read_json(&dir.path().join("r.json"));
        let findings: usize = report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["findings"].as_array().unwrap().len())
            .sum();
        let vulns = bom["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len(), findings);
        let serial = bom["serialNumber"].as_str().unwrap().strip_prefix("urn:uuid:").unwrap().to_string();
        let mut refs = BTreeSet::new();
        fn collect(c: &Value, refs: &mut BTreeSet<String>) {
            assert!(
                refs.insert(c["bom-ref"].as_str().unwrap().to_string()),
                "duplicate bom-ref {}",
                c["bom-ref"]
            );
            for n in c["components"].as_array().into_iter().flatten() {
                collect(n, refs);
            }
        }
        for c in bom["components"].as_array().unwrap() {
            collect(c, &mut refs);
        }
        refs.insert("scan-root".into());
        for v in vulns {
            let link = v["affects"][0]["ref"].as_str().unwrap();
            let target = link
                .strip_prefix(&format!("urn:cdx:{serial}/1#"))
                .unwrap_or_else(|| panic!("not a BOM-link: {link}"));
            let target = target.replace("%20", " ");
            assert!(refs.contains(&target), "{link} names no component");
            assert!(v["analysis"]["state"].is_string(), "GUAC needs analysis.state");
        }
        let models = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "machine-learning-model")
            .count();
        assert!(models > 100, "{models} model components");
    }
    // Deterministic: same inputs, same epoch, same bytes.
    let again = tempfile::tempdir().unwrap();
    corpus_reports(again.path(), "1.7");
    assert_eq!(
        std::fs::read(again.path().join("bom.json")).unwrap(),
        std::fs::read(dir.path().join("bom-1.7.json")).unwrap()
    );
}

/// The model card is filled from what the files say: config.json, the README front matter,
/// safetensors and GGUF headers (real transformers / huggingface_hub / gguf output).
#[test]
fn bom_model_cards_come_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let bom_path = dir.path().join("bom.json");
    let out = modelgate(
        &[
            "scan",
            "tests/fixtures/benign/hf-repo",
            "tests/fixtures/benign/gguf/tiny_llama3_template.gguf",
            "--sbom",
            bom_path.to_str().unwrap(),
            "--sbom-spec",
            "1.5",
            "-q",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    validate(&["cyclonedx", "1.5"], &[&bom_path]);
    let bom = read_json(&bom_path);
    let component = |r: &str| {
        bom["components"].as_array().unwrap().iter().find(|c| c["bom-ref"] == r).cloned().unwrap_or_else(
            || {
                panic!("no component {r} in {bom}");
            },
        )
    };
    let props = |c: &Value| -> BTreeMap<String, String> {
        c["modelCard"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["value"].as_str().unwrap().to_string()))
            .collect()
    };

    let repo = component("model:tests/fixtures/benign/hf-repo");
    let params = &repo["modelCard"]["modelParameters"];
    assert_eq!(params["task"], "text-generation");
    assert_eq!(params["architectureFamily"], "llama");
    assert_eq!(params["modelArchitecture"], "LlamaForCausalLM");
    assert_eq!(params["datasets"][0]["ref"], "data:HuggingFaceH4/ultrachat_200k");
    // Model cards write `apache-2.0`; the SPDX id is `Apache-2.0`.
    assert_eq!(repo["licenses"][0]["license"]["id"], "Apache-2.0");
    let ancestor = &repo["pedigree"]["ancestors"][0];
    assert_eq!(ancestor["name"], "meta-llama/Llama-3.2-1B");
    assert_eq!(ancestor["purl"], "pkg:huggingface/meta-llama/Llama-3.2-1B");
    let p = props(&repo);
    assert_eq!(p["cdx:ai-ml:model:hyperparameter:context_length"], "128");
    assert_eq!(p["cdx:ai-ml:model:hyperparameter:vocab_size"], "64");
    assert_eq!(p["cdx:ai-ml:model:language"], "en");
    assert!(p["modelgate:parameters"].parse::<u64>().unwrap() > 1000, "{p:?}");
    assert!(p["cdx:ai-ml:model:parameter:count"].ends_with('K'), "{p:?}");
    assert!(p["modelgate:dtypes"].contains("F32"), "{p:?}");
    // The dataset is a `data` component the model depends on.
    assert_eq!(component("data:HuggingFaceH4/ultrachat_200k")["type"], "data");
    let deps = bom["dependencies"].as_array().unwrap();
    let repo_deps = deps.iter().find(|d| d["ref"] == "model:tests/fixtures/benign/hf-repo").unwrap();
    assert_eq!(repo_deps["dependsOn"][0], "data:HuggingFaceH4/ultrachat_200k");

    let gguf = component("model:tests/fixtures/benign/gguf/tiny_llama3_template.gguf");
    let p = props(&gguf);
    assert_eq!(gguf["modelCard"]["modelParameters"]["architectureFamily"], "llama", "{gguf}");
    assert!(p.contains_key("modelgate:chat-template"), "{p:?}");
    assert!(p.contains_key("cdx:ai-ml:model:hyperparameter:context_length"), "{p:?}");
}

/// TensorFlow checkpoints and skops files fill the model card too: parameters and dtypes from
/// the checkpoint index, the estimator class and skops version from the schema.
#[test]
fn bom_model_cards_from_checkpoints_and_skops() {
    let dir = tempfile::tempdir().unwrap();
    let bom_path = dir.path().join("bom.json");
    let out = modelgate(
        &[
            "scan",
            "tests/fixtures/benign/keras-tf/keras3_export",
            "tests/fixtures/benign/skops/pipeline.skops",
            "--sbom",
            bom_path.to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    validate(&["cyclonedx", "1.6"], &[&bom_path]);
    let bom = read_json(&bom_path);
    let card = |r: &str| -> (Value, BTreeMap<String, String>) {
        let c = bom["components"].as_array().unwrap().iter().find(|c| c["bom-ref"] == r).cloned();
        let c = c.unwrap_or_else(|| panic!("no component {r} in {bom}"));
        let props = c["modelCard"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["value"].as_str().unwrap().to_string()))
            .collect();
        (c["modelCard"].clone(), props)
    };
    let (_, p) = card("model:tests/fixtures/benign/keras-tf/keras3_export");
    assert_eq!(p["modelgate:parameters"], "21", "{p:?}");
    assert_eq!(p["modelgate:dtypes"], "F32", "{p:?}");
    let (card, p) = card("model:tests/fixtures/benign/skops/pipeline.skops");
    assert_eq!(card["modelParameters"]["modelArchitecture"], "sklearn.pipeline.Pipeline", "{card}");
    assert_eq!(p["modelgate:skops-version"], "0.16.0", "{p:?}");
}

#[test]
fn sarif_validates_and_fingerprints_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    corpus_reports(dir.path(), "1.6");
    let sarif_path = dir.path().join("r.sarif");
    validate(&["sarif"], &[&sarif_path]);
    validate(&["sarif-multitool"], &[&sarif_path]);
    let sarif = read_json(&sarif_path);
    let run = &sarif["runs"][0];
    // Every rule of the catalogue is declared, in catalogue order, as `explain` lists them.
    let explained = String::from_utf8(modelgate(&["explain"], &[]).stdout).unwrap();
    let ids: Vec<&str> = explained.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ids);
    for r in run["tool"]["driver"]["rules"].as_array().unwrap() {
        let score: f64 = r["properties"]["security-severity"].as_str().unwrap().parse().unwrap();
        assert!((0.1..=10.0).contains(&score));
        assert!(r["help"]["markdown"].as_str().unwrap().contains("modelgate explain"));
    }
    let results = run["results"].as_array().unwrap();
    let report = read_json(&dir.path().join("r.json"));
    let findings: usize =
        report["artifacts"].as_array().unwrap().iter().map(|a| a["findings"].as_array().unwrap().len()).sum();
    assert_eq!(results.len(), findings);
    for r in results {
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            !uri.starts_with('/') && !uri.contains("file:") && !uri.contains('!') && !uri.contains('<'),
            "{uri}"
        );
        assert!(uri.starts_with("tests/fixtures/") || uri.starts_with("examples/"), "{uri}");
        assert_eq!(r["ruleId"], rules[r["ruleIndex"].as_u64().unwrap() as usize]);
    }
    // Same scan again: identical fingerprints.
    let again = tempfile::tempdir().unwrap();
    corpus_reports(again.path(), "1.6");
    let prints = |s: &Value| -> Vec<String> {
        s["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["partialFingerprints"]["primaryLocationLineHash"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(prints(&sarif), prints(&read_json(&again.path().join("r.sarif"))));
}

#[test]
fn gitlab_and_junit_reports_have_the_expected_shape() {
    let dir = tempfile::tempdir().unwrap();
    corpus_reports(dir.path(), "1.6");
    let cq = read_json(&dir.path().join("cq.json"));
    for issue in cq.as_array().unwrap() {
        assert!(
            ["info", "minor", "major", "critical", "blocker"].contains(&issue["severity"].as_str().unwrap())
        );
        assert!(issue["location"]["path"].as_str().unwrap().len() > 3);
        assert_eq!(issue["location"]["lines"]["begin"], 1);
        assert_eq!(issue["fingerprint"].as_str().unwrap().len(), 32);
    }
    let fingerprints: BTreeSet<&str> =
        cq.as_array().unwrap().iter().map(|i| i["fingerprint"].as_str().unwrap()).collect();
    assert_eq!(fingerprints.len(), cq.as_array().unwrap().len(), "fingerprints are unique");
    let sast = read_json(&dir.path().join("sast.json"));
    assert_eq!(sast["scan"]["type"], "sast");
    assert!(sast["scan"]["start_time"].as_str().unwrap().len() == 19);
    for v in sast["vulnerabilities"].as_array().unwrap() {
        assert_eq!(v["identifiers"][0]["type"], "modelgate_rule");
        assert_eq!(v["id"].as_str().unwrap().len(), 36);
    }
    let junit = dir.path().join("junit.xml");
    let parsed = Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.get('tests'), r.get('failures'), len(r.iter('testcase').__class__.__name__))", junit.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(parsed.status.success(), "JUnit XML does not parse: {}", String::from_utf8_lossy(&parsed.stderr));
    let report = read_json(&dir.path().join("r.json"));
    let text = String::from_utf8(parsed.stdout).unwrap();
    let mut it = text.split_whitespace();
    assert_eq!(it.next().unwrap(), report["summary"]["artifacts"].to_string());
}

#[test]
fn github_annotations_are_capped_escaped_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let evil = b"cposix\nsystem\n(S'echo pwned'\ntR.";
    for i in 0..14 {
        std::fs::write(dir.path().join(format!("m{i:02}.pkl")), evil).unwrap();
    }
    std::fs::write(dir.path().join("odd,name:50%.pkl"), evil).unwrap();
    let summary = dir.path().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["scan", "."])
        .current_dir(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 10, "{stdout}");
    assert!(
        errors.iter().all(|l| l.contains(",line=1,title=MG101 pickle-denied-global (critical)::")),
        "{errors:?}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ❌ modelgate: FAIL"), "{md}");
    assert!(md.contains("| 15 |") && md.contains("5 more finding(s)"), "{md}");
    assert!(md.contains("<details>") && md.contains("odd,name:50%.pkl"), "{md}");
    // The odd name, escaped as a workflow-command property.
    let one = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["scan", "odd,name:50%.pkl"])
        .current_dir(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    assert!(String::from_utf8(one.stdout).unwrap().contains("::error file=odd%2Cname%3A50%25.pkl,line=1,"));
}

/// Golden outputs for a small, mixed scan: every format, byte for byte.
#[test]
fn golden_reports() {
    let golden = root().join("tests/golden");
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let inputs = [
        "examples",
        "tests/fixtures/benign/anomalies/state_dict_crc32_disabled.pt",
        "tests/fixtures/malicious/pickle/p12_pathlib_dotted_os_system.pkl",
        "tests/fixtures/malicious/torch-zip/z02_crc_payload_byte_flipped.pt",
    ];
    for i in &inputs {
        assert!(root().join(i).exists(), "golden input {i} is gone: update the list");
    }
    let mut args = vec!["scan"];
    args.extend(inputs);
    let (j, s, b, u, c, g) = (
        p("report.json"),
        p("report.sarif"),
        p("bom.cdx.json"),
        p("junit.xml"),
        p("codequality.json"),
        p("sast.json"),
    );
    args.extend([
        "--json",
        &j,
        "--sarif",
        &s,
        "--sbom",
        &b,
        "--junit",
        &u,
        "--gitlab-codequality",
        &c,
        "--gitlab-sast",
        &g,
    ]);
    let summary = dir.path().join("summary.md");
    let out = modelgate(
        &args,
        &[
            ("SOURCE_DATE_EPOCH", "1700000000"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.path().join("stdout.txt"), &out.stdout).unwrap();
    let bless = std::env::var_os("MODELGATE_BLESS").is_some();
    let mut stale = Vec::new();
    for name in [
        "report.json",
        "report.sarif",
        "bom.cdx.json",
        "junit.xml",
        "codequality.json",
        "sast.json",
        "summary.md",
        "stdout.txt",
    ] {
        let got = std::fs::read(dir.path().join(name)).unwrap();
        let want_path = golden.join(name);
        if bless {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&want_path, &got).unwrap();
        } else if std::fs::read(&want_path).ok().as_deref() != Some(&got[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ: {stale:?}; if the change is intended, rerun with MODELGATE_BLESS=1 and review the diff"
    );
}

/// SARIF rules carry the severity the policy in force applies (a re-graded rule changes its
/// `security-severity` and level, a rule switched off is disabled), and each has a `helpUri`.
#[test]
fn sarif_rules_carry_the_policy_severity_and_a_help_uri() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.pkl"), b"cposix\nsystem\n(S'echo pwned'\ntR.").unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[rules.MG101]\nseverity = \"high\"\nreason = \"test: re-graded\"\n\n[rules.MG003]\nseverity = \"critical\"\n\n[rules.MG301]\nenabled = false\nreason = \"test: off\"\n",
    )
    .unwrap();
    let sarif = dir.path().join("r.sarif");
    let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["scan", ".", "--policy", policy.to_str().unwrap(), "--sarif", sarif.to_str().unwrap(), "-q"])
        .current_dir(dir.path())
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    validate(&["sarif"], &[&sarif]);
    validate(&["sarif-multitool"], &[&sarif]);
    let log = read_json(&sarif);
    let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(rule("MG101")["properties"]["security-severity"], "8.0");
    assert_eq!(rule("MG101")["properties"]["severity"], "high");
    assert_eq!(rule("MG003")["properties"]["security-severity"], "9.5");
    assert_eq!(rule("MG003")["defaultConfiguration"]["level"], "error");
    assert_eq!(rule("MG301")["defaultConfiguration"]["enabled"], false);
    assert_eq!(rule("MG102")["properties"]["security-severity"], "8.0", "untouched rules keep theirs");
    assert_eq!(rule("MG102")["properties"]["severity"], "high");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "MG101");
    assert_eq!(result["level"], "error");
    // Every rule's helpUri names its section of docs/policy.md, which exists.
    let policy_doc = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    for r in rules {
        let id = r["id"].as_str().unwrap();
        let uri = r["helpUri"].as_str().unwrap();
        assert!(uri.starts_with("https://github.com/modelgate/modelgate/blob/v"), "{uri}");
        assert!(uri.ends_with(&format!("/docs/policy.md#{}", id.to_ascii_lowercase())), "{uri}");
        assert!(policy_doc.contains(&format!("### {id}\n")), "docs/policy.md has no section {id}");
    }
    // Without a category, no automationDetails: the uploader derives one per job.
    assert!(log["runs"][0].get("automationDetails").is_none());
}

/// Report locations are relative to the repository root whatever spelling was passed and
/// wherever the scan ran; a file outside the repository is an absolute `file://` URI (SARIF) or
/// absolute path, never `%SRCROOT%`-relative `/…`.
#[test]
fn report_locations_are_relative_to_the_repository_root() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::create_dir_all(repo.join("models/sub")).unwrap();
    let evil = b"cposix\nsystem\n(S'echo pwned'\ntR.";
    std::fs::write(repo.join("models/sub/evil.pkl"), evil).unwrap();
    let outside = dir.path().join("outside.pkl");
    std::fs::write(&outside, evil).unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let r = |n: &str| reports.join(n).to_string_lossy().into_owned();
    let abs = repo.join("models/sub/evil.pkl").to_string_lossy().into_owned();
    let canonical_outside = outside.canonicalize().unwrap().to_string_lossy().into_owned();
    // (working directory, the path as passed, environment)
    type Case<'a> = (PathBuf, String, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (repo.join("models"), "sub/evil.pkl".into(), vec![]),
        (repo.join("models"), "./sub/../sub/evil.pkl".into(), vec![]),
        (repo.join("models/sub"), abs.clone(), vec![]),
        (
            dir.path().to_path_buf(),
            abs.clone(),
            vec![("CI_PROJECT_DIR", repo.to_string_lossy().into_owned())],
        ),
        (
            dir.path().to_path_buf(),
            "repo/models/sub/evil.pkl".into(),
            vec![("GITHUB_WORKSPACE", repo.to_string_lossy().into_owned())],
        ),
    ];
    for (n, (cwd, path, env)) in cases.into_iter().enumerate() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
        cmd.args([
            "scan",
            &path,
            outside.to_str().unwrap(),
            "-q",
            "--sarif",
            &r("r.sarif"),
            "--junit",
            &r("j.xml"),
        ])
        .args(["--gitlab-codequality", &r("cq.json"), "--gitlab-sast", &r("sast.json")])
        .current_dir(&cwd)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("CI_PROJECT_DIR");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let case = format!("{path} from {} {env:?}", cwd.display());
        assert_eq!(out.status.code(), Some(1), "{case}: {}", String::from_utf8_lossy(&out.stderr));
        if n == 0 {
            validate(&["sarif"], &[Path::new(&r("r.sarif"))]);
        }
        if n == 0 || n == 3 {
            // The SARIF Multitool with GitHub's rules (an absolute URI under %SRCROOT% is its
            // SARIF1004 error).
            validate(&["sarif-multitool"], &[Path::new(&r("r.sarif"))]);
        }
        let sarif = read_json(Path::new(&r("r.sarif")));
        let mut locations: Vec<Value> = sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["locations"][0]["physicalLocation"]["artifactLocation"].clone())
            .collect();
        locations.sort_by_key(|l| l["uri"].as_str().unwrap().to_string());
        assert_eq!(
            locations,
            vec![
                serde_json::json!({ "uri": format!("file://{canonical_outside}") }),
                serde_json::json!({ "uri": "models/sub/evil.pkl", "uriBaseId": "%SRCROOT%" }),
            ],
            "{case}"
        );
        let mut cq: Vec<String> = read_json(Path::new(&r("cq.json")))
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["location"]["path"].as_str().unwrap().to_string())
            .collect();
        cq.sort();
        assert_eq!(cq, [canonical_outside.clone(), "models/sub/evil.pkl".into()], "{case}");
        let mut sast: Vec<String> = read_json(Path::new(&r("sast.json")))["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["location"]["file"].as_str().unwrap().to_string())
            .collect();
        sast.sort();
        assert_eq!(sast, cq, "{case}");
        let junit = std::fs::read_to_string(r("j.xml")).unwrap();
        assert!(junit.contains("name=\"models/sub/evil.pkl\""), "{case}: {junit}");
    }
}
