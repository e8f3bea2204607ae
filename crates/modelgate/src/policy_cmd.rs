//! `modelgate policy check|init|doc`.

use crate::cli::PolicyCommand;
use crate::error::GateError;
use crate::report::one_line;
use modelgate_policy::suppress::Date;
use modelgate_policy::{Catalogue, Policy};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(command: &PolicyCommand) -> Result<ExitCode, GateError> {
    match command {
        PolicyCommand::Check { file, policy } => check(file.as_deref().or(policy.as_deref())),
        PolicyCommand::Init { file, force } => init(file.as_deref(), *force),
        PolicyCommand::Doc => {
            print!("{}", doc());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(file: Option<&Path>) -> Result<ExitCode, GateError> {
    let path = file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("modelgate.toml"));
    let policy = Policy::load(&path)?;
    let today = Date::today();
    let expired = policy.suppressions.iter().filter(|s| s.expired(today)).count();
    let (allow, deny) = policy.pickle.len();
    println!(
        "{}: ok — fail-on {}, {} rule setting(s), {} suppression(s) ({expired} expired), {} trusted pickle global(s)/module(s), {} other trusted name(s) (Keras modules, ONNX domains, TF ops), {} signature requirement(s), require-pins {}, {} include / {} exclude pattern(s); built-in lists: {allow} allowed and {deny} denied pickle globals",
        path.display(),
        policy.fail_on,
        policy.rules.len(),
        policy.suppressions.len(),
        policy.extra_globals.len() + policy.extra_modules.len(),
        policy.extra_names.values().map(Vec::len).sum::<usize>(),
        policy.signatures.len(),
        policy.require_pins,
        policy.paths.patterns.0.len(),
        policy.paths.patterns.1.len(),
    );
    if expired > 0 {
        eprintln!("modelgate: warning: {expired} suppression(s) have expired and no longer apply");
    }
    Ok(ExitCode::SUCCESS)
}

/// A starter policy: every key, commented, with the defaults.
pub const STARTER: &str = r#"# modelgate.toml: the policy `modelgate scan` enforces in this repository.
# Every key is optional; the values shown commented out are the defaults.
# Reference: docs/policy.md. Check this file with `modelgate policy check`.

# Fail the pipeline on findings at or above this severity:
# critical, high, medium, low, info, or none (report only).
# fail-on = "high"

# Fail on any file that modelgate.lock does not pin exactly (same as `scan --locked`).
# Create or update the lockfile with `modelgate lock PATH...`.
# require-pins = false

# Which files to scan, gitignore-style, relative to where modelgate runs.
# include = ["models/"]
# exclude = ["*.md", "docs/"]

# Change a rule's severity, or switch it off. Lowering a severity or switching a rule off needs
# a reason; `modelgate explain` lists the rules.
# [rules.MG301]          # torchscript-code
# severity = "low"
# reason = "we ship TorchScript models built by our own training pipeline"

# Trust more pickle globals: an exact `module.name`, or a module and its submodules. Globals on
# the built-in deny-list cannot be trusted this way.
# [[allow.pickle]]
# global = "mylab.models.ResNetConfig"
# reason = "our config dataclass, pickled with the checkpoint"
#
# [[allow.pickle]]
# module = "mylab.models"
# reason = "our model classes"

# Trust named Keras config modules, ONNX operator domains and TensorFlow ops.
# [[allow.onnx-domain]]
# name = "com.mycompany"
# reason = "our custom kernels, installed in the serving image"

# Require signatures (OpenSSF Model Signing `model.sig`, or cosign bundles for single files).
# Several tables covering one model: a signature by any of their signers is accepted.
# Reference: docs/signatures.md.
# [[signatures]]
# path = "models/*"
# identity-regexp = 'https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v.*'
# issuer = "https://token.actions.githubusercontent.com"
#
# [[signatures]]
# path = "vendor/**"
# keys = ["keys/vendor-release.pub"]

# Accept a finding for some files. Bind it to the file's digest so that a changed file re-opens
# the finding, and give it an expiry date: an expired suppression stops applying and is itself
# reported.
# [[suppress]]
# rule = "MG301"
# path = "models/**/*.pt"
# sha256 = "<64 hex digits>"
# reason = "reviewed TorchScript export, ticket ML-123"
# expires = 2027-06-30
"#;

fn init(file: Option<&Path>, force: bool) -> Result<ExitCode, GateError> {
    let path = file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("modelgate.toml"));
    if path == Path::new("-") {
        print!("{STARTER}");
        return Ok(ExitCode::SUCCESS);
    }
    if path.exists() && !force {
        return Err(GateError::Usage(format!("{} exists; use --force to overwrite it", path.display())));
    }
    std::fs::write(&path, STARTER).map_err(|source| GateError::Output { path: path.clone(), source })?;
    println!("modelgate: wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// docs/policy.md: the policy file reference and every rule of the default policy, generated
/// from the catalogue so that the two cannot drift.
pub fn doc() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# The default policy and the policy file");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "<!-- Generated by `modelgate policy doc` from crates/modelgate-policy/data/rules.toml; do not edit.\n     The test suite fails if this file is out of date: regenerate with\n     `cargo run -q -p modelgate -- policy doc > docs/policy.md`. -->"
    );
    let _ = writeln!(out);
    out.push_str(POLICY_FILE_REFERENCE);
    let _ = writeln!(out);
    let _ = writeln!(out, "## Rules of the default policy");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "The default threshold is `high`: a finding of severity `high` or `critical` fails the gate."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| id | name | default severity | finding |");
    let _ = writeln!(out, "|---|---|---|---|");
    for r in Catalogue::builtin().rules() {
        let _ = writeln!(
            out,
            "| [{}](#{}) | `{}` | {} | {} |",
            r.id,
            r.id.to_lowercase(),
            r.name,
            r.severity,
            r.summary
        );
    }
    for r in Catalogue::builtin().rules() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### {}", r.id);
        let _ = writeln!(out);
        let _ = writeln!(out, "`{}` — **{}** by default. {}.", r.name, r.severity, r.summary);
        let _ = writeln!(out);
        let _ = writeln!(out, "**What it detects.** {}", one_line(&r.description));
        let _ = writeln!(out);
        let _ = writeln!(out, "**Why it matters.** {}", one_line(&r.why));
        let _ = writeln!(out);
        let _ = writeln!(out, "**How to fix or allow it.** {}", one_line(&r.fix));
        let mut refs: Vec<String> = r.cwe.map(|c| format!("CWE-{c}")).into_iter().collect();
        refs.extend(r.references.iter().cloned());
        if !refs.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "References: {}.", refs.join(", "));
        }
    }
    out
}

const POLICY_FILE_REFERENCE: &str = r#"modelgate decides pass or fail from its rules and a policy. Without a policy file the built-in
defaults below apply. A `modelgate.toml` in the working directory (or `--policy FILE`) adjusts
them; `modelgate policy init` writes a commented starter file and `modelgate policy check`
validates one. Every unknown key, bad value and unusable entry is reported at once, one per line as
`file:line:column: message` (exit 2).

## The policy file (`modelgate.toml`)

| key | type | meaning |
|---|---|---|
| `fail-on` | `critical` \| `high` \| `medium` \| `low` \| `info` \| `none` | fail on findings at or above this severity (default `high`); `--fail-on` overrides it |
| `require-pins` | bool | fail on any difference from `modelgate.lock`, as `scan --locked` does (default `false`) |
| `include` | list of patterns | scan only files matching these gitignore-style patterns (default: every file) |
| `exclude` | list of patterns | do not scan files or directories matching these gitignore-style patterns (`.git` is never scanned) |
| `[rules.ID]` | table | `severity` (a new severity), `enabled` (`false` switches the rule off), `reason` (required to lower a severity or switch a rule off); `ID` is a rule id (`MG301`) or name |
| `[[allow.pickle]]` | list of tables | `global = "module.name"` (exact) or `module = "pkg"` (the module and its submodules), with a `reason`. Adds trust for globals the built-in allow-list does not know (in pickles, and in the names a skops `schema.json` imports); a global on the deny-list, or a name that walks attributes to one, cannot be trusted this way |
| `[[allow.keras-module]]`, `[[allow.onnx-domain]]`, `[[allow.tf-op]]` | lists of tables | `name`, `reason`: trust a Keras config module and its submodules (MG402; never a module on the pickle deny-list), an ONNX operator domain, or a TensorFlow/TFLite custom op (MG410, MG411; ops that do I/O or run Python stay reported) |
| `[[signatures]]` | list of tables | models that must be signed, and by whom: `path` (glob of model directories or files, `*` within a directory, `**` across), and one kind of signer: `identity`/`identity-regexp` with `issuer`/`issuer-regexp` (Sigstore keyless; optional `trusted-root`), `keys` (public key files), or `ca-roots` (root certificate files, optionally with `identity`/`identity-regexp` for the SAN). Optional `signature` (where the signature is) and `ignore-paths`. Regular expressions must match the whole value. A model without a valid signature by an allowed signer is reported (MG801–MG807); see docs/signatures.md |
| `[[suppress]]` | list of tables | `rule` (id or name), `path` (glob: `*` stays within a directory, `**` crosses them), optional `sha256` (the file's digest: a changed file re-opens the finding), `reason` (required), optional `expires` (`2027-06-30`: after that day the suppression no longer applies and is reported as MG704). Suppressed findings stay in every report, marked, and do not count towards the verdict |

Files named explicitly on the command line are always scanned; `include` and `exclude` filter
what is found by walking directories and the files of remote repositories (`hf://`).

### Paths

Every path the policy matches — `[[signatures]]` and `[[suppress]]` globs, `include` and
`exclude`, and the paths in every report — is one canonical key per file, **relative to the
policy file's directory** (the working directory when no policy file is used; the lockfile's
own directory for pins). However a path is spelt on the command line (`models/x`, `./models/x`,
`models//x`, `models/../models/x`, `models/x/.`, `$PWD/models/x`), and through whichever
symbolic link to a directory it was reached, the key is the same: every directory on the way is
resolved as the kernel resolves it, and a file keeps its own name (a link to a file is reported
under the link's name, as a loader opens it). A path outside the base directory is reported
absolute, and only unanchored patterns (`*.tmp`) apply to it.

An entry that matched nothing that was scanned — a `[[signatures]]` table that covered no model,
a `[[suppress]]` entry that named no scanned file, a pinned model none of whose files was
scanned (`--locked`) — is listed in the summary and in the JSON report's `unmatched`, so a
mistyped path cannot switch a requirement off unnoticed.

Walking a directory follows symbolic links, to files and to directories, as a loader would. A
directory reached a second time (a link loop, two links to one place) is recognised by its
device and inode and walked once. A link to a directory outside the scanned directory is
reported (MG705); what it leads to is scanned and reported under its real path. What the walk
leaves out on purpose — `.git` directories, what `include`/`exclude` filter away, directories
reached again — is counted in the summary (`not scanned: …`) and in the JSON report's
`summary.skipped`.

### Pins (`modelgate.lock`)

`modelgate lock [PATH]...` writes `modelgate.lock` (TOML, sorted, stable diffs). Each path is
one model: a file is pinned by its size, SHA-256 and format; a directory by every file's size,
SHA-256 and format plus its OpenSSF Model Signing root digest (SHA-256 over the raw per-file
SHA-256 digests ordered by path components, leaving out `.git`, `.gitattributes`, `.github`,
`.gitignore` and `model.sig` at the top), so pins and signatures talk about the same value. A Git
LFS pointer is pinned by the object it names: the pointer's `oid` must equal the pin.
`modelgate scan --locked` (or `require-pins = true`) then reports every changed (MG701), new
(MG702) and missing (MG703) file with the pinned and actual digests. Re-running `lock` after an
intended update is the workflow, like `cargo update` and `Cargo.lock`. A Hugging Face repository
(`modelgate lock hf://org/name@main`) is pinned as a directory under `hf://org/name`, with the
commit it resolved to (`revision`) and what was asked for (`source`); `scan --locked hf://org/name`
then fetches that commit (see [remote.md](remote.md)).
"#;
