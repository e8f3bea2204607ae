//! Scans the files to check, in parallel, and evaluates each against the policy.

use crate::error::GateError;
use crate::walk::{OutsideLink, Target};
use modelgate_formats::stream::hex;
use modelgate_formats::{Detail, Format, Node, Note, NoteKind, Options};
use modelgate_policy::pins::ScannedFile;
use modelgate_policy::{Finding, Policy, RuleId, evaluate};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One scanned file and what the policy found in it.
pub struct Artifact {
    /// The path as reported.
    pub path: String,
    /// The inventory.
    pub node: Node,
    /// Findings, sorted.
    pub findings: Vec<Finding>,
    /// A file the lockfile pins but that was not found (the node is empty).
    pub missing: bool,
    /// Where a downloaded file came from; `None` for local files.
    pub origin: Option<Origin>,
}

/// Where a remote artifact came from (`docs/remote.md`).
#[derive(Debug, Clone)]
pub struct Origin {
    /// The URL it was downloaded from, without query or credentials.
    pub url: String,
    /// The path the lockfile pins it under: `hf://org/name/<path>` (no revision), or the URL.
    pub pin_key: String,
    /// For a file of a Hugging Face repository: the repository.
    pub repo: Option<HubRepo>,
    /// Not downloaded: the source listed its SHA-256 and the inventory came from the cache
    /// (`docs/scale.md`).
    pub from_cache: bool,
}

/// A Hugging Face repository at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    /// `org/name`.
    pub id: String,
    /// The commit (lowercase hex).
    pub commit: String,
    /// The reported path of its root: `hf://org/name@<commit>`.
    pub root: String,
    /// The hub endpoint, without a trailing slash.
    pub endpoint: String,
    /// For a source other than a Hugging Face repository (an OCI artifact, `docs/remote.md`): its
    /// package URL; `id` is then its name and `endpoint` its location, a `distribution` reference.
    pub purl: Option<String>,
}

impl Artifact {
    /// The path the lockfile knows the file by: its reported path, or a remote file's key.
    pub fn pin_key(&self) -> &str {
        self.origin.as_ref().map_or(&self.path, |o| &o.pin_key)
    }

    /// What the pin check needs to know about the file.
    pub fn scanned_file(&self) -> ScannedFile {
        let (lfs_oid, lfs_size) = match &self.node.detail {
            Detail::LfsPointer { oid, size } => (oid.strip_prefix("sha256:").map(str::to_string), *size),
            _ => (None, None),
        };
        ScannedFile {
            path: self.pin_key().to_string(),
            size: lfs_size.unwrap_or(self.node.size),
            sha256: hex(&self.node.sha256),
            lfs_oid,
            format: self.node.format.as_str().to_string(),
        }
    }
}

/// Scans every target with `jobs` worker threads. Results come back in target order; the first
/// file that cannot be read makes the whole run an error (after the others finish).
pub fn scan_all(targets: &[Target], policy: &Policy, jobs: usize) -> Result<Vec<Artifact>, Vec<GateError>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Artifact, GateError>>>> =
        targets.iter().map(|_| Mutex::new(None)).collect();
    let workers = jobs.clamp(1, targets.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = targets.get(i) else { break };
                    let result = scan_one(target, policy);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    let mut artifacts = Vec::with_capacity(targets.len());
    let mut errors = Vec::new();
    for (slot, target) in slots.into_iter().zip(targets) {
        match slot.into_inner().ok().flatten() {
            Some(Ok(a)) => artifacts.push(a),
            Some(Err(e)) => errors.push(e),
            None => errors.push(GateError::Input {
                path: target.path.clone(),
                why: "the scan did not complete".into(),
            }),
        }
    }
    if errors.is_empty() { Ok(artifacts) } else { Err(errors) }
}

fn scan_one(target: &Target, policy: &Policy) -> Result<Artifact, GateError> {
    let scan = || {
        modelgate_formats::scan_file(&target.path, Options::default())
            .map_err(|e| GateError::Input { path: target.path.clone(), why: e.to_string() })
    };
    let node = match crate::cache::active() {
        Some(cache) => cache.scan_local(target, scan)?,
        None => scan()?,
    };
    let findings = evaluate(&node, &target.display, policy);
    Ok(Artifact { path: target.display.clone(), node, findings, missing: false, origin: None })
}

/// TensorFlow checkpoint data shards have no header to recognise them by. TensorFlow finds them
/// by name from the checkpoint index (`variables.index` → `variables.data-00000-of-00001`), so
/// do the same: a file named as a shard of a checkpoint whose index was scanned and recognised
/// by content, that matched no format itself, and whose checkpoint has all its shards present,
/// is that checkpoint's tensor data rather than an unrecognised binary (MG003).
pub fn relate_checkpoint_shards(artifacts: &mut [Artifact], policy: &Policy) {
    use modelgate_formats::savedmodel::checkpoint_shard;
    let indexes: BTreeSet<&str> = artifacts
        .iter()
        .filter(|a| a.node.format == Format::TfCheckpointIndex)
        .filter_map(|a| a.path.strip_suffix(".index"))
        .collect();
    let mut present: BTreeMap<(&str, u32), BTreeSet<u32>> = BTreeMap::new();
    for s in artifacts.iter().filter_map(|a| checkpoint_shard(&a.path)) {
        if indexes.contains(s.prefix) {
            present.entry((s.prefix, s.of)).or_default().insert(s.shard);
        }
    }
    let complete: BTreeSet<String> = present
        .iter()
        .filter(|((_, of), shards)| shards.len() == *of as usize)
        .map(|((prefix, _), _)| prefix.to_string())
        .collect();
    let shard_sizes: BTreeMap<(String, u32), (u32, u64, String)> = artifacts
        .iter()
        .filter_map(|a| {
            let s = checkpoint_shard(&a.path)?;
            Some(((s.prefix.to_string(), s.shard), (s.of, a.node.size, a.path.clone())))
        })
        .collect();
    for a in artifacts.iter_mut() {
        let Some(shard) = checkpoint_shard(&a.path) else { continue };
        if a.node.format != Format::Unknown || !complete.contains(shard.prefix) {
            continue;
        }
        a.node.format = Format::TfCheckpointData;
        a.node.notes.retain(|n| n.kind != NoteKind::UnrecognisedBinary);
        a.findings = evaluate(&a.node, &a.path, policy);
    }
    // The index says where each tensor is in which shard: the shards next to it must be named
    // for the same number of shards and hold every extent (TensorFlow's restore fails otherwise,
    // and a difference means one of the files was swapped or cut).
    for a in artifacts.iter_mut() {
        let Some(prefix) = a.path.strip_suffix(".index") else { continue };
        let Detail::CheckpointIndex(info) = &a.node.detail else { continue };
        let mut notes = Vec::new();
        for (&(ref p, number), (of, size, path)) in shard_sizes.range((prefix.to_string(), 0)..) {
            if p != prefix {
                break;
            }
            if info.num_shards.is_some_and(|n| n != u64::from(*of)) {
                notes.push(format!(
                    "{path} is named as one of {of} shards, but the index declares {} shard(s)",
                    info.num_shards.unwrap_or(0)
                ));
            }
            let needed = info.shard_extents.get(number as usize).copied().unwrap_or(0);
            if needed > *size {
                notes.push(format!(
                    "the index reads tensors up to byte {needed} of {path}, which has {size} bytes"
                ));
            }
        }
        if notes.is_empty() {
            continue;
        }
        for what in notes.into_iter().take(8) {
            a.node.note(Note::new(
                NoteKind::Malformed,
                format!("{what}; TensorFlow cannot restore this checkpoint"),
            ));
        }
        a.findings = evaluate(&a.node, &a.path, policy);
    }
}

/// Reports every symbolic link that leads out of the directory it was found in (MG705), on an
/// artifact of its own (the link has no content; its target's files are scanned and reported
/// where they really are).
pub fn report_outside_links(artifacts: &mut Vec<Artifact>, links: &[OutsideLink], policy: &Policy) {
    for l in links {
        let message = format!(
            "{} is a symbolic link inside the scanned directory {} to {}, outside it; a loader follows it, so what it leads to was scanned as part of the model",
            l.link, l.tree, l.target
        );
        let Some(f) = Finding::policy(RuleId::LinkLeavesScannedTree, policy, message, Some(l.target.clone()))
        else {
            continue;
        };
        artifacts.push(Artifact {
            path: l.link.clone(),
            node: Node::new(LINK, None),
            findings: vec![f],
            missing: true,
            origin: None,
        });
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
}

/// The node name of an artifact that stands for a symbolic link (no content of its own).
const LINK: &str = "<symbolic link>";

impl Artifact {
    /// What a report shows as the format of an artifact without content: `missing` for a pinned or
    /// signed file that was not found, `symlink` for a link that leaves the scanned tree.
    pub fn placeholder(&self) -> Option<&'static str> {
        match self.missing {
            false => None,
            true if self.node.name == LINK => Some("symlink"),
            true => Some("missing"),
        }
    }
}

/// Number of worker threads to use by default.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
