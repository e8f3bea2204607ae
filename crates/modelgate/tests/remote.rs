//! `modelgate scan` and `lock` on remote sources, against a fake hub on loopback (no test
//! reaches the internet): verdicts and exit codes, report paths, the BOM, pins and drift, the
//! token, retries, broken transfers and `--download-dir`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../modelgate-remote/tests/fakehub/mod.rs"]
mod fakehub;

use fakehub::{EVIL_PICKLE, FakeHub, Quirks, Repo, example, sha256_hex};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const TOKEN: &str = "hf_sekrit_token_value";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelgate(hub: &FakeHub, dir: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args)
        .current_dir(dir)
        .env("HF_ENDPOINT", &hub.endpoint)
        .env_remove("HF_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    cmd.output().expect("run modelgate")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap()
}

fn rules(r: &Value) -> Vec<String> {
    r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string())
        })
        .collect()
}

fn benign() -> Repo {
    Repo::new(C1).file("model.pt", &example("examples/benign-model/model.pt")).file("config.json", b"{}")
}

#[test]
fn a_benign_repository_passes_with_commit_paths_and_a_valid_bom() {
    let hub = FakeHub::start();
    hub.add("org/benign", benign());
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(
        &hub,
        dir.path(),
        &["scan", "hf://org/benign", "--json", "r.json", "--sbom", "bom.json"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    let paths: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [format!("hf://org/benign@{C1}/config.json"), format!("hf://org/benign@{C1}/model.pt")]
    );
    assert_eq!(r["artifacts"][1]["format"], "pytorch-zip");
    assert_eq!(r["artifacts"][1]["sha256"], sha256_hex(&example("examples/benign-model/model.pt")));
    // The BOM: one model with the Hugging Face purl, files with their download URLs.
    let bom: Value = serde_json::from_slice(&std::fs::read(dir.path().join("bom.json")).unwrap()).unwrap();
    let model = &bom["components"][0];
    assert_eq!(model["type"], "machine-learning-model");
    assert_eq!(model["name"], "org/benign");
    assert_eq!(model["version"], C1);
    assert_eq!(model["purl"], format!("pkg:huggingface/org/benign@{C1}?repository_url={}", hub.endpoint));
    let files = model["components"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let refs = &files[1]["externalReferences"][0];
    assert_eq!(refs["type"], "distribution");
    assert_eq!(refs["url"], format!("{}/org/benign/resolve/{C1}/model.pt", hub.endpoint));
    let validator = root().join("support/schemas/validate.py");
    let v = Command::new("python3")
        .arg(&validator)
        .args(["cyclonedx", "1.6"])
        .arg(dir.path().join("bom.json"))
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn a_malicious_pickle_fails_and_a_digest_mismatch_is_critical() {
    let hub = FakeHub::start();
    hub.add("org/evil", Repo::new(C1).file("pytorch_model.bin", EVIL_PICKLE).file("config.json", b"{}"));
    let lie = Quirks { listed_sha256: Some("0".repeat(64)), ..Quirks::default() };
    hub.add("org/swapped", Repo::new(C1).quirky("weights.pkl", b"\x80\x02}q\x00.", lie));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/evil@main", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG101".to_string()));
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/swapped", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(rules(&r), ["MG901"]);
    assert_eq!(r["artifacts"][0]["findings"][0]["severity"], "critical");
}

#[test]
fn broken_transfers_are_gate_errors() {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    let cut = Quirks { truncate_at: Some(200), ..Quirks::default() };
    let stall = Quirks { stall_after: Some(200), ..Quirks::default() };
    hub.add("org/cut", Repo::new(C1).quirky("model.pt", &model, cut));
    hub.add("org/slow", Repo::new(C1).quirky("model.pt", &model, stall));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/cut"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&format!("hf://org/cut@{C1}/model.pt")), "{}", text(&o));
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/slow", "--read-timeout", "1"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("timed out"), "{}", text(&o));
    // No such repository or revision.
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/nothing"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("HF_TOKEN"), "{}", text(&o));
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/cut@v9"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("404"), "{}", text(&o));
}

#[test]
fn rate_limits_are_retried() {
    let hub = FakeHub::start();
    let busy = Quirks { rate_limit_first: 2, ..Quirks::default() };
    hub.add("org/busy", Repo::new(C1).quirky("model.pt", &example("examples/benign-model/model.pt"), busy));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/busy"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(hub.seen().iter().filter(|s| s.target.ends_with("/model.pt") && s.server == "hub").count(), 3);
}

#[test]
fn gated_repositories_need_the_token_which_never_leaves_the_hub() {
    let hub = FakeHub::start();
    let mut repo = Repo::new(C1).quirky(
        "model.pt",
        &example("examples/benign-model/model.pt"),
        Quirks { via_cdn: true, ..Quirks::default() },
    );
    repo.token = Some(TOKEN.into());
    hub.add("org/gated", repo);
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/gated"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("gated or private: set HF_TOKEN"), "{}", text(&o));
    let before = hub.seen().len();
    let o = modelgate(
        &hub,
        dir.path(),
        &["scan", "hf://org/gated", "--json", "r.json", "--sbom", "b.json", "--sarif", "s.sarif"],
        Some(TOKEN),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let seen = hub.seen().split_off(before);
    assert!(seen.iter().any(|s| s.server == "cdn"), "the file is served through the CDN");
    assert!(seen.iter().filter(|s| s.server == "cdn").all(|s| s.header("Authorization").is_none()));
    assert!(seen.iter().any(|s| s.server == "hub" && s.header("Authorization").is_some()));
    // Never printed, never in a report.
    assert!(!text(&o).contains(TOKEN));
    for f in ["r.json", "b.json", "s.sarif"] {
        assert!(!std::fs::read_to_string(dir.path().join(f)).unwrap().contains(TOKEN), "{f}");
    }
    // The signed CDN URL's query never appears either.
    assert!(!std::fs::read_to_string(dir.path().join("b.json")).unwrap().contains("sig=abc"));
}

#[test]
fn urls_are_scanned_like_files() {
    let hub = FakeHub::start();
    hub.plain("/files/evil.pkl", EVIL_PICKLE, Quirks::default());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/files/evil.pkl?token=abc", hub.endpoint);
    let o = modelgate(&hub, dir.path(), &["scan", &url, "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(r["artifacts"][0]["path"], format!("{}/files/evil.pkl", hub.endpoint));
    assert!(rules(&r).contains(&"MG101".to_string()));
    let o = modelgate(&hub, dir.path(), &["scan", "http://example.com/x.bin"], None);
    assert_eq!(o.status.code(), Some(2), "plain http only on loopback");
    // Pinned under the URL without its query, which never reaches the lockfile.
    let o = modelgate(&hub, dir.path(), &["lock", &url], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lock = std::fs::read_to_string(dir.path().join("modelgate.lock")).unwrap();
    assert!(lock.contains(&format!("path = \"{}/files/evil.pkl\"", hub.endpoint)), "{lock}");
    assert!(!lock.contains("token=abc") && !lock.contains("source"), "{lock}");
    let o = modelgate(&hub, dir.path(), &["scan", "--locked", &url], None);
    assert_eq!(o.status.code(), Some(1), "pinned, but still malicious: {}", text(&o));
    assert!(!text(&o).contains("MG70"), "{}", text(&o));
}

#[test]
fn lock_pins_the_commit_and_locked_scans_fetch_it() {
    let hub = FakeHub::start();
    hub.add("org/m", benign());
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["lock", "hf://org/m@main"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lock = std::fs::read_to_string(dir.path().join("modelgate.lock")).unwrap();
    assert!(lock.contains("path = \"hf://org/m\""), "{lock}");
    assert!(lock.contains("source = \"hf://org/m@main\""), "{lock}");
    assert!(lock.contains(&format!("revision = \"{C1}\"")), "{lock}");
    assert!(lock.contains("path = \"model.pt\""), "{lock}");
    // main moves on: a new commit with a changed model and a new file.
    hub.add(
        "org/m",
        Repo::new(C2)
            .file("model.pt", EVIL_PICKLE)
            .file("config.json", b"{}")
            .file("extra.py", b"print(1)\n"),
    );
    // Without a revision, the pinned commit is what gets fetched: no drift.
    let o = modelgate(&hub, dir.path(), &["scan", "--locked", "hf://org/m", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    assert!(r["artifacts"][0]["path"].as_str().unwrap().starts_with(&format!("hf://org/m@{C1}/")));
    // Naming the branch fetches what it is now: every difference is reported.
    let o = modelgate(&hub, dir.path(), &["scan", "--locked", "hf://org/m@main", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let found = rules(&report(dir.path()));
    for rule in ["MG701", "MG702", "MG101"] {
        assert!(found.contains(&rule.to_string()), "{rule} in {found:?}");
    }
    assert!(text(&o).contains(&format!("pins hf://org/m at commit {C1}")), "{}", text(&o));
    // A pinned file that disappeared upstream is missing.
    hub.add(
        "org/m",
        Repo::new("3333333333333333333333333333333333333333")
            .file("model.pt", &example("examples/benign-model/model.pt")),
    );
    let o = modelgate(&hub, dir.path(), &["scan", "--locked", "hf://org/m@main", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).contains(&"MG703".to_string()));
    assert!(r["artifacts"].as_array().unwrap().iter().any(|a| a["format"] == "missing"
        && a["path"] == "hf://org/m@3333333333333333333333333333333333333333/config.json"));
}

#[test]
fn downloads_are_kept_only_when_the_gate_passes() {
    let hub = FakeHub::start();
    hub.add("org/benign", benign());
    hub.add("org/evil", Repo::new(C1).file("pytorch_model.bin", EVIL_PICKLE).file("config.json", b"{}"));
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/benign", "--download-dir", "kept"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(keep.join("model.pt")).unwrap(), example("examples/benign-model/model.pt"));
    assert_eq!(std::fs::read(keep.join("config.json")).unwrap(), b"{}");
    let thrown = dir.path().join("thrown");
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/evil", "--download-dir", "thrown"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&thrown).unwrap().count(), 0, "nothing kept, no temporary files left");
}

#[test]
fn include_and_exclude_select_repository_files() {
    let hub = FakeHub::start();
    hub.add("org/mixed", benign().file("evil/payload.pkl", EVIL_PICKLE));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(
        &hub,
        dir.path(),
        &["scan", "hf://org/mixed", "--exclude", "evil/**", "--json", "r.json"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(dir.path())["artifacts"].as_array().unwrap().len(), 2);
    let o = modelgate(
        &hub,
        dir.path(),
        &["scan", "hf://org/mixed", "--include", "*.pt", "--json", "r.json"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(dir.path())["artifacts"].as_array().unwrap().len(), 1);
    assert!(!hub.seen().iter().any(|s| s.target.contains("payload.pkl")), "excluded files are never fetched");
}

#[test]
fn large_files_stream_with_range_requests() {
    // Over the 8 MiB in-memory threshold: a torch zip behind 9 MiB of other data. Only random
    // access to its end shows it is a zip; the range requests must agree with the body.
    let hub = FakeHub::start();
    let mut big = vec![0u8; 9 << 20];
    big.extend(example("examples/malicious-model/pytorch_model.bin"));
    hub.add("org/big", Repo::new(C1).file("pytorch_model.bin", &big));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/big", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(r["artifacts"][0]["sha256"], sha256_hex(&big));
    let found = rules(&r);
    assert!(found.contains(&"MG101".to_string()) && !found.iter().any(|f| f.starts_with("MG9")), "{found:?}");
    assert!(hub.seen().iter().any(|s| s.header("Range").is_some()), "random access used range requests");
}

#[test]
fn listed_git_paths_are_refused_and_never_written() {
    // A hostile listing plants `.git/config` (core.fsmonitor runs a command on the next
    // `git status`) and a hook, in any case and at any depth.
    let dir = tempfile::tempdir().unwrap();
    for (i, planted) in
        [".git/config", ".GIT/hooks/pre-commit", "sub/.Git/config", ".git./config"].iter().enumerate()
    {
        let hub = FakeHub::start();
        hub.add("org/plant", benign().file(planted, b"[core]\n\tfsmonitor = touch /tmp/pwned\n"));
        let kept = format!("kept{i}");
        let o = modelgate(&hub, dir.path(), &["scan", "hf://org/plant", "--download-dir", &kept], None);
        assert_eq!(o.status.code(), Some(2), "{planted}: {}", text(&o));
        assert!(text(&o).contains(".git component"), "{planted}: {}", text(&o));
        let left: Vec<_> = std::fs::read_dir(dir.path().join(&kept)).unwrap().collect();
        assert!(left.is_empty(), "{planted}: nothing written: {left:?}");
        assert!(!hub.seen().iter().any(|s| s.target.contains("resolve")), "nothing downloaded");
    }
}

#[cfg(unix)]
#[test]
fn downloads_never_go_through_symlinks_in_the_download_directory() {
    let hub = FakeHub::start();
    hub.add("org/nested", benign().file("sub/model.pt", &example("examples/benign-model/model.pt")));
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // A directory of the model is a link out of the download directory.
    let kept = dir.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    std::os::unix::fs::symlink(&outside, kept.join("sub")).unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/nested", "--download-dir", "kept"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing written through the link");
    assert!(!hub.seen().iter().any(|s| s.target.contains("resolve")), "refused before downloading");
    // A file of the model is a link to a file elsewhere.
    let victim = outside.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let kept2 = dir.path().join("kept2");
    std::fs::create_dir(&kept2).unwrap();
    std::os::unix::fs::symlink(&victim, kept2.join("config.json")).unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/nested", "--download-dir", "kept2"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(std::fs::symlink_metadata(kept2.join("config.json")).unwrap().file_type().is_symlink());
    // Without links in the way, the nested file is kept, and no staging directory is left.
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/nested", "--download-dir", "kept3"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let kept3 = dir.path().join("kept3");
    assert_eq!(std::fs::read(kept3.join("sub/model.pt")).unwrap(), example("examples/benign-model/model.pt"));
    let mut names: Vec<String> = std::fs::read_dir(&kept3)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.json", "model.pt", "sub"]);
}

#[test]
fn git_blob_ids_of_either_format_are_verified_and_odd_ones_reported() {
    let hub = FakeHub::start();
    let git = |id: &str| Quirks { in_git: true, blob_id: Some(id.to_string()), ..Quirks::default() };
    let good = fakehub::git_blob_sha256(b"{}");
    let wrong = fakehub::git_blob_sha256(b"{\"other\": 1}");
    hub.add("org/sha256", Repo::new(C1).quirky("config.json", b"{}", git(&good)));
    hub.add("org/wrong", Repo::new(C1).quirky("config.json", b"{}", git(&wrong)));
    hub.add("org/odd", Repo::new(C1).quirky("config.json", b"{}", git("zzzz")));
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/sha256", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/wrong", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(rules(&r), ["MG901"]);
    assert!(r["artifacts"][0]["findings"][0]["message"].as_str().unwrap().contains(&wrong), "{r}");
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/odd", "--json", "r.json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(rules(&r), ["MG904"]);
    assert_eq!(r["artifacts"][0]["findings"][0]["severity"], "critical");
}

#[test]
fn a_trickling_download_stops_at_the_download_timeout() {
    let hub = FakeHub::start();
    let trickle = Quirks { trickle: Some(std::time::Duration::from_millis(100)), ..Quirks::default() };
    hub.add("org/slow", Repo::new(C1).quirky("weights.pkl", &[b'N'; 300], trickle));
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let o = modelgate(&hub, dir.path(), &["scan", "hf://org/slow", "--download-timeout", "2"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("download deadline of 2 s"), "{}", text(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());
}

#[test]
fn redirects_into_private_ranges_are_gate_errors() {
    // Plain-http targets only: refused before any connection by every version of the client.
    let hub = FakeHub::start();
    hub.plain(
        "/m.pkl",
        b"",
        Quirks { redirect_to: Some("http://192.168.7.7/m.pkl".into()), ..Quirks::default() },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/m.pkl", hub.endpoint);
    let o = modelgate(&hub, dir.path(), &["scan", &url], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("leads to a private address"), "{}", text(&o));
}
