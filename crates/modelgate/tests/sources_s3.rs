//! `modelgate scan` and `lock` on `s3://` sources against a real S3-compatible server: `moto` in
//! server mode (PyPI `moto[server]`, pinned below), installed on first use into
//! `target/s3-server/` (`.ci/run` installs it up front) and started by each test on 127.0.0.1.
//! Objects are uploaded with boto3 (which moto brings): with a SHA-256 checksum the SDK computes
//! (`ChecksumAlgorithm=SHA256`), without one, and with a *stated* `x-amz-checksum-sha256` that is
//! not the bytes' — real S3 refuses such an upload (BadDigest), moto stores what it is told, which
//! is exactly a store that lies about an object. A second server with authentication on stands
//! for wrong or expired credentials. `az://` runs against Azurite (npm `azurite`, pinned), the
//! blobs uploaded with Microsoft's `azure-storage-blob` (PyPI, pinned), installed the same way
//! into `target/azurite/`. Without python3/pip/npm or the packages a test prints a loud SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sha2::Digest;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MOTO: &str = "moto[server]==5.2.5";
const AZURITE: &str = "azurite@3.37.0";
const AZURE_BLOB: &str = "azure-storage-blob==12.31.1";
/// Azurite's well-known development account (public, in Microsoft's documentation).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EVIL_PICKLE: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
const KEY_ID: &str = "AKIAMODELGATETEST01";
const SECRET: &str = "modelgate-test-secret-do-not-print";

/// Installs moto (once, under a lock shared by the tests running in parallel).
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

/// Installs Azurite (npm) and the Azure blob client (pip), once, under a lock.
const INSTALL_AZURE: &str = r#"
import fcntl, os, subprocess, sys
base, npm_spec, pip_spec = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(base, exist_ok=True)
os.environ.setdefault("PIP_ROOT_USER_ACTION", "ignore")
with open(os.path.join(base, ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(base, ".complete")):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", base, npm_spec],
                       check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-warn-conflicts", "--upgrade", "--target", os.path.join(base, "site"), pip_spec],
                       check=True)
        open(os.path.join(base, ".complete"), "w").close()
"#;

/// Uploads blobs to Azurite: argv[1] the blob endpoint, argv[2] [[container, name, hex], ...].
const UPLOAD_AZURE: &str = r#"
import json, sys
from azure.storage.blob import BlobServiceClient
endpoint, blobs = sys.argv[1], json.loads(sys.argv[2])
conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"BlobEndpoint={endpoint}/devstoreaccount1;")
service = BlobServiceClient.from_connection_string(conn)
made = set()
for container, name, data in blobs:
    if container not in made:
        service.create_container(container)
        made.add(container)
    service.get_container_client(container).upload_blob(name, bytes.fromhex(data), overwrite=True)
"#;

/// Runs upload operations (JSON in argv[2]) against the server at argv[1] with boto3.
const UPLOAD: &str = r#"
import base64, hashlib, json, sys
import boto3
from botocore.config import Config
endpoint, ops = sys.argv[1], json.loads(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="uploader", aws_secret_access_key="uploader-secret",
                  config=Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required"))
for op in ops:
    if op["op"] == "bucket":
        s3.create_bucket(Bucket=op["bucket"])
        if op.get("versioning"):
            s3.put_bucket_versioning(Bucket=op["bucket"], VersioningConfiguration={"Status": "Enabled"})
        continue
    if op["op"] == "zip":
        # A PyTorch-style checkpoint: a zip (stored) whose pickle comes first and whose central
        # directory sits behind `pad` bytes of tensor data.
        import io, zipfile
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr("model/data.pkl", bytes.fromhex(op["hex"]))
            z.writestr("model/data/0", b"\0" * op["pad"])
            z.writestr("model/version", b"3\n")
        body = buf.getvalue()
    else:
        body = bytes.fromhex(op["hex"])
    kw = {}
    stated = op.get("stated")
    if op.get("checksum"):
        kw["ChecksumAlgorithm"] = "SHA256"
    def state(request, **_):
        request.headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
        request.headers["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(stated)).decode()
    if stated:
        s3.meta.events.register("before-sign.s3.PutObject", state, unique_id="state")
    r = s3.put_object(Bucket=op["bucket"], Key=op["key"], Body=body, **kw)
    if stated:
        s3.meta.events.unregister("before-sign.s3.PutObject", unique_id="state")
    print(json.dumps({"key": op["key"], "version": r.get("VersionId"), "etag": r.get("ETag")}))
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn site() -> PathBuf {
    root().join("target/s3-server/site")
}

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(auth: bool) -> Option<Moto> {
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
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONPATH", site())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            // Every request is authenticated against moto's IAM, which knows no access key.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd.spawn().expect("start moto");
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || moto.child.try_wait().unwrap().is_some() {
                return skip("the S3 test server (moto) did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// Runs boto3 operations; returns one JSON line per upload.
    fn run(&self, ops: &[Value]) -> Vec<Value> {
        let out = Command::new("python3")
            .arg("-c")
            .arg(UPLOAD)
            .arg(&self.endpoint)
            .arg(Value::Array(ops.to_vec()).to_string())
            .env("PYTHONPATH", site())
            .output()
            .unwrap();
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Azurite blob service on a free loopback port, stopped when dropped.
struct Azurite {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Option<Azurite> {
        let base = root().join("target/azurite");
        let installed = Command::new("python3")
            .arg("-c")
            .arg(INSTALL_AZURE)
            .arg(&base)
            .arg(AZURITE)
            .arg(AZURE_BLOB)
            .stdout(Stdio::null())
            .status();
        let bin = base.join("node_modules/.bin/azurite-blob");
        if !installed.is_ok_and(|s| s.success()) || !bin.is_file() {
            eprintln!(
                "\n\n*** SKIPPED: Azurite ({AZURITE}, npm) or {AZURE_BLOB} (pip) cannot be installed (`.ci/run` installs them into target/azurite) ***\n\n"
            );
            return None;
        }
        let data = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--silent",
                "--skipApiVersionCheck",
            ])
            .arg("--location")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        let mut azurite = Azurite { child, endpoint: format!("http://127.0.0.1:{port}"), _data: data };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline && azurite.child.try_wait().unwrap().is_none(),
                "azurite did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(azurite)
    }

    fn upload(&self, blobs: &[(&str, &str, &[u8])]) {
        let list: Vec<Value> = blobs.iter().map(|(c, n, d)| json!([c, n, hex(d)])).collect();
        let out = Command::new("python3")
            .arg("-c")
            .arg(UPLOAD_AZURE)
            .arg(&self.endpoint)
            .arg(Value::Array(list).to_string())
            .env("PYTHONPATH", root().join("target/azurite/site"))
            .output()
            .unwrap();
        assert!(out.status.success(), "azure-storage-blob: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn modelgate(&self, dir: &Path, key: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
        cmd.args(args)
            .current_dir(dir)
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", &self.endpoint)
            .env("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY");
        for (k, _) in
            std::env::vars().filter(|(k, _)| k.starts_with("AZURE_") && !k.starts_with("AZURE_STORAGE_"))
        {
            cmd.env_remove(k);
        }
        for var in [
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_STORAGE_TOKEN",
            "AZURE_STORAGE_ENDPOINT",
            "HTTP_PROXY",
            "http_proxy",
        ] {
            cmd.env_remove(var);
        }
        match key {
            Some(k) => cmd.env("AZURE_STORAGE_ACCOUNT_KEY", k),
            None => cmd.env_remove("AZURE_STORAGE_ACCOUNT_KEY"),
        };
        cmd.output().expect("run modelgate")
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bucket(name: &str, versioning: bool) -> Value {
    json!({"op": "bucket", "bucket": name, "versioning": versioning})
}

/// An upload: `checksum` asks the SDK to send the bytes' SHA-256; `stated` states one instead.
fn put(bucket: &str, key: &str, data: &[u8], checksum: bool, stated: Option<&str>) -> Value {
    json!({"op": "put", "bucket": bucket, "key": key, "hex": hex(data), "checksum": checksum, "stated": stated})
}

fn modelgate(dir: &Path, endpoint: &str, secret: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args)
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env_remove("HF_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for var in [
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        "AWS_SKIP_SIGNATURE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run modelgate")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap()
}

fn paths(r: &Value) -> Vec<String> {
    r["artifacts"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap().to_string()).collect()
}

fn findings(r: &Value) -> Vec<(String, String)> {
    r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["findings"].as_array().unwrap().iter().map(|f| {
                (f["rule"].as_str().unwrap().to_string(), f["severity"].as_str().unwrap_or("").to_string())
            })
        })
        .collect()
}

fn rules(r: &Value) -> Vec<String> {
    findings(r).into_iter().map(|(rule, _)| rule).collect()
}

/// The root every reported path of `key` starts with: `key@sha256:<64 hex>`.
fn root_of(paths: &[String], key: &str) -> String {
    let p = paths.iter().find(|p| p.starts_with(&format!("{key}@sha256:"))).expect("a path under the key");
    let cut = key.len() + "@sha256:".len() + 64;
    let root = &p[..cut];
    assert!(root[key.len() + 8..].bytes().all(|b| b.is_ascii_hexdigit()), "{root}");
    root.to_string()
}

#[test]
fn a_clean_prefix_passes_and_the_report_and_bom_name_every_object() {
    let Some(moto) = Moto::start(false) else { return };
    let weights = fixture("tests/fixtures/benign/safetensors/tiny.safetensors");
    let gguf = fixture("tests/fixtures/benign/gguf/tiny_llama3_template.gguf");
    moto.run(&[
        bucket("models-clean", true),
        put("models-clean", "tiny/model.safetensors", &weights, true, None),
        put("models-clean", "tiny/config.json", b"{\"model_type\": \"gpt2\"}", false, None),
        put("models-clean", "tiny/gguf/tiny.gguf", &gguf, true, None),
        put("models-clean", "other/evil.pkl", EVIL_PICKLE, false, None),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let src = "s3://models-clean/tiny";
    let o = modelgate(
        dir.path(),
        &moto.endpoint,
        SECRET,
        &["scan", src, "--json", "r.json", "--sbom", "bom.json", "--download-dir", keep.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    let got = paths(&r);
    let root = root_of(&got, src);
    for want in ["model.safetensors", "config.json", "gguf/tiny.gguf"] {
        assert!(got.contains(&format!("{root}/{want}")), "{want} in {got:?}");
    }
    assert_eq!(got.len(), 3, "only the objects under the prefix: {got:?}");
    let formats: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().map(|a| a["format"].as_str().unwrap_or("")).collect();
    assert!(formats.contains(&"safetensors") && formats.contains(&"gguf"), "{formats:?}");
    // The verified files are kept under their paths.
    assert_eq!(std::fs::read(keep.join("model.safetensors")).unwrap(), weights);
    assert_eq!(std::fs::read(keep.join("gguf/tiny.gguf")).unwrap(), gguf);

    // The BOM: one model component, versioned and purl'd by the listing digest, one file each.
    let bom: Value = serde_json::from_slice(&std::fs::read(dir.path().join("bom.json")).unwrap()).unwrap();
    let model = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "machine-learning-model")
        .expect("a model component");
    let identity = root.rsplit("@sha256:").next().unwrap();
    assert_eq!(model["version"], format!("sha256:{identity}").as_str());
    assert_eq!(
        model["purl"].as_str().unwrap(),
        format!("pkg:generic/tiny@sha256%3A{identity}?download_url=s3%3A//models-clean/tiny")
    );
    let files = model["components"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{model}");
    let bom_text = serde_json::to_string(&bom).unwrap();
    assert!(bom_text.contains(&sha256_hex(&weights)), "the files' digests are in the BOM");

    // --include selects objects by their path below the prefix; the rest are never fetched.
    let o = modelgate(
        dir.path(),
        &moto.endpoint,
        SECRET,
        &["scan", src, "--include", "*.json", "--json", "r.json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(paths(&report(dir.path())), vec![format!("{root}/config.json")]);

    // Neither the secret nor a signature is in any output.
    for out in [text(&o), std::fs::read_to_string(dir.path().join("r.json")).unwrap(), bom_text] {
        assert!(!out.contains(SECRET) && !out.contains("X-Amz-Signature"), "{out}");
    }
}

#[test]
fn a_malicious_pickle_object_fails_and_nothing_is_kept() {
    let Some(moto) = Moto::start(false) else { return };
    moto.run(&[
        bucket("models-evil", false),
        put("models-evil", "m/config.json", b"{}", false, None),
        put("models-evil", "m/model.pkl", EVIL_PICKLE, true, None),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let o = modelgate(
        dir.path(),
        &moto.endpoint,
        SECRET,
        &["scan", "s3://models-evil/m/", "--json", "r.json", "--download-dir", keep.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).contains(&"MG101".to_string()), "the pickle rule: {:?}", rules(&r));
    let root = root_of(&paths(&r), "s3://models-evil/m");
    assert!(paths(&r).contains(&format!("{root}/model.pkl")), "{:?}", paths(&r));
    let kept: Vec<_> = std::fs::read_dir(&keep).unwrap().collect();
    assert!(kept.is_empty(), "nothing is kept when the gate fails: {kept:?}");
    // One object named by its full key is a source too.
    let o = modelgate(
        dir.path(),
        &moto.endpoint,
        SECRET,
        &["scan", "s3://models-evil/m/model.pkl", "--json", "r.json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(paths(&report(dir.path())).len(), 1);
}

#[test]
fn a_large_checkpoint_streams_with_range_reads_of_its_central_directory() {
    let Some(moto) = Moto::start(false) else { return };
    // Larger than the 8 MiB read into memory: streamed, the zip's directory read by range.
    let zip = |key: &str, pickle: &[u8]| json!({"op": "zip", "bucket": "models-big", "key": key, "hex": hex(pickle), "pad": 9 << 20, "checksum": true});
    // `{"a": 1}` pickled with protocol 2.
    let benign: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
    moto.run(&[bucket("models-big", true), zip("ok/model.pt", benign), zip("evil/model.pt", EVIL_PICKLE)]);
    let dir = tempfile::tempdir().unwrap();
    let o =
        modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", "s3://models-big/ok", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    assert_eq!(r["artifacts"][0]["format"], "pytorch-zip", "{r}");
    let o =
        modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", "s3://models-big/evil", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = rules(&report(dir.path()));
    assert!(f.contains(&"MG101".to_string()) && !f.contains(&"MG903".to_string()), "{f:?}");
}

#[test]
fn a_stored_checksum_that_is_not_the_bytes_is_critical() {
    let Some(moto) = Moto::start(false) else { return };
    let benign = fixture("examples/benign-model/model.pt");
    moto.run(&[
        bucket("models-lie", false),
        // Stated right: compared, and it matches.
        put("models-lie", "ok/model.pt", &benign, false, Some(&sha256_hex(&benign))),
        // Stated wrong: the store says the object is other bytes than it serves.
        put("models-lie", "lie/model.pt", &benign, false, Some(&sha256_hex(b"other bytes"))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let o =
        modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", "s3://models-lie/ok", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let keep = dir.path().join("kept");
    let o = modelgate(
        dir.path(),
        &moto.endpoint,
        SECRET,
        &["scan", "s3://models-lie/lie", "--json", "r.json", "--download-dir", keep.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = findings(&report(dir.path()));
    assert!(f.contains(&("MG901".to_string(), "critical".to_string())), "{f:?}");
    assert!(std::fs::read_dir(&keep).unwrap().next().is_none(), "nothing is kept");
}

#[test]
fn wrong_credentials_and_plain_http_elsewhere_exit_2_without_printing_secrets() {
    let Some(moto) = Moto::start(true) else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", "s3://models-private/m"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("access denied") && t.contains("AWS_ACCESS_KEY_ID"), "{t}");
    assert!(!t.contains(SECRET), "{t}");
    // Plain HTTP to a host that is not loopback is refused before anything is sent.
    let o = modelgate(dir.path(), "http://s3.example.com", SECRET, &["scan", "s3://models-private/m"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("loopback"), "{}", text(&o));
    // Anonymous access is refused up front (it could not presign, and would look for
    // credentials in the instance metadata service).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    let o = cmd
        .args(["scan", "s3://models-private/m"])
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_SKIP_SIGNATURE", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("AWS_SKIP_SIGNATURE"), "{}", text(&o));
}

#[test]
fn lock_pins_versions_and_digests_and_a_changed_object_fails_the_lock() {
    let Some(moto) = Moto::start(false) else { return };
    let weights = fixture("tests/fixtures/benign/safetensors/tiny.safetensors");
    let first = moto.run(&[
        bucket("models-lock", true),
        put("models-lock", "m/model.safetensors", &weights, true, None),
        put("models-lock", "m/config.json", b"{\"a\": 1}", false, None),
    ]);
    let version = first[0]["version"].as_str().expect("a versioned bucket gives version ids").to_string();
    let dir = tempfile::tempdir().unwrap();
    let src = "s3://models-lock/m";
    let o = modelgate(dir.path(), &moto.endpoint, SECRET, &["lock", src]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lock = std::fs::read_to_string(dir.path().join("modelgate.lock")).unwrap();
    assert!(lock.contains("path = \"s3://models-lock/m\""), "{lock}");
    assert!(lock.contains(&sha256_hex(&weights)), "{lock}");
    let o = modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", src, "--locked", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pinned_root = root_of(&paths(&report(dir.path())), src);
    assert!(
        lock.contains(&format!("revision = \"{}\"", pinned_root.rsplit("@sha256:").next().unwrap())),
        "the listing digest is the revision: {lock}"
    );

    // The object is overwritten: a new version, other bytes.
    let second = moto.run(&[put("models-lock", "m/config.json", b"{\"a\": 2}", false, None)]);
    assert_ne!(second[0]["version"].as_str(), Some(version.as_str()));
    let o = modelgate(dir.path(), &moto.endpoint, SECRET, &["scan", src, "--locked", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "the changed object fails the lock: {}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG701".to_string()), "{}", text(&o));
    assert!(text(&o).contains("lockfile pins"), "{}", text(&o));
    assert_ne!(root_of(&paths(&report(dir.path())), src), pinned_root, "a new listing identity");
}

#[test]
fn an_azure_container_is_scanned_through_azurite() {
    let Some(az) = Azurite::start() else { return };
    let weights = fixture("tests/fixtures/benign/safetensors/tiny.safetensors");
    az.upload(&[
        ("models", "tiny/model.safetensors", &weights),
        ("models", "tiny/config.json", b"{\"model_type\": \"gpt2\"}"),
        ("models", "evil/model.pkl", EVIL_PICKLE),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let o = az.modelgate(
        dir.path(),
        None,
        &["scan", "az://models/tiny", "--json", "r.json", "--sbom", "bom.json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = paths(&report(dir.path()));
    let root = root_of(&got, "az://models/tiny");
    assert!(got.contains(&format!("{root}/model.safetensors")) && got.len() == 2, "{got:?}");
    for out in [text(&o), std::fs::read_to_string(dir.path().join("r.json")).unwrap()] {
        assert!(!out.contains(AZURITE_KEY) && !out.contains("sig="), "{out}");
    }
    let o = az.modelgate(dir.path(), None, &["scan", "az://models/evil", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG101".to_string()));
    // Another account key: the emulator refuses it; exit 2, and the key is not printed.
    let wrong = "d3Jvbmcta2V5LWZvci10aGUtZW11bGF0b3Itd3Jvbmcta2V5LWZvci10aGUtZW11bGF0b3I=";
    let o = az.modelgate(dir.path(), Some(wrong), &["scan", "az://models/tiny"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("access denied") && !text(&o).contains(wrong), "{}", text(&o));
}

#[test]
fn gs_and_az_endpoints_over_plain_http_elsewhere_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    for (src, var, endpoint) in [
        ("gs://models/m", "GOOGLE_BASE_URL", "http://gcs.example.com"),
        ("az://models/m", "AZURE_STORAGE_ENDPOINT", "http://blob.example.com/acct"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_modelgate"))
            .args(["scan", src])
            .current_dir(dir.path())
            .env(var, endpoint)
            .env("AZURE_STORAGE_ACCOUNT_NAME", "acct")
            .env("GOOGLE_BEARER_TOKEN", "not-a-real-token")
            .env_remove("AZURE_STORAGE_USE_EMULATOR")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{src}: {}", text(&o));
        assert!(text(&o).contains("loopback") && text(&o).contains(var), "{src}: {}", text(&o));
    }
}
