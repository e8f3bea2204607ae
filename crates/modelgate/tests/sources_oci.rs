//! `modelgate scan` and `lock` on `oci://` sources against a real registry: Debian's
//! `docker-registry` (CNCF Distribution), started by each test on 127.0.0.1 with a temporary
//! configuration, artifacts pushed by the test over the distribution API (ModelPack and KitOps
//! ModelKit layouts, an index), then tampered with on the registry's disk (a layer whose digest
//! lies, a truncated blob, a manifest that is not its digest), and a registry behind htpasswd
//! for the credential paths. `.ci/run` installs the package; without it each test prints a loud
//! SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sha2::Digest;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::tar;

const EVIL_PICKLE: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
const USER: &str = "ci-user";
const PASSWORD: &str = "s3cret-pass";
/// bcrypt of PASSWORD (the registry's htpasswd accepts only bcrypt).
const HTPASSWD: &str = "ci-user:$2b$12$XjQj1RZuMw3ZMqxDYK3zJOK40.RGUd2HYV49sU5rdxZQhlNlYqjsK";
const MODELPACK_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
const KITOPS_CONFIG: &str = "application/vnd.kitops.modelkit.config.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A `docker-registry` on a free loopback port, stopped when dropped.
struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
    auth: Option<String>,
}

fn registry_binary() -> Option<PathBuf> {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin")])
    {
        let p = dir.join("docker-registry");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// A loopback port no other registry of this test process was given (tests run in parallel, and
/// the kernel may hand a just-released ephemeral port out again).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Registry {
    fn start(htpasswd: bool) -> Option<Registry> {
        let Some(bin) = registry_binary() else {
            eprintln!(
                "\n\n*** SKIPPED: docker-registry is not installed (apt-get install docker-registry; .ci/run does) ***\n\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("data");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: modelgate-test\n",
            storage.display()
        );
        if htpasswd {
            std::fs::write(dir.path().join("htpasswd"), format!("{HTPASSWD}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: modelgate-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when something listens on the port and it is our registry: a registry that could
        // not bind (the port taken meanwhile) exits, and the listener found was someone else's.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            assert!(child.try_wait().unwrap().is_none(), "docker-registry exited (port {port} taken?)");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(child.try_wait().unwrap().is_none(), "docker-registry exited (port {port} taken?)");
        let auth = htpasswd.then(|| format!("{USER}:{PASSWORD}"));
        Some(Registry { child, host: format!("127.0.0.1:{port}"), storage, _dir: dir, auth })
    }

    fn client(&self) -> reqwest::blocking::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::blocking::Client::builder().no_proxy().build().unwrap()
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let req = self.client().request(method, url);
        match &self.auth {
            Some(a) => {
                let (u, p) = a.split_once(':').unwrap();
                req.basic_auth(u, Some(p))
            }
            None => req,
        }
    }

    /// Pushes a blob (monolithic upload); returns its descriptor.
    fn blob(&self, repo: &str, media_type: &str, data: &[u8], title: Option<&str>) -> Value {
        let digest = format!("sha256:{}", sha256_hex(data));
        // POST starts an upload session; PUT to its Location with the digest completes it.
        let url = format!("http://{}/v2/{repo}/blobs/uploads/", self.host);
        let resp = self.request(reqwest::Method::POST, &url).send().unwrap();
        assert_eq!(resp.status().as_u16(), 202, "start upload: {:?}", resp.status());
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let mut put =
            reqwest::Url::parse(&format!("http://{}/", self.host)).unwrap().join(&location).unwrap();
        put.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .request(reqwest::Method::PUT, put.as_str())
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "push blob: {}", resp.text().unwrap_or_default());
        let mut d = json!({"mediaType": media_type, "digest": digest, "size": data.len()});
        if let Some(t) = title {
            d["annotations"] = json!({"org.opencontainers.image.title": t});
        }
        d
    }

    /// Pushes a manifest under `reference`; returns its digest.
    fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &Value) -> String {
        let bytes = serde_json::to_vec(body).unwrap();
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.host);
        let resp = self
            .request(reqwest::Method::PUT, &url)
            .header("Content-Type", media_type)
            .body(bytes.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "push manifest: {}", resp.text().unwrap_or_default());
        format!("sha256:{}", sha256_hex(&bytes))
    }

    /// The file the registry serves a blob from (to tamper with it behind the registry's back).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ModelPack artifact: the config, a raw safetensors weight, a raw GGUF and a tar of config
/// files. Returns (manifest digest, descriptors).
fn push_modelpack(reg: &Registry, repo: &str, tag: &str, extra: Option<Value>) -> String {
    let config = reg.blob(
        repo,
        MODELPACK_CONFIG,
        br#"{"descriptor":{"name":"tiny"},"config":{"format":"safetensors"},"modelfs":{"type":"layers","diffIds":[]}}"#,
        None,
    );
    let mut weight = reg.blob(
        repo,
        "application/vnd.cncf.model.weight.v1.raw",
        &fixture("tests/fixtures/benign/safetensors/tiny.safetensors"),
        None,
    );
    weight["annotations"] = json!({"org.cncf.model.filepath": "model.safetensors"});
    let gguf = reg.blob(
        repo,
        "application/vnd.cncf.model.weight.v1.raw",
        &fixture("tests/fixtures/benign/gguf/tiny_llama3_template.gguf"),
        Some("tiny.gguf"),
    );
    let tar = tar(&[("config.json", b"{\"model_type\": \"gpt2\"}".as_slice())]);
    let configs =
        reg.blob(repo, "application/vnd.cncf.model.weight.config.v1.tar", &tar, Some("configs.tar"));
    let mut layers = vec![weight, gguf, configs];
    layers.extend(extra);
    reg.manifest(
        repo,
        tag,
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": config,
            "layers": layers,
        }),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn modelgate(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args)
        .current_dir(dir)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env_remove("HF_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    cmd.output().expect("run modelgate")
}

fn docker_login(dir: &Path, host: &str, user: &str, password: &str) {
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    let auth = base64(format!("{user}:{password}").as_bytes());
    std::fs::write(dir.join("docker/config.json"), json!({"auths": {host: {"auth": auth}}}).to_string())
        .unwrap();
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { T[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
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

#[test]
fn a_modelpack_artifact_passes_with_digest_paths_pins_and_a_bom() {
    let Some(reg) = Registry::start(false) else { return };
    let digest = push_modelpack(&reg, "models/tiny", "v1", None);
    let dir = tempfile::tempdir().unwrap();
    let src = format!("oci://{}/models/tiny:v1", reg.host);
    let o = modelgate(dir.path(), &["scan", &src, "--json", "r.json", "--sbom", "bom.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    let root = format!("oci://{}/models/tiny@{digest}", reg.host);
    let got = paths(&r);
    for want in ["model.safetensors", "tiny.gguf", "configs.tar"] {
        assert!(got.contains(&format!("{root}/{want}")), "{want} in {got:?}");
    }
    assert_eq!(got.len(), 4, "three layers and the config: {got:?}");
    let formats: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().map(|a| a["format"].as_str().unwrap_or("")).collect();
    assert!(
        formats.contains(&"safetensors") && formats.contains(&"gguf") && formats.contains(&"tar"),
        "{formats:?}"
    );
    // The BOM: one model component, named by its repository, versioned and purl'd by digest.
    let bom: Value = serde_json::from_slice(&std::fs::read(dir.path().join("bom.json")).unwrap()).unwrap();
    let model = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "machine-learning-model")
        .expect("a model component");
    assert_eq!(model["version"], digest.as_str());
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(
        model["purl"].as_str().unwrap(),
        format!("pkg:oci/tiny@sha256%3A{hex}?repository_url={}/models/tiny", reg.host.replace(':', "%3A"))
    );
    assert_eq!(model["components"].as_array().unwrap().len(), 4);

    // lock pins the manifest digest; `--locked` without a tag fetches exactly that.
    let o = modelgate(dir.path(), &["lock", &src]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lock = std::fs::read_to_string(dir.path().join("modelgate.lock")).unwrap();
    assert!(lock.contains(&format!("path = \"oci://{}/models/tiny\"", reg.host)), "{lock}");
    assert!(lock.contains(&format!("revision = \"{hex}\"")), "{lock}");
    // The tag moves to another artifact with one more layer.
    let moved = push_modelpack(
        &reg,
        "models/tiny",
        "v1",
        Some(reg.blob("models/tiny", "application/octet-stream", b"{}", Some("extra.json"))),
    );
    assert_ne!(moved, digest);
    let unpinned = format!("oci://{}/models/tiny", reg.host);
    let o = modelgate(dir.path(), &["scan", &unpinned, "--locked", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "the pinned digest is fetched: {}", text(&o));
    assert!(paths(&report(dir.path())).iter().all(|p| p.starts_with(&root)));
    let o = modelgate(dir.path(), &["scan", &src, "--locked", "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "the moved tag drifts: {}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG702".to_string()), "{}", text(&o));
}

#[test]
fn a_modelkit_with_a_malicious_gzip_tar_layer_fails_and_nothing_is_kept() {
    let Some(reg) = Registry::start(false) else { return };
    let repo = "kit/evil";
    let config =
        reg.blob(repo, KITOPS_CONFIG, br#"{"manifestVersion":"1.0.0","package":{"name":"evil"}}"#, None);
    let layer = gzip(&tar(&[("model/pytorch_model.bin", EVIL_PICKLE)]));
    let model = reg.blob(repo, "application/vnd.kitops.modelkit.model.v1.tar+gzip", &layer, Some("model"));
    let digest = reg.manifest(
        repo,
        "latest",
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [model]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let src = format!("oci://{}/{repo}", reg.host);
    let o =
        modelgate(dir.path(), &["scan", &src, "--json", "r.json", "--download-dir", keep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).iter().any(|id| id.starts_with("MG1")), "a code-execution finding: {:?}", rules(&r));
    assert!(paths(&r).contains(&format!("oci://{}/{repo}@{digest}/model", reg.host)));
    let kept: Vec<_> = std::fs::read_dir(&keep).unwrap().collect();
    assert!(kept.is_empty(), "nothing is kept when the gate fails: {kept:?}");
}

/// An OCI image layer of media type `tar+zstd` (the OCI image spec's zstd layers): decompressed,
/// read as the tar it is, and its malicious member found.
#[test]
fn a_zstd_tar_layer_is_scanned_by_content() {
    let Some(reg) = Registry::start(false) else { return };
    let repo = "img/zstd";
    let config = reg.blob(
        repo,
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux"}"#,
        None,
    );
    let tarball = tar(&[("models/pytorch_model.bin", EVIL_PICKLE)]);
    let layer = ruzstd::encoding::compress_to_vec(&tarball[..], ruzstd::encoding::CompressionLevel::Fastest);
    let layer = reg.blob(repo, "application/vnd.oci.image.layer.v1.tar+zstd", &layer, None);
    reg.manifest(
        repo,
        "v1",
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let src = format!("oci://{}/{repo}:v1", reg.host);
    let o = modelgate(dir.path(), &["scan", &src, "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).iter().any(|id| id == "MG101"), "the pickle in the zstd layer: {:?}", rules(&r));
    let formats: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().filter_map(|a| a["format"].as_str()).collect();
    assert!(formats.contains(&"zstd"), "{formats:?}");
}

#[test]
fn a_layer_whose_bytes_are_not_its_digest_is_critical() {
    let Some(reg) = Registry::start(false) else { return };
    let benign = fixture("examples/benign-model/model.pt");
    let layer = reg.blob("m/lie", "application/octet-stream", &benign, Some("model.pt"));
    let config = reg.blob("m/lie", "application/vnd.oci.empty.v1+json", b"{}", None);
    reg.manifest(
        "m/lie",
        "v1",
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}),
    );
    // Behind the registry's back: same length, other bytes (a pickle that runs a command).
    let file = reg.blob_file(layer["digest"].as_str().unwrap());
    let mut evil = EVIL_PICKLE.to_vec();
    evil.resize(benign.len(), b' ');
    std::fs::write(&file, &evil).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let src = format!("oci://{}/m/lie:v1", reg.host);
    let o =
        modelgate(dir.path(), &["scan", &src, "--json", "r.json", "--download-dir", keep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).contains(&"MG901".to_string()), "{:?}", rules(&r));
    assert!(std::fs::read_dir(&keep).unwrap().next().is_none());

    // A truncated blob: shorter than its descriptor says.
    std::fs::write(&file, &benign[..benign.len() / 2]).unwrap();
    let o = modelgate(dir.path(), &["scan", &src, "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG902".to_string()), "{}", text(&o));
}

#[test]
fn a_manifest_that_is_not_its_digest_stops_the_gate() {
    let Some(reg) = Registry::start(false) else { return };
    let digest = push_modelpack(&reg, "m/man", "v1", None);
    let file = reg.blob_file(&digest);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.iter().position(|&b| b == b'{').unwrap();
    bytes.insert(at + 1, b' ');
    std::fs::write(&file, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for src in [format!("oci://{}/m/man@{digest}", reg.host), format!("oci://{}/m/man:v1", reg.host)] {
        let o = modelgate(dir.path(), &["scan", &src]);
        assert_eq!(o.status.code(), Some(2), "{src}: {}", text(&o));
        assert!(text(&o).contains("digest"), "{}", text(&o));
    }
}

#[test]
fn an_index_resolves_every_manifest() {
    let Some(reg) = Registry::start(false) else { return };
    let a = push_modelpack(&reg, "m/multi", "a", None);
    let config = reg.blob("m/multi", "application/vnd.oci.empty.v1+json", b"{}", None);
    let evil = reg.blob("m/multi", "application/octet-stream", EVIL_PICKLE, Some("model.pkl"));
    let b = reg.manifest(
        "m/multi",
        "b",
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [evil]}),
    );
    let size = |tag: &str| {
        reg.request(reqwest::Method::GET, &format!("http://{}/v2/m/multi/manifests/{tag}", reg.host))
            .header("Accept", OCI_MANIFEST)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len()
    };
    let index = reg.manifest(
        "m/multi",
        "all",
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": a, "size": size("a"), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": b, "size": size("b"), "platform": {"architecture": "arm64", "os": "linux"}},
        ]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(dir.path(), &["scan", &format!("oci://{}/m/multi:all", reg.host), "--json", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    let got = paths(&r);
    let root = format!("oci://{}/m/multi@{index}", reg.host);
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    assert!(got.contains(&format!("{root}/sha256-{}/model.safetensors", hex(&a))), "{got:?}");
    assert!(got.contains(&format!("{root}/sha256-{}/model.pkl", hex(&b))), "{got:?}");
}

#[test]
fn credentials_come_from_the_docker_config_and_are_never_printed() {
    let Some(reg) = Registry::start(true) else { return };
    push_modelpack(&reg, "private/m", "v1", None);
    let src = format!("oci://{}/private/m:v1", reg.host);
    let dir = tempfile::tempdir().unwrap();
    // No credentials: exit 2, saying how to log in.
    let o = modelgate(dir.path(), &["scan", &src]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("docker login"), "{}", text(&o));
    // Wrong (or expired) credentials: exit 2, access denied; the password is not echoed.
    docker_login(dir.path(), &reg.host, USER, "wrong-password-123");
    let o = modelgate(dir.path(), &["scan", &src]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("denied") && !text(&o).contains("wrong-password-123"), "{}", text(&o));
    // The right ones: the scan passes; neither the password nor its base64 is in any output.
    docker_login(dir.path(), &reg.host, USER, PASSWORD);
    let o = modelgate(dir.path(), &["scan", &src, "--json", "r.json", "--sbom", "bom.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let secret = base64(format!("{USER}:{PASSWORD}").as_bytes());
    for out in [
        text(&o),
        std::fs::read_to_string(dir.path().join("r.json")).unwrap(),
        std::fs::read_to_string(dir.path().join("bom.json")).unwrap(),
    ] {
        assert!(!out.contains(PASSWORD) && !out.contains(&secret), "{out}");
    }
}
