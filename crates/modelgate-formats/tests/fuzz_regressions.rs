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
    let dunder = node.notes.iter().any(|n| n.evidence.as_deref() == Some("attribute:__class__"));
    assert!(dunder || k.contains(&NoteKind::TemplateInjection), "{k:?}");
    assert!(!k.contains(&NoteKind::LimitExceeded), "{k:?}");
}

/// Runs a scan on a thread with the 2 MiB stack the CLI's scan threads have.
fn scan_on_cli_stack(bytes: Vec<u8>) -> Node {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || scan_bytes(&bytes, Options::default()))
        .unwrap()
        .join()
        .unwrap()
}

/// `N` and 100,000 `TUPLE1`: a tuple nested 100,000 deep, whose recursive `Rc` drop overflowed
/// the stack (found inside a mutated gzip member). Tuples now nest at most 1,000 deep.
#[test]
fn deeply_nested_pickle_tuples_do_not_overflow_the_stack() {
    for op in [b'\x85', b'\x86', b'\x87'] {
        let mut p = b"\x80\x02N".to_vec();
        for _ in 0..100_000 {
            // TUPLE2/TUPLE3 take one or two more values: push them first.
            p.extend(std::iter::repeat_n(b'N', usize::from(op - b'\x85')));
            p.push(op);
        }
        p.extend_from_slice(b"cposix\nsystem\n.");
        let node = scan_on_cli_stack(p);
        let pickle = node.pickle().expect("a pickle");
        assert_eq!(pickle.globals.len(), 1, "the global after the tuples is still seen");
    }
    // The same through MARK … TUPLE.
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b'(', 100_000));
    p.extend(std::iter::repeat_n(b't', 100_000));
    p.push(b'.');
    let _ = scan_on_cli_stack(p);
}

fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..265].copy_from_slice(b"ustar\x0000");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// One byte of the first header's `ustar` magic flipped: the checksum no longer matches, so the
/// stream was not recognised as tar at all (MG003, low: a pass), while GNU tar skips to the next
/// header and extracts the pickle behind it.
#[test]
fn tar_with_a_damaged_first_header_is_still_a_tar() {
    let mut data = tar_member("model/config.json", b"{}");
    data.extend(tar_member("model/model.pkl", b"cposix\nsystem\n(S'id'\ntR."));
    data.resize(data.len() + 1024, 0);
    data[259] ^= 0x20;
    let node = scan_bytes(&data, Options::default());
    assert_eq!(node.format, modelgate_formats::Format::Tar);
    assert!(kinds(&node).contains(&NoteKind::ArchiveMalformed), "{:?}", node.notes);
    let pickle = node.children.iter().find(|c| c.name == "model/model.pkl").and_then(|c| c.pickle());
    assert_eq!(pickle.map(|p| p.globals.len()), Some(1), "{:?}", node.children);
}

/// Found by the fuzz driver: one byte of a Keras .h5 turned the header continuation of
/// /model_weights into an undefined message type; libhdf5 skips it, the links behind it vanish,
/// and the external link they held went unreported with no finding at all.
#[test]
fn an_undefined_hdf5_header_message_is_malformed_not_silence() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/malicious/keras-tf/k12_external_link.h5");
    let mut data = std::fs::read(path).unwrap();
    // The continuation message of /model_weights: type 0x0010, size 0x0010.
    let at = data.windows(8).position(|w| w == [0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0]).unwrap();
    data[at + 1] = 0xcd;
    let node = scan_bytes(&data, Options::default());
    assert!(
        node.notes.iter().any(|n| n.kind == NoteKind::Malformed && n.detail.contains("does not define")),
        "{:?}",
        node.notes
    );
}

/// A bzip2 zip member whose compressed bytes are damaged (here: 8 bytes at offset 56 of the
/// bzip2-member fixture overwritten with 2^32, little-endian). libbz2-rs-sys reports the corrupt
/// data, and resuming that decoder afterwards indexed out of bounds inside its `extern "C"`
/// entry point: the whole process aborted (exit 134) instead of reporting a broken member. A
/// failed decoder is now never called again (`container::FuseOnError`).
#[test]
fn a_corrupt_bzip2_member_is_a_finding_not_an_abort() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/malicious/archive/zip_bzip2_member_pickle.zip");
    let original = std::fs::read(fixture).unwrap();
    for (at, value) in [(56usize, 0x1_0000_0000u64), (54, 0xbe)] {
        let mut bytes = original.clone();
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let node = scan_on_cli_stack(bytes);
        assert!(!kinds(&node).is_empty(), "a damaged member must leave a note");
    }
}

/// Seed 53, case 1,143,974: the flag byte of the root group's link message to `/ext` (byte
/// 11084 of `k12_soft_link_to_external.h5`) XORed with 0x17 sets "shared" and "do not share".
/// libhdf5 refuses such a header ("bad flag combination for message"); hdf5-reader took the
/// link for a shared-message reference, so the external link vanished and the file passed.
/// A message of a type HDF5 never shares, flagged as shared, is now malformed.
#[test]
fn a_link_message_flagged_as_shared_is_malformed_not_silence() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/malicious/keras-tf/k12_soft_link_to_external.h5");
    let mut bytes = std::fs::read(fixture).unwrap();
    assert_eq!(bytes[11084], 0x00, "the fixture changed; find the link message's flag byte again");
    bytes[11084] ^= 0x17;
    let node = scan_bytes(&bytes, Options::default());
    assert!(kinds(&node).contains(&NoteKind::Malformed), "{:?}", kinds(&node));
}
