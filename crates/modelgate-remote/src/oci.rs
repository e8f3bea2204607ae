//! OCI registries: `oci://registry/repository:tag` and `oci://registry/repository@sha256:…`
//! (`docs/remote.md`, "OCI registries").
//!
//! The registry is read as `docker pull` and `oras pull` read it, over the OCI distribution API:
//!
//! 1. `GET /v2/` without credentials. A `401` carries a `WWW-Authenticate` challenge: `Basic`
//!    (the registry wants the user and password on every request) or `Bearer realm=…,service=…`
//!    (the token flow: `GET {realm}?service=…&scope=repository:{name}:pull`, with the user and
//!    password as Basic credentials when there are any, answers `{"token": …}` or
//!    `{"access_token": …}`, sent as `Authorization: Bearer …` from then on). Credentials come
//!    from `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (`auths.{registry}.auth`,
//!    `username`/`password`, or `identitytoken`), where `docker login` and `oras login` keep them.
//! 2. `GET /v2/{name}/manifests/{reference}` with an `Accept` header naming the manifest and
//!    index types. The bytes are hashed: a manifest asked for by digest must have that digest, one
//!    asked for by tag must have the digest the registry states in `Docker-Content-Digest` (when
//!    it states one); either difference is an error, since nothing it lists could be trusted. An
//!    index (a manifest list) is resolved one level: every manifest it names is read the same way.
//! 3. Every blob the manifests name, the config included, is then a file to fetch from
//!    `GET /v2/{name}/blobs/{digest}` with its size and SHA-256 known in advance: the body is
//!    hashed as it streams into the scanner (`crate::fetch`), and a body that is not what its
//!    descriptor says is a critical finding. The layer's content decides how it is scanned (a raw
//!    GGUF or safetensors layer, a tar, a gzip- or zstd-compressed tar, a JSON config), never
//!    its media type.
//!
//! Manifests are hostile input: their size, the number of layers and manifests, every digest,
//! every size and every file name (a layer's title may become a file under `--download-dir`)
//! are checked before use. Credentials go only to the registry's origin and to the token realm
//! the registry names (as docker does); they are never printed.

use crate::http::{Settings, describe, is_loopback};
use crate::hub::check_path;
use crate::{Error, Url, display_url, is_hex};
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

/// Largest manifest or index read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest token answer read.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Most manifests an index may name.
pub const MAX_MANIFESTS: usize = 64;
/// Most blobs (layers and configs) accepted in one artifact.
pub const MAX_BLOBS: usize = 10_000;

/// OCI image and artifact manifests.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (a list of manifests).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The short-lived OCI 1.1 release-candidate artifact manifest (`blobs` instead of `layers`).
pub const OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The annotation naming a layer's file (ORAS, KitOps, ModelPack).
pub const TITLE: &str = "org.opencontainers.image.title";
/// ModelPack's annotation for a layer's path in the model.
pub const MODEL_FILEPATH: &str = "org.cncf.model.filepath";

/// An `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// The repository name (`library/` added for single-name Docker Hub repositories).
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// `sha256:<hex>`, when given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`.
    pub fn parse(arg: &str) -> Result<Reference, Error> {
        let bad = |why: &str| Error::Usage(format!("{arg}: {why}"));
        let rest =
            arg.strip_prefix("oci://").ok_or_else(|| bad("expected oci://REGISTRY/REPOSITORY[:TAG]"))?;
        if rest.len() > 1024 {
            return Err(bad("reference too long"));
        }
        let (registry, name) = rest.split_once('/').ok_or_else(|| {
            bad("expected oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] (the registry host comes first)")
        })?;
        let host = Url::parse(&format!("https://{registry}/"))
            .map_err(|_| bad("the registry must be HOST or HOST:PORT"))?;
        if registry.contains('@') || host.host_str().is_none() || registry.is_empty() {
            return Err(bad(
                "the registry must be HOST or HOST:PORT (credentials go in ~/.docker/config.json)",
            ));
        }
        let (name, digest) = match name.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (name, None),
        };
        if let Some(d) = digest
            && !d.strip_prefix("sha256:").is_some_and(|h| is_hex(h, &[64]))
        {
            return Err(bad("the digest must be sha256: and 64 lowercase hex digits"));
        }
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if !valid_repository(repository) {
            return Err(bad(
                "the repository must be lowercase path components of letters, digits and single '.', '_', '-' separators",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                "a tag is 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            ));
        }
        let mut repository = repository.to_string();
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        Ok(Reference {
            registry: registry.to_ascii_lowercase(),
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The lockfile's name for the artifact: `oci://registry/repository` (no tag or digest).
    pub fn key(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }

    /// The registry's API base: `https://host[:port]` (`http://` for a loopback registry, as
    /// `docker` treats `localhost` registries as insecure ones). Docker Hub's API host is
    /// `registry-1.docker.io`.
    pub fn base_url(&self) -> Url {
        let host = if self.registry == "docker.io" { "registry-1.docker.io" } else { &self.registry };
        let https = Url::parse(&format!("https://{host}/")).unwrap_or_else(|_| unreachable_url());
        if is_loopback(&https) { Url::parse(&format!("http://{host}/")).unwrap_or(https) } else { https }
    }

    /// What to ask the registry for: the digest when given, else the tag, else `latest`.
    pub fn reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

fn unreachable_url() -> Url {
    // `Reference::parse` checked that `https://{registry}/` parses.
    Url::parse("https://invalid.invalid/").unwrap_or_else(|_| std::process::abort())
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
                && !part.contains("..")
        })
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A user and password (or identity token) for a registry. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (`<token>` for an identity token).
    pub user: String,
    /// The password or token.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("secret", &"<set>").finish()
    }
}

impl Credentials {
    fn basic(&self) -> String {
        format!("Basic {}", base64_encode(format!("{}:{}", self.user, self.secret).as_bytes()))
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The docker configuration file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The credentials `docker login` stored for `registry`, if any. Credential helpers
/// (`credsStore`, `credHelpers`) are programs, and modelgate runs none: such entries are ignored.
pub fn docker_credentials(config: &[u8], registry: &str) -> Result<Option<Credentials>, String> {
    let config: DockerConfig =
        serde_json::from_slice(config).map_err(|e| format!("not a docker config.json: {e}"))?;
    let mut names = vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        names.extend(["https://index.docker.io/v1/".to_string(), "index.docker.io".to_string()]);
    }
    let Some(entry) = config.auths.iter().find_map(|(k, v)| {
        names.iter().any(|n| k.trim_end_matches('/') == n.trim_end_matches('/')).then_some(v)
    }) else {
        return Ok(None);
    };
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials { user: "<token>".into(), secret: token.clone() }));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials { user: u.clone(), secret: p.clone() }));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64_decode(auth.trim()).ok_or("an `auth` entry is not base64")?;
        let text = String::from_utf8(decoded).map_err(|_| "an `auth` entry is not UTF-8")?;
        let (u, p) = text.split_once(':').ok_or("an `auth` entry is not user:password")?;
        return Ok(Some(Credentials { user: u.to_string(), secret: p.to_string() }));
    }
    Ok(None)
}

/// A registry connection: the API base, and the `Authorization` value to send to it.
pub struct Registry {
    /// The reference being read.
    pub reference: Reference,
    /// The API base URL.
    pub base: Url,
    client: Client,
    authorization: Option<HeaderValue>,
    retries: u32,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base.as_str())
            .field("authorization", &self.authorization.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A blob to fetch: a layer or a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The file's path in the artifact: its title annotation, else `blobs/sha256/<hex>`; inside
    /// an index, prefixed with the manifest's `sha256-<hex>/`.
    pub path: String,
    /// SHA-256 (lowercase hex).
    pub sha256: String,
    /// Size in bytes, from the descriptor.
    pub size: u64,
    /// The descriptor's media type (reported, never used to choose a parser).
    pub media_type: String,
}

/// An artifact resolved to its blobs.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The digest of the manifest (or index) the reference resolved to, `sha256:<hex>`.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// `artifactType`, or the config's media type (what kind of artifact: a ModelPack model, a
    /// KitOps ModelKit, an image).
    pub artifact_type: Option<String>,
    /// Every blob, sorted by path.
    pub blobs: Vec<Blob>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    blobs: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Registry {
    /// Connects to the registry: the challenge on `/v2/`, then Basic credentials or a bearer
    /// token for pulling `reference.repository`.
    pub fn connect(
        reference: Reference,
        settings: &Settings,
        creds: Option<&Credentials>,
    ) -> Result<Registry, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.read_timeout)
            .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")))
            .referer(false)
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up the HTTP client: {e}")))?;
        let base = reference.base_url();
        let mut registry =
            Registry { reference, base, client, authorization: None, retries: settings.retries };
        let ping = registry.join(&["v2", ""])?;
        let resp = registry.send(&ping, None, false)?;
        match resp.status().as_u16() {
            200..=299 => return Ok(registry),
            401 => {}
            s => {
                return Err(Error::Status {
                    url: display_url(&ping),
                    status: s,
                    hint: " — not an OCI registry?".into(),
                });
            }
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::Api {
                url: display_url(&ping),
                why: "401 without a WWW-Authenticate challenge".into(),
            })?;
        let (scheme, params) = parse_challenge(&challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            let creds = creds.ok_or_else(|| Error::Status {
                url: display_url(&ping),
                status: 401,
                hint: format!(
                    " — {} needs credentials: run `docker login {}`",
                    registry.reference.registry, registry.reference.registry
                ),
            })?;
            registry.authorization = Some(sensitive(&creds.basic())?);
            return Ok(registry);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Api {
                url: display_url(&ping),
                why: format!("unsupported authentication scheme {scheme:?}"),
            });
        }
        let realm = params.get("realm").ok_or_else(|| Error::Api {
            url: display_url(&ping),
            why: "a Bearer challenge without a realm".into(),
        })?;
        let mut token_url = Url::parse(realm).map_err(|_| Error::Api {
            url: display_url(&ping),
            why: "the token realm is not a URL".into(),
        })?;
        if !(token_url.scheme() == "https" || (token_url.scheme() == "http" && is_loopback(&token_url))) {
            return Err(Error::Api {
                url: display_url(&ping),
                why: format!(
                    "refusing the token realm {} (only https://, or http:// on a loopback host)",
                    display_url(&token_url)
                ),
            });
        }
        {
            let mut q = token_url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &format!("repository:{}:pull", registry.reference.repository));
        }
        let basic = creds.map(|c| sensitive(&c.basic())).transpose()?;
        let resp = registry.send(&token_url, basic.as_ref(), false)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let hint = match (status, creds.is_some()) {
                (401 | 403, true) => " — the token service refused the credentials in the docker config (wrong or expired: run `docker login` again)".to_string(),
                (401 | 403, false) => format!(" — {} needs credentials: run `docker login {}`", registry.reference.registry, registry.reference.registry),
                _ => String::new(),
            };
            return Err(Error::Status { url: display_url(&token_url), status, hint });
        }
        let body = read_bounded(resp, MAX_TOKEN_BYTES, &token_url)?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body).map_err(|e| Error::Api {
            url: display_url(&token_url),
            why: format!("not a token answer: {e}"),
        })?;
        let token = token.token.or(token.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::Api { url: display_url(&token_url), why: "the token answer holds no token".into() }
        })?;
        registry.authorization = Some(sensitive(&format!("Bearer {token}"))?);
        Ok(registry)
    }

    /// The `Authorization` value for the registry's origin, if one is needed (for
    /// [`crate::http::Http::with_authorization`]).
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The URL of a blob.
    pub fn blob_url(&self, sha256: &str) -> Result<Url, Error> {
        let mut parts: Vec<&str> = vec!["v2"];
        parts.extend(self.reference.repository.split('/'));
        let digest = format!("sha256:{sha256}");
        parts.extend(["blobs", &digest]);
        self.join(&parts)
    }

    fn manifest_url(&self, reference: &str) -> Result<Url, Error> {
        let mut parts: Vec<&str> = vec!["v2"];
        parts.extend(self.reference.repository.split('/'));
        parts.extend(["manifests", reference]);
        self.join(&parts)
    }

    fn join(&self, parts: &[&str]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Usage(format!("{} cannot take a path", self.base)))?
            .pop_if_empty()
            .extend(parts);
        Ok(url)
    }

    /// One GET, retried after a 429, a 5xx or a failed connection. Redirects are not followed
    /// (registries answer manifests and tokens themselves).
    fn send(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
        manifest: bool,
    ) -> Result<reqwest::blocking::Response, Error> {
        let mut attempt = 0;
        loop {
            let mut req = self.client.get(url.clone());
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if manifest {
                req = req.header(
                    ACCEPT,
                    [OCI_MANIFEST, OCI_INDEX, OCI_ARTIFACT, DOCKER_MANIFEST, DOCKER_LIST].join(", "),
                );
            }
            let outcome = req.send();
            let retry = match &outcome {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(e) => e.is_connect() || e.is_timeout(),
            };
            if !retry || attempt >= self.retries {
                return outcome.map_err(|e| Error::Transfer { url: display_url(url), why: describe(&e) });
            }
            std::thread::sleep(std::time::Duration::from_millis(250u64 << attempt.min(5)));
            attempt += 1;
        }
    }

    /// Reads one manifest or index by tag or digest, checking its digest.
    fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, String), Error> {
        let url = self.manifest_url(reference)?;
        let shown = display_url(&url);
        let resp = self.send(&url, self.authorization.as_ref(), true)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let what = format!("{}:{reference}", self.reference.key());
            let hint = match status {
                401 | 403 if self.authorization.is_some() => format!(
                    " — access to {what} denied: the credentials in the docker config do not allow pulling it"
                ),
                401 | 403 => {
                    format!(" — {what} needs credentials: run `docker login {}`", self.reference.registry)
                }
                404 => format!(" — {what} not found (no such repository, tag or digest)"),
                300..=399 => " — the registry redirected a manifest request (not followed)".into(),
                _ => String::new(),
            };
            return Err(Error::Status { url: shown, status, hint });
        }
        let content_type =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let stated =
            resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = read_bounded(resp, MAX_MANIFEST_BYTES, &url)?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&body)));
        let expected = if reference.starts_with("sha256:") { Some(reference.to_string()) } else { stated };
        if let Some(e) = expected
            && e != digest
        {
            return Err(Error::Api {
                url: shown,
                why: format!(
                    "the manifest's digest is {digest}, but it was asked for or announced as {e}: the registry serves other bytes than it names, nothing it lists is trusted"
                ),
            });
        }
        Ok((body, digest, content_type))
    }

    /// Resolves the reference to its manifest digest and every blob to fetch.
    pub fn resolve(&self) -> Result<Resolved, Error> {
        let (body, digest, content_type) = self.manifest(self.reference.reference())?;
        let url = display_url(&self.manifest_url(self.reference.reference())?);
        let api = |why: String| Error::Api { url: url.clone(), why };
        let top = parse_manifest(&body).map_err(api)?;
        let media_type = top
            .media_type
            .clone()
            .unwrap_or_else(|| content_type.split(';').next().unwrap_or("").trim().to_string());
        let mut blobs = Vec::new();
        let artifact_type;
        if let Some(children) = &top.manifests {
            if children.len() > MAX_MANIFESTS {
                return Err(api(format!(
                    "the index names {} manifests; at most {MAX_MANIFESTS} are read",
                    children.len()
                )));
            }
            artifact_type = top.artifact_type.clone();
            for child in children {
                let hexd = check_descriptor(child).map_err(api)?;
                let (cbody, _, _) = self.manifest(&child.digest)?;
                let m = parse_manifest(&cbody).map_err(api)?;
                if m.manifests.is_some() {
                    return Err(api(format!("{}: an index inside an index is not followed", child.digest)));
                }
                collect_blobs(&m, &format!("sha256-{hexd}/"), &mut blobs).map_err(api)?;
            }
        } else {
            artifact_type =
                top.artifact_type.clone().or_else(|| top.config.as_ref().map(|c| c.media_type.clone()));
            collect_blobs(&top, "", &mut blobs).map_err(api)?;
        }
        blobs.sort_by(|a, b| a.path.cmp(&b.path));
        blobs.dedup();
        if let Some(w) = blobs.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(api(format!("two different blobs are both named {}", w[0].path)));
        }
        if blobs.len() > MAX_BLOBS {
            return Err(api(format!("{} blobs; at most {MAX_BLOBS} are accepted", blobs.len())));
        }
        Ok(Resolved { digest, media_type, artifact_type, blobs })
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::Usage("a registry credential contains characters not allowed in a header".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn read_bounded(resp: reqwest::blocking::Response, max: u64, url: &Url) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    resp.take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Transfer { url: display_url(url), why: format!("reading the answer: {e}") })?;
    if body.len() as u64 > max {
        return Err(Error::Api { url: display_url(url), why: format!("answer larger than {max} bytes") });
    }
    Ok(body)
}

fn parse_manifest(body: &[u8]) -> Result<Manifest, String> {
    let m: Manifest =
        serde_json::from_slice(body).map_err(|e| format!("not an OCI manifest or index: {e}"))?;
    if m.schema_version != Some(2) {
        return Err(format!(
            "schemaVersion {:?}: only schema 2 manifests (OCI, Docker v2) are read",
            m.schema_version
        ));
    }
    if let Some(t) = &m.media_type
        && ![OCI_MANIFEST, OCI_INDEX, OCI_ARTIFACT, DOCKER_MANIFEST, DOCKER_LIST].contains(&t.as_str())
    {
        return Err(format!("unknown manifest media type {t:?}"));
    }
    if m.manifests.is_some() && (m.layers.is_some() || m.blobs.is_some()) {
        return Err("a document that is both an index and a manifest".into());
    }
    Ok(m)
}

/// The descriptor's digest as lowercase hex, after checking it and the size.
fn check_descriptor(d: &Descriptor) -> Result<String, String> {
    let hexd = d.digest.strip_prefix("sha256:").filter(|h| is_hex(h, &[64])).ok_or_else(|| {
        format!("digest {:?}: only sha256 digests of 64 lowercase hex digits are accepted", d.digest)
    })?;
    if d.size < 0 {
        return Err(format!("{}: negative size {}", d.digest, d.size));
    }
    Ok(hexd.to_string())
}

fn collect_blobs(m: &Manifest, prefix: &str, out: &mut Vec<Blob>) -> Result<(), String> {
    let layers = m.layers.iter().chain(m.blobs.iter()).flatten();
    let count = m.layers.as_ref().map_or(0, Vec::len) + m.blobs.as_ref().map_or(0, Vec::len);
    if count > MAX_BLOBS || out.len() + count > MAX_BLOBS {
        return Err(format!("more than {MAX_BLOBS} layers"));
    }
    for d in m.config.iter().chain(layers) {
        let hexd = check_descriptor(d)?;
        let title = d.annotations.get(MODEL_FILEPATH).or_else(|| d.annotations.get(TITLE));
        let name = match title {
            Some(t) => {
                check_path(t).map_err(|why| {
                    format!("{}: unsafe file name {t:?} in its annotations: {why}", d.digest)
                })?;
                t.clone()
            }
            None => format!("blobs/sha256/{hexd}"),
        };
        out.push(Blob {
            path: format!("{prefix}{name}"),
            sha256: hexd,
            size: d.size as u64,
            media_type: d.media_type.clone(),
        });
    }
    Ok(())
}

/// `WWW-Authenticate: Scheme k="v", k2=v2` → the scheme and its parameters.
pub fn parse_challenge(h: &str) -> (String, BTreeMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (for Basic credentials).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_strictly() {
        let r = Reference::parse("oci://127.0.0.1:5000/models/tiny:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "models/tiny");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.base_url().as_str(), "http://127.0.0.1:5000/");
        assert_eq!(r.key(), "oci://127.0.0.1:5000/models/tiny");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("oci://ghcr.io/org/m@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.base_url().as_str(), "https://ghcr.io/");
        let r = Reference::parse("oci://docker.io/ubuntu").unwrap();
        assert_eq!((r.repository.as_str(), r.reference()), ("library/ubuntu", "latest"));
        assert_eq!(r.base_url().as_str(), "https://registry-1.docker.io/");
        for bad in [
            "oci://host",
            "oci://host/",
            "oci://host/Upper",
            "oci://host/a//b",
            "oci://host/a/../b",
            "oci://host/a:",
            "oci://host/a:-x",
            "oci://host/a@sha256:abc",
            "oci://host/a@md5:00",
            "oci://user:pw@host/a",
            "oci://host/a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (s, p) = parse_challenge("Basic realm=test");
        assert_eq!((s.as_str(), p["realm"].as_str()), ("Basic", "test"));
    }

    #[test]
    fn docker_config_credentials() {
        let auth = base64_encode(b"alice:pa:ss");
        let cfg = format!(
            r#"{{"auths": {{"https://reg.example": {{"auth": "{auth}"}}, "other": {{"identitytoken": "tok"}}}}, "credsStore": "desktop"}}"#
        );
        let c = docker_credentials(cfg.as_bytes(), "reg.example").unwrap().unwrap();
        assert_eq!((c.user.as_str(), c.secret.as_str()), ("alice", "pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert_eq!(docker_credentials(cfg.as_bytes(), "other").unwrap().unwrap().secret, "tok");
        assert!(docker_credentials(cfg.as_bytes(), "none").unwrap().is_none());
        assert_eq!(base64_decode(&base64_encode(b"ab")).unwrap(), b"ab");
        assert_eq!(base64_encode(b"user:s3cret"), "dXNlcjpzM2NyZXQ=");
    }

    #[test]
    fn manifests_name_their_blobs_safely() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.cncf.model.manifest.v1+json",
               "config":{{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"{}","size":2}},
               "layers":[{{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"{}","size":10,
                           "annotations":{{"org.cncf.model.filepath":"model.gguf"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let parsed = parse_manifest(m.as_bytes()).unwrap();
        let mut blobs = Vec::new();
        collect_blobs(&parsed, "", &mut blobs).unwrap();
        assert_eq!(blobs[0].path, format!("blobs/sha256/{}", "a".repeat(64)));
        assert_eq!(blobs[1].path, "model.gguf");
        for bad in ["../x", "/etc/passwd", "a\\\\b"] {
            let evil = m.replace("model.gguf", bad);
            let parsed = parse_manifest(evil.as_bytes()).unwrap();
            assert!(collect_blobs(&parsed, "", &mut Vec::new()).is_err(), "{bad}");
        }
        assert!(
            parse_manifest(m.replace("\"size\":10", "\"size\":-1").as_bytes()).is_ok_and(|p| collect_blobs(
                &p,
                "",
                &mut Vec::new()
            )
            .is_err())
        );
        assert!(parse_manifest(br#"{"schemaVersion":1}"#).is_err());
        assert!(
            parse_manifest(m.replace(&d('b'), "sha512:00").as_bytes()).is_ok_and(|p| collect_blobs(
                &p,
                "",
                &mut Vec::new()
            )
            .is_err())
        );
    }
}
