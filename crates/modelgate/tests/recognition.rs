//! Recognition by content (docs/formats.md, "Recognition"): a stream CPython's unpickler loads is
//! treated as a pickle however its numbers are spelt and however long its first argument is; a
//! pickle hidden in text or in an unknown binary is still found; a valid file of a framed format
//! (safetensors, tar) is never read as another format, whatever its varying bytes are.
//!
//! Each case here was a silent pass or a false alarm before the recognition work: the pickle
//! variants were not treated as pickles (exit 0 with the payload unseen), a safetensors header
//! length ≡ 128 mod 256 was read as a pickle PROTO (MG105 on a benign shard), and a tar holding
//! a zip was read as a damaged zip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::{Format, Node};
use modelgate_policy::Verdict;
use std::time::Duration;

mod common;
use common::{Outcome, Rng, scan_bytes_timed, tar};

/// `posix.system("echo pwned")`, protocol 0 (threats.md P-02): MG101 wherever it is read.
const EVIL: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";

fn scan(bytes: Vec<u8>, name: &str) -> Outcome {
    scan_bytes_timed(bytes, name, Duration::from_secs(20))
}

fn rules(o: &Outcome) -> Vec<String> {
    o.findings.iter().map(|f| f.rule.id.to_string()).collect()
}

fn formats(node: &Node, out: &mut Vec<Format>) {
    out.push(node.format);
    node.children.iter().for_each(|c| formats(c, out));
}

/// The stream must be judged a pickle and its denied global found.
#[track_caller]
fn assert_denied(o: &Outcome, what: &str) {
    assert_eq!(o.verdict, Verdict::Fail, "{what}: passed; findings {:?}", rules(o));
    assert!(rules(o).iter().any(|r| r == "MG101"), "{what}: no MG101 in {:?}", rules(o));
}

/// INT, LONG and FLOAT arguments and memo keys are read by Python's `int()` and `float()`
/// (pickle.py `load_int`, `load_long`, `load_float`, `load_get`/`load_put`; docs/formats.md,
/// "Recognition"): signs, spaces, underscores, base prefixes for INT (`int(s, 0)`), an `L`
/// suffix for LONG. Each spelling below is accepted by CPython's unpickler; each stream then
/// calls `posix.system`.
#[test]
fn python_number_syntax_keeps_the_stream_a_pickle() {
    let prefixes: &[&[u8]] = &[
        b"I+1\n0",
        b"I -7 \n0",
        b"I1_000\n0",
        b"I0x1f\n0",
        b"I0o17\n0",
        b"I0b101\n0",
        b"I00\n0",
        b"I01\n0",
        b"L10L\n0",
        b"L-0x10L\n0",
        b"L+1_0\n0",
        b"F1_0.5\n0",
        b"F  1e3\n0",
        b"Finf\n0",
        b"F-nan\n0",
        b"F.5\n0",
        b"I5\np+1\n0g1\n0",
        b"I5\np 2 \n0g2\n0",
        b"I5\np1_0\n0g10\n0",
        b"I1_0_0\n0",
        b"I0X1F\n0",
        b"I\t3\n0",
        b"L 10L\n0",
        b"L0b1_1\n0",
        b"F1e1_0\n0",
        b"F Infinity \n0",
        b"F1_000.000_1\n0",
        b"I99999999999999999999999\n0",
        b"I5\np00\n0g0\n0",
        b"I5\np-1\n0g-1\n0",
    ];
    let mut passed = Vec::new();
    for p in prefixes {
        let o = scan([*p, EVIL].concat(), "numbers.pkl");
        if o.verdict == Verdict::Pass || !rules(&o).iter().any(|r| r == "MG101") {
            passed.push(String::from_utf8_lossy(p).escape_debug().to_string());
        }
    }
    assert!(passed.is_empty(), "not judged as pickles: {passed:?}");
}

/// A first argument longer than the sniffing window: CPython reads a line or a length of any
/// size, so a long string before the payload is no reason to stop treating the stream as a
/// pickle.
#[test]
fn a_long_first_argument_keeps_the_stream_a_pickle() {
    let long = "A".repeat(200_000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("STRING", [format!("S'{long}'\n0").as_bytes(), EVIL].concat()),
        ("UNICODE", [format!("V{long}\n0").as_bytes(), EVIL].concat()),
        ("BINUNICODE", {
            let mut b = vec![b'X'];
            b.extend_from_slice(&(long.len() as u32).to_le_bytes());
            b.extend_from_slice(long.as_bytes());
            b.push(b'0');
            [&b[..], EVIL].concat()
        }),
    ];
    for (what, bytes) in cases {
        assert_denied(&scan(bytes, what), what);
    }
}

/// Defence in depth: text and unknown binaries are searched for pickle import forms, and a hit
/// is parsed from there as a pickle.
#[test]
fn a_pickle_inside_text_or_an_unknown_binary_is_found() {
    let mut text = b"# Model notes\n\nThis file describes the model.\n".repeat(200);
    text.extend_from_slice(EVIL);
    text.extend_from_slice(b"\nMore notes follow.\n");
    assert_denied(&scan(text, "notes.txt"), "protocol-0 pickle in text");

    let mut rng = Rng::new(20);
    let mut junk: Vec<u8> = (0..20_000).map(|_| (rng.next() >> 24) as u8 | 0x80).collect();
    junk.splice(9_000..9_000, EVIL.iter().copied());
    assert_denied(&scan(junk.clone(), "weights.dat"), "protocol-0 pickle in an unknown binary");

    // STACK_GLOBAL with string operands (protocol 4), then a call.
    let p4: &[u8] = b"\x8c\x05posix\x8c\x06system\x93\x8c\x0aecho pwned\x85R.";
    let mut junk2 = junk;
    junk2.splice(12_000..12_000, p4.iter().copied());
    let o = scan(junk2, "weights.bin");
    assert_denied(&o, "STACK_GLOBAL pickle in an unknown binary");
}

/// Benign text that only looks like a pickle import in passing is not made a pickle.
#[test]
fn ordinary_text_is_not_a_pickle() {
    let text = b"class Net(Module):\n    def forward(self, x):\n        return x\n".repeat(50);
    let o = scan(text, "model.py");
    assert!(!rules(&o).iter().any(|r| r.starts_with("MG1")), "pickle findings on text: {:?}", rules(&o));
}

/// A safetensors file with one F32 tensor and a header of exactly `n` bytes (spaces pad the
/// JSON, as the format allows).
fn safetensors_with_header_len(n: usize) -> Vec<u8> {
    let json = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert!(n >= json.len());
    let header = format!("{json}{}", " ".repeat(n - json.len()));
    let mut out = (n as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&1.0f32.to_le_bytes());
    out
}

/// The header length's low byte takes every value: 0x80 (and every other opcode-like byte) is
/// not a pickle PROTO when the safetensors structure holds.
#[test]
fn safetensors_is_decided_structurally_for_every_first_byte() {
    for low in 0..=255usize {
        let n = 256 + low;
        let bytes = safetensors_with_header_len(n);
        assert_eq!(bytes[0] as usize, low);
        let o = scan(bytes, "model.safetensors");
        assert_eq!(o.node.format, Format::Safetensors, "header length {n:#x}");
        assert_eq!(o.verdict, Verdict::Pass, "header length {n:#x}: {:?}", rules(&o));
        assert!(o.findings.is_empty(), "header length {n:#x}: {:?}", rules(&o));
    }
}

/// A stored zip of one member, as Python's zipfile writes it.
fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    };
    let fixed = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    };
    let mut out = b"PK\x03\x04".to_vec();
    fixed(&mut out);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    let cd_at = out.len() as u32;
    let mut central = b"PK\x01\x02\x14\x00".to_vec();
    fixed(&mut central);
    central.extend_from_slice(&[0; 12]);
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// A NeMo-style `.nemo`: a plain tar whose last member is a zip. The tar is the container; the
/// zip is its member, scanned as a zip — and a pickle inside that zip is still found.
#[test]
fn a_tar_holding_a_zip_is_a_tar() {
    let config = b"name: tiny\n";
    let inner = zip_one("weights/notes.txt", b"benign\n");
    let nemo = tar(&[("./model_config.yaml", config), ("./model_weights.ckpt", &inner)]);
    let o = scan(nemo, "model.nemo");
    assert_eq!(o.node.format, Format::Tar);
    let mut seen = Vec::new();
    formats(&o.node, &mut seen);
    assert!(seen.contains(&Format::Zip), "the zip member was not scanned as a zip: {seen:?}");
    let zip_rules: Vec<String> = rules(&o).into_iter().filter(|r| r.starts_with("MG2")).collect();
    assert!(zip_rules.is_empty(), "archive findings on a valid tar: {zip_rules:?}");

    let evil_inner = zip_one("archive/data.pkl", EVIL);
    let nemo = tar(&[("./model_config.yaml", config), ("./model_weights.ckpt", &evil_inner)]);
    assert_denied(&scan(nemo, "model.nemo"), "pickle in a zip in a tar");
}

/// An unrecognised binary under a name loaders open as a wrapper (joblib's and pandas'
/// compression suffixes, `.pth.tar`, `.dat`) is judged as a model (MG002, high), not as plain data
/// (MG003, low): before the `ZF` wrapper was known, such files passed as low under exactly these
/// names (docs/fuzzing.md, "Silent-pass hunter"). A name with no such meaning stays MG003.
#[test]
fn unknown_binaries_under_wrapper_names_are_models() {
    let mut rng = Rng::new(2020);
    let blob: Vec<u8> = (0..4096).map(|_| (rng.next() >> 24) as u8 | 0x80).collect();
    for name in [
        "model.pkl.z",
        "model.gz",
        "model.bz2",
        "model.xz",
        "model.lzma",
        "df.zst",
        "checkpoint.pth.tar",
        "weights.dat",
    ] {
        let o = scan(blob.clone(), name);
        assert_eq!(o.node.format, Format::Unknown, "{name}");
        assert!(rules(&o).contains(&"MG002".to_string()), "{name}: {:?}", rules(&o));
        assert_eq!(o.verdict, Verdict::Fail, "{name}");
    }
    let o = scan(blob, "blob.raw");
    assert_eq!(rules(&o), ["MG003"]);
    assert_eq!(o.verdict, Verdict::Pass);
}

/// FRAME with no PROTO in front (CPython's `load_frame` does not look at the protocol), around a
/// protocol-0 body, and an empty FRAME before PROTO: still pickles, still MG101.
#[test]
fn frames_without_proto_keep_the_stream_a_pickle() {
    let framed = |body: &[u8]| {
        let mut b = vec![0x95];
        b.extend_from_slice(&(body.len() as u64).to_le_bytes());
        b.extend_from_slice(body);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("FRAME around a protocol-0 pickle", framed(EVIL)),
        ("empty FRAME, then the pickle", [framed(b""), EVIL.to_vec()].concat()),
        ("FRAME, then PROTO 4 inside it", framed(&[b"\x80\x04", EVIL].concat())),
    ];
    for (what, bytes) in cases {
        assert_denied(&scan(bytes, "frames.bin"), what);
    }
}
