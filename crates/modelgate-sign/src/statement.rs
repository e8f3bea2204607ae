//! The in-toto statement of an OpenSSF Model Signing signature, parsed from the exact payload
//! bytes that were signed (never re-serialized: its key order is not stable).

use crate::digest::{HashAlg, oms_root_digest};
use crate::{Error, hex, unhex};
use serde_json::Value;
use std::collections::HashSet;

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The model_signing 1.x predicate (also written by 0.3).
pub const PREDICATE_V1: &str = "https://model_signing/signature/v1.0";
/// The model_signing 0.2 predicate, signed with a non-standard PAE.
pub const PREDICATE_LEGACY: &str = "https://model_signing/Digests/v0.1";

const MAX_RESOURCES: usize = 10_000_000;

/// How the model was serialized for signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// One digest per file.
    Files,
    /// One digest per `size`-byte shard of each non-empty file.
    Shards {
        /// Shard size in bytes.
        size: u64,
    },
}

/// The signed serialization parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    /// Files or shards.
    pub method: Method,
    /// The per-file (or per-shard) hash.
    pub hash: HashAlg,
    /// Whether the signer followed symbolic links.
    pub allow_symlinks: bool,
    /// Paths the signer left out (relative to the model root); recorded since model_signing 1.1.
    pub ignore_paths: Vec<String>,
}

impl std::fmt::Display for Serialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.method {
            Method::Files => write!(f, "files, {}", self.hash.name()),
            Method::Shards { size } => write!(f, "shards of {size} bytes, {}", self.hash.name()),
        }
    }
}

/// One signed resource: a file (`path`) or a shard (`path:start:end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The file's path relative to the model (`.` for a single-file model).
    pub path: String,
    /// For shards, the byte range `[start, end)`.
    pub range: Option<(u64, u64)>,
    /// The raw digest.
    pub digest: Vec<u8>,
}

/// A parsed and self-consistent model_signing statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// `subject[0].name` (the model's directory or file name when signed; informative only).
    pub subject_name: String,
    /// The root digest the signature is over.
    pub root_digest: [u8; 32],
    /// How the files were hashed.
    pub serialization: Serialization,
    /// Every signed file or shard, in statement order.
    pub resources: Vec<Resource>,
}

impl Statement {
    /// Parses and checks the payload: statement type, predicate, one SHA-256 subject, the
    /// serialization, every resource, and that the subject is the root digest of the resources.
    pub fn parse(payload: &[u8]) -> Result<Statement, Error> {
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| Error::malformed(format!("the signed statement is not JSON: {e}")))?;
        let str_at = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        match str_at(&v, "_type").as_deref() {
            Some(STATEMENT_TYPE) => {}
            other => {
                return Err(Error::malformed(format!(
                    "the payload is not an in-toto v1 statement (_type {other:?})"
                )));
            }
        }
        match str_at(&v, "predicateType").as_deref() {
            Some(PREDICATE_V1) => {}
            Some(PREDICATE_LEGACY) => {
                return Err(Error::unsupported(
                    "model_signing 0.2 format (predicate https://model_signing/Digests/v0.1, signed with a non-standard PAE); re-sign the model with model_signing 1.x",
                ));
            }
            other => {
                return Err(Error::unsupported(format!(
                    "predicate {other:?} is not an OpenSSF Model Signing signature ({PREDICATE_V1})"
                )));
            }
        }
        let subjects = v.get("subject").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let [subject] = subjects else {
            return Err(Error::malformed(format!(
                "a model signature has exactly one subject, this one has {}",
                subjects.len()
            )));
        };
        let subject_name = str_at(subject, "name").unwrap_or_default();
        let root_hex = subject.get("digest").and_then(|d| str_at(d, "sha256")).unwrap_or_default();
        let root_digest: [u8; 32] = unhex(&root_hex).and_then(|d| d.try_into().ok()).ok_or_else(|| {
            Error::malformed(format!("subject sha256 digest {root_hex:?} is not 64 hex digits"))
        })?;

        let predicate =
            v.get("predicate").ok_or_else(|| Error::malformed("the statement has no predicate"))?;
        let serialization = parse_serialization(
            predicate
                .get("serialization")
                .ok_or_else(|| Error::malformed("the predicate has no serialization"))?,
        )?;
        let raw = predicate
            .get("resources")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::malformed("the predicate has no resources list"))?;
        if raw.is_empty() {
            return Err(Error::malformed("the signature lists no files"));
        }
        if raw.len() > MAX_RESOURCES {
            return Err(Error::malformed(format!(
                "{} resources is more than this verifier accepts",
                raw.len()
            )));
        }
        let expected_alg = match serialization.method {
            Method::Files => serialization.hash.name().to_string(),
            Method::Shards { size } => format!("{}-sharded-{size}", serialization.hash.name()),
        };
        let mut resources = Vec::with_capacity(raw.len());
        let mut seen = HashSet::new();
        for r in raw {
            let name = str_at(r, "name").ok_or_else(|| Error::malformed("a resource has no name"))?;
            let algorithm = str_at(r, "algorithm").unwrap_or_default();
            if algorithm != expected_alg {
                return Err(Error::malformed(format!(
                    "resource {name:?} is hashed with {algorithm:?}, but the serialization says {expected_alg:?}"
                )));
            }
            let digest_hex = str_at(r, "digest").unwrap_or_default();
            let digest = unhex(&digest_hex)
                .filter(|d| d.len() == serialization.hash.digest_len())
                .ok_or_else(|| {
                    Error::malformed(format!(
                        "resource {name:?}: digest {digest_hex:?} is not a {algorithm} digest"
                    ))
                })?;
            let (path, range) = match serialization.method {
                Method::Files => (name.clone(), None),
                Method::Shards { .. } => parse_shard(&name)?,
            };
            check_path(&path)?;
            if !seen.insert(name.clone()) {
                return Err(Error::malformed(format!("resource {name:?} is listed twice")));
            }
            resources.push(Resource { path, range, digest });
        }
        if resources.iter().any(|r| r.path == ".") && resources.iter().any(|r| r.path != ".") {
            return Err(Error::malformed(
                "the statement mixes a single-file resource \".\" with named files",
            ));
        }
        let recomputed = oms_root_digest(resources.iter().map(|r| r.digest.as_slice()));
        if recomputed != root_digest {
            return Err(Error::malformed(format!(
                "the subject digest sha256:{} is not the root digest of the listed files (sha256:{})",
                hex(&root_digest),
                hex(&recomputed)
            )));
        }
        Ok(Statement { subject_name, root_digest, serialization, resources })
    }
}

fn parse_serialization(s: &Value) -> Result<Serialization, Error> {
    let hash_name = s.get("hash_type").and_then(Value::as_str).unwrap_or_default();
    let hash = HashAlg::from_name(hash_name).ok_or_else(|| {
        Error::unsupported(format!("hash_type {hash_name:?} (sha256, blake2b and blake3 are supported)"))
    })?;
    let method = match s.get("method").and_then(Value::as_str) {
        Some("files") => Method::Files,
        Some("shards") => {
            // protobuf's Struct writes numbers as doubles: 64.0.
            let size = s.get("shard_size").and_then(Value::as_f64).unwrap_or(0.0);
            if !(size >= 1.0 && size.fract() == 0.0 && size <= 9.0e15) {
                return Err(Error::malformed(format!(
                    "shard_size {:?} is not a positive integer",
                    s.get("shard_size")
                )));
            }
            Method::Shards { size: size as u64 }
        }
        other => {
            return Err(Error::unsupported(format!(
                "serialization method {other:?} (files and shards are supported)"
            )));
        }
    };
    let allow_symlinks = s.get("allow_symlinks").and_then(Value::as_bool).unwrap_or(false);
    let mut ignore_paths = Vec::new();
    if let Some(list) = s.get("ignore_paths") {
        let list = list.as_array().ok_or_else(|| Error::malformed("ignore_paths is not a list"))?;
        for p in list {
            let p = p.as_str().ok_or_else(|| Error::malformed("ignore_paths holds a non-string"))?;
            let norm = p.trim_start_matches("./").trim_end_matches('/');
            if norm.is_empty() || norm == "." {
                return Err(Error::malformed(format!(
                    "ignore_paths contains {p:?}, which would leave the whole model unsigned"
                )));
            }
            ignore_paths.push(norm.to_string());
        }
    }
    Ok(Serialization { method, hash, allow_symlinks, ignore_paths })
}

fn parse_shard(name: &str) -> Result<(String, Option<(u64, u64)>), Error> {
    let bad = || Error::malformed(format!("shard name {name:?} is not path:start:end"));
    let mut parts = name.rsplitn(3, ':');
    let end: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let start: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let path = parts.next().ok_or_else(bad)?;
    if start >= end {
        return Err(bad());
    }
    Ok((path.to_string(), Some((start, end))))
}

/// A resource path must be relative and stay inside the model.
fn check_path(path: &str) -> Result<(), Error> {
    if path == "." {
        return Ok(());
    }
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::malformed(format!("resource path {path:?} is not a plain relative path")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rejection;
    use sha2::{Digest, Sha256};

    fn statement(resources: &str, serialization: &str, root: &str) -> String {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"m","digest":{{"sha256":"{root}"}}}}],
            "predicateType":"https://model_signing/signature/v1.0",
            "predicate":{{"serialization":{serialization},"resources":[{resources}]}}}}"#
        )
    }

    fn malformed(text: &str) -> String {
        match Statement::parse(text.as_bytes()) {
            Err(Error::Rejected(Rejection::Malformed(m) | Rejection::Unsupported(m))) => m,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn parses_files_and_shards_and_checks_the_root() {
        let d1 = Sha256::digest(b"one");
        let d2 = Sha256::digest(b"two");
        let mut h = Sha256::new();
        h.update(d1);
        h.update(d2);
        let root = hex(&h.finalize());
        let res = format!(
            r#"{{"name":"a.bin:0:64","algorithm":"sha256-sharded-64","digest":"{}"}},{{"name":"a.bin:64:70","algorithm":"sha256-sharded-64","digest":"{}"}}"#,
            hex(&d1),
            hex(&d2)
        );
        let ser = r#"{"method":"shards","hash_type":"sha256","shard_size":64.0,"allow_symlinks":false}"#;
        let s = Statement::parse(statement(&res, ser, &root).as_bytes()).unwrap();
        assert_eq!(s.serialization.method, Method::Shards { size: 64 });
        assert_eq!(s.resources[1].range, Some((64, 70)));
        assert_eq!(s.resources[1].path, "a.bin");
        // A wrong subject is caught before any file is read.
        let m = malformed(&statement(&res, ser, &"0".repeat(64)));
        assert!(m.contains("not the root digest"), "{m}");
    }

    #[test]
    fn hostile_statements_are_rejected_with_reasons() {
        let d = hex(&Sha256::digest(b"x"));
        let root = hex(&Sha256::digest(Sha256::digest(b"x")));
        let files = r#"{"method":"files","hash_type":"sha256"}"#;
        let one = |name: &str| format!(r#"{{"name":"{name}","algorithm":"sha256","digest":"{d}"}}"#);
        assert!(malformed(&statement(&one("../etc/passwd"), files, &root)).contains("relative path"));
        assert!(malformed(&statement(&one("/abs"), files, &root)).contains("relative path"));
        assert!(malformed(&statement("", files, &root)).contains("no files"));
        assert!(
            malformed(&statement(&one("a"), r#"{"method":"files","hash_type":"md5"}"#, &root))
                .contains("md5")
        );
        assert!(
            malformed(&statement(
                &one("a"),
                r#"{"method":"files","hash_type":"sha256","ignore_paths":["."]}"#,
                &root
            ))
            .contains("whole model")
        );
        assert!(malformed(&statement(&format!("{},{}", one("a"), one("a")), files, &root)).contains("twice"));
        let wrong_alg = format!(r#"{{"name":"a","algorithm":"blake3","digest":"{d}"}}"#);
        assert!(malformed(&statement(&wrong_alg, files, &root)).contains("blake3"));
        assert!(malformed("{").contains("not JSON"));
        assert!(malformed(r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://model_signing/Digests/v0.1"}"#).contains("0.2"));
        assert!(malformed(r#"[1,2]"#).contains("in-toto"));
        let shards = r#"{"method":"shards","hash_type":"sha256","shard_size":-1}"#;
        assert!(malformed(&statement(&one("a:0:1"), shards, &root)).contains("shard_size"));
    }
}
