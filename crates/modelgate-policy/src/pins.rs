//! Digest pins: the lockfile (`modelgate.lock`) and drift between it and what was scanned.
//!
//! A lockfile pins models. A single-file model is pinned by its size, SHA-256 and format; a model
//! directory (a Hugging Face repository, a SavedModel) by every file's digest plus the OpenSSF
//! Model Signing root digest of the directory, so that pins and signatures talk about the same
//! value. Entries are sorted and serialised deterministically, so lockfile diffs review well.

use crate::config::PolicyError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The lockfile format version this build reads and writes.
pub const LOCKFILE_VERSION: u32 = 1;

const HEADER: &str = "\
# modelgate.lock: pinned digests of the models this repository uses.
# Written by `modelgate lock`; checked by `modelgate scan --locked` (or `require-pins = true`).
# Review changes to this file like code: a changed digest is a changed model.
";

/// The lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version ([`LOCKFILE_VERSION`]).
    pub version: u32,
    /// Pinned models, sorted by path.
    #[serde(default, rename = "model", skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<PinnedModel>,
}

/// One pinned model: a file (`sha256`, `size`, `format`) or a directory (`root-digest`, `file`s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PinnedModel {
    /// The path given to `modelgate lock`, `/`-separated and relative to the lockfile's directory,
    /// or a remote model's identity: `hf://org/name` (no revision), an `https://` URL.
    pub path: String,
    /// Remote models: the source as given to `modelgate lock` (`hf://org/name@main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Hugging Face models: the commit the pins were taken at (lowercase hex). `scan --locked`
    /// fetches this commit when no revision is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Single-file models: size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Single-file models: SHA-256 (lowercase hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Single-file models: the detected format (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Directory models: the OpenSSF Model Signing root digest, `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_digest: Option<String>,
    /// Directory models: every file, by path relative to the directory.
    #[serde(default, rename = "file", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PinnedFile>,
}

/// A file of a pinned model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    /// Path relative to the model directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (lowercase hex).
    pub sha256: String,
    /// The detected format (informational).
    pub format: String,
}

/// What was scanned, as the pin check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// The path as reported.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file (lowercase hex).
    pub sha256: String,
    /// For a Git LFS pointer: the object id it points to (the real file's SHA-256, hex).
    pub lfs_oid: Option<String>,
    /// The detected format.
    pub format: String,
}

/// A difference between the lockfile and the scanned files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The file's digest differs from its pin.
    Changed {
        /// The path.
        path: String,
        /// Pinned size and digest.
        pinned: (u64, String),
        /// Scanned size and digest.
        actual: (u64, String),
    },
    /// The file has no pin.
    Unpinned {
        /// The path.
        path: String,
        /// The pinned model directory it lies in, if any.
        model: Option<String>,
    },
    /// A pinned file was not found.
    Missing {
        /// The path.
        path: String,
        /// Pinned size and digest.
        pinned: (u64, String),
    },
}

impl Lockfile {
    /// An empty lockfile.
    pub fn new() -> Lockfile {
        Lockfile { version: LOCKFILE_VERSION, models: Vec::new() }
    }

    /// Reads and checks a lockfile.
    pub fn load(path: &Path) -> Result<Lockfile, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read lockfile {}: {e}", path.display())))?;
        Lockfile::parse(&text, &path.display().to_string())
    }

    /// Parses and checks lockfile text.
    pub fn parse(text: &str, origin: &str) -> Result<Lockfile, PolicyError> {
        let lock: Lockfile = toml::from_str(text)
            .map_err(|e| PolicyError(format!("{origin}: {}", e.to_string().trim_end())))?;
        if lock.version != LOCKFILE_VERSION {
            return Err(PolicyError(format!(
                "{origin}: lockfile version {} is not supported (this modelgate reads version {LOCKFILE_VERSION})",
                lock.version
            )));
        }
        let mut seen = BTreeSet::new();
        for m in &lock.models {
            let single = m.sha256.is_some() || m.size.is_some();
            let directory = m.root_digest.is_some() || !m.files.is_empty();
            if single == directory || (single && (m.sha256.is_none() || m.size.is_none())) {
                return Err(PolicyError(format!(
                    "{origin}: model {:?} must have either sha256 and size (a file) or root-digest and files (a directory)",
                    m.path
                )));
            }
            if let Some(rev) = &m.revision
                && !(matches!(rev.len(), 40 | 64)
                    && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            {
                return Err(PolicyError(format!(
                    "{origin}: model {:?}: revision {rev:?} is not a lowercase commit id",
                    m.path
                )));
            }
            if !seen.insert(m.path.clone()) {
                return Err(PolicyError(format!("{origin}: model {:?} is pinned twice", m.path)));
            }
            let digests = m.sha256.iter().chain(m.files.iter().map(|f| &f.sha256));
            for d in digests {
                if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err(PolicyError(format!(
                        "{origin}: model {:?}: {d:?} is not a lowercase SHA-256 hex digest",
                        m.path
                    )));
                }
            }
        }
        Ok(lock)
    }

    /// Renders the lockfile: header, then models and files sorted by path.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.models.sort_by(|a, b| a.path.cmp(&b.path));
        for m in &mut sorted.models {
            m.files.sort_by(|a, b| component_key(&a.path).cmp(&component_key(&b.path)));
        }
        let body = toml::to_string(&sorted).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Replaces (or adds) the pin for `model.path`, dropping pins nested under it.
    pub fn upsert(&mut self, model: PinnedModel) {
        let prefix = dir_prefix(&model.path);
        self.models.retain(|m| m.path != model.path && !m.path.starts_with(&prefix));
        self.models.push(model);
    }

    /// Every pinned file, by its reported path: (size, sha256, model path).
    fn pinned_files(&self) -> BTreeMap<String, (u64, String, String)> {
        let mut out = BTreeMap::new();
        for m in &self.models {
            if let (Some(size), Some(sha)) = (m.size, &m.sha256) {
                out.insert(m.path.clone(), (size, sha.clone(), m.path.clone()));
            }
            for f in &m.files {
                out.insert(join(&m.path, &f.path), (f.size, f.sha256.clone(), m.path.clone()));
            }
        }
        out
    }

    /// Compares what was scanned under `roots` (the paths given to `scan`) with the pins.
    pub fn drift(&self, scanned: &[ScannedFile], roots: &[String]) -> Vec<Drift> {
        let pinned = self.pinned_files();
        let mut out = Vec::new();
        let mut found = BTreeSet::new();
        for f in scanned {
            match pinned.get(&f.path) {
                Some((size, sha, _)) => {
                    found.insert(f.path.clone());
                    // A Git LFS pointer stands for the object it names: compare that.
                    let actual_sha = f.lfs_oid.as_ref().unwrap_or(&f.sha256);
                    if actual_sha != sha {
                        out.push(Drift::Changed {
                            path: f.path.clone(),
                            pinned: (*size, sha.clone()),
                            actual: (f.size, f.sha256.clone()),
                        });
                    }
                }
                None => {
                    let model = self
                        .models
                        .iter()
                        .find(|m| m.sha256.is_none() && f.path.starts_with(&dir_prefix(&m.path)));
                    out.push(Drift::Unpinned { path: f.path.clone(), model: model.map(|m| m.path.clone()) });
                }
            }
        }
        for (path, (size, sha, _)) in &pinned {
            if !found.contains(path) && roots.iter().any(|r| within(path, r)) {
                out.push(Drift::Missing { path: path.clone(), pinned: (*size, sha.clone()) });
            }
        }
        out
    }
}

impl Lockfile {
    /// The pinned models none of whose files was scanned (keys as in [`Lockfile::drift`]): a pin
    /// that checked nothing, reported so that a mistyped or moved path does not silently stop
    /// being enforced.
    pub fn unmatched(&self, scanned: &[ScannedFile]) -> Vec<&PinnedModel> {
        self.models
            .iter()
            .filter(|m| !scanned.iter().any(|f| within(&f.path, &m.path) || f.path == m.path))
            .collect()
    }
}

impl Drift {
    /// The path the drift is about.
    pub fn path(&self) -> &str {
        match self {
            Drift::Changed { path, .. } | Drift::Unpinned { path, .. } | Drift::Missing { path, .. } => path,
        }
    }

    /// The finding it raises under `policy` (`None` if the policy switched the rule off).
    pub fn finding(&self, policy: &crate::Policy, lockfile: &str) -> Option<crate::Finding> {
        match self {
            Drift::Changed { path, pinned, actual } => crate::Finding::policy(
                crate::RuleId::PinMismatch,
                policy,
                format!(
                    "{path} does not match {lockfile}: pinned sha256 {} ({} bytes), found sha256 {} ({} bytes)",
                    pinned.1, pinned.0, actual.1, actual.0
                ),
                Some(format!("sha256:{}", actual.1)),
            ),
            Drift::Unpinned { path, model } => crate::Finding::policy(
                crate::RuleId::UnpinnedFile,
                policy,
                match model {
                    Some(m) => format!(
                        "{path} is not pinned in {lockfile}, although the model directory {m} is (a file added to a pinned model)"
                    ),
                    None => format!("{path} is not pinned in {lockfile}"),
                },
                None,
            ),
            Drift::Missing { path, pinned } => crate::Finding::policy(
                crate::RuleId::PinnedFileMissing,
                policy,
                format!(
                    "{path} is pinned in {lockfile} (sha256 {}, {} bytes) but was not found",
                    pinned.1, pinned.0
                ),
                Some(format!("sha256:{}", pinned.1)),
            ),
        }
    }
}

impl Default for Lockfile {
    fn default() -> Lockfile {
        Lockfile::new()
    }
}

/// Builds the pin for a model from its scanned files. `root` is the path given to `lock`; a
/// single file whose path equals `root` is pinned as a file, anything else as a directory.
pub fn pin_model(root: &str, files: &[ScannedFile]) -> PinnedModel {
    if let [only] = files
        && only.path == root
    {
        return PinnedModel {
            path: root.to_string(),
            source: None,
            revision: None,
            size: Some(only.size),
            sha256: Some(only.lfs_oid.clone().unwrap_or_else(|| only.sha256.clone())),
            format: Some(only.format.clone()),
            root_digest: None,
            files: Vec::new(),
        };
    }
    let prefix = dir_prefix(root);
    let pinned: Vec<PinnedFile> = files
        .iter()
        .map(|f| PinnedFile {
            path: f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_string(),
            size: f.size,
            sha256: f.lfs_oid.clone().unwrap_or_else(|| f.sha256.clone()),
            format: f.format.clone(),
        })
        .collect();
    let digests: Vec<(String, String)> = pinned.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect();
    PinnedModel {
        path: root.to_string(),
        source: None,
        revision: None,
        size: None,
        sha256: None,
        format: None,
        root_digest: Some(format!("sha256:{}", oms_root_digest(&digests))),
        files: pinned,
    }
}

/// Paths the OpenSSF Model Signing `files` serialization leaves out by default (relative to the
/// model directory), plus the conventional signature file.
const OMS_IGNORED: &[&str] = &[".git", ".gitattributes", ".github", ".gitignore", "model.sig"];

/// The OpenSSF Model Signing root digest of a directory: SHA-256 over the raw SHA-256 digests of
/// its files, ordered by path *components* (Python's `PurePosixPath` order, not string order),
/// leaving out the default git paths and the signature file (`../shared/docs/signing.md` §1.4).
pub fn oms_root_digest(files: &[(String, String)]) -> String {
    let mut kept: Vec<&(String, String)> = files
        .iter()
        .filter(|(path, _)| !OMS_IGNORED.contains(&path.split('/').next().unwrap_or("")))
        .collect();
    kept.sort_by(|a, b| component_key(&a.0).cmp(&component_key(&b.0)));
    let mut h = Sha256::new();
    for (_, hex) in kept {
        h.update(decode_hex(hex));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn component_key(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
}

fn dir_prefix(path: &str) -> String {
    if path == "." || path.is_empty() { String::new() } else { format!("{}/", path.trim_end_matches('/')) }
}

fn join(dir: &str, rel: &str) -> String {
    format!("{}{rel}", dir_prefix(dir))
}

/// True if `path` is `root` or lies under it.
fn within(path: &str, root: &str) -> bool {
    root == "." || path == root || path.starts_with(&dir_prefix(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> ScannedFile {
        let sha: String = Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
        ScannedFile {
            path: path.into(),
            size: content.len() as u64,
            sha256: sha,
            lfs_oid: None,
            format: "unknown".into(),
        }
    }

    #[test]
    fn root_digest_orders_by_components_like_model_signing() {
        // signing.md §1.4: B/x, a/b.bin, a-b, a.txt (component order), not string order.
        let d =
            |s: &str| -> String { Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect() };
        let files = vec![
            ("a.txt".to_string(), d("1")),
            ("a-b".to_string(), d("2")),
            ("a/b.bin".to_string(), d("3")),
            ("B/x".to_string(), d("4")),
            (".gitattributes".to_string(), d("ignored")),
        ];
        let mut h = Sha256::new();
        for s in ["4", "3", "2", "1"] {
            h.update(Sha256::digest(s.as_bytes()));
        }
        let expected: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(oms_root_digest(&files), expected);
    }

    #[test]
    fn lock_then_drift() {
        let dir = vec![file("m/config.json", b"{}"), file("m/w.pt", b"weights")];
        let mut lock = Lockfile::new();
        lock.upsert(pin_model("m", &dir));
        lock.upsert(pin_model("x.pkl", &[file("x.pkl", b"pickle")]));
        let text = lock.to_toml();
        let back = Lockfile::parse(&text, "t").unwrap();
        assert_eq!(back.models.len(), 2);
        assert!(text.starts_with("# modelgate.lock"));
        let roots = vec![".".to_string()];
        assert!(back.drift(&[dir[0].clone(), dir[1].clone(), file("x.pkl", b"pickle")], &roots).is_empty());
        // One byte changed.
        let d = back.drift(&[dir[0].clone(), file("m/w.pt", b"weightz"), file("x.pkl", b"pickle")], &roots);
        assert!(matches!(&d[..], [Drift::Changed { path, .. }] if path == "m/w.pt"), "{d:?}");
        // A file added, a file removed.
        let d = back.drift(
            &[dir[0].clone(), dir[1].clone(), file("m/extra.py", b"x"), file("x.pkl", b"pickle")],
            &roots,
        );
        assert!(
            matches!(&d[..], [Drift::Unpinned { path, model: Some(m) }] if path == "m/extra.py" && m == "m"),
            "{d:?}"
        );
        let d = back.drift(&[dir[0].clone(), file("x.pkl", b"pickle")], &roots);
        assert!(matches!(&d[..], [Drift::Missing { path, .. }] if path == "m/w.pt"), "{d:?}");
        // Scanning only part of the tree does not make the rest missing.
        assert!(back.drift(&[file("x.pkl", b"pickle")], &["x.pkl".to_string()]).is_empty());
    }

    #[test]
    fn lfs_pointers_stand_for_their_object() {
        let real = file("w.bin", b"the real weights");
        let mut lock = Lockfile::new();
        lock.upsert(pin_model("w.bin", std::slice::from_ref(&real)));
        let mut pointer = file("w.bin", b"version https://git-lfs.github.com/spec/v1\n");
        pointer.lfs_oid = Some(real.sha256.clone());
        assert!(lock.drift(&[pointer.clone()], &[".".into()]).is_empty());
        pointer.lfs_oid = Some("0".repeat(64));
        assert_eq!(lock.drift(&[pointer], &[".".into()]).len(), 1);
    }

    #[test]
    fn remote_models_keep_their_source_and_revision() {
        let files = vec![file("hf://org/name/config.json", b"{}"), file("hf://org/name/w.bin", b"w")];
        let mut model = pin_model("hf://org/name", &files);
        assert_eq!(model.files[0].path, "config.json");
        model.source = Some("hf://org/name@main".into());
        model.revision = Some("0123456789abcdef0123456789abcdef01234567".into());
        let mut lock = Lockfile::new();
        lock.upsert(model.clone());
        let text = lock.to_toml();
        assert!(text.contains("revision = \"0123456789abcdef0123456789abcdef01234567\""), "{text}");
        assert_eq!(Lockfile::parse(&text, "t").unwrap().models, vec![model]);
        assert!(lock.drift(&files, &["hf://org/name".into()]).is_empty());
        // Version-1 lockfiles without the new fields still parse.
        assert!(Lockfile::parse(&text.replace("source = \"hf://org/name@main\"\n", ""), "t").is_ok());
        let bad = text.replace("0123456789abcdef0123456789abcdef01234567", "main");
        assert!(Lockfile::parse(&bad, "t").unwrap_err().0.contains("revision"));
    }

    #[test]
    fn bad_lockfiles_are_rejected() {
        assert!(Lockfile::parse("version = 2\n", "t").is_err());
        assert!(
            Lockfile::parse("version = 1\n[[model]]\npath = \"a\"\nsha256 = \"AB\"\nsize = 1\n", "t")
                .is_err()
        );
        assert!(Lockfile::parse("version = 1\n[[model]]\npath = \"a\"\n", "t").is_err());
        assert!(Lockfile::parse("version = 1\nsurprise = 1\n", "t").unwrap_err().0.contains("surprise"));
    }
}
