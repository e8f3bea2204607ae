//! The certificate mode: a signing certificate that chains to a root the user gives, checked at
//! the time of verification (model_signing 1.1.1 checks at the leaf's notBefore, so an expired
//! leaf passes there; not here), with key usage, extended key usage and SAN.

use crate::keys::PublicKey;
use der::{Decode, Encode, Reader, SliceReader};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::time::SystemTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const MAX_DEPTH: usize = 8;

/// Extensions whose meaning is checked or harmless; any other extension marked critical makes
/// the certificate unusable (RFC 5280 §4.2).
const KNOWN_EXTENSIONS: &[&str] = &[
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.32", // certificatePolicies
];

/// Trust anchors for the certificate mode, from PEM files: the self-signed root certificates
/// among them are the anchors; any other certificate in the files (an intermediate) may be used
/// to build a chain but is never trusted by itself. model_signing verifies with OpenSSL's store,
/// which requires the chain to end at a self-signed certificate: an intermediate given alone is
/// refused there too (docs/signatures.md).
#[derive(Debug, Clone)]
pub struct Anchors {
    roots: Vec<Certificate>,
    /// Intermediates supplied with the roots: `(certificate, DER)`.
    intermediates: Vec<(Certificate, Vec<u8>)>,
    /// Where they came from (file names), for messages.
    pub source: String,
}

/// True for a certificate whose issuer is its own subject and whose signature verifies with its
/// own key: a root. (A self-issued certificate signed by another key is not.)
fn self_signed(cert: &Certificate, der: &[u8]) -> bool {
    cert.tbs_certificate().subject() == cert.tbs_certificate().issuer()
        && verify_signed_by(der, cert, cert).is_ok()
}

impl Anchors {
    /// Reads every `CERTIFICATE` of a PEM file: self-signed ones are roots, others intermediates.
    pub fn from_pem(text: &str, source: &str) -> Result<Anchors, String> {
        let certs = Certificate::load_pem_chain(text.as_bytes())
            .map_err(|e| format!("{source}: not a PEM certificate file: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{source}: no certificate in the file"));
        }
        let mut anchors =
            Anchors { roots: Vec::new(), intermediates: Vec::new(), source: source.to_string() };
        for cert in certs {
            let der = cert.to_der().map_err(|e| format!("{source}: cannot encode a certificate: {e}"))?;
            if self_signed(&cert, &der) {
                anchors.roots.push(cert);
            } else {
                anchors.intermediates.push((cert, der));
            }
        }
        Ok(anchors)
    }

    /// Adds the anchors of another file.
    pub fn extend(&mut self, other: Anchors) {
        self.roots.extend(other.roots);
        self.intermediates.extend(other.intermediates);
        self.source = format!("{}, {}", self.source, other.source);
    }

    /// The roots' subjects (the trust anchors; intermediates are not listed).
    pub fn subjects(&self) -> Vec<String> {
        self.roots.iter().map(|c| c.tbs_certificate().subject().to_string()).collect()
    }

    /// True if at least one self-signed root was given.
    pub fn has_root(&self) -> bool {
        !self.roots.is_empty()
    }
}

/// A signing certificate that chains to an anchor.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedLeaf {
    pub key: PublicKey,
    /// SAN values (email, URI, DNS).
    pub sans: Vec<String>,
    /// Subjects from the leaf up to and including the anchor.
    pub chain: Vec<String>,
}

fn parse(der: &[u8], what: &str) -> Result<Certificate, String> {
    Certificate::from_der(der).map_err(|e| format!("the {what} is not a valid X.509 certificate: {e}"))
}

/// The DER bytes of the TBSCertificate inside a certificate (what the issuer signed).
fn tbs_bytes(cert_der: &[u8]) -> Result<&[u8], String> {
    let err = |e: der::Error| format!("malformed certificate: {e}");
    let mut outer = SliceReader::new(cert_der).map_err(err)?;
    let header = der::Header::decode(&mut outer).map_err(err)?;
    let start = usize::try_from(u32::from(outer.position())).map_err(|e| e.to_string())?;
    let inner = der::Header::decode(&mut outer).map_err(err)?;
    let _ = header;
    let len = usize::try_from(u32::from(inner.encoded_len().map_err(err)?) + u32::from(inner.length()))
        .map_err(|e| e.to_string())?;
    cert_der.get(start..start + len).ok_or_else(|| "malformed certificate: truncated".to_string())
}

fn verify_signed_by(cert_der: &[u8], cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
    let tbs = tbs_bytes(cert_der)?;
    let sig =
        cert.signature().as_bytes().ok_or("the certificate's signature is not a whole number of bytes")?;
    let alg = cert.signature_algorithm().oid.to_string();
    let spki = issuer.tbs_certificate().subject_public_key_info();
    match alg.as_str() {
        ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 => {
            let key = PublicKey::from_spki(spki, "issuer key")?;
            let prehash = match alg.as_str() {
                ECDSA_SHA256 => Sha256::digest(tbs).to_vec(),
                ECDSA_SHA384 => Sha384::digest(tbs).to_vec(),
                _ => Sha512::digest(tbs).to_vec(),
            };
            key.verify_prehash(&prehash, sig)
        }
        RSA_SHA256 | RSA_SHA384 | RSA_SHA512 => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::signature::Verifier;
            let key = rsa::PublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes())
                .map_err(|e| format!("the issuer's RSA key cannot be read: {e}"))?;
            let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(|e| e.to_string())?;
            let ok = match alg.as_str() {
                RSA_SHA256 => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(tbs, &sig),
                RSA_SHA384 => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key).verify(tbs, &sig),
                _ => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key).verify(tbs, &sig),
            };
            ok.map_err(|_| "the signature does not verify with this key".to_string())
        }
        other => Err(format!(
            "signature algorithm {other} is not supported (ECDSA and RSA PKCS#1 v1.5 with SHA-2 are)"
        )),
    }
}

fn check_validity(cert: &Certificate, role: &str, now: SystemTime) -> Result<(), String> {
    let v = cert.tbs_certificate().validity();
    let subject = cert.tbs_certificate().subject();
    if now < v.not_before.to_system_time() {
        return Err(format!("the {role} certificate ({subject}) is not valid before {}", v.not_before));
    }
    if now > v.not_after.to_system_time() {
        return Err(format!("the {role} certificate ({subject}) expired on {}", v.not_after));
    }
    Ok(())
}

fn check_critical(cert: &Certificate, role: &str) -> Result<(), String> {
    for ext in cert.tbs_certificate().extensions().map(|e| e.as_slice()).unwrap_or_default() {
        let oid = ext.extn_id.to_string();
        if ext.critical && !KNOWN_EXTENSIONS.contains(&oid.as_str()) {
            return Err(format!(
                "the {role} certificate ({}) has a critical extension this verifier does not process ({oid})",
                cert.tbs_certificate().subject()
            ));
        }
    }
    Ok(())
}

fn extension<'a, T: Decode<'a> + der::oid::AssociatedOid>(
    cert: &'a Certificate,
    role: &str,
) -> Result<Option<T>, String> {
    cert.tbs_certificate()
        .get_extension::<T>()
        .map(|o| o.map(|(_, v)| v))
        .map_err(|e| format!("the {role} certificate has a malformed extension: {e}"))
}

/// Checks a CA certificate (an intermediate or an anchor) that issued `below` certificates
/// under it (not counting the leaf).
fn check_ca(cert: &Certificate, role: &str, below: usize, now: SystemTime) -> Result<(), String> {
    let subject = cert.tbs_certificate().subject();
    check_validity(cert, role, now)?;
    check_critical(cert, role)?;
    let bc = extension::<BasicConstraints>(cert, role)?;
    match bc {
        Some(bc) if bc.ca => {
            if let Some(n) = bc.path_len_constraint
                && below > usize::from(n)
            {
                return Err(format!(
                    "the {role} certificate ({subject}) allows {n} intermediate(s) below it, the chain has {below}"
                ));
            }
        }
        // An anchor given by the user may be a v1 certificate without extensions.
        None if role == "root" => {}
        _ => {
            return Err(format!(
                "the {role} certificate ({subject}) is not a CA certificate (basicConstraints CA:TRUE)"
            ));
        }
    }
    if let Some(ku) = extension::<KeyUsage>(cert, role)?
        && !ku.key_cert_sign()
    {
        return Err(format!(
            "the {role} certificate ({subject}) may not sign certificates (keyUsage without keyCertSign)"
        ));
    }
    Ok(())
}

/// Verifies `certs` (DER: the signing certificate first, then any intermediates from the
/// bundle) against the anchors at `now`, and returns the signing key.
pub(crate) fn verify_chain(
    certs: &[Vec<u8>],
    anchors: &Anchors,
    now: SystemTime,
) -> Result<VerifiedLeaf, String> {
    let Some(leaf_der) = certs.first() else {
        return Err("the bundle carries no certificate (is it a key or keyless signature?)".into());
    };
    if certs.len() > MAX_DEPTH + 1 {
        return Err(format!("the bundle carries {} certificates", certs.len()));
    }
    let leaf = parse(leaf_der, "signing certificate")?;
    let subject = leaf.tbs_certificate().subject().to_string();
    check_validity(&leaf, "signing", now)?;
    check_critical(&leaf, "signing")?;
    if extension::<BasicConstraints>(&leaf, "signing")?.is_some_and(|bc| bc.ca) {
        return Err(format!(
            "the signing certificate ({subject}) is a CA certificate (basicConstraints CA:TRUE); a signing certificate must be an end-entity certificate"
        ));
    }
    let ku = extension::<KeyUsage>(&leaf, "signing")?;
    let eku = extension::<ExtendedKeyUsage>(&leaf, "signing")?;
    if ku.as_ref().is_some_and(|k| !k.digital_signature()) {
        return Err(format!("the signing certificate ({subject}) has a keyUsage without digitalSignature"));
    }
    if let Some(eku) = &eku
        && !eku.0.iter().any(|o| o.to_string() == EKU_CODE_SIGNING)
    {
        return Err(format!(
            "the signing certificate ({subject}) has an extendedKeyUsage without codeSigning"
        ));
    }
    if ku.is_none() && eku.is_none() {
        return Err(format!(
            "the signing certificate ({subject}) has neither keyUsage digitalSignature nor extendedKeyUsage codeSigning"
        ));
    }
    let sans = extension::<SubjectAltName>(&leaf, "signing")?
        .map(|san| {
            san.0
                .iter()
                .filter_map(|n| match n {
                    GeneralName::Rfc822Name(s)
                    | GeneralName::DnsName(s)
                    | GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let key = PublicKey::from_spki(leaf.tbs_certificate().subject_public_key_info(), "signing certificate")?;

    if !anchors.has_root() {
        return Err(format!(
            "{} holds no self-signed root certificate: an intermediate is not a trust anchor (give the root the chain ends at; intermediates may be given with it)",
            anchors.source
        ));
    }
    // Candidates for the chain: the bundle's certificates, then those supplied with the roots.
    // Neither kind is trusted: only a chain that ends at a root verifies.
    let mut intermediates: Vec<(Certificate, &Vec<u8>)> = certs[1..]
        .iter()
        .map(|d| parse(d, "intermediate certificate").map(|c| (c, d)))
        .collect::<Result<_, _>>()?;
    intermediates.extend(anchors.intermediates.iter().map(|(c, d)| (c.clone(), d)));
    let mut chain = vec![subject];
    let (mut current, mut current_der) = (leaf, leaf_der);
    let mut used = vec![false; intermediates.len()];
    for depth in 0..=MAX_DEPTH {
        let issuer_name = current.tbs_certificate().issuer().clone();
        let mut reasons = Vec::new();
        for anchor in anchors.roots.iter().filter(|a| a.tbs_certificate().subject() == &issuer_name) {
            match verify_signed_by(current_der, &current, anchor)
                .and_then(|()| check_ca(anchor, "root", depth, now))
            {
                Ok(()) => {
                    chain.push(anchor.tbs_certificate().subject().to_string());
                    return Ok(VerifiedLeaf { key, sans, chain });
                }
                Err(e) => reasons.push(e),
            }
        }
        let next = intermediates.iter().enumerate().find(|(i, (c, _))| {
            !used[*i]
                && c.tbs_certificate().subject() == &issuer_name
                && c.tbs_certificate().subject() != current.tbs_certificate().subject()
        });
        let Some((i, (cert, der))) = next else {
            let why = if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join("; ")) };
            return Err(format!(
                "the certificate chain does not lead to a root in {}: no trusted certificate for the issuer {issuer_name}{why}",
                anchors.source
            ));
        };
        verify_signed_by(current_der, &current, cert).map_err(|e| {
            format!(
                "the certificate {} is not signed by {}: {e}",
                current.tbs_certificate().subject(),
                cert.tbs_certificate().subject()
            )
        })?;
        check_ca(cert, "intermediate", depth, now)?;
        used[i] = true;
        chain.push(cert.tbs_certificate().subject().to_string());
        current = cert.clone();
        current_der = der;
    }
    Err(format!("the certificate chain is longer than {MAX_DEPTH}"))
}

/// Re-encodes nothing; exposed for tests of the TBS slicing.
#[cfg(test)]
pub(crate) fn tbs_of(der: &[u8]) -> Result<Vec<u8>, String> {
    tbs_bytes(der).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tbs_slice_is_the_reencoded_tbs() {
        let pem = include_str!("../../../tests/fixtures/signing/pki/root.crt");
        let cert = Certificate::load_pem_chain(pem.as_bytes()).unwrap().remove(0);
        let der = cert.to_der().unwrap();
        assert_eq!(tbs_of(&der).unwrap(), cert.tbs_certificate().to_der().unwrap());
        assert!(tbs_of(&der[..20]).is_err());
        assert!(tbs_of(&[]).is_err());
    }
}
