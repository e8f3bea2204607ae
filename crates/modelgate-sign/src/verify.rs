//! Verifying a model (a directory or a file) against a signature file and a set of acceptable
//! signers.

use crate::bundle::{Bundle, Content, pae};
use crate::keyless::{self, Subject};
use crate::model::{self, Changed, ContentMismatch, Model, SignedFile};
use crate::statement::Statement;
use crate::{Error, HashAlg, MAX_SIGNATURE_BYTES, Rejection, Signer, hex, x509};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How the signer was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sigstore keyless (Fulcio certificate, transparency log).
    Keyless,
    /// A public key.
    Key,
    /// A certificate chain to a given root.
    Certificate,
}

impl Mode {
    /// `keyless`, `key` or `certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Keyless => "keyless",
            Mode::Key => "key",
            Mode::Certificate => "certificate",
        }
    }
}

/// Who signed, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    /// The mode that accepted the signature.
    pub mode: Mode,
    /// Keyless: the certificate SAN; certificate mode: the SANs of the signing certificate.
    pub identity: Option<String>,
    /// Keyless: the OIDC issuer.
    pub issuer: Option<String>,
    /// Key mode: the key's fingerprint (`sha256:` of its SubjectPublicKeyInfo) and file.
    pub key: Option<String>,
    /// Certificate mode: subjects from the signing certificate to the root.
    pub chain: Vec<String>,
    /// A transparency-log entry was verified.
    pub transparency_log: bool,
    /// Verified signing times (log integration time, RFC 3161 timestamps).
    pub timestamps: Vec<String>,
}

impl fmt::Display for SignerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::Keyless => write!(
                f,
                "{} (issuer {})",
                self.identity.as_deref().unwrap_or("?"),
                self.issuer.as_deref().unwrap_or("?")
            ),
            Mode::Key => write!(f, "key {}", self.key.as_deref().unwrap_or("?")),
            Mode::Certificate => {
                write!(f, "certificate {}", self.chain.join(" → "))?;
                if let Some(san) = &self.identity {
                    write!(f, " (SAN {san})")?;
                }
                Ok(())
            }
        }
    }
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `model_signing`, `cosign-bundle` or `cosign-legacy-bundle`.
    pub format: &'static str,
    /// The signer.
    pub signer: SignerInfo,
    /// The signed root digest (`sha256:<hex>`) of a model_signing signature.
    pub root_digest: Option<String>,
    /// The statement's subject name (the model's name when it was signed).
    pub subject: Option<String>,
    /// How files were hashed (`files, sha256`).
    pub serialization: Option<String>,
    /// The ignore paths recorded in the signature.
    pub ignore_paths: Vec<String>,
    /// Every signed file, as verified.
    pub files: Vec<SignedFile>,
    /// Files present in the model that the signature leaves out because of ignore paths beyond
    /// the git defaults and the signature file (the signer's `--ignore-paths`, or
    /// [`Request::extra_ignores`]).
    pub excluded: Vec<String>,
    /// Files that had to be read again (digests the scan had not computed: BLAKE2b/BLAKE3,
    /// shards, files outside the scan).
    pub rehashed: usize,
}

/// What to verify.
pub struct Request<'a> {
    /// The model: a directory, or a single file.
    pub model: &'a Path,
    /// The signature file.
    pub signature: &'a Path,
    /// Acceptable signers: any one is enough.
    pub signers: &'a [Signer],
    /// More paths (relative to the model) to leave out, like model_signing's `--ignore-paths`.
    pub extra_ignores: &'a [String],
    /// SHA-256 digests the scan already computed, by the path it opened.
    pub known_sha256: Option<&'a HashMap<PathBuf, [u8; 32]>>,
    /// The time certificates must be valid at (certificate mode).
    pub now: SystemTime,
}

/// Verifies the model against the signature.
pub fn verify(req: &Request<'_>) -> Result<Verified, Error> {
    let bundle = open_bundle(req)?;
    match &bundle.content {
        Content::Dsse { payload_type, payload, signatures } => {
            if payload_type != "application/vnd.in-toto+json" {
                return Err(Error::unsupported(format!(
                    "DSSE payload type {payload_type:?} is not an in-toto statement"
                )));
            }
            let statement = Statement::parse(payload)?;
            let message = pae(payload_type, payload);
            let signer = authenticate(req, &bundle, &Subject::Sha256(statement.root_digest), |key| {
                any_signature(key, &message, signatures)
            })?;
            let matched = model::compare(
                &Model {
                    path: req.model,
                    signature: Some(req.signature),
                    extra_ignores: req.extra_ignores,
                    known_sha256: req.known_sha256,
                },
                &statement,
            )?;
            Ok(Verified {
                format: "model_signing",
                signer,
                root_digest: Some(format!("sha256:{}", hex(&statement.root_digest))),
                subject: Some(statement.subject_name.clone()),
                serialization: Some(statement.serialization.to_string()),
                ignore_paths: statement.serialization.ignore_paths.clone(),
                files: matched.files,
                excluded: matched.excluded,
                rehashed: matched.rehashed,
            })
        }
        Content::Message { digest, signature } => verify_blob(req, &bundle, digest.as_ref(), signature),
    }
}

/// Verifies a signature over one file whatever it signs: a cosign blob signature, or a DSSE
/// attestation (any predicate) one of whose subjects is the file's SHA-256. This is what
/// sigstore-conformance's `bundle-verify` cases exercise; models use [`verify`].
pub fn verify_artifact(req: &Request<'_>) -> Result<SignerInfo, Error> {
    let bundle = open_bundle(req)?;
    match &bundle.content {
        Content::Message { digest, signature } => {
            verify_blob(req, &bundle, digest.as_ref(), signature).map(|v| v.signer)
        }
        Content::Dsse { payload_type, payload, signatures } => {
            let actual: [u8; 32] = model::hash_file(req.model, HashAlg::Sha256)?
                .try_into()
                .map_err(|_| Error::Input("SHA-256 digest of the wrong length".into()))?;
            let statement: serde_json::Value = serde_json::from_slice(payload)
                .map_err(|e| Error::malformed(format!("the DSSE payload is not JSON: {e}")))?;
            let subjects = statement.get("subject").and_then(|s| s.as_array()).cloned().unwrap_or_default();
            let bound = subjects.iter().any(|s| {
                s.pointer("/digest/sha256").and_then(|d| d.as_str()).and_then(crate::unhex).as_deref()
                    == Some(&actual[..])
            });
            let message = pae(payload_type, payload);
            let signer = authenticate(req, &bundle, &Subject::Sha256(actual), |key| {
                any_signature(key, &message, signatures)
            })?;
            if !bound {
                return Err(Error::Rejected(Rejection::Content(ContentMismatch {
                    changed: vec![Changed {
                        path: req.model.display().to_string(),
                        detail: format!(
                            "no subject of the attestation has the file's sha256 {}",
                            hex(&actual)
                        ),
                    }],
                    ..ContentMismatch::default()
                })));
            }
            Ok(signer)
        }
    }
}

fn open_bundle(req: &Request<'_>) -> Result<Bundle, Error> {
    let bundle = Bundle::parse(&read_signature(req.signature)?)?;
    if req.signers.is_empty() {
        return Err(Error::Input("no signer to verify against".into()));
    }
    Ok(bundle)
}

/// Accepts if any of the envelope's signatures verifies with the key.
fn any_signature(key: &crate::PublicKey, message: &[u8], signatures: &[Vec<u8>]) -> Result<(), String> {
    signatures
        .iter()
        .map(|s| key.verify_message(message, s))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| Err("no signature".into()))
}

fn read_signature(path: &Path) -> Result<String, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::Input(format!("{}: not a regular file", path.display())));
    }
    if meta.len() > MAX_SIGNATURE_BYTES {
        return Err(Error::malformed(format!(
            "{} is {} bytes, more than a signature file can be ({MAX_SIGNATURE_BYTES})",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| Error::malformed(format!("{} is not UTF-8 text", path.display())))
}

/// A cosign blob signature: the model is one file, signed over its SHA-256 digest.
fn verify_blob(
    req: &Request<'_>,
    bundle: &Bundle,
    recorded: Option<&(String, Vec<u8>)>,
    signature: &[u8],
) -> Result<Verified, Error> {
    let meta =
        std::fs::metadata(req.model).map_err(|e| Error::Input(format!("{}: {e}", req.model.display())))?;
    if !meta.is_file() {
        return Err(Error::Rejected(Rejection::Content(ContentMismatch {
            shape: Some(format!(
                "a cosign bundle signs one file, but {} is a directory",
                req.model.display()
            )),
            ..ContentMismatch::default()
        })));
    }
    let (actual, rehashed) = match req.known_sha256.and_then(|k| k.get(req.model)) {
        Some(d) => (d.to_vec(), 0),
        None => (model::hash_file(req.model, HashAlg::Sha256)?, 1),
    };
    let signed = match recorded {
        Some((alg, d)) if alg.eq_ignore_ascii_case("SHA2_256") || alg == "sha256" => d.clone(),
        Some((alg, _)) => return Err(Error::unsupported(format!("message digest algorithm {alg}"))),
        None => actual.clone(),
    };
    let signed_arr: [u8; 32] = signed
        .clone()
        .try_into()
        .map_err(|_| Error::malformed("the message digest is not a SHA-256 digest"))?;
    let signer = authenticate(req, bundle, &Subject::Sha256(signed_arr), |key| {
        if key.curve() == crate::keys::Curve::P256 {
            key.verify_prehash(&signed, signature)
        } else {
            // Other curves sign a different hash of the file: read it again, streaming.
            let prehash = key.curve().hash_file(req.model).map_err(|e| e.to_string())?;
            key.verify_prehash(&prehash, signature)
        }
    })?;
    if signed != actual {
        return Err(Error::Rejected(Rejection::Content(ContentMismatch {
            changed: vec![Changed {
                path: req.model.display().to_string(),
                detail: format!("signed sha256 {}, found {}", hex(&signed), hex(&actual)),
            }],
            ..ContentMismatch::default()
        })));
    }
    Ok(Verified {
        format: if bundle.legacy_cosign { "cosign-legacy-bundle" } else { "cosign-bundle" },
        signer,
        root_digest: None,
        subject: None,
        serialization: None,
        ignore_paths: Vec::new(),
        files: vec![SignedFile { path: ".".into(), algorithm: "sha256".into(), digest: hex(&actual) }],
        excluded: Vec::new(),
        rehashed,
    })
}

/// Why one signer did not accept a signature.
pub(crate) struct Refusal {
    reason: String,
    /// The signature is authentic, made by someone the signer does not name.
    other_signer: bool,
}

impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal::invalid(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Refusal {
        Refusal::invalid(reason)
    }
}

impl Refusal {
    pub(crate) fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into(), other_signer: false }
    }

    pub(crate) fn other_signer(reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into(), other_signer: true }
    }

    fn context(self, what: &str) -> Refusal {
        Refusal { reason: format!("{what}: {}", self.reason), ..self }
    }
}

/// Tries every signer; the first that accepts the signature wins. `check_key` verifies the
/// signature with a key (key and certificate modes).
fn authenticate(
    req: &Request<'_>,
    bundle: &Bundle,
    subject: &Subject,
    check_key: impl Fn(&crate::PublicKey) -> Result<(), String>,
) -> Result<SignerInfo, Error> {
    let mut refusals = Vec::new();
    for signer in req.signers {
        let outcome = match signer {
            Signer::Key(key) => check_key(key)
                .map(|()| SignerInfo {
                    mode: Mode::Key,
                    identity: None,
                    issuer: None,
                    key: Some(format!("{} ({})", key.fingerprint(), key.source)),
                    chain: Vec::new(),
                    transparency_log: false,
                    timestamps: Vec::new(),
                })
                .map_err(|e| Refusal::invalid(format!("key {} ({}): {e}", key.fingerprint(), key.source))),
            Signer::Certificate { anchors, identity } => {
                certificate(req, bundle, anchors, identity.as_ref(), &check_key)
                    .map_err(|r| r.context(&format!("certificate chain to {}", anchors.source)))
            }
            Signer::Keyless { identity, issuer, trusted_root } => {
                keyless::verify_keyless(bundle, subject, identity, issuer, trusted_root)
                    .map(|k| SignerInfo {
                        mode: Mode::Keyless,
                        identity: Some(k.identity),
                        issuer: Some(k.issuer),
                        key: None,
                        chain: Vec::new(),
                        transparency_log: k.tlog,
                        timestamps: k.timestamps,
                    })
                    .map_err(|r| r.context("keyless"))
            }
        };
        match outcome {
            Ok(info) => return Ok(info),
            Err(r) => refusals.push(r),
        }
    }
    let authentic = refusals.iter().any(|r| r.other_signer);
    let reasons = refusals.into_iter().map(|r| r.reason).collect();
    Err(Error::Rejected(if authentic {
        Rejection::OtherSigner(reasons)
    } else {
        Rejection::Untrusted(reasons)
    }))
}

/// The certificate mode: chain, signature, then the SAN (so that a SAN mismatch means an
/// authentic signature by someone else).
fn certificate(
    req: &Request<'_>,
    bundle: &Bundle,
    anchors: &x509::Anchors,
    identity: Option<&crate::Matcher>,
    check_key: &impl Fn(&crate::PublicKey) -> Result<(), String>,
) -> Result<SignerInfo, Refusal> {
    let leaf = x509::verify_chain(&bundle.certificates, anchors, req.now).map_err(Refusal::invalid)?;
    check_key(&leaf.key).map_err(|e| Refusal::invalid(format!("signing certificate: {e}")))?;
    if let Some(m) = identity
        && !leaf.sans.iter().any(|s| m.matches(s))
    {
        return Err(Refusal::other_signer(format!(
            "the signing certificate's SAN {:?} does not match the required identity {m}",
            leaf.sans
        )));
    }
    Ok(SignerInfo {
        mode: Mode::Certificate,
        identity: (!leaf.sans.is_empty()).then(|| leaf.sans.join(", ")),
        issuer: None,
        key: None,
        chain: leaf.chain,
        transparency_log: false,
        timestamps: Vec::new(),
    })
}
