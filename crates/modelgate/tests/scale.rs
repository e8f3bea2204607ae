//! Sharded scans, `modelgate merge` and the verdict cache (`docs/scale.md`): N shards and a
//! merge write the same reports as one run (timestamps masked), over local trees and over a
//! fake hub on loopback; missing, duplicated and mismatched shards are refused; a second scan
//! through the cache downloads nothing and gives the same reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../modelgate-remote/tests/fakehub/mod.rs"]
mod fakehub;

use fakehub::{EVIL_PICKLE, FakeHub, Repo, example};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(dir: &Path, args: &[&str], hub: Option<&FakeHub>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args).current_dir(dir);
    for v in ["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "HF_TOKEN", "MODELGATE_CACHE", "JOB_COMPLETION_INDEX"]
    {
        cmd.env_remove(v);
    }
    for v in [
        "CI_NODE_INDEX",
        "CI_NODE_TOTAL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        cmd.env_remove(v);
    }
    if let Some(h) = hub {
        cmd.env("HF_ENDPOINT", &h.endpoint);
    }
    cmd.output().expect("run modelgate")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const FORMATS: [(&str, &str); 6] = [
    ("--json", "json"),
    ("--sarif", "sarif"),
    ("--sbom", "cdx"),
    ("--junit", "xml"),
    ("--gitlab-codequality", "cq"),
    ("--gitlab-sast", "sast"),
];

/// Every report format's flags, writing `<prefix>.<ext>` in `out`.
fn outputs(out: &Path, prefix: &str) -> Vec<String> {
    FORMATS
        .iter()
        .flat_map(|(flag, ext)| [flag.to_string(), out.join(format!("{prefix}.{ext}")).display().to_string()])
        .collect()
}

/// A report with its timestamps (and the SAST report's times) masked.
fn masked(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| {
            !["\"timestamp\"", "\"start_time\"", "\"end_time\"", "serialNumber"].iter().any(|k| l.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same_reports(out: &Path, a: &str, b: &str) {
    for (_, ext) in FORMATS {
        let (x, y) = (masked(&out.join(format!("{a}.{ext}"))), masked(&out.join(format!("{b}.{ext}"))));
        assert!(x == y, "the {ext} reports differ between {a} and {b}");
    }
}

/// Runs `scan ARGS` once and as `n` shards plus a merge, and compares every report.
fn sharded_equals_single(dir: &Path, args: &[&str], n: usize, hub: Option<&FakeHub>) -> (i32, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap().keep();
    let mut single: Vec<String> = ["scan", "-q"].iter().map(|s| s.to_string()).collect();
    single.extend(args.iter().map(|s| s.to_string()));
    single.extend(outputs(&out, "single"));
    let s: Vec<&str> = single.iter().map(String::as_str).collect();
    let one = run(dir, &s, hub);
    assert!(code(&one) < 2, "{}", text(&one));
    let mut reports = Vec::new();
    for k in 1..=n {
        let json = out.join(format!("shard{k}.json"));
        let shard = format!("{k}/{n}");
        let mut a: Vec<&str> = vec!["scan", "-q"];
        a.extend(args);
        let j = json.display().to_string();
        a.extend(["--shard", &shard, "--json", &j]);
        let o = run(dir, &a, hub);
        assert!(code(&o) < 2, "shard {shard}: {}", text(&o));
        reports.push(json);
    }
    let mut m: Vec<String> = vec!["merge".into(), "-q".into()];
    m.extend(reports.iter().map(|r| r.display().to_string()));
    m.extend(outputs(&out, "merged"));
    let m: Vec<&str> = m.iter().map(String::as_str).collect();
    let merged = run(dir, &m, hub);
    assert_eq!(code(&merged), code(&one), "{}", text(&merged));
    assert_same_reports(&out, "single", "merged");
    (code(&one), reports)
}

#[test]
fn local_shards_merge_into_the_single_run_reports() {
    let (code, reports) = sharded_equals_single(&root(), &["tests/fixtures", "examples"], 3, None);
    assert_eq!(code, 1);
    // Balanced: every shard got units, and no unit is in two shards.
    let mut units = Vec::new();
    for r in &reports {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(r).unwrap()).unwrap();
        assert!(!v["artifacts"].as_array().unwrap().is_empty(), "{} is empty", r.display());
        units = v["shard"]["units"].as_array().unwrap().clone();
    }
    assert!(units.len() > 3);
    let names: std::collections::BTreeSet<&str> = units.iter().map(|u| u[0].as_str().unwrap()).collect();
    assert_eq!(names.len(), units.len());
    // One shard alone gives the same reports as N = 1.
    sharded_equals_single(&root(), &["examples"], 1, None);
}

#[test]
fn missing_duplicated_and_mismatched_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for m in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.path().join("models").join(m)).unwrap();
        std::fs::write(
            dir.path().join("models").join(m).join("config.json"),
            format!("{{\"name\": \"{m}\"}}"),
        )
        .unwrap();
    }
    let shard = |k: &str, out: &str| {
        let o = run(dir.path(), &["scan", "-q", "models", "--shard", k, "--json", out], None);
        assert_eq!(code(&o), 0, "{}", text(&o));
    };
    shard("1/2", "s1.json");
    shard("2/2", "s2.json");
    let merge = |reports: &[&str]| {
        let mut a = vec!["merge", "-q", "--json", "m.json"];
        a.extend(reports);
        run(dir.path(), &a, None)
    };
    let ok = merge(&["s1.json", "s2.json"]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let missing = merge(&["s1.json"]);
    assert_eq!(code(&missing), 2);
    assert!(text(&missing).contains("no report for shard 2/2"), "{}", text(&missing));
    let twice = merge(&["s1.json", "s1.json", "s2.json"]);
    assert_eq!(code(&twice), 2);
    assert!(text(&twice).contains("shard 1/2 is given twice"), "{}", text(&twice));
    // The tree changed between two shards.
    std::fs::write(dir.path().join("models/b/config.json"), "{\"name\": \"changed\"}").unwrap();
    shard("2/2", "s2-later.json");
    let changed = merge(&["s1.json", "s2-later.json"]);
    assert_eq!(code(&changed), 2);
    assert!(text(&changed).contains("differ in their inputs"), "{}", text(&changed));
    // Another policy.
    std::fs::write(dir.path().join("strict.toml"), "fail-on = \"low\"\n").unwrap();
    let o = run(dir.path(), &["scan", "-q", "models", "--shard", "1/2", "--json", "p1.json"], None);
    assert!(code(&o) < 2);
    let o = run(
        dir.path(),
        &["scan", "-q", "models", "--policy", "strict.toml", "--shard", "2/2", "--json", "p2.json"],
        None,
    );
    assert!(code(&o) < 2);
    let policy = merge(&["p1.json", "p2.json"]);
    assert_eq!(code(&policy), 2);
    assert!(text(&policy).contains("differ in their policy"), "{}", text(&policy));
    // A plain report is not a shard's; a damaged one is an error too.
    let o = run(dir.path(), &["scan", "-q", "models", "--json", "plain.json"], None);
    assert_eq!(code(&o), 0);
    assert_eq!(code(&merge(&["plain.json"])), 2);
    std::fs::write(dir.path().join("bad.json"), "{\"report_version\": 1, \"shard\": {\"format\": 1}}")
        .unwrap();
    assert_eq!(code(&merge(&["bad.json", "s2.json"])), 2);
    // --shard without a JSON report file, and nonsense shard numbers.
    assert_eq!(code(&run(dir.path(), &["scan", ".", "--shard", "1/2"], None)), 2);
    assert_eq!(code(&run(dir.path(), &["scan", ".", "--shard", "3/2", "--json", "x.json"], None)), 2);
}

#[test]
fn shard_auto_reads_the_engine_index() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("m")).unwrap();
    std::fs::write(dir.path().join("m/config.json"), "{}").unwrap();
    let auto = |vars: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
        cmd.args(["scan", "-q", ".", "--shard", "auto", "--json", "r.json"])
            .args(extra)
            .current_dir(dir.path());
        for v in
            ["JOB_COMPLETION_INDEX", "JOB_COMPLETIONS", "CI_NODE_INDEX", "CI_NODE_TOTAL", "GITHUB_ACTIONS"]
        {
            cmd.env_remove(v);
        }
        cmd.envs(vars.iter().copied());
        let o = cmd.output().unwrap();
        let v: Option<serde_json::Value> =
            std::fs::read(dir.path().join("r.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let _ = std::fs::remove_file(dir.path().join("r.json"));
        (code(&o), v.map(|v| (v["shard"]["index"].clone(), v["shard"]["count"].clone())))
    };
    let (c, s) = auto(&[("JOB_COMPLETION_INDEX", "1")], &["--shards", "3"]);
    assert_eq!((c, s), (0, Some((2.into(), 3.into()))));
    let (c, s) = auto(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "2")], &[]);
    assert_eq!((c, s), (0, Some((2.into(), 2.into()))));
    assert_eq!(auto(&[("JOB_COMPLETION_INDEX", "0")], &[]).0, 2);
    assert_eq!(auto(&[], &[]).0, 2);
}

fn hub_with_repos() -> FakeHub {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    for (i, name) in ["org/one", "org/two", "org/three", "org/four"].iter().enumerate() {
        let commit = format!("{}", i + 1).repeat(40);
        let mut repo = Repo::new(&commit).file("model.pt", &model).file("config.json", b"{}");
        if i == 2 {
            repo = repo.file("evil.pkl", EVIL_PICKLE);
        }
        hub.add(name, repo);
    }
    hub
}

#[test]
fn remote_shards_merge_into_the_single_run_reports() {
    let hub = hub_with_repos();
    let dir = tempfile::tempdir().unwrap();
    let args = ["hf://org/one", "hf://org/two", "hf://org/three", "hf://org/four"];
    let (code, _) = sharded_equals_single(dir.path(), &args, 2, Some(&hub));
    assert_eq!(code, 1);
}

fn downloads(hub: &FakeHub) -> usize {
    hub.seen().iter().filter(|s| s.method == "GET" && s.target.contains("/resolve/")).count()
}

#[test]
fn a_second_remote_scan_through_the_cache_downloads_nothing() {
    let hub = hub_with_repos();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").display().to_string();
    let scan = |json: &str| {
        run(
            dir.path(),
            &["scan", "hf://org/one", "hf://org/three", "--cache", &cache, "--json", json],
            Some(&hub),
        )
    };
    let first = scan("first.json");
    assert_eq!(code(&first), 1, "{}", text(&first));
    let fetched = downloads(&hub);
    assert!(fetched >= 4, "{fetched} downloads");
    let second = scan("second.json");
    assert_eq!(code(&second), 1, "{}", text(&second));
    // config.json is in git (no SHA-256 listed): only the LFS files are skipped.
    let again = downloads(&hub) - fetched;
    assert!(again < fetched, "{again} of {fetched} downloaded again");
    assert!(text(&second).contains("download(s) skipped"), "{}", text(&second));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("second.json")).unwrap()).unwrap();
    let cached: Vec<&serde_json::Value> =
        r["artifacts"].as_array().unwrap().iter().filter(|a| a.get("provenance").is_some()).collect();
    assert!(!cached.is_empty());
    for a in &cached {
        assert_eq!(a["provenance"]["sha256"], "listed-by-source");
        assert_eq!(a["provenance"]["bytes_read"], false);
    }
    // Same verdict, same findings.
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("first.json")).unwrap()).unwrap();
    assert_eq!(first["summary"], r["summary"]);
}

#[test]
fn the_local_cache_gives_the_same_reports_and_survives_damage() {
    let out = tempfile::tempdir().unwrap();
    let cache = out.path().join("cache");
    let c = cache.display().to_string();
    let scan = |prefix: &str| {
        let mut a: Vec<String> = vec!["scan".into(), "tests/fixtures".into(), "--cache".into(), c.clone()];
        a.extend(outputs(out.path(), prefix));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&root(), &a, None)
    };
    let hits = |o: &Output| -> usize {
        let t = text(o);
        let at = t.find("modelgate: cache: ").expect("cache line");
        t[at + 18..].split(' ').next().unwrap().parse().unwrap()
    };
    let cold = scan("cold");
    assert_eq!(code(&cold), 1);
    let warm = scan("warm");
    assert_eq!(code(&warm), 1);
    assert!(hits(&warm) > hits(&cold) + 100, "{}", text(&warm));
    assert_same_reports(out.path(), "cold", "warm");
    // Damage every entry: each is ignored (and rewritten), never trusted.
    let mut damaged = 0;
    for d in walk(&cache) {
        let bytes = std::fs::read(&d).unwrap();
        let s = String::from_utf8_lossy(&bytes).replace("pickle", "pickel");
        std::fs::write(&d, s).unwrap();
        damaged += 1;
    }
    assert!(damaged > 10);
    let after = scan("damaged");
    assert_eq!(code(&after), 1);
    assert_same_reports(out.path(), "cold", "damaged");
    // A size limit evicts.
    let o = run(&root(), &["scan", "-q", "tests/fixtures", "--cache", &c, "--cache-max-size", "10K"], None);
    assert_eq!(code(&o), 1);
    let total: u64 = walk(&cache).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(total <= 10 * 1024, "{total} bytes left");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// examples/scale/gitlab-parallel.yml as it is, run by gitlab-ci-local (the harness of
/// `tests/ci.rs`: the cached npm tool, shell executor, the modelgate binary on PATH standing in
/// for the image): `parallel: 4` gives each copy CI_NODE_INDEX/CI_NODE_TOTAL for `--shard auto`,
/// the shard jobs pass on a finding and the merge job fails the pipeline with it.
#[test]
fn the_gitlab_parallel_example_runs_in_gitlab_ci_local() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_modelgate"), bin.join("modelgate")).unwrap();
    let repo = tmp.path().join("repo");
    let ex = |p: &str| root().join("examples").join(p);
    for (dir, from) in [
        ("a", ex("malicious-model/pytorch_model.bin")),
        ("b", ex("benign-model/model.pt")),
        ("c", root().join("tests/fixtures/benign/anomalies/state_dict_crc32_disabled.pt")),
    ] {
        std::fs::create_dir_all(repo.join("models").join(dir)).unwrap();
        std::fs::copy(&from, repo.join("models").join(dir).join(from.file_name().unwrap())).unwrap();
    }
    std::fs::copy(ex("scale/gitlab-parallel.yml"), repo.join(".gitlab-ci.yml")).unwrap();
    for args in [&["init", "--quiet", "-b", "main"][..], &["add", "-A"], &["commit", "--quiet", "-m", "x"]] {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    }
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("support/lint/ci-files.py"))
        .args(["gitlab-ci-local", "--force-shell-executor", "--shell-isolation"])
        .current_dir(&repo)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    for v in ["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "MODELGATE_CACHE", "CI_NODE_INDEX", "CI_NODE_TOTAL"] {
        cmd.env_remove(v);
    }
    let out = cmd.output().expect("python3 runs support/lint/ci-files.py");
    if out.status.code() == Some(2) && !text(&out).contains("modelgate-merge") {
        eprintln!("\n\n*** SKIPPED: gitlab-ci-local cannot be installed:\n{} ***\n\n", text(&out));
        return;
    }
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    for k in 1..=4 {
        assert!(text(&out).contains(&format!("PASS  modelgate-shard: [{k}/4]")), "{}", text(&out));
    }
    assert!(text(&out).contains("FAIL  modelgate-merge"), "{}", text(&out));
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("gl-modelgate.json")).unwrap()).unwrap();
    assert_eq!(merged["artifacts"].as_array().unwrap().len(), 3);
    assert!(text(&out).contains("MG101"), "{}", text(&out));
}
