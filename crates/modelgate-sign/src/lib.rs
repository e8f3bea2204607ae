//! Signature verification for ML models.
//!
//! - **OpenSSF Model Signing** (`model_signing` 0.3–1.x): a Sigstore bundle whose DSSE envelope
//!   carries an in-toto statement of predicate `https://model_signing/signature/v1.0`. The
//!   statement lists every file's digest (files or shards; SHA-256, BLAKE2b or BLAKE3) and signs
//!   their root digest. [`verify`] authenticates the envelope, then recomputes every digest with
//!   the signed serialization and reports each changed, extra and missing file.
//! - **cosign** `sign-blob --bundle` bundles for single files: the Sigstore bundle
//!   (`messageSignature`) and the legacy `{base64Signature, cert, rekorBundle}` form.
//!
//! Three ways to trust a signer ([`Signer`]): Sigstore keyless (Fulcio certificate, transparency
//! log, timestamps, checked against a trusted root by `sigstore-verify`; identity and issuer
//! matched exactly or by an anchored regular expression), a public key (ECDSA P-256/P-384/P-521,
//! what `model_signing sign key` uses), or a certificate chain to a given root (with validity at
//! the time of verification, key usage and SAN checks).
//!
//! Nothing here panics on hostile input: every field of a signature is length-checked and
//! parsed fallibly, and failures are [`Error::Rejected`] with the precise reason.

mod bundle;
mod digest;
mod identity;
mod keyless;
mod keys;
mod model;
mod statement;
mod verify;
mod x509;

pub use bundle::{Bundle, Content};
pub use digest::{HashAlg, oms_root_digest};
pub use identity::Matcher;
pub use keyless::{TrustedRoot, embedded_trusted_root, trusted_root_from_json};
pub use keys::PublicKey;
pub use model::{ContentMismatch, DEFAULT_IGNORED, SignedFile};
pub use statement::{Method, Serialization, Statement};
pub use verify::{Mode, Request, SignerInfo, Verified, verify, verify_artifact};
pub use x509::Anchors;

/// Largest signature file read (a statement for a million files is about 200 MB of JSON; real
/// ones are kilobytes to a few megabytes).
pub const MAX_SIGNATURE_BYTES: u64 = 256 << 20;

/// Who may have signed: any one of a list of these is enough.
#[derive(Debug, Clone)]
pub enum Signer {
    /// Sigstore keyless: a Fulcio certificate for `identity` issued on the word of `issuer`,
    /// logged and timestamped, all checked against `trusted_root`.
    Keyless {
        /// The certificate's SAN (a workflow URI, an email address).
        identity: Matcher,
        /// The OIDC issuer recorded in the certificate.
        issuer: Matcher,
        /// Fulcio CAs, Rekor and CT log keys, timestamp authorities.
        trusted_root: std::sync::Arc<TrustedRoot>,
    },
    /// One public key (`model_signing sign key`, `cosign sign-blob --key`).
    Key(PublicKey),
    /// A certificate chain to one of these roots (`model_signing sign certificate`), optionally
    /// with a required SAN.
    Certificate {
        /// The trust anchors.
        anchors: Anchors,
        /// The leaf certificate's SAN must match this (email, URI or DNS name), if given.
        identity: Option<Matcher>,
    },
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The verification could not run: a file that cannot be read, a key or root that cannot
    /// be parsed. Not a verdict about the model.
    #[error("{0}")]
    Input(String),
    /// The model is not verified, for this reason.
    #[error("{0}")]
    Rejected(Rejection),
}

/// A verdict of "not verified", with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The signature file is not a usable bundle (not JSON, bad base64, missing fields, a
    /// statement that contradicts itself).
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// A format or algorithm this version does not verify.
    #[error("unsupported signature: {0}")]
    Unsupported(String),
    /// No signer of the policy accepted the signature; one reason per signer tried.
    #[error("{}", .0.join("; "))]
    Untrusted(Vec<String>),
    /// The signature is authentic (it verifies against a configured root), but its signer's
    /// identity or issuer is not one the policy accepts; one reason per signer tried.
    #[error("{}", .0.join("; "))]
    OtherSigner(Vec<String>),
    /// The signature is authentic, but the model's files are not the ones it signs.
    #[error("{0}")]
    Content(ContentMismatch),
}

impl Error {
    pub(crate) fn malformed(msg: impl Into<String>) -> Error {
        Error::Rejected(Rejection::Malformed(msg.into()))
    }

    pub(crate) fn unsupported(msg: impl Into<String>) -> Error {
        Error::Rejected(Rejection::Unsupported(msg.into()))
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Decodes hex (either case); `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes().chunks(2).map(|p| Some(val(p[0])? << 4 | val(p[1])?)).collect()
}

pub(crate) fn b64(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("bad base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
    }
}
