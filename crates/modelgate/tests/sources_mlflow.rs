//! `modelgate scan` and `lock` on `models:/…` and `runs:/…` sources against a real MLflow
//! tracking server: `mlflow server` (PyPI `mlflow[auth]`, pinned below, installed on first use
//! into a venv under `target/mlflow-cache`) started once for this test binary on 127.0.0.1 with
//! basic authentication, a SQLite store and the artifact proxy (`--serve-artifacts`). A small
//! harness (written out below) logs model directories as runs' artifacts with the MLflow client,
//! registers them as model versions and sets an alias; the tests then scan them, tamper with an
//! artifact on the server's disk, and try wrong credentials. The server stops when this test
//! process ends (the harness waits for its standard input to close). Without the package (no
//! network, no pip) every test prints a loud SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The MLflow release the tests run against (with the `auth` extra, for `--app-name basic-auth`).
const MLFLOW: &str = "mlflow[auth]==3.18.0";
const ADMIN: &str = "mg-admin";
const PASSWORD: &str = "mg-s3cret-pass-1";
const EVIL_PICKLE: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
const MLMODEL: &str = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_version: 3.11.7\nmlflow_version: 3.18.0\nmodel_uuid: 0123456789abcdef0123456789abcdef\n";

const HARNESS: &str = r#"
import json, os, shutil, signal, subprocess, sys, time

def serve(top, port):
    directory = os.path.join(top, "srv")
    os.makedirs(directory, exist_ok=True)
    ini = os.path.join(directory, "basic_auth.ini")
    with open(ini, "w") as f:
        f.write("[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s\nadmin_username = %s\n"
                "admin_password = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                % (os.path.join(directory, "auth.db"), os.environ["MG_ADMIN_USER"], os.environ["MG_ADMIN_PASSWORD"]))
    env = dict(os.environ, MLFLOW_AUTH_CONFIG_PATH=ini, MLFLOW_FLASK_SERVER_SECRET_KEY="modelgate-test")
    log = open(os.path.join(directory, "server.log"), "w")
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--host", "127.0.0.1", "--port", port,
         "--workers", "1", "--backend-store-uri", "sqlite:///" + os.path.join(directory, "mlflow.db"),
         "--artifacts-destination", os.path.join(directory, "artifacts"), "--serve-artifacts",
         "--app-name", "basic-auth"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sys.stdin.read()  # until the test process ends
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(10)
                break
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(top, ignore_errors=True)

def setup(spec_path):
    from mlflow import MlflowClient
    with open(spec_path) as f:
        spec = json.load(f)
    client = MlflowClient()
    exp = client.create_experiment("modelgate-%d" % time.time_ns())
    out = {}
    for model in spec["models"]:
        run = client.create_run(exp)
        client.create_registered_model(model["name"])
        if model.get("logged_model"):
            # MLflow 3's way: a logged model of the run, registered by its models:/m-… URI.
            lm = client.create_logged_model(exp, source_run_id=run.info.run_id, name=model["name"])
            client.log_model_artifacts(lm.model_id, model["dir"])
            client.finalize_logged_model(lm.model_id, "READY")
            source, location, model_id = "models:/" + lm.model_id, lm.artifact_location, lm.model_id
        else:
            client.log_artifacts(run.info.run_id, model["dir"], "model")
            location, model_id = run.info.artifact_uri + "/model", None
            source = ("runs:/%s/model" % run.info.run_id) if model.get("runs_source") else location
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version(model["name"], source, run_id=run.info.run_id, model_id=model_id)
        for alias in model.get("aliases", []):
            client.set_registered_model_alias(model["name"], alias, mv.version)
        out[model["name"]] = {"run_id": run.info.run_id, "version": mv.version, "location": location,
                              "source": client.get_model_version(model["name"], mv.version).source}
    print(json.dumps(out))

if __name__ == "__main__":
    {"serve": lambda: serve(sys.argv[2], sys.argv[3]), "setup": lambda: setup(sys.argv[2])}[sys.argv[1]]()
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn skip(why: &str) {
    eprintln!("\n\n*** SKIPPED: {why} ***\n\n");
}

/// The venv's python with MLflow installed (once, under a lock), or why not.
fn mlflow_python() -> Result<PathBuf, String> {
    let cache = root().join("target/mlflow-cache");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let venv = cache.join("venv");
    let python = venv.join("bin/python");
    // Holds the requirement installed (`.ci/run` writes it the same way).
    let marker = venv.join(".complete");
    let lock = std::fs::File::create(cache.join(".lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == MLFLOW) {
        return Ok(python);
    }
    if !python.is_file() {
        let o = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| format!("python3: {e}"))?;
        if !o.status.success() {
            return Err(format!("python3 -m venv failed: {}", text(&o)));
        }
    }
    let o = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", MLFLOW])
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !o.status.success() {
        return Err(format!("pip install {MLFLOW} failed: {}", text(&o)));
    }
    std::fs::write(&marker, MLFLOW).map_err(|e| e.to_string())?;
    Ok(python)
}

/// The tracking server shared by the tests, and what the harness registered on it.
struct Server {
    uri: String,
    dir: PathBuf,
    made: Value,
    /// Held open for the life of the test process: when it closes, the harness stops the server.
    _stdin: Mutex<ChildStdin>,
}

impl Server {
    fn version(&self, name: &str) -> &str {
        self.made[name]["version"].as_str().unwrap()
    }

    fn run_id(&self, name: &str) -> &str {
        self.made[name]["run_id"].as_str().unwrap()
    }

    /// The file the server serves an artifact of `name`'s version from.
    fn artifact_file(&self, name: &str, path: &str) -> PathBuf {
        let location = self.made[name]["location"].as_str().unwrap();
        self.dir.join("artifacts").join(location.strip_prefix("mlflow-artifacts:/").unwrap()).join(path)
    }
}

fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    let s = SERVER.get_or_init(|| {
        let python = match mlflow_python() {
            Ok(p) => p,
            Err(why) => {
                skip(&format!("{MLFLOW} cannot be installed ({why}); .ci/run installs it"));
                return None;
            }
        };
        Some(start(&python))
    });
    if s.is_none() {
        skip(&format!("{MLFLOW} cannot be installed; .ci/run installs it"));
    }
    s.as_ref()
}

fn start(python: &Path) -> Server {
    let dir = tempfile::Builder::new().prefix("modelgate-mlflow-").tempdir().unwrap().keep();
    std::fs::write(dir.join("harness.py"), HARNESS).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(python)
        .arg(dir.join("harness.py"))
        .arg("serve")
        .arg(&dir)
        .arg(port.to_string())
        .env("MG_ADMIN_USER", ADMIN)
        .env("MG_ADMIN_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the mlflow harness");
    let stdin = child.stdin.take().unwrap();
    let uri = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if health(port) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mlflow server exited ({status}): {}", server_log(&dir));
        }
        assert!(Instant::now() < deadline, "mlflow server did not start: {}", server_log(&dir));
        std::thread::sleep(Duration::from_millis(500));
    }
    // The models: a clean one (with an alias), a malicious one (registered by a runs:/ source),
    // and one whose artifact the pin test changes on the server's disk (an MLflow 3 logged
    // model, registered by its models:/m-… URI).
    let models = dir.join("models");
    let write = |name: &str, files: &[(&str, &[u8])]| {
        for (path, data) in files {
            let p = models.join(name).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        models.join(name).to_str().unwrap().to_string()
    };
    let tiny = fixture("tests/fixtures/benign/safetensors/tiny.safetensors");
    let spec = json!({"models": [
        {"name": "mg-clean", "aliases": ["champion"], "dir": write("mg-clean", &[
            ("MLmodel", MLMODEL.as_bytes()),
            ("model.safetensors", &tiny),
            ("data/config.json", b"{\"model_type\": \"gpt2\"}"),
        ])},
        {"name": "mg-evil", "runs_source": true, "dir": write("mg-evil", &[
            ("MLmodel", MLMODEL.as_bytes()),
            ("model.pkl", EVIL_PICKLE),
        ])},
        {"name": "mg-pinned", "logged_model": true, "dir": write("mg-pinned", &[
            ("MLmodel", MLMODEL.as_bytes()),
            ("model.safetensors", &tiny),
        ])},
    ]});
    std::fs::write(dir.join("spec.json"), spec.to_string()).unwrap();
    let o = Command::new(python)
        .arg(dir.join("harness.py"))
        .arg("setup")
        .arg(dir.join("spec.json"))
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_TRACKING_USERNAME", ADMIN)
        .env("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(o.status.success(), "the harness could not register the models: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let made: Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(made["mg-evil"]["source"].as_str().unwrap().starts_with("runs:/"), "{made}");
    assert!(made["mg-clean"]["source"].as_str().unwrap().starts_with("mlflow-artifacts:/"), "{made}");
    assert!(made["mg-pinned"]["source"].as_str().unwrap().starts_with("models:/m-"), "{made}");
    Server { uri, dir: dir.join("srv"), made, _stdin: Mutex::new(stdin) }
}

fn health(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("srv/server.log")).unwrap_or_default()
}

/// Runs modelgate against the server with the right credentials, overridden by `env`
/// (`None` removes a variable).
fn modelgate(srv: &Server, dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    cmd.args(args)
        .current_dir(dir)
        .env("MLFLOW_TRACKING_URI", &srv.uri)
        .env("MLFLOW_TRACKING_USERNAME", ADMIN)
        .env("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env_remove("HF_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
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
fn a_clean_version_passes_and_its_report_and_bom_name_the_artifacts() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let v = srv.version("mg-clean");
    let src = format!("models:/mg-clean/{v}");
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", &src, "--json", "r.json", "--sbom", "bom.json", "--download-dir", keep.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(dir.path());
    let mut got = paths(&r);
    got.sort();
    assert_eq!(
        got,
        ["MLmodel", "data/config.json", "model.safetensors"].map(|p| format!("models:/mg-clean/{v}/{p}")),
        "{}",
        text(&o)
    );
    let format_of = |p: &str| {
        r["artifacts"].as_array().unwrap().iter().find(|a| a["path"].as_str().unwrap().ends_with(p)).unwrap()
            ["format"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(format_of("model.safetensors"), "safetensors");
    assert_eq!(format_of("config.json"), "json");
    // The MLmodel file is scanned like any other text configuration.
    assert!(!format_of("MLmodel").is_empty());
    // The BOM: one model component named by the registered model, versioned by its version,
    // with the purl spec's `mlflow` purl naming the server and the run.
    let bom: Value = serde_json::from_slice(&std::fs::read(dir.path().join("bom.json")).unwrap()).unwrap();
    let model = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "machine-learning-model")
        .expect("a model component");
    assert_eq!(model["name"], "mg-clean");
    assert_eq!(model["version"], v);
    assert_eq!(
        model["purl"].as_str().unwrap(),
        format!(
            "pkg:mlflow/mg-clean@{v}?repository_url={}/api/2.0/mlflow&run_id={}",
            srv.uri,
            srv.run_id("mg-clean")
        )
    );
    let files = model["components"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f["hashes"][0]["alg"] == "SHA-256"), "{files:?}");
    // The verified files are kept, under their paths in the version.
    assert_eq!(
        std::fs::read(keep.join("model.safetensors")).unwrap(),
        fixture("tests/fixtures/benign/safetensors/tiny.safetensors")
    );
    assert!(keep.join("data/config.json").is_file() && keep.join("MLmodel").is_file());
}

#[test]
fn an_alias_resolves_to_its_version() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = modelgate(srv, dir.path(), &["scan", "models:/mg-clean@champion", "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let root = format!("models:/mg-clean/{}/", srv.version("mg-clean"));
    let got = paths(&report(dir.path()));
    assert!(got.len() == 3 && got.iter().all(|p| p.starts_with(&root)), "{got:?}");
}

#[test]
fn a_run_path_is_scanned() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = srv.run_id("mg-clean");
    let o = modelgate(srv, dir.path(), &["scan", &format!("runs:/{run}/model"), "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = paths(&report(dir.path()));
    assert!(got.contains(&format!("runs:/{run}/model/model.safetensors")), "{got:?}");
    // The whole run, and a single directory in it.
    let o = modelgate(srv, dir.path(), &["scan", &format!("runs:/{run}"), "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(paths(&report(dir.path())).contains(&format!("runs:/{run}/model/data/config.json")));
    let o =
        modelgate(srv, dir.path(), &["scan", &format!("runs:/{run}/model/data"), "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(paths(&report(dir.path())), [format!("runs:/{run}/model/data/config.json")]);
    // One file: reported as the source itself, kept under its own name.
    let keep = dir.path().join("kept");
    let one = format!("runs:/{run}/model/model.safetensors");
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", &one, "--json", "r.json", "--download-dir", keep.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(paths(&report(dir.path())), [one]);
    assert!(keep.join("model.safetensors").is_file());
}

#[test]
fn a_malicious_version_fails_with_the_pickle_rule_and_nothing_is_kept() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let src = format!("models:/mg-evil/{}", srv.version("mg-evil"));
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", &src, "--json", "r.json", "--download-dir", keep.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(paths(&r).contains(&format!("{src}/model.pkl")), "{:?}", paths(&r));
    assert!(rules(&r).iter().any(|id| id.starts_with("MG1")), "a code-execution finding: {:?}", rules(&r));
    assert!(std::fs::read_dir(&keep).unwrap().next().is_none(), "nothing is kept when the gate fails");
}

#[test]
fn unknown_models_versions_aliases_and_runs_exit_2_saying_so() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    for src in [
        "models:/mg-clean/999",
        "models:/no-such-model/1",
        "models:/mg-clean@no-such-alias",
        "runs:/0123456789abcdef/model",
    ] {
        let o = modelgate(srv, dir.path(), &["scan", src], &[]);
        assert_eq!(o.status.code(), Some(2), "{src}: {}", text(&o));
        assert!(text(&o).contains("not found"), "{src}: {}", text(&o));
    }
    // A run path with nothing under it.
    let src = format!("runs:/{}/no-such-dir", srv.run_id("mg-clean"));
    let o = modelgate(srv, dir.path(), &["scan", &src], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no artifacts"), "{}", text(&o));
    // No tracking server named, or one over plain HTTP elsewhere than loopback.
    let o = modelgate(srv, dir.path(), &["scan", "models:/mg-clean/1"], &[("MLFLOW_TRACKING_URI", None)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("MLFLOW_TRACKING_URI"), "{}", text(&o));
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", "models:/mg-clean/1"],
        &[("MLFLOW_TRACKING_URI", Some("http://mlflow.example"))],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("loopback"), "{}", text(&o));
    // Not a usable URI at all: a usage error before anything is asked.
    let o = modelgate(srv, dir.path(), &["scan", "models:/mg-clean/Production"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn wrong_or_missing_credentials_exit_2_and_no_password_is_printed() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = format!("models:/mg-clean/{}", srv.version("mg-clean"));
    let wrong = "wrong-password-123";
    let o = modelgate(srv, dir.path(), &["scan", &src], &[("MLFLOW_TRACKING_PASSWORD", Some(wrong))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("denied") && !text(&o).contains(wrong), "{}", text(&o));
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", &src],
        &[("MLFLOW_TRACKING_USERNAME", None), ("MLFLOW_TRACKING_PASSWORD", None)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("MLFLOW_TRACKING_USERNAME"), "{}", text(&o));
    // A bearer token the server does not know is refused the same way.
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", &src],
        &[
            ("MLFLOW_TRACKING_USERNAME", None),
            ("MLFLOW_TRACKING_PASSWORD", None),
            ("MLFLOW_TRACKING_TOKEN", Some("tok-123")),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("MLFLOW_TRACKING_TOKEN") && !text(&o).contains("tok-123"), "{}", text(&o));
    // The right ones: nothing printed or reported carries the password.
    let o = modelgate(srv, dir.path(), &["scan", &src, "--json", "r.json", "--sbom", "bom.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for out in [
        text(&o),
        std::fs::read_to_string(dir.path().join("r.json")).unwrap(),
        std::fs::read_to_string(dir.path().join("bom.json")).unwrap(),
    ] {
        assert!(!out.contains(PASSWORD), "{out}");
    }
}

#[test]
fn lock_pins_the_version_and_a_changed_artifact_fails_the_locked_scan() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let v = srv.version("mg-pinned");
    let src = format!("models:/mg-pinned/{v}");
    let o = modelgate(srv, dir.path(), &["lock", &src], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lock = std::fs::read_to_string(dir.path().join("modelgate.lock")).unwrap();
    assert!(lock.contains(&format!("path = \"models:/mg-pinned/{v}\"")), "{lock}");
    let tiny = fixture("tests/fixtures/benign/safetensors/tiny.safetensors");
    let sha: String =
        <sha2::Sha256 as sha2::Digest>::digest(&tiny).iter().map(|b| format!("{b:02x}")).collect();
    assert!(lock.contains(&format!("sha256 = \"{sha}\"")), "{lock}");
    let o = modelgate(srv, dir.path(), &["scan", &src, "--locked", "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Behind the server's back: the artifact changes (same size, other bytes).
    let file = srv.artifact_file("mg-pinned", "model.safetensors");
    let mut changed = tiny.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    std::fs::write(&file, &changed).unwrap();
    let o = modelgate(srv, dir.path(), &["scan", &src, "--locked", "--json", "r.json"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(dir.path());
    assert!(rules(&r).contains(&"MG701".to_string()), "{:?}: {}", rules(&r), text(&o));
    // A version the lockfile does not pin (an alias moved to it) is unpinned.
    let o = modelgate(
        srv,
        dir.path(),
        &["scan", "models:/mg-clean@champion", "--locked", "--json", "r.json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(rules(&report(dir.path())).contains(&"MG702".to_string()), "{}", text(&o));
}
