//! Shared by the corpus tests: the fixture manifest and a scan with a time limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use modelgate_formats::{Node, Options};
use modelgate_policy::{FailOn, Finding, Policy, Verdict, evaluate};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

/// `tests/fixtures/manifest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub fixture: Vec<Fixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub path: String,
    pub kind: String,
    #[serde(default)]
    pub expect: Vec<String>,
    #[serde(default)]
    pub also_ok: Vec<String>,
    #[serde(default)]
    pub only: bool,
    pub verdict: String,
    pub recipe: String,
    /// Built by the tests rather than committed (too large to commit).
    #[serde(default)]
    pub generated: bool,
}

impl Fixture {
    pub fn malicious(&self) -> bool {
        self.kind == "malicious"
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn manifest() -> Manifest {
    let path = fixtures_dir().join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct Outcome {
    pub node: Node,
    pub findings: Vec<Finding>,
    pub verdict: Verdict,
}

/// Scans bytes under the built-in policy on another thread; a scan that takes longer than
/// `limit` is a hang.
pub fn scan_bytes_timed(bytes: Vec<u8>, name: &str, limit: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let display = name.to_string();
    std::thread::spawn(move || {
        let node = modelgate_formats::scan_bytes(&bytes, Options::default());
        let _ = tx.send(node);
    });
    let node = match rx.recv_timeout(limit) {
        Ok(node) => node,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{display}: scan did not finish within {limit:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{display}: scan panicked"),
    };
    outcome(node, &display)
}

pub fn outcome(node: Node, display: &str) -> Outcome {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| Policy::builtin().expect("built-in policy"));
    let findings = evaluate(&node, display, policy);
    let verdict = Verdict::of(&findings, FailOn::default());
    Outcome { node, findings, verdict }
}

/// A small deterministic PRNG (xorshift64*), so mutation tests are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// FNV-1a, to seed the PRNG from a fixture's path.
pub fn seed(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Runs the modelgate binary in `cwd`, without the variables a surrounding GitHub Actions job
/// would leak in (they switch on annotations and outputs).
pub fn modelgate(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run modelgate")
}

/// The exit code (-1 when killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A ustar archive of `files`.
pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}
