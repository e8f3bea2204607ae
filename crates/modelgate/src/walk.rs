//! Turns the paths on the command line into the list of files to scan.
//!
//! Every regular file is scanned, whatever its name; only `.git` directories are skipped.
//! Symbolic links to files are followed (a loader would follow them); links to directories are
//! not (they can loop). Anything that cannot be read is an error, never a silent skip.

use crate::error::GateError;
use modelgate_policy::PathFilter;
use std::path::{Path, PathBuf};

/// A file to scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The path as reported: as given on the command line, or the directory as given joined with
    /// the path inside it; `/`-separated, without a leading `./`.
    pub display: String,
    /// The path to open.
    pub path: PathBuf,
}

/// Expands files and directories into a sorted, de-duplicated list of files. Files found in
/// directories are filtered by the policy's include/exclude patterns; files named on the command
/// line are always scanned.
pub fn collect(inputs: &[PathBuf], filter: &PathFilter) -> Result<Vec<Target>, GateError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| input_error(input, &e.to_string()))?;
        if meta.is_file() {
            out.push(Target { display: display(input), path: input.clone() });
        } else if meta.is_dir() {
            walk_dir(input, filter, &mut out)?;
        } else {
            return Err(input_error(input, "not a regular file or directory"));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.display == b.display);
    Ok(out)
}

fn walk_dir(root: &Path, filter: &PathFilter, out: &mut Vec<Target>) -> Result<(), GateError> {
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let walker = walker.filter_entry(|e| {
        let dir = e.file_type().is_dir();
        !(dir && e.file_name() == ".git") && (e.depth() == 0 || filter.includes(&display(e.path()), dir))
    });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
            input_error(&path, &e.to_string())
        })?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let path = entry.path().to_path_buf();
        if ft.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => {}
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    return Err(input_error(&path, "symbolic link to something that is not a regular file"));
                }
                Err(e) => return Err(input_error(&path, &format!("broken symbolic link: {e}"))),
            }
        } else if !ft.is_file() {
            return Err(input_error(&path, "not a regular file (device, socket or pipe)"));
        }
        out.push(Target { display: display(&path), path });
    }
    Ok(())
}

fn input_error(path: &Path, why: &str) -> GateError {
    GateError::Input { path: path.to_path_buf(), why: why.to_string() }
}

/// The reported form of a path: `/`-separated, without a leading `./`.
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

    #[test]
    fn directories_expand_sorted_and_skip_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/.git")).unwrap();
        std::fs::write(root.join("b/.git/config"), "x").unwrap();
        std::fs::write(root.join("b/model.bin"), "x").unwrap();
        std::fs::write(root.join("a.pt"), "x").unwrap();
        let got = collect(&[root.to_path_buf()], &PathFilter::default()).unwrap();
        let names: Vec<String> =
            got.iter().map(|t| t.path.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.pt", "b/model.bin"]);
    }

    #[test]
    fn missing_paths_are_errors() {
        assert!(collect(&[PathBuf::from("/definitely/not/here")], &PathFilter::default()).is_err());
    }

    #[test]
    fn display_paths_drop_leading_dot_slash() {
        assert_eq!(display(Path::new("./x/y.pt")), "x/y.pt");
        assert_eq!(display(Path::new("models/a.bin")), "models/a.bin");
    }
}
