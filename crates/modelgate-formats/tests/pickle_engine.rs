//! The pickle engine against the byte-level recipes of the known bypasses (threats.md §9.1–9.2):
//! what it must inventory (globals, calls) and observe (notes), independently of any policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::pickle::{Callee, PickleInventory};
use modelgate_formats::{Format, Node, NoteKind, Options, scan_bytes};

fn scan(bytes: &[u8]) -> Node {
    scan_bytes(bytes, Options::default())
}

fn globals(p: &PickleInventory) -> Vec<String> {
    p.globals.iter().map(|g| g.qualified()).collect()
}

fn kinds(node: &Node) -> Vec<NoteKind> {
    node.notes.iter().map(|n| n.kind).collect()
}

fn called(p: &PickleInventory, global: &str) -> Vec<&'static str> {
    p.calls
        .iter()
        .filter(|c| matches!(c.callee, Callee::Global { index } if p.globals[index].qualified() == global))
        .map(|c| c.opcode)
        .collect()
}

/// `SG(m, n)`: SHORT_BINUNICODE ×2 then STACK_GLOBAL.
fn sg(module: &str, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for s in [module, name] {
        out.push(0x8c);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out.push(0x93);
    out
}

fn p4(body: &[u8]) -> Vec<u8> {
    let mut out = b"\x80\x04".to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn p02_protocol_zero_global_and_reduce() {
    let n = scan(b"cposix\nsystem\n(S'echo pwned'\ntR.");
    assert_eq!(n.format, Format::Pickle);
    let p = n.pickle().unwrap();
    assert_eq!(globals(p), ["posix.system"]);
    assert_eq!(p.globals[0].opcode, "GLOBAL");
    assert_eq!(p.globals[0].offset, 0);
    assert_eq!(called(p, "posix.system"), ["REDUCE"]);
    assert!(n.notes.is_empty(), "{:?}", n.notes);
}

#[test]
fn p03_stack_global() {
    let mut body = sg("builtins", "eval");
    body.extend_from_slice(b"\x8c\x0bprint('hi')\x85R.");
    let n = scan(&p4(&body));
    let p = n.pickle().unwrap();
    assert_eq!(globals(p), ["builtins.eval"]);
    assert_eq!(called(p, "builtins.eval"), ["REDUCE"]);
}

#[test]
fn p10_memo_indirection_resolves_through_the_memo() {
    let n = scan(b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(Vid\ntR.");
    let p = n.pickle().unwrap();
    assert_eq!(globals(p), ["os.system"]);
    assert_eq!(called(p, "os.system"), ["REDUCE"]);
}

#[test]
fn p10_missing_memo_key_and_type_confusion_are_unresolved() {
    // GET of a memo slot never written, used as the STACK_GLOBAL module.
    let missing = scan(&p4(b"h\x05\x8c\x06system\x93)R."));
    assert!(kinds(&missing).contains(&NoteKind::PickleUnresolvedGlobal), "{:?}", missing.notes);
    assert!(kinds(&missing).contains(&NoteKind::PickleMalformed));
    // An integer in the memo used as the module name.
    let confused = scan(&p4(b"K\x01q\x00\x8c\x06system\x94h\x00h\x01\x93)R."));
    assert!(kinds(&confused).contains(&NoteKind::PickleUnresolvedGlobal), "{:?}", confused.notes);
}

#[test]
fn p12_dotted_names_are_kept_whole() {
    let mut body = sg("pathlib", "os.system");
    body.extend_from_slice(b"\x8c\x02id\x85R.");
    let p = scan(&p4(&body)).pickle().cloned().unwrap();
    assert_eq!(p.globals[0].module, "pathlib");
    assert_eq!(p.globals[0].name, "os.system");
}

#[test]
fn p13_build_on_an_imported_function_is_a_mutation() {
    let hex = "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c74696e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72745f5f28226f7322292e73797374656d28226964222985522e";
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let n = scan(&bytes);
    let p = n.pickle().unwrap();
    assert!(globals(p).contains(&"numpy.__builtins__".to_string()), "{:?}", globals(p));
    assert!(kinds(&n).contains(&NoteKind::PickleGlobalMutation), "{:?}", n.notes);
}

#[test]
fn p17_frame_divergence_is_reported() {
    // python/cpython#154848: BINBYTES whose length field straddles a 2-byte FRAME.
    let mut p2 = b"cbuiltins\nprint\nVHello, world!\n\x85R".to_vec();
    p2.push(b'(');
    while p2.len() < 256 + 5 {
        p2.push(b'N');
    }
    let mut p = b"\x80\x05NV".to_vec();
    p.extend(std::iter::repeat_n(b'a', 8192 * 16 - 17));
    p.extend_from_slice(b"\n0(\x95");
    p.extend_from_slice(&2u64.to_le_bytes());
    p.extend_from_slice(b"B\x07\x01\x00\x00\x00\x00");
    p.extend_from_slice(&p2);
    p.extend_from_slice(b"1.");
    let n = scan(&p);
    assert!(kinds(&n).contains(&NoteKind::PickleFrameViolation), "{:?}", n.notes);
}

#[test]
fn legitimate_frames_are_fine() {
    // What pickle.dumps(protocol=4) writes for a dict: one frame around everything.
    let n = scan(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01K\x02es.");
    assert!(n.notes.is_empty(), "{:?}", n.notes);
    assert!(n.pickle().unwrap().globals.is_empty());
}

#[test]
fn p18_every_concatenated_stream_is_scanned() {
    let mut bytes = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e.".to_vec();
    bytes.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
    let n = scan(&bytes);
    let p = n.pickle().unwrap();
    assert_eq!(p.streams.len(), 2);
    assert_eq!(globals(p), ["posix.system"]);
}

#[test]
fn p09_a_broken_stream_keeps_what_came_before() {
    let n = scan(b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R\xff\xfe garbage");
    let p = n.pickle().unwrap();
    assert_eq!(globals(p), ["os.system"]);
    assert_eq!(called(p, "os.system"), ["REDUCE"]);
    let malformed = n.notes.iter().find(|x| x.kind == NoteKind::PickleMalformed).expect("malformed note");
    assert_eq!(malformed.offset, Some(30));
}

#[test]
fn p19_extension_codes_are_opaque_imports() {
    for bytes in [&b"\x80\x02\x82\x01."[..], b"\x80\x02\x83\x01\x01.", b"\x80\x02\x84\x01\x00\x00\x00."] {
        let n = scan(bytes);
        assert!(kinds(&n).contains(&NoteKind::PickleExtension), "{bytes:?}: {:?}", n.notes);
    }
}

#[test]
fn p22_a_discarded_call_is_still_a_call() {
    let mut body = b"(".to_vec();
    body.extend_from_slice(&sg("smtplib", "SMTP"));
    body.extend_from_slice(b"\x8c\t127.0.0.1o0N.");
    let p = scan(&p4(&body)).pickle().cloned().unwrap();
    assert_eq!(called(&p, "smtplib.SMTP"), ["OBJ"]);
}

#[test]
fn p30_duplicate_and_misplaced_proto() {
    let n = scan(b"\x80\x04\x80\x02N.");
    assert!(kinds(&n).contains(&NoteKind::PickleProtocolAnomaly));
    let n = scan(b"N\x80\x04.");
    assert!(kinds(&n).contains(&NoteKind::PickleProtocolAnomaly));
    // An unsupported protocol: CPython refuses before running anything, so this is not a
    // pickle at all, just unrecognised data.
    let n = scan(b"\x80\x09N.");
    assert_eq!(kinds(&n), [NoteKind::UnrecognisedBinary]);
    // Behind a real pickle header the same PROTO stops the stream: misplaced, and unloadable.
    let n = scan(b"\x80\x04N\x80\x09.");
    assert!(kinds(&n).contains(&NoteKind::PickleProtocolAnomaly));
    assert!(kinds(&n).contains(&NoteKind::PickleMalformed));
}

#[test]
fn p32_stack_global_with_protocol_zero_strings() {
    let p = scan(b"S'os'\nS'system'\n\x93S'ls'\n\x85R.").pickle().cloned().unwrap();
    assert_eq!(globals(&p), ["os.system"]);
}

#[test]
fn inst_imports_and_calls() {
    let p = scan(b"(S'id'\nisubprocess\ngetoutput\n.").pickle().cloned().unwrap();
    assert_eq!(globals(&p), ["subprocess.getoutput"]);
    assert_eq!(called(&p, "subprocess.getoutput"), ["INST"]);
}

#[test]
fn protocol_two_renames_python2_modules_like_cpython() {
    let p = scan(b"\x80\x02c__builtin__\neval\nX\x02\x00\x00\x00idX\x00\x00\x00\x00\x86R.")
        .pickle()
        .cloned()
        .unwrap();
    assert_eq!(globals(&p), ["builtins.eval"]);
    assert_eq!(p.globals[0].written_as.as_deref(), Some("__builtin__.eval"));
    // Protocol 3+ does not rename: `__builtin__` does not exist in Python 3.
    let p = scan(b"\x80\x03c__builtin__\neval\n.").pickle().cloned().unwrap();
    assert_eq!(globals(&p), ["__builtin__.eval"]);
}

#[test]
fn p08_nested_pickles_in_bytes_are_scanned() {
    let inner = b"\x80\x04cposix\nsystem\n\x8c\x02id\x85R.";
    let mut outer = b"\x80\x04cpickle\nloads\nB".to_vec();
    outer.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    outer.extend_from_slice(inner);
    outer.extend_from_slice(b"\x85R.");
    let n = scan(&outer);
    assert_eq!(globals(n.pickle().unwrap()), ["pickle.loads"]);
    assert_eq!(n.children.len(), 1);
    let child = &n.children[0];
    assert_eq!(child.name, "bytes at offset 16");
    assert_eq!(globals(child.pickle().unwrap()), ["posix.system"]);
    assert_eq!(child.size, inner.len() as u64);
}

#[test]
fn protocol_two_bytes_are_latin1_strings_and_still_scanned() {
    // Protocol 2 pickles bytes as _codecs.encode(str, 'latin1'): the str spells a pickle.
    let inner = "\u{80}\u{2}cposix\nsystem\nq\u{0}.";
    let mut outer = b"\x80\x02c_codecs\nencode\nX".to_vec();
    outer.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    outer.extend_from_slice(inner.as_bytes());
    outer.extend_from_slice(b"X\x06\x00\x00\x00latin1\x86R.");
    let n = scan(&outer);
    assert_eq!(n.children.len(), 1, "{n:?}");
    assert_eq!(globals(n.children[0].pickle().unwrap()), ["posix.system"]);
}

#[test]
fn data_that_merely_looks_like_a_pickle_is_not_an_embedded_file() {
    // A bytes value starting with 0x80 0x03 but not a pickle (raw float data, say).
    let mut outer = b"\x80\x04C\x08\x80\x03\xff\xff\xff\xff\xff\xff".to_vec();
    outer.push(b'.');
    let n = scan(&outer);
    assert!(n.children.is_empty(), "{:?}", n.children);
    assert!(n.notes.is_empty(), "{:?}", n.notes);
}

#[test]
fn persistent_ids_without_a_loader_are_noted() {
    let n = scan(b"\x80\x02X\x03\x00\x00\x00keyQ.");
    assert!(kinds(&n).contains(&NoteKind::PicklePersistentId));
}

#[test]
fn out_of_band_buffers_are_noted() {
    let n = scan(b"\x80\x05\x97.");
    assert!(kinds(&n).contains(&NoteKind::PickleOutOfBandBuffer));
}

#[test]
fn numpy_object_arrays_hold_a_pickle() {
    let pickle = b"cposix\nsystem\n(S'id'\ntR.";
    let mut h = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".to_vec();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(&h);
    npy.extend_from_slice(pickle);
    let n = scan(&npy);
    assert_eq!(n.format, Format::Numpy);
    assert_eq!(globals(n.children[0].pickle().unwrap()), ["posix.system"]);
}

#[test]
fn plain_numpy_arrays_are_sized_and_trailing_data_is_scanned() {
    let mut h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_vec();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(&h);
    npy.extend_from_slice(&[0u8; 16]);
    assert!(scan(&npy).notes.is_empty());
    let mut with_tail = npy.clone();
    with_tail.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
    let n = scan(&with_tail);
    assert!(kinds(&n).contains(&NoteKind::TrailingData));
    assert_eq!(globals(n.children[0].pickle().unwrap()), ["posix.system"]);
    let short = &npy[..npy.len() - 4];
    assert!(kinds(&scan(short)).contains(&NoteKind::Malformed));
}

#[test]
fn resource_limits_stop_a_stream_with_a_note() {
    use modelgate_formats::Limits;
    let long = b"\x80\x04]\x94(K\x01K\x02K\x03K\x04K\x05K\x06e.";
    let limited = |limits: Limits| scan_bytes(long, Options { limits, ..Options::default() });
    let n = limited(Limits { pickle_opcodes: 5, ..Limits::default() });
    assert!(kinds(&n).contains(&NoteKind::LimitExceeded), "{:?}", n.notes);
    let n = limited(Limits { pickle_stack: 3, ..Limits::default() });
    assert!(kinds(&n).contains(&NoteKind::LimitExceeded), "{:?}", n.notes);
    assert!(limited(Limits::default()).notes.is_empty());
}

/// The body of `pickle.dumps([{"name": f"n{i}"} ...], protocol=4)` for `n` dicts, as
/// the pickler writes it (MEMOIZE after every dict and every new string; keys by BINGET), after
/// `memo` memo entries.
fn many_dicts(n: u32, memo: u8) -> Vec<u8> {
    let mut b = b"]\x94(".to_vec();
    for i in 0..n {
        b.extend_from_slice(b"}\x94(");
        if i == 0 {
            b.extend_from_slice(b"\x8c\x04name\x94");
        } else {
            b.extend_from_slice(&[b'h', memo + 2]);
        }
        let name = format!("n{i}");
        b.push(0x8c);
        b.push(name.len() as u8);
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(b"\x94u");
        if i % 1000 == 999 {
            b.extend_from_slice(b"e(");
        }
    }
    b.extend_from_slice(b"e");
    b
}

#[test]
fn a_benign_pickle_of_a_million_memo_entries_is_within_the_default_limits() {
    // 600,000 dicts: 1.2 million memo entries, more than the limit of 2^20 entries once had.
    let mut body = many_dicts(600_000, 0);
    body.push(b'.');
    let n = scan(&p4(&body));
    assert!(n.notes.is_empty(), "{:?}", &n.notes[..n.notes.len().min(3)]);
    assert!(n.pickle().unwrap().streams[0].stop.is_some());
}

#[test]
fn module_names_survive_the_memo_budget_and_forgotten_strings_fail_closed() {
    // numpy.dtype first, then 100,000 dicts (more plain memo entries than are kept in full), then
    // a global whose module the pickler writes as BINGET of the "numpy" string memoized first.
    let mut body = b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x940".to_vec();
    body.extend_from_slice(&many_dicts(100_000, 3));
    body.extend_from_slice(b"0h\x00\x8c\x07ndarray\x93\x940");
    // LONG_BINGET of memo entry 6: the string "n0" from long ago, used as a module name.
    body.extend_from_slice(b"j\x06\x00\x00\x00\x8c\x06system\x93)R.");
    let n = scan(&p4(&body));
    let p = n.pickle().unwrap();
    assert_eq!(globals(p), ["numpy.dtype", "numpy.ndarray"]);
    assert!(kinds(&n).contains(&NoteKind::PickleUnresolvedGlobal), "{:?}", n.notes);
}
