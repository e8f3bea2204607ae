//! Inputs found by the fuzz driver (`crates/modelgate/examples/fuzz.rs`, docs/fuzzing.md), each
//! rebuilt byte by byte: every one once made a scan panic, hang, overflow its stack, allocate
//! without bound, or pass when it should not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::{Node, NoteKind, Options, scan_bytes};

fn kinds(node: &Node) -> Vec<NoteKind> {
    let mut out: Vec<NoteKind> = node.notes.iter().map(|n| n.kind).collect();
    for c in &node.children {
        out.extend(kinds(c));
    }
    out
}

/// A Jinja expression of millions of tokens (`{{ messages ((((… }}`): the lexer kept every token
/// of every region, about 40 bytes each, so 60 MB of `(` took 2.4 GiB and then passed. Now a
/// region keeps its first 100,000 tokens and the template is a limit finding.
#[test]
fn jinja_region_with_millions_of_tokens_is_a_limit_not_an_allocation() {
    let text = format!("{{{{ messages {} }}}}", "(".repeat(300_000));
    let node = scan_bytes(text.as_bytes(), Options::default());
    assert!(kinds(&node).contains(&NoteKind::LimitExceeded), "{:?}", node.notes);
    // Many ordinary regions are still fine, and still inspected to the end.
    let text = format!("{}{{{{ messages.__class__ }}}}", "{% if x %}".repeat(200_000));
    let node = scan_bytes(text.as_bytes(), Options::default());
    let k = kinds(&node);
    assert!(k.contains(&NoteKind::TemplateInjection), "{k:?}");
    assert!(!k.contains(&NoteKind::LimitExceeded), "{k:?}");
}
