//! Signatures end to end through the command line: `modelgate verify`, and `[[signatures]]`
//! enforced by `modelgate scan` (tests/fixtures/signing, made by the real model_signing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn modelgate(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelgate")).args(args).current_dir(cwd).output().expect("run modelgate")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/signing")
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).into_iter().filter_map(Result::ok) {
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A repository with two signed models (`models/tiny` with model.sig inside, `models/bert`
/// signed by certificate, its signature kept in `sigs/`), keys and PKI.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("model-with-sig"), &d.join("models/tiny"));
    copy_dir(&fixtures().join("model"), &d.join("models/bert"));
    copy_dir(&fixtures().join("keys"), &d.join("keys"));
    copy_dir(&fixtures().join("pki"), &d.join("pki"));
    copy_dir(&fixtures().join("sigs"), &d.join("sigs"));
    dir
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

fn rules(r: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in r["artifacts"].as_array().unwrap() {
        for f in a["findings"].as_array().unwrap() {
            out.push((a["path"].as_str().unwrap().to_string(), f["rule"].as_str().unwrap().to_string()));
        }
    }
    out.retain(|(_, rule)| rule.starts_with("MG8"));
    out.sort();
    out
}

#[test]
fn verify_prints_what_was_verified() {
    let d = fixtures();
    let out = modelgate(
        &["verify", "model", "--signature", "sigs/model.key-p256.sig", "--key", "keys/p256.pub"],
        &d,
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("VERIFIED  model (model_signing, key mode)"), "{text}");
    assert!(
        text.contains("root digest: sha256:ef8369f31b13fac9f4792717fdbb82456d6eef9a35cf9e65b25ec7a17e4a444f")
    );
    assert!(text.contains("files:       6") && text.contains("tokenizer/vocab.txt"), "{text}");

    // Discovery: model.sig inside the directory.
    let out = modelgate(&["verify", "model-with-sig", "--key", "keys/p256.pub", "--json"], &d);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["signature"], "model-with-sig/model.sig");
    assert_eq!(j["mode"], "key");
    assert_eq!(j["files"].as_array().unwrap().len(), 6);

    // Certificate mode, with the SAN exact or as an anchored regexp.
    let cert =
        ["verify", "model", "--signature", "sigs/model.cert-leaf.sig", "--certificate-chain", "pki/root.crt"];
    assert_eq!(code(&modelgate(&cert, &d)), 0);
    let with = |extra: &[&str]| {
        let mut a = cert.to_vec();
        a.extend_from_slice(extra);
        modelgate(&a, &d)
    };
    assert_eq!(code(&with(&["--identity", "ml-release@example.com"])), 0);
    assert_eq!(code(&with(&["--identity-regexp", r".*@example\.com"])), 0);
    let out = with(&["--identity-regexp", "ml-release"]);
    assert_eq!(code(&out), 1, "an unanchored-looking pattern must match the whole SAN");
    assert!(stdout(&out).contains("does not match the required identity"), "{}", stdout(&out));

    // Single file.
    let out = modelgate(
        &[
            "verify",
            "model/model.safetensors",
            "--signature",
            "sigs/single-file.key-p256.sig",
            "--key",
            "keys/p256.pub",
        ],
        &d,
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn verify_says_why_not() {
    let d = fixtures();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--signature", "sigs/model.key-p256.sig", "--key", "keys/other-p256.pub"],
            "does not verify with this key",
        ),
        (
            &["--signature", "sigs/model.cert-leaf.sig", "--certificate-chain", "pki/other-root.crt"],
            "does not lead to a root",
        ),
        (
            &["--signature", "sigs/model.cert-expired-leaf.sig", "--certificate-chain", "pki/root.crt"],
            "expired on 2021-01-01",
        ),
        (&["--signature", "sigs/model.cert-ca-leaf.sig", "--certificate-chain", "pki/root.crt"], "CA:TRUE"),
        (
            &[
                "--signature",
                "sigs/model.cert-leaf.sig",
                "--certificate-chain",
                "pki/root.crt",
                "--identity",
                "x@example.com",
            ],
            "does not match the required identity",
        ),
    ];
    for (args, why) in cases {
        let mut a = vec!["verify", "model"];
        a.extend_from_slice(args);
        let out = modelgate(&a, &d);
        assert_eq!(code(&out), 1, "{a:?}: {}{}", stdout(&out), stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with("NOT VERIFIED  model") && text.contains(why), "{a:?}: {text}");
    }
    // Tampered: one byte.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&d.join("model"), &dir.path().join("m"));
    std::fs::write(dir.path().join("m/config.json"), "{}").unwrap();
    let sig = d.join("sigs/model.key-p256.sig");
    let key = d.join("keys/p256.pub");
    let out = modelgate(
        &["verify", "m", "--signature", sig.to_str().unwrap(), "--key", key.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("1 changed: config.json (signed sha256 35592f4f"), "{}", stdout(&out));
}

#[test]
fn verify_usage_and_unreadable_inputs_exit_2() {
    let d = fixtures();
    let cases: &[&[&str]] = &[
        &["verify", "model", "--signature", "sigs/model.key-p256.sig"],
        &[
            "verify",
            "model",
            "--signature",
            "sigs/model.key-p256.sig",
            "--key",
            "keys/p256.pub",
            "--identity",
            "x",
        ],
        &["verify", "model", "--signature", "sigs/model.key-p256.sig", "--issuer", "https://x"],
        &["verify", "model", "--signature", "sigs/model.key-p256.sig", "--key", "no-such.pub"],
        &["verify", "model", "--signature", "sigs/model.key-p256.sig", "--key", "pki/root.crt"],
        &["verify", "model", "--signature", "no-such.sig", "--key", "keys/p256.pub"],
        &["verify", "no-such-model", "--key", "keys/p256.pub"],
        &["verify", "model", "--key", "keys/p256.pub"],
        &[
            "verify",
            "model",
            "--identity-regexp",
            "(",
            "--issuer",
            "https://x",
            "--signature",
            "sigs/model.key-p256.sig",
        ],
    ];
    for args in cases {
        let out = modelgate(args, &d);
        assert_eq!(code(&out), 2, "{args:?}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn scan_enforces_signature_tables() {
    let dir = repo();
    let d = dir.path();
    std::fs::write(
        d.join("modelgate.toml"),
        r#"
[[signatures]]
path = "models/tiny"
keys = ["keys/p256.pub"]

[[signatures]]
path = "models/bert"
ca-roots = ["pki/root.crt"]
identity-regexp = 'https://github\.com/example-org/tiny-model/\.github/workflows/release\.yml@refs/tags/v.*'
signature = "sigs/model.cert-leaf.sig"
"#,
    )
    .unwrap();
    let out = modelgate(&["scan", "models", "--json", "-", "--fail-on", "critical"], d);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out);
    assert!(rules(&r).is_empty(), "{:?}", rules(&r));
    let sigs = r["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    let bert = &sigs[0];
    assert_eq!(bert["model"], "models/bert");
    assert_eq!(bert["verified"], true);
    assert_eq!(bert["mode"], "certificate");
    assert_eq!(bert["format"], "model_signing");
    assert_eq!(
        bert["root_digest"],
        "sha256:ef8369f31b13fac9f4792717fdbb82456d6eef9a35cf9e65b25ec7a17e4a444f"
    );
    assert_eq!(bert["files"].as_array().unwrap().len(), 6);
    assert_eq!(bert["signer"]["chain"].as_array().unwrap().len(), 3);
    assert_eq!(sigs[1]["signature"], "models/tiny/model.sig");
    // The signature file inside the model is JSON, nothing more.
    let sig =
        r["artifacts"].as_array().unwrap().iter().find(|a| a["path"] == "models/tiny/model.sig").unwrap();
    assert_eq!(sig["format"], "json");
    assert!(sig["findings"].as_array().unwrap().is_empty());
    let text = stdout(&modelgate(&["scan", "models", "--fail-on", "critical"], d));
    assert!(text.contains("signature verified: models/tiny (model_signing, key mode"), "{text}");

    // Tamper with both models: a changed file, an added file, a removed file.
    std::fs::write(d.join("models/tiny/config.json"), "{}").unwrap();
    std::fs::write(d.join("models/tiny/tokenizer/extra.py"), "print(1)\n").unwrap();
    std::fs::remove_file(d.join("models/bert/README.md")).unwrap();
    let out = modelgate(&["scan", "models", "--json", "-", "--fail-on", "critical"], d);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    let pair = |p: &str, rule: &str| (p.to_string(), rule.to_string());
    assert_eq!(
        rules(&r),
        [
            pair("models/bert/README.md", "MG806"),
            pair("models/tiny/config.json", "MG804"),
            pair("models/tiny/tokenizer/extra.py", "MG805"),
        ]
    );
    let readme =
        r["artifacts"].as_array().unwrap().iter().find(|a| a["path"] == "models/bert/README.md").unwrap();
    assert_eq!(readme["format"], "missing");
    assert_eq!(r["signatures"][1]["verified"], false);
    assert!(r["signatures"][1]["reason"].as_str().unwrap().contains("config.json"));
}

#[test]
fn scan_reports_missing_invalid_and_foreign_signatures() {
    let dir = repo();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models/new")).unwrap();
    std::fs::write(d.join("models/new/weights.bin"), b"\x00\x01").unwrap();
    std::fs::write(
        d.join("modelgate.toml"),
        r#"
[[signatures]]
path = "models/tiny"
keys = ["keys/other-p256.pub"]

[[signatures]]
path = "models/bert"
ca-roots = ["pki/root.crt"]
identity = "someone-else@example.com"
signature = "sigs/model.cert-leaf.sig"

[[signatures]]
path = "models/new"
keys = ["keys/p256.pub"]
"#,
    )
    .unwrap();
    let out = modelgate(&["scan", "models", "--json", "-"], d);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    let got = rules(&r);
    assert!(got.contains(&("models/new/model.sig".into(), "MG801".into())), "{got:?}");
    assert!(got.contains(&("models/tiny/model.sig".into(), "MG802".into())), "{got:?}");
    // bert's signature is outside the scanned paths: it is scanned for the finding.
    assert!(got.contains(&("sigs/model.cert-leaf.sig".into(), "MG803".into())), "{got:?}");
    let msg = r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["findings"].as_array().unwrap())
        .find(|f| f["rule"] == "MG803")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("ml-release@example.com") && msg.contains("someone-else@example.com"), "{msg}");
}

#[test]
fn signer_exclusions_are_reported_and_policies_are_checked() {
    let dir = repo();
    let d = dir.path();
    std::fs::write(
        d.join("modelgate.toml"),
        "[[signatures]]\npath = \"models/bert\"\nkeys = [\"keys/p256.pub\"]\nsignature = \"sigs/model.ignores-readme.sig\"\n",
    )
    .unwrap();
    let out = modelgate(&["scan", "models/bert", "--json", "-", "--fail-on", "critical"], d);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(rules(&r), [("models/bert/README.md".to_string(), "MG807".to_string())]);
    assert_eq!(r["signatures"][0]["excluded"][0], "README.md");
    // Policy errors are gate errors.
    std::fs::write(
        d.join("modelgate.toml"),
        "[[signatures]]\npath = \"models/bert\"\nkeys = [\"keys/none.pub\"]\n",
    )
    .unwrap();
    assert_eq!(code(&modelgate(&["scan", "models/bert"], d)), 2);
    std::fs::write(
        d.join("modelgate.toml"),
        "[[signatures]]\npath = \"models/bert\"\nissuer = \"https://x\"\n",
    )
    .unwrap();
    let out = modelgate(&["policy", "check"], d);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("identity"), "{}", stderr(&out));
}

#[test]
fn keyless_through_the_command_line_when_shared_is_present() {
    let up = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/signing-samples/upstream/model-transparency");
    if !up.is_dir() {
        // Written to stderr directly: the test harness captures eprintln! of passing tests, and
        // a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {} is not present (CI has it next to the repository)",
            up.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&up.join("v1.1.0-sigstore"), &dir.path().join("m"));
    let d = dir.path();
    let issuer = "https://sigstore.verify.ibm.com/oauth2";
    let out = modelgate(&["verify", "m", "--identity", "stefanb@us.ibm.com", "--issuer", issuer], d);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("keyless mode")
            && text.contains("stefanb@us.ibm.com")
            && text.contains("transparency-log entry verified"),
        "{text}"
    );
    // Anchored: a fragment of the identity is not a match.
    let out = modelgate(&["verify", "m", "--identity-regexp", "stefanb", "--issuer", issuer], d);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("signed by \"stefanb@us.ibm.com\""), "{}", stdout(&out));
    // In a scan, with a policy.
    std::fs::write(
        d.join("modelgate.toml"),
        format!("[[signatures]]\npath = \"m\"\nidentity = \"stefanb@us.ibm.com\"\nissuer = \"{issuer}\"\n"),
    )
    .unwrap();
    let out = modelgate(&["scan", "m", "--json", "-"], d);
    let r = report(&out);
    assert_eq!(r["signatures"][0]["verified"], true, "{r}");
    assert_eq!(r["signatures"][0]["mode"], "keyless");
    assert_eq!(r["signatures"][0]["signer"]["transparency_log"], true);
    // ignore-me is excluded by the signer's recorded ignore paths.
    assert_eq!(rules(&r), [("m/ignore-me".to_string(), "MG807".to_string())]);

    // A cosign sign-blob bundle (sigstore-conformance's v0.3 happy path over a.txt), found
    // next to the file as a.txt.sigstore.json.
    let conf = up.join("../sigstore-conformance/bundle-verify");
    std::fs::copy(conf.join("a.txt"), d.join("a.txt")).unwrap();
    std::fs::copy(conf.join("happy-path-v0.3/bundle.sigstore.json"), d.join("a.txt.sigstore.json")).unwrap();
    let beacon = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let gha = "https://token.actions.githubusercontent.com";
    let out = modelgate(&["verify", "a.txt", "--identity", beacon, "--issuer", gha], d);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("(cosign-bundle, keyless mode)"), "{}", stdout(&out));
    let regexp = r"https://github\.com/sigstore-conformance/[^/]+/\.github/workflows/.*@refs/heads/main";
    assert_eq!(code(&modelgate(&["verify", "a.txt", "--identity-regexp", regexp, "--issuer", gha], d)), 0);
    std::fs::write(d.join("a.txt"), "changed\n").unwrap();
    let out = modelgate(&["verify", "a.txt", "--identity", beacon, "--issuer", gha], d);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

#[test]
fn pins_and_signatures_agree_on_the_root_digest() {
    let dir = repo();
    let d = dir.path();
    assert_eq!(code(&modelgate(&["lock", "models/tiny"], d)), 0);
    let lock = std::fs::read_to_string(d.join("modelgate.lock")).unwrap();
    let out = modelgate(&["verify", "models/tiny", "--key", "keys/p256.pub", "--json"], d);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = j["root_digest"].as_str().unwrap();
    assert!(lock.contains(&format!("root-digest = \"{root}\"")), "{root}\n{lock}");
}
