//! The model side of an OpenSSF Model Signing signature: which files make up the model (as
//! model_signing walks it), their digests under the signed serialization, and the difference
//! between what is on disk and what was signed.

use crate::digest::HashAlg;
use crate::statement::{Method, Resource, Statement};
use crate::{Error, Rejection, hex};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Top-level paths model_signing leaves out by default (`--ignore_git_paths`).
pub const DEFAULT_IGNORED: &[&str] = &[".git", ".gitattributes", ".github", ".gitignore"];

/// A signed resource that matched the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFile {
    /// The file's path relative to the model (`.` for a single-file model); for shards,
    /// `path:start:end`.
    pub path: String,
    /// `sha256`, `blake2b`, `blake3`, or `sha256-sharded-N`.
    pub algorithm: String,
    /// Lowercase hex.
    pub digest: String,
}

/// One file whose content differs from what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Path relative to the model.
    pub path: String,
    /// What was signed and what was found.
    pub detail: String,
}

/// How the model on disk differs from the signed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentMismatch {
    /// Files whose digest differs.
    pub changed: Vec<Changed>,
    /// Files on disk that the signature does not list.
    pub extra: Vec<String>,
    /// Files the signature lists that are not on disk.
    pub missing: Vec<String>,
    /// Symbolic links in a model signed without `allow_symlinks`.
    pub links: Vec<String>,
    /// The signature is for a single file but the model is a directory, or the other way round.
    pub shape: Option<String>,
}

impl ContentMismatch {
    fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.extra.is_empty()
            && self.missing.is_empty()
            && self.links.is_empty()
            && self.shape.is_none()
    }
}

impl fmt::Display for ContentMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.shape {
            parts.push(s.clone());
        }
        if !self.changed.is_empty() {
            let list: Vec<String> =
                self.changed.iter().map(|c| format!("{} ({})", c.path, c.detail)).collect();
            parts.push(format!("{} changed: {}", self.changed.len(), list.join(", ")));
        }
        if !self.extra.is_empty() {
            parts.push(format!("{} not signed: {}", self.extra.len(), self.extra.join(", ")));
        }
        if !self.missing.is_empty() {
            parts.push(format!("{} signed but missing: {}", self.missing.len(), self.missing.join(", ")));
        }
        if !self.links.is_empty() {
            parts.push(format!(
                "{} symbolic link(s), which the signature (made without allow_symlinks) does not cover: {}",
                self.links.len(),
                self.links.join(", ")
            ));
        }
        write!(f, "the model does not match its signature: {}", parts.join("; "))
    }
}

/// What the comparison established.
pub(crate) struct Matched {
    pub files: Vec<SignedFile>,
    /// Files present but left out by ignore paths beyond the git defaults and the signature
    /// file itself (chosen by the signer, or by `--ignore-path`).
    pub excluded: Vec<String>,
    /// Files hashed by this module rather than taken from the scan.
    pub rehashed: usize,
}

/// Inputs to [`compare`] besides the statement.
pub(crate) struct Model<'a> {
    /// The model directory or single file.
    pub path: &'a Path,
    /// The signature file (left out if it lies inside the model).
    pub signature: Option<&'a Path>,
    /// More paths to leave out, relative to the model.
    pub extra_ignores: &'a [String],
    /// SHA-256 digests already computed by the scan, by the path it opened.
    pub known_sha256: Option<&'a HashMap<PathBuf, [u8; 32]>>,
}

struct Entry {
    rel: String,
    full: PathBuf,
}

/// Compares the model on disk with the statement.
pub(crate) fn compare(model: &Model<'_>, st: &Statement) -> Result<Matched, Error> {
    let meta =
        std::fs::metadata(model.path).map_err(|e| Error::Input(format!("{}: {e}", model.path.display())))?;
    let single_signed = st.resources.iter().all(|r| r.path == ".");
    let mut mismatch = ContentMismatch::default();
    let mut excluded = Vec::new();
    let entries = if meta.is_file() {
        if !single_signed {
            mismatch.shape = Some(format!(
                "the signature is for a model directory of {} file(s), but {} is a single file",
                st.resources.len(),
                model.path.display()
            ));
            return Err(Error::Rejected(Rejection::Content(mismatch)));
        }
        vec![Entry { rel: ".".into(), full: model.path.to_path_buf() }]
    } else {
        if single_signed {
            mismatch.shape = Some(format!(
                "the signature is for a single file, but {} is a directory",
                model.path.display()
            ));
            return Err(Error::Rejected(Rejection::Content(mismatch)));
        }
        walk(model, st, &mut mismatch, &mut excluded)?
    };
    let alg = st.serialization.hash;
    let mut files = Vec::new();
    let mut rehashed = 0;
    match st.serialization.method {
        Method::Files => {
            let expected: BTreeMap<&str, &Resource> =
                st.resources.iter().map(|r| (r.path.as_str(), r)).collect();
            let mut found = std::collections::HashSet::new();
            for e in &entries {
                let Some(r) = expected.get(e.rel.as_str()) else {
                    mismatch.extra.push(e.rel.clone());
                    continue;
                };
                found.insert(e.rel.as_str());
                let known = (alg == HashAlg::Sha256)
                    .then(|| model.known_sha256.and_then(|k| k.get(&e.full)))
                    .flatten();
                let actual = match known {
                    Some(d) => d.to_vec(),
                    None => {
                        rehashed += 1;
                        hash_file(&e.full, alg)?
                    }
                };
                if actual == r.digest {
                    files.push(SignedFile {
                        path: e.rel.clone(),
                        algorithm: alg.name().into(),
                        digest: hex(&actual),
                    });
                } else {
                    mismatch.changed.push(Changed {
                        path: e.rel.clone(),
                        detail: format!("signed {} {}, found {}", alg.name(), hex(&r.digest), hex(&actual)),
                    });
                }
            }
            mismatch.missing.extend(
                st.resources.iter().filter(|r| !found.contains(r.path.as_str())).map(|r| r.path.clone()),
            );
        }
        Method::Shards { size } => {
            let algorithm = format!("{}-sharded-{size}", alg.name());
            let mut expected: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
            for r in &st.resources {
                expected.entry(r.path.as_str()).or_default().push(r);
            }
            for e in &entries {
                let len = std::fs::metadata(&e.full)
                    .map_err(|err| Error::Input(format!("{}: {err}", e.full.display())))?
                    .len();
                let Some(signed) = expected.remove(e.rel.as_str()) else {
                    // model_signing writes no shard for an empty file.
                    if len > 0 {
                        mismatch.extra.push(e.rel.clone());
                    }
                    continue;
                };
                rehashed += 1;
                let actual = hash_shards(&e.full, alg, size)?;
                let mut signed: Vec<&Resource> = signed;
                signed.sort_by_key(|r| r.range);
                let same = signed.len() == actual.len()
                    && signed
                        .iter()
                        .zip(&actual)
                        .all(|(r, (range, d))| r.range == Some(*range) && &r.digest == d);
                if same {
                    for (range, d) in &actual {
                        files.push(SignedFile {
                            path: format!("{}:{}:{}", e.rel, range.0, range.1),
                            algorithm: algorithm.clone(),
                            digest: hex(d),
                        });
                    }
                } else {
                    let signed_end = signed.iter().filter_map(|r| r.range.map(|x| x.1)).max().unwrap_or(0);
                    let first = signed
                        .iter()
                        .zip(&actual)
                        .find(|(r, (range, d))| r.range != Some(*range) || &r.digest != d);
                    let detail = match first {
                        _ if signed_end != len => format!(
                            "signed {signed_end} bytes in {} shard(s), found {len} bytes",
                            signed.len()
                        ),
                        Some((r, (range, d))) => format!(
                            "shard {}:{}: signed {}, found {}",
                            range.0,
                            range.1,
                            hex(&r.digest),
                            hex(d)
                        ),
                        None => format!("signed {} shard(s), found {}", signed.len(), actual.len()),
                    };
                    mismatch.changed.push(Changed { path: e.rel.clone(), detail });
                }
            }
            mismatch.missing.extend(expected.keys().map(|p| p.to_string()));
        }
    }
    if !mismatch.is_empty() {
        return Err(Error::Rejected(Rejection::Content(mismatch)));
    }
    Ok(Matched { files, excluded, rehashed })
}

/// Lists the files of a model directory as model_signing does: every file below it, dotfiles
/// included, minus the top-level git paths, the signed ignore paths, the signature file and
/// `extra_ignores`. Sorted by path components.
fn walk(
    model: &Model<'_>,
    st: &Statement,
    mismatch: &mut ContentMismatch,
    excluded: &mut Vec<String>,
) -> Result<Vec<Entry>, Error> {
    let signature_rel = model.signature.and_then(|s| relative_inside(model.path, s));
    let is_routine =
        |p: &str| DEFAULT_IGNORED.contains(&p) || p == "model.sig" || Some(p) == signature_rel.as_deref();
    // The git defaults do not apply to what the signature lists (a model signed with
    // `--no-ignore-git-paths` signs its .gitattributes).
    let signed_tops: std::collections::HashSet<&str> =
        st.resources.iter().filter_map(|r| r.path.split('/').next()).collect();
    let mut ignores: Vec<(String, bool)> = DEFAULT_IGNORED
        .iter()
        .filter(|p| !signed_tops.contains(*p))
        .map(|p| (p.to_string(), false))
        .collect();
    for p in &st.serialization.ignore_paths {
        ignores.push((p.clone(), !is_routine(p)));
    }
    for p in model.extra_ignores {
        ignores.push((p.trim_start_matches("./").trim_end_matches('/').to_string(), true));
    }
    if let Some(s) = &signature_rel {
        ignores.push((s.clone(), false));
    }
    let ignored_by = |rel: &str| {
        ignores
            .iter()
            .find(|(p, _)| rel == p || rel.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')))
    };
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(model.path).follow_links(false).min_depth(1).sort_by_file_name();
    let mut it = walker.into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| Error::Input(format!("{}: {e}", model.path.display())))?;
        let rel = entry
            .path()
            .strip_prefix(model.path)
            .map(|p| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
            .unwrap_or_default();
        if let Some((_, notable)) = ignored_by(&rel) {
            if entry.file_type().is_dir() {
                if *notable {
                    excluded.extend(files_below(entry.path(), &rel));
                }
                it.skip_current_dir();
            } else if *notable {
                excluded.push(rel);
            }
            continue;
        }
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            if !st.serialization.allow_symlinks {
                mismatch.links.push(rel);
                continue;
            }
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(Error::unsupported(format!("{rel} is a symbolic link to a directory"))),
                Err(e) => {
                    return Err(Error::Input(format!(
                        "{}: broken symbolic link: {e}",
                        entry.path().display()
                    )));
                }
            }
        } else if !ft.is_file() {
            return Err(Error::Input(format!("{}: not a regular file", entry.path().display())));
        }
        out.push(Entry { rel, full: entry.path().to_path_buf() });
    }
    out.sort_by(|a, b| a.rel.split('/').cmp(b.rel.split('/')));
    Ok(out)
}

fn files_below(dir: &Path, rel: &str) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            e.path()
                .strip_prefix(dir)
                .ok()
                .map(|p| format!("{rel}/{}", p.to_string_lossy().replace('\\', "/")))
        })
        .collect()
}

/// `inner` relative to `dir` (`/`-separated) if it lies inside it.
pub(crate) fn relative_inside(dir: &Path, inner: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let inner = std::fs::canonicalize(inner).ok()?;
    let rel = inner.strip_prefix(&dir).ok()?;
    let s = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    (!s.is_empty()).then_some(s)
}

fn open(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::File::open(path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// Hashes a whole file.
pub(crate) fn hash_file(path: &Path, alg: HashAlg) -> Result<Vec<u8>, Error> {
    let mut f = open(path)?;
    let mut h = alg.hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// A shard's byte range `[start, end)` and digest.
type Shard = ((u64, u64), Vec<u8>);

/// Hashes a file in `size`-byte shards, in one pass.
fn hash_shards(path: &Path, alg: HashAlg, size: u64) -> Result<Vec<Shard>, Error> {
    let mut f = open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut h = alg.hasher();
    let (mut start, mut pos) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let room = usize::try_from(start + size - pos).unwrap_or(usize::MAX).min(chunk.len());
            h.update(&chunk[..room]);
            pos += room as u64;
            chunk = &chunk[room..];
            if pos == start + size {
                out.push(((start, pos), std::mem::replace(&mut h, alg.hasher()).finish()));
                start = pos;
            }
        }
    }
    if pos > start {
        out.push(((start, pos), h.finish()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn shards_split_like_model_signing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..150u8).collect();
        std::fs::write(&p, &data).unwrap();
        let s = hash_shards(&p, HashAlg::Sha256, 64).unwrap();
        let ranges: Vec<_> = s.iter().map(|(r, _)| *r).collect();
        assert_eq!(ranges, [(0, 64), (64, 128), (128, 150)]);
        assert_eq!(s[1].1, Sha256::digest(&data[64..128]).to_vec());
        std::fs::write(&p, b"").unwrap();
        assert!(hash_shards(&p, HashAlg::Sha256, 64).unwrap().is_empty());
    }
}
