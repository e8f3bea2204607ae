//! `modelgate verify PATH`: one model, one signature, signers from the command line.

use crate::cli::VerifyArgs;
use crate::error::GateError;
use crate::signatures::{self, Outcome};
use crate::walk;
use modelgate_policy::signatures::{Pattern, Trust};
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

fn pattern(exact: &Option<String>, regexp: &Option<String>) -> Option<Pattern> {
    match (exact, regexp) {
        (Some(e), _) => Some(Pattern::Exact(e.clone())),
        (None, Some(r)) => Some(Pattern::Regexp(r.clone())),
        (None, None) => None,
    }
}

/// The signers the arguments name (clap has already made sure there is exactly one kind).
fn trust(args: &VerifyArgs) -> Result<Trust, GateError> {
    let identity = pattern(&args.identity, &args.identity_regexp);
    let issuer = pattern(&args.issuer, &args.issuer_regexp);
    let files = |paths: &[std::path::PathBuf]| paths.iter().map(|p| p.display().to_string()).collect();
    if !args.key.is_empty() {
        return Ok(Trust::Keys(files(&args.key)));
    }
    if !args.certificate_chain.is_empty() {
        return Ok(Trust::CaRoots { roots: files(&args.certificate_chain), identity });
    }
    match (identity, issuer) {
        (Some(identity), Some(issuer)) => Ok(Trust::Keyless {
            identity,
            issuer,
            trusted_root: args.trusted_root.as_ref().map(|p| p.display().to_string()),
        }),
        _ => Err(GateError::Usage(
            "keyless verification needs --identity (or --identity-regexp) and --issuer (or --issuer-regexp)"
                .into(),
        )),
    }
}

pub fn run(args: &VerifyArgs) -> Result<ExitCode, GateError> {
    let signers = signatures::signers(&trust(args)?)?;
    if !args.path.exists() {
        return Err(GateError::Input { path: args.path.clone(), why: "no such file or directory".into() });
    }
    let signature = match &args.signature {
        Some(s) => s.clone(),
        None => signatures::discover(&args.path).ok_or_else(|| {
            let looked: Vec<String> =
                signatures::candidates(&args.path).iter().map(|p| p.display().to_string()).collect();
            GateError::Input {
                path: args.path.clone(),
                why: format!(
                    "no signature found (looked for {}); name it with --signature",
                    looked.join(", ")
                ),
            }
        })?,
    };
    let result = signatures::verify_model(&args.path, &signature, &signers, &args.ignore_paths, None)?;
    let outcome = Outcome {
        model: walk::display(&args.path),
        signature: Some(walk::display(&signature)),
        result: result.map_err(|r| r.to_string()),
    };
    if args.json {
        let mut text = serde_json::to_string_pretty(&outcome.json()).unwrap_or_default();
        text.push('\n');
        print!("{text}");
    } else {
        print!("{}", render(&outcome, &args.path));
    }
    Ok(if outcome.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What was verified, precisely, or why not.
fn render(o: &Outcome, path: &Path) -> String {
    let mut out = String::new();
    let sig = o.signature.as_deref().unwrap_or("?");
    match &o.result {
        Err(why) => {
            let _ = writeln!(out, "NOT VERIFIED  {}", o.model);
            let _ = writeln!(out, "  signature:   {sig}");
            let _ = writeln!(out, "  reason:      {why}");
        }
        Ok(v) => {
            let _ = writeln!(out, "VERIFIED  {} ({}, {} mode)", o.model, v.format, v.signer.mode.as_str());
            let _ = writeln!(out, "  signature:   {sig}");
            let _ = writeln!(out, "  signer:      {}", v.signer);
            if v.signer.transparency_log || !v.signer.timestamps.is_empty() {
                let _ = writeln!(
                    out,
                    "  logged:      {}{}",
                    if v.signer.transparency_log {
                        "transparency-log entry verified"
                    } else {
                        "no log entry"
                    },
                    if v.signer.timestamps.is_empty() {
                        String::new()
                    } else {
                        format!("; signed at {}", v.signer.timestamps.join(", "))
                    }
                );
            }
            if let Some(d) = &v.root_digest {
                let _ = writeln!(out, "  root digest: {d}");
            }
            if let Some(s) = &v.serialization {
                let _ = writeln!(out, "  hashed as:   {s}");
            }
            if !v.ignore_paths.is_empty() {
                let _ = writeln!(out, "  signer left out: {}", v.ignore_paths.join(", "));
            }
            let _ = writeln!(out, "  files:       {}", v.files.len());
            for f in &v.files {
                let name = if f.path == "." { path.display().to_string() } else { f.path.clone() };
                let _ = writeln!(out, "    {} {}  {name}", f.algorithm, f.digest);
            }
            if !v.excluded.is_empty() {
                let _ = writeln!(
                    out,
                    "  warning: present but not signed (excluded by ignore paths): {}",
                    v.excluded.join(", ")
                );
            }
        }
    }
    out
}
