//! The shard section of a JSON report, and `modelgate merge REPORT…` (`docs/scale.md`).
//!
//! A sharded scan's JSON report carries, besides the usual fields, a `shard` object with
//! everything the report writers read: every artifact's full inventory and findings (after
//! pins, signatures and suppressions), the signature checks, the BOM's root name. `merge` checks
//! that the shards belong together, reads them back into the same [`Artifact`]s a single run
//! holds, and renders every format with the same writers, so the merged reports are the ones
//! one unsharded run writes (apart from timestamps).

use crate::error::GateError;
use crate::report::Unmatched;
use crate::run::{Artifact, HubRepo, Origin};
use crate::shard::Plan;
use crate::signatures::Outcome;
use crate::walk::Skipped;
use modelgate_formats::Node;
use modelgate_policy::suppress::Date;
use modelgate_policy::{Catalogue, FailOn, Finding, Location, Severity, Suppressed, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `modelgate merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The JSON report of every shard (`scan --shard K/N --json FILE`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report to FILE ("-" for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a CycloneDX ML-BOM to FILE.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// CycloneDX version of the BOM.
    #[arg(long, value_name = "VERSION", default_value = "1.6")]
    pub sbom_spec: crate::report::cyclonedx::Spec,
    /// Write SARIF 2.1.0 to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// The SARIF run's category (automationDetails.id).
    #[arg(long, value_name = "NAME", requires = "sarif")]
    pub sarif_category: Option<String>,
    /// The policy the shards ran with, for the SARIF rules' severities and help (default:
    /// `./modelgate.toml` if it exists, else the built-in policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a GitLab Code Quality report to FILE.
    #[arg(long, value_name = "FILE")]
    pub gitlab_codequality: Option<PathBuf>,
    /// Write a GitLab SAST report to FILE.
    #[arg(long, value_name = "FILE")]
    pub gitlab_sast: Option<PathBuf>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Bumped on any incompatible change to the `shard` object.
pub const SHARD_FORMAT: u32 = 1;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, Deserialize)]
struct Section {
    format: u32,
    index: usize,
    count: usize,
    /// SHA-256 of the whole input listing (the same on every shard of one run).
    inputs: String,
    /// SHA-256 of the policy, threshold and lockfile.
    policy: String,
    fail_on: String,
    /// The CycloneDX root component's name.
    root_name: String,
    /// Every unit of the run: name, shard, bytes.
    units: Vec<(String, usize, u64)>,
    artifacts: Vec<ArtifactRecord>,
    signatures: Vec<serde_json::Value>,
    /// What the walk left out (every shard walks the whole tree: the same on each).
    skipped: Skipped,
    /// Policy and lockfile entries that matched nothing this shard scanned: `(table, path, origin)`.
    unmatched: Vec<(String, String, String)>,
}

#[derive(Serialize, Deserialize)]
struct ArtifactRecord {
    path: String,
    node: Node,
    findings: Vec<FindingRecord>,
    missing: bool,
    origin: Option<OriginRecord>,
}

#[derive(Serialize, Deserialize)]
struct FindingRecord {
    rule: String,
    severity: String,
    message: String,
    member: Option<String>,
    offset: Option<u64>,
    evidence: Option<String>,
    suppressed: Option<(String, Option<String>)>,
}

#[derive(Serialize, Deserialize)]
struct OriginRecord {
    url: String,
    pin_key: String,
    repo: Option<(String, String, String, String, Option<String>)>,
    from_cache: bool,
}

/// What a shard adds to its JSON report.
pub struct ShardInfo<'a> {
    pub plan: &'a Plan,
    pub policy_hash: String,
    pub fail_on: FailOn,
    pub root_name: String,
    pub artifacts: &'a [Artifact],
    pub signatures: &'a [Outcome],
    pub skipped: Skipped,
    pub unmatched: &'a [Unmatched],
}

/// The JSON report with the `shard` object added as its last member.
pub fn with_shard(report: &str, info: &ShardInfo<'_>) -> String {
    let section = Section {
        format: SHARD_FORMAT,
        index: info.plan.spec.index,
        count: info.plan.spec.count,
        inputs: info.plan.fingerprint.clone(),
        policy: info.policy_hash.clone(),
        fail_on: info.fail_on.to_string(),
        root_name: info.root_name.clone(),
        units: info.plan.assignment(),
        artifacts: info.artifacts.iter().map(record).collect(),
        signatures: info
            .signatures
            .iter()
            .map(|s| serde_json::to_value(s.json()).unwrap_or(serde_json::Value::Null))
            .collect(),
        skipped: info.skipped,
        unmatched: info
            .unmatched
            .iter()
            .map(|u| (u.table.to_string(), u.path.clone(), u.origin.clone()))
            .collect(),
    };
    let body = serde_json::to_string_pretty(&section).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let body = body.replace('\n', "\n  ");
    let head = report.trim_end().strip_suffix('}').unwrap_or(report).trim_end();
    format!("{head},\n  \"shard\": {body}\n}}\n")
}

fn record(a: &Artifact) -> ArtifactRecord {
    ArtifactRecord {
        path: a.path.clone(),
        node: a.node.clone(),
        findings: a
            .findings
            .iter()
            .map(|f| FindingRecord {
                rule: f.rule.id.clone(),
                severity: f.severity.as_str().to_string(),
                message: f.message.clone(),
                member: f.location.member.clone(),
                offset: f.location.offset,
                evidence: f.evidence.clone(),
                suppressed: f
                    .suppressed
                    .as_ref()
                    .map(|s| (s.reason.clone(), s.expires.map(|d| d.to_string()))),
            })
            .collect(),
        missing: a.missing,
        origin: a.origin.as_ref().map(|o| OriginRecord {
            url: o.url.clone(),
            pin_key: o.pin_key.clone(),
            repo: o.repo.as_ref().map(|r| {
                (r.id.clone(), r.commit.clone(), r.root.clone(), r.endpoint.clone(), r.purl.clone())
            }),
            from_cache: o.from_cache,
        }),
    }
}

fn artifact(r: ArtifactRecord) -> Result<Artifact, String> {
    let findings = r
        .findings
        .into_iter()
        .map(|f| {
            let rule =
                Catalogue::builtin().find(&f.rule).ok_or_else(|| format!("unknown rule {}", f.rule))?;
            let severity = f.severity.parse::<Severity>().map_err(|e| e.to_string())?;
            let suppressed = match f.suppressed {
                Some((reason, expires)) => Some(Suppressed {
                    reason,
                    expires: match expires {
                        Some(d) => Some(Date::parse(&d).ok_or_else(|| format!("bad date {d:?}"))?),
                        None => None,
                    },
                }),
                None => None,
            };
            Ok(Finding {
                rule,
                severity,
                message: f.message,
                location: Location { member: f.member, offset: f.offset },
                evidence: f.evidence,
                suppressed,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Artifact {
        path: r.path,
        node: r.node,
        findings,
        missing: r.missing,
        origin: r.origin.map(|o| Origin {
            url: o.url,
            pin_key: o.pin_key,
            repo: o.repo.map(|(id, commit, root, endpoint, purl)| HubRepo {
                id,
                commit,
                root,
                endpoint,
                purl,
            }),
            from_cache: o.from_cache,
        }),
    })
}

/// Rebuilds a signature check from its JSON shape (`Outcome::json`).
fn outcome(v: serde_json::Value) -> Result<Outcome, String> {
    #[derive(Deserialize)]
    struct J {
        model: String,
        signature: Option<String>,
        verified: bool,
        reason: Option<String>,
        format: Option<String>,
        mode: Option<String>,
        signer: Option<S>,
        root_digest: Option<String>,
        serialization: Option<String>,
        ignore_paths: Vec<String>,
        files: Vec<F>,
        excluded: Vec<String>,
    }
    #[derive(Deserialize)]
    struct S {
        identity: Option<String>,
        issuer: Option<String>,
        key: Option<String>,
        chain: Vec<String>,
        transparency_log: bool,
        timestamps: Vec<String>,
    }
    #[derive(Deserialize)]
    struct F {
        path: String,
        algorithm: String,
        digest: String,
    }
    use modelgate_sign::{Mode, SignedFile, SignerInfo, Verified};
    let j: J = serde_json::from_value(v).map_err(|e| format!("a signature check: {e}"))?;
    let result = if j.verified {
        let format = ["model_signing", "cosign-bundle", "cosign-legacy-bundle"]
            .into_iter()
            .find(|f| Some(*f) == j.format.as_deref())
            .ok_or_else(|| format!("unknown signature format {:?}", j.format))?;
        let mode = match j.mode.as_deref() {
            Some("keyless") => Mode::Keyless,
            Some("key") => Mode::Key,
            Some("certificate") => Mode::Certificate,
            other => return Err(format!("unknown signer mode {other:?}")),
        };
        let s = j.signer.ok_or("a verified signature without its signer")?;
        Ok(Verified {
            format,
            signer: SignerInfo {
                mode,
                identity: s.identity,
                issuer: s.issuer,
                key: s.key,
                chain: s.chain,
                transparency_log: s.transparency_log,
                timestamps: s.timestamps,
            },
            root_digest: j.root_digest,
            subject: None,
            serialization: j.serialization,
            ignore_paths: j.ignore_paths,
            files: j
                .files
                .into_iter()
                .map(|f| SignedFile { path: f.path, algorithm: f.algorithm, digest: f.digest })
                .collect(),
            excluded: j.excluded,
            rehashed: 0,
        })
    } else {
        Err(j.reason.unwrap_or_default())
    };
    Ok(Outcome { model: j.model, signature: j.signature, result })
}

/// The shards put back together.
pub struct Merged {
    pub artifacts: Vec<Artifact>,
    pub signatures: Vec<Outcome>,
    pub fail_on: FailOn,
    pub verdict: Verdict,
    pub root_name: String,
    pub skipped: Skipped,
    /// The entries that matched nothing in any shard.
    pub unmatched: Vec<Unmatched>,
}

/// Reads the shard reports and checks that they are complete, disjoint and from the same
/// inputs, policy and version. Every problem is an error naming the reports involved.
pub fn read(reports: &[PathBuf]) -> Result<Merged, GateError> {
    let usage = |why: String| GateError::Usage(format!("merge: {why}"));
    if reports.is_empty() {
        return Err(usage("give the JSON report of every shard".into()));
    }
    let mut shards: Vec<(PathBuf, String, Section)> = Vec::new();
    for path in reports {
        let bad = |why: String| GateError::Input { path: path.clone(), why };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a modelgate JSON report: {e}")))?;
        if value["report_version"] != crate::report::json::REPORT_VERSION {
            return Err(bad("not a modelgate JSON report (report_version 1)".into()));
        }
        let version = value["modelgate_version"].as_str().unwrap_or("?").to_string();
        let Some(section) = value.get("shard") else {
            return Err(bad("not a shard's report: it has no `shard` object (was it written by `scan --shard K/N --json`?)".into()));
        };
        if section["format"] != SHARD_FORMAT {
            return Err(bad(format!("shard object format {} is not {SHARD_FORMAT}", section["format"])));
        }
        let section: Section =
            serde_json::from_value(section.clone()).map_err(|e| bad(format!("damaged shard object: {e}")))?;
        shards.push((path.clone(), version, section));
    }
    let (first_path, first_version, first) = &shards[0];
    let name = |p: &Path| p.display().to_string();
    for (path, version, s) in &shards[1..] {
        let differ = |what: &str| {
            usage(format!(
                "{} and {} are not shards of one scan: they differ in {what}",
                name(first_path),
                name(path)
            ))
        };
        if version != first_version {
            return Err(differ(&format!("modelgate version ({first_version} and {version})")));
        }
        if s.count != first.count {
            return Err(differ(&format!("the number of shards ({} and {})", first.count, s.count)));
        }
        if s.inputs != first.inputs || s.units != first.units {
            return Err(differ("their inputs (the files, sizes or remote commits listed)"));
        }
        if s.policy != first.policy || s.fail_on != first.fail_on {
            return Err(differ("their policy (policy file, --fail-on or lockfile)"));
        }
        if s.root_name != first.root_name {
            return Err(differ("the paths given to scan"));
        }
    }
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for (path, _, s) in &shards {
        if let Some(other) = seen.insert(s.index, path) {
            return Err(usage(format!(
                "shard {}/{} is given twice: {} and {}",
                s.index,
                s.count,
                name(other),
                name(path)
            )));
        }
    }
    let missing: Vec<String> =
        (1..=first.count).filter(|i| !seen.contains_key(i)).map(|i| format!("{i}/{}", first.count)).collect();
    if !missing.is_empty() {
        return Err(usage(format!("incomplete: no report for shard {}", missing.join(", "))));
    }
    let fail_on: FailOn = first.fail_on.parse().map_err(|e: String| usage(e))?;
    let root_name = first.root_name.clone();
    let skipped = first.skipped;
    // An entry matched nothing in the whole run when it matched nothing in every shard.
    let mut unmatched: Option<BTreeSet<(String, String, String)>> = None;
    for (_, _, s) in &shards {
        let mine: BTreeSet<_> = s.unmatched.iter().cloned().collect();
        unmatched = Some(match unmatched {
            None => mine,
            Some(so_far) => so_far.intersection(&mine).cloned().collect(),
        });
    }
    let mut unmatched_entries = Vec::new();
    for (table, path, origin) in unmatched.unwrap_or_default() {
        let table = match table.as_str() {
            "signatures" => "signatures",
            "suppress" => "suppress",
            "pin" => "pin",
            other => return Err(usage(format!("unknown unmatched table {other:?} in a shard report"))),
        };
        unmatched_entries.push(Unmatched { table, path, origin });
    }
    let mut artifacts = Vec::new();
    let mut signatures = Vec::new();
    let mut owner: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut models = BTreeSet::new();
    for (path, _, s) in shards {
        let bad = |why: String| GateError::Input { path: path.clone(), why };
        for r in s.artifacts {
            if let Some(other) = owner.insert(r.path.clone(), path.clone()) {
                return Err(usage(format!(
                    "{} is in two shards' reports ({} and {}): the shards overlap",
                    r.path,
                    name(&other),
                    name(&path)
                )));
            }
            artifacts.push(artifact(r).map_err(&bad)?);
        }
        for v in s.signatures {
            let o = outcome(v).map_err(&bad)?;
            if !models.insert(o.model.clone()) {
                return Err(usage(format!("the signature of {} was checked by two shards", o.model)));
            }
            signatures.push(o);
        }
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    signatures.sort_by(|a, b| a.model.cmp(&b.model));
    let verdict = Verdict::of(artifacts.iter().flat_map(|a| &a.findings), fail_on);
    Ok(Merged { artifacts, signatures, fail_on, verdict, root_name, skipped, unmatched: unmatched_entries })
}
