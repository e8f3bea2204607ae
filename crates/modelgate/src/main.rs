//! The `modelgate` command: a thin layer over the formats and policy crates. Every error goes
//! through one place ([`main`]) and exits 2; a policy violation exits 1; a pass exits 0.

mod cache;
mod cli;
mod error;
mod explain;
mod inspect;
mod merge;
mod policy_cmd;
mod remote;
mod report;
mod run;
mod shard;
mod signatures;
mod sources;
mod verify_cmd;
mod walk;

use clap::Parser;
use cli::{Cli, Command, LockArgs, ScanArgs};
use error::GateError;
use modelgate_formats::Node;
use modelgate_formats::stream::hex;
use modelgate_policy::paths::Base;
use modelgate_policy::pins::{Drift, Lockfile, pin_model};
use modelgate_policy::suppress::Date;
use modelgate_policy::{Policy, Verdict, apply_suppressions};
use run::Artifact;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Scan(args) => scan(args, cli.color.enabled()),
        Command::Inspect(args) => inspect(args),
        Command::Explain(args) => explain(args.rule.as_deref()),
        Command::Lock(args) => lock(args),
        Command::Merge(args) => merge(args),
        Command::Verify(args) => verify_cmd::run(args).map_err(Errors::from),
        Command::Policy(command) => policy_cmd::run(command).map_err(Errors::from),
        Command::Enforce { report } => enforce(report),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "modelgate", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => man(),
    };
    match result {
        Ok(code) => code,
        Err(Errors(errors)) => {
            // One line per error; an error of several lines (every problem of a policy file) is
            // several errors, each with its own prefix.
            for e in &errors {
                for line in e.to_string().lines() {
                    warn(&format!("modelgate: error: {line}"));
                }
            }
            ExitCode::from(2)
        }
    }
}

/// Errors, possibly several (one per unreadable file).
struct Errors(Vec<GateError>);

impl From<GateError> for Errors {
    fn from(e: GateError) -> Errors {
        Errors(vec![e])
    }
}

/// `modelgate man`: the manual page, generated from the clap definitions.
fn man() -> Result<ExitCode, Errors> {
    use clap::CommandFactory;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|source| GateError::Output { path: PathBuf::from("-"), source })?;
    print!("{}", String::from_utf8_lossy(&page));
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: &cli::InspectArgs) -> Result<ExitCode, Errors> {
    let policy = load_policy(args.policy.as_deref())?;
    inspect::run(args, &policy)?;
    Ok(ExitCode::SUCCESS)
}

fn explain(rule: Option<&str>) -> Result<ExitCode, Errors> {
    write_stdout(&explain::run(rule)?)?;
    Ok(ExitCode::SUCCESS)
}

/// `--policy FILE`, else `./modelgate.toml` if it exists, else the built-in policy.
fn load_policy(path: Option<&Path>) -> Result<Policy, GateError> {
    let default = PathBuf::from("modelgate.toml");
    match path {
        Some(p) => Ok(Policy::load(p)?),
        None if default.is_file() => Ok(Policy::load(&default)?),
        None => Ok(Policy::builtin()?),
    }
}

fn scan(args: &ScanArgs, color: bool) -> Result<ExitCode, Errors> {
    let policy = load_policy(args.policy.as_deref())?;
    let fail_on = args.fail_on.unwrap_or(policy.fail_on);
    let jobs = args.jobs.unwrap_or_else(run::default_jobs);
    if jobs == 0 {
        return Err(GateError::Usage("--jobs must be at least 1".into()).into());
    }
    let started = report::cyclonedx::now_secs();
    let spec = args.scale.shard.as_deref().map(|s| shard::Spec::parse(s, args.scale.shards)).transpose()?;
    if spec.is_some() && args.json.as_deref().is_none_or(|p| p == Path::new("-")) {
        return Err(GateError::Usage(
            "--shard needs --json FILE: the shard's JSON report is what `modelgate merge` reads".into(),
        )
        .into());
    }
    if spec.is_none() && args.scale.shards.is_some() {
        return Err(GateError::Usage("--shards goes with --shard auto".into()).into());
    }
    cache::install(args.scale.cache.as_deref(), args.scale.cache_max_size.as_deref())?;
    let (local, remote_inputs) = remote::split(&args.paths)?;
    // Every path the policy matches, and every reported path, is a key relative to this base.
    let base = policy.base();
    let mut walked = walk::collect(&local, &policy.paths, &base)?;
    if walked.targets.is_empty() && remote_inputs.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        warn(&format!("modelgate: warning: no files found under {}", paths.join(", ")));
    }
    let root_keys: Vec<String> = local.iter().map(|r| base.key(r)).collect();
    let targets = std::mem::take(&mut walked.targets);
    let (plan, targets, remote_inputs) = match spec {
        Some(spec) => {
            let (plan, t, r) = shard::plan(spec, &root_keys, targets, remote_inputs, &args.remote, &policy)?;
            (Some(plan), t, r)
        }
        None => (None, targets, remote_inputs),
    };
    let mut artifacts = run::scan_all(&targets, &policy, jobs).map_err(Errors)?;
    run::report_outside_links(&mut artifacts, &walked.outside_links, &policy);
    let locked = args.locked || policy.require_pins;
    // With pins required, the lockfile also says which commit of a repository to fetch.
    let pins = if locked && args.lockfile.is_file() {
        Some(Lockfile::load(&args.lockfile).map_err(GateError::from)?)
    } else {
        None
    };
    let mut fetched =
        remote::scan(&remote_inputs, &args.remote, &policy, pins.as_ref(), args.quiet).map_err(Errors)?;
    artifacts.append(&mut fetched.artifacts);
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    run::relate_checkpoint_shards(&mut artifacts, &policy);
    let mut unmatched = Vec::new();
    if locked {
        let mut roots = root_keys.clone();
        roots.extend(fetched.roots());
        let gate = gate_files(&args.lockfile, args.policy.as_deref());
        unmatched = check_pins(&mut artifacts, &roots, &fetched, &args.lockfile, &policy, &base, &gate)?;
    }
    // Remote sources are roots as given (they are not paths on disk). A shard sees only its
    // own units: another shard's files are not missing.
    let local_roots = match &plan {
        Some(plan) => {
            artifacts.retain(|a| !a.missing || plan.owns(&a.path));
            plan.local_units()
        }
        None => root_keys.clone(),
    };
    let signature_roots: Vec<String> =
        local_roots.into_iter().chain(remote_inputs.iter().map(|i| i.arg.clone())).collect();
    let signatures = signatures::check(&mut artifacts, &signature_roots, &policy, &base)?;
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    let today = Date::today();
    for a in &mut artifacts {
        let sha = hex(&a.node.sha256);
        apply_suppressions(&mut a.findings, &a.path, &sha, &policy, today);
        a.findings.sort_by(|x, y| {
            (&x.location, &x.rule.id, &x.message).cmp(&(&y.location, &y.rule.id, &y.message))
        });
    }
    unmatched.extend(report::unmatched_entries(&policy, &artifacts, &signatures));
    unmatched.sort();
    let verdict = Verdict::of(artifacts.iter().flat_map(|a| &a.findings), fail_on);
    let run = report::Run {
        artifacts: &artifacts,
        fail_on,
        verdict,
        signatures: &signatures,
        skipped: walked.skipped,
        unmatched: &unmatched,
    };
    let shard_info = plan.as_ref().map(|plan| merge::ShardInfo {
        plan,
        policy_hash: shard::policy_hash(args.policy.as_deref(), &fail_on.to_string(), locked, &args.lockfile),
        fail_on,
        root_name: root_name(&args.paths),
        artifacts: &artifacts,
        signatures: &signatures,
        skipped: walked.skipped,
        unmatched: &unmatched,
    });
    // A report that cannot be written completely (a closed pipe, a full disk) is an error: exit 2.
    write_reports(&Outputs::of_scan(args), &run, &policy, started, shard_info.as_ref())?;
    print_text(&run, args.quiet, args.json.as_deref(), color)?;
    if let Some(cache) = cache::active() {
        cache.finish(args.quiet);
    }
    fetched.persist(verdict, args.quiet)?;
    Ok(match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

/// Adds a finding for every difference between the lockfile and what was scanned.
fn check_pins(
    artifacts: &mut Vec<Artifact>,
    roots: &[String],
    remote: &remote::Outcome,
    lockfile: &Path,
    policy: &Policy,
    base: &Base,
    gate: &[PathBuf],
) -> Result<Vec<report::Unmatched>, GateError> {
    if !lockfile.is_file() {
        return Err(GateError::Usage(format!(
            "pins are required but there is no lockfile at {} (create it with `modelgate lock`)",
            lockfile.display()
        )));
    }
    let lock = Lockfile::load(lockfile)?;
    let keys = PinKeys::for_lockfile(lockfile, base).ignoring(gate);
    let scanned = keys.scanned(artifacts);
    let unmatched = lock
        .unmatched(&scanned)
        .into_iter()
        .map(|m| report::Unmatched { table: "pin", path: m.path.clone(), origin: name_of(lockfile) })
        .collect();
    let roots: Vec<String> = roots.iter().map(|r| keys.key(r)).collect();
    let name = lockfile.display().to_string();
    for drift in lock.drift(&scanned, &roots) {
        // Outside every pinned model, a file whose content is no model (a README, a script, an
        // image) is not an unpinned model; inside a pinned model directory every file counts.
        if let Drift::Unpinned { path, model: None } = &drift
            && scanned.iter().any(|f| &f.path == path && NOT_MODELS.contains(&f.format.as_str()))
        {
            continue;
        }
        let Some(finding) = drift.finding(policy, &name) else { continue };
        match scanned.iter().position(|f| f.path == drift.path()) {
            Some(i) => artifacts[i].findings.push(finding),
            None => artifacts.push(Artifact {
                path: remote.display_for_key(drift.path()).unwrap_or_else(|| keys.shown(drift.path())),
                node: Node::new("", None),
                findings: vec![finding],
                missing: true,
                origin: None,
            }),
        }
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(unmatched)
}

fn name_of(path: &Path) -> String {
    path.display().to_string()
}

/// Formats that are never a model by themselves (see `check_pins`).
const NOT_MODELS: &[&str] = &["text", "empty", "image", "script"];

/// The gate's own files — the lockfile and the policy in use (default `./modelgate.toml`) — which
/// are never pinned and never pinning findings (`docs/ci.md`, "pre-commit").
fn gate_files(lockfile: &Path, policy: Option<&Path>) -> Vec<PathBuf> {
    [Some(lockfile), policy, Some(Path::new("modelgate.toml"))]
        .into_iter()
        .flatten()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

/// Paths in a lockfile are relative to the lockfile's directory, so one lockfile works whichever
/// directory the scan runs from and however its paths are spelt (`models/x.pt`, `./models/x.pt`,
/// an absolute path). Scanned paths are keys relative to the policy's base (`modelgate_policy::paths`);
/// both are canonical, so a key moves from one base to the other without touching the disk.
/// Paths outside the lockfile's directory are absolute; remote sources are kept as they are.
struct PinKeys {
    lock: Base,
    base: Base,
    /// Files left out of the pins (canonical paths; see [`gate_files`]).
    ignore: Vec<PathBuf>,
}

impl PinKeys {
    fn for_lockfile(lockfile: &Path, base: &Base) -> PinKeys {
        PinKeys { lock: Base::of_file(lockfile), base: base.clone(), ignore: Vec::new() }
    }

    fn ignoring(mut self, files: &[PathBuf]) -> PinKeys {
        self.ignore = files.to_vec();
        self
    }

    /// The lockfile key of a scanned path (a key relative to the policy's base).
    fn key(&self, shown: &str) -> String {
        self.lock.rebase(shown, &self.base)
    }

    /// What the pin check needs of each artifact, keyed by its lockfile path.
    fn scanned(&self, artifacts: &[Artifact]) -> Vec<modelgate_policy::pins::ScannedFile> {
        artifacts
            .iter()
            .filter(|a| {
                self.ignore.is_empty()
                    || a.path.contains("://")
                    || Path::new(&a.path).canonicalize().map_or(true, |p| !self.ignore.contains(&p))
            })
            .map(|a| {
                let mut file = a.scanned_file();
                file.path = self.key(&file.path); // a remote file's key is kept as it is
                file
            })
            .collect()
    }

    /// How to show a pinned path that was not scanned (a key relative to the policy's base).
    fn shown(&self, key: &str) -> String {
        self.base.rebase(key, &self.lock)
    }
}

fn lock(args: &LockArgs) -> Result<ExitCode, Errors> {
    let policy = load_policy(args.policy.as_deref())?;
    let mut lock = if args.lockfile.is_file() {
        Lockfile::load(&args.lockfile).map_err(GateError::from)?
    } else {
        Lockfile::new()
    };
    if args.remote.download_dir.is_some() {
        return Err(GateError::Usage("--download-dir is for `modelgate scan`".into()).into());
    }
    let base = policy.base();
    let keys = PinKeys::for_lockfile(&args.lockfile, &base)
        .ignoring(&gate_files(&args.lockfile, args.policy.as_deref()));
    let mut files = 0;
    let mut failing = 0;
    for root in &args.paths {
        let (local, remote_inputs) = remote::split(std::slice::from_ref(root))?;
        let walked = walk::collect(&local, &policy.paths, &base)?;
        let mut artifacts = run::scan_all(&walked.targets, &policy, run::default_jobs()).map_err(Errors)?;
        let mut fetched = remote::scan(&remote_inputs, &args.remote, &policy, None, false).map_err(Errors)?;
        artifacts.append(&mut fetched.artifacts);
        failing +=
            artifacts.iter().flat_map(|a| &a.findings).filter(|f| policy.fail_on.fails(f.severity)).count();
        let scanned = keys.scanned(&artifacts);
        files += scanned.len();
        if scanned.is_empty() {
            return Err(GateError::Usage(format!(
                "nothing to pin under {}: no files (after the policy's include/exclude and the gate's own files)",
                walk::display(root)
            ))
            .into());
        }
        let pin = match fetched.models.first() {
            Some(m) => {
                let mut pin = pin_model(&m.key, &scanned);
                // Repositories only: a URL's query (a signature) must not end up in the lockfile.
                pin.source = m.commit.as_ref().map(|_| m.arg.clone());
                pin.revision = m.commit.clone();
                pin
            }
            None => pin_model(&keys.lock.key(root), &scanned),
        };
        lock.upsert(pin);
    }
    std::fs::write(&args.lockfile, lock.to_toml())
        .map_err(|source| GateError::Output { path: args.lockfile.clone(), source })?;
    say(&format!(
        "modelgate: pinned {files} file{} in {} model{} to {}\n",
        if files == 1 { "" } else { "s" },
        args.paths.len(),
        if args.paths.len() == 1 { "" } else { "s" },
        args.lockfile.display()
    ));
    if failing > 0 {
        warn(&format!(
            "modelgate: warning: the pinned files have {failing} finding(s) at or above {}; a pin records what a file is, not that it is safe (run `modelgate scan`)",
            policy.fail_on
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text summary (on standard error when the JSON report goes to standard output), and in
/// GitHub Actions the annotations, job summary and step outputs.
fn print_text(run: &report::Run<'_>, quiet: bool, json: Option<&Path>, color: bool) -> Result<(), GateError> {
    let json_on_stdout = json == Some(Path::new("-"));
    let mut text = report::text::render(run, quiet);
    if color && !json_on_stdout {
        text = report::text::paint(&text);
    }
    if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        text.push_str(&github(run)?);
    }
    // The human summary is not a report: when nobody reads it any more (`| head`), the reports
    // are complete and the verdict stands.
    if json_on_stdout {
        warn(text.trim_end_matches('\n'));
    } else if let Err(e) = write_stdout(&text) {
        warn(&format!("modelgate: warning: {e}; the verdict stands"));
    }
    Ok(())
}

/// `modelgate merge REPORT…`: the shards' reports as one scan's (`docs/scale.md`).
fn merge(args: &merge::MergeArgs) -> Result<ExitCode, Errors> {
    let started = report::cyclonedx::now_secs();
    let m = merge::read(&args.reports)?;
    let policy = load_policy(args.policy.as_deref())?;
    let run = report::Run {
        artifacts: &m.artifacts,
        fail_on: m.fail_on,
        verdict: m.verdict,
        signatures: &m.signatures,
        skipped: m.skipped,
        unmatched: &m.unmatched,
    };
    let out = Outputs {
        json: args.json.as_deref(),
        sarif: args.sarif.as_deref(),
        sarif_category: args.sarif_category.as_deref(),
        sbom: args.sbom.as_deref(),
        sbom_spec: args.sbom_spec,
        junit: args.junit.as_deref(),
        gitlab_codequality: args.gitlab_codequality.as_deref(),
        gitlab_sast: args.gitlab_sast.as_deref(),
        root_name: m.root_name.clone(),
    };
    write_reports(&out, &run, &policy, started, None)?;
    print_text(&run, args.quiet, args.json.as_deref(), false)?;
    Ok(match m.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

/// Where the reports go.
struct Outputs<'a> {
    json: Option<&'a Path>,
    sarif: Option<&'a Path>,
    sarif_category: Option<&'a str>,
    sbom: Option<&'a Path>,
    sbom_spec: report::cyclonedx::Spec,
    junit: Option<&'a Path>,
    gitlab_codequality: Option<&'a Path>,
    gitlab_sast: Option<&'a Path>,
    /// The BOM's root component.
    root_name: String,
}

impl Outputs<'_> {
    fn of_scan(args: &ScanArgs) -> Outputs<'_> {
        Outputs {
            json: args.json.as_deref(),
            sarif: args.sarif.as_deref(),
            sarif_category: args.sarif_category.as_deref(),
            sbom: args.sbom.as_deref(),
            sbom_spec: args.sbom_spec,
            junit: args.junit.as_deref(),
            gitlab_codequality: args.gitlab_codequality.as_deref(),
            gitlab_sast: args.gitlab_sast.as_deref(),
            root_name: root_name(&args.paths),
        }
    }
}

/// Every report the command line asked for; a shard's JSON report carries its shard object.
fn write_reports(
    args: &Outputs<'_>,
    run: &report::Run<'_>,
    policy: &Policy,
    started: i64,
    shard: Option<&merge::ShardInfo<'_>>,
) -> Result<(), GateError> {
    if let Some(path) = args.json {
        let json = report::json::render(run);
        write_output(path, &shard.map(|s| merge::with_shard(&json, s)).unwrap_or(json))?;
    }
    if let Some(path) = args.sarif {
        write_output(path, &report::sarif::render(run, policy, args.sarif_category))?;
    }
    if let Some(path) = args.sbom {
        write_output(path, &report::cyclonedx::render(run, args.sbom_spec, &args.root_name))?;
    }
    if let Some(path) = args.junit {
        write_output(path, &report::junit::render(run))?;
    }
    if let Some(path) = args.gitlab_codequality {
        write_output(path, &report::gitlab::codequality(run))?;
    }
    if let Some(path) = args.gitlab_sast {
        let stamp = |secs| report::cyclonedx::rfc3339(secs).trim_end_matches('Z').to_string();
        write_output(
            path,
            &report::gitlab::sast(run, &stamp(started), &stamp(report::cyclonedx::now_secs())),
        )?;
    }
    Ok(())
}

/// In GitHub Actions: the job summary and the step outputs `verdict` and `findings`; returns the
/// annotation workflow commands for the log.
fn github(run: &report::Run<'_>) -> Result<String, GateError> {
    let (annotations, dropped) = report::github::annotations(run);
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        append(&PathBuf::from(path), &report::github::summary(run, dropped))?;
    }
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT") {
        append(
            &PathBuf::from(path),
            &format!("verdict={}\nfindings={}\n", run.verdict.as_str(), run.failing()),
        )?;
    }
    Ok(annotations)
}

fn append(path: &Path, text: &str) -> Result<(), GateError> {
    use std::io::Write;
    let err = |source| GateError::Output { path: path.to_path_buf(), source };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)
}

/// `modelgate enforce REPORT`: the verdict a JSON report recorded, as an exit code (GitLab's
/// second job: reports come from a job that exits 0, the gate from this one).
fn enforce(report: &Path) -> Result<ExitCode, Errors> {
    let bad = |why: String| GateError::Input { path: report.to_path_buf(), why };
    let text = std::fs::read_to_string(report).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a modelgate JSON report: {e}")))?;
    if value["report_version"] != 1 {
        return Err(bad("not a modelgate JSON report (report_version 1)".into()).into());
    }
    let summary = &value["summary"];
    let verdict = value["verdict"].as_str().unwrap_or("");
    say(&format!(
        "modelgate: {} — {} file(s), {} finding(s) at or above {} (from {})\n",
        verdict.to_uppercase(),
        summary["artifacts"],
        summary["failing"],
        value["fail_on"].as_str().unwrap_or("?"),
        report.display()
    ));
    match verdict {
        "pass" => Ok(ExitCode::SUCCESS),
        "fail" => Ok(ExitCode::from(1)),
        other => Err(bad(format!("unknown verdict {other:?}")).into()),
    }
}

/// The name of what was scanned, for the BOM's root component.
fn root_name(paths: &[PathBuf]) -> String {
    match paths {
        [one] if one.is_dir() => std::fs::canonicalize(one)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| walk::display(one)),
        [one] => walk::display(one),
        _ => "modelgate scan".to_string(),
    }
}

fn write_output(path: &Path, content: &str) -> Result<(), GateError> {
    if path == Path::new("-") {
        return write_stdout(content);
    }
    std::fs::write(path, content).map_err(|source| GateError::Output { path: path.to_path_buf(), source })
}

/// Writes to standard output and flushes: a closed pipe or a full disk is an error here, not a
/// panic (`print!` panics) and not lost in a buffer at exit.
fn write_stdout(content: &str) -> Result<(), GateError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(content.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| GateError::Output { path: PathBuf::from("standard output"), source })
}

/// A message on standard output that is not the command's result (the exit code is): a closed
/// pipe only loses the message.
fn say(text: &str) {
    if let Err(e) = write_stdout(text) {
        warn(&format!("modelgate: warning: {e}"));
    }
}

/// A line on standard error; if standard error is gone too, there is nobody left to tell.
fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
