//! ECDSA public keys (P-256, P-384, P-521), as `model_signing sign key` and cosign use them.

use der::{Decode, DecodePem, Encode};
use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const ID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP256R1: &str = "1.2.840.10045.3.1.7";
const SECP384R1: &str = "1.3.132.0.34";
const SECP521R1: &str = "1.3.132.0.35";

/// An elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1), signed with SHA-256.
    P256,
    /// NIST P-384 (secp384r1), signed with SHA-384.
    P384,
    /// NIST P-521 (secp521r1), signed with SHA-512.
    P521,
}

impl Curve {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The curve's hash of a file, read in chunks.
    pub(crate) fn hash_file(self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        fn run<D: Digest>(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
            use std::io::Read;
            let mut f = std::fs::File::open(path)?;
            let mut h = D::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(h.finalize().to_vec());
                }
                h.update(&buf[..n]);
            }
        }
        match self {
            Curve::P256 => run::<Sha256>(path),
            Curve::P384 => run::<Sha384>(path),
            Curve::P521 => run::<Sha512>(path),
        }
    }

    /// The hash model_signing pairs with the curve (`get_ec_key_hash`).
    pub(crate) fn hash(self, message: &[u8]) -> Vec<u8> {
        match self {
            Curve::P256 => Sha256::digest(message).to_vec(),
            Curve::P384 => Sha384::digest(message).to_vec(),
            Curve::P521 => Sha512::digest(message).to_vec(),
        }
    }
}

/// An ECDSA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    curve: Curve,
    sec1: Vec<u8>,
    spki_der: Vec<u8>,
    /// Where the key came from (a file name), for messages.
    pub source: String,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(text: &str, source: &str) -> Result<PublicKey, String> {
        let spki = SubjectPublicKeyInfoOwned::from_pem(text.trim().as_bytes())
            .map_err(|e| format!("{source}: not a PEM public key (SubjectPublicKeyInfo): {e}"))?;
        PublicKey::from_spki(&spki, source)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8], source: &str) -> Result<PublicKey, String> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| format!("{source}: not a DER public key: {e}"))?;
        PublicKey::from_spki(&spki, source)
    }

    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoOwned, source: &str) -> Result<PublicKey, String> {
        if spki.algorithm.oid.to_string() != ID_EC_PUBLIC_KEY {
            return Err(format!(
                "{source}: a {} key; only ECDSA keys (P-256, P-384, P-521) are supported",
                key_kind(&spki.algorithm.oid.to_string())
            ));
        }
        let curve_oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
            .map(|o| o.to_string())
            .unwrap_or_default();
        let curve = match curve_oid.as_str() {
            SECP256R1 => Curve::P256,
            SECP384R1 => Curve::P384,
            SECP521R1 => Curve::P521,
            other => return Err(format!("{source}: EC key on an unsupported curve ({other:?})")),
        };
        let sec1 = spki.subject_public_key.raw_bytes().to_vec();
        let key = PublicKey {
            curve,
            sec1,
            spki_der: spki.to_der().map_err(|e| format!("{source}: {e}"))?,
            source: source.to_string(),
        };
        // Reject points that are not on the curve now rather than at verification.
        key.check_point().map_err(|e| format!("{source}: {e}"))?;
        Ok(key)
    }

    fn check_point(&self) -> Result<(), String> {
        let bad = |e: ecdsa::Error| format!("invalid {} public key: {e}", self.curve.name());
        match self.curve {
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map(|_| ()).map_err(bad),
            Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map(|_| ()).map_err(bad),
            Curve::P521 => p521::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map(|_| ()).map_err(bad),
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo (the key's fingerprint).
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", crate::hex(&Sha256::digest(&self.spki_der)))
    }

    /// Verifies a DER ECDSA signature over `message`, hashed with the curve's hash.
    pub fn verify_message(&self, message: &[u8], signature_der: &[u8]) -> Result<(), String> {
        self.verify_prehash(&self.curve.hash(message), signature_der)
    }

    /// Verifies a DER ECDSA signature over a digest computed by the caller.
    pub fn verify_prehash(&self, prehash: &[u8], signature_der: &[u8]) -> Result<(), String> {
        let bad_sig = |e: ecdsa::Error| format!("not a DER ECDSA {} signature: {e}", self.curve.name());
        let no = |_| "the signature does not verify with this key".to_string();
        match self.curve {
            Curve::P256 => {
                let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map_err(|e| e.to_string())?;
                let s = p256::ecdsa::Signature::from_der(signature_der).map_err(bad_sig)?;
                k.verify_prehash(prehash, &s).map_err(no)
            }
            Curve::P384 => {
                let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map_err(|e| e.to_string())?;
                let s = p384::ecdsa::Signature::from_der(signature_der).map_err(bad_sig)?;
                k.verify_prehash(prehash, &s).map_err(no)
            }
            Curve::P521 => {
                let k = p521::ecdsa::VerifyingKey::from_sec1_bytes(&self.sec1).map_err(|e| e.to_string())?;
                let s = p521::ecdsa::Signature::from_der(signature_der).map_err(bad_sig)?;
                k.verify_prehash(prehash, &s).map_err(no)
            }
        }
    }
}

fn key_kind(oid: &str) -> &'static str {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        _ => "non-EC",
    }
}
