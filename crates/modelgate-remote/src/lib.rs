//! Remote model sources: Hugging Face repositories (`hf://org/name[@revision]`) and plain
//! HTTPS URLs, scanned as they download.
//!
//! [`http::Http`] is the one place that talks to servers: it follows redirects itself (so the
//! Hugging Face token goes only to the hub's own origin, and no hop downgrades to plain HTTP or
//! leads into a loopback, link-local or private range the source is not in), retries 429 and 5xx
//! answers with backoff (honouring `Retry-After`), and applies connect and read timeouts and a
//! per-file deadline ([`http::Deadline`]). [`hub::list`] asks the hub
//! which commit a revision is and which files it holds, with each file's size and the digest
//! the hub keeps for it (the LFS SHA-256, or the git blob id of small files). [`fetch::fetch`]
//! streams one file's body into the scanner (`modelgate_formats::scan_reader_at`): every byte is
//! read once, hashed and parsed as it arrives; when a format needs random access (a zip's central
//! directory), [`range::RangeAccess`] serves it with HTTP range requests whose bytes are checked
//! against the body as it streams past. Nothing is written to disk unless a download directory is
//! given, and then only to a fresh temporary file the caller keeps or discards.
//!
//! HTTP answers are hostile input: API bodies, file counts, paths, redirects, retries and
//! random-access traffic are all bounded, and every digest and path the hub lists is validated
//! before use.

pub mod fetch;
pub mod http;
pub mod hub;
pub mod mlflow;
pub mod objstore;
pub mod oci;
pub mod range;

pub use reqwest::Url;

/// Why a remote source could not be read. Problems with the *content* (a digest that does not
/// match) are [`fetch::Problem`]s, never errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The argument is not a usable remote source.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached or the transfer failed.
    #[error("{url}: {why}")]
    Transfer {
        /// The URL (without query or credentials).
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        /// The URL (without query or credentials).
        url: String,
        /// The status code.
        status: u16,
        /// A hint on what to do (starts with a separator), or empty.
        hint: String,
    },
    /// The hub's answer is unusable (malformed, too large, unsafe).
    #[error("{url}: {why}")]
    Api {
        /// The URL (without query or credentials).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A downloaded file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A remote source named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Hugging Face model repository.
    Hub {
        /// `org/name`.
        repo: String,
        /// The revision asked for (branch, tag or commit), if any.
        revision: Option<String>,
    },
    /// One file at an HTTP(S) URL.
    Url(Url),
    /// An artifact in an OCI registry (`oci://registry/repository[:tag][@digest]`).
    Oci(oci::Reference),
    /// Objects under a prefix of a cloud object store (`s3://`, `gs://`, `az://`).
    Object(objstore::Location),
    /// A model version or run artifacts on an MLflow tracking server (`models:/…`, `runs:/…`).
    Mlflow(mlflow::Reference),
}

/// Longest repository id part, revision and URL accepted.
const MAX_NAME: usize = 96;
const MAX_REVISION: usize = 256;
const MAX_URL: usize = 4096;

/// True if a command-line argument names a remote source rather than a local path.
pub fn is_remote(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("hf://")
        || lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("oci://")
        || ["s3://", "gs://", "az://"].iter().any(|s| lower.starts_with(s))
        || mlflow::Reference::is_mlflow(arg)
}

impl Source {
    /// Parses `hf://org/name[@revision]` or an `https://` URL (`http://` only for loopback
    /// hosts: a mirror or a test server on this machine).
    pub fn parse(arg: &str) -> Result<Source, Error> {
        let bad = |why: &str| Error::Usage(format!("{arg}: {why}"));
        if let Some(rest) = arg.strip_prefix("hf://") {
            let (repo, revision) = match rest.split_once('@') {
                Some((r, rev)) => (r, Some(rev)),
                None => (rest, None),
            };
            let repo = repo.trim_end_matches('/');
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || !parts.iter().all(|p| valid_repo_part(p)) {
                return Err(bad(
                    "expected hf://ORG/NAME[@REVISION] (letters, digits, '-', '_' and '.'; no '..')",
                ));
            }
            if let Some(rev) = revision
                && !valid_revision(rev)
            {
                return Err(bad(
                    "the revision must be a branch, tag or commit name (no spaces, '..' or control characters)",
                ));
            }
            return Ok(Source::Hub { repo: repo.to_string(), revision: revision.map(str::to_string) });
        }
        if arg.starts_with("oci://") {
            return oci::Reference::parse(arg).map(Source::Oci);
        }
        if ["s3://", "gs://", "az://"].iter().any(|s| arg.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(s)))
        {
            return objstore::Location::parse(arg).map(Source::Object);
        }
        if mlflow::Reference::is_mlflow(arg) {
            return mlflow::Reference::parse(arg).map(Source::Mlflow);
        }
        if arg.len() > MAX_URL {
            return Err(bad("URL too long"));
        }
        let url = Url::parse(arg).map_err(|e| bad(&format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if http::is_loopback(&url) => {}
            "http" => return Err(bad("plain http:// is only accepted for loopback hosts; use https://")),
            _ => {
                return Err(bad(
                    "only hf://, https:// and (for loopback hosts) http:// sources are supported",
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Usage(format!(
                "{}: credentials in URLs are not accepted (they would end up in reports)",
                display_url(&url)
            )));
        }
        if url.host_str().is_none() {
            return Err(bad("the URL has no host"));
        }
        Ok(Source::Url(url))
    }
}

fn valid_repo_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_NAME
        && !p.contains("..")
        && !p.starts_with(['-', '.'])
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_revision(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= MAX_REVISION
        && !r.contains("..")
        && !r.starts_with(['/', '-'])
        && !r.ends_with('/')
        && r.chars().all(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '\\' | '?' | '#' | '%'))
}

/// A URL as it may appear in reports and messages: scheme, host, port and path; never a query
/// (signed download URLs carry credentials there), a fragment or user information.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// True for a lowercase hex string of one of the given lengths.
pub(crate) fn is_hex(s: &str, lens: &[usize]) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_strictly() {
        assert_eq!(
            Source::parse("hf://org/name@main").unwrap(),
            Source::Hub { repo: "org/name".into(), revision: Some("main".into()) }
        );
        assert_eq!(
            Source::parse("hf://org/name").unwrap(),
            Source::Hub { repo: "org/name".into(), revision: None }
        );
        assert!(Source::parse("hf://org/name@refs/pr/1").is_ok());
        for bad in [
            "hf://org",
            "hf://org/na/me",
            "hf://../name",
            "hf://org/na me",
            "hf://org/name@",
            "hf://org/name@a b",
            "hf://org/name@../x",
            "http://example.com/x",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
        assert!(Source::parse("http://127.0.0.1:8080/x.bin").is_ok());
        let err = Source::parse("https://user:hunter2@example.com/x").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(is_remote("HF://x/y") && is_remote("https://x") && !is_remote("models/hf/x"));
    }

    #[test]
    fn displayed_urls_drop_queries() {
        let u = Url::parse("https://cdn.example/a/b.bin?X-Amz-Signature=secret#frag").unwrap();
        assert_eq!(display_url(&u), "https://cdn.example/a/b.bin");
    }
}
