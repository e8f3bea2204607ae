//! Cloud object stores: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
//! (`docs/remote.md`, "Object stores").
//!
//! The `object_store` crate does what is particular to each cloud: it reads the cloud's
//! configuration and credential chain from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), lists
//! the objects under the prefix, and signs requests. Every byte of an object still comes through
//! our own HTTP path ([`crate::fetch`]) — streamed into the scanner, hashed, range reads checked
//! against the body, timeouts, retries, redirects checked — because each object is fetched from a
//! **presigned URL**: the signature (and, for temporary credentials, the session token) is in its
//! query, which is never shown, and no secret travels in a header, so nothing follows a redirect.
//!
//! For S3 each object is first asked for with `HEAD` and `x-amz-checksum-mode: ENABLED` (a signed
//! header): the answer gives its version id (when the bucket keeps versions), its ETag, its size
//! and, when it was uploaded with a SHA-256 checksum, `x-amz-checksum-sha256`. That checksum is
//! then held against the body like an LFS object id (MG901 on a mismatch), and the download URL
//! names the version (`versionId`, signed), so the object read is the one listed even if the key
//! is overwritten meanwhile. A composite checksum (a multipart upload's checksum of part
//! checksums, `…-N`) is not a digest of the object and is not compared.
//!
//! For GCS a metadata request per object gives its generation, which the download URL names
//! (`generation`, signed). Azure SAS URLs cannot name a version.
//!
//! The listing's identity is the SHA-256 of its sorted lines `path \t version \t etag \t size \t
//! sha256`: any change to an object's version, ETag or stated digest changes it.
//!
//! Plain `http://` is allowed only to a loopback endpoint (a local MinIO, Azurite, a test
//! server): `allow_http` is set by modelgate from the endpoint, never taken from the environment.

use crate::http::{Settings, describe, is_loopback};
use crate::hub::check_path;
use crate::oci::base64_decode;
use crate::{Error, Url, display_url};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as StorePath;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `HEAD` requests in flight at once.
const HEAD_WORKERS: usize = 8;
/// Most objects accepted under one prefix.
pub const MAX_OBJECTS: usize = 100_000;
/// Longest bucket or container name, and prefix.
const MAX_BUCKET: usize = 222;
const MAX_PREFIX: usize = 1024;

/// Which cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Amazon S3, or an S3-compatible store (`AWS_ENDPOINT_URL`: MinIO, Ceph, R2).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

impl Cloud {
    /// The URL scheme: `s3`, `gs`, `az`.
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }
}

/// An object-store source: a bucket (or container) and a prefix in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The cloud.
    pub cloud: Cloud,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The prefix, without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl Location {
    /// Parses `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]` or `az://CONTAINER[/PREFIX]`.
    pub fn parse(arg: &str) -> Result<Location, Error> {
        // User information in the URL would be a credential: never echoed.
        let authority = arg.split_once("://").map_or(arg, |(_, r)| r.split('/').next().unwrap_or(r));
        let shown = if authority.contains('@') {
            format!("{}://…", arg.split("://").next().unwrap_or(""))
        } else {
            arg.to_string()
        };
        let bad = |why: &str| Error::Usage(format!("{shown}: {why}"));
        let (scheme, rest) = arg.split_once("://").ok_or_else(|| bad("expected s3://BUCKET/PREFIX"))?;
        let cloud = match scheme.to_ascii_lowercase().as_str() {
            "s3" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "az" => Cloud::Azure,
            _ => return Err(bad("expected s3://, gs:// or az://")),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            return Err(bad(
                "the bucket (container) must be 1 to 222 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit (credentials go in the environment, never in the URL)",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.len() > MAX_PREFIX {
            return Err(bad("prefix too long"));
        }
        if !prefix.is_empty() {
            check_path(prefix).map_err(|why| bad(&format!("unusable prefix: {why}")))?;
        }
        Ok(Location { cloud, bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    /// The lockfile's name for it: `s3://bucket/prefix` (or `s3://bucket`).
    pub fn key(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("{}://{}", self.cloud.scheme(), self.bucket),
            p => format!("{}://{}/{p}", self.cloud.scheme(), self.bucket),
        }
    }

    /// How errors name the store (the command line already names the source).
    fn shown(&self) -> String {
        format!("{} object store", self.cloud.scheme())
    }

    /// A short name: the prefix's last component, else the bucket.
    pub fn name(&self) -> &str {
        self.prefix.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(&self.bucket)
    }
}

fn valid_bucket(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= MAX_BUCKET
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

/// One object to fetch.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its path under the prefix (`/`-separated, checked like a hub path); for a prefix that names
    /// one object, its last component.
    pub path: String,
    /// Size in bytes, as the store states it.
    pub size: u64,
    /// The ETag, as the store states it (quotes removed).
    pub etag: Option<String>,
    /// The version id (S3 `x-amz-version-id`, GCS generation), when the store keeps versions.
    pub version: Option<String>,
    /// The SHA-256 the store keeps for the object (S3 `x-amz-checksum-sha256`), lowercase hex.
    pub sha256: Option<String>,
    /// The presigned URL to download it from (its query carries the signature: never shown).
    pub url: Url,
}

/// The objects under a prefix.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The SHA-256 (lowercase hex) of the sorted listing: paths, versions, ETags, sizes, digests.
    pub identity: String,
    /// Every object, sorted by path.
    pub objects: Vec<Object>,
}

/// How long a presigned URL stays valid: the per-file download deadline plus an hour, at least 12
/// hours (files wait their turn in the download pool), at most the 7 days SigV4 allows.
fn validity(settings: &Settings) -> Duration {
    (settings.download_timeout + Duration::from_secs(3600))
        .max(Duration::from_secs(12 * 3600))
        .min(Duration::from_secs(7 * 24 * 3600))
}

/// Whether plain HTTP may be used: only to a loopback endpoint.
fn http_allowed(endpoint: Option<&str>, what: &str) -> Result<bool, Error> {
    let Some(e) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else { return Ok(false) };
    let url = Url::parse(e).map_err(|err| Error::Usage(format!("{what} {e:?} is not a URL: {err}")))?;
    match url.scheme() {
        "https" => Ok(false),
        "http" if is_loopback(&url) => Ok(true),
        "http" => Err(Error::Usage(format!(
            "{what} {}: plain http:// is only accepted for loopback hosts; use https://",
            display_url(&url)
        ))),
        s => Err(Error::Usage(format!("{what}: unsupported scheme {s:?}"))),
    }
}

/// Anonymous access cannot presign downloads (and signing would then look for credentials in the
/// instance metadata service): refused up front.
fn refuse_anonymous(value: Option<String>, var: &str) -> Result<(), Error> {
    if value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")) {
        return Err(Error::Usage(format!(
            "{var}: anonymous access to public buckets is not supported yet (downloads use presigned URLs); give credentials"
        )));
    }
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

enum Store {
    S3(AmazonS3),
    Gcs(GoogleCloudStorage),
    Azure(MicrosoftAzure),
}

impl Store {
    fn open(loc: &Location, settings: &Settings) -> Result<Store, Error> {
        let config = |e: object_store::Error| {
            Error::Usage(format!(
                "cannot set up the {} client: {}",
                loc.cloud.scheme(),
                one_line(&full_error(&e))
            ))
        };
        let retry = RetryConfig {
            max_retries: settings.retries as usize,
            retry_timeout: Duration::from_secs(180),
            ..RetryConfig::default()
        };
        let connect = secs(settings.connect_timeout);
        let timeout = secs(settings.read_timeout);
        Ok(match loc.cloud {
            Cloud::S3 => {
                let b = AmazonS3Builder::from_env().with_bucket_name(&loc.bucket);
                refuse_anonymous(
                    b.get_config_value(&AmazonS3ConfigKey::SkipSignature),
                    "AWS_SKIP_SIGNATURE",
                )?;
                let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
                let http = http_allowed(endpoint.as_deref(), "AWS_ENDPOINT_URL")?;
                let b = b
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp), http.to_string())
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), &connect)
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), &timeout)
                    .with_retry(retry);
                Store::S3(b.build().map_err(config)?)
            }
            Cloud::Gcs => {
                let b = GoogleCloudStorageBuilder::from_env().with_bucket_name(&loc.bucket);
                refuse_anonymous(
                    b.get_config_value(&GoogleConfigKey::SkipSignature),
                    "GOOGLE_SKIP_SIGNATURE",
                )?;
                let endpoint = b.get_config_value(&GoogleConfigKey::BaseUrl);
                let http = http_allowed(endpoint.as_deref(), "GOOGLE_BASE_URL")?;
                let b = b
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), http.to_string())
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout), &connect)
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), &timeout)
                    .with_retry(retry);
                Store::Gcs(b.build().map_err(config)?)
            }
            Cloud::Azure => {
                let b = MicrosoftAzureBuilder::from_env().with_container_name(&loc.bucket);
                refuse_anonymous(b.get_config_value(&AzureConfigKey::SkipSignature), "AZURE_SKIP_SIGNATURE")?;
                let emulator = b
                    .get_config_value(&AzureConfigKey::UseEmulator)
                    .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
                let endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
                let mut http = http_allowed(endpoint.as_deref(), "AZURE_STORAGE_ENDPOINT")?;
                if emulator {
                    // The emulator (Azurite) is reached over plain HTTP, so it must be on loopback.
                    let url = std::env::var("AZURITE_BLOB_STORAGE_URL")
                        .unwrap_or_else(|_| "http://127.0.0.1:10000".into());
                    http |= http_allowed(Some(&url), "AZURITE_BLOB_STORAGE_URL")?;
                }
                let b = b
                    .with_config(AzureConfigKey::Client(ClientConfigKey::AllowHttp), http.to_string())
                    .with_config(AzureConfigKey::Client(ClientConfigKey::ConnectTimeout), &connect)
                    .with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), &timeout)
                    .with_retry(retry);
                Store::Azure(b.build().map_err(config)?)
            }
        })
    }

    fn store(&self) -> &dyn ObjectStore {
        match self {
            Store::S3(s) => s,
            Store::Gcs(s) => s,
            Store::Azure(s) => s,
        }
    }

    /// A presigned URL for `method` on `path`, naming `version` when there is one and the store
    /// can sign it, and binding `headers`.
    async fn sign(
        &self,
        method: Method,
        path: &StorePath,
        version: Option<&str>,
        headers: &[(&'static str, &'static str)],
        expires: Duration,
    ) -> object_store::Result<Url> {
        let mut opts = SignedUrlOptions::default();
        for (k, v) in headers {
            opts = opts.with_signed_header(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        match self {
            Store::S3(s) => {
                if let Some(v) = version {
                    opts = opts.with_query([("versionId", v)]);
                }
                s.signed_url_opts(method, path, expires, &opts).await
            }
            Store::Gcs(s) => {
                if let Some(v) = version {
                    opts = opts.with_query([("generation", v)]);
                }
                s.signed_url_opts(method, path, expires, &opts).await
            }
            // A SAS signs a fixed set of fields: no version, no extra headers.
            Store::Azure(s) => s.signed_url(method, path, expires).await,
        }
    }
}

/// A failed store call, as a gate error with a hint on what to do (never a credential).
fn store_error(loc: &Location, what: &str, e: &object_store::Error) -> Error {
    let vars = match loc.cloud {
        Cloud::S3 => {
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the instance, container or web-identity credentials)"
        }
        Cloud::Gcs => "GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_SERVICE_ACCOUNT",
        Cloud::Azure => "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, a SAS or a client secret",
    };
    let text = one_line(&full_error(e));
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "status code: 401",
        "status code: 403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    ]
    .iter()
    .any(|m| text.contains(m));
    let why = if denied {
        format!(
            "{what}: access denied — the credentials from {vars} are missing, wrong, expired or not allowed to read {}",
            loc.key()
        )
    } else if matches!(e, object_store::Error::NotFound { .. })
        || ["NoSuchBucket", "ContainerNotFound"].iter().any(|m| text.contains(m))
    {
        format!("{what}: not found (no such bucket or container: {})", loc.bucket)
    } else {
        format!("{what}: {text}")
    };
    Error::Transfer { url: loc.shown(), why }
}

/// An error with its causes.
fn full_error(e: &object_store::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !why.contains(&more) {
            why.push_str(": ");
            why.push_str(&more);
        }
        source = s.source();
    }
    why
}

fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// What a `HEAD` of an S3 object says.
#[derive(Debug, Default)]
struct Head {
    size: Option<u64>,
    etag: Option<String>,
    version: Option<String>,
    sha256: Option<String>,
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// A client for the location's bucket, configured as for listing (environment, credentials,
/// plain HTTP only to loopback): for modelgate's own objects, such as the verdict cache
/// (`docs/scale.md`). Paths given to it are full keys (the location's prefix is not applied).
pub fn open(loc: &Location, settings: &Settings) -> Result<std::sync::Arc<dyn ObjectStore>, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(match Store::open(loc, settings)? {
        Store::S3(s) => std::sync::Arc::new(s),
        Store::Gcs(s) => std::sync::Arc::new(s),
        Store::Azure(s) => std::sync::Arc::new(s),
    })
}

/// Lists the objects under the location's prefix (or the one object it names), with what the
/// store states about each, and presigns a download URL for each.
pub fn list(loc: &Location, settings: &Settings) -> Result<Listing, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the object-store runtime: {e}")))?;
    let store = Store::open(loc, settings)?;
    let expires = validity(settings);
    let prefix = (!loc.prefix.is_empty()).then(|| StorePath::from(loc.prefix.as_str()));

    // 1. The listing (and, when it is empty, the prefix as one object's key).
    let metas: Vec<ObjectMeta> = runtime.block_on(async {
        let mut stream = store.store().list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(m) = stream.next().await {
            let m = m.map_err(|e| store_error(loc, "listing", &e))?;
            out.push(m);
            if out.len() > MAX_OBJECTS {
                return Err(Error::Api {
                    url: loc.shown(),
                    why: format!("more than {MAX_OBJECTS} objects under the prefix"),
                });
            }
        }
        if out.is_empty()
            && let Some(p) = &prefix
        {
            match store.store().head(p).await {
                Ok(m) => out.push(m),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(loc, "reading the object", &e)),
            }
        }
        Ok(out)
    })?;
    if metas.is_empty() {
        return Err(Error::Api { url: loc.shown(), why: "no objects under this prefix".into() });
    }

    // 2. Each object's path under the prefix, checked.
    let mut entries = Vec::with_capacity(metas.len());
    for m in metas {
        let key = m.location.as_ref().to_string();
        let rel = match key.strip_prefix(&format!("{}/", loc.prefix)) {
            Some(r) if !loc.prefix.is_empty() => r.to_string(),
            _ if loc.prefix.is_empty() => key.clone(),
            // The prefix names the object itself.
            _ => key.rsplit('/').next().unwrap_or(&key).to_string(),
        };
        check_path(&rel).map_err(|why| Error::Api {
            url: loc.shown(),
            why: format!("unsafe object key {key:?}: {why}"),
        })?;
        entries.push((rel, m));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    // 3. S3: what HEAD says about each object (version, ETag, checksum).
    let heads: Vec<Head> = match &store {
        Store::S3(_) => {
            let urls: Vec<Url> = runtime.block_on(async {
                let mut urls = Vec::with_capacity(entries.len());
                for (_, m) in &entries {
                    let url = store
                        .sign(
                            Method::HEAD,
                            &m.location,
                            None,
                            &[("x-amz-checksum-mode", "ENABLED")],
                            Duration::from_secs(3600),
                        )
                        .await
                        .map_err(|e| store_error(loc, "signing a request", &e))?;
                    urls.push(url);
                }
                Ok::<_, Error>(urls)
            })?;
            let client = head_client(settings)?;
            // A few at a time: one round trip per object adds up under a large prefix.
            let next = AtomicUsize::new(0);
            let slots: Vec<Mutex<Option<Result<Head, Error>>>> =
                urls.iter().map(|_| Mutex::new(None)).collect();
            std::thread::scope(|scope| {
                for _ in 0..HEAD_WORKERS.min(urls.len()) {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(url) = urls.get(i) else { break };
                            let result = head(&client, url, settings, loc, &entries[i].0);
                            let failed = result.is_err();
                            if let Ok(mut slot) = slots[i].lock() {
                                *slot = Some(result);
                            }
                            if failed {
                                // Stop handing out work: the listing is unusable anyway.
                                next.store(urls.len(), Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            let mut heads = Vec::with_capacity(urls.len());
            for slot in slots {
                match slot.into_inner().ok().flatten() {
                    Some(Ok(h)) => heads.push(h),
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
            }
            if heads.len() != urls.len() {
                return Err(Error::Api { url: loc.shown(), why: "an object's HEAD did not complete".into() });
            }
            heads
        }
        // GCS lists no generation: a HEAD (object metadata) gives it, to download that one.
        Store::Gcs(_) => runtime.block_on(async {
            let mut heads = Vec::with_capacity(entries.len());
            for (_, m) in &entries {
                let meta = store
                    .store()
                    .head(&m.location)
                    .await
                    .map_err(|e| store_error(loc, "reading an object's metadata", &e))?;
                heads.push(Head {
                    size: Some(meta.size),
                    etag: meta.e_tag,
                    version: meta.version,
                    sha256: None,
                });
            }
            Ok::<_, Error>(heads)
        })?,
        Store::Azure(_) => entries.iter().map(|_| Head::default()).collect(),
    };

    // 4. The download URLs, by version where there is one.
    let mut objects = Vec::with_capacity(entries.len());
    let mut identity = Sha256::new();
    for ((rel, m), h) in entries.into_iter().zip(heads) {
        let version = h.version.or(m.version).filter(|v| !v.is_empty() && v != "null");
        let etag = h.etag.or(m.e_tag).map(|e| unquote(&e));
        let size = h.size.unwrap_or(m.size);
        let url = runtime
            .block_on(store.sign(Method::GET, &m.location, version.as_deref(), &[], expires))
            .map_err(|e| store_error(loc, "signing a download", &e))?;
        if !(url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url))) {
            return Err(Error::Usage(format!(
                "{}: the store's endpoint {} is plain http:// and not a loopback host",
                loc.key(),
                display_url(&url)
            )));
        }
        identity.update(
            format!(
                "{rel}\t{}\t{}\t{size}\t{}\n",
                version.as_deref().unwrap_or(""),
                etag.as_deref().unwrap_or(""),
                h.sha256.as_deref().unwrap_or("")
            )
            .as_bytes(),
        );
        objects.push(Object { path: rel, size, etag, version, sha256: h.sha256, url });
    }
    let identity = identity.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Listing { identity, objects })
}

fn head_client(settings: &Settings) -> Result<reqwest::blocking::Client, Error> {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.read_timeout)
        .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")))
        .referer(false)
        .build()
        .map_err(|e| Error::Usage(format!("cannot set up the HTTP client: {e}")))
}

/// `HEAD` of one S3 object with the checksum asked for; retries 429, 5xx and failed connections.
fn head(
    client: &reqwest::blocking::Client,
    url: &Url,
    settings: &Settings,
    loc: &Location,
    rel: &str,
) -> Result<Head, Error> {
    let shown = display_url(url);
    let mut attempt = 0u32;
    let resp = loop {
        let outcome = client.head(url.clone()).header("x-amz-checksum-mode", "ENABLED").send();
        let retry = match &outcome {
            Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
            Err(e) => e.is_connect() || e.is_timeout(),
        };
        if !retry || attempt >= settings.retries {
            break outcome.map_err(|e| Error::Transfer { url: shown.clone(), why: describe(&e) })?;
        }
        std::thread::sleep(settings.backoff.saturating_mul(1 << attempt.min(5)));
        attempt += 1;
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let hint = match status {
            401 | 403 => format!(
                " — access to {}/{rel} denied: the credentials may list the bucket but not read the object (s3:GetObject)",
                loc.key()
            ),
            404 => format!(" — {}/{rel} was listed but is gone", loc.key()),
            300..=399 => " — the store redirected (set AWS_REGION to the bucket's region)".into(),
            _ => String::new(),
        };
        return Err(Error::Status { url: shown, status, hint });
    }
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut h = Head {
        size: header("content-length").and_then(|v| v.trim().parse().ok()),
        etag: header("etag"),
        version: header("x-amz-version-id"),
        sha256: None,
    };
    let composite = header("x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("composite"));
    if let Some(stated) = header("x-amz-checksum-sha256")
        && !composite
        && !stated.contains('-')
    {
        let digest = base64_decode(stated.trim()).filter(|d| d.len() == 32).ok_or_else(|| Error::Api {
            url: shown.clone(),
            why: format!("x-amz-checksum-sha256 {stated:?} is not a base64 SHA-256"),
        })?;
        h.sha256 = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_strictly() {
        let l = Location::parse("s3://models-bkt/org/tiny/").unwrap();
        assert_eq!((l.cloud, l.bucket.as_str(), l.prefix.as_str()), (Cloud::S3, "models-bkt", "org/tiny"));
        assert_eq!(l.key(), "s3://models-bkt/org/tiny");
        assert_eq!(l.name(), "tiny");
        let l = Location::parse("gs://b").unwrap();
        assert_eq!((l.cloud, l.key(), l.name()), (Cloud::Gcs, "gs://b".to_string(), "b"));
        assert_eq!(Location::parse("az://container/x").unwrap().cloud, Cloud::Azure);
        for bad in [
            "s3://",
            "s3:///x",
            "s3://Upper/x",
            "s3://user:pw@bucket/x",
            "s3://b/../x",
            "s3://b/a//c",
            "s3://b/.git/config",
            "s3://-b/x",
            "ftp://b/x",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        let err = Location::parse("s3://key:hunter2@b/x").unwrap_err().to_string();
        assert!(err.contains("environment") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn object_store_urls_are_remote_sources() {
        for arg in ["s3://b/p", "gs://b/p", "az://c/p", "S3://b"] {
            assert!(crate::is_remote(arg), "{arg}");
        }
        assert!(matches!(crate::Source::parse("s3://b/p"), Ok(crate::Source::Object(_))));
        assert!(matches!(crate::Source::parse("az://c"), Ok(crate::Source::Object(_))));
        assert!(matches!(crate::Source::parse("S3://b"), Ok(crate::Source::Object(_))));
        assert!(crate::Source::parse("s3://B/p").is_err());
    }

    #[test]
    fn urls_stay_valid_long_enough_but_not_forever() {
        let mut s = Settings::new(Url::parse("https://s3.example/").unwrap());
        s.download_timeout = Duration::from_secs(60);
        assert_eq!(validity(&s), Duration::from_secs(12 * 3600));
        s.download_timeout = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(validity(&s), Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(!http_allowed(None, "E").unwrap());
        assert!(!http_allowed(Some("https://s3.example"), "E").unwrap());
        assert!(http_allowed(Some("http://127.0.0.1:9000"), "E").unwrap());
        assert!(http_allowed(Some("http://localhost:9000"), "E").unwrap());
        assert!(http_allowed(Some("http://minio.internal:9000"), "E").is_err());
        assert!(http_allowed(Some("not a url"), "E").is_err());
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("W/\"abc\""), "abc");
    }
}
