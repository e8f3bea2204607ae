//! Fuzz driver: mutates the test fixtures and checks that every scan ends, in bounded time and
//! memory, without a panic. Not part of the test suite; see docs/fuzzing.md.
//!
//! ```sh
//! cargo build --release -p modelgate --example fuzz
//! target/release/examples/fuzz run --cases 1000000 --workers 2 --out target/fuzz
//! target/release/examples/fuzz case --seed 1 --case 12345 --out case.bin   # rebuild one input
//! target/release/examples/fuzz scan case.bin                                # time, RSS, findings
//! ```
//!
//! `run` is a supervisor: it starts `worker` processes (under `prlimit --as`, when present), each
//! of which scans a range of cases on a thread with the same 2 MiB stack the CLI's scan threads
//! have, and reports each case number before scanning it. A worker that stops reporting for
//! `--timeout` seconds is killed (a hang); one that dies (a panic, a stack overflow, an
//! allocation failure under the address-space limit) is a crash. Either way the case is rebuilt
//! from its number and written to the output directory, and a new worker resumes after it.
//! Workers themselves report a case whose peak RSS exceeds `--rss-mib`, a case slower than a
//! second, and a malicious fixture that a mutation of bytes the loader ignores (or a single
//! byte flip outside the payload) turned into a pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelgate_formats::{Node, Options, scan_bytes};
use modelgate_policy::{FailOn, Finding, Policy, Severity, Verdict, evaluate};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Randomness

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// A size skewed towards small values.
    fn small(&mut self, max: usize) -> usize {
        let bits = self.below(usize::BITS as usize - max.leading_zeros() as usize + 1);
        self.below((1usize << bits).min(max) + 1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn case_rng(seed: u64, case: u64) -> Rng {
    let mut r = Rng::new(seed ^ case.wrapping_mul(0xd134_2543_de82_ef95));
    r.next();
    r
}

// ---------------------------------------------------------------------------------------------
// Corpus

struct SeedFile {
    path: String,
    bytes: Vec<u8>,
    format: String,
    malicious: bool,
    /// Byte ranges of the file where the failing findings come from (a flip there may
    /// legitimately disarm the payload).
    spans: Vec<(u64, u64)>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| Policy::builtin().expect("built-in policy"))
}

fn judge(node: &Node, name: &str) -> (Vec<Finding>, Verdict) {
    let findings = evaluate(node, name, policy());
    let verdict = Verdict::of(&findings, FailOn::default());
    (findings, verdict)
}

fn load_corpus(dir: &Path) -> Vec<SeedFile> {
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    let mut seeds = Vec::new();
    for p in paths {
        let Ok(bytes) = std::fs::read(&p) else { continue };
        if bytes.len() > 4 << 20 {
            continue;
        }
        let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
        let node = scan_bytes(&bytes, Options::default());
        let (findings, verdict) = judge(&node, &rel);
        let malicious = rel.starts_with("malicious/") && verdict == Verdict::Fail;
        let spans = if malicious { payload_spans(&node, &findings) } else { Vec::new() };
        seeds.push(SeedFile { path: rel, bytes, format: node.format.as_str().to_string(), malicious, spans });
    }
    seeds
}

/// Same idea as crates/modelgate/tests/robustness.rs: for a flip, any byte of the stream a
/// failing finding comes from may derail the parse before it.
fn payload_spans(node: &Node, findings: &[Finding]) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    for f in findings.iter().filter(|f| f.severity >= Severity::High) {
        match &f.location.member {
            None => spans.push((0, f.location.offset.unwrap_or(0) + 4096)),
            Some(member) => {
                let top = member.split('!').next().unwrap_or(member);
                match node.children.iter().find(|c| c.name == top || format!("<{}>", c.name) == top) {
                    Some(child) => {
                        let start = child.parent_offset.unwrap_or(0);
                        spans.push((start, start + child.size + 1024));
                    }
                    None => spans.push((0, u64::MAX)),
                }
            }
        }
    }
    spans
}

// ---------------------------------------------------------------------------------------------
// Encoders for wrapping and generated inputs

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Deflate with stored blocks only.
fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 5);
    let mut chunks = data.chunks(65535).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    out.extend(deflate_stored(data));
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend(deflate_stored(data));
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn zip(members: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let stored = if deflate { deflate_stored(data) } else { data.to_vec() };
        let method: u16 = if deflate { 8 } else { 0 };
        let crc = crc32(data);
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&stored);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0]);
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&0o1_006_440_000_u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn tar_header(name: &str, size: usize, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(99);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar\x0000");
    tar_checksum(&mut h);
    h
}

fn tar_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        out.extend_from_slice(&tar_header(name, data.len(), b'0'));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A pickle whose only content is `data` as a bytes object (scanned as an embedded stream).
fn pickle_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 4, b'B'];
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.push(b'.');
    out
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Length-delimited fields nested in each other, one per tag (outermost first), built in linear
/// time.
fn nested_protobuf(tags: &[u8]) -> Vec<u8> {
    let varint_len = |v: u64| (64 - v.max(1).leading_zeros() as usize).div_ceil(7);
    let mut lens = vec![0u64; tags.len()];
    for i in (0..tags.len().saturating_sub(1)).rev() {
        lens[i] = 1 + varint_len(lens[i + 1]) as u64 + lens[i + 1];
    }
    let mut out = Vec::new();
    for (tag, len) in tags.iter().zip(&lens) {
        out.push(*tag);
        varint(*len, &mut out);
    }
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0xff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_ffff,
    100_000_001,
    1 << 20,
    1 << 30,
    1 << 40,
];

const TOKENS: &[&[u8]] = &[
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
    b"PK\x07\x08",
    b"\x80\x02",
    b"\x80\x05\x95",
    b"cposix\nsystem\n",
    b"\x8c\x05posix\x8c\x06system\x93",
    b"GGUF\x03\0\0\0",
    b"\x89HDF\r\n\x1a\n",
    b"\x93NUMPY\x01\0",
    b"TFL3",
    b"7z\xbc\xaf\x27\x1c",
    b"\x1f\x8b\x08",
    b"BZh91AY&SY",
    b"\xfd7zXZ\0",
    b"ustar\x0000",
    b"{\"",
    b"[[[[[[[[",
    b"{{ ",
    b"{% ",
    b" }}",
    b" %}",
    b"{#",
    b"\\u0000",
    b"\\ud800",
    b"1e99999",
    b"-1",
    b"18446744073709551616",
    b"\"__class__\"",
    b"__import__",
    b"\"auto_map\"",
    b"\"chat_template\"",
    b"\"class_name\": \"Lambda\"",
    b"\"module\": \"os\"",
    b"(((((((((",
    b"}}}}}}}}",
    b"\0\0\0\0",
    b"\xff\xff\xff\xff",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\n---\n",
    b"---\n",
    b"version https://git-lfs.github.com/spec/v1\n",
];

fn write_int(buf: &mut [u8], at: usize, width: usize, value: u64, big: bool) {
    let bytes = if big { value.to_be_bytes() } else { value.to_le_bytes() };
    let src = if big { &bytes[8 - width..] } else { &bytes[..width] };
    let n = width.min(buf.len().saturating_sub(at));
    buf[at..at + n].copy_from_slice(&src[..n]);
}

fn read_int(buf: &[u8], at: usize, width: usize, big: bool) -> u64 {
    let mut v = 0u64;
    for i in 0..width {
        let b = u64::from(*buf.get(at + i).unwrap_or(&0));
        if big {
            v = (v << 8) | b;
        } else {
            v |= b << (8 * i);
        }
    }
    v
}

/// One random mutation; returns its description.
fn mutate(data: &mut Vec<u8>, rng: &mut Rng, seeds: &[SeedFile]) -> String {
    let len = data.len();
    let at = rng.below(len.max(1));
    match rng.below(15) {
        0 if len > 0 => {
            let bit = rng.below(8);
            data[at] ^= 1 << bit;
            format!("flip bit {bit} @{at}")
        }
        1 if len > 0 => {
            let v = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, 0x01, b'.', b'(', b'"', b'{', b'[']);
            let v = if rng.chance(50) { v } else { rng.next() as u8 };
            data[at] = v;
            format!("set @{at} = {v:#x}")
        }
        2 => {
            let cut = rng.below(len + 1);
            data.truncate(cut);
            format!("truncate {cut}")
        }
        3 if len > 0 => {
            let n = rng.small(len - at).max(1);
            data.drain(at..(at + n).min(len));
            format!("delete {n} @{at}")
        }
        4 => {
            let n = rng.small(256).max(1);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let at = rng.below(len + 1);
            data.splice(at..at, ins);
            format!("insert {n} random @{at}")
        }
        5 if len > 0 => {
            // Duplicate a chunk, possibly many times (amplification).
            let n = rng.small(64.min(len - at)).max(1);
            let times = if rng.chance(20) { rng.small(5000).max(1) } else { 1 };
            let chunk = data[at..(at + n).min(len)].to_vec();
            let to = rng.below(len + 1);
            let ins: Vec<u8> = chunk.iter().copied().cycle().take(chunk.len() * times).collect();
            data.splice(to..to, ins);
            format!("repeat {n} bytes from @{at} x{times} @{to}")
        }
        6 => {
            let other = rng.pick(seeds);
            let ob = &other.bytes;
            let from = rng.below(ob.len() + 1);
            if rng.chance(50) {
                let cut = rng.below(len + 1);
                data.truncate(cut);
                data.extend_from_slice(&ob[from..]);
                format!("splice {cut} + {}[{from}..]", other.path)
            } else {
                let n = rng.small(ob.len() - from);
                let to = rng.below(len + 1);
                data.splice(to..to, ob[from..from + n].iter().copied());
                format!("insert {}[{from}..+{n}] @{to}", other.path)
            }
        }
        7 | 8 if len > 0 => {
            // Length-field inflation.
            let width = *rng.pick(&[2usize, 4, 4, 8, 8]);
            let at = if rng.chance(50) { at / width * width } else { at };
            let big = rng.chance(25);
            let old = read_int(data, at, width, big);
            let v = match rng.below(4) {
                0 => *rng.pick(INTERESTING),
                1 => old.wrapping_add(rng.small(64) as u64 + 1),
                2 => old.wrapping_sub(rng.small(64) as u64 + 1),
                _ => (len as u64).wrapping_add(rng.below(16) as u64).wrapping_sub(8),
            };
            write_int(data, at, width, v, big);
            format!("int{} {} @{at} = {v:#x}", width * 8, if big { "be" } else { "le" })
        }
        9 if len > 0 => {
            // Protobuf varint inflation: replace the varint at `at` by a huge one.
            let mut end = at;
            while end < len && data[end] & 0x80 != 0 && end - at < 9 {
                end += 1;
            }
            let end = (end + 1).min(len);
            let v = *rng.pick(INTERESTING);
            let mut enc = Vec::new();
            varint(v, &mut enc);
            data.splice(at..end, enc);
            format!("varint @{at} = {v:#x}")
        }
        10 | 11 => {
            let t = rng.pick(TOKENS);
            let to = rng.below(len + 1);
            if rng.chance(50) || to + t.len() > len {
                data.splice(to..to, t.iter().copied());
                format!("insert token {:?} @{to}", String::from_utf8_lossy(t))
            } else {
                data[to..to + t.len()].copy_from_slice(t);
                format!("overwrite token {:?} @{to}", String::from_utf8_lossy(t))
            }
        }
        12 if len > 0 => {
            // Move a structure marker: copy a chunk over another place.
            let n = rng.small(32.min(len - at)).max(1);
            let chunk = data[at..at + n].to_vec();
            let to = rng.below(len - n + 1);
            data[to..to + n].copy_from_slice(&chunk);
            format!("copy {n} @{at} -> @{to}")
        }
        13 if len > 0 => {
            // Text-aware nesting: many openers at one point.
            let opener = *rng.pick(b"[{(<(]");
            let n = rng.small(200_000).max(1);
            data.splice(at..at, std::iter::repeat_n(opener, n));
            format!("insert {n}x {:?} @{at}", opener as char)
        }
        _ => {
            let n = rng.small(16).max(1);
            for _ in 0..n {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
            format!("randomise {n} bytes")
        }
    }
}

/// Mutations of bytes a loader ignores (checksums, timestamps, comments); a malicious file must
/// still fail afterwards.
fn mutate_ignorable(data: &mut Vec<u8>, rng: &mut Rng) -> Option<String> {
    let find = |sig: &[u8], data: &[u8]| -> Vec<usize> {
        data.windows(sig.len()).enumerate().filter(|(_, w)| *w == sig).map(|(i, _)| i).collect()
    };
    let lfh = find(b"PK\x03\x04", data);
    let cdh = find(b"PK\x01\x02", data);
    let eocd = find(b"PK\x05\x06", data);
    let gz = data.starts_with(b"\x1f\x8b\x08");
    let tars: Vec<usize> = (0..data.len() / 512)
        .map(|i| i * 512)
        .filter(|&o| data.get(o + 257..o + 262) == Some(b"ustar"))
        .collect();
    let mut options = Vec::new();
    if !lfh.is_empty() {
        options.push(0);
    }
    if !cdh.is_empty() {
        options.push(1);
    }
    if eocd.len() == 1 && eocd[0] + 22 == data.len() {
        options.push(2);
    }
    if gz && data.len() > 18 {
        options.push(3);
    }
    if !tars.is_empty() {
        options.push(4);
    }
    if options.is_empty() {
        return None;
    }
    match *rng.pick(&options) {
        which @ (0 | 1) => {
            // Local header (CRC at +14) or central header (CRC at +16): CRC, time, date, version.
            let (what, o, base) =
                if which == 0 { ("local", *rng.pick(&lfh), 14) } else { ("central", *rng.pick(&cdh), 16) };
            // The local header's "version needed" is ignored by readers; the central header's
            // "version made by" is not (its host byte says how to read the external attributes,
            // which make a member a symbolic link).
            let fields =
                [("crc", o + base), ("time", o + base - 4), ("date", o + base - 2), ("version", o + 4)];
            let (field, at) = *rng.pick(&fields[..if which == 0 { 4 } else { 3 }]);
            let v = rng.next() as u32;
            let w = if field == "crc" { 4 } else { 2 };
            if at + w <= data.len() {
                write_int(data, at, w, u64::from(v), false);
            }
            Some(format!("zip {what} header @{o}: {field} = {v:#x}"))
        }
        2 => {
            let n = rng.small(200).max(1);
            let at = data.len() - 2;
            write_int(data, at, 2, n as u64, false);
            data.extend((0..n).map(|_| b'a' + (rng.below(26) as u8)));
            Some(format!("zip comment of {n} bytes"))
        }
        3 => {
            let (field, at, w) = *rng.pick(&[
                ("mtime", 4, 4),
                ("xfl", 8, 1),
                ("os", 9, 1),
                ("crc", data.len() - 8, 4),
                ("isize", data.len() - 4, 4),
            ]);
            let v = rng.next() as u32;
            write_int(data, at, w, u64::from(v), false);
            Some(format!("gzip {field} = {v:#x}"))
        }
        4 => {
            let o = *rng.pick(&tars);
            let (field, at, w) = *rng.pick(&[("mtime", 136, 11), ("uname", 265, 31), ("gname", 297, 31)]);
            let text: Vec<u8> = if field == "mtime" {
                format!("{:011o}", rng.next() & 0o777_7777_7777).into_bytes()
            } else {
                (0..w).map(|_| b'a' + rng.below(26) as u8).collect()
            };
            data[o + at..o + at + w].copy_from_slice(&text[..w]);
            tar_checksum(&mut data[o..o + 512]);
            Some(format!("tar header @{o}: {field}"))
        }
        _ => None,
    }
}

/// Puts `data` in a container (or several, nested).
fn wrap(mut data: Vec<u8>, rng: &mut Rng) -> (Vec<u8>, String) {
    let levels = if rng.chance(10) { rng.small(40).max(1) } else { rng.below(3) + 1 };
    let mut kinds = Vec::new();
    for _ in 0..levels {
        let name = *rng.pick(&[
            "archive/data.pkl",
            "data.pkl",
            "model.safetensors",
            "x",
            "a/b/c.npy",
            "config.json",
        ]);
        let kind = rng.below(7);
        data = match kind {
            0 => zip(&[(name, &data)], false),
            1 => zip(&[(name, &data)], true),
            2 => tar(&[(name, &data)]),
            3 => gzip(&data),
            4 => zlib(&data),
            5 => pickle_bytes(&data),
            _ => {
                zip(&[("archive/data.pkl", b"\x80\x02}q\x00.".as_slice()), ("archive/data/0", &data)], false)
            }
        };
        kinds.push(["zip", "zip-deflate", "tar", "gzip", "zlib", "pickle-bytes", "torch-zip"][kind]);
    }
    (data, kinds.join("<"))
}

/// Inputs built from scratch: deep nesting and huge declared counts.
fn generate(rng: &mut Rng) -> (Vec<u8>, String) {
    let depth = if rng.chance(30) { rng.small(1_000_000).max(1) } else { rng.small(5000).max(1) };
    match rng.below(14) {
        0 => {
            let open = if rng.chance(50) { "[".repeat(depth) } else { "{\"a\":".repeat(depth) };
            (format!("{{\"chat_template\": {open}").into_bytes(), format!("deep json {depth}"))
        }
        1 => {
            let body = format!("{{\"t\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
            let mut out = (body.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(body.as_bytes());
            (out, format!("safetensors deep header {depth}"))
        }
        2 => {
            // Pickle: nested lists, marks, tuples.
            let mut p = vec![0x80, 2];
            let units: [&[u8]; 7] = [b"]", b"(", b"](", b"}", b"]q\x00", b"N\x85", b")\x81"];
            let unit = rng.pick(&units);
            for _ in 0..depth {
                p.extend_from_slice(unit);
            }
            if rng.chance(50) {
                p.extend_from_slice(b"cposix\nsystem\n");
            }
            p.push(b'.');
            (p, format!("pickle {depth}x {unit:?}"))
        }
        3 => {
            // Pickle: embedded pickles within pickles.
            let mut p = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.".to_vec();
            let levels = rng.small(60).max(1);
            for _ in 0..levels {
                p = pickle_bytes(&p);
            }
            (p, format!("pickle-in-pickle {levels}"))
        }
        4 => {
            // ONNX: graph -> node -> attribute -> g -> node -> ... (the real recursion path).
            let n = depth.min(1_000_000);
            let tags: Vec<u8> =
                std::iter::once(0x3a).chain([0x0a, 0x2a, 0x32].into_iter().cycle()).take(n).collect();
            let mut model = vec![0x08, 0x07];
            model.extend(nested_protobuf(&tags));
            (model, format!("onnx nested graphs {n}"))
        }
        5 => {
            // Generic protobuf nesting with random field numbers, after a SavedModel or ONNX head.
            let n = depth.min(1_000_000);
            let tags: Vec<u8> = (0..n).map(|_| ((rng.below(15) as u8 + 1) << 3) | 2).collect();
            let mut out = if rng.chance(50) { vec![0x08, 0x01] } else { vec![0x08, 0x07] };
            out.extend(nested_protobuf(&tags));
            (out, format!("protobuf nested {n}"))
        }
        6 => {
            // GGUF with huge counts.
            let mut g = b"GGUF".to_vec();
            g.extend_from_slice(&(rng.below(4) as u32).to_le_bytes());
            g.extend_from_slice(&rng.pick(INTERESTING).to_le_bytes());
            g.extend_from_slice(&rng.pick(INTERESTING).to_le_bytes());
            // One key: an array of arrays or a huge string.
            g.extend_from_slice(&4u64.to_le_bytes());
            g.extend_from_slice(b"a.bc");
            g.extend_from_slice(&9u32.to_le_bytes());
            g.extend_from_slice(&(rng.below(14) as u32).to_le_bytes());
            g.extend_from_slice(&rng.pick(INTERESTING).to_le_bytes());
            g.extend((0..rng.small(4096)).map(|_| rng.next() as u8));
            (g, "gguf huge counts".into())
        }
        7 => {
            // NumPy with a huge shape or header length.
            let dims: Vec<String> =
                (0..rng.small(64).max(1)).map(|_| rng.pick(INTERESTING).to_string()).collect();
            let header = format!(
                "{{'descr': '{}', 'fortran_order': False, 'shape': ({},), }}",
                rng.pick(&["<f4", "|O", "<U99999999", "V8", "<c16", "[('a','<i4')]"]),
                dims.join(", ")
            );
            let mut n = b"\x93NUMPY\x01\x00".to_vec();
            n.extend_from_slice(&(header.len() as u16).to_le_bytes());
            n.extend_from_slice(header.as_bytes());
            n.extend((0..rng.small(1024)).map(|_| rng.next() as u8));
            (n, "numpy huge shape".into())
        }
        8 => {
            // Zip with a huge declared member count or sizes.
            let mut z = zip(&[("archive/data.pkl", b"\x80\x02cposix\nsystem\n.")], rng.chance(50));
            let e = z.len() - 22;
            let field = *rng.pick(&[8usize, 10, 12, 16]);
            let w = if field >= 12 { 4 } else { 2 };
            write_int(&mut z, e + field, w, *rng.pick(INTERESTING), false);
            (z, format!("zip eocd field {field} inflated"))
        }
        9 => {
            // Keras 3 archive whose Lambda carries deeply nested marshal data.
            let mut m = Vec::new();
            for _ in 0..depth.min(100_000) {
                m.push(*rng.pick(b"([<{)"));
                m.extend_from_slice(&1u32.to_le_bytes());
            }
            m.push(b'N');
            let config = format!(
                "{{\"class_name\": \"Sequential\", \"module\": \"keras\", \"config\": {{\"layers\": [{{\"class_name\": \"Lambda\", \"module\": \"keras.layers\", \"config\": {{\"function\": {{\"class_name\": \"__lambda__\", \"config\": {{\"code\": \"{}\"}}}}}}}}]}}}}",
                base64(&m)
            );
            let z = zip(
                &[("metadata.json", b"{\"keras_version\": \"3.5.0\"}"), ("config.json", config.as_bytes())],
                false,
            );
            (z, format!("keras marshal nesting {depth}"))
        }
        10 => {
            // Jinja nesting.
            let t = match rng.below(4) {
                0 => format!("{{{{ messages {}x{} }}}}", "(".repeat(depth), ")".repeat(depth)),
                1 => {
                    format!("{}{{{{ messages }}}}{}", "{% if x %}".repeat(depth), "{% endif %}".repeat(depth))
                }
                2 => format!("{{{{ messages{} }}}}", "[0]".repeat(depth)),
                _ => format!("{{{{ messages {} }}}}", "-".repeat(depth) + "1"),
            };
            if rng.chance(50) {
                let j = format!("{{\"chat_template\": {}}}", serde_json::to_string(&t).unwrap_or_default());
                (j.into_bytes(), format!("jinja-in-json nesting {depth}"))
            } else {
                (t.into_bytes(), format!("jinja nesting {depth}"))
            }
        }
        11 => {
            // Zip bomb-ish: many members.
            let n = rng.small(20_000).max(1);
            let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
            let members: Vec<(&str, &[u8])> =
                names.iter().map(|s| (s.as_str(), b"\x80\x02N.".as_slice())).collect();
            (zip(&members, rng.chance(50)), format!("zip with {n} members"))
        }
        12 => {
            // Model card front matter with deep YAML-ish nesting.
            let mut s = String::from("---\nlicense: mit\n");
            for i in 0..depth.min(20_000) {
                s.push_str(&" ".repeat(i.min(200)));
                s.push_str("a:\n");
            }
            s.push_str("---\n# card\n");
            (s.into_bytes(), format!("card front matter {depth}"))
        }
        _ => {
            // tar with huge or odd sizes, long names.
            let mut h = tar_header("archive/data.pkl", 8, b'0');
            let size = rng.pick(INTERESTING);
            let text = if rng.chance(50) {
                format!("{:011o}\0", size & 0o777_7777_7777).into_bytes()
            } else {
                let mut b = vec![0x80u8, 0, 0, 0];
                b.extend_from_slice(&size.to_be_bytes());
                b
            };
            h[124..136].copy_from_slice(&text[..12]);
            h[156] = *rng.pick(b"0xLKgS");
            tar_checksum(&mut h);
            let mut out = h.to_vec();
            out.extend_from_slice(b"\x80\x02N.\0\0\0\0");
            out.resize(2048, 0);
            (out, format!("tar size field {size:#x}"))
        }
    }
}

struct Case {
    bytes: Vec<u8>,
    /// Seed index, or None for generated inputs.
    seed: Option<usize>,
    kind: String,
    desc: String,
    /// Check that a malicious seed still fails.
    must_fail: bool,
}

fn build_case(seeds: &[SeedFile], seed: u64, case: u64) -> Case {
    let mut rng = case_rng(seed, case);
    let roll = rng.below(100);
    if roll < 8 {
        let (bytes, desc) = generate(&mut rng);
        let kind = format!("gen:{}", desc.split(' ').next().unwrap_or("?"));
        return Case { bytes, seed: None, kind, desc, must_fail: false };
    }
    // Half the cases pick a format first, so that formats with few fixtures get their share.
    let idx = if rng.chance(50) {
        let mut formats: Vec<&str> = seeds.iter().map(|s| s.format.as_str()).collect();
        formats.sort_unstable();
        formats.dedup();
        let f = *rng.pick(&formats);
        let of: Vec<usize> = (0..seeds.len()).filter(|&i| seeds[i].format == f).collect();
        *rng.pick(&of)
    } else {
        rng.below(seeds.len())
    };
    let s = &seeds[idx];
    let mut bytes = s.bytes.clone();
    if roll < 14
        && s.malicious
        && let Some(desc) = mutate_ignorable(&mut bytes, &mut rng)
    {
        {
            return Case { bytes, seed: Some(idx), kind: s.format.clone(), desc, must_fail: true };
        }
    }
    if roll < 24 && s.malicious && !bytes.is_empty() {
        let at = rng.below(bytes.len());
        bytes[at] ^= (rng.below(255) + 1) as u8;
        let outside = !s.spans.iter().any(|&(a, b)| (a..b).contains(&(at as u64)));
        return Case {
            bytes,
            seed: Some(idx),
            kind: s.format.clone(),
            desc: format!("xor byte @{at}"),
            must_fail: outside,
        };
    }
    let n = if rng.chance(60) { 1 } else { rng.small(8).max(1) };
    let mut descs = Vec::new();
    for _ in 0..n {
        descs.push(mutate(&mut bytes, &mut rng, seeds));
        if bytes.len() > 16 << 20 {
            bytes.truncate(16 << 20);
        }
    }
    let mut desc = descs.join("; ");
    if rng.chance(12) {
        let (wrapped, how) = wrap(bytes, &mut rng);
        bytes = wrapped;
        desc = format!("{desc}; wrapped in {how}");
    }
    Case { bytes, seed: Some(idx), kind: s.format.clone(), desc, must_fail: false }
}

// ---------------------------------------------------------------------------------------------
// Measurement

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The CLI scans on threads with the default 2 MiB stack; so do we.
const SCAN_STACK: usize = 2 << 20;

// ---------------------------------------------------------------------------------------------
// Commands

struct Args(Vec<String>);

impl Args {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().position(|a| a == key).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }
    fn num(&self, key: &str, default: u64) -> u64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

fn corpus_dir(args: &Args) -> PathBuf {
    args.get("--corpus")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"))
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = Args(argv.clone());
    match argv.first().map(String::as_str) {
        Some("run") => supervise(&args),
        Some("worker") => {
            let args = Arc::new(args);
            let handle = std::thread::Builder::new()
                .name("scan".into())
                .stack_size(SCAN_STACK)
                .spawn(move || worker(&args))
                .expect("spawn");
            if handle.join().is_err() {
                std::process::exit(101);
            }
        }
        Some("case") => {
            let seeds = load_corpus(&corpus_dir(&args));
            let c = build_case(&seeds, args.num("--seed", 1), args.num("--case", 0));
            let out = args.get("--out").unwrap_or("case.bin");
            std::fs::write(out, &c.bytes).expect("write");
            let seed = c.seed.map(|i| seeds[i].path.as_str()).unwrap_or("-");
            println!("{out}: {} bytes; seed {seed}; {}", c.bytes.len(), c.desc);
        }
        Some("scan") => {
            let path = argv.get(1).expect("scan FILE").clone();
            let bytes = std::fs::read(&path).expect("read");
            let name = args.get("--name").unwrap_or(&path).to_string();
            let handle = std::thread::Builder::new()
                .stack_size(SCAN_STACK)
                .spawn(move || {
                    reset_peak_rss();
                    let t = Instant::now();
                    let node = scan_bytes(&bytes, Options::default());
                    let (findings, verdict) = judge(&node, &name);
                    (t.elapsed(), peak_rss_kib(), findings, verdict)
                })
                .expect("spawn");
            let (elapsed, rss, findings, verdict) = handle.join().expect("scan thread");
            for f in &findings {
                println!("{} {} [{:?}] {}", f.rule.id, f.severity.as_str(), f.location.member, f.message);
            }
            println!(
                "verdict {}; {:.3} s; peak RSS {} MiB",
                verdict.as_str(),
                elapsed.as_secs_f64(),
                rss / 1024
            );
        }
        _ => {
            eprintln!(
                "usage: fuzz run [--cases N] [--workers N] [--seed N] [--out DIR] [--timeout S] [--rss-mib N] [--as-mib N] [--corpus DIR]"
            );
            eprintln!("       fuzz case --seed N --case N [--out FILE]");
            eprintln!("       fuzz scan FILE");
            std::process::exit(2);
        }
    }
}

/// Scans cases `--start`..`--end`; prints `C <case> <kind>` before each, `M`/`T`/`S` lines for
/// memory, time and silent-pass problems.
fn worker(args: &Args) {
    let seeds = load_corpus(&corpus_dir(args));
    let seed = args.num("--seed", 1);
    let start = args.num("--start", 0);
    let end = args.num("--end", u64::MAX);
    let rss_limit = args.num("--rss-mib", 512) * 1024;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for case in start..end {
        let c = build_case(&seeds, seed, case);
        // The supervisor is gone: stop.
        if writeln!(out, "C {case} {}", c.kind).and_then(|()| out.flush()).is_err() {
            return;
        }
        reset_peak_rss();
        let t = Instant::now();
        let node = scan_bytes(&c.bytes, Options::default());
        let (_, verdict) = judge(&node, c.seed.map(|i| seeds[i].path.as_str()).unwrap_or("input"));
        let elapsed = t.elapsed();
        let rss = peak_rss_kib();
        if rss > rss_limit {
            let _ = writeln!(out, "M {case} {} KiB for {} bytes: {}", rss, c.bytes.len(), c.desc);
        }
        if elapsed > Duration::from_secs(1) {
            let _ =
                writeln!(out, "T {case} {} ms for {} bytes: {}", elapsed.as_millis(), c.bytes.len(), c.desc);
        }
        if c.must_fail && verdict == Verdict::Pass {
            let s = c.seed.map(|i| seeds[i].path.as_str()).unwrap_or("-");
            let _ = writeln!(out, "S {case} {s}: {}", c.desc);
        }
    }
    let _ = writeln!(out, "END");
}

#[derive(Default)]
struct Shared {
    last: Option<u64>,
    since: Option<Instant>,
    cases: u64,
    kinds: BTreeMap<String, u64>,
    reports: Vec<String>,
    ended: bool,
}

fn spawn_worker(exe: &Path, args: &Args, start: u64, end: u64, as_mib: u64, log: &Path) -> Child {
    let mut worker_args: Vec<String> =
        vec!["worker".into(), "--start".into(), start.to_string(), "--end".into(), end.to_string()];
    for key in ["--seed", "--rss-mib", "--corpus"] {
        if let Some(v) = args.get(key) {
            worker_args.push(key.into());
            worker_args.push(v.into());
        }
    }
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
    let prlimit = Path::new("/usr/bin/prlimit").exists() && as_mib > 0;
    let mut cmd = if prlimit {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={}", as_mib << 20)).arg("--").arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args(&worker_args).stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn worker")
}

fn supervise(args: &Args) {
    let exe = std::env::current_exe().expect("exe");
    let cases = args.num("--cases", 100_000);
    let first = args.num("--first", 0);
    let workers = args.num("--workers", 2).max(1);
    let seed = args.num("--seed", 1);
    let timeout = Duration::from_secs(args.num("--timeout", 10));
    let as_mib = args.num("--as-mib", 4096);
    let out_dir = PathBuf::from(args.get("--out").unwrap_or("target/fuzz"));
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let started = Instant::now();
    let per = cases.div_ceil(workers);
    let mut handles = Vec::new();
    let totals = Arc::new(Mutex::new(Shared::default()));
    let live = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for w in 0..workers {
        let (lo, hi) = (first + w * per, (first + (w + 1) * per).min(first + cases));
        let exe = exe.clone();
        let args = Args(args.0.clone());
        let out_dir = out_dir.clone();
        let totals = Arc::clone(&totals);
        let live = Arc::clone(&live);
        handles.push(std::thread::spawn(move || {
            let log = out_dir.join(format!("worker{w}.stderr"));
            let mut next = lo;
            while next < hi {
                let shared = Arc::new(Mutex::new(Shared::default()));
                let mut child = spawn_worker(&exe, &args, next, hi, as_mib, &log);
                let stdout = child.stdout.take().expect("stdout");
                let reader = {
                    let shared = Arc::clone(&shared);
                    let live = Arc::clone(&live);
                    std::thread::spawn(move || {
                        for line in BufReader::new(stdout).lines() {
                            let Ok(line) = line else { break };
                            let mut s = shared.lock().unwrap();
                            if let Some(rest) = line.strip_prefix("C ") {
                                let mut parts = rest.splitn(2, ' ');
                                s.last = parts.next().and_then(|n| n.parse().ok());
                                s.since = Some(Instant::now());
                                s.cases += 1;
                                live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                *s.kinds.entry(parts.next().unwrap_or("?").to_string()).or_default() += 1;
                            } else if line == "END" {
                                s.ended = true;
                            } else {
                                eprintln!("fuzz: {line}");
                                s.reports.push(line);
                            }
                        }
                    })
                };
                let mut hung = false;
                let status = loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        break Some(status);
                    }
                    let stuck = {
                        let s = shared.lock().unwrap();
                        s.since.is_some_and(|t| t.elapsed() > timeout)
                    };
                    if stuck {
                        hung = true;
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                let _ = reader.join();
                let s = std::mem::take(&mut *shared.lock().unwrap());
                let mut t = totals.lock().unwrap();
                t.cases += s.cases;
                for (k, v) in s.kinds {
                    *t.kinds.entry(k).or_default() += v;
                }
                for r in &s.reports {
                    t.reports.push(r.clone());
                }
                drop(t);
                let finished = s.ended && status.is_some_and(|st| st.success());
                if finished {
                    break;
                }
                let Some(case) = s.last else { break };
                let what = if hung { "hang".to_string() } else { format!("crash ({:?})", status) };
                let file =
                    out_dir.join(format!("{}-s{seed}-c{case}.bin", if hung { "hang" } else { "crash" }));
                let built = Command::new(&exe)
                    .args(["case", "--seed", &seed.to_string(), "--case", &case.to_string(), "--out"])
                    .arg(&file)
                    .args(
                        args.get("--corpus")
                            .map(|c| vec!["--corpus".to_string(), c.to_string()])
                            .unwrap_or_default(),
                    )
                    .output();
                let desc =
                    built.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
                totals.lock().unwrap().reports.push(format!("X {case} {what}: {desc}"));
                eprintln!("fuzz: case {case}: {what}: {desc}");
                next = case + 1;
            }
        }));
    }
    // Progress.
    let done = Arc::new(Mutex::new(false));
    let progress = {
        let done = Arc::clone(&done);
        let totals = Arc::clone(&totals);
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !*done.lock().unwrap() {
                std::thread::sleep(Duration::from_millis(500));
                if last.elapsed() > Duration::from_secs(60) {
                    last = Instant::now();
                    let t = totals.lock().unwrap();
                    eprintln!(
                        "fuzz: {:.0} s, {} cases, {} reports so far",
                        started.elapsed().as_secs_f64(),
                        live.load(std::sync::atomic::Ordering::Relaxed),
                        t.reports.len()
                    );
                }
            }
        })
    };
    for h in handles {
        let _ = h.join();
    }
    *done.lock().unwrap() = true;
    let _ = progress.join();
    let t = totals.lock().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = String::new();
    summary.push_str(&format!(
        "seed {seed}, cases {first}..{}, {} scanned in {elapsed:.0} s ({:.0}/s), {workers} workers\n",
        first + cases,
        t.cases,
        t.cases as f64 / elapsed
    ));
    summary.push_str("cases by seed format (gen: = generated from scratch):\n");
    for (k, v) in &t.kinds {
        summary.push_str(&format!("  {k:24} {v}\n"));
    }
    summary.push_str(&format!("reports ({}):\n", t.reports.len()));
    for r in &t.reports {
        summary.push_str(&format!("  {r}\n"));
    }
    print!("{summary}");
    let _ = std::fs::write(out_dir.join(format!("summary-s{seed}-{first}.txt")), summary);
}
