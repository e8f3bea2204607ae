//! Zip archives read like PyTorch's miniz reader reads them, with every tampering trick noted
//! (threats.md §9.3, formats.md §3.2). Archives are built byte by byte here so each quirk is
//! exactly the one under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::pickle::PickleInventory;
use modelgate_formats::{Format, Limits, Node, NoteKind, Options, Role, scan_bytes};

#[derive(Clone)]
struct Entry {
    name: Vec<u8>,
    data: Vec<u8>,
    deflate: bool,
    local_name: Option<Vec<u8>>,
    local_flags: u16,
    central_flags: u16,
    crc: Option<u32>,
    unix_mode: Option<u32>,
}

fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        data: data.to_vec(),
        deflate: false,
        local_name: None,
        local_flags: 0,
        central_flags: 0,
        crc: None,
        unix_mode: None,
    }
}

fn crc(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zip archive (optionally after `prefix` bytes, with `gap` bytes after the first entry).
fn zip_with(entries: &[Entry], prefix: &[u8], gap: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let mut central = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let offset = (out.len() - prefix.len()) as u32;
        let stored = if e.deflate { deflate(&e.data) } else { e.data.clone() };
        let method: u16 = if e.deflate { 8 } else { 0 };
        let crc = e.crc.unwrap_or_else(|| crc(&e.data));
        let local_name = e.local_name.clone().unwrap_or_else(|| e.name.clone());
        out.extend_from_slice(b"PK\x03\x04\x14\x00");
        out.extend_from_slice(&e.local_flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&local_name);
        out.extend_from_slice(&stored);
        if i == 0 {
            out.extend_from_slice(gap);
        }
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&(if e.unix_mode.is_some() { 0x0314u16 } else { 0x0014 }).to_le_bytes());
        central.extend_from_slice(&0x14u16.to_le_bytes());
        central.extend_from_slice(&e.central_flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        central.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&(e.unix_mode.unwrap_or(0) << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = (out.len() - prefix.len()) as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn zip(entries: &[Entry]) -> Vec<u8> {
    zip_with(entries, b"", b"")
}

fn scan(bytes: &[u8]) -> Node {
    scan_bytes(bytes, Options::default())
}

fn scan_limited(bytes: &[u8], limits: Limits) -> Node {
    scan_bytes(bytes, Options { limits, ..Options::default() })
}

/// The evil payload every variant carries: `posix.system('id')`, protocol 2.
const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";

/// A torch-style `data.pkl`: an OrderedDict with one tensor of `size`/`stride` on storage "0"
/// declared to hold `numel` floats.
fn data_pkl(numel: u8, size: (u8, u8), stride: (u8, u8)) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K".to_vec();
    p.push(numel);
    p.extend_from_slice(b"tq\x08QK\x00K");
    p.push(size.0);
    p.push(b'K');
    p.push(size.1);
    p.extend_from_slice(b"\x86q\tK");
    p.push(stride.0);
    p.push(b'K');
    p.push(stride.1);
    p.extend_from_slice(b"\x86q\n\x89h\x00)Rq\x0btq\x0cRq\x0du.");
    p
}

fn torch_zip(data: &[u8], extra: &[Entry]) -> Vec<Entry> {
    let mut v = vec![
        entry("archive/data.pkl", data),
        entry("archive/byteorder", b"little"),
        entry("archive/data/0", &[0u8; 24]),
    ];
    v.extend_from_slice(extra);
    v.push(entry("archive/version", b"3\n"));
    v
}

fn all_notes(n: &Node) -> Vec<NoteKind> {
    let mut out = Vec::new();
    n.walk(&mut |_, node| out.extend(node.notes.iter().map(|x| x.kind)));
    out
}

fn all_globals(n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    n.walk(&mut |_, node| {
        if let Some(p) = node.pickle() {
            out.extend(p.globals.iter().map(|g| g.qualified()));
        }
    });
    out
}

fn member<'n>(n: &'n Node, name: &str) -> &'n Node {
    n.children.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no member {name}"))
}

fn pickle_of<'n>(n: &'n Node, name: &str) -> &'n PickleInventory {
    member(n, name).pickle().unwrap_or_else(|| panic!("{name} is not a pickle"))
}

#[test]
fn a_real_layout_is_a_pytorch_archive_with_roles() {
    let n = scan(&zip(&torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[])));
    assert_eq!(n.format, Format::PytorchZip);
    assert!(all_notes(&n).is_empty(), "{:?}", all_notes(&n));
    assert_eq!(member(&n, "archive/data.pkl").role, Some(Role::LoaderPickle));
    assert_eq!(member(&n, "archive/data/0").role, Some(Role::TensorStorage));
    let g: Vec<String> = pickle_of(&n, "archive/data.pkl").globals.iter().map(|g| g.qualified()).collect();
    assert_eq!(g, ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"]);
    // Every member is hashed.
    assert_eq!(member(&n, "archive/byteorder").size, 6);
}

#[test]
fn tensors_outside_their_storage_and_storage_mismatches() {
    let n = scan(&zip(&torch_zip(&data_pkl(6, (4, 4), (4, 1)), &[])));
    assert!(all_notes(&n).contains(&NoteKind::TorchTensorBounds), "{:?}", all_notes(&n));
    // Storage declared as 8 floats (32 bytes) but the member holds 24 bytes.
    let n = scan(&zip(&torch_zip(&data_pkl(8, (2, 3), (3, 1)), &[])));
    assert!(all_notes(&n).contains(&NoteKind::TorchStorageMismatch), "{:?}", all_notes(&n));
    // Storage member missing altogether.
    let entries =
        vec![entry("archive/data.pkl", &data_pkl(6, (2, 3), (3, 1))), entry("archive/version", b"3\n")];
    assert!(all_notes(&scan(&zip(&entries))).contains(&NoteKind::TorchStorageMismatch));
}

#[test]
fn z02_bad_crc_is_noted_and_the_payload_still_read() {
    let mut e = torch_zip(EVIL, &[]);
    e[0].crc = Some(0xdead_beef);
    e[0].central_flags = 0;
    let n = scan(&zip(&e));
    assert!(all_notes(&n).contains(&NoteKind::ArchiveCrcMismatch));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
}

#[test]
fn z03_encryption_flags_in_either_header() {
    for (local, central) in [(1u16, 0u16), (0, 1), (1, 1), (0x20, 0x20), (0x40, 0)] {
        let mut e = torch_zip(EVIL, &[]);
        e[0].local_flags = local;
        e[0].central_flags = central;
        let n = scan(&zip(&e));
        let notes = all_notes(&n);
        assert!(notes.contains(&NoteKind::ArchiveEncrypted), "{local:#x}/{central:#x}: {notes:?}");
        assert!(all_globals(&n).contains(&"posix.system".to_string()), "{local:#x}/{central:#x}");
    }
}

#[test]
fn z04_local_name_mismatch() {
    let mut e = torch_zip(EVIL, &[]);
    e[0].local_name = Some(b"archive/datap.kl".to_vec());
    let n = scan(&zip(&e));
    assert!(all_notes(&n).contains(&NoteKind::ArchiveHeaderMismatch));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
}

#[test]
fn duplicates_and_case_are_compared_like_miniz() {
    let mut e = torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[]);
    e.push(entry("archive/DATA.PKL", EVIL));
    let n = scan(&zip(&e));
    assert!(all_notes(&n).contains(&NoteKind::ArchiveDuplicateName));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
    // Only an upper-case DATA.PKL: torch still finds it.
    let e = vec![entry("archive/DATA.PKL", EVIL), entry("archive/version", b"3\n")];
    let n = scan(&zip(&e));
    assert_eq!(n.format, Format::PytorchZip);
    assert_eq!(member(&n, "archive/DATA.PKL").role, Some(Role::LoaderPickle));
}

#[test]
fn z05_a_pickle_under_any_name_is_scanned() {
    let mut e = torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[]);
    e.push(entry("archive/config.txt", EVIL));
    let n = scan(&zip(&e));
    assert!(all_notes(&n).contains(&NoteKind::TorchUnexpectedMember));
    assert_eq!(pickle_of(&n, "archive/config.txt").globals[0].qualified(), "posix.system");
}

#[test]
fn deflated_members_are_inflated() {
    let mut e = torch_zip(EVIL, &[]);
    e[0].deflate = true;
    let n = scan(&zip(&e));
    assert!(all_notes(&n).is_empty(), "{:?}", all_notes(&n));
    assert_eq!(pickle_of(&n, "archive/data.pkl").globals[0].qualified(), "posix.system");
    assert_eq!(member(&n, "archive/data.pkl").size, EVIL.len() as u64);
}

#[test]
fn hidden_data_before_and_between_entries_is_scanned() {
    let n =
        scan(&zip_with(&torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[]), b"cposix\nsystem\n(S'id'\ntR.", b""));
    assert!(all_notes(&n).contains(&NoteKind::ArchiveHiddenData));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
    let n = scan(&zip_with(&torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[]), b"", EVIL));
    assert!(all_notes(&n).contains(&NoteKind::ArchiveHiddenData));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
}

#[test]
fn z06_unsafe_paths_and_links() {
    for (name, mode) in
        [("../../evil.txt", None), ("/etc/cron.d/x", None), ("C:\\x", None), ("link", Some(0o120777))]
    {
        let mut e = entry(name, b"x");
        e.unix_mode = mode;
        let n = scan(&zip(&[e]));
        assert!(all_notes(&n).contains(&NoteKind::ArchiveUnsafePath), "{name}");
    }
    assert!(all_notes(&scan(&zip(&[entry("dir/ok.txt", b"x")]))).is_empty());
}

#[test]
fn z08_nested_archives_stored_and_deflated() {
    let inner = zip(&torch_zip(EVIL, &[]));
    let n = scan(&zip(&[entry("inner.zip", &inner)]));
    assert_eq!(member(&n, "inner.zip").format, Format::PytorchZip);
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
    let mut e = entry("inner.zip", &inner);
    e.deflate = true;
    let n = scan(&zip(&[e.clone()]));
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
    // Too large to hold in memory for its central directory: a limit, not a pass.
    let n = scan_limited(&zip(&[e]), Limits { max_in_memory: 100, ..Limits::default() });
    assert!(all_notes(&n).contains(&NoteKind::LimitExceeded), "{:?}", all_notes(&n));
}

#[test]
fn decompression_bombs_hit_the_ratio_limit() {
    let mut e = entry("zeros.bin", &vec![0u8; 4 << 20]);
    e.deflate = true;
    let n = scan_limited(&zip(&[e]), Limits { max_ratio: 10, ratio_floor: 1 << 16, ..Limits::default() });
    assert!(all_notes(&n).contains(&NoteKind::LimitExceeded), "{:?}", all_notes(&n));
}

#[test]
fn torchscript_archives_are_recognised() {
    let mut e = torch_zip(&data_pkl(6, (2, 3), (3, 1)), &[]);
    e.push(entry("archive/code/__torch__/m.py", b"def forward(self, x):\n    return x\n"));
    e.push(entry("archive/constants.pkl", b"\x80\x02)."));
    let n = scan(&zip(&e));
    assert_eq!(n.format, Format::Torchscript);
    assert!(all_notes(&n).contains(&NoteKind::TorchscriptCode));
}

#[test]
fn npz_archives() {
    let mut h = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".to_vec();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(&h);
    npy.extend_from_slice(EVIL);
    let n = scan(&zip(&[entry("arr_0.npy", &npy)]));
    assert_eq!(n.format, Format::NumpyNpz);
    assert!(all_globals(&n).contains(&"posix.system".to_string()));
}

#[test]
fn broken_archives_are_findings() {
    let good = zip(&torch_zip(EVIL, &[]));
    // No end record at all.
    assert!(all_notes(&scan(&good[..good.len() - 22])).contains(&NoteKind::ArchiveMalformed));
    // The end record counts more entries than the directory holds.
    let mut lying = good.clone();
    let at = lying.len() - 12;
    lying[at] = 9;
    assert!(all_notes(&scan(&lying)).contains(&NoteKind::ArchiveHeaderMismatch));
}

/// A minimal skops schema importing `module.class` through a FunctionNode.
fn skops_schema(module: &str, class: &str, file: &str) -> Vec<u8> {
    format!(
        r#"{{"__loader__": "DictNode", "__module__": "builtins", "__class__": "dict", "protocol": 2,
        "_skops_version": "0.16.0", "content": {{
          "f": {{"__loader__": "FunctionNode", "__module__": "{module}", "__class__": "{class}"}},
          "a": {{"__loader__": "NdArrayNode", "__module__": "numpy", "__class__": "ndarray", "type": "numpy", "file": "{file}"}}}}}}"#
    )
    .into_bytes()
}

fn skops_globals(n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    n.walk(&mut |_, node| {
        if let modelgate_formats::Detail::Skops(s) = &node.detail {
            out.extend(s.globals.iter().map(|g| g.qualified()));
        }
    });
    out
}

const NPY: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }                                                            \n";

#[test]
fn a_root_schema_json_makes_a_skops_file() {
    let n =
        scan(&zip(&[entry("0.npy", NPY), entry("schema.json", &skops_schema("builtins", "eval", "0.npy"))]));
    assert_eq!(n.format, Format::Skops);
    assert_eq!(member(&n, "schema.json").role, Some(Role::SkopsSchema));
    let mut globals = skops_globals(&n);
    globals.sort();
    assert_eq!(globals, ["builtins.dict", "builtins.eval", "numpy.ndarray"]);
    assert!(all_notes(&n).is_empty(), "{:?}", all_notes(&n));
}

#[test]
fn a_skops_schema_reading_a_missing_member_is_malformed() {
    let n = scan(&zip(&[entry("schema.json", &skops_schema("numpy", "log1p", "0.npy"))]));
    assert_eq!(n.format, Format::Skops);
    assert_eq!(all_notes(&n), [NoteKind::Malformed]);
}

#[test]
fn a_skops_schema_under_another_name_is_still_walked_and_noted() {
    // skops.io.load reads only the root schema.json: this archive does not load, but what the
    // schema names is still reported.
    let n = scan(&zip(&[
        entry("0.npy", NPY),
        entry("model/schema.json", &skops_schema("posix", "system", "0.npy")),
    ]));
    assert_eq!(n.format, Format::Zip);
    assert!(skops_globals(&n).contains(&"posix.system".to_string()));
    assert_eq!(all_notes(&n), [NoteKind::Malformed]);
}

#[test]
fn a_root_schema_json_that_is_not_skops_is_scanned_by_content() {
    let n = scan(&zip(&[entry("schema.json", EVIL)]));
    assert_eq!(n.format, Format::Zip);
    assert_eq!(all_globals(&n), ["posix.system"]);
    let n = scan(&zip(&[entry("schema.json", br#"{"type": "object"}"#)]));
    assert_eq!(n.format, Format::Zip);
    assert!(skops_globals(&n).is_empty() && all_notes(&n).is_empty());
}

/// `[0,0,0,…]` compresses to almost nothing and costs tens of bytes per value once parsed: a
/// skops schema or Keras config of more values than any real one holds is a limit finding,
/// not a gigabyte of memory (src/json.rs).
#[test]
fn json_documents_of_millions_of_tiny_values_are_a_limit() {
    let flood = "0,".repeat(1_100_000);
    let schema = format!(
        r#"{{"__loader__": "ListNode", "__module__": "builtins", "__class__": "list", "protocol": 2, "content": [{flood}0]}}"#
    );
    let n = scan(&zip(&[entry("schema.json", schema.as_bytes())]));
    assert_eq!(all_notes(&n), [NoteKind::LimitExceeded]);
    let config = format!(r#"{{"class_name": "Sequential", "config": {{"layers": [{flood}0]}}}}"#);
    let n = scan(&zip(&[entry("config.json", config.as_bytes()), entry("metadata.json", b"{}")]));
    assert_eq!(n.format, Format::Keras);
    assert_eq!(all_notes(&n), [NoteKind::LimitExceeded]);
    let hf = format!(r#"{{"auto_map": [{flood}0], "vocab": [{flood}0]}}"#);
    let n = scan(&zip(&[entry("config.json", hf.as_bytes())]));
    assert_eq!(all_notes(&n), [NoteKind::LimitExceeded]);
    // The same number of values under keys nobody keeps (a tokenizer's vocabulary) is fine.
    let tokenizer = format!(r#"{{"model": {{"merges": [{flood}0]}}, "version": "1.0"}}"#);
    let n = scan(&zip(&[entry("tokenizer.json", tokenizer.as_bytes())]));
    assert!(all_notes(&n).is_empty(), "{:?}", all_notes(&n));
}

/// A `.keras` archive with a skops schema.json is also a skops file; the schema is walked in
/// full (escaped keys included) and the double identity is noted.
#[test]
fn a_keras_archive_with_a_skops_schema_is_a_polyglot() {
    let schema = String::from_utf8(skops_schema("builtins", "eval", "0.npy"))
        .unwrap()
        .replace("\"__loader__\"", "\"\\u005f_loader__\"");
    let config = br#"{"class_name": "Sequential", "config": {"name": "s", "layers": []}}"#;
    let n = scan(&zip(&[
        entry("config.json", config),
        entry("metadata.json", br#"{"keras_version": "3.8.0"}"#),
        entry("0.npy", NPY),
        entry("schema.json", schema.as_bytes()),
    ]));
    assert_eq!(n.format, Format::Keras);
    assert!(skops_globals(&n).contains(&"builtins.eval".to_string()), "{:?}", skops_globals(&n));
    assert_eq!(all_notes(&n), [NoteKind::Malformed]);
}
