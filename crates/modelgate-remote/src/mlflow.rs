//! MLflow: `models:/NAME/VERSION`, `models:/NAME@ALIAS` and `runs:/RUN_ID/PATH`
//! (`docs/remote.md`, "MLflow").
//!
//! The tracking server (`MLFLOW_TRACKING_URI`) is read over MLflow's REST API, as the MLflow
//! client reads it:
//!
//! 1. A model version: `GET /api/2.0/mlflow/model-versions/get?name=…&version=…`, or for an
//!    alias `GET /api/2.0/mlflow/registered-models/alias?name=…&alias=…`; from the
//!    `model_version` it answers, `version`, `run_id`, `status` (must be `READY`) and `source`,
//!    where the version's files are.
//! 2. The source is resolved to a path on the server's artifact proxy: `mlflow-artifacts:/P`
//!    is `P`; `runs:/RUN/P` asks `GET /api/2.0/mlflow/runs/get?run_id=RUN` for the run's
//!    `artifact_uri` (itself `mlflow-artifacts:/…`) and appends `P`; `models:/m-ID` (an MLflow 3
//!    logged model) asks `GET /api/2.0/mlflow/logged-models/m-ID` for its `artifact_uri`.
//!    A source elsewhere (`s3://…`, a local path of the server) is refused with a message
//!    naming it: only a server started with `--serve-artifacts` (the default since MLflow 2)
//!    serves the bytes.
//! 3. `GET /api/2.0/mlflow-artifacts/artifacts?path=P` lists one directory (`files`: `path`,
//!    `is_dir`, `file_size`); directories are listed recursively, and each file is then fetched
//!    from `GET /api/2.0/mlflow-artifacts/artifacts/P/<file>` and scanned as it streams
//!    (`crate::fetch`), held to its listed size.
//!
//! MLflow lists no digest of an artifact: a version's identity is its name and version (and
//! the run it came from), and each file's pin is the SHA-256 computed while it streams.
//!
//! Credentials follow the MLflow client: `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD` as Basic credentials, else `MLFLOW_TRACKING_TOKEN` as a Bearer
//! token; sent only to the tracking server's origin (never across a redirect to another host),
//! never printed. Answers are hostile input: their size, the number of files, directories and
//! listing requests, and every path are checked before use.

use crate::http::{Http, Settings, Want, is_loopback};
use crate::hub::{MAX_API_BYTES, MAX_FILES, check_path};
use crate::oci::base64_encode;
use crate::{Error, Url, display_url};
use reqwest::StatusCode;
use serde::Deserialize;
use std::io::Read;

/// Most directory listings one source may take.
pub const MAX_LISTINGS: usize = 10_000;
/// Deepest directory nesting followed.
pub const MAX_DEPTH: usize = 32;
/// Longest model name, alias, version and run id accepted.
const MAX_NAME: usize = 256;
/// Longest server message quoted in an error.
const MAX_MESSAGE: usize = 300;

/// An MLflow URI named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `models:/NAME/VERSION` or `models:/NAME@ALIAS`.
    Model {
        /// The registered model's name.
        name: String,
        /// Which version.
        selector: Selector,
    },
    /// `runs:/RUN_ID[/PATH]`: artifacts of a run.
    Run {
        /// The run id.
        run_id: String,
        /// The artifact path inside the run (empty: all of the run's artifacts).
        path: String,
    },
}

/// How a model version is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A version number.
    Version(String),
    /// An alias (`@champion`).
    Alias(String),
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.trim() == s
        && s != "."
        && s != ".."
        && s.chars().all(|c| !c.is_control() && !matches!(c, '/' | '@' | '\\' | '?' | '#' | '%'))
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl Reference {
    /// True if `arg` is written as an MLflow URI.
    pub fn is_mlflow(arg: &str) -> bool {
        arg.starts_with("models:/") || arg.starts_with("runs:/")
    }

    /// Parses `models:/NAME/VERSION`, `models:/NAME@ALIAS` or `runs:/RUN_ID[/PATH]`.
    pub fn parse(arg: &str) -> Result<Reference, Error> {
        let bad = |why: &str| Error::Usage(format!("{arg}: {why}"));
        if let Some(rest) = arg.strip_prefix("models:/") {
            if rest.starts_with('/') {
                return Err(bad(
                    "a tracking server in the URI (models://…) is not supported; set MLFLOW_TRACKING_URI",
                ));
            }
            let (name, selector) = if let Some((name, alias)) = rest.rsplit_once('@') {
                if !valid_id(alias) {
                    return Err(bad("an alias is letters, digits, '-' and '_'"));
                }
                (name, Selector::Alias(alias.to_string()))
            } else if let Some((name, version)) = rest.rsplit_once('/') {
                if version.is_empty() || version.len() > 20 || !version.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(
                        "expected models:/NAME/VERSION (a version number) or models:/NAME@ALIAS; stages such as Production and `latest` are not supported (name a version or an alias)",
                    ));
                }
                (name, Selector::Version(version.to_string()))
            } else {
                return Err(bad("expected models:/NAME/VERSION or models:/NAME@ALIAS"));
            };
            if !valid_name(name) {
                return Err(bad(
                    "a model name must not be empty or contain '/', '@', '\\', '?', '#', '%' or control characters",
                ));
            }
            return Ok(Reference::Model { name: name.to_string(), selector });
        }
        if let Some(rest) = arg.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_id(run_id) {
                return Err(bad("expected runs:/RUN_ID[/PATH] (a run id is letters, digits, '-' and '_')"));
            }
            let path = path.trim_end_matches('/');
            if !path.is_empty() {
                check_path(path).map_err(|why| bad(&format!("the artifact path {why}")))?;
            }
            return Ok(Reference::Run { run_id: run_id.to_string(), path: path.to_string() });
        }
        Err(bad("expected models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH"))
    }

    /// The lockfile's name for what this resolves to, given the version it resolved to:
    /// `models:/NAME/VERSION` (an alias pins the version it pointed to), or
    /// `runs:/RUN_ID[/PATH]`.
    pub fn key(&self, version: Option<&str>) -> String {
        match self {
            Reference::Model { name, selector } => {
                // The version the server answered (`01` is `1`), else as written.
                let v = version.unwrap_or(match selector {
                    Selector::Version(v) => v.as_str(),
                    Selector::Alias(a) => a.as_str(),
                });
                format!("models:/{name}/{v}")
            }
            Reference::Run { run_id, path } if path.is_empty() => format!("runs:/{run_id}"),
            Reference::Run { run_id, path } => format!("runs:/{run_id}/{path}"),
        }
    }
}

/// The tracking server's address and credentials, from the environment.
#[derive(Clone)]
pub struct Tracking {
    /// `MLFLOW_TRACKING_URI`, with a trailing slash.
    pub base: Url,
    /// The `Authorization` value (`Basic …` or `Bearer …`), if credentials are set.
    authorization: Option<String>,
    /// Which variables the credentials came from, for messages.
    pub auth_source: Option<&'static str>,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("base", &self.base.as_str())
            .field("authorization", &self.authorization.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Tracking {
    /// From `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` and
    /// `MLFLOW_TRACKING_TOKEN` (empty values count as unset).
    pub fn from_env() -> Result<Tracking, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let uri = var("MLFLOW_TRACKING_URI").ok_or_else(|| {
            Error::Usage(
                "models:/ and runs:/ sources need MLFLOW_TRACKING_URI, the tracking server's http(s) URL"
                    .into(),
            )
        })?;
        Tracking::new(
            &uri,
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
            var("MLFLOW_TRACKING_TOKEN"),
        )
    }

    /// From explicit values (see [`Tracking::from_env`]).
    pub fn new(
        uri: &str,
        user: Option<String>,
        password: Option<String>,
        token: Option<String>,
    ) -> Result<Tracking, Error> {
        let bad = |why: String| Error::Usage(format!("MLFLOW_TRACKING_URI: {why}"));
        let mut base = Url::parse(uri.trim()).map_err(|e| {
            bad(format!(
                "{:?} is not an http(s) URL ({e}); a local store or `databricks` is not supported",
                uri.trim()
            ))
        })?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(bad(format!(
                    "{}: plain http:// is only accepted for loopback hosts; use https://",
                    display_url(&base)
                )));
            }
            _ => return Err(bad(format!("{}: must be an http(s) URL", display_url(&base)))),
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(bad(
                "credentials in the URL are not accepted (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
                    .into(),
            ));
        }
        if base.host_str().is_none() || base.query().is_some() || base.fragment().is_some() {
            return Err(bad(format!("{}: expected scheme://host[:port][/path]", display_url(&base))));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        // As the MLflow client does: a user and password win over a token.
        let (authorization, auth_source) = match (user, password, token) {
            (Some(u), Some(p), _) => (
                Some(format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes()))),
                Some("MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"),
            ),
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(Error::Usage(
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD must be set together".into(),
                ));
            }
            (None, None, Some(t)) => (Some(format!("Bearer {}", t.trim())), Some("MLFLOW_TRACKING_TOKEN")),
            (None, None, None) => (None, None),
        };
        Ok(Tracking { base, authorization, auth_source })
    }

    /// The `Authorization` header value to send to the tracking server ([`Http::with_authorization`]).
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// A URL on the server: the base, then `segments` (each percent-encoded), then `query`.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        {
            let mut path =
                url.path_segments_mut().map_err(|_| Error::Usage("MLFLOW_TRACKING_URI: no path".into()))?;
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// The URL of an artifact on the artifact proxy (`path`: `/`-separated, already checked).
    pub fn artifact_url(&self, path: &str) -> Result<Url, Error> {
        let mut segments = vec!["api", "2.0", "mlflow-artifacts", "artifacts"];
        segments.extend(path.split('/'));
        self.url(&segments, &[])
    }

    /// The purl qualifier `repository_url`: the MLflow REST API of this server (as the purl
    /// spec's `mlflow` examples write it).
    pub fn api_url(&self) -> String {
        format!("{}api/2.0/mlflow", display_url(&self.base))
    }
}

/// One artifact to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path under the version's (or run path's) root.
    pub path: String,
    /// Its path on the artifact proxy.
    pub proxy_path: String,
    /// Size in bytes, as listed.
    pub size: Option<u64>,
}

/// A source resolved to its files.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The registered model's name (model versions only).
    pub name: Option<String>,
    /// The version (model versions only).
    pub version: Option<String>,
    /// The run the files came from, when known.
    pub run_id: Option<String>,
    /// Where the files are, as MLflow names it (`mlflow-artifacts:/…`).
    pub location: String,
    /// Every file, sorted by path.
    pub files: Vec<File>,
    /// The source names one file rather than a directory: `files` holds it, its `path` its
    /// base name.
    pub single_file: bool,
}

#[derive(Deserialize)]
struct VersionAnswer {
    model_version: Option<ModelVersion>,
}

#[derive(Deserialize)]
struct ModelVersion {
    version: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct RunAnswer {
    run: Option<Run>,
}

#[derive(Deserialize)]
struct Run {
    info: Option<RunInfo>,
}

#[derive(Deserialize)]
struct RunInfo {
    artifact_uri: Option<String>,
}

#[derive(Deserialize)]
struct LoggedModelAnswer {
    model: Option<LoggedModel>,
}

#[derive(Deserialize)]
struct LoggedModel {
    info: Option<LoggedModelInfo>,
}

#[derive(Deserialize)]
struct LoggedModelInfo {
    artifact_uri: Option<String>,
    source_run_id: Option<String>,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    files: Vec<ListedFile>,
}

#[derive(Deserialize)]
struct ListedFile {
    path: String,
    #[serde(default)]
    is_dir: bool,
    file_size: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error_code: Option<String>,
    message: Option<String>,
}

/// Resolves `reference` on the tracking server to the files to fetch.
pub fn resolve(http: &Http, tracking: &Tracking, reference: &Reference) -> Result<Resolved, Error> {
    let (name, version, mut run_id, source) = match reference {
        Reference::Model { name, selector } => {
            let (url, what) = match selector {
                Selector::Version(v) => (
                    tracking.url(
                        &["api", "2.0", "mlflow", "model-versions", "get"],
                        &[("name", name), ("version", v)],
                    )?,
                    format!("models:/{name}/{v}"),
                ),
                Selector::Alias(a) => (
                    tracking.url(
                        &["api", "2.0", "mlflow", "registered-models", "alias"],
                        &[("name", name), ("alias", a)],
                    )?,
                    format!("models:/{name}@{a}"),
                ),
            };
            let body = get_json(http, tracking, &url, &what)?;
            let answer: VersionAnswer = serde_json::from_slice(&body)
                .map_err(|e| api(&url, format!("not a model version answer: {e}")))?;
            let mv =
                answer.model_version.ok_or_else(|| api(&url, "the answer has no model_version".into()))?;
            let version = mv
                .version
                .filter(|v| !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()));
            let version =
                version.ok_or_else(|| api(&url, "the model version has no version number".into()))?;
            if let Selector::Version(v) = selector
                && v.trim_start_matches('0') != version.trim_start_matches('0')
            {
                return Err(api(
                    &url,
                    format!("asked for version {v}, the server answered version {version}"),
                ));
            }
            if let Some(s) = mv.status.as_deref().filter(|s| *s != "READY") {
                return Err(api(&url, format!("{what} is {s}, not READY: its files may be incomplete")));
            }
            let source = mv
                .source
                .filter(|s| !s.is_empty())
                .ok_or_else(|| api(&url, "the model version names no source".into()))?;
            let run_id = mv.run_id.filter(|r| valid_id(r));
            (Some(name.clone()), Some(version), run_id, source)
        }
        Reference::Run { run_id, path } => {
            let source =
                if path.is_empty() { format!("runs:/{run_id}") } else { format!("runs:/{run_id}/{path}") };
            (None, None, Some(run_id.clone()), source)
        }
    };
    let (location, root) = proxy_root(http, tracking, &source, &mut run_id)?;
    let mut files = list(http, tracking, &root, true)?;
    // Not a directory: perhaps one file, which its parent's listing names (with its size).
    let mut single_file = false;
    if files.is_empty()
        && let Some((parent, base)) = root.rsplit_once('/')
        && let Some(f) = list(http, tracking, parent, false)?.into_iter().find(|f| f.path == base)
    {
        files.push(f);
        single_file = true;
    }
    if files.is_empty() {
        return Err(Error::Api {
            url: display_url(&tracking.artifact_url(&root)?),
            why: format!("no artifacts at {location} (a wrong artifact path, or a run that logged none)"),
        });
    }
    Ok(Resolved { name, version, run_id, location, files, single_file })
}

/// The path on the artifact proxy where `source`'s files are, and `source` as an
/// `mlflow-artifacts:` URI. Follows `runs:/` and `models:/m-…` one level.
fn proxy_root(
    http: &Http,
    tracking: &Tracking,
    source: &str,
    run_id: &mut Option<String>,
) -> Result<(String, String), Error> {
    let mut current = source.to_string();
    for _ in 0..3 {
        if let Some(rest) = current.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/P`, or `mlflow-artifacts://host[:port]/P` naming the server.
            let path = match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
                None => rest.trim_start_matches('/'),
            };
            let path = path.trim_end_matches('/');
            check_path(path).map_err(|why| {
                Error::Usage(format!("the artifact location {current:?} is unusable: its path is {why}"))
            })?;
            return Ok((current.clone(), path.to_string()));
        }
        if let Some(rest) = current.strip_prefix("runs:/") {
            let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_id(id) {
                return Err(Error::Usage(format!("{current:?}: not a usable runs:/ URI")));
            }
            let url = tracking.url(&["api", "2.0", "mlflow", "runs", "get"], &[("run_id", id)])?;
            let body = get_json(http, tracking, &url, &format!("run {id}"))?;
            let answer: RunAnswer =
                serde_json::from_slice(&body).map_err(|e| api(&url, format!("not a run answer: {e}")))?;
            let uri = answer
                .run
                .and_then(|r| r.info)
                .and_then(|i| i.artifact_uri)
                .ok_or_else(|| api(&url, "the run has no artifact_uri".into()))?;
            run_id.get_or_insert_with(|| id.to_string());
            current = join_uri(&uri, sub);
            continue;
        }
        if let Some(id) = current.strip_prefix("models:/m-").map(|s| s.trim_end_matches('/'))
            && valid_id(id)
        {
            let model_id = format!("m-{id}");
            let url = tracking.url(&["api", "2.0", "mlflow", "logged-models", &model_id], &[])?;
            let body = get_json(http, tracking, &url, &format!("logged model {model_id}"))?;
            let answer: LoggedModelAnswer = serde_json::from_slice(&body)
                .map_err(|e| api(&url, format!("not a logged model answer: {e}")))?;
            let info = answer
                .model
                .and_then(|m| m.info)
                .ok_or_else(|| api(&url, "the answer has no model info".into()))?;
            if run_id.is_none() {
                *run_id = info.source_run_id.filter(|r| valid_id(r));
            }
            current =
                info.artifact_uri.ok_or_else(|| api(&url, "the logged model has no artifact_uri".into()))?;
            continue;
        }
        break;
    }
    Err(Error::Usage(format!(
        "the artifacts are at {current:?}, which the tracking server does not serve: modelgate reads MLflow artifacts through the server's artifact proxy (mlflow-artifacts:/…, a server started with --serve-artifacts){}",
        match current.split_once("://").map(|(s, _)| s) {
            Some(s @ ("s3" | "gs" | "az" | "wasbs" | "abfss")) =>
                format!("; scan the store directly ({s}://…)"),
            _ => String::new(),
        }
    )))
}

fn join_uri(base: &str, sub: &str) -> String {
    if sub.is_empty() { base.to_string() } else { format!("{}/{sub}", base.trim_end_matches('/')) }
}

/// Lists `root` on the artifact proxy (`recursive`: and every directory below it): every file
/// with its size, sorted by path.
fn list(http: &Http, tracking: &Tracking, root: &str, recursive: bool) -> Result<Vec<File>, Error> {
    let mut files = Vec::new();
    // (path relative to root, depth)
    let mut pending = vec![(String::new(), 0usize)];
    let mut listings = 0usize;
    while let Some((dir, depth)) = pending.pop() {
        listings += 1;
        if listings > MAX_LISTINGS {
            return Err(Error::Api {
                url: display_url(&tracking.base),
                why: format!("more than {MAX_LISTINGS} artifact directories"),
            });
        }
        let proxy_dir = join_path(root, &dir);
        let mut query = Vec::new();
        if !proxy_dir.is_empty() {
            query.push(("path", proxy_dir.as_str()));
        }
        let url = tracking.url(&["api", "2.0", "mlflow-artifacts", "artifacts"], &query)?;
        let body = get_json(http, tracking, &url, &format!("the artifact directory {proxy_dir:?}"))?;
        let entries = parse_listing(&body, &proxy_dir, &dir).map_err(|why| api(&url, why))?;
        for e in entries {
            if e.is_dir {
                if !recursive {
                    continue;
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(api(&url, format!("artifact directories nested deeper than {MAX_DEPTH}")));
                }
                pending.push((e.path, depth + 1));
                continue;
            }
            files.push(File { proxy_path: join_path(root, &e.path), path: e.path, size: e.size });
            if files.len() > MAX_FILES {
                return Err(api(&url, format!("more than {MAX_FILES} artifacts")));
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(Error::Api {
            url: display_url(&tracking.base),
            why: format!("{} is listed twice", w[0].path),
        });
    }
    Ok(files)
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path relative to the listed root (checked by [`check_path`]).
    pub path: String,
    /// A directory (listed in turn) rather than a file.
    pub is_dir: bool,
    /// A file's listed size.
    pub size: Option<u64>,
}

/// Parses the proxy's answer for the directory `proxy_dir` (on the proxy), which is `dir`
/// (relative to the listed root): every entry must be one path component inside it.
pub fn parse_listing(body: &[u8], proxy_dir: &str, dir: &str) -> Result<Vec<Entry>, String> {
    let answer: ListAnswer =
        serde_json::from_slice(body).map_err(|e| format!("not an artifact listing: {e}"))?;
    if answer.files.len() > MAX_FILES {
        return Err(format!("more than {MAX_FILES} artifacts in one directory"));
    }
    let mut out = Vec::with_capacity(answer.files.len());
    for f in answer.files {
        // The proxy lists base names; a full path under the directory is accepted too.
        let name = f.path.strip_prefix(&format!("{proxy_dir}/")).unwrap_or(&f.path);
        if name.contains('/') || name.is_empty() {
            return Err(format!("the listed path {:?} is not one name inside {proxy_dir:?}", f.path));
        }
        let path = join_path(dir, name);
        check_path(&path).map_err(|why| format!("unsafe artifact path {path:?}: {why}"))?;
        let size = match &f.file_size {
            None | Some(serde_json::Value::Null) => None,
            // The protobuf JSON mapping writes an int64 as a string; the proxy a number.
            Some(serde_json::Value::Number(n)) => {
                Some(n.as_u64().ok_or_else(|| format!("{path:?}: file_size is not a byte count"))?)
            }
            Some(serde_json::Value::String(s)) => {
                Some(s.parse().map_err(|_| format!("{path:?}: file_size is not a byte count"))?)
            }
            Some(_) => return Err(format!("{path:?}: file_size is not a byte count")),
        };
        out.push(Entry { path, is_dir: f.is_dir, size });
    }
    Ok(out)
}

fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

fn api(url: &Url, why: String) -> Error {
    Error::Api { url: display_url(url), why }
}

/// GET a JSON answer (bounded); an error status becomes an error that says what to do, with
/// the server's own message (MLflow's `{"error_code", "message"}`) quoted.
fn get_json(http: &Http, tracking: &Tracking, url: &Url, what: &str) -> Result<Vec<u8>, Error> {
    let resp = http.get(url, Want::Whole)?;
    let status = resp.status();
    let mut body = Vec::new();
    resp.take(MAX_API_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Transfer { url: display_url(url), why: format!("reading the answer: {e}") })?;
    if body.len() as u64 > MAX_API_BYTES {
        return Err(api(url, format!("answer larger than {MAX_API_BYTES} bytes")));
    }
    if status.is_success() {
        return Ok(body);
    }
    let said = serde_json::from_slice::<ErrorAnswer>(&body).ok();
    let code = said.as_ref().and_then(|s| s.error_code.clone()).unwrap_or_default();
    let message = said.and_then(|s| s.message).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE)
        .collect::<String>()
        .trim()
        .to_string();
    let quoted = if message.is_empty() { String::new() } else { format!(": {message:?}") };
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => match tracking.auth_source {
            Some(vars) => format!(" — access to {what} denied with the credentials in {vars}{quoted}"),
            None => format!(
                " — {what} needs credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN{quoted}"
            ),
        },
        StatusCode::NOT_FOUND => format!(" — {what} not found{quoted}"),
        _ if code == "RESOURCE_DOES_NOT_EXIST" => format!(" — {what} not found{quoted}"),
        _ => {
            format!(" — {what}{}{quoted}", if code.is_empty() { String::new() } else { format!(" ({code})") })
        }
    };
    Err(Error::Status { url: display_url(url), status: status.as_u16(), hint })
}

/// The client for a tracking server: `settings.endpoint` must be [`Tracking::base`].
pub fn client(settings: Settings, tracking: &Tracking) -> Result<Http, Error> {
    Http::with_authorization(settings, tracking.authorization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_strictly() {
        assert_eq!(
            Reference::parse("models:/clf/3").unwrap(),
            Reference::Model { name: "clf".into(), selector: Selector::Version("3".into()) }
        );
        assert_eq!(
            Reference::parse("models:/my model@champion").unwrap(),
            Reference::Model { name: "my model".into(), selector: Selector::Alias("champion".into()) }
        );
        assert_eq!(
            Reference::parse("runs:/0123abcd/model/").unwrap(),
            Reference::Run { run_id: "0123abcd".into(), path: "model".into() }
        );
        assert_eq!(Reference::parse("runs:/0123abcd").unwrap().key(None), "runs:/0123abcd");
        assert_eq!(Reference::parse("models:/m@a").unwrap().key(Some("7")), "models:/m/7");
        assert_eq!(Reference::parse("models:/m/07").unwrap().key(Some("7")), "models:/m/7");
        for bad in [
            "models:/",
            "models:/clf",
            "models:/clf/",
            "models:/clf/Production",
            "models:/clf/latest",
            "models:/a/b/3",
            "models:/clf@",
            "models:/clf@a b",
            "models://host/clf/1",
            "models:/../1",
            "runs:/",
            "runs:/../x",
            "runs:/abc/../x",
            "runs:/abc/.git/config",
            "runs:/a b/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Reference::is_mlflow("models:/a/1")
                && Reference::is_mlflow("runs:/x")
                && !Reference::is_mlflow("models/a")
        );
    }

    #[test]
    fn listings_are_checked() {
        let ok = parse_listing(
            br#"{"files":[{"path":"MLmodel","is_dir":false,"file_size":5},{"path":"0/r/artifacts/model/sub","is_dir":true},{"path":"big.bin","file_size":"12345678901"}]}"#,
            "0/r/artifacts/model",
            "",
        )
        .unwrap();
        assert_eq!(
            ok,
            vec![
                Entry { path: "MLmodel".into(), is_dir: false, size: Some(5) },
                Entry { path: "sub".into(), is_dir: true, size: None },
                Entry { path: "big.bin".into(), is_dir: false, size: Some(12_345_678_901) },
            ]
        );
        assert_eq!(parse_listing(b"{}", "x", "").unwrap(), vec![]);
        assert_eq!(
            parse_listing(br#"{"files":[{"path":"a.json"}]}"#, "x/d", "d").unwrap()[0].path,
            "d/a.json"
        );
        for bad in [
            r#"{"files":[{"path":".."}]}"#,
            r#"{"files":[{"path":"../../etc/passwd"}]}"#,
            r#"{"files":[{"path":"a/b"}]}"#,
            r#"{"files":[{"path":""}]}"#,
            r#"{"files":[{"path":".git","is_dir":true}]}"#,
            r#"{"files":[{"path":"C:x"}]}"#,
            r#"{"files":[{"path":"a","file_size":-1}]}"#,
            r#"{"files":[{"path":"a","file_size":"lots"}]}"#,
            r#"{"files":[{"path":"a","file_size":[1]}]}"#,
            r#"{"files":"nope"}"#,
            "not json",
        ] {
            assert!(parse_listing(bad.as_bytes(), "x", "").is_err(), "{bad}");
        }
    }

    #[test]
    fn tracking_uris_and_credentials() {
        let t =
            Tracking::new("http://127.0.0.1:5000", Some("u".into()), Some("p".into()), Some("tok".into()))
                .unwrap();
        assert_eq!(t.authorization(), Some("Basic dTpw"), "basic credentials win, as in the MLflow client");
        assert!(!format!("{t:?}").contains("dTpw"));
        let t = Tracking::new("https://mlflow.example/prefix", None, None, Some("tok".into())).unwrap();
        assert_eq!(t.authorization(), Some("Bearer tok"));
        assert_eq!(
            t.artifact_url("0/r1/artifacts/my model/a#b.bin").unwrap().as_str(),
            "https://mlflow.example/prefix/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/my%20model/a%23b.bin"
        );
        assert_eq!(t.api_url(), "https://mlflow.example/prefix/api/2.0/mlflow");
        let u = t
            .url(&["api", "2.0", "mlflow", "model-versions", "get"], &[("name", "a&b"), ("version", "1")])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://mlflow.example/prefix/api/2.0/mlflow/model-versions/get?name=a%26b&version=1"
        );
        for bad in ["http://mlflow.example", "databricks", "file:///tmp/mlruns", "https://u:p@mlflow.example"]
        {
            let e = Tracking::new(bad, None, None, None).unwrap_err().to_string();
            assert!(!e.contains(":p@"), "{e}");
        }
        assert!(Tracking::new("http://127.0.0.1:1", Some("u".into()), None, None).is_err());
    }
}
