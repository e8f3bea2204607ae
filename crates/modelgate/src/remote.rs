//! Remote sources on the command line: `hf://org/name[@revision]` and `https://` URLs
//! (`docs/remote.md`).
//!
//! Each Hugging Face source is listed once (the revision resolves to a commit, and every file is
//! then fetched by that commit); files are downloaded by a bounded pool of workers, each file
//! streamed once through the scanner by `modelgate_remote::fetch`. A file that cannot be fetched
//! is a gate error (exit 2), like an unreadable local path; what contradicts the listing becomes
//! a finding (MG901–MG904). Downloads are kept under `--download-dir` only when the gate passes:
//! they are written to fresh files in a private temporary directory inside it and renamed into
//! place, never through a symbolic link found there (`docs/remote.md`).

use crate::error::GateError;
use crate::report::text::human_bytes;
use crate::run::{Artifact, HubRepo, Origin};
use clap::Args;
use globset::{GlobSet, GlobSetBuilder};
use modelgate_policy::pins::Lockfile;
use modelgate_policy::{Finding, Policy, RuleId, Verdict, evaluate};
use modelgate_remote::fetch::{Expect, Options, Problem, fetch};
use modelgate_remote::http::{Http, Settings};
use modelgate_remote::{Source, display_url, hub};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Options for remote sources.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Remote repositories: fetch only files whose path matches GLOB (`*` stays within a
    /// directory, `**` crosses them); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Remote repositories: skip files whose path matches GLOB; repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep verified downloads in DIR (written to temporary files, kept only if the gate passes).
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,
    /// Remote files downloaded (and scanned) at the same time.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub downloads: usize,
    /// Seconds allowed to connect to a server.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds allowed for an answer to start, and between two reads of a download.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub read_timeout: u64,
    /// Seconds allowed for one remote file's whole transfer (body, range requests, retries).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub download_timeout: u64,
    /// Retries after a 429 or 5xx answer or a failed connection (with backoff, honouring
    /// Retry-After).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
}

/// A remote source named on the command line.
#[derive(Debug, Clone)]
pub struct Input {
    /// As given.
    pub arg: String,
    /// Parsed.
    pub source: Source,
}

/// Splits the paths on the command line into local paths and remote sources.
pub fn split(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Input>), GateError> {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for p in paths {
        match p.to_str() {
            Some(arg) if modelgate_remote::is_remote(arg) => {
                let source = Source::parse(arg).map_err(|e| GateError::Usage(e.to_string()))?;
                remote.push(Input { arg: arg.to_string(), source });
            }
            _ => local.push(p.clone()),
        }
    }
    Ok((local, remote))
}

/// A remote model after resolution.
#[derive(Debug, Clone)]
pub struct Model {
    /// As given on the command line.
    pub arg: String,
    /// The lockfile's name for it: `hf://org/name`, or the URL.
    pub key: String,
    /// The reported path of its root: `hf://org/name@<commit>`, or the URL.
    pub display: String,
    /// The commit, for a Hugging Face repository.
    pub commit: Option<String>,
}

struct Download {
    temp: tempfile::TempPath,
    /// Where to keep it: a checked `/`-separated path relative to the download directory.
    target: String,
    intact: bool,
}

/// What the remote sources gave.
#[derive(Default)]
pub struct Outcome {
    /// One per file fetched.
    pub artifacts: Vec<Artifact>,
    /// One per source.
    pub models: Vec<Model>,
    downloads: Vec<Download>,
    download_dir: Option<PathBuf>,
    /// The private directory (inside the download directory) the downloads are written to;
    /// removed with whatever is left in it when the outcome is dropped.
    staging: Option<tempfile::TempDir>,
}

impl Outcome {
    /// The lockfile names of the remote models (roots for the pin check).
    pub fn roots(&self) -> impl Iterator<Item = String> + '_ {
        self.models.iter().map(|m| m.key.clone())
    }

    /// The reported path for a lockfile name (`hf://org/name/x` → `hf://org/name@<commit>/x`).
    pub fn display_for_key(&self, key: &str) -> Option<String> {
        self.models.iter().find_map(|m| {
            if key == m.key {
                return Some(m.display.clone());
            }
            key.strip_prefix(&format!("{}/", m.key)).map(|rest| format!("{}/{rest}", m.display))
        })
    }

    /// Keeps the verified downloads when the gate passed, deletes them otherwise.
    pub fn persist(self, verdict: Verdict, quiet: bool) -> Result<(), GateError> {
        let Some(dir) = self.download_dir else { return Ok(()) };
        if verdict == Verdict::Fail {
            if !quiet {
                eprintln!("modelgate: nothing kept in {}: the gate failed", dir.display());
            }
            return Ok(()); // Dropping the temporary files deletes them.
        }
        let mut kept = 0;
        let keep: Vec<Download> = self.downloads.into_iter().filter(|d| d.intact).collect();
        // Every target is checked before any file is moved, then again as it is placed.
        for d in &keep {
            check_target(&dir, &d.target, false)?;
        }
        for d in keep {
            let target = check_target(&dir, &d.target, true)?;
            d.temp
                .persist(&target)
                .map_err(|e| GateError::Output { path: target.clone(), source: e.error })?;
            kept += 1;
        }
        drop(self.staging);
        if !quiet {
            eprintln!(
                "modelgate: kept {kept} verified file{} in {}",
                if kept == 1 { "" } else { "s" },
                dir.display()
            );
        }
        Ok(())
    }
}

/// Where a download is kept: `rel` (a path [`hub::check_path`] accepted) under `dir`. Each
/// component that already exists must be a real directory (the last: a regular file, which is
/// replaced), never a symbolic link: a link planted in the download directory would send the
/// file (or git configuration, a hook, a shell profile) anywhere. With `create`, missing
/// directories are made one at a time. Returns the target path.
fn check_target(dir: &Path, rel: &str, create: bool) -> Result<PathBuf, GateError> {
    let refuse = |path: &Path, why: &str| GateError::Output {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("{why}; modelgate never writes through one")),
    };
    let parts: Vec<&str> = rel.split('/').collect();
    let mut path = dir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(&path, "a symbolic link is in the way in the download directory"));
            }
            Ok(m) if last && !m.is_file() => {
                return Err(refuse(&path, "something other than a regular file is in the way"));
            }
            Ok(m) if !last && !m.is_dir() => {
                return Err(refuse(&path, "something other than a directory is in the way"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if create && !last {
                    match std::fs::create_dir(&path) {
                        Ok(()) => {}
                        // Made meanwhile: look at it again.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            let m = std::fs::symlink_metadata(&path)
                                .map_err(|source| GateError::Output { path: path.clone(), source })?;
                            if !m.is_dir() || m.file_type().is_symlink() {
                                return Err(refuse(
                                    &path,
                                    "a symbolic link is in the way in the download directory",
                                ));
                            }
                        }
                        Err(source) => return Err(GateError::Output { path: path.clone(), source }),
                    }
                }
            }
            Err(source) => return Err(GateError::Output { path: path.clone(), source }),
        }
    }
    Ok(path)
}

/// One file to fetch.
pub(crate) struct Job {
    pub(crate) display: String,
    pub(crate) url: modelgate_remote::Url,
    pub(crate) expect: Expect,
    pub(crate) origin: Origin,
    /// Where to keep it, relative to the download directory.
    pub(crate) target: Option<String>,
    /// The client for a source with its own credentials (an OCI registry); the shared one if none.
    pub(crate) client: Option<std::sync::Arc<Http>>,
}

/// Lists, downloads and scans every remote source. `lock` (with `--locked`) supplies the
/// pinned commit for Hugging Face sources named without a revision.
pub fn scan(
    inputs: &[Input],
    args: &RemoteArgs,
    policy: &Policy,
    lock: Option<&Lockfile>,
    quiet: bool,
) -> Result<Outcome, Vec<GateError>> {
    let mut out = Outcome { download_dir: args.download_dir.clone(), ..Outcome::default() };
    if inputs.is_empty() {
        return Ok(out);
    }
    let one = |e: GateError| vec![e];
    if args.downloads == 0 {
        return Err(one(GateError::Usage("--downloads must be at least 1".into())));
    }
    let http = client(args).map_err(one)?;
    let filter = Filter::new(&args.include, &args.exclude).map_err(one)?;
    if let Some(dir) = &args.download_dir {
        std::fs::create_dir_all(dir)
            .map_err(|source| one(GateError::Output { path: dir.clone(), source }))?;
        // A fresh private directory (mode 0700 on Unix) for the bodies as they stream: nothing
        // else can have put a file or link there.
        let staging = tempfile::Builder::new()
            .prefix(".modelgate-")
            .tempdir_in(dir)
            .map_err(|source| one(GateError::Output { path: dir.clone(), source }))?;
        out.staging = Some(staging);
    }
    let endpoint = http.settings().endpoint.as_str().trim_end_matches('/').to_string();
    let mut jobs = Vec::new();
    for input in inputs {
        let failed = |e: modelgate_remote::Error| {
            vec![GateError::Input { path: input.arg.clone().into(), why: e.to_string() }]
        };
        match &input.source {
            Source::Hub { repo, revision } => {
                let key = format!("hf://{repo}");
                let pinned = lock
                    .and_then(|l| l.models.iter().find(|m| m.path == key))
                    .and_then(|m| m.revision.clone());
                let rev = revision.clone().or_else(|| pinned.clone()).unwrap_or_else(|| "main".into());
                let listing = hub::list(&http, repo, &rev).map_err(failed)?;
                let root = format!("hf://{repo}@{}", listing.commit);
                let files: Vec<_> = listing
                    .files
                    .iter()
                    .filter(|f| filter.includes(&f.path) && policy.paths.includes(&f.path, false))
                    .collect();
                if !quiet {
                    let bytes: u64 = files.iter().filter_map(|f| f.size).sum();
                    eprintln!(
                        "modelgate: {} is commit {}: {} of {} files ({})",
                        input.arg,
                        listing.commit,
                        files.len(),
                        listing.files.len(),
                        human_bytes(bytes)
                    );
                    if let Some(p) = pinned.filter(|p| *p != listing.commit && revision.is_some()) {
                        eprintln!(
                            "modelgate: note: the lockfile pins {key} at commit {p}; differences are reported file by file"
                        );
                    }
                }
                let hub_repo = HubRepo {
                    id: repo.clone(),
                    commit: listing.commit.clone(),
                    root: root.clone(),
                    endpoint: endpoint.clone(),
                    purl: None,
                };
                for f in files {
                    let url = hub::resolve_url(&http.settings().endpoint, repo, &listing.commit, &f.path)
                        .map_err(failed)?;
                    jobs.push(Job {
                        display: format!("{root}/{}", f.path),
                        expect: Expect {
                            size: f.size,
                            sha256: f.sha256.clone(),
                            git_blob: f.git_blob.clone(),
                        },
                        origin: Origin {
                            url: display_url(&url),
                            pin_key: format!("{key}/{}", f.path),
                            repo: Some(hub_repo.clone()),
                            from_cache: false,
                        },
                        target: args.download_dir.as_ref().map(|_| f.path.clone()),
                        url,
                        client: None,
                    });
                }
                out.models.push(Model {
                    arg: input.arg.clone(),
                    key,
                    display: root,
                    commit: Some(listing.commit),
                });
            }
            Source::Url(url) => {
                let shown = display_url(url);
                let name = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("").to_string();
                let target = match &args.download_dir {
                    Some(_) if hub::check_path(&name).is_ok() && !name.contains('/') => Some(name),
                    Some(_) => {
                        return Err(one(GateError::Usage(format!(
                            "{shown}: the URL does not end in a usable file name for --download-dir"
                        ))));
                    }
                    None => None,
                };
                jobs.push(Job {
                    display: shown.clone(),
                    url: url.clone(),
                    expect: Expect::default(),
                    origin: Origin {
                        url: shown.clone(),
                        pin_key: shown.clone(),
                        repo: None,
                        from_cache: false,
                    },
                    target,
                    client: None,
                });
                out.models.push(Model {
                    arg: input.arg.clone(),
                    key: shown.clone(),
                    display: shown,
                    commit: None,
                });
            }
            other => {
                let (mut more, model) =
                    crate::sources::plan(input, other, args, &filter, policy, lock, quiet).map_err(one)?;
                jobs.append(&mut more);
                out.models.push(model);
            }
        }
    }
    let mut targets: Vec<&String> = jobs.iter().filter_map(|j| j.target.as_ref()).collect();
    targets.sort();
    if let Some(w) = targets.windows(2).find(|w| w[0] == w[1]) {
        return Err(one(GateError::Usage(format!(
            "two remote files would be kept as {}; give one source per --download-dir",
            w[0]
        ))));
    }
    // Refuse a symbolic link in the way before downloading anything (and again when placing).
    if let Some(dir) = &args.download_dir {
        for t in &targets {
            check_target(dir, t, false).map_err(one)?;
        }
    }
    let staging = out.staging.as_ref().map(|t| t.path().to_path_buf());
    let results = run_jobs(&http, &jobs, args, staging.as_deref(), policy, quiet);
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((artifact, download)) => {
                out.artifacts.push(artifact);
                out.downloads.extend(download);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

pub(crate) fn client(args: &RemoteArgs) -> Result<Http, GateError> {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let endpoint = modelgate_remote::Url::parse(endpoint.trim())
        .map_err(|e| GateError::Usage(format!("HF_ENDPOINT {endpoint:?} is not a URL: {e}")))?;
    let mut settings = Settings::new(endpoint);
    settings.token = std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty());
    settings.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    settings.read_timeout = Duration::from_secs(args.read_timeout.max(1));
    settings.retries = args.retries;
    settings.download_timeout = Duration::from_secs(args.download_timeout.max(1));
    Http::new(settings).map_err(|e| GateError::Usage(e.to_string()))
}

type JobResult = Result<(Artifact, Option<Download>), GateError>;

/// Runs the downloads on `args.downloads` worker threads; results in job order.
fn run_jobs(
    http: &Http,
    jobs: &[Job],
    args: &RemoteArgs,
    staging: Option<&Path>,
    policy: &Policy,
    quiet: bool,
) -> Vec<JobResult> {
    let total: u64 = jobs.iter().filter_map(|j| j.expect.size).sum();
    let bar = progress_bar(total, quiet);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<JobResult>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..args.downloads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = run_job(http, job, staging, policy, &tick);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    slots
        .into_iter()
        .zip(jobs)
        .map(|(slot, job)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(GateError::Input {
                    path: job.display.clone().into(),
                    why: "the download did not complete".into(),
                })
            })
        })
        .collect()
}

fn run_job(
    http: &Http,
    job: &Job,
    staging: Option<&Path>,
    policy: &Policy,
    tick: &(dyn Fn(u64) + Sync),
) -> JobResult {
    let cache = crate::cache::active();
    // Nothing to keep and a SHA-256 listed up front: a cached inventory of those bytes makes
    // the download unnecessary (the report says the verdict came from the cache).
    if let (Some(cache), None, Some(sha), Some(size)) =
        (cache, &job.target, &job.expect.sha256, job.expect.size)
        && let Some(node) = cache.get(&crate::cache::Context::Remote, sha, size)
    {
        cache.skipped_downloads.fetch_add(1, Ordering::Relaxed);
        tick(size);
        let findings = evaluate(&node, &job.display, policy);
        let origin = Origin { from_cache: true, ..job.origin.clone() };
        let artifact =
            Artifact { path: job.display.clone(), node, findings, missing: false, origin: Some(origin) };
        return Ok((artifact, None));
    }
    let opts = Options { download_dir: staging, progress: Some(tick), ..Options::default() };
    let http = job.client.as_deref().unwrap_or(http);
    let fetched = fetch(http, &job.url, &job.display, &job.expect, &opts)
        .map_err(|e| GateError::Input { path: job.display.clone().into(), why: e.to_string() })?;
    if let Some(cache) = cache.filter(|_| fetched.problems.is_empty()) {
        cache.put(&crate::cache::Context::Remote, &fetched.node);
    }
    let mut findings = evaluate(&fetched.node, &job.display, policy);
    let intact = fetched.problems.is_empty();
    findings.extend(fetched.problems.iter().filter_map(|p| problem_finding(p, policy)));
    let download = match (fetched.download, &job.target) {
        (Some(temp), Some(target)) => Some(Download { temp, target: target.clone(), intact }),
        _ => None,
    };
    let artifact = Artifact {
        path: job.display.clone(),
        node: fetched.node,
        findings,
        missing: false,
        origin: Some(job.origin.clone()),
    };
    Ok((artifact, download))
}

/// The finding for a difference between a download and its listing.
fn problem_finding(p: &Problem, policy: &Policy) -> Option<Finding> {
    match p {
        Problem::Sha256 { expected, actual } => Finding::policy(
            RuleId::RemoteDigestMismatch,
            policy,
            format!(
                "the download has sha256 {actual}, but the source states sha256 {expected} (a hub's LFS object id, a registry's digest, an object store's checksum)"
            ),
            Some(format!("sha256:{actual}")),
        ),
        Problem::GitBlob { expected, actual } => Finding::policy(
            RuleId::RemoteDigestMismatch,
            policy,
            format!("the download's git blob id is {actual}, but the hub lists {expected}"),
            Some(format!("git-blob:{actual}")),
        ),
        Problem::Size { expected, actual } => Finding::policy(
            RuleId::RemoteSizeMismatch,
            policy,
            format!("{actual} bytes were downloaded, but the hub lists {expected}"),
            None,
        ),
        Problem::Inconsistent { offset } => Finding::policy(
            RuleId::RemoteInconsistentContent,
            policy,
            format!("a range request returned other bytes than the download holds at offset {offset}"),
            None,
        ),
        Problem::Unverifiable { why } => {
            Finding::policy(RuleId::RemoteDigestUnverifiable, policy, why.clone(), None)
        }
    }
}

/// `--include`/`--exclude` globs on paths inside a repository.
pub(crate) struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    fn new(include: &[String], exclude: &[String]) -> Result<Filter, GateError> {
        let build = |flag: &str, patterns: &[String]| -> Result<Option<GlobSet>, GateError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                let glob = globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| GateError::Usage(format!("--{flag} {p:?}: {e}")))?;
                b.add(glob);
            }
            b.build().map(Some).map_err(|e| GateError::Usage(format!("--{flag}: {e}")))
        };
        Ok(Filter { include: build("include", include)?, exclude: build("exclude", exclude)? })
    }

    pub(crate) fn includes(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(path))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(path))
    }
}

/// A progress bar on standard error, only on a terminal and never in CI.
fn progress_bar(total: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} downloading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_within_directories() {
        let f = Filter::new(&["*.bin".into(), "onnx/**".into()], &["**/evil*".into()]).unwrap();
        assert!(f.includes("model.bin"));
        assert!(!f.includes("sub/model.bin"));
        assert!(f.includes("onnx/a/b.onnx"));
        assert!(!f.includes("onnx/evil.onnx"));
        assert!(Filter::new(&["[".into()], &[]).is_err());
    }

    #[test]
    fn inputs_split_into_local_and_remote() {
        let (local, remote) =
            split(&["models".into(), "hf://org/name@main".into(), "https://example.com/a.bin".into()])
                .unwrap();
        assert_eq!(local, vec![PathBuf::from("models")]);
        assert_eq!(remote.len(), 2);
        assert!(split(&["hf://bad".into()]).is_err());
    }
}
