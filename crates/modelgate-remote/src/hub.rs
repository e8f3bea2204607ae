//! The Hugging Face Hub API: which commit a revision is, and which files it holds.
//!
//! `GET {endpoint}/api/models/{org}/{name}/revision/{revision}?blobs=true` answers with the
//! model's info at that revision: `sha` (the resolved commit) and `siblings`, one per file, each
//! with `rfilename`, `size`, `blobId` (the git blob id) and, for files stored in Git LFS,
//! `lfs: {sha256, size, pointerSize}` (what `huggingface_hub.model_info(files_metadata=True)`
//! reads). The tree endpoint spells the LFS digest `lfs.oid`; both spellings are accepted. Files
//! are then downloaded from `{endpoint}/{org}/{name}/resolve/{commit}/{path}`, always by commit,
//! so every file comes from the same snapshot even if the branch moves meanwhile.
//!
//! The answer is hostile input: its size, the number of files, every path (it may become a file
//! name under `--download-dir`) and every digest are checked before use.

use crate::http::{Http, Want};
use crate::{Error, display_url, is_hex};
use reqwest::StatusCode;
use reqwest::Url;
use serde::Deserialize;
use std::io::Read;

/// Largest API answer read.
pub const MAX_API_BYTES: u64 = 32 << 20;
/// Most files accepted in one repository.
pub const MAX_FILES: usize = 100_000;
/// Longest path accepted for a file in a repository.
pub const MAX_PATH: usize = 1024;

/// A repository at one commit.
#[derive(Debug, Clone)]
pub struct Listing {
    /// `org/name`.
    pub repo: String,
    /// The revision asked for (`main` when none was given).
    pub revision: String,
    /// The commit it resolved to (lowercase hex).
    pub commit: String,
    /// Every file, sorted by path.
    pub files: Vec<HubFile>,
    /// The repository is gated (`gated` is set in its info).
    pub gated: bool,
}

/// One file of a repository, as the hub lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Path in the repository (`/`-separated, validated).
    pub path: String,
    /// Size in bytes, when listed.
    pub size: Option<u64>,
    /// SHA-256 of the content (lowercase hex), for files stored in Git LFS.
    pub sha256: Option<String>,
    /// The git blob id, for files in git (for a file in LFS, only when it is malformed: the
    /// pointer's blob id is not the content's and is otherwise not used).
    pub git_blob: Option<BlobId>,
}

/// Longest malformed blob id kept for the message.
const MAX_SHOWN_ID: usize = 100;

/// A git blob id as the hub lists it: the hash of `blob <size>\0` followed by the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobId {
    /// 40 lowercase hex digits: SHA-1, git's default object format.
    Sha1(String),
    /// 64 lowercase hex digits: SHA-256, git's SHA-256 object format.
    Sha256(String),
    /// Anything else (at most 100 characters of it): it cannot be checked, which is a finding
    /// (`Problem::Unverifiable`), never ignored.
    Unexpected(String),
}

impl BlobId {
    /// Classifies a listed `blobId` (hex digits in either case are accepted).
    pub fn parse(listed: &str) -> BlobId {
        let lower = listed.to_ascii_lowercase();
        if is_hex(&lower, &[40]) {
            BlobId::Sha1(lower)
        } else if is_hex(&lower, &[64]) {
            BlobId::Sha256(lower)
        } else {
            BlobId::Unexpected(listed.chars().take(MAX_SHOWN_ID).collect())
        }
    }
}

#[derive(Deserialize)]
struct ModelInfo {
    sha: Option<String>,
    siblings: Option<Vec<Sibling>>,
    #[serde(default)]
    gated: serde_json::Value,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: Option<String>,
    oid: Option<String>,
    size: Option<u64>,
}

/// The URL of the model info at a revision.
pub fn info_url(endpoint: &Url, repo: &str, revision: &str) -> Result<Url, Error> {
    let mut url = endpoint.clone();
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| Error::Usage(format!("HF_ENDPOINT {endpoint} cannot take a path")))?;
        segs.pop_if_empty().extend(["api", "models"]).extend(repo.split('/')).extend(["revision", revision]);
    }
    url.set_query(Some("blobs=true"));
    Ok(url)
}

/// The download URL of a file at a commit.
pub fn resolve_url(endpoint: &Url, repo: &str, commit: &str, path: &str) -> Result<Url, Error> {
    let mut url = endpoint.clone();
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| Error::Usage(format!("HF_ENDPOINT {endpoint} cannot take a path")))?;
        segs.pop_if_empty().extend(repo.split('/')).extend(["resolve", commit]).extend(path.split('/'));
    }
    Ok(url)
}

/// Asks the hub which commit `revision` is and which files it holds.
pub fn list(http: &Http, repo: &str, revision: &str) -> Result<Listing, Error> {
    let url = info_url(&http.settings().endpoint, repo, revision)?;
    let shown = display_url(&url);
    let resp = http.get(&url, Want::Whole)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(status_error(&shown, status, http.has_token(), &format!("hf://{repo}@{revision}")));
    }
    let mut body = Vec::new();
    resp.take(MAX_API_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Transfer { url: shown.clone(), why: format!("reading the answer: {e}") })?;
    if body.len() as u64 > MAX_API_BYTES {
        return Err(Error::Api { url: shown, why: format!("answer larger than {MAX_API_BYTES} bytes") });
    }
    parse_listing(&body, repo, revision).map_err(|why| Error::Api { url: shown, why })
}

/// Explains an error status, with what to do about it.
pub fn status_error(url: &str, status: StatusCode, has_token: bool, what: &str) -> Error {
    let hint = match status.as_u16() {
        401 | 403 if has_token => format!(
            " — access to {what} denied: the token in HF_TOKEN has no access (gated repositories need their terms accepted on the hub)"
        ),
        401 | 403 => format!(" — {what} is gated or private: set HF_TOKEN to a token with access"),
        404 if has_token => format!(" — {what} not found (no such repository, revision or file)"),
        404 => format!(" — {what} not found (or private: set HF_TOKEN)"),
        429 => " — rate limited, and retries did not help".to_string(),
        _ => String::new(),
    };
    Error::Status { url: url.to_string(), status: status.as_u16(), hint }
}

/// Parses and checks the model info answer.
pub fn parse_listing(body: &[u8], repo: &str, revision: &str) -> Result<Listing, String> {
    let info: ModelInfo =
        serde_json::from_slice(body).map_err(|e| format!("not the model info the hub returns: {e}"))?;
    let commit = info.sha.ok_or("the answer names no commit (`sha`)")?.to_ascii_lowercase();
    if !is_hex(&commit, &[40, 64]) {
        return Err(format!("the commit {commit:?} is not a hex object id"));
    }
    let siblings = info.siblings.ok_or("the answer lists no files (`siblings`)")?;
    if siblings.len() > MAX_FILES {
        return Err(format!("{} files listed; at most {MAX_FILES} are accepted", siblings.len()));
    }
    let mut files = Vec::with_capacity(siblings.len());
    for s in siblings {
        check_path(&s.rfilename).map_err(|why| format!("unsafe file path {:?}: {why}", s.rfilename))?;
        let lfs = s.lfs.as_ref();
        let sha256 = lfs
            .and_then(|l| l.sha256.clone().or_else(|| l.oid.clone()))
            .map(|d| d.strip_prefix("sha256:").unwrap_or(&d).to_ascii_lowercase());
        if let Some(d) = &sha256
            && !is_hex(d, &[64])
        {
            return Err(format!("{}: LFS digest {d:?} is not a SHA-256", s.rfilename));
        }
        let git_blob = s.blob_id.as_deref().map(BlobId::parse);
        let size = lfs.and_then(|l| l.size).or(s.size);
        files.push(HubFile {
            path: s.rfilename,
            size,
            // The blob id of an LFS file is the pointer's, not the content's: only a malformed
            // one is kept, to be reported.
            git_blob: if sha256.is_some() {
                git_blob.filter(|b| matches!(b, BlobId::Unexpected(_)))
            } else {
                git_blob
            },
            sha256,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(format!("{} is listed twice", w[0].path));
    }
    let gated = !matches!(info.gated, serde_json::Value::Null | serde_json::Value::Bool(false));
    Ok(Listing { repo: repo.to_string(), revision: revision.to_string(), commit, files, gated })
}

/// A path in a repository must be relative, `/`-separated and stay inside it: it becomes part
/// of URLs, report paths and, with `--download-dir`, a file name.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err("empty or too long");
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err("absolute, or contains a backslash");
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("contains control characters");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err("has an empty, '.' or '..' component");
        }
        if part.len() >= 2 && part.as_bytes()[1] == b':' {
            return Err("looks like a drive letter");
        }
        if is_git_dir(part) {
            return Err(
                "has a .git component (git never stores one; written out, it would plant git configuration or hooks)",
            );
        }
    }
    Ok(())
}

/// True for a path component that a file system may take for `.git`: in any case, with the
/// trailing dots and spaces and `:stream` suffix Windows drops, as the 8.3 short name `git~1`,
/// or with the zero-width characters macOS ignores in names. (Git itself refuses all of these
/// in a tree for the same reason.)
fn is_git_dir(part: &str) -> bool {
    let visible: String = part
        .chars()
        .filter(|c| {
            !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
        })
        .collect();
    let name = visible.split(':').next().unwrap_or("").trim_end_matches(['.', ' ']).to_lowercase();
    name == ".git" || name == "git~1"
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{
      "_id": "x", "id": "org/name", "sha": "0123456789ABCDEF0123456789abcdef01234567",
      "gated": false, "private": false,
      "siblings": [
        {"rfilename": "config.json", "size": 2, "blobId": "9e26dfeeb6e641a33dae4961196235bdb965b21b"},
        {"rfilename": "pytorch_model.bin", "size": 1597, "blobId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "lfs": {"sha256": "9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c", "size": 1597, "pointerSize": 134}},
        {"rfilename": "sub/model.safetensors", "size": 10, "lfs": {"oid": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "size": 10}}
      ]}"#;

    #[test]
    fn the_real_answer_shape_parses() {
        let l = parse_listing(INFO.as_bytes(), "org/name", "main").unwrap();
        assert_eq!(l.commit, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(l.files.len(), 3);
        assert_eq!(
            l.files[0].git_blob,
            Some(BlobId::Sha1("9e26dfeeb6e641a33dae4961196235bdb965b21b".into()))
        );
        assert!(l.files[1].sha256.is_some() && l.files[1].git_blob.is_none());
        assert_eq!(l.files[2].sha256.as_deref(), Some(&"0".repeat(64)[..]));
        assert!(!l.gated);
    }

    #[test]
    fn hostile_answers_are_refused() {
        let with = |name: &str| INFO.replace("sub/model.safetensors", name);
        for bad in ["../escape", "/abs", "a//b", "a\\b", "a/./b", "C:evil", "a\u{1}b"] {
            let text = with(&bad.replace('\\', "\\\\").replace('\u{1}', "\\u0001"));
            assert!(parse_listing(text.as_bytes(), "o/n", "main").is_err(), "{bad}");
        }
        for git in [
            ".git/config",
            ".git/hooks/pre-commit",
            ".GIT/config",
            "sub/.Git/hooks/post-checkout",
            "a/b/c/.git",
            ".git./config",
            ".git . /config",
            "GIT~1/config",
            ".git::$INDEX_ALLOCATION/config",
            ".g\\u200cit/config",
            "\\ufeff.git/config",
        ] {
            let text = with(git);
            let err = parse_listing(text.as_bytes(), "o/n", "main").unwrap_err();
            assert!(err.contains(".git component"), "{git}: {err}");
        }
        for fine in [".gitattributes", ".github/workflows/x.yml", "git/config", "a.git/x", ".gitkeep"] {
            assert!(parse_listing(with(fine).as_bytes(), "o/n", "main").is_ok(), "{fine}");
        }
        assert!(parse_listing(INFO.replace("0123456789ABCDEF", "xyz").as_bytes(), "o/n", "m").is_err());
        assert!(parse_listing(b"[]", "o/n", "m").is_err());
        let twice = INFO.replace("sub/model.safetensors", "config.json");
        assert!(parse_listing(twice.as_bytes(), "o/n", "m").is_err());
    }

    #[test]
    fn blob_ids_are_classified_not_refused() {
        let sha256 = "AB".repeat(32);
        assert_eq!(BlobId::parse(&sha256), BlobId::Sha256("ab".repeat(32)));
        assert_eq!(BlobId::parse(&"0".repeat(40)), BlobId::Sha1("0".repeat(40)));
        for odd in
            ["", "xyz", &"0".repeat(41), &"0".repeat(63), "sha1:9e26dfeeb6e641a33dae4961196235bdb965b21b"]
        {
            assert!(matches!(BlobId::parse(odd), BlobId::Unexpected(_)), "{odd}");
        }
        assert_eq!(BlobId::parse(&"z".repeat(5000)), BlobId::Unexpected("z".repeat(100)));
        // In a listing: kept for a file in git; for a file in LFS only when malformed.
        let odd = INFO.replace("9e26dfeeb6e641a33dae4961196235bdb965b21b", "not-an-id");
        let l = parse_listing(odd.as_bytes(), "o/n", "m").unwrap();
        assert_eq!(l.files[0].git_blob, Some(BlobId::Unexpected("not-an-id".into())));
        let odd = INFO.replace(&"a".repeat(40), "not-an-id");
        let l = parse_listing(odd.as_bytes(), "o/n", "m").unwrap();
        assert_eq!(l.files[1].git_blob, Some(BlobId::Unexpected("not-an-id".into())));
        let sha = INFO.replace("9e26dfeeb6e641a33dae4961196235bdb965b21b", &"c".repeat(64));
        let l = parse_listing(sha.as_bytes(), "o/n", "m").unwrap();
        assert_eq!(l.files[0].git_blob, Some(BlobId::Sha256("c".repeat(64))));
    }

    #[test]
    fn urls_are_built_by_segment() {
        let e = Url::parse("https://huggingface.co").unwrap();
        assert_eq!(
            info_url(&e, "org/name", "refs/pr/1").unwrap().as_str(),
            "https://huggingface.co/api/models/org/name/revision/refs%2Fpr%2F1?blobs=true"
        );
        assert_eq!(
            resolve_url(&e, "org/name", "abc", "dir/a b#.bin").unwrap().as_str(),
            "https://huggingface.co/org/name/resolve/abc/dir/a%20b%23.bin"
        );
        let mirror = Url::parse("https://mirror.example/hf/").unwrap();
        assert_eq!(
            resolve_url(&mirror, "o/n", "c", "f").unwrap().as_str(),
            "https://mirror.example/hf/o/n/resolve/c/f"
        );
    }
}
