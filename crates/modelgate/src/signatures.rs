//! Signatures: `modelgate verify`, and the `[[signatures]]` tables `modelgate scan` enforces.
//! The verification itself is `modelgate-sign`; this module finds signatures, builds signers
//! from the command line or the policy, and turns results into findings.

use crate::error::GateError;
use crate::run::Artifact;
use modelgate_formats::{Node, Options};
use modelgate_policy::paths::Base;
use modelgate_policy::signatures::{Pattern, SignatureRule, Trust};
use modelgate_policy::{Finding, Policy, RuleId, evaluate};
use modelgate_sign::{
    Anchors, ContentMismatch, Error, Matcher, PublicKey, Rejection, Request, Signer, TrustedRoot, Verified,
};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// The result of checking one model's signature.
pub struct Outcome {
    /// The model (directory or file), as reported.
    pub model: String,
    /// The signature file, if one was found.
    pub signature: Option<String>,
    /// What was verified, or why not.
    pub result: Result<Verified, String>,
}

/// Where a model's signature is looked for, in order: `model.sig` inside a directory, then
/// `<model>.sig` and `<model>.sigstore.json` next to it.
pub fn candidates(model: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if model.is_dir() {
        out.push(model.join("model.sig"));
    }
    let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for ext in ["sig", "sigstore.json"] {
        out.push(model.with_file_name(format!("{name}.{ext}")));
    }
    out
}

/// The first signature file that exists.
pub fn discover(model: &Path) -> Option<PathBuf> {
    candidates(model).into_iter().find(|p| p.is_file())
}

fn matcher(p: &Pattern) -> Result<Matcher, GateError> {
    match p {
        Pattern::Exact(s) => Ok(Matcher::exact(s.clone())),
        Pattern::Regexp(r) => Matcher::regex(r).map_err(GateError::Usage),
    }
}

fn read(path: &Path) -> Result<String, GateError> {
    std::fs::read_to_string(path)
        .map_err(|e| GateError::Input { path: path.to_path_buf(), why: e.to_string() })
}

/// The trusted root for keyless signatures: a file, or the embedded public-good root.
fn trusted_root(path: Option<&Path>) -> Result<Arc<TrustedRoot>, GateError> {
    static EMBEDDED: OnceLock<Result<Arc<TrustedRoot>, String>> = OnceLock::new();
    match path {
        Some(p) => modelgate_sign::trusted_root_from_json(&read(p)?, &p.display().to_string())
            .map(Arc::new)
            .map_err(GateError::Usage),
        None => EMBEDDED
            .get_or_init(|| modelgate_sign::embedded_trusted_root().map(Arc::new))
            .clone()
            .map_err(GateError::Usage),
    }
}

/// Builds the signers a policy table (or the equivalent command line) accepts.
pub fn signers(trust: &Trust) -> Result<Vec<Signer>, GateError> {
    match trust {
        Trust::Keyless { identity, issuer, trusted_root: root } => Ok(vec![Signer::Keyless {
            identity: matcher(identity)?,
            issuer: matcher(issuer)?,
            trusted_root: trusted_root(root.as_deref().map(Path::new))?,
        }]),
        Trust::Keys(files) => files
            .iter()
            .map(|f| PublicKey::from_pem(&read(Path::new(f))?, f).map(Signer::Key).map_err(GateError::Usage))
            .collect(),
        Trust::CaRoots { roots, identity } => {
            let mut anchors: Option<Anchors> = None;
            for f in roots {
                let a = Anchors::from_pem(&read(Path::new(f))?, f).map_err(GateError::Usage)?;
                match &mut anchors {
                    Some(all) => all.extend(a),
                    None => anchors = Some(a),
                }
            }
            let anchors = anchors.ok_or_else(|| GateError::Usage("no root certificate given".into()))?;
            Ok(vec![Signer::Certificate { anchors, identity: identity.as_ref().map(matcher).transpose()? }])
        }
    }
}

/// Verifies one model. `Err` only when the gate cannot run (unreadable files): a signature that
/// does not verify is an `Ok` outcome with the reason.
pub fn verify_model(
    model: &Path,
    signature: &Path,
    signers: &[Signer],
    ignores: &[String],
    known: Option<&HashMap<PathBuf, [u8; 32]>>,
) -> Result<Result<Verified, Rejection>, GateError> {
    let request = Request {
        model,
        signature,
        signers,
        extra_ignores: ignores,
        known_sha256: known,
        now: SystemTime::now(),
    };
    match modelgate_sign::verify(&request) {
        Ok(v) => Ok(Ok(v)),
        Err(Error::Rejected(r)) => Ok(Err(r)),
        Err(Error::Input(why)) => Err(GateError::Input { path: model.to_path_buf(), why }),
    }
}

/// Checks every model a `[[signatures]]` table covers, adds findings to the artifacts (and
/// artifacts for missing files and signatures), and returns what was verified.
///
/// `roots` are the keys of the scanned paths; models are found and matched by key
/// (`modelgate_policy::paths`), so the spelling of a path on the command line changes nothing.
pub fn check(
    artifacts: &mut Vec<Artifact>,
    roots: &[String],
    policy: &Policy,
    base: &Base,
) -> Result<Vec<Outcome>, GateError> {
    if policy.signatures.is_empty() {
        return Ok(Vec::new());
    }
    // Every table's keys and roots are read up front: a broken one is an error even when it
    // covers nothing today.
    let rule_signers: Vec<Vec<Signer>> =
        policy.signatures.iter().map(|r| signers(&r.trust)).collect::<Result<_, _>>()?;
    let models = models(artifacts, roots, &policy.signatures);
    let known: HashMap<PathBuf, [u8; 32]> =
        artifacts.iter().filter(|a| !a.missing).map(|a| (base.locate(&a.path), a.node.sha256)).collect();
    let mut outcomes = Vec::new();
    for model in models {
        let covering: Vec<usize> =
            (0..policy.signatures.len()).filter(|&i| policy.signatures[i].covers(&model)).collect();
        let rules: Vec<&SignatureRule> = covering.iter().map(|&i| &policy.signatures[i]).collect();
        let path = base.locate(&model);
        let explicit = rules.iter().find_map(|r| r.signature.as_ref()).map(PathBuf::from);
        let Some(signature) = explicit.or_else(|| discover(&path)) else {
            let looked: Vec<String> = candidates(&path).iter().map(|p| base.key(p)).collect();
            let expected = looked.first().cloned().unwrap_or_else(|| format!("{model}.sig"));
            let message = format!(
                "{model} must be signed ([[signatures]] path {:?}) but has no signature: looked for {}",
                rules.first().map(|r| r.path.as_str()).unwrap_or_default(),
                looked.join(", ")
            );
            push_missing(
                artifacts,
                &expected,
                Finding::policy(RuleId::SignatureMissing, policy, message, None),
            );
            outcomes.push(Outcome { model, signature: None, result: Err("no signature found".into()) });
            continue;
        };
        let all_signers: Vec<Signer> =
            covering.iter().flat_map(|&i| rule_signers[i].iter().cloned()).collect();
        let ignores: Vec<String> = rules.iter().flat_map(|r| r.ignore_paths.iter().cloned()).collect();
        let sig_display = base.key(&signature);
        let result = verify_model(&path, &signature, &all_signers, &ignores, Some(&known))?;
        match &result {
            Ok(v) => {
                for rel in &v.excluded {
                    let message = format!(
                        "{} is in the signed model {model} but its signer left it out of the signature {sig_display} (signed ignore paths: {})",
                        join(&model, rel),
                        v.ignore_paths.join(", ")
                    );
                    let f =
                        Finding::policy(RuleId::SignatureExcludesFile, policy, message, Some(rel.clone()));
                    attach(artifacts, policy, base, &join(&model, rel), &signature, f)?;
                }
            }
            Err(Rejection::Content(m)) => content_findings(artifacts, policy, base, &model, &signature, m)?,
            Err(r @ Rejection::OtherSigner(_)) => {
                let message =
                    format!("{model} is signed ({sig_display}), but not by a signer the policy allows: {r}");
                attach(
                    artifacts,
                    policy,
                    base,
                    &sig_display,
                    &signature,
                    Finding::policy(RuleId::SignerNotAllowed, policy, message, None),
                )?;
            }
            Err(r) => {
                let message = format!("the signature {sig_display} of {model} does not verify: {r}");
                attach(
                    artifacts,
                    policy,
                    base,
                    &sig_display,
                    &signature,
                    Finding::policy(RuleId::SignatureInvalid, policy, message, None),
                )?;
            }
        }
        outcomes.push(Outcome {
            model,
            signature: Some(sig_display),
            result: result.map_err(|r| r.to_string()),
        });
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(outcomes)
}

/// The models the tables cover: scanned files and the directories above them (within the
/// scanned paths) that a table's glob matches, outermost first (a file inside a covered
/// directory is part of that model).
fn models(artifacts: &[Artifact], roots: &[String], rules: &[SignatureRule]) -> Vec<String> {
    let within = |p: &str| roots.iter().any(|r| r == "." || p == r || p.starts_with(&format!("{r}/")));
    let mut candidates: BTreeSet<String> = roots.iter().cloned().collect();
    for a in artifacts.iter().filter(|a| !a.missing) {
        candidates.insert(a.path.clone());
        let mut cur = a.path.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if !within(parent) {
                break;
            }
            candidates.insert(parent.to_string());
            cur = parent;
        }
    }
    let matched: Vec<String> = candidates.into_iter().filter(|c| rules.iter().any(|r| r.covers(c))).collect();
    matched
        .iter()
        .filter(|m| !matched.iter().any(|o| o != *m && m.starts_with(&format!("{o}/"))))
        .cloned()
        .collect()
}

fn join(model: &str, rel: &str) -> String {
    if rel == "." { model.to_string() } else { format!("{model}/{rel}") }
}

fn content_findings(
    artifacts: &mut Vec<Artifact>,
    policy: &Policy,
    base: &Base,
    model: &str,
    signature: &Path,
    m: &ContentMismatch,
) -> Result<(), GateError> {
    let sig = base.key(signature);
    if let Some(shape) = &m.shape {
        let message = format!("the signature {sig} does not fit {model}: {shape}");
        attach(
            artifacts,
            policy,
            base,
            &sig,
            signature,
            Finding::policy(RuleId::SignatureInvalid, policy, message, None),
        )?;
    }
    for c in &m.changed {
        let path = join(model, &c.path);
        let message = format!("{path} differs from its signature {sig}: {}", c.detail);
        attach(
            artifacts,
            policy,
            base,
            &path,
            signature,
            Finding::policy(RuleId::SignedFileChanged, policy, message, None),
        )?;
    }
    for rel in &m.extra {
        let path = join(model, rel);
        let message = format!("{path} is in the signed model {model} but not covered by its signature {sig}");
        attach(
            artifacts,
            policy,
            base,
            &path,
            signature,
            Finding::policy(RuleId::UnsignedFile, policy, message, None),
        )?;
    }
    for rel in &m.links {
        let path = join(model, rel);
        let message = format!(
            "{path} is a symbolic link in the signed model {model}; its signature {sig} was made without allow_symlinks and does not cover it"
        );
        attach(
            artifacts,
            policy,
            base,
            &path,
            signature,
            Finding::policy(RuleId::UnsignedFile, policy, message, None),
        )?;
    }
    for rel in &m.missing {
        let path = join(model, rel);
        let message = format!("{path} is signed in {sig} but missing");
        push_missing(artifacts, &path, Finding::policy(RuleId::SignedFileMissing, policy, message, None));
    }
    Ok(())
}

/// Adds a finding to the artifact at `path`; a file that was not scanned (outside the scanned
/// paths, or excluded by the policy) gets its finding on the signature's artifact instead,
/// which is scanned now if it was not.
fn attach(
    artifacts: &mut Vec<Artifact>,
    policy: &Policy,
    base: &Base,
    path: &str,
    signature: &Path,
    finding: Option<Finding>,
) -> Result<(), GateError> {
    let Some(finding) = finding else { return Ok(()) };
    if let Some(a) = artifacts.iter_mut().find(|a| a.path == path) {
        a.findings.push(finding);
        return Ok(());
    }
    let sig = base.key(signature);
    if let Some(a) = artifacts.iter_mut().find(|a| a.path == sig) {
        a.findings.push(finding);
        return Ok(());
    }
    let node = modelgate_formats::scan_file(signature, Options::default())
        .map_err(|e| GateError::Input { path: signature.to_path_buf(), why: e.to_string() })?;
    let mut findings = evaluate(&node, &sig, policy);
    findings.push(finding);
    artifacts.push(Artifact { path: sig, node, findings, missing: false, origin: None });
    Ok(())
}

fn push_missing(artifacts: &mut Vec<Artifact>, path: &str, finding: Option<Finding>) {
    let Some(finding) = finding else { return };
    match artifacts.iter_mut().find(|a| a.path == path) {
        Some(a) => a.findings.push(finding),
        None => artifacts.push(Artifact {
            path: path.to_string(),
            node: Node::new("", None),
            findings: vec![finding],
            missing: true,
            origin: None,
        }),
    }
}

/// The JSON shape of one outcome (the report's `signatures` entries, and `verify --json`).
#[derive(Serialize)]
pub struct Json<'a> {
    model: &'a str,
    signature: Option<&'a str>,
    verified: bool,
    reason: Option<&'a str>,
    format: Option<&'static str>,
    mode: Option<&'static str>,
    signer: Option<SignerJson<'a>>,
    root_digest: Option<&'a str>,
    serialization: Option<&'a str>,
    ignore_paths: Vec<&'a str>,
    files: Vec<FileJson<'a>>,
    excluded: Vec<&'a str>,
}

#[derive(Serialize)]
struct SignerJson<'a> {
    identity: Option<&'a str>,
    issuer: Option<&'a str>,
    key: Option<&'a str>,
    chain: &'a [String],
    transparency_log: bool,
    timestamps: &'a [String],
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    algorithm: &'a str,
    digest: &'a str,
}

impl Outcome {
    /// The JSON shape.
    pub fn json(&self) -> Json<'_> {
        let ok = self.result.as_ref().ok();
        Json {
            model: &self.model,
            signature: self.signature.as_deref(),
            verified: ok.is_some(),
            reason: self.result.as_ref().err().map(String::as_str),
            format: ok.map(|v| v.format),
            mode: ok.map(|v| v.signer.mode.as_str()),
            signer: ok.map(|v| SignerJson {
                identity: v.signer.identity.as_deref(),
                issuer: v.signer.issuer.as_deref(),
                key: v.signer.key.as_deref(),
                chain: &v.signer.chain,
                transparency_log: v.signer.transparency_log,
                timestamps: &v.signer.timestamps,
            }),
            root_digest: ok.and_then(|v| v.root_digest.as_deref()),
            serialization: ok.and_then(|v| v.serialization.as_deref()),
            ignore_paths: ok.map(|v| v.ignore_paths.iter().map(String::as_str).collect()).unwrap_or_default(),
            files: ok
                .map(|v| {
                    v.files
                        .iter()
                        .map(|f| FileJson { path: &f.path, algorithm: &f.algorithm, digest: &f.digest })
                        .collect()
                })
                .unwrap_or_default(),
            excluded: ok.map(|v| v.excluded.iter().map(String::as_str).collect()).unwrap_or_default(),
        }
    }

    /// One line for the text summary.
    pub fn line(&self) -> String {
        match &self.result {
            Ok(v) => format!(
                "modelgate: signature verified: {} ({}, {} mode, signed by {}{}, {} file{})",
                self.model,
                v.format,
                v.signer.mode.as_str(),
                v.signer,
                v.root_digest.as_ref().map(|d| format!(", root {d}")).unwrap_or_default(),
                v.files.len(),
                if v.files.len() == 1 { "" } else { "s" }
            ),
            Err(why) => format!("modelgate: signature NOT verified: {}: {why}", self.model),
        }
    }
}
