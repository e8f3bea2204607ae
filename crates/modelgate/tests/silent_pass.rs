//! Silent passes found by the hunter (support/hunter/, docs/fuzzing.md "Silent-pass hunter"):
//! files whose payload a real loader runs and that modelgate passed with exit 0. Each test
//! rebuilds the hunter's minimal mutant byte by byte (the loader's behaviour on these exact bytes
//! was checked with the library named in the test) and requires a failing verdict, exit code 1,
//! with the rule that should fire (MG101: the wrapped pickle imports a denied global).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

mod common;
use common::{code, modelgate};

/// `posix.system('echo pwned')`, protocol 0 (threats.md P-02).
const EVIL_P0: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";

fn zlib(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Scans `bytes` saved as `name` alone in a fresh directory; the exit code and the output.
fn scan(name: &str, bytes: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let out = modelgate(&["scan", "--color", "never", name], dir.path());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (code(&out), text)
}

/// Every case must fail the gate (exit 1), with `rule` among the findings when given; the
/// panic lists every case that did not.
fn all_fail(cases: &[(String, String, Vec<u8>)], rule: Option<&str>) {
    let mut silent = Vec::new();
    for (what, name, bytes) in cases {
        let (code, text) = scan(name, bytes);
        if code != 1 || rule.is_some_and(|r| !text.contains(r)) {
            silent.push(format!("{what} as {name}: exit {code}\n{text}"));
        }
    }
    assert!(
        silent.is_empty(),
        "{} of {} cases not failed{}:\n{}",
        silent.len(),
        cases.len(),
        rule.map(|r| format!(" with {r}")).unwrap_or_default(),
        silent.join("\n")
    );
}

/// joblib's legacy (pre-0.10) compressed format: `ZF`, the length of the pickle in hex left-
/// justified to 19 bytes, an optional extra space (joblib <= 0.8.4 on Python 2), then a zlib
/// stream of the pickle. `joblib.load` (1.6.0, `numpy_pickle_compat.read_zfile`) still reads it:
/// it sniffs the `ZF` prefix, parses the length with `int(…, 16)` and unpickles the decompressed
/// bytes with `pickle._Unpickler`, so `posix.system` runs. modelgate reports the file as an
/// unrecognised binary (MG003, low) and passes it, whatever its name (`.pkl`, `.joblib` too).
/// The pickle inside must be scanned (MG101 critical for `posix.system`), as the `.z` wrapper of
/// current joblib is.
#[test]
fn a_joblib_legacy_zf_file_is_scanned_as_the_pickle_it_wraps() {
    let mut cases = Vec::new();
    let n = EVIL_P0.len();
    // joblib's own spelling (`hex()`), and others `int(…, 16)` reads.
    let spellings = [
        format!("{n:#x}"),
        format!("{n:x}"),
        format!("0X{n:X}"),
        format!("0x{n:016x}"),
        format!("+0x{n:x}"),
        format!(" 0x{n:x}"),
        format!("0x_{n:x}"),
    ];
    for hex in spellings {
        for extra in ["", " "] {
            for name in ["model.pkl", "model.joblib", "model.z", "model.dat"] {
                let mut b = b"ZF".to_vec();
                b.extend_from_slice(format!("{hex:<19}").as_bytes());
                b.extend_from_slice(extra.as_bytes());
                b.extend_from_slice(&zlib(EVIL_P0, 3));
                cases.push((
                    format!("ZF length {hex:?}, extra space {:?}", !extra.is_empty()),
                    name.to_string(),
                    b,
                ));
            }
        }
    }
    all_fail(&cases, Some("MG101"));
}

/// The silent passes of this class the hunter's campaign (seed 1) saved, as found: `joblib.dump`
/// of a payload that creates `hunter_mark`, re-encoded opcode by opcode, in the legacy `ZF`
/// wrapper (named `.xz` by the campaign).
#[test]
fn the_hunters_zf_mutant_fails() {
    all_fail(&data_files("joblib-zf-"), Some("MG101"));
}

/// The committed files of `tests/data/silent_pass/` whose name starts with `prefix`, each scanned
/// under its own name.
fn data_files(prefix: &str) -> Vec<(String, String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/silent_pass");
    let mut cases = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with(prefix) {
            cases.push((name.clone(), name, std::fs::read(&p).unwrap()));
        }
    }
    cases.sort();
    assert!(!cases.is_empty(), "no {prefix}* file in {}", dir.display());
    cases
}

/// A pickle whose first opcode carries an argument that ends past the first 64 KiB (here a
/// BINBYTES8 of 65,536 zero bytes, then POP), and whose STACK_GLOBAL takes its two operands from
/// the memo (`BINGET 0`, `BINGET 1`, as CPython's pickler writes a repeated module name):
/// `posix.system('echo pwned')`.
fn long_first_opcode_pickle() -> Vec<u8> {
    let mut p = vec![0x8e];
    p.extend_from_slice(&65_536u64.to_le_bytes());
    p.resize(p.len() + 65_536, 0);
    p.push(b'0');
    p.extend_from_slice(b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93");
    p.extend_from_slice(b"\x8c\x0aecho pwned\x85R.");
    p
}

/// Two variants of the same class: literal operands with `N0` (NONE, POP) between them and
/// STACK_GLOBAL, which the import-form search does not match either; and a first opcode that is a
/// BINUNICODE of 70,000 `a`, after which the decompressed stream is sniffed as text and the file
/// passes with no finding at all.
fn long_first_opcode_variants() -> Vec<(&'static str, Vec<u8>)> {
    let mut noise = vec![0x8e];
    noise.extend_from_slice(&70_000u64.to_le_bytes());
    noise.resize(noise.len() + 70_000, 0);
    noise.extend_from_slice(b"0\x80\x04\x8c\x05posix\x8c\x06systemN0\x93\x8c\x0aecho pwned\x85R.");
    let mut text = vec![b'X'];
    text.extend_from_slice(&70_000u32.to_le_bytes());
    text.resize(text.len() + 70_000, b'a');
    text.extend_from_slice(
        b"0\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x0aecho pwned\x85R.",
    );
    vec![
        ("BINBYTES8 lead, memo operands", long_first_opcode_pickle()),
        ("N0 between operands", noise),
        ("BINUNICODE lead", text),
    ]
}

/// Such a pickle compressed, as joblib writes `.gz`, `.z`, `.bz2`, `.xz` and `.lzma` files.
/// `joblib.load` (1.6.0) sniffs the compressor, decompresses and unpickles: the payload runs
/// (checked for each wrapper with a payload that creates a directory). As a plain file the
/// pickle is MG101 critical, because the trial parse knows the file's size and keeps it a pickle
/// candidate when the first opcode runs past its window. A decompressed stream has no size known
/// up front, so the stream is not recognised as a pickle; and the defence-in-depth search for
/// import forms finds no STACK_GLOBAL with string operands right before it (they are memo
/// fetches). The stream becomes an unrecognised binary (MG003, low) and the file passes under
/// names such as `model.gz` or `model.dat` (`.joblib` and `.pkl` fail only because of the name,
/// MG002). MG101 (critical) should fire on the decompressed stream.
#[test]
fn a_compressed_pickle_whose_first_opcode_runs_past_the_window_is_still_a_pickle() {
    let mut cases = Vec::new();
    for (variant, pickle) in long_first_opcode_variants() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(3));
        gz.write_all(&pickle).unwrap();
        let gz = gz.finish().unwrap();
        let z = zlib(&pickle, 3);
        for (what, bytes) in [("gzip", &gz), ("zlib", &z)] {
            for name in ["model.dat", "model.gz", "model.z", "weights.bin.gz"] {
                cases.push((format!("{variant}, {what}"), name.to_string(), bytes.clone()));
            }
        }
    }
    // bzip2, xz and lzma-alone forms of the same pickle (made with Python's bz2 and lzma), and
    // the campaign's own mutant (xz of a joblib.dump re-encoded, behind a 70,000-byte BINBYTES8).
    cases.extend(data_files("compressed-long-first-opcode"));
    all_fail(&cases, Some("MG101"));
}

/// Two lzma-alone (`.lzma`, `FORMAT_ALONE`) streams one after the other, the pickle cut between
/// them: joblib's lzma compressor reads with `lzma.LZMAFile`, which decompresses concatenated
/// streams as one, so `joblib.load` unpickles the whole pickle and the payload runs. modelgate
/// decompresses the first stream only and calls the second "trailing data the loader never reads"
/// (MG006, medium); neither half is recognised as a pickle (MG003, low), and the file passes.
/// (xz and bzip2 streams cut the same way are read as one and fail.) Files: the hunter's mutant
/// as found in the second campaign (seed 2): `joblib.dump` of `os.makedirs('hunter_mark')`,
/// re-encoded, cut at byte 108 of the pickle, inside the operands of its STACK_GLOBAL (cuts from
/// 100 to 120 all pass); and a minimal one made with Python's lzma: `posix.system('echo pwned')`
/// at protocol 4 with memo-fetched STACK_GLOBAL operands, the first stream holding only the PROTO
/// opcode byte `\x80` (the second then starts with its argument, `\x04`, and is no pickle start;
/// cut anywhere else the second half is recognised and fails). The streams should be read as one,
/// and MG101 fire on the pickle.
#[test]
fn concatenated_lzma_alone_streams_are_one_stream() {
    all_fail(&data_files("lzma-alone-concatenated"), Some("MG101"));
}
