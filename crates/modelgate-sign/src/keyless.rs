//! Sigstore keyless verification, delegated to `sigstore-verify`: Fulcio chain and SCT, Rekor v1/v2 inclusion proofs,
//! checkpoints and promises, RFC 3161 timestamps, certificate validity at the verified time.
//! Identity and issuer are matched here on the verified certificate, so that they can be exact
//! or anchored regular expressions.

use crate::bundle::Bundle;
use crate::identity::Matcher;
use crate::verify::Refusal;
use sigstore_verify::types::{Artifact, Sha256Hash};
use sigstore_verify::{VerificationPolicy, Verifier};

pub use sigstore_verify::trust_root::TrustedRoot;

/// The Sigstore public-good trusted root shipped inside `sigstore-trust-root` (no network).
pub fn embedded_trusted_root() -> Result<TrustedRoot, String> {
    TrustedRoot::from_json(sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT)
        .map_err(|e| format!("the embedded Sigstore trusted root cannot be read: {e}"))
}

/// Reads a `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json`).
pub fn trusted_root_from_json(text: &str, source: &str) -> Result<TrustedRoot, String> {
    TrustedRoot::from_json(text).map_err(|e| format!("{source}: not a Sigstore trusted root: {e}"))
}

/// What the artifact is, for the binding check: a SHA-256 digest (an OMS root digest, or a
/// file's digest).
pub(crate) enum Subject {
    Sha256([u8; 32]),
}

impl Subject {
    fn artifact(&self) -> Artifact<'static> {
        match self {
            Subject::Sha256(d) => Artifact::from(Sha256Hash::new(*d)),
        }
    }
}

/// A verified keyless signature.
pub(crate) struct KeylessSigner {
    pub identity: String,
    pub issuer: String,
    pub timestamps: Vec<String>,
    pub tlog: bool,
}

fn parse(bundle: &Bundle) -> Result<sigstore_verify::types::Bundle, String> {
    sigstore_verify::types::Bundle::from_json(&bundle.sigstore_json)
        .map_err(|e| format!("invalid Sigstore bundle: {e}"))
}

/// Verifies a keyless bundle and matches its signer.
pub(crate) fn verify_keyless(
    bundle: &Bundle,
    subject: &Subject,
    identity: &Matcher,
    issuer: &Matcher,
    root: &TrustedRoot,
) -> Result<KeylessSigner, Refusal> {
    if bundle.certificates.is_empty() {
        return Err(Refusal::invalid("the bundle has no signing certificate: it is not a keyless signature"));
    }
    let parsed = parse(bundle)?;
    let verifier = Verifier::new(root).map_err(|e| format!("the trusted root is unusable: {e}"))?;
    let result = verifier
        .verify(subject.artifact(), &parsed, &VerificationPolicy::any_identity())
        .map_err(|e| e.to_string())?;
    if !result.certificate_verified() {
        return Err("the signing certificate was not verified".into());
    }
    let got_identity = result.identity().map(|s| s.as_str().to_string()).unwrap_or_default();
    let got_issuer = result.issuer().unwrap_or_default().to_string();
    if !identity.matches(&got_identity) || !issuer.matches(&got_issuer) {
        return Err(Refusal::other_signer(format!(
            "signed by {got_identity:?} (issuer {got_issuer:?}), but the required signer is identity {identity} with issuer {issuer}"
        )));
    }
    Ok(KeylessSigner {
        identity: got_identity,
        issuer: got_issuer,
        timestamps: {
            let mut t: Vec<String> = result.verified_timestamps().iter().map(|t| t.to_string()).collect();
            t.dedup();
            t
        },
        tlog: result.tlog_verified(),
    })
}
