//! `scan --shard K/N`: one stable, balanced part of the inputs (`docs/scale.md`).
//!
//! Every shard lists all the inputs (a directory walk, a hub listing: cheap next to reading the
//! bytes), groups the files into *units* that are never split, and deals the units out by bytes
//! the same way on every shard. The listing is also hashed into the input fingerprint that
//! `modelgate merge` compares, so shards that saw different inputs are refused.
//!
//! A unit is what model-level checks need to see whole: below each directory given on the
//! command line, the shallowest directory that directly holds a scanned file, or that a
//! `[[signatures]]` table covers, owns everything below it (a model directory with its
//! `variables/` or `onnx/` subdirectories, a signed tree with its `model.sig`). The files
//! directly in a directory given on the command line are one unit together (all of it, when a
//! `[[signatures]]` table covers that directory). A file named on the command line is a unit
//! of its own, and so is each remote source (a repository at one commit, a URL).

use crate::error::GateError;
use crate::remote::{Input, RemoteArgs};
use crate::walk::Target;
use modelgate_policy::Policy;
use modelgate_remote::{Source, hub};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `scan` options for scaling out.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Scan only shard K of N (K from 1), or `auto` to read the index from the CI engine
    /// (JOB_COMPLETION_INDEX on Kubernetes, CI_NODE_INDEX/CI_NODE_TOTAL on GitLab). Needs --json;
    /// combine the shards' reports with `modelgate merge`.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// With --shard auto on Kubernetes: the number of shards (the Job's completions).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Cache inventories by content in DIR, or in an object store (s3://, gs://, az://BUCKET/PREFIX)
    /// that shards on other machines share (default: $MODELGATE_CACHE).
    #[arg(long, value_name = "DIR|URL")]
    pub cache: Option<PathBuf>,
    /// Size limit of the cache, such as 500M or 20G (default: $MODELGATE_CACHE_MAX_SIZE, else 1G).
    #[arg(long, value_name = "SIZE")]
    pub cache_max_size: Option<String>,
}

/// Which shard this run is: `index` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub index: usize,
    pub count: usize,
}

/// Most shards a run may be split into.
pub const MAX_SHARDS: usize = 100_000;

impl Spec {
    /// `K/N` (1 ≤ K ≤ N), or `auto`: the engine's own index and count (`docs/scale.md`).
    pub fn parse(arg: &str, shards: Option<usize>) -> Result<Spec, GateError> {
        let usage = |why: String| GateError::Usage(format!("--shard {arg}: {why}"));
        if arg == "auto" {
            return Spec::from_env(shards, |k| std::env::var(k).ok()).map_err(usage);
        }
        if shards.is_some() {
            return Err(usage("--shards goes with --shard auto (K/N already says how many)".into()));
        }
        let (k, n) = arg.split_once('/').ok_or_else(|| usage("expected K/N, such as 2/8, or auto".into()))?;
        let number = |s: &str| s.trim().parse::<usize>().map_err(|_| usage(format!("{s:?} is not a number")));
        Spec::new(number(k)?, number(n)?).map_err(usage)
    }

    fn new(index: usize, count: usize) -> Result<Spec, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("the number of shards must be between 1 and {MAX_SHARDS}"));
        }
        if index == 0 || index > count {
            return Err(format!("shard {index} of {count}: shards count from 1 to {count}"));
        }
        Ok(Spec { index, count })
    }

    /// Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX` (from 0); the count is `--shards N`
    /// or `JOB_COMPLETIONS` (which the Job sets to its `completions`: Kubernetes does not pass
    /// it on by itself). GitLab's `parallel:` sets `CI_NODE_INDEX` (from 1) and `CI_NODE_TOTAL`.
    fn from_env(shards: Option<usize>, var: impl Fn(&str) -> Option<String>) -> Result<Spec, String> {
        let number = |name: &str, v: String| {
            v.trim().parse::<usize>().map_err(|_| format!("{name}={v:?} is not a number"))
        };
        if let Some(v) = var("JOB_COMPLETION_INDEX") {
            let index = number("JOB_COMPLETION_INDEX", v)?;
            let count = match (shards, var("JOB_COMPLETIONS")) {
                (Some(n), _) => n,
                (None, Some(v)) => number("JOB_COMPLETIONS", v)?,
                (None, None) => {
                    return Err("JOB_COMPLETION_INDEX is set: give the number of shards with --shards N (or set JOB_COMPLETIONS)".into());
                }
            };
            return Spec::new(index + 1, count);
        }
        if let (Some(i), Some(n)) = (var("CI_NODE_INDEX"), var("CI_NODE_TOTAL")) {
            let count = number("CI_NODE_TOTAL", n)?;
            if shards.is_some_and(|s| s != count) {
                return Err(format!("--shards {} contradicts CI_NODE_TOTAL={count}", shards.unwrap_or(0)));
            }
            return Spec::new(number("CI_NODE_INDEX", i)?, count);
        }
        Err("neither JOB_COMPLETION_INDEX (Kubernetes) nor CI_NODE_INDEX/CI_NODE_TOTAL (GitLab) is set; give --shard K/N (a GitHub matrix passes it explicitly)".into())
    }
}

/// One unit: what is never split across shards.
#[derive(Debug, Clone)]
struct Unit {
    /// The directory, file or remote source, as reported.
    name: String,
    bytes: u64,
    /// Shard (from 0).
    shard: usize,
}

/// What this shard scans, and what it needs to know about the others.
pub struct Plan {
    pub spec: Spec,
    /// SHA-256 of the whole listing (every unit, file, size, and remote commit and digest).
    pub fingerprint: String,
    units: Vec<Unit>,
    /// Local directory units by name (for [`Plan::owns`]).
    by_name: BTreeMap<String, usize>,
}

/// Splits the inputs. The remote inputs that stay are rewritten to the commit they were listed
/// at, so the scan fetches exactly what was fingerprinted.
pub fn plan(
    spec: Spec,
    root_keys: &[String],
    targets: Vec<Target>,
    remote: Vec<Input>,
    args: &RemoteArgs,
    policy: &Policy,
) -> Result<(Plan, Vec<Target>, Vec<Input>), GateError> {
    let roots = root_keys;
    let parents: BTreeSet<String> = targets.iter().map(|t| parent(&t.display).to_string()).collect();
    let mut hasher = Sha256::new();
    hasher.update(b"modelgate-inputs 1\n");
    let mut units: BTreeMap<String, u64> = BTreeMap::new();
    let mut of_target = Vec::with_capacity(targets.len());
    for t in &targets {
        let size = std::fs::metadata(&t.path)
            .map_err(|e| GateError::Input { path: t.path.clone(), why: e.to_string() })?
            .len();
        let unit = unit_of(&t.display, roots, &parents, policy);
        *units.entry(unit.clone()).or_default() += size;
        hasher.update(format!("file {:?} {size} in {unit:?}\n", t.display).as_bytes());
        of_target.push(unit);
    }
    let mut remote_units = Vec::with_capacity(remote.len());
    let mut pinned_inputs = Vec::with_capacity(remote.len());
    let http = if remote.iter().any(|r| matches!(r.source, Source::Hub { .. })) {
        Some(crate::remote::client(args)?)
    } else {
        None
    };
    hasher.update(format!("include {:?} exclude {:?}\n", args.include, args.exclude).as_bytes());
    for input in remote {
        match (&input.source, &http) {
            (Source::Hub { repo, revision }, Some(http)) => {
                let rev = revision.clone().unwrap_or_else(|| "main".into());
                let listing = hub::list(http, repo, &rev)
                    .map_err(|e| GateError::Input { path: input.arg.clone().into(), why: e.to_string() })?;
                let name = format!("hf://{repo}@{}", listing.commit);
                let bytes: u64 = listing.files.iter().filter_map(|f| f.size).sum();
                hasher.update(format!("repo {name:?}\n").as_bytes());
                for f in &listing.files {
                    hasher.update(
                        format!("  {:?} {:?} {:?} {:?}\n", f.path, f.size, f.sha256, f.git_blob).as_bytes(),
                    );
                }
                remote_units.push((name, bytes));
                let pinned = Input {
                    arg: input.arg.clone(),
                    source: Source::Hub { repo: repo.clone(), revision: Some(listing.commit.clone()) },
                };
                pinned_inputs.push(pinned);
            }
            _ => {
                // A URL's size is not known before it is fetched: it weighs nothing in the split.
                hasher.update(format!("url {:?}\n", input.arg).as_bytes());
                remote_units.push((input.arg.clone(), 0));
                pinned_inputs.push(input);
            }
        }
    }
    let mut all: Vec<Unit> = units.into_iter().map(|(name, bytes)| Unit { name, bytes, shard: 0 }).collect();
    let first_remote = all.len();
    all.extend(remote_units.into_iter().map(|(name, bytes)| Unit { name, bytes, shard: 0 }));
    deal(&mut all, spec.count);
    let mine = |u: &Unit| u.shard + 1 == spec.index;
    let by_name: BTreeMap<String, usize> =
        all[..first_remote].iter().enumerate().map(|(i, u)| (u.name.clone(), i)).collect();
    let kept_targets: Vec<Target> = targets
        .into_iter()
        .zip(&of_target)
        .filter(|(_, unit)| by_name.get(*unit).is_some_and(|&i| mine(&all[i])))
        .map(|(t, _)| t)
        .collect();
    let kept_remote: Vec<Input> = pinned_inputs
        .into_iter()
        .zip(&all[first_remote..])
        .filter(|(_, u)| mine(u))
        .map(|(i, _)| i)
        .collect();
    let fingerprint = crate::merge::hex(&hasher.finalize());
    Ok((Plan { spec, fingerprint, units: all, by_name }, kept_targets, kept_remote))
}

/// Deals units out by bytes: largest first, each to the shard with the fewest bytes so far (the
/// lowest-numbered on a tie), so every shard computes the same split.
fn deal(units: &mut [Unit], count: usize) {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        units[b].bytes.cmp(&units[a].bytes).then_with(|| units[a].name.cmp(&units[b].name))
    });
    let mut load = vec![(0u64, 0usize); count];
    for i in order {
        let (shard, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(s, (bytes, n))| (*bytes, *n, *s))
            .map(|(s, l)| (s, *l))
            .unwrap_or((0, (0, 0)));
        units[i].shard = shard;
        load[shard].0 += units[i].bytes;
        load[shard].1 += 1;
    }
}

/// The directory holding a file (`.` at the top).
fn parent(display: &str) -> &str {
    match display.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// The unit a file belongs to (see the module documentation).
fn unit_of(display: &str, roots: &[String], parents: &BTreeSet<String>, policy: &Policy) -> String {
    let root = roots
        .iter()
        .filter(|r| {
            r.as_str() == display
                || *r == "."
                || display.starts_with(&format!("{}/", r.trim_end_matches('/')))
        })
        .max_by_key(|r| r.len());
    let Some(root) = root else { return display.to_string() };
    if root == display {
        return display.to_string(); // named on the command line
    }
    let covered = |dir: &str| policy.signatures.iter().any(|s| s.covers(dir));
    if covered(root) {
        return root.clone();
    }
    // Below the root, down to the file's directory: the first that holds a file or is signed.
    let start = if root == "." { 0 } else { root.len() + 1 };
    for (i, c) in display.char_indices().skip(start) {
        if c == '/' && i > 0 && (parents.contains(&display[..i]) || covered(&display[..i])) {
            return display[..i].to_string();
        }
    }
    // A file directly in the root: the root's own files are one unit (a README next to the
    // model directories does not make the whole tree one unit).
    root.clone()
}

impl Plan {
    /// The units this shard scans, as paths (the roots its signature checks look under).
    pub fn local_units(&self) -> Vec<String> {
        self.by_name
            .iter()
            .filter(|&(_, &i)| self.units[i].shard + 1 == self.spec.index)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether a file the lockfile pins but that no shard found (reported path) is this
    /// shard's to report: the shard of the unit it would be in, or shard 1 when it would be in
    /// none. Remote files are only ever checked against this shard's own sources.
    pub fn owns(&self, shown: &str) -> bool {
        if shown.contains("://") {
            return true;
        }
        let mut best: Option<usize> = None;
        for (name, &i) in &self.by_name {
            let inside = name == shown
                || (name == "." && !Path::new(shown).is_absolute())
                || shown.starts_with(&format!("{}/", name.trim_end_matches('/')));
            // The deepest: the root's own files are a unit named after the root.
            if inside && best.is_none_or(|b| self.units[b].name.len() < name.len()) {
                best = Some(i);
            }
        }
        match best {
            Some(i) => self.units[i].shard + 1 == self.spec.index,
            None => self.spec.index == 1,
        }
    }

    /// Every unit and its shard, for the report.
    pub fn assignment(&self) -> Vec<(String, usize, u64)> {
        self.units.iter().map(|u| (u.name.clone(), u.shard + 1, u.bytes)).collect()
    }
}

/// The policy's identity for `merge`: the policy file's bytes (or the built-in policy's), the
/// threshold, and whether and against which lockfile pins were checked.
pub fn policy_hash(policy_file: Option<&Path>, fail_on: &str, locked: bool, lockfile: &Path) -> String {
    let mut h = Sha256::new();
    h.update(b"modelgate-policy 1\n");
    let default = PathBuf::from("modelgate.toml");
    let file = policy_file.or_else(|| default.is_file().then_some(default.as_path()));
    match file.map(std::fs::read) {
        Some(Ok(bytes)) => {
            h.update(b"file\n");
            h.update(&bytes);
        }
        Some(Err(_)) | None => h.update(b"builtin\n"),
    }
    h.update(format!("\nfail-on {fail_on}\nlocked {locked}\n").as_bytes());
    if locked {
        h.update(std::fs::read(lockfile).unwrap_or_default());
    }
    crate::merge::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shard_arguments_parse() {
        assert_eq!(Spec::parse("2/8", None).unwrap(), Spec { index: 2, count: 8 });
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "1/4/2"] {
            assert!(Spec::parse(bad, None).is_err(), "{bad}");
        }
        assert!(Spec::parse("1/4", Some(4)).is_err());
    }

    #[test]
    fn engines_index_and_count() {
        let k8s = [("JOB_COMPLETION_INDEX", "0")];
        assert_eq!(Spec::from_env(Some(3), env(&k8s)).unwrap(), Spec { index: 1, count: 3 });
        assert!(Spec::from_env(None, env(&k8s)).is_err());
        let k8s = [("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "3")];
        assert_eq!(Spec::from_env(None, env(&k8s)).unwrap(), Spec { index: 3, count: 3 });
        let k8s = [("JOB_COMPLETION_INDEX", "3"), ("JOB_COMPLETIONS", "3")];
        assert!(Spec::from_env(None, env(&k8s)).is_err());
        let gitlab = [("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "4")];
        assert_eq!(Spec::from_env(None, env(&gitlab)).unwrap(), Spec { index: 4, count: 4 });
        assert!(Spec::from_env(Some(5), env(&gitlab)).is_err());
        assert!(Spec::from_env(None, env(&[])).is_err());
    }

    #[test]
    fn units_are_the_shallowest_directories_with_files() {
        let targets = [
            "reg/README.md",
            "reg/a/config.json",
            "reg/a/variables/v.index",
            "reg/b/x/m.pt",
            "reg/b/x/y/n.pt",
            "one.pt",
        ];
        let parents: BTreeSet<String> = targets.iter().map(|t| parent(t).to_string()).collect();
        let roots = vec!["reg".to_string(), "one.pt".to_string()];
        let policy = Policy::builtin().unwrap();
        let units: Vec<String> = targets.iter().map(|t| unit_of(t, &roots, &parents, &policy)).collect();
        assert_eq!(units, ["reg", "reg/a", "reg/a", "reg/b/x", "reg/b/x", "one.pt"]);
        let targets = ["config.json", "sub/w.bin"];
        let parents: BTreeSet<String> = targets.iter().map(|t| parent(t).to_string()).collect();
        let roots = vec![".".to_string()];
        let units: Vec<String> = targets.iter().map(|t| unit_of(t, &roots, &parents, &policy)).collect();
        assert_eq!(units, [".", "sub"]);
        // A signed directory is never split.
        let signed = Policy::parse(
            "[[signatures]]\npath = \"reg\"\nidentity = \"a@b.c\"\nissuer = \"https://x\"\n",
            "test",
        )
        .unwrap();
        let roots = vec!["reg".to_string()];
        let parents: BTreeSet<String> = ["reg", "reg/a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unit_of("reg/a/m.pt", &roots, &parents, &signed), "reg");
        let parents: BTreeSet<String> = ["reg/a", "reg/a/b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unit_of("reg/a/b/m.pt", &roots, &parents, &signed), "reg");
    }

    #[test]
    fn dealing_is_balanced_and_stable() {
        let mut units: Vec<Unit> = [("a", 10), ("b", 7), ("c", 5), ("d", 3), ("e", 2)]
            .iter()
            .map(|(n, b)| Unit { name: n.to_string(), bytes: *b, shard: 9 })
            .collect();
        deal(&mut units, 2);
        let shards: Vec<usize> = units.iter().map(|u| u.shard).collect();
        assert_eq!(shards, [0, 1, 1, 0, 1]); // 13 and 14 bytes
        let mut again = units.clone();
        again.reverse();
        deal(&mut again, 2);
        again.reverse();
        assert_eq!(again.iter().map(|u| u.shard).collect::<Vec<_>>(), shards);
    }
}
