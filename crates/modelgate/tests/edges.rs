//! No fail-open edge (docs/policy.md, "Paths"): every spelling of a path meets the same policy,
//! directory links are followed, what the walk leaves out is counted, entries that matched
//! nothing are reported, and a closed pipe or a full disk ends with a documented exit code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{code, modelgate};

/// `posix.system("echo pwned")` as a protocol-0 pickle (threats.md P-02).
const EVIL_P0: &[u8] = b"cposix\nsystem\n(S'echo pwned'\ntR.";
/// `mylab.models.Net()`: a class no allow-list knows (high, not critical).
const UNLISTED: &[u8] = b"\x80\x04\x8c\x0cmylab.models\x8c\x03Net\x93)R.";

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).into_iter().filter_map(Result::ok) {
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// (path, rule) of every finding, sorted.
fn findings(r: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in r["artifacts"].as_array().unwrap() {
        for f in a["findings"].as_array().unwrap() {
            out.push((a["path"].as_str().unwrap().to_string(), f["rule"].as_str().unwrap().to_string()));
        }
    }
    out.sort();
    out
}

/// A repository with the signed model `models/tiny` (model.sig inside, P-256 key) whose README
/// was changed after signing, and a policy requiring `models/*` to be signed with that key.
fn tampered_signed_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("signing/model-with-sig"), &d.join("models/tiny"));
    copy_dir(&fixtures().join("signing/keys"), &d.join("keys"));
    let readme = d.join("models/tiny/README.md");
    let mut bytes = std::fs::read(&readme).unwrap();
    bytes.extend_from_slice(b"\ntampered\n");
    std::fs::write(&readme, bytes).unwrap();
    std::fs::write(
        d.join("modelgate.toml"),
        "[[signatures]]\npath = \"models/*\"\nkeys = [\"keys/p256.pub\"]\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_signature_table_holds_however_the_path_is_spelt() {
    let dir = tampered_signed_repo();
    let d = dir.path();
    let absolute = d.join("models/tiny").to_string_lossy().into_owned();
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.join("models"), d.join("linked")).unwrap();
    let mut spellings = vec![
        "models/tiny",
        "./models/tiny",
        "models/./tiny",
        "models//tiny",
        "models/../models/tiny",
        "models/tiny/.",
        "models/tiny/",
        absolute.as_str(),
    ];
    if cfg!(unix) {
        spellings.push("linked/tiny");
    }
    for spelling in spellings {
        let out = modelgate(&["scan", spelling, "--json", "-"], d);
        assert_eq!(code(&out), 1, "{spelling}: {}", text(&out));
        let r = report(&out);
        assert!(
            findings(&r).contains(&("models/tiny/README.md".into(), "MG804".into())),
            "{spelling}: {:?}",
            findings(&r)
        );
        assert_eq!(r["signatures"][0]["model"], "models/tiny", "{spelling}");
        assert!(
            r["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["path"].as_str().unwrap().starts_with("models/tiny/"))
        );
    }
}

#[test]
fn suppressions_and_excludes_match_every_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models/tmp")).unwrap();
    std::fs::write(d.join("models/net.pkl"), UNLISTED).unwrap();
    std::fs::write(d.join("models/tmp/evil.pkl"), EVIL_P0).unwrap();
    std::fs::write(
        d.join("modelgate.toml"),
        "exclude = [\"models/tmp/\"]\n\n[[suppress]]\nrule = \"MG102\"\npath = \"models/net.pkl\"\nreason = \"our own class\"\n",
    )
    .unwrap();
    let absolute = d.join("models").to_string_lossy().into_owned();
    for spelling in ["models", "./models", "models/.", "models/../models", absolute.as_str()] {
        let out = modelgate(&["scan", spelling, "--json", "-"], d);
        assert_eq!(code(&out), 0, "{spelling}: {}", text(&out));
        let r = report(&out);
        assert_eq!(r["artifacts"].as_array().unwrap().len(), 1, "{spelling}");
        assert_eq!(r["artifacts"][0]["path"], "models/net.pkl");
        assert_eq!(r["summary"]["suppressed"], 1, "{spelling}");
        assert_eq!(r["summary"]["skipped"]["excluded_directories"], 1, "{spelling}");
    }
}

#[test]
fn policy_paths_are_relative_to_the_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("repo/models")).unwrap();
    std::fs::create_dir_all(d.join("repo/ci")).unwrap();
    std::fs::write(d.join("repo/models/net.pkl"), UNLISTED).unwrap();
    std::fs::write(
        d.join("repo/modelgate.toml"),
        "[[suppress]]\nrule = \"MG102\"\npath = \"models/*.pkl\"\nreason = \"our own class\"\n",
    )
    .unwrap();
    // Whichever directory the scan runs from, the policy's paths mean the same files.
    for (cwd, policy, target) in [
        ("repo", "modelgate.toml", "models"),
        ("repo/ci", "../modelgate.toml", "../models"),
        (".", "repo/modelgate.toml", "repo/models/net.pkl"),
    ] {
        let out = modelgate(&["scan", target, "--policy", policy, "--json", "-"], &d.join(cwd));
        assert_eq!(code(&out), 0, "{cwd}: {}", text(&out));
        let r = report(&out);
        assert_eq!(r["artifacts"][0]["path"], "models/net.pkl", "{cwd}");
        assert!(r["unmatched"].as_array().unwrap().is_empty(), "{cwd}: {}", r["unmatched"]);
    }
}

#[cfg(unix)]
#[test]
fn directory_links_are_followed_and_a_link_out_of_the_tree_is_a_finding() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models/a")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::fs::write(d.join("models/a/net.pkl"), UNLISTED).unwrap();
    std::fs::write(d.join("elsewhere/evil.pkl"), EVIL_P0).unwrap();
    // A link out of the tree to a malicious pickle, a link inside it, and a loop.
    symlink("../../elsewhere", d.join("models/a/weights")).unwrap();
    symlink("a", d.join("models/b")).unwrap();
    symlink("..", d.join("models/a/up")).unwrap();
    let out = modelgate(&["scan", "models", "--json", "-"], d);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let r = report(&out);
    assert_eq!(
        findings(&r),
        [
            ("elsewhere/evil.pkl".to_string(), "MG101".to_string()),
            ("models/a/net.pkl".into(), "MG102".into()),
            ("models/a/weights".into(), "MG705".into()),
        ]
    );
    let link = r["artifacts"].as_array().unwrap().iter().find(|a| a["path"] == "models/a/weights").unwrap();
    assert_eq!(link["format"], "symlink");
    // models/b (a second way to models/a) and models/a/up (back to models) are walked once.
    assert_eq!(r["summary"]["skipped"]["repeated_directories"], 2);
    let out = modelgate(&["scan", "models"], d);
    assert!(text(&out).contains("2 directories reached again through a symbolic link"), "{}", text(&out));

    // An intended link can be accepted for its path; the suppression then counts as matched.
    std::fs::write(
        d.join("modelgate.toml"),
        "[[suppress]]\nrule = \"MG705\"\npath = \"models/a/weights\"\nreason = \"shared cache\"\n",
    )
    .unwrap();
    let r = report(&modelgate(&["scan", "models", "--json", "-"], d));
    assert_eq!(r["summary"]["suppressed"], 1);
    assert!(r["unmatched"].as_array().unwrap().is_empty(), "{}", r["unmatched"]);
}

#[test]
fn what_the_walk_leaves_out_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in [".git/config", ".git/objects/ab/cd", "models/x.pkl", "models/notes.md", "cache/y.pkl"] {
        std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
        std::fs::write(d.join(f), UNLISTED).unwrap();
    }
    std::fs::write(d.join("modelgate.toml"), "fail-on = \"none\"\nexclude = [\"*.md\", \"cache/\"]\n")
        .unwrap();
    let out = modelgate(&["scan", ".", "--json", "-"], d);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = report(&out);
    let skipped = &r["summary"]["skipped"];
    assert_eq!(skipped["git_directories"], 1);
    assert_eq!(skipped["excluded_files"], 1);
    assert_eq!(skipped["excluded_directories"], 1);
    let paths: Vec<&str> =
        r["artifacts"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["modelgate.toml", "models/x.pkl"]);
    let out = modelgate(&["scan", "."], d);
    assert!(
        text(&out).contains(
            "modelgate: not scanned: 1 .git directory, 1 file left out by include/exclude, 1 directory left out by exclude"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn entries_that_matched_nothing_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("signing/model-with-sig"), &d.join("models/tiny"));
    copy_dir(&fixtures().join("signing/keys"), &d.join("keys"));
    std::fs::write(d.join("models/net.pkl"), UNLISTED).unwrap();
    std::fs::write(
        d.join("modelgate.toml"),
        "fail-on = \"critical\"\n\n[[signatures]]\npath = \"model/*\"\nkeys = [\"keys/p256.pub\"]\n\n[[suppress]]\nrule = \"MG102\"\npath = \"models/nett.pkl\"\nreason = \"our own class\"\n",
    )
    .unwrap();
    std::fs::write(d.join("other.pt"), UNLISTED).unwrap();
    assert_eq!(code(&modelgate(&["lock", "models", "other.pt"], d)), 0);
    let out = modelgate(&["scan", "models", "--locked", "--json", "-"], d);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = report(&out);
    let unmatched: Vec<(String, String)> = r["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["table"].as_str().unwrap().to_string(), u["path"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        unmatched,
        [
            ("pin".into(), "other.pt".into()),
            ("signatures".into(), "model/*".into()),
            ("suppress".into(), "models/nett.pkl".into())
        ]
    );
    let out = modelgate(&["scan", "models", "--locked"], d);
    let t = text(&out);
    assert!(
        t.contains("modelgate: warning: [[signatures]] path \"model/*\" in modelgate.toml matched nothing that was scanned"),
        "{t}"
    );
    assert!(t.contains("the pinned model \"other.pt\" in modelgate.lock matched nothing"), "{t}");
}

/// Runs a scan of the examples with standard output a pipe whose reader is gone (`| head -c 1`
/// after its byte; closed before anything is written, so that the report cannot fit in the
/// pipe's buffer unnoticed).
fn scan_into_closed_pipe(extra: &[&str]) -> i32 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["scan", "examples"])
        .args(extra)
        .current_dir(&root)
        .env_remove("GITHUB_ACTIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn a_closed_pipe_or_a_full_disk_ends_with_a_documented_exit_code() {
    // A report on a closed pipe is incomplete: the gate could not do its job.
    assert_eq!(scan_into_closed_pipe(&["--sarif", "-"]), 2);
    assert_eq!(scan_into_closed_pipe(&["--json", "-"]), 2);
    // Only the human summary lost: the verdict stands (examples/ holds a malicious model).
    assert_eq!(scan_into_closed_pipe(&[]), 1);

    #[cfg(target_os = "linux")]
    if Path::new("/dev/full").exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = modelgate(&["scan", "examples", "--json", "/dev/full"], &root);
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(text(&out).contains("cannot write /dev/full"), "{}", text(&out));
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
            .args(["scan", "examples", "--sarif", "-"])
            .current_dir(&root)
            .env_remove("GITHUB_ACTIONS")
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(text(&out).contains("cannot write standard output"), "{}", text(&out));
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
            .args(["explain", "MG101"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{}", text(&out));
    }
}
