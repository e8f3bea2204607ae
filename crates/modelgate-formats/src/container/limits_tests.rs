//! Archive limits across formats (threats.md §9.3, §9.6): bombs nested in other containers,
//! nesting depth, member counts, unsafe paths inside nested archives. Each format's own tests
//! cover it alone; these cover the combinations.

use super::compress::tests::{EVIL, gzip, scan_with};
use super::tar::tests::TarBuilder;
use crate::{Format, Limits, Node, NoteKind, Options, scan_bytes};
use std::io::Write;

/// A zip written the way Python's zipfile writes one: `(name, data, deflate)` members.
fn zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data, deflated) in members {
        let stored = if *deflated {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap_or_else(|e| panic!("{e}"));
            e.finish().unwrap_or_else(|e| panic!("{e}"))
        } else {
            data.to_vec()
        };
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let method: u16 = if *deflated { 8 } else { 0 };
        let offset = out.len() as u32;
        let fixed = |sig: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(sig);
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0x21, 0]);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        };
        fixed(b"PK\x03\x04", &mut out);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&stored);
        fixed(b"PK\x01\x02\x14\x00", &mut central);
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_at = out.len() as u32;
    let n = members.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn all(node: &Node, out: &mut Vec<(NoteKind, String)>) {
    out.extend(node.notes.iter().map(|n| (n.kind, n.detail.clone())));
    node.children.iter().for_each(|c| all(c, out));
}

fn kinds(node: &Node) -> Vec<NoteKind> {
    let mut out = Vec::new();
    all(node, &mut out);
    out.into_iter().map(|n| n.0).collect()
}

fn finds_the_payload(node: &Node) -> bool {
    let mut found = node.pickle().is_some_and(|p| p.globals.iter().any(|g| g.qualified() == "posix.system"));
    for c in &node.children {
        found |= finds_the_payload(c);
    }
    found
}

#[test]
fn a_zip_bomb_inside_a_tar_gz_stops_and_later_members_are_scanned() {
    let bomb = zip(&[("zeros.bin", &vec![0u8; 8 << 20], true)]);
    let tar = TarBuilder::new().file("model/bomb.zip", &bomb).file("model/after.pkl", EVIL).finish();
    let data = gzip(&tar);
    let limits = Limits { max_ratio: 100, ratio_floor: 1 << 20, ..Limits::default() };
    let root = scan_with(&data, limits);
    assert_eq!(root.format, Format::Gzip);
    let found = kinds(&root);
    assert!(found.contains(&NoteKind::LimitExceeded), "{found:?}");
    assert!(finds_the_payload(&root));
    assert_eq!(root.size, data.len() as u64);
    // The total expansion budget is shared by every layer.
    let limits = Limits { max_expanded_bytes: 2 << 20, ..Limits::default() };
    let found = kinds(&scan_with(&data, limits));
    assert!(found.contains(&NoteKind::LimitExceeded), "{found:?}");
}

#[test]
fn nesting_deeper_than_the_limit_is_a_finding() {
    let mut data = EVIL.to_vec();
    for _ in 0..20 {
        data = gzip(&data);
    }
    let root = scan_bytes(&data, Options::default());
    let mut notes = Vec::new();
    all(&root, &mut notes);
    assert!(
        notes.iter().any(|(k, d)| *k == NoteKind::LimitExceeded && d.contains("levels deep")),
        "{notes:?}"
    );
    // Within the limit, the payload at the bottom is found.
    let mut data = EVIL.to_vec();
    for _ in 0..6 {
        data = zip(&[("inner", &gzip(&data), false)]);
    }
    assert!(finds_the_payload(&scan_bytes(&data, Options::default())));
}

#[test]
fn the_member_limit_applies_to_zip() {
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let members: Vec<(&str, &[u8], bool)> = names.iter().map(|n| (n.as_str(), &b"x"[..], false)).collect();
    let limits = Limits { max_members: 4, ..Limits::default() };
    let root = scan_with(&zip(&members), limits);
    assert!(kinds(&root).contains(&NoteKind::LimitExceeded), "{:?}", kinds(&root));
}

#[test]
fn unsafe_paths_inside_nested_archives_are_found() {
    let inner = zip(&[("../../../etc/cron.d/x", b"* * * * * root id\n", false), ("w.pkl", EVIL, true)]);
    let tar =
        TarBuilder::new().file("bundle/inner.zip", &inner).entry("bundle/link", b'2', "/etc/passwd").finish();
    let root = scan_bytes(&gzip(&tar), Options::default());
    let found = kinds(&root);
    assert_eq!(found.iter().filter(|k| **k == NoteKind::ArchiveUnsafePath).count(), 2, "{found:?}");
    assert!(finds_the_payload(&root));
}
