//! Signature files: Sigstore bundles (v0.1–v0.3, DSSE or message signature) and cosign's legacy
//! `{base64Signature, cert, rekorBundle}` bundle, read into one shape.

use crate::{Error, b64};
use serde_json::{Value, json};

/// What was signed.
#[derive(Debug, Clone)]
pub enum Content {
    /// A DSSE envelope: the signature is over the PAE of `payload_type` and `payload`.
    Dsse {
        /// `application/vnd.in-toto+json` for model signatures.
        payload_type: String,
        /// The exact payload bytes.
        payload: Vec<u8>,
        /// Raw signatures (DER ECDSA for the key and certificate modes).
        signatures: Vec<Vec<u8>>,
    },
    /// A signature over a file (cosign `sign-blob`).
    Message {
        /// The digest the bundle records (algorithm name, bytes), if any.
        digest: Option<(String, Vec<u8>)>,
        /// The raw signature.
        signature: Vec<u8>,
    },
}

/// A parsed signature file.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Sigstore bundle JSON for `sigstore-verify` (a legacy cosign bundle is rewritten as the
    /// equivalent v0.1 bundle).
    pub(crate) sigstore_json: String,
    /// The bundle's media type.
    pub media_type: String,
    /// What was signed.
    pub content: Content,
    /// DER certificates: the signing certificate first, then any chain the bundle carries.
    pub certificates: Vec<Vec<u8>>,
    /// `verificationMaterial.publicKey.hint`, if the bundle names a key.
    pub key_hint: Option<String>,
    /// Transparency-log entries or signed timestamps are present.
    pub has_log_or_timestamp: bool,
    /// It was a legacy cosign bundle.
    pub legacy_cosign: bool,
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn string(v: &Value, path: &[&str]) -> Option<String> {
    field(v, path).and_then(Value::as_str).map(str::to_string)
}

impl Bundle {
    /// Parses a signature file.
    pub fn parse(text: &str) -> Result<Bundle, Error> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::malformed(format!("the signature file is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::malformed("the signature file is not a JSON object"));
        }
        if v.get("base64Signature").is_some() || v.get("rekorBundle").is_some() {
            return Bundle::parse_legacy(&v);
        }
        let media_type = string(&v, &["mediaType"])
            .ok_or_else(|| Error::malformed("not a Sigstore bundle (no mediaType) nor a cosign bundle"))?;
        if !media_type.starts_with("application/vnd.dev.sigstore.bundle") {
            return Err(Error::malformed(format!("media type {media_type:?} is not a Sigstore bundle")));
        }
        let material = v
            .get("verificationMaterial")
            .ok_or_else(|| Error::malformed("the bundle has no verificationMaterial"))?;
        let mut certificates = Vec::new();
        if let Some(c) = string(material, &["certificate", "rawBytes"]) {
            certificates.push(b64(&c).map_err(|e| Error::malformed(format!("certificate: {e}")))?);
        }
        if let Some(chain) =
            field(material, &["x509CertificateChain", "certificates"]).and_then(Value::as_array)
        {
            for c in chain {
                let raw = c.get("rawBytes").and_then(Value::as_str).unwrap_or_default();
                certificates.push(b64(raw).map_err(|e| Error::malformed(format!("certificate chain: {e}")))?);
            }
        }
        let key_hint = string(material, &["publicKey", "hint"]);
        let non_empty = |k: &str| match material.get(k) {
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => o.values().any(|x| x.as_array().is_none_or(|a| !a.is_empty())),
            _ => false,
        };
        let has_log_or_timestamp = non_empty("tlogEntries") || non_empty("timestampVerificationData");
        let content = if let Some(env) = v.get("dsseEnvelope") {
            let payload_type = string(env, &["payloadType"]).unwrap_or_default();
            let payload = b64(&string(env, &["payload"]).unwrap_or_default())
                .map_err(|e| Error::malformed(format!("DSSE payload: {e}")))?;
            let sigs = env.get("signatures").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if sigs.is_empty() || sigs.len() > 16 {
                return Err(Error::malformed(format!("the DSSE envelope has {} signatures", sigs.len())));
            }
            let signatures = sigs
                .iter()
                .map(|s| b64(s.get("sig").and_then(Value::as_str).unwrap_or_default()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::malformed(format!("DSSE signature: {e}")))?;
            Content::Dsse { payload_type, payload, signatures }
        } else if let Some(ms) = v.get("messageSignature") {
            let signature = b64(&string(ms, &["signature"]).unwrap_or_default())
                .map_err(|e| Error::malformed(format!("message signature: {e}")))?;
            let digest =
                match (string(ms, &["messageDigest", "algorithm"]), string(ms, &["messageDigest", "digest"]))
                {
                    (Some(a), Some(d)) => {
                        Some((a, b64(&d).map_err(|e| Error::malformed(format!("message digest: {e}")))?))
                    }
                    _ => None,
                };
            Content::Message { digest, signature }
        } else {
            return Err(Error::malformed("the bundle has neither a dsseEnvelope nor a messageSignature"));
        };
        Ok(Bundle {
            sigstore_json: text.to_string(),
            media_type,
            content,
            certificates,
            key_hint,
            has_log_or_timestamp,
            legacy_cosign: false,
        })
    }

    /// cosign ≤ 2 `sign-blob --bundle`: `{base64Signature, cert, rekorBundle: {SignedEntryTimestamp,
    /// Payload: {body, integratedTime, logIndex, logID}}}`. Rewritten as the v0.1 Sigstore bundle
    /// that carries the same data, so that the SET, the certificate chain and the log entry's
    /// agreement with the signature are all checked by `sigstore-verify`.
    fn parse_legacy(v: &Value) -> Result<Bundle, Error> {
        let bad = |what: &str| Error::malformed(format!("legacy cosign bundle: {what}"));
        let sig_b64 = string(v, &["base64Signature"]).ok_or_else(|| bad("no base64Signature"))?;
        let signature = b64(&sig_b64).map_err(|e| bad(&format!("base64Signature: {e}")))?;
        let mut certificates = Vec::new();
        if let Some(cert) = string(v, &["cert"]).filter(|c| !c.is_empty()) {
            // Usually base64 of a PEM certificate; sometimes the PEM itself.
            let pem = if cert.contains("-----BEGIN") {
                cert.into_bytes()
            } else {
                b64(&cert).map_err(|e| bad(&format!("cert: {e}")))?
            };
            certificates.push(pem_certificate(&pem).map_err(|e| bad(&format!("cert: {e}")))?);
        }
        let rb = v.get("rekorBundle").ok_or_else(|| bad("no rekorBundle (no transparency-log proof)"))?;
        let set = string(rb, &["SignedEntryTimestamp"]).ok_or_else(|| bad("no SignedEntryTimestamp"))?;
        let payload = rb.get("Payload").ok_or_else(|| bad("no Payload"))?;
        let body_b64 = string(payload, &["body"]).ok_or_else(|| bad("no Payload.body"))?;
        let body: Value = serde_json::from_slice(&b64(&body_b64).map_err(|e| bad(&format!("body: {e}")))?)
            .map_err(|e| bad(&format!("the log entry body is not JSON: {e}")))?;
        let kind = string(&body, &["kind"]).unwrap_or_default();
        let version = string(&body, &["apiVersion"]).unwrap_or_default();
        if kind != "hashedrekord" {
            return Err(Error::unsupported(format!(
                "legacy cosign bundle with a {kind:?} log entry (hashedrekord is supported)"
            )));
        }
        let alg = string(&body, &["spec", "data", "hash", "algorithm"]).unwrap_or_default();
        let digest_hex = string(&body, &["spec", "data", "hash", "value"]).unwrap_or_default();
        let digest = crate::unhex(&digest_hex).ok_or_else(|| bad("the log entry's hash is not hex"))?;
        let int = |k: &str| {
            payload.get(k).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
        };
        let integrated = int("integratedTime").ok_or_else(|| bad("no integratedTime"))?;
        let index = int("logIndex").ok_or_else(|| bad("no logIndex"))?;
        let log_id = crate::unhex(&string(payload, &["logID"]).unwrap_or_default())
            .ok_or_else(|| bad("logID is not hex"))?;
        use base64::Engine;
        let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let material = match certificates.first() {
            Some(c) => json!({"x509CertificateChain": {"certificates": [{"rawBytes": enc(c)}]}}),
            None => json!({"publicKey": {"hint": ""}}),
        };
        let mut material = material;
        material["tlogEntries"] = json!([{
            "logIndex": index.to_string(),
            "logId": {"keyId": enc(&log_id)},
            "kindVersion": {"kind": kind, "version": version},
            "integratedTime": integrated.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": set},
            "canonicalizedBody": body_b64,
        }]);
        let algorithm = if alg == "sha256" { "SHA2_256" } else { "SHA2_512" };
        let converted = json!({
            "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
            "verificationMaterial": material,
            "messageSignature": {"messageDigest": {"algorithm": algorithm, "digest": enc(&digest)}, "signature": sig_b64},
        });
        Ok(Bundle {
            sigstore_json: converted.to_string(),
            media_type: "cosign legacy bundle".into(),
            content: Content::Message { digest: Some((alg, digest)), signature },
            certificates,
            key_hint: None,
            has_log_or_timestamp: true,
            legacy_cosign: true,
        })
    }
}

/// The DER of the first `CERTIFICATE` block of a PEM text (lines of any length).
fn pem_certificate(pem: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not PEM text".to_string())?;
    let start = text.find("-----BEGIN CERTIFICATE-----").ok_or("no PEM CERTIFICATE block")?;
    let body = &text[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = body.find("-----END CERTIFICATE-----").ok_or("unterminated PEM CERTIFICATE block")?;
    let b64_text: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    b64(&b64_text)
}

/// The DSSE pre-authentication encoding the signature covers.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for text in [
            "",
            "{",
            "[]",
            "null",
            "{\"mediaType\": 3}",
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{},\"dsseEnvelope\":{\"payload\":\"!!\",\"signatures\":[{\"sig\":\"x\"}]}}",
            "{\"base64Signature\":\"AAAA\"}",
            "{\"base64Signature\":\"AAAA\",\"rekorBundle\":{\"SignedEntryTimestamp\":\"x\",\"Payload\":{\"body\":\"e30=\"}}}",
        ] {
            assert!(matches!(Bundle::parse(text), Err(Error::Rejected(_))), "{text}");
        }
    }
}
