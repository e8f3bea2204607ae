//! Hostile input must never panic, hang, or let a payload through: every fixture, truncated at
//! many points and with pseudo-random byte flips (threats.md §9.6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, Rng, fixtures_dir, manifest, scan_bytes_timed, seed};
use modelgate_policy::{Severity, Verdict};
use std::time::Duration;

/// Generous: debug builds on a loaded 2-core CI machine. A hang is orders of magnitude slower.
const LIMIT: Duration = Duration::from_secs(60);

/// Shorter than this, a prefix cannot carry a recognisable container header plus a payload.
const MIN_RECOGNISABLE: usize = 16;

fn fixtures() -> Vec<(Fixture, Vec<u8>)> {
    manifest()
        .fixture
        .into_iter()
        .filter(|f| !f.generated)
        .map(|f| {
            let bytes = std::fs::read(fixtures_dir().join(&f.path)).unwrap();
            (f, bytes)
        })
        .collect()
}

fn cut_points(len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..len.min(8)).collect();
    let steps = 40;
    cuts.extend((1..steps).map(|i| len * i / steps));
    cuts.push(len.saturating_sub(1));
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c < len);
    cuts
}

#[test]
fn truncated_files_never_panic_hang_or_pass_when_malicious() {
    let mut problems = Vec::new();
    for (f, bytes) in fixtures() {
        let spans = if f.malicious() {
            payload_spans(&scan_bytes_timed(bytes.clone(), &f.path, LIMIT), false)
        } else {
            Vec::new()
        };
        for cut in cut_points(bytes.len()) {
            let name = format!("{}[..{cut}]", f.path);
            let o = scan_bytes_timed(bytes[..cut].to_vec(), &f.path, LIMIT);
            // A malicious file cut anywhere after its payload begins never passes: either the
            // payload is still there, or the structure is broken (a finding), or nothing is
            // left that looks like a model (named like one: a finding too). Cut before the
            // payload's member starts, or to a few bytes no format can even be recognised from,
            // what remains may be harmless.
            let payload_included =
                cut >= MIN_RECOGNISABLE && spans.iter().any(|&(start, _)| cut as u64 > start);
            // A chat template's payload span starts at the first name it reaches, which is
            // often a harmless `{% set %}` or macro whose dangerous attribute is only built
            // later: cut in between, the remaining template is harmless, and it parses (so it is
            // analysed, not MG507). These variants are held to the whole-file test instead.
            let template_variant = f.path.starts_with("malicious/templates/");
            if f.malicious() && payload_included && !template_variant && o.verdict == Verdict::Pass {
                let rules: Vec<&str> = o.findings.iter().map(|x| x.rule.id.as_str()).collect();
                problems.push(format!("{name} passes ({rules:?})"));
            }
        }
    }
    assert!(problems.is_empty(), "{} truncation(s) passed:\n{}", problems.len(), problems.join("\n"));
}

/// Where the original's failing findings are, in file offsets: a flip there may legitimately
/// disarm the payload; a flip anywhere else must not.
/// For truncation, the payload starts at the finding; for flips, any earlier byte of the same
/// stream can derail the parse before it, so the span starts at 0.
fn payload_spans(o: &common::Outcome, from_stream_start: bool) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    for f in o.findings.iter().filter(|f| f.severity >= Severity::High) {
        match &f.location.member {
            None => {
                let at = f.location.offset.unwrap_or(0);
                spans.push((if from_stream_start { 0 } else { at }, at + 4096));
            }
            Some(member) => {
                let top = member.split('!').next().unwrap_or(member);
                if let Some(child) =
                    o.node.children.iter().find(|c| c.name == top || format!("<{}>", c.name) == top)
                {
                    let start = child.parent_offset.unwrap_or(0);
                    // A file embedded in a pickle sits in the same stream: any earlier flip can
                    // derail the parse before it, as for the pickle's own findings. Its bytes may
                    // be spelt as base64 or hex text, up to twice its decoded size.
                    let embedded = child.relation == Some(modelgate_formats::Relation::Embedded);
                    let end = start + if embedded { 2 * child.size } else { child.size } + 1024;
                    spans.push((if embedded && from_stream_start { 0 } else { start }, end));
                } else {
                    spans.push((0, u64::MAX));
                }
            }
        }
    }
    spans
}

#[test]
fn byte_flips_never_panic_hang_or_hide_a_payload() {
    let mut problems = Vec::new();
    for (f, bytes) in fixtures() {
        if bytes.is_empty() {
            continue;
        }
        let original = scan_bytes_timed(bytes.clone(), &f.path, LIMIT);
        let spans = payload_spans(&original, true);
        let mut rng = Rng::new(seed(&f.path));
        let flips = if bytes.len() > 200_000 { 32 } else { 256 };
        for _ in 0..flips {
            let at = rng.below(bytes.len() as u64) as usize;
            let mut mutant = bytes.clone();
            mutant[at] ^= (rng.below(255) + 1) as u8;
            let o = scan_bytes_timed(mutant, &f.path, LIMIT);
            let inside_payload = spans.iter().any(|&(a, b)| (a..b).contains(&(at as u64)));
            if f.malicious() && o.verdict == Verdict::Pass && !inside_payload {
                problems.push(format!("{}: flipping byte {at} hides the payload", f.path));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
