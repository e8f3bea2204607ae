//! Where a reported file is, for the formats that a CI system maps back onto the repository
//! (SARIF, GitLab Code Quality and SAST, JUnit, GitHub annotations; `docs/reports.md`,
//! "Locations").
//!
//! Those consumers resolve paths against the repository root, not against the directory the scan
//! ran in, so every path is rewritten relative to the root however it was spelt on the command
//! line (`models/x.pt`, `./models/x.pt`, `/builds/group/project/models/x.pt`). The root is
//! `GITHUB_WORKSPACE`, else `CI_PROJECT_DIR`, else the nearest directory above the working
//! directory that holds `.git` (the git top level), else the working directory. A file outside the
//! root keeps its absolute path (SARIF: a `file://` URI without a base), and a downloaded file its
//! `hf://…` or `https://…` name.

use serde_json::{Value, json};
use std::path::{Component, Path, PathBuf};

/// Where one reported path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Inside the repository: a relative path with `/` separators.
    Repository(String),
    /// A local file outside the repository: its absolute path.
    Outside(String),
    /// A downloaded file (`hf://…`, `https://…`), as named.
    Remote(String),
}

impl Place {
    /// The path as a report that holds plain paths shows it.
    pub fn path(&self) -> &str {
        match self {
            Place::Repository(p) | Place::Outside(p) | Place::Remote(p) => p,
        }
    }

    /// A SARIF `artifactLocation`: relative to `%SRCROOT%` inside the repository, an absolute URI
    /// (no base) otherwise.
    pub fn sarif(&self) -> Value {
        match self {
            Place::Repository(p) => json!({ "uri": uri(p), "uriBaseId": "%SRCROOT%" }),
            Place::Outside(p) => json!({ "uri": format!("file://{}", uri(p)) }),
            Place::Remote(p) => json!({ "uri": uri(p) }),
        }
    }
}

/// Maps reported paths to repository locations.
#[derive(Debug, Clone)]
pub struct Locator {
    root: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl Locator {
    /// The repository root from the environment (see the module documentation).
    pub fn from_env() -> Locator {
        let cwd = std::env::current_dir().ok();
        let from_var = ["GITHUB_WORKSPACE", "CI_PROJECT_DIR"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|v| !v.is_empty())
            .map(PathBuf::from);
        let root = from_var.or_else(|| {
            let cwd = cwd.as_deref()?;
            cwd.ancestors()
                .find(|d| d.join(".git").exists())
                .map(Path::to_path_buf)
                .or(Some(cwd.to_path_buf()))
        });
        Locator::new(root.as_deref(), cwd.as_deref())
    }

    /// A locator for a given root and working directory (relative roots are taken from `cwd`).
    pub fn new(root: Option<&Path>, cwd: Option<&Path>) -> Locator {
        let cwd = cwd.map(|c| real(c, None));
        let root = root.map(|r| real(r, cwd.as_deref()));
        Locator { root, cwd }
    }

    /// Where a path, as the scan reported it, is.
    pub fn place(&self, shown: &str) -> Place {
        if shown.contains("://") {
            return Place::Remote(shown.to_string());
        }
        let full = real(Path::new(shown), self.cwd.as_deref());
        if let Some(root) = &self.root
            && let Ok(rel) = full.strip_prefix(root)
        {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !rel.is_empty() {
                return Place::Repository(rel);
            }
        }
        if full.is_absolute() {
            Place::Outside(full.to_string_lossy().replace('\\', "/"))
        } else {
            // No working directory known: nothing better than the path as given.
            Place::Repository(shown.trim_start_matches("./").to_string())
        }
    }
}

/// The absolute, resolved form of a path: symbolic links resolved when the file exists, `.` and
/// `..` removed lexically when it does not (a pinned file that is missing).
fn real(path: &Path, cwd: Option<&Path>) -> PathBuf {
    let joined = match cwd {
        Some(c) if path.is_relative() => c.join(path),
        _ => path.to_path_buf(),
    };
    if let Ok(p) = joined.canonicalize() {
        return p;
    }
    // The longest existing ancestor resolved, the rest appended lexically.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    let mut base = out.clone();
    let mut rest = Vec::new();
    while !base.exists() {
        match (base.file_name().map(|n| n.to_os_string()), base.parent().map(Path::to_path_buf)) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                base = parent;
            }
            _ => return out,
        }
    }
    let mut resolved = base.canonicalize().unwrap_or(base);
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    resolved
}

/// A URI reference for a path: percent-encoded except for the characters that are safe in a path.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_inside_the_root_is_relative() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("models/sub")).unwrap();
        std::fs::write(root.join("models/x.pt"), b"x").unwrap();
        let cwd = root.join("models");
        let at = Locator::new(Some(&root), Some(&cwd));
        let want = Place::Repository("models/x.pt".into());
        assert_eq!(at.place("x.pt"), want);
        assert_eq!(at.place("./x.pt"), want);
        assert_eq!(at.place("sub/../x.pt"), want);
        assert_eq!(at.place(root.join("models/x.pt").to_str().unwrap()), want);
        // Missing files (a pinned file that is gone) too.
        assert_eq!(at.place("sub/gone.pt"), Place::Repository("models/sub/gone.pt".into()));
        let outside = dir.path().join("elsewhere.pt");
        std::fs::write(&outside, b"x").unwrap();
        let place = at.place(outside.to_str().unwrap());
        assert!(
            matches!(&place, Place::Outside(p) if p.starts_with('/') && p.ends_with("/elsewhere.pt")),
            "{place:?}"
        );
        assert!(place.sarif()["uri"].as_str().unwrap().starts_with("file:///"));
        assert!(place.sarif().get("uriBaseId").is_none());
        assert_eq!(at.place("hf://org/name/x.bin"), Place::Remote("hf://org/name/x.bin".into()));
        assert_eq!(want.sarif(), json!({ "uri": "models/x.pt", "uriBaseId": "%SRCROOT%" }));
    }

    #[test]
    fn uris_are_encoded_paths() {
        assert_eq!(uri("models/a b/ü.pt"), "models/a%20b/%C3%BC.pt");
        assert_eq!(uri("x.pt"), "x.pt");
        assert_eq!(uri("100%.bin"), "100%25.bin");
    }
}
