//! The verdict cache in an object store (`docs/scale.md`): `--cache s3://bucket/prefix` against a
//! real S3-compatible server, `moto` in server mode, installed and started exactly as
//! `sources_s3.rs` does (the same pin, install script, lock and place, `target/s3-server/`, so
//! one install serves both). The models scanned are themselves in the store, uploaded with a
//! SHA-256 checksum, so a hit skips the download and the report says so. Entries are read,
//! damaged and forged here with the `object_store` client modelgate uses. Without python3/pip or
//! the package a test prints a loud SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::path::Path as StorePath;
use object_store::signer::HeaderName;
use object_store::{ClientOptions, HeaderMap, HeaderValue, ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The same pin as `sources_s3.rs` and `.ci/run`.
const MOTO: &str = "moto[server]==5.2.5";
const EVIL_PICKLE: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
const KEY_ID: &str = "AKIAMODELGATETEST01";
const SECRET: &str = "modelgate-test-secret-do-not-print";
const SOURCES: [&str; 2] = ["s3://models/a", "s3://models/b"];
const CACHE: &str = "s3://cache/ci";

/// Installs moto (once, under the lock `sources_s3.rs` takes too).
const INSTALL: &str = r#"
import fcntl, os, subprocess, sys
site, spec = sys.argv[1], sys.argv[2]
os.makedirs(site, exist_ok=True)
os.environ.setdefault("PIP_ROOT_USER_ACTION", "ignore")
with open(site + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(site, ".complete")):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-warn-conflicts", "--upgrade", "--target", site, spec], check=True)
        open(os.path.join(site, ".complete"), "w").close()
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn site() -> PathBuf {
    root().join("target/s3-server/site")
}

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    runtime: tokio::runtime::Runtime,
}

impl Moto {
    fn start() -> Option<Moto> {
        let skip = |why: &str| {
            eprintln!("\n\n*** SKIPPED: {why} (`.ci/run` installs {MOTO} into target/s3-server) ***\n\n");
            None
        };
        let installed = Command::new("python3")
            .arg("-c")
            .arg(INSTALL)
            .arg(site())
            .arg(MOTO)
            .stdout(Stdio::null())
            .status();
        if !installed.is_ok_and(|s| s.success()) {
            return skip("the S3 test server (moto) cannot be installed with python3 -m pip");
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONPATH", site())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), runtime };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || moto.child.try_wait().unwrap().is_some() {
                return skip("the S3 test server (moto) did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        // moto creates buckets for anyone (object_store has no call for it).
        let http = reqwest::blocking::Client::new();
        for bucket in ["models", "cache"] {
            let r = http.put(format!("{}/{bucket}", moto.endpoint)).send().unwrap();
            assert!(r.status().is_success(), "create bucket {bucket}: {}", r.status());
        }
        Some(moto)
    }

    fn bucket(&self, name: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_region("us-east-1")
            .with_bucket_name(name)
            .with_access_key_id("uploader")
            .with_secret_access_key("uploader-secret")
            // The models are uploaded with their SHA-256, which the scan then finds listed (moto
            // keeps it when the SDK's algorithm header names it, as AWS SDKs send).
            .with_checksum_algorithm(Checksum::SHA256)
            .with_client_options(ClientOptions::new().with_default_headers(HeaderMap::from_iter([(
                HeaderName::from_static("x-amz-sdk-checksum-algorithm"),
                HeaderValue::from_static("SHA256"),
            )])))
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Two sources; `b/model.pt` has the same bytes as `a/model.pt` (one cache entry for both).
    fn upload_models(&self) {
        let model = std::fs::read(root().join("examples/benign-model/model.pt")).unwrap();
        let store = self.bucket("models");
        let files: [(&str, &[u8]); 4] = [
            ("a/model.pt", &model),
            ("a/evil.pkl", EVIL_PICKLE),
            ("b/model.pt", &model),
            ("b/config.json", b"{}"),
        ];
        self.runtime.block_on(async {
            for (key, data) in files {
                store.put(&StorePath::from(key), PutPayload::from(data.to_vec())).await.unwrap();
            }
        });
    }

    /// Every cache entry: (object key, the SHA-256 its key text names, the entry's bytes).
    fn entries(&self) -> Vec<(StorePath, String, Vec<u8>)> {
        let store = self.bucket("cache");
        self.runtime.block_on(async {
            let mut out = Vec::new();
            let listed: Vec<_> = store.list(Some(&StorePath::from("ci"))).collect().await;
            for meta in listed {
                let meta = meta.unwrap();
                let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap().to_vec();
                let entry: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let sha = entry["key"]
                    .as_str()
                    .and_then(|k| k.lines().find_map(|l| l.strip_prefix("sha256 ")))
                    .unwrap_or("")
                    .to_string();
                out.push((meta.location, sha, bytes));
            }
            out
        })
    }

    fn overwrite(&self, key: &StorePath, bytes: Vec<u8>) {
        let store = self.bucket("cache");
        self.runtime.block_on(store.put(key, PutPayload::from(bytes))).unwrap();
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
        cmd.args(args).current_dir(dir);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            cmd.env_remove(k);
        }
        for v in [
            "GITHUB_ACTIONS",
            "GITHUB_STEP_SUMMARY",
            "MODELGATE_CACHE",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1");
        cmd
    }

    fn modelgate(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args).output().expect("run modelgate")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// (path, provenance, findings) of every artifact.
fn artifacts(report: &Value) -> Vec<(String, Value, Value)> {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a.get("provenance").cloned().unwrap_or(Value::Null),
                a["findings"].clone(),
            )
        })
        .collect()
}

fn has_rule(findings: &Value, rule: &str) -> bool {
    findings.as_array().is_some_and(|f| f.iter().any(|f| f["rule"] == rule))
}

fn from_cache(provenance: &Value) -> bool {
    provenance["inventory"] == "cache"
        && provenance["bytes_read"] == false
        && provenance["sha256"] == "listed-by-source"
}

/// The shards of one run, started together (they write the shared cache at the same time), and
/// their merge.
fn sharded(moto: &Moto, dir: &Path, run: &str, extra: &[&str]) -> (Vec<Output>, Output) {
    let mut children = Vec::new();
    let mut reports = Vec::new();
    for k in 1..=2 {
        let report = format!("{run}-shard{k}.json");
        let shard = format!("{k}/2");
        let mut args = vec!["scan"];
        args.extend(SOURCES);
        args.extend(["--cache", CACHE, "--shard", &shard, "--json", &report]);
        args.extend(extra);
        children
            .push(moto.command(dir, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
        reports.push(report);
    }
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert!(code(o) < 2, "{}", text(o));
        assert!(!text(o).contains("warning"), "{}", text(o));
    }
    let merged = format!("{run}.json");
    let mut args = vec!["merge", "-q", "--json", &merged];
    args.extend(reports.iter().map(String::as_str));
    let merge = moto.modelgate(dir, &args);
    (outputs, merge)
}

#[test]
fn shards_share_an_s3_cache_and_a_second_run_downloads_nothing() {
    let Some(moto) = Moto::start() else { return };
    moto.upload_models();
    let dir = tempfile::tempdir().unwrap();
    let (cold, merge) = sharded(&moto, dir.path(), "cold", &[]);
    assert_eq!(code(&merge), 1, "{}", text(&merge));
    assert!(cold.iter().any(|o| !text(o).contains("0 miss(es)")));
    // Both shards wrote to one cache: the model both sources hold is one entry.
    let entries = moto.entries();
    assert_eq!(entries.len(), 3, "{:?}", entries.iter().map(|e| e.0.to_string()).collect::<Vec<_>>());
    assert!(
        entries.iter().all(|(k, sha, _)| k.as_ref().starts_with("ci/modelgate-cache-v1/") && sha.len() == 64)
    );

    let (warm, merge) = sharded(&moto, dir.path(), "warm", &[]);
    assert_eq!(code(&merge), 1, "{}", text(&merge));
    for o in &warm {
        assert!(text(o).contains("0 miss(es)") && text(o).contains("download(s) skipped"), "{}", text(o));
        assert!(text(o).contains("in s3://cache/ci (eviction: the store's lifecycle rules)"), "{}", text(o));
    }
    // Every file's verdict came from the cache, and the report says so; the findings and the
    // summary are those of the run that read the bytes.
    let (first, second) = (json(&dir.path().join("cold.json")), json(&dir.path().join("warm.json")));
    let (a, b) = (artifacts(&first), artifacts(&second));
    assert_eq!(a.len(), 4);
    assert_eq!(a.len(), b.len());
    for ((path, p1, f1), (path2, p2, f2)) in a.iter().zip(&b) {
        assert_eq!(path, path2);
        // (Cold, a shard may already find what the other shard wrote: the shared model.)
        assert!(!from_cache(p1) || path.ends_with("/model.pt"), "{path}: {p1}");
        assert!(from_cache(p2), "{path}: {p2}");
        assert_eq!(f1, f2, "{path}");
    }
    assert!(b.iter().any(|(p, _, f)| p.ends_with("/evil.pkl") && has_rule(f, "MG101")));
    assert_eq!(first["summary"], second["summary"]);
}

#[test]
fn a_damaged_or_forged_s3_entry_is_not_trusted_and_is_rewritten() {
    let Some(moto) = Moto::start() else { return };
    moto.upload_models();
    let dir = tempfile::tempdir().unwrap();
    let scan = |report: &str| {
        let mut args = vec!["scan"];
        args.extend(SOURCES);
        args.extend(["--cache", CACHE, "--json", report]);
        let o = moto.modelgate(dir.path(), &args);
        assert_eq!(code(&o), 1, "{}", text(&o));
        assert!(!text(&o).contains("warning"), "{}", text(&o));
        (o, json(&dir.path().join(report)))
    };
    scan("cold.json");
    let evil = sha256_hex(EVIL_PICKLE);
    let config = sha256_hex(b"{}");
    let entries = moto.entries();
    assert_eq!(entries.len(), 3);
    let find =
        |sha: &str| entries.iter().find(|e| e.1 == sha).unwrap_or_else(|| panic!("no entry for {sha}"));
    let benign = entries.iter().find(|e| e.1 != evil && e.1 != config).unwrap();
    // Forged: the evil pickle's key holds the benign model's sound entry (its own checksum is
    // right). Damaged: the config's entry is cut short.
    moto.overwrite(&find(&evil).0, benign.2.clone());
    let cut = find(&config).2[..40].to_vec();
    moto.overwrite(&find(&config).0, cut);

    let (o, r) = scan("after.json");
    assert!(text(&o).contains("2 hit(s), 2 miss(es)"), "{}", text(&o));
    for (path, provenance, findings) in artifacts(&r) {
        let cached = from_cache(&provenance);
        if path.ends_with("/evil.pkl") {
            assert!(!cached && has_rule(&findings, "MG101"), "{path}: {provenance} {findings}");
        } else if path.ends_with("/config.json") {
            assert!(!cached, "{path}: {provenance}");
        } else {
            assert!(cached, "{path}: {provenance}");
        }
    }
    // Both were rewritten with what the downloads showed.
    let rewritten = moto.entries();
    assert_eq!(rewritten.len(), 3);
    assert_eq!(rewritten.iter().find(|e| e.1 == evil).unwrap().0, find(&evil).0);
    assert!(rewritten.iter().any(|e| e.1 == config));
    let (o, r) = scan("again.json");
    assert!(text(&o).contains("4 hit(s), 0 miss(es)"), "{}", text(&o));
    assert!(artifacts(&r).iter().all(|(_, p, _)| from_cache(p)));
}

#[test]
fn a_policy_change_is_applied_to_cached_inventories() {
    // An entry is an inventory, never a verdict: under another policy a warm cache gives the
    // reports a run without the cache gives under that policy.
    let Some(moto) = Moto::start() else { return };
    moto.upload_models();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissive.toml"),
        "[rules.MG101]\nenabled = false\nreason = \"the test's policy change\"\n",
    )
    .unwrap();
    let scan = |report: &str, extra: &[&str]| {
        let mut args = vec!["scan"];
        args.extend(SOURCES);
        args.extend(["--json", report]);
        args.extend(extra);
        let o = moto.modelgate(dir.path(), &args);
        assert!(code(&o) < 2, "{}", text(&o));
        (o, json(&dir.path().join(report)))
    };
    let (strict, _) = scan("strict.json", &["--cache", CACHE]);
    assert_eq!(code(&strict), 1);
    let (cached, with_cache) = scan("cached.json", &["--cache", CACHE, "--policy", "permissive.toml"]);
    let (fresh, without) = scan("fresh.json", &["--policy", "permissive.toml"]);
    assert_eq!(code(&cached), 0, "{}", text(&cached));
    assert_eq!(code(&fresh), 0, "{}", text(&fresh));
    assert!(text(&cached).contains("0 miss(es)"), "{}", text(&cached));
    let (a, b) = (artifacts(&with_cache), artifacts(&without));
    assert_eq!(a.len(), b.len());
    for ((path, p, f1), (_, _, f2)) in a.iter().zip(&b) {
        assert!(from_cache(p), "{path}: {p}");
        assert_eq!(f1, f2, "{path}");
    }
    assert_eq!(with_cache["summary"], without["summary"]);
}

#[test]
fn an_unusable_s3_cache_is_refused_or_skipped_with_one_warning() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.pkl"), EVIL_PICKLE).unwrap();
    // Not a bucket name: a usage error before anything is scanned.
    let o = moto.modelgate(dir.path(), &["scan", "model.pkl", "--cache", "s3://Bad_Bucket/x"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    // A bucket that does not exist: the scan goes on without the cache and says so once.
    let o = moto.modelgate(dir.path(), &["scan", "model.pkl", "--cache", "s3://no-such-bucket/x"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert_eq!(text(&o).matches("continuing without the cache").count(), 1, "{}", text(&o));
    assert!(!text(&o).contains(SECRET), "{}", text(&o));
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}
