//! The `modelgate` command: a thin layer over the formats and policy crates. Every error goes
//! through one place ([`main`]) and exits 2; a policy violation exits 1; a pass exits 0.

mod cli;
mod error;
mod explain;
mod inspect;
mod report;
mod run;
mod walk;

use clap::Parser;
use cli::{Cli, Command, ScanArgs};
use error::GateError;
use modelgate_policy::{Policy, Verdict};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Scan(args) => scan(args),
        Command::Inspect(args) => inspect(args),
        Command::Explain(args) => explain(args.rule.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(errors) => {
            for e in errors.iter() {
                eprintln!("modelgate: error: {e}");
            }
            ExitCode::from(2)
        }
    }
}

/// Errors, possibly several (one per unreadable file).
struct Errors(Vec<GateError>);

impl Errors {
    fn iter(&self) -> impl Iterator<Item = &GateError> {
        self.0.iter()
    }
}

impl From<GateError> for Errors {
    fn from(e: GateError) -> Errors {
        Errors(vec![e])
    }
}

fn inspect(args: &cli::InspectArgs) -> Result<ExitCode, Errors> {
    let policy = load_policy(args.policy.as_deref())?;
    inspect::run(args, &policy)?;
    Ok(ExitCode::SUCCESS)
}

fn explain(rule: Option<&str>) -> Result<ExitCode, Errors> {
    print!("{}", explain::run(rule)?);
    Ok(ExitCode::SUCCESS)
}

fn load_policy(path: Option<&Path>) -> Result<Policy, GateError> {
    let default = PathBuf::from("modelgate.toml");
    match path {
        Some(p) => Ok(Policy::load(p)?),
        None if default.is_file() => Ok(Policy::load(&default)?),
        None => Ok(Policy::builtin()?),
    }
}

fn scan(args: &ScanArgs) -> Result<ExitCode, Errors> {
    let policy = load_policy(args.policy.as_deref())?;
    let fail_on = args.fail_on.unwrap_or(policy.fail_on);
    let targets = walk::collect(&args.paths)?;
    if targets.is_empty() {
        eprintln!(
            "modelgate: warning: no files found under {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let jobs = args.jobs.unwrap_or_else(run::default_jobs);
    if jobs == 0 {
        return Err(GateError::Usage("--jobs must be at least 1".into()).into());
    }
    let artifacts = run::scan_all(&targets, &policy, jobs).map_err(Errors)?;
    let verdict = Verdict::of(artifacts.iter().flat_map(|a| &a.findings), fail_on);
    let run = report::Run {
        artifacts: &artifacts,
        fail_on,
        verdict,
    };
    if let Some(path) = &args.json {
        write_output(path, &report::json::render(&run))?;
    }
    let to_stdout_json = args.json.as_deref() == Some(Path::new("-"));
    let text = report::text::render(&run, args.quiet);
    if to_stdout_json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    Ok(match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

fn write_output(path: &Path, content: &str) -> Result<(), GateError> {
    if path == Path::new("-") {
        print!("{content}");
        return Ok(());
    }
    std::fs::write(path, content).map_err(|source| GateError::Output {
        path: path.to_path_buf(),
        source,
    })
}
