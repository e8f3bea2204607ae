//! Command-line interface.
//!
//! The doc comments on the argument types are clap's `--help` text, written for a terminal (bare
//! URLs, `hf://` schemes), not rustdoc links.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use clap::{Args, Parser, Subcommand};
use modelgate_policy::FailOn;
use std::path::PathBuf;

/// The version line: package version, the commit built from (when known) and the rule-data
/// digest (build.rs).
pub const VERSION: &str = if env!("MODELGATE_COMMIT").is_empty() {
    concat!(env!("CARGO_PKG_VERSION"), " (rules ", env!("MODELGATE_RULES_DIGEST"), ")")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("MODELGATE_COMMIT"),
        ", rules ",
        env!("MODELGATE_RULES_DIGEST"),
        ")"
    )
};

/// A CI/CD gate for ML model files: static scan, full hashes, policy verdict.
#[derive(Debug, Parser)]
#[command(name = "modelgate", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Colour in terminal text: auto (when standard output is a terminal and NO_COLOR is unset),
    /// always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", global = true)]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to colour text written to standard output.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
            }
        }
    }
}

// Parsed once per process and moved, never copied in bulk: the size of the largest variant does
// not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan model files and directories; exit 0 on pass, 1 on a policy violation, 2 on error.
    Scan(ScanArgs),
    /// Show what the parser saw in one file: members, formats, pickle opcodes, globals, calls;
    /// exit 0 when the file was read (whatever it holds), 2 when it could not be.
    Inspect(InspectArgs),
    /// Explain a rule (by id such as MG101 or by name); without one, list every rule.
    Explain(ExplainArgs),
    /// Pin the digests of models (files or directories) in the lockfile.
    Lock(LockArgs),
    /// Verify a model's signature (OpenSSF Model Signing, cosign bundle); exit 0 verified, 1 not, 2 error.
    Verify(VerifyArgs),
    /// Check, start or document a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Merge the JSON reports of `scan --shard K/N` into the reports of one scan; exit 0 pass,
    /// 1 fail, 2 if the shards are incomplete, overlap or come from different scans.
    Merge(crate::merge::MergeArgs),
    /// Exit with the verdict a JSON report recorded: 0 pass, 1 fail (for a separate gate job).
    Enforce {
        /// A report written by `modelgate scan --json`.
        report: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output: `modelgate man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (default ./modelgate.toml); exit 0 if usable, 2 if not.
    Check {
        /// The policy file.
        #[arg(conflicts_with = "policy")]
        file: Option<PathBuf>,
        /// The policy file, as `scan --policy` takes it.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Write a commented starter policy (default ./modelgate.toml; "-" for standard output).
    Init {
        /// Where to write it.
        file: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the default policy, rule by rule, as Markdown (the source of docs/policy.md).
    Doc,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Models to pin: each file is pinned as a file, each directory as one model directory, each
    /// hf://ORG/NAME[@REVISION] as a repository at its resolved commit, each https:// URL as a file.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// The lockfile to write (entries for other models are kept).
    #[arg(long, value_name = "FILE", default_value = "modelgate.lock")]
    pub lockfile: PathBuf,
    /// Policy file (its include/exclude patterns decide which files belong to a model).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Remote sources (hf://, https://).
    #[command(flatten)]
    pub remote: crate::remote::RemoteArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to scan (directories recursively), Hugging Face repositories
    /// (hf://ORG/NAME[@REVISION]) and https:// URLs (downloaded and scanned as they stream).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Policy file (default: ./modelgate.toml if it exists, else the built-in policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Fail on findings at or above this severity (overrides the policy).
    #[arg(long, value_name = "LEVEL", value_parser = parse_fail_on)]
    pub fail_on: Option<FailOn>,
    /// Write the JSON report to FILE ("-" for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a CycloneDX ML-BOM to FILE.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// CycloneDX version of the BOM.
    #[arg(long, value_name = "VERSION", default_value = "1.6")]
    pub sbom_spec: crate::report::cyclonedx::Spec,
    /// Write SARIF 2.1.0 to FILE (for GitHub code scanning).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// The SARIF run's category (automationDetails.id): code scanning keeps one set of alerts
    /// per category, so give scans of different folders different ones.
    #[arg(long, value_name = "NAME", requires = "sarif")]
    pub sarif_category: Option<String>,
    /// Write JUnit XML to FILE (one test case per file).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a GitLab Code Quality report to FILE.
    #[arg(long, value_name = "FILE")]
    pub gitlab_codequality: Option<PathBuf>,
    /// Write a GitLab SAST report (security-report schema 15.x) to FILE.
    #[arg(long, value_name = "FILE")]
    pub gitlab_sast: Option<PathBuf>,
    /// Fail on any difference from the lockfile: a changed, new or missing file.
    #[arg(long)]
    pub locked: bool,
    /// The lockfile checked by --locked (or `require-pins` in the policy).
    #[arg(long, value_name = "FILE", default_value = "modelgate.lock")]
    pub lockfile: PathBuf,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Files scanned in parallel (default: number of CPUs).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Remote sources (hf://, https://).
    #[command(flatten)]
    pub remote: crate::remote::RemoteArgs,
    /// Sharding and the verdict cache.
    #[command(flatten)]
    pub scale: crate::shard::ScaleArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_chain", "issuer", "issuer_regexp"])))]
pub struct VerifyArgs {
    /// The model: a directory (model_signing) or a single file (model_signing or cosign).
    pub path: PathBuf,
    /// The signature (default: PATH/model.sig, PATH.sig, PATH.sigstore.json, whichever exists).
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// Key mode: the signer's public key, PEM (repeat to accept any of several).
    #[arg(long, value_name = "PUB", conflicts_with_all = ["certificate_chain", "issuer", "issuer_regexp", "identity", "identity_regexp", "trusted_root"])]
    pub key: Vec<PathBuf>,
    /// Certificate mode: PEM certificates (repeatable). Only self-signed roots are trust anchors;
    /// intermediates may be given with them, but a chain verifies only if it ends at a given root.
    #[arg(long, value_name = "PEM", conflicts_with_all = ["issuer", "issuer_regexp", "trusted_root"])]
    pub certificate_chain: Vec<PathBuf>,
    /// The signer's identity (certificate SAN: a workflow URI or an email), exactly.
    #[arg(long, value_name = "ID", conflicts_with = "identity_regexp")]
    pub identity: Option<String>,
    /// The signer's identity, as a regular expression that must match all of it.
    #[arg(long, value_name = "REGEX")]
    pub identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer (https://token.actions.githubusercontent.com), exactly.
    #[arg(long, value_name = "URL", conflicts_with = "issuer_regexp")]
    pub issuer: Option<String>,
    /// Keyless: the OIDC issuer, as a regular expression that must match all of it.
    #[arg(long, value_name = "REGEX")]
    pub issuer_regexp: Option<String>,
    /// Keyless: a Sigstore trusted_root.json (default: the public-good root built in; no network).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Leave this path (relative to the model) out, like model_signing's --ignore-paths.
    #[arg(long = "ignore-path", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Print the result as JSON (the report's `signatures` entry) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The file to inspect.
    pub file: PathBuf,
    /// Print the full inventory as JSON instead of the opcode listing.
    #[arg(long)]
    pub json: bool,
    /// Opcodes listed per pickle stream before the listing is cut short (0 = all).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_opcodes: u64,
    /// Policy used to classify globals and list findings.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule id (MG101) or name (pickle-denied-global).
    pub rule: Option<String>,
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    s.parse()
}
