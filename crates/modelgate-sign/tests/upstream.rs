//! Real signatures from the other side, when `../shared` (the reference material CI has next to
//! the repository) is present: sigstore/model-transparency's signed models (model_signing
//! v0.2–v1.1: keyless, key, certificate) and sigstore-conformance's `bundle-verify` cases
//! (`*_fail` must fail, the rest must verify). All offline: the embedded public-good trusted
//! root, or the case's own `trusted_root.json`. Without `../shared` these tests print what
//! they skipped and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_sign::{
    Anchors, Error, Matcher, Mode, PublicKey, Rejection, Request, Signer, TrustedRoot, embedded_trusted_root,
    trusted_root_from_json, verify, verify_artifact,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/signing-samples/upstream");
    if p.is_dir() {
        Some(p)
    } else {
        // Written to stderr directly: the test harness captures eprintln! of passing tests, and
        // a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {} is not present (CI has it next to the repository)",
            p.display()
        );
        None
    }
}

fn production() -> Arc<TrustedRoot> {
    Arc::new(embedded_trusted_root().unwrap())
}

fn request<'a>(
    model: &'a Path,
    signature: &'a Path,
    signers: &'a [Signer],
    ignores: &'a [String],
) -> Request<'a> {
    Request { model, signature, signers, extra_ignores: ignores, known_sha256: None, now: SystemTime::now() }
}

#[test]
fn model_transparency_fixtures() {
    let Some(up) = shared() else { return };
    let mt = up.join("model-transparency");
    let root = production();
    let stefan = |identity: &str| Signer::Keyless {
        identity: Matcher::exact(identity),
        issuer: Matcher::exact("https://sigstore.verify.ibm.com/oauth2"),
        trusted_root: root.clone(),
    };
    let keys = mt.join("keys/certificate");
    let p384 = Signer::Key(
        PublicKey::from_pem(
            &std::fs::read_to_string(keys.join("signing-key-pub.pem")).unwrap(),
            "signing-key-pub.pem",
        )
        .unwrap(),
    );
    let ca = Signer::Certificate {
        anchors: Anchors::from_pem(
            &std::fs::read_to_string(keys.join("ca-cert.pem")).unwrap(),
            "ca-cert.pem",
        )
        .unwrap(),
        identity: None,
    };
    for version in ["v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"] {
        // v1.0.1 signed without the file ignore-me and did not record that (1.1 records it).
        let ignores: Vec<String> = if version == "v1.0.1" { vec!["ignore-me".into()] } else { vec![] };
        let dir = mt.join(format!("{version}-sigstore"));
        let sig = dir.join("model.sig");
        let signers = [stefan("stefanb@us.ibm.com")];
        let v = verify(&request(&dir, &sig, &signers, &ignores))
            .unwrap_or_else(|e| panic!("{version} keyless: {e}"));
        assert_eq!(v.signer.mode, Mode::Keyless);
        assert_eq!(v.signer.identity.as_deref(), Some("stefanb@us.ibm.com"));
        assert!(v.signer.transparency_log, "{version}");
        assert_eq!(v.files.len(), 2, "{version}");
        // The same signature by anyone else is rejected, naming who really signed.
        let other = [stefan("someone@example.com")];
        match verify(&request(&dir, &sig, &other, &ignores)) {
            Err(Error::Rejected(Rejection::OtherSigner(r))) => {
                assert!(r[0].contains("stefanb@us.ibm.com") && r[0].contains("someone@example.com"), "{r:?}")
            }
            other => panic!("{version}: {other:?}"),
        }
        let regex = [Signer::Keyless {
            identity: Matcher::regex(r"[a-z]+@us\.ibm\.com").unwrap(),
            issuer: Matcher::regex(r"https://sigstore\.verify\.ibm\.com/.*").unwrap(),
            trusted_root: root.clone(),
        }];
        assert!(verify(&request(&dir, &sig, &regex, &ignores)).is_ok(), "{version} regex");

        // Key mode (P-384). v0.3.1 and v1.0.0 signed the single file signme-1.
        let dir = mt.join(format!("{version}-elliptic-key"));
        let model = if matches!(version, "v0.3.1" | "v1.0.0") { dir.join("signme-1") } else { dir.clone() };
        let v = verify(&request(&model, &dir.join("model.sig"), std::slice::from_ref(&p384), &ignores))
            .unwrap_or_else(|e| panic!("{version} key: {e}"));
        assert_eq!(v.signer.mode, Mode::Key);

        // Certificate mode: their signing certificate is a CA (CA:TRUE), which we refuse.
        let dir = mt.join(format!("{version}-certificate"));
        match verify(&request(&dir, &dir.join("model.sig"), std::slice::from_ref(&ca), &ignores)) {
            Err(Error::Rejected(Rejection::Untrusted(r))) => {
                assert!(r[0].contains("CA:TRUE"), "{version}: {r:?}")
            }
            other => panic!("{version} certificate: {other:?}"),
        }
    }
    // model_signing 0.2's format (non-standard PAE) is refused as such.
    let dir = mt.join("v0.2.0-certificate");
    match verify(&request(&dir, &dir.join("model.sig"), std::slice::from_ref(&ca), &[])) {
        Err(Error::Rejected(Rejection::Unsupported(m))) => assert!(m.contains("0.2"), "{m}"),
        other => panic!("v0.2.0: {other:?}"),
    }
}

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// One conformance case, as its README describes the protocol.
fn conformance_case(dir: &Path, production: &Arc<TrustedRoot>) -> Result<(), String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string());
    let artifact = if dir.join("artifact").is_file() { dir.join("artifact") } else { dir.join("../a.txt") };
    let root = match read("trusted_root.json") {
        Some(text) => Arc::new(trusted_root_from_json(&text, "trusted_root.json")?),
        None => production.clone(),
    };
    let signer = match read("key.pub") {
        Some(pem) => Signer::Key(PublicKey::from_pem(&pem, "key.pub")?),
        None => Signer::Keyless {
            identity: Matcher::exact(read("identity").unwrap_or_else(|| DEFAULT_IDENTITY.into())),
            issuer: Matcher::exact(read("issuer").unwrap_or_else(|| DEFAULT_ISSUER.into())),
            trusted_root: root,
        },
    };
    let signers = [signer];
    let sig = dir.join("bundle.sigstore.json");
    verify_artifact(&request(&artifact, &sig, &signers, &[])).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn sigstore_conformance_bundle_verify() {
    let Some(up) = shared() else { return };
    let cases = up.join("sigstore-conformance/bundle-verify");
    let production = production();
    let started = Instant::now();
    let mut wrong = Vec::new();
    let mut n = 0;
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&cases).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in &dirs {
        n += 1;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect_ok = !name.ends_with("_fail");
        let got = conformance_case(dir, &production);
        if got.is_ok() != expect_ok {
            wrong.push(format!("{name}: expected {}, got {got:?}", if expect_ok { "pass" } else { "fail" }));
        }
    }
    eprintln!(
        "sigstore-conformance bundle-verify: {n} cases in {:.2?}, {} wrong",
        started.elapsed(),
        wrong.len()
    );
    assert!(n >= 70, "only {n} cases");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// cosign <= 2 wrote `{base64Signature, cert, rekorBundle}`; a Sigstore bundle with a signed
/// entry timestamp carries the same data. Re-dress it (without `cert` for a key signature).
fn legacy_from(bundle: &Path) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    let entry = &v["verificationMaterial"]["tlogEntries"][0];
    let log_id: String = b64
        .decode(entry["logId"]["keyId"].as_str().unwrap())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut legacy = serde_json::json!({
        "base64Signature": v["messageSignature"]["signature"],
        "rekorBundle": {
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": entry["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
                "logIndex": entry["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
                "logID": log_id,
            }
        }
    });
    if let Some(der) =
        v["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str()
    {
        let pem = format!("-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n");
        legacy["cert"] = serde_json::json!(b64.encode(pem));
    }
    legacy
}

#[test]
fn legacy_cosign_bundles_keyless_and_key() {
    let Some(up) = shared() else { return };
    let conf = up.join("sigstore-conformance/bundle-verify");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let legacy = legacy_from(&conf.join("happy-path-v0.1/bundle.sigstore.json"));
    let dir = tempfile::tempdir().unwrap();
    let artifact = conf.join("a.txt");
    let root = production();
    let signers = [Signer::Keyless {
        identity: Matcher::exact(DEFAULT_IDENTITY),
        issuer: Matcher::exact(DEFAULT_ISSUER),
        trusted_root: root.clone(),
    }];
    let run = |bundle: &serde_json::Value, signers: &[Signer]| {
        let p = dir.path().join("a.txt.bundle");
        std::fs::write(&p, bundle.to_string()).unwrap();
        verify(&request(&artifact, &p, signers, &[]))
    };
    let ok = run(&legacy, &signers).unwrap();
    assert_eq!(ok.format, "cosign-legacy-bundle");
    assert_eq!(ok.signer.identity.as_deref(), Some(DEFAULT_IDENTITY));
    // A forged SET, another integrated time, another signature: each fails.
    let mut bad = legacy.clone();
    bad["rekorBundle"]["SignedEntryTimestamp"] = serde_json::json!(b64.encode([1u8; 70]));
    assert!(run(&bad, &signers).is_err());
    let mut bad = legacy.clone();
    bad["rekorBundle"]["Payload"]["integratedTime"] = serde_json::json!(1);
    assert!(run(&bad, &signers).is_err());
    let mut bad = legacy.clone();
    bad["base64Signature"] = serde_json::json!(b64.encode([2u8; 70]));
    assert!(run(&bad, &signers).is_err());
    // The same bundle for another file: the signed digest is not the file's.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "not a.txt").unwrap();
    let p = dir.path().join("b.bundle");
    std::fs::write(&p, legacy.to_string()).unwrap();
    match verify(&request(&other, &p, &signers, &[])) {
        Err(Error::Rejected(Rejection::Content(c))) => {
            assert!(c.changed[0].detail.contains("signed sha256"), "{c}")
        }
        r => panic!("{r:?}"),
    }

    // cosign sign-blob --key: no certificate; verified with the key.
    let case = conf.join("managed-key-happy-path");
    let legacy = legacy_from(&case.join("bundle.sigstore.json"));
    assert!(legacy.get("cert").is_none());
    let key = |path: &Path| {
        Signer::Key(PublicKey::from_pem(&std::fs::read_to_string(path).unwrap(), "key.pub").unwrap())
    };
    let v = run(&legacy, &[key(&case.join("key.pub"))]).unwrap();
    assert_eq!((v.format, v.signer.mode), ("cosign-legacy-bundle", Mode::Key));
    let stranger =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/signing/keys/other-p256.pub");
    assert!(matches!(run(&legacy, &[key(&stranger)]), Err(Error::Rejected(Rejection::Untrusted(_)))));
    // A keyless policy does not accept a key signature.
    assert!(run(&legacy, &signers).is_err());
}
