//! Remote sources other than `hf://` and single URLs (`docs/remote.md`): each resolves its
//! argument to an immutable identity and a list of files, each file with the size and SHA-256
//! the source states for it, to be fetched and scanned as it streams by `remote::run_jobs`
//! exactly like a Hugging Face file — the same verification findings (MG901–MG903), the same
//! pins, the same `--download-dir` rule, the same BOM components.
//!
//! - `oci://registry/repository[:tag][@sha256:…]`: the manifest digest is the identity; every
//!   blob (config and layers) is a file whose descriptor gives its size and digest.
//! - `s3://`, `gs://`, `az://`: the SHA-256 of the listing (paths, versions, ETags, sizes,
//!   stated digests) is the identity; every object under the prefix is a file, fetched from a
//!   presigned URL, with its size and (S3 `x-amz-checksum-sha256`) SHA-256.
//! - `models:/NAME/VERSION`, `models:/NAME@ALIAS`, `runs:/RUN_ID/PATH`: the model version (or
//!   run path) is the identity; every artifact under it is a file with the size the tracking
//!   server lists (MLflow lists no digest: the pin is the SHA-256 computed as it streams).

use crate::error::GateError;
use crate::remote::{Filter, Input, Job, Model, RemoteArgs};
use crate::report::text::human_bytes;
use crate::run::{HubRepo, Origin};
use modelgate_policy::Policy;
use modelgate_policy::pins::Lockfile;
use modelgate_remote::fetch::Expect;
use modelgate_remote::http::{Http, Settings};
use modelgate_remote::mlflow;
use modelgate_remote::oci::{self, Reference, Registry};
use modelgate_remote::{Source, display_url, objstore};
use std::sync::Arc;
use std::time::Duration;

/// Resolves one source to the files to fetch and the model they form.
pub(crate) fn plan(
    input: &Input,
    source: &Source,
    args: &RemoteArgs,
    filter: &Filter,
    policy: &Policy,
    lock: Option<&Lockfile>,
    quiet: bool,
) -> Result<(Vec<Job>, Model), GateError> {
    match source {
        Source::Oci(r) => oci_plan(input, r, args, filter, policy, lock, quiet),
        Source::Object(l) => object_plan(input, l, args, filter, policy, lock, quiet),
        Source::Mlflow(r) => mlflow_plan(input, r, args, filter, policy, quiet),
        _ => Err(GateError::Usage(format!("{}: not a source this build reads", input.arg))),
    }
}

/// Client settings for `endpoint` from the command line's timeouts and retries.
fn settings(endpoint: modelgate_remote::Url, args: &RemoteArgs) -> Settings {
    let mut s = Settings::new(endpoint);
    s.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    s.read_timeout = Duration::from_secs(args.read_timeout.max(1));
    s.retries = args.retries;
    s
}

fn oci_plan(
    input: &Input,
    reference: &Reference,
    args: &RemoteArgs,
    filter: &Filter,
    policy: &Policy,
    lock: Option<&Lockfile>,
    quiet: bool,
) -> Result<(Vec<Job>, Model), GateError> {
    let failed =
        |e: modelgate_remote::Error| GateError::Input { path: input.arg.clone().into(), why: e.to_string() };
    let key = reference.key();
    let mut reference = reference.clone();
    // As for `hf://`: a reference without a tag or digest takes the digest the lockfile pins.
    let pinned = lock.and_then(|l| l.models.iter().find(|m| m.path == key)).and_then(|m| m.revision.clone());
    if reference.tag.is_none() && reference.digest.is_none() {
        reference.digest = pinned.as_ref().map(|p| format!("sha256:{p}"));
    }
    let creds = match oci::docker_config_path().filter(|p| p.is_file()) {
        Some(path) => {
            let bytes = std::fs::read(&path)
                .map_err(|e| GateError::Input { path: path.clone(), why: e.to_string() })?;
            oci::docker_credentials(&bytes, &reference.registry)
                .map_err(|why| GateError::Usage(format!("{}: {why}", path.display())))?
        }
        None => None,
    };
    let settings = settings(reference.base_url(), args);
    let registry = Registry::connect(reference.clone(), &settings, creds.as_ref()).map_err(failed)?;
    let resolved = registry.resolve().map_err(failed)?;
    let digest_hex = resolved.digest.trim_start_matches("sha256:").to_string();
    let root = format!("{key}@{}", resolved.digest);
    let http = Arc::new(Http::with_authorization(settings, registry.authorization()).map_err(failed)?);
    let blobs: Vec<_> = resolved
        .blobs
        .iter()
        .filter(|b| filter.includes(&b.path) && policy.paths.includes(&b.path, false))
        .collect();
    if !quiet {
        let bytes: u64 = blobs.iter().map(|b| b.size).sum();
        eprintln!(
            "modelgate: {} is {} ({}{}): {} of {} blobs ({})",
            input.arg,
            resolved.digest,
            resolved.media_type,
            resolved.artifact_type.as_deref().map(|t| format!(", {t}")).unwrap_or_default(),
            blobs.len(),
            resolved.blobs.len(),
            human_bytes(bytes)
        );
        if let Some(p) = pinned.filter(|p| *p != digest_hex && reference.tag.is_some()) {
            eprintln!(
                "modelgate: note: the lockfile pins {key} at sha256:{p}; differences are reported file by file"
            );
        }
    }
    let name = reference.repository.rsplit('/').next().unwrap_or(&reference.repository).to_string();
    let location = format!("{}/{}", reference.registry, reference.repository);
    let repo = HubRepo {
        id: reference.repository.clone(),
        commit: resolved.digest.clone(),
        root: root.clone(),
        endpoint: location.clone(),
        // The purl spec's `oci` type: the last name component, the manifest digest as version
        // (`:` percent-encoded) and the full location as `repository_url`.
        purl: Some(format!(
            "pkg:oci/{name}@sha256%3A{digest_hex}?repository_url={}",
            location.replace(':', "%3A")
        )),
    };
    let mut jobs = Vec::new();
    for b in blobs {
        let url = registry.blob_url(&b.sha256).map_err(failed)?;
        jobs.push(Job {
            display: format!("{root}/{}", b.path),
            expect: Expect { size: Some(b.size), sha256: Some(b.sha256.clone()), git_blob: None },
            origin: Origin {
                url: display_url(&url),
                pin_key: format!("{key}/{}", b.path),
                repo: Some(repo.clone()),
                from_cache: false,
            },
            target: args.download_dir.as_ref().map(|_| b.path.clone()),
            url,
            client: Some(Arc::clone(&http)),
        });
    }
    Ok((jobs, Model { arg: input.arg.clone(), key, display: root, commit: Some(digest_hex) }))
}

fn object_plan(
    input: &Input,
    location: &objstore::Location,
    args: &RemoteArgs,
    filter: &Filter,
    policy: &Policy,
    lock: Option<&Lockfile>,
    quiet: bool,
) -> Result<(Vec<Job>, Model), GateError> {
    let failed =
        |e: modelgate_remote::Error| GateError::Input { path: input.arg.clone().into(), why: e.to_string() };
    let key = location.key();
    let mut s = settings(
        modelgate_remote::Url::parse("https://invalid.invalid/")
            .map_err(|e| GateError::Usage(e.to_string()))?,
        args,
    );
    s.download_timeout = Duration::from_secs(args.download_timeout.max(1));
    let listing = objstore::list(location, &s).map_err(failed)?;
    let root = format!("{key}@sha256:{}", listing.identity);
    let objects: Vec<_> = listing
        .objects
        .iter()
        .filter(|o| filter.includes(&o.path) && policy.paths.includes(&o.path, false))
        .collect();
    let pinned = lock.and_then(|l| l.models.iter().find(|m| m.path == key)).and_then(|m| m.revision.clone());
    if !quiet {
        let bytes: u64 = objects.iter().map(|o| o.size).sum();
        eprintln!(
            "modelgate: {} is listing sha256:{}: {} of {} objects ({})",
            input.arg,
            listing.identity,
            objects.len(),
            listing.objects.len(),
            human_bytes(bytes)
        );
        if let Some(p) = pinned.filter(|p| *p != listing.identity) {
            eprintln!(
                "modelgate: note: the lockfile pins {key} at listing sha256:{p}; differences are reported file by file"
            );
        }
    }
    // Downloads go through our own client (no credentials of its own: the URLs are presigned).
    let endpoint = match objects.first() {
        Some(o) => {
            let mut e = o.url.clone();
            e.set_path("/");
            e.set_query(None);
            e
        }
        None => modelgate_remote::Url::parse("https://invalid.invalid/")
            .map_err(|e| GateError::Usage(e.to_string()))?,
    };
    s.endpoint = endpoint;
    let http = Arc::new(Http::with_authorization(s, None).map_err(failed)?);
    let repo = HubRepo {
        id: location.name().to_string(),
        commit: format!("sha256:{}", listing.identity),
        root: root.clone(),
        endpoint: key.clone(),
        // purl's `generic` type: the listing digest as version, the store URL as where it is.
        purl: Some(format!(
            "pkg:generic/{}@sha256%3A{}?download_url={}",
            location.name(),
            listing.identity,
            key.replace(':', "%3A")
        )),
    };
    let jobs = objects
        .into_iter()
        .map(|o| Job {
            display: format!("{root}/{}", o.path),
            expect: Expect { size: Some(o.size), sha256: o.sha256.clone(), git_blob: None },
            origin: Origin {
                url: display_url(&o.url),
                pin_key: format!("{key}/{}", o.path),
                repo: Some(repo.clone()),
                from_cache: false,
            },
            target: args.download_dir.as_ref().map(|_| o.path.clone()),
            url: o.url.clone(),
            client: Some(Arc::clone(&http)),
        })
        .collect();
    Ok((jobs, Model { arg: input.arg.clone(), key, display: root, commit: Some(listing.identity) }))
}

/// Percent-encodes a purl component or qualifier value (everything but unreserved characters;
/// `/` and `:` kept in qualifier values, as the purl spec's examples write URLs).
fn purl_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn mlflow_plan(
    input: &Input,
    reference: &mlflow::Reference,
    args: &RemoteArgs,
    filter: &Filter,
    policy: &Policy,
    quiet: bool,
) -> Result<(Vec<Job>, Model), GateError> {
    let failed =
        |e: modelgate_remote::Error| GateError::Input { path: input.arg.clone().into(), why: e.to_string() };
    let tracking = mlflow::Tracking::from_env().map_err(|e| GateError::Usage(e.to_string()))?;
    let mut settings = settings(tracking.base.clone(), args);
    settings.download_timeout = Duration::from_secs(args.download_timeout.max(1));
    let http = Arc::new(mlflow::client(settings, &tracking).map_err(failed)?);
    let resolved = mlflow::resolve(&http, &tracking, reference).map_err(failed)?;
    let key = reference.key(resolved.version.as_deref());
    let files: Vec<_> = resolved
        .files
        .iter()
        .filter(|f| filter.includes(&f.path) && policy.paths.includes(&f.path, false))
        .collect();
    if !quiet {
        let bytes: u64 = files.iter().filter_map(|f| f.size).sum();
        eprintln!(
            "modelgate: {}{}{} at {}: {} of {} files ({})",
            input.arg,
            if input.arg == key { String::new() } else { format!(" is {key}") },
            resolved.run_id.as_deref().map(|r| format!(" (run {r})")).unwrap_or_default(),
            resolved.location,
            files.len(),
            resolved.files.len(),
            human_bytes(bytes)
        );
    }
    // The purl spec's `mlflow` type: the model name, the version, the server's REST API as
    // `repository_url` and the run as `run_id`. A run path has no registered name: its last
    // component names it, and the run id versions it.
    let (id, version) = match (&resolved.name, &resolved.version, reference) {
        (Some(n), Some(v), _) => (n.clone(), v.clone()),
        (_, _, mlflow::Reference::Run { run_id, path }) => {
            (path.rsplit('/').next().filter(|p| !p.is_empty()).unwrap_or(run_id).to_string(), run_id.clone())
        }
        _ => (key.clone(), String::new()),
    };
    let mut purl = format!("pkg:mlflow/{}", purl_encode(&id, &[]));
    if resolved.version.is_some() {
        purl.push_str(&format!("@{}", purl_encode(&version, &[])));
    }
    purl.push_str(&format!("?repository_url={}", purl_encode(&tracking.api_url(), b"/:")));
    if let Some(r) = &resolved.run_id {
        purl.push_str(&format!("&run_id={}", purl_encode(r, &[])));
    }
    let repo = HubRepo {
        id,
        commit: version,
        root: key.clone(),
        endpoint: display_url(&tracking.base).trim_end_matches('/').to_string(),
        purl: Some(purl),
    };
    let mut jobs = Vec::new();
    for f in files {
        let url = tracking.artifact_url(&f.proxy_path).map_err(failed)?;
        // One file (`runs:/RUN/model.pkl`) is reported and pinned as the source itself.
        let display = if resolved.single_file { key.clone() } else { format!("{key}/{}", f.path) };
        jobs.push(Job {
            display: display.clone(),
            expect: Expect { size: f.size, sha256: None, git_blob: None },
            origin: Origin {
                url: display_url(&url),
                pin_key: display,
                repo: Some(repo.clone()),
                from_cache: false,
            },
            target: args.download_dir.as_ref().map(|_| f.path.clone()),
            url,
            client: Some(Arc::clone(&http)),
        });
    }
    Ok((jobs, Model { arg: input.arg.clone(), key: key.clone(), display: key, commit: None }))
}
