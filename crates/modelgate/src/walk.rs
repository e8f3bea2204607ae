//! Turns the paths on the command line into the list of files to scan.
//!
//! Every regular file is scanned, whatever its name. Symbolic links are followed, to files and to
//! directories, as a loader opening a path inside the tree would follow them; a directory reached
//! a second time (a link loop, or two links to one place) is recognised by its device and inode
//! and not walked again. A link to a directory outside the scanned tree is reported (MG705) and
//! its target scanned all the same. What the walk deliberately leaves out — `.git` directories,
//! what `include`/`exclude` filter away, directories reached again — is counted ([`Skipped`]) and
//! shown in the summary and the JSON report. Anything that cannot be read is an error, never a
//! silent skip.
//!
//! Each file is reported under its canonical key ([`modelgate_policy::paths`]): the same string
//! however the command line spelt the path, relative to the policy's base directory.

use crate::error::GateError;
use modelgate_policy::PathFilter;
use modelgate_policy::paths::{Base, resolve};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A file to scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The path as reported and matched by the policy: its canonical key.
    pub display: String,
    /// The path to open (absolute).
    pub path: PathBuf,
}

/// What the walk left out on purpose, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// `.git` directories (not entered).
    pub git_directories: usize,
    /// Files that `include`/`exclude` filtered out.
    pub excluded_files: usize,
    /// Directories that `exclude` pruned (not entered).
    pub excluded_directories: usize,
    /// Directories reached again through a symbolic link (a loop, or a second link to the same
    /// directory): already walked, not walked twice.
    pub repeated_directories: usize,
}

/// A symbolic link inside a scanned directory whose target directory is outside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutsideLink {
    /// The link's key.
    pub link: String,
    /// The scanned directory it was found in (key).
    pub tree: String,
    /// Where it leads (key of the resolved target).
    pub target: String,
}

/// The result of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    /// Sorted by key, de-duplicated.
    pub targets: Vec<Target>,
    /// What was left out.
    pub skipped: Skipped,
    /// Links that lead out of the tree they were found in.
    pub outside_links: Vec<OutsideLink>,
}

/// Expands files and directories into a sorted, de-duplicated list of files. Files found in
/// directories are filtered by the policy's include/exclude patterns; files named on the command
/// line are always scanned.
pub fn collect(inputs: &[PathBuf], filter: &PathFilter, base: &Base) -> Result<Walk, GateError> {
    let mut walk = Walk::default();
    let mut seen = HashSet::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| input_error(input, &e.to_string()))?;
        if meta.is_file() {
            let path = resolve(input);
            walk.targets.push(Target { display: base.key_of_resolved(&path), path });
        } else if meta.is_dir() {
            walk_dir(&resolve(input), filter, base, &mut seen, &mut walk)?;
        } else {
            return Err(input_error(input, "not a regular file or directory"));
        }
    }
    walk.targets.sort();
    walk.targets.dedup_by(|a, b| a.display == b.display);
    walk.outside_links.sort();
    walk.outside_links.dedup();
    Ok(walk)
}

/// The identity of a directory, for loop detection.
#[cfg(unix)]
fn identity(path: &Path, meta: &std::fs::Metadata) -> (u64, u64, PathBuf) {
    use std::os::unix::fs::MetadataExt;
    let _ = path;
    (meta.dev(), meta.ino(), PathBuf::new())
}

#[cfg(not(unix))]
fn identity(path: &Path, _meta: &std::fs::Metadata) -> (u64, u64, PathBuf) {
    (0, 0, std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Walks one directory (already resolved) with an explicit stack: nesting depth costs memory,
/// not call stack.
fn walk_dir(
    root: &Path,
    filter: &PathFilter,
    base: &Base,
    seen: &mut HashSet<(u64, u64, PathBuf)>,
    walk: &mut Walk,
) -> Result<(), GateError> {
    let meta = std::fs::metadata(root).map_err(|e| input_error(root, &e.to_string()))?;
    if !seen.insert(identity(root, &meta)) {
        walk.skipped.repeated_directories += 1;
        return Ok(());
    }
    let tree_key = base.key_of_resolved(root);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| input_error(&dir, &e.to_string()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| input_error(&dir, &e.to_string()))?;
            let ft = entry.file_type().map_err(|e| input_error(&entry.path(), &e.to_string()))?;
            names.push((entry.file_name(), ft));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        // Pushed in reverse so that directories are walked in name order.
        let mut subdirs = Vec::new();
        for (name, ft) in names {
            let path = dir.join(&name);
            let key = base.key_of_resolved(&path);
            // A link is followed: what it leads to decides.
            let is_dir = if ft.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() || m.is_dir() => m.is_dir(),
                    Ok(_) => {
                        return Err(input_error(
                            &path,
                            "symbolic link to something that is not a regular file",
                        ));
                    }
                    Err(e) => return Err(input_error(&path, &format!("broken symbolic link: {e}"))),
                }
            } else if ft.is_dir() || ft.is_file() {
                ft.is_dir()
            } else {
                return Err(input_error(&path, "not a regular file (device, socket or pipe)"));
            };
            if is_dir {
                if name == ".git" {
                    walk.skipped.git_directories += 1;
                    continue;
                }
                if !filter.includes(&key, true) {
                    walk.skipped.excluded_directories += 1;
                    continue;
                }
                let real = if ft.is_symlink() {
                    std::fs::canonicalize(&path).map_err(|e| input_error(&path, &e.to_string()))?
                } else {
                    path
                };
                if ft.is_symlink() && !real.starts_with(root) {
                    walk.outside_links.push(OutsideLink {
                        link: key,
                        tree: tree_key.clone(),
                        target: base.key_of_resolved(&real),
                    });
                }
                let meta = std::fs::metadata(&real).map_err(|e| input_error(&real, &e.to_string()))?;
                if !seen.insert(identity(&real, &meta)) {
                    walk.skipped.repeated_directories += 1;
                    continue;
                }
                subdirs.push(real);
            } else if filter.includes(&key, false) {
                walk.targets.push(Target { display: key, path });
            } else {
                walk.skipped.excluded_files += 1;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

fn input_error(path: &Path, why: &str) -> GateError {
    GateError::Input { path: path.to_path_buf(), why: why.to_string() }
}

/// The reported form of a path given on the command line: `/`-separated, without a leading `./`.
/// Used where a path is shown as typed (signature discovery messages, `verify`); scanned files
/// are reported by their canonical key instead.
pub fn display(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let mut s = s.as_str();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    if s.is_empty() { ".".to_string() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(walk: &Walk) -> Vec<&str> {
        walk.targets.iter().map(|t| t.display.as_str()).collect()
    }

    #[test]
    fn directories_expand_sorted_and_skip_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/.git")).unwrap();
        std::fs::write(root.join("b/.git/config"), "x").unwrap();
        std::fs::write(root.join("b/model.bin"), "x").unwrap();
        std::fs::write(root.join("a.pt"), "x").unwrap();
        let got = collect(&[root.to_path_buf()], &PathFilter::default(), &Base::new(root)).unwrap();
        assert_eq!(keys(&got), ["a.pt", "b/model.bin"]);
        assert_eq!(got.skipped, Skipped { git_directories: 1, ..Skipped::default() });
    }

    #[test]
    fn missing_paths_are_errors() {
        let base = Base::cwd();
        assert!(collect(&[PathBuf::from("/definitely/not/here")], &PathFilter::default(), &base).is_err());
    }

    #[test]
    fn display_paths_drop_leading_dot_slash() {
        assert_eq!(display(Path::new("./x/y.pt")), "x/y.pt");
        assert_eq!(display(Path::new("models/a.bin")), "models/a.bin");
    }

    #[cfg(unix)]
    #[test]
    fn directory_links_are_followed_once_and_loops_end() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tree/real")).unwrap();
        std::fs::write(root.join("tree/real/a.pkl"), "x").unwrap();
        std::fs::write(outside.path().join("b.pkl"), "x").unwrap();
        symlink(root.join("tree/real"), root.join("tree/again")).unwrap();
        symlink(root.join("tree"), root.join("tree/real/loop")).unwrap();
        symlink(outside.path(), root.join("tree/out")).unwrap();
        let base = Base::new(root);
        let got = collect(&[root.join("tree")], &PathFilter::default(), &base).unwrap();
        let outside_key = base.key(&outside.path().join("b.pkl"));
        assert_eq!(keys(&got), [outside_key.as_str(), "tree/real/a.pkl"]);
        assert_eq!(got.skipped.repeated_directories, 2, "{:?}", got.skipped);
        assert_eq!(got.outside_links.len(), 1);
        assert_eq!(got.outside_links[0].link, "tree/out");
        assert_eq!(got.outside_links[0].tree, "tree");
    }
}
