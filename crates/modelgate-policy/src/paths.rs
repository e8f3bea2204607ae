//! Canonical paths: the one place where a path on disk becomes the string a policy matches.
//!
//! `[[signatures]]`, `[[suppress]]`, `include`/`exclude`, pins and the paths in reports all see
//! the same key for a file however it was named on the command line (`models/x`, `./models/x`,
//! `models//x`, `models/../models/x`, `models/x/.`, `$PWD/models/x`) and whichever symbolic link
//! to a directory led to it (docs/policy.md, "Paths"):
//!
//! * every directory on the way is resolved as the kernel resolves it (symbolic links followed,
//!   `..` applied to the real parent), and a path that names a directory is resolved entirely;
//! * the last component of a file keeps its own name, even when it is a symbolic link: a loader
//!   opens `model.safetensors`, not the blob it points to, and names carry meaning (shard names,
//!   the `.index` of a checkpoint);
//! * the result is made relative to one base directory: the policy file's directory, else the
//!   working directory. A path outside the base stays absolute.
//!
//! Remote sources (`hf://…`, `https://…`) are not paths on disk and are kept as they are.

use std::path::{Component, Path, PathBuf};

/// The directory policy paths are relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// Absolute and resolved.
    dir: PathBuf,
}

impl Base {
    /// The base for `dir` (relative to the working directory, or absolute).
    pub fn new(dir: &Path) -> Base {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        Base { dir: resolve(dir) }
    }

    /// The working directory.
    pub fn cwd() -> Base {
        Base::new(Path::new("."))
    }

    /// The directory of a file (a policy file, a lockfile).
    pub fn of_file(file: &Path) -> Base {
        match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => Base::new(p),
            _ => Base::cwd(),
        }
    }

    /// The resolved base directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a path on disk, relative to the working directory or absolute, however spelt.
    pub fn key(&self, path: &Path) -> String {
        let s = path.to_string_lossy();
        if is_remote(&s) {
            return s.into_owned();
        }
        self.key_of_resolved(&resolve(path))
    }

    /// The key of a path that [`resolve`] already resolved (or that was built by joining names
    /// to a resolved directory).
    pub fn key_of_resolved(&self, resolved: &Path) -> String {
        match resolved.strip_prefix(&self.dir) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => slashes(rel),
            Err(_) => slashes(resolved),
        }
    }

    /// Where the file a key names is on disk (absolute). Remote keys are returned as they are.
    pub fn locate(&self, key: &str) -> PathBuf {
        if is_remote(key) || Path::new(key).is_absolute() {
            PathBuf::from(key)
        } else if key == "." {
            self.dir.clone()
        } else {
            self.dir.join(key)
        }
    }

    /// Re-bases a key of another base onto this one (a policy key onto the lockfile's directory).
    pub fn rebase(&self, key: &str, from: &Base) -> String {
        if is_remote(key) {
            return key.to_string();
        }
        self.key_of_resolved(&from.locate(key))
    }
}

/// True for a remote source rather than a path on disk.
pub fn is_remote(s: &str) -> bool {
    s.contains("://")
}

fn slashes(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// The absolute, resolved form of a path: every directory on the way resolved like the kernel
/// does (symbolic links followed, `.` dropped, `..` taken from the real parent); the last
/// component resolved too when it is a directory, kept by name when it is a file (or does not
/// exist). Parts that do not exist are normalised lexically.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path.to_path_buf(),
        }
    };
    let parts: Vec<Component<'_>> = abs.components().collect();
    let mut cur = PathBuf::new();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        match part {
            Component::Prefix(_) | Component::RootDir => cur.push(part.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let next = cur.join(name);
                let is_dir = std::fs::metadata(&next).is_ok_and(|m| m.is_dir());
                cur = if i < last || is_dir { std::fs::canonicalize(&next).unwrap_or(next) } else { next };
            }
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_gives_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("models/x")).unwrap();
        std::fs::write(root.join("models/x/w.pt"), "x").unwrap();
        let base = Base::new(root);
        for spelling in [
            "models/x",
            "models/./x",
            "models//x",
            "models/../models/x",
            "models/x/.",
            "models/x/",
            "./models/x",
            "models/x/sub/..",
        ] {
            assert_eq!(base.key(&root.join(spelling)), "models/x", "{spelling}");
        }
        assert_eq!(base.key(&root.join("models/x/./w.pt")), "models/x/w.pt");
        assert_eq!(base.key(root), ".");
        assert_eq!(base.key(Path::new("hf://org/name")), "hf://org/name");
        assert_eq!(base.locate("models/x"), base.dir().join("models/x"));
        let outside = tempfile::tempdir().unwrap();
        let key = base.key(&outside.path().join("a.pt"));
        assert!(Path::new(&key).is_absolute(), "{key}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_directories_resolve_but_file_names_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("models/x")).unwrap();
        std::fs::write(root.join("blob"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("models"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("blob"), root.join("models/x/w.pt")).unwrap();
        let base = Base::new(root);
        assert_eq!(base.key(&root.join("link/x")), "models/x");
        assert_eq!(base.key(&root.join("link/x/w.pt")), "models/x/w.pt");
        assert_eq!(base.key(&root.join("link/../models/x")), "models/x");
        // Through a link, `..` is the real parent's (like the kernel's lookup).
        assert_eq!(base.key(&root.join("link/x/../x")), "models/x");
        assert_eq!(Base::new(&root.join("link")).key(&root.join("models/x")), "x");
    }
}
