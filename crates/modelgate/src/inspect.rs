//! `modelgate inspect`: what the parser saw, for triage.

use crate::cli::InspectArgs;
use crate::error::GateError;
use crate::report::one_line;
use modelgate_formats::stream::hex;
use modelgate_formats::{Detail, Node, Options, Trace, TraceEvent};
use modelgate_policy::pickle_lists::Class;
use modelgate_policy::{Policy, evaluate};
use std::io::Write;

/// Prints each stream as it is entered and each pickle opcode as it executes.
struct Printer<'w> {
    out: &'w mut dyn Write,
    counts: Vec<u64>,
    max: u64,
}

impl Printer<'_> {
    fn indent(&self) -> String {
        "  ".repeat(self.counts.len().saturating_sub(1))
    }
}

impl Trace for Printer<'_> {
    fn event(&mut self, event: TraceEvent<'_>) {
        match event {
            TraceEvent::Enter { name, relation, format } => {
                self.counts.push(0);
                let indent = self.indent();
                let label = match relation {
                    None => format!("file ({format})"),
                    Some(r) => format!(
                        "{} {name} ({format})",
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                };
                let _ = writeln!(self.out, "{indent}{label}");
            }
            TraceEvent::Opcode { offset, name, arg, note } => {
                let max = self.max;
                let indent = self.indent();
                let Some(count) = self.counts.last_mut() else {
                    return;
                };
                *count += 1;
                if max == 0 || *count <= max {
                    let arrow = if note.is_empty() { String::new() } else { format!("  → {note}") };
                    let _ = writeln!(self.out, "{indent}  {offset:>10}  {name:<16} {arg}{arrow}");
                } else if *count == max + 1 {
                    let _ = writeln!(
                        self.out,
                        "{indent}  … more opcodes not listed (--max-opcodes 0 lists them all)"
                    );
                }
            }
            TraceEvent::Leave => {
                self.counts.pop();
            }
        }
    }
}

pub fn run(args: &InspectArgs, policy: &Policy) -> Result<(), GateError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let display = args.file.display().to_string();
    let node = if args.json {
        modelgate_formats::scan_file(&args.file, Options::default())
    } else {
        let _ = writeln!(out, "{display}");
        let mut printer = Printer { out: &mut out, counts: Vec::new(), max: args.max_opcodes };
        modelgate_formats::scan_file(&args.file, Options { trace: Some(&mut printer), ..Options::default() })
    }
    .map_err(|e| GateError::Input { path: args.file.clone(), why: e.to_string() })?;
    let findings = evaluate(&node, &display, policy);
    if args.json {
        let value = serde_json::json!({
            "path": display,
            "inventory": node,
            "findings": findings.iter().map(|f| serde_json::json!({
                "rule": f.rule.id, "name": f.rule.name, "severity": f.severity.as_str(), "message": f.message,
                "location": {"member": f.location.member, "offset": f.location.offset}, "evidence": f.evidence,
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return Ok(());
    }
    let _ = writeln!(out, "\nstreams:");
    list_nodes(&mut out, &node, &mut Vec::new());
    let _ = writeln!(out, "\nglobals:");
    list_globals(&mut out, &node, &mut Vec::new(), policy);
    let _ = writeln!(out, "\nfindings: {}", findings.len());
    for f in &findings {
        let place = f.location.member.clone().unwrap_or_default();
        let offset = f.location.offset.map(|o| format!("@{o}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<8} {} {} {place}{offset}\n           {}",
            f.severity.as_str(),
            f.rule.id,
            f.rule.name,
            f.message
        );
    }
    Ok(())
}

fn list_nodes<'n>(out: &mut dyn Write, node: &'n Node, trail: &mut Vec<&'n Node>) {
    let name = if trail.is_empty() { "(file)".to_string() } else { modelgate_formats::member_path(trail) };
    let role = node
        .role
        .map(|r| {
            format!(
                " role={}",
                serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let _ =
        writeln!(out, "  {name}  {}  {} bytes  sha256:{}{role}", node.format, node.size, hex(&node.sha256));
    if let Some(summary) = model_summary(&node.detail) {
        let _ = writeln!(out, "      {summary}");
    }
    for child in &node.children {
        trail.push(child);
        list_nodes(out, child, trail);
        trail.pop();
    }
}

/// One line about a model's header (ONNX, GGUF, safetensors, Hugging Face config).
fn model_summary(detail: &Detail) -> Option<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    Some(match detail {
        Detail::Onnx(i) => format!(
            "onnx: ir_version {} producer {} opsets [{}] nodes {} initializers {} operators {}",
            i.ir_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            opt(&i.producer_name),
            i.opsets
                .iter()
                .map(|o| format!("{}:{}", if o.domain.is_empty() { "ai.onnx" } else { &o.domain }, o.version))
                .collect::<Vec<_>>()
                .join(" "),
            i.nodes,
            i.initializers,
            i.operators.len()
        ),
        Detail::Gguf(i) => format!(
            "gguf v{}: architecture {} name {} license {} file_type {} context {} parameters {} tensors {}",
            i.version,
            opt(&i.architecture),
            opt(&i.name),
            opt(&i.license),
            opt(&i.file_type),
            i.context_length.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            i.parameter_count,
            i.tensor_count
        ),
        Detail::Safetensors(i) => format!(
            "safetensors: tensors {} parameters {} dtypes [{}]",
            i.tensor_count,
            i.parameter_count,
            i.dtypes.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(" ")
        ),
        Detail::HfConfig(i) => format!(
            "config: model_type {} architectures [{}] tokenizer {} context {} remote code [{}]",
            opt(&i.model_type),
            i.architectures.join(" "),
            opt(&i.tokenizer_class),
            i.context_length.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            i.remote_code.join(" ")
        ),
        Detail::ModelCard(c) => format!(
            "model card: license [{}] base_model [{}] datasets [{}] task {}",
            c.licenses.join(" "),
            c.base_models.join(" "),
            c.datasets.join(" "),
            opt(&c.pipeline_tag)
        ),
        Detail::Skops(s) => format!(
            "skops schema: protocol {} skops {} nodes [{}] imports {} members read {}",
            s.protocol.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            opt(&s.skops_version),
            s.loaders.ops.iter().map(|o| format!("{}×{}", o.name, o.count)).collect::<Vec<_>>().join(" "),
            s.globals.len(),
            s.files.len()
        ),
        Detail::CheckpointIndex(c) => format!(
            "checkpoint index: shards {} endianness {} tensors {} elements {} dtypes [{}] extents [{}]",
            c.num_shards.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            opt(&c.endianness),
            c.tensors,
            c.elements,
            c.dtypes.ops.iter().map(|o| format!("{}×{}", o.name, o.count)).collect::<Vec<_>>().join(" "),
            c.shard_extents.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
        ),
        Detail::Graph(g) if !g.is_empty() => {
            const SHOWN: usize = 40;
            let mut ops: Vec<String> =
                g.ops.iter().take(SHOWN).map(|o| format!("{}×{}", o.name, o.count)).collect();
            if g.ops.len() > SHOWN {
                ops.push(format!("… {} more", g.ops.len() - SHOWN));
            }
            let facts: Vec<String> = g.facts.iter().take(SHOWN).map(|(k, v)| format!("{k}={v}")).collect();
            format!("graph: {} ops [{}]", facts.join(" "), ops.join(" "))
        }
        _ => return None,
    })
}

/// What the lists (and the policy file) say about one imported global.
fn describe(policy: &Policy, module: &str, name: &str, loader: &str) -> String {
    match policy.pickle.classify(module, name, loader) {
        Class::Allowed(e) => format!("allowed: {}", one_line(&e.reason)),
        Class::Denied(e) => format!("DENIED: {}", one_line(&e.reason)),
        Class::Traversal { why, .. } => format!("TRAVERSAL: {why}"),
        Class::Unlisted => match policy.extra_trust(module, name) {
            Some(r) => format!("allowed by policy: {r}"),
            None => "NOT ON THE ALLOW-LIST".to_string(),
        },
    }
}

fn list_globals<'n>(out: &mut dyn Write, node: &'n Node, trail: &mut Vec<&'n Node>, policy: &Policy) {
    if let Some(p) = node.pickle() {
        let place =
            if trail.is_empty() { "(file)".to_string() } else { modelgate_formats::member_path(trail) };
        for (i, g) in p.globals.iter().enumerate() {
            let class = describe(policy, &g.module, &g.name, p.loader.as_str());
            let calls: u64 = p
                .calls
                .iter()
                .filter(
                    |c| matches!(c.callee, modelgate_formats::pickle::Callee::Global { index } if index == i),
                )
                .map(|c| c.count)
                .sum();
            let _ = writeln!(
                out,
                "  {place}@{}  {} ({}×, called {calls}×, {})  {class}",
                g.offset,
                g.qualified(),
                g.count,
                g.opcode
            );
        }
    }
    if let Detail::Skops(s) = &node.detail {
        let place =
            if trail.is_empty() { "(file)".to_string() } else { modelgate_formats::member_path(trail) };
        for g in &s.globals {
            let class = describe(policy, &g.module, &g.name, modelgate_formats::skops::LOADER);
            let _ = writeln!(
                out,
                "  {place}  {} ({}×, skops {} at {})  {class}",
                g.qualified(),
                g.count,
                g.node,
                g.path
            );
        }
    }
    for child in &node.children {
        trail.push(child);
        list_globals(out, child, trail, policy);
        trail.pop();
    }
}
