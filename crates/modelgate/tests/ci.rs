//! The files that put modelgate into pipelines, run for real: the GitHub Action's entry point
//! (`action/run.sh`), the GitLab CI template's job scripts, the pre-commit hooks, `modelgate
//! enforce`, and the linters of every CI file (`support/lint/ci-files.py`: actionlint, the
//! SchemaStore schemas for workflows, actions and GitLab CI, hadolint, shellcheck).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelgate")
}

/// The process environment without anything a surrounding CI run would leak into the test.
fn clean(cmd: &mut Command) -> &mut Command {
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_WORKSPACE",
        "GITHUB_JOB",
        "CI_PROJECT_DIR",
        "RUNNER_TEMP",
        "MODELGATE_RELEASE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn lint_tool(args: &[&str], cwd: &Path, path: Option<&Path>) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("support/lint/ci-files.py")).args(args).current_dir(cwd);
    if let Some(dir) = path {
        let joined = std::env::join_paths(
            std::iter::once(dir.to_path_buf())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        cmd.env("PATH", joined);
    }
    clean(&mut cmd).output().expect("python3 runs support/lint/ci-files.py")
}

/// A directory holding only a `modelgate` executable, to put on PATH as the tool would be.
fn bin_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(bin(), dir.join("modelgate")).unwrap();
    dir
}

#[test]
fn ci_files_pass_their_linters() {
    let out = lint_tool(&[], &root(), None);
    assert!(out.status.success(), "support/lint/ci-files.py:\n{}", text(&out));
}

#[test]
fn enforce_exits_with_the_verdict_the_report_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    for (example, cwd, expected) in
        [("malicious-model", root(), 1), ("benign-model", root().join("examples/benign-model"), 0)]
    {
        let report = tmp.path().join(format!("{example}.json"));
        let scan = clean(Command::new(bin()).current_dir(&cwd))
            .args(["scan", root().join("examples").join(example).to_str().unwrap(), "--json"])
            .arg(&report)
            .output()
            .unwrap();
        assert_eq!(scan.status.code(), Some(expected), "{}", text(&scan));
        let enforce = clean(Command::new(bin()).arg("enforce").arg(&report)).output().unwrap();
        assert_eq!(enforce.status.code(), Some(expected), "{}", text(&enforce));
        let word = if expected == 0 { "PASS" } else { "FAIL" };
        assert!(text(&enforce).starts_with(&format!("modelgate: {word}")), "{}", text(&enforce));
    }

    // Anything but a modelgate report is the gate failing to run, not a verdict.
    let missing = tmp.path().join("missing.json");
    let not_json = tmp.path().join("not.json");
    std::fs::write(&not_json, "{").unwrap();
    let other_json = tmp.path().join("other.json");
    std::fs::write(&other_json, r#"{"verdict":"pass"}"#).unwrap();
    let bad_verdict = tmp.path().join("verdict.json");
    std::fs::write(&bad_verdict, r#"{"report_version":1,"verdict":"maybe","summary":{}}"#).unwrap();
    for path in [&missing, &not_json, &other_json, &bad_verdict] {
        let out = clean(Command::new(bin()).arg("enforce").arg(path)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}: {}", path.display(), text(&out));
    }
}

/// Runs `action/run.sh` as the composite action's first step does: inputs as MG_* variables,
/// GitHub's files for outputs and the summary.
fn run_action(cwd: &Path, tmp: &Path, inputs: &[(&str, &str)]) -> (Output, String, String) {
    run_script(&root().join("action/run.sh"), cwd, tmp, inputs)
}

fn run_script(script: &Path, cwd: &Path, tmp: &Path, inputs: &[(&str, &str)]) -> (Output, String, String) {
    let output = tmp.join("github_output");
    let summary = tmp.join("step_summary");
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(&summary);
    let mut cmd = Command::new("bash");
    clean(&mut cmd)
        .arg(script)
        .current_dir(cwd)
        .env("MODELGATE_BIN", bin())
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (k, v) in inputs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (out, read(&output), read(&summary))
}

/// The step outputs as the Actions runner reads `$GITHUB_OUTPUT`: `name=value` lines and
/// `name<<DELIMITER` blocks; a name set twice keeps the last value.
fn outputs_as_github_reads_them(file: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = file.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let delimiter = &line[h + 2..];
                let mut value = Vec::new();
                for l in lines.by_ref() {
                    if l == delimiter {
                        break;
                    }
                    value.push(l);
                }
                out.insert(line[..h].to_string(), value.join("\n"));
            }
            _ => panic!("the runner rejects the output line {line:?}"),
        }
    }
    out
}

#[test]
fn action_records_the_verdict_outputs_and_reports_without_failing_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let sarif = tmp.path().join("modelgate.sarif");
    let sbom = tmp.path().join("modelgate.cdx.json");
    let (out, outputs, summary) = run_action(
        &root(),
        tmp.path(),
        &[
            ("MG_PATHS", "examples/malicious-model"),
            ("MG_SARIF_FILE", sarif.to_str().unwrap()),
            ("MG_SBOM_FILE", sbom.to_str().unwrap()),
            ("MG_SBOM_SPEC", "1.6"),
        ],
    );
    // The step succeeds on a policy failure: the action's last step turns `verdict` into the failure.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(outputs.contains("verdict=fail\n"), "{outputs}");
    assert!(outputs.lines().any(|l| l.strip_prefix("findings=").is_some_and(|n| n != "0")), "{outputs}");
    let read = outputs_as_github_reads_them(&outputs);
    assert_eq!(read["sarif-file"], sarif.display().to_string(), "{outputs}");
    assert_eq!(read["sbom-file"], sbom.display().to_string(), "{outputs}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("::error file=examples/malicious-model/pytorch_model.bin")
    );
    assert!(summary.contains("MG101"), "{summary}");
    let sarif: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let bom: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.6");

    // The benign example, with its own policy (pins required) and `locked: true`.
    let (out, outputs, summary) = run_action(
        &root().join("examples/benign-model"),
        tmp.path(),
        &[("MG_PATHS", "."), ("MG_LOCKED", "true"), ("MG_SARIF_FILE", ""), ("MG_SBOM_FILE", "")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(outputs.contains("verdict=pass\nfindings=0\n"), "{outputs}");
    assert_eq!(outputs_as_github_reads_them(&outputs)["sarif-file"], "", "{outputs}");
    assert!(summary.contains("PASS"), "{summary}");

    // Several paths in one input, split on whitespace.
    let (out, outputs, _) = run_action(
        &root(),
        tmp.path(),
        &[("MG_PATHS", "examples/benign-model/model.pt  examples/malicious-model"), ("MG_SARIF_FILE", "")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(outputs.contains("verdict=fail\n"), "{outputs}");

    // The gate failing to run fails the step (exit 2), with an error annotation.
    for inputs in [
        [("MG_PATHS", "examples"), ("MG_FAIL_ON", "sometimes")],
        [("MG_PATHS", "no/such/dir"), ("MG_FAIL_ON", "")],
    ] {
        let (out, _, _) = run_action(&root(), tmp.path(), &inputs);
        assert_eq!(out.status.code(), Some(2), "{inputs:?}: {}", text(&out));
        assert!(text(&out).contains("::error title=modelgate::the scan could not run"), "{}", text(&out));
    }
    let (out, _, _) = run_action(&root(), tmp.path(), &[("MODELGATE_BIN", ""), ("MG_VERSION", "latest")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("version must be X.Y.Z or source"), "{}", text(&out));
}

/// `paths: |` in a workflow is one path per line: every line is scanned, so a malicious model on
/// the second line fails the gate.
#[test]
fn action_scans_every_line_of_a_paths_block() {
    let tmp = tempfile::tempdir().unwrap();
    for paths in [
        "examples/benign-model\nexamples/malicious-model\n",
        "examples/benign-model/model.pt\r\n\texamples/malicious-model/pytorch_model.bin",
        "\n  examples/benign-model\n\n  examples/malicious-model\n",
    ] {
        let (out, outputs, _) = run_action(
            &root(),
            tmp.path(),
            &[("MG_PATHS", paths), ("MG_SARIF_FILE", ""), ("MG_SBOM_FILE", "")],
        );
        assert_eq!(out.status.code(), Some(0), "{paths:?}: {}", text(&out));
        assert_eq!(outputs_as_github_reads_them(&outputs)["verdict"], "fail", "{paths:?}: {outputs}");
        assert!(text(&out).contains("pytorch_model.bin"), "{paths:?}: {}", text(&out));
    }
    // A path that looks like an option is still a path.
    let (out, _, _) =
        run_action(&root(), tmp.path(), &[("MG_PATHS", "--fail-on=none"), ("MG_SARIF_FILE", "")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Booleans are `true` or `false`; `True`, `yes`, `1` would silently mean "off" in the action's
/// `== 'true'` expressions, so they stop the gate instead.
#[test]
fn action_refuses_booleans_other_than_true_and_false() {
    let tmp = tempfile::tempdir().unwrap();
    for (input, value) in [
        ("MG_LOCKED", "True"),
        ("MG_LOCKED", "yes"),
        ("MG_LOCKED", "1"),
        ("MG_LOCKED", ""),
        ("MG_UPLOAD_SARIF", "TRUE"),
        ("MG_UPLOAD_SARIF", "no"),
    ] {
        let (out, outputs, _) =
            run_action(&root(), tmp.path(), &[("MG_PATHS", "examples/benign-model"), (input, value)]);
        assert_eq!(out.status.code(), Some(2), "{input}={value}: {}", text(&out));
        assert!(text(&out).contains("must be true or false"), "{}", text(&out));
        assert!(!outputs.contains("verdict"), "{outputs}");
    }
    let (out, _, _) = run_action(
        &root().join("examples/benign-model"),
        tmp.path(),
        &[("MG_LOCKED", "true"), ("MG_UPLOAD_SARIF", "false"), ("MG_SARIF_FILE", "")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// No input can forge an output: a value with a newline is refused, and every value is written in
/// the delimiter form, read back as GitHub reads it.
#[test]
fn action_outputs_cannot_be_forged_by_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = format!("{}\nverdict=pass", tmp.path().join("x.sarif").display());
    for input in ["MG_SARIF_FILE", "MG_JSON_FILE", "MG_SBOM_FILE", "MG_CATEGORY", "MG_POLICY"] {
        let (out, outputs, _) =
            run_action(&root(), tmp.path(), &[("MG_PATHS", "examples/malicious-model"), (input, &forged)]);
        let read = outputs_as_github_reads_them(&outputs);
        assert_ne!(read.get("verdict").map(String::as_str), Some("pass"), "{input}: {outputs}");
        assert_eq!(out.status.code(), Some(2), "{input}: {}", text(&out));
        assert!(text(&out).contains("must be one line"), "{}", text(&out));
    }
    // Odd but legal one-line values come back unchanged.
    let json = tmp.path().join("a=b<<c.json");
    let (out, outputs, _) = run_action(
        &root(),
        tmp.path(),
        &[
            ("MG_PATHS", "examples/malicious-model"),
            ("MG_JSON_FILE", json.to_str().unwrap()),
            ("MG_SARIF_FILE", ""),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let read = outputs_as_github_reads_them(&outputs);
    assert_eq!(read["json-file"], json.display().to_string(), "{outputs}");
    assert_eq!(read["verdict"], "fail", "{outputs}");
    assert!(json.is_file());
}

/// `policy`, `lockfile`, `args` and `category`: what a pipeline passes on to the scan.
#[test]
fn action_passes_lockfile_args_and_a_category_per_scan() {
    let tmp = tempfile::tempdir().unwrap();
    // lockfile: a lockfile that is not there is the gate failing to run.
    let (out, _, _) = run_action(
        &root().join("examples/benign-model"),
        tmp.path(),
        &[("MG_LOCKED", "true"), ("MG_LOCKFILE", "other.lock"), ("MG_SARIF_FILE", "")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("other.lock"), "{}", text(&out));
    // args: extra scan arguments, split on whitespace.
    let (out, outputs, _) = run_action(
        &root(),
        tmp.path(),
        &[
            ("MG_PATHS", "examples/malicious-model"),
            ("MG_ARGS", "--fail-on\nnone  --jobs 1"),
            ("MG_SARIF_FILE", ""),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(outputs_as_github_reads_them(&outputs)["verdict"], "pass", "{outputs}");
    // Two jobs (or steps) scanning different folders get different categories, in the SARIF log
    // and in the output the upload step passes on; an explicit category is used as given.
    let mut seen = Vec::new();
    for (job, paths, category) in [
        ("models", "examples/benign-model", ""),
        ("models", "examples/malicious-model", ""),
        ("other", "examples/benign-model", ""),
        ("models", "examples/benign-model", "my-models"),
    ] {
        let sarif = tmp.path().join("c.sarif");
        let mut inputs =
            vec![("MG_PATHS", paths), ("MG_SARIF_FILE", sarif.to_str().unwrap()), ("MG_CATEGORY", category)];
        inputs.push(("GITHUB_JOB", job));
        let (out, outputs, _) = run_action(&root(), tmp.path(), &inputs);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let log: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
        let id = log["runs"][0]["automationDetails"]["id"].as_str().unwrap().to_string();
        assert_eq!(outputs_as_github_reads_them(&outputs)["category"], id, "{outputs}");
        if !category.is_empty() {
            assert_eq!(id, category);
        }
        assert!(!seen.contains(&id), "{id} twice");
        seen.push(id);
    }
}

/// The archive name of a release for this machine, as action/run.sh picks it.
fn release_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
        ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

/// `version: X.Y.Z` at a commit whose action/checksums.txt does not list that release (the tagged
/// commit itself): the archive runs only when GitHub's artifact attestation names this
/// repository's release workflow at tag vX.Y.Z. A listed release must match its checksum, whatever
/// an attestation says. The download is a file:// URL and `gh` a stand-in that records its
/// arguments, so the test needs no network.
#[test]
fn action_release_download_is_checked_by_checksum_or_attestation() {
    let tmp = tempfile::tempdir().unwrap();
    let version = "9.8.7";
    let asset = format!("modelgate-{version}-{}.tar.gz", release_target());
    let releases = tmp.path().join("releases");
    let dir = releases.join(format!("v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // The released "binary": a stand-in that runs the binary under test (small to pack).
    std::fs::write(staging.join("modelgate"), format!("#!/bin/sh\nexec '{}' \"$@\"\n", bin())).unwrap();
    Command::new("chmod").arg("+x").arg(staging.join("modelgate")).status().unwrap();
    let tar = Command::new("tar")
        .args(["-czf", dir.join(&asset).to_str().unwrap(), "-C", staging.to_str().unwrap(), "modelgate"])
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar));
    let sha = Command::new("sha256sum").arg(dir.join(&asset)).output().unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap().split_whitespace().next().unwrap().to_string();

    // A copy of the action with checksums.txt as a test needs it.
    let action = tmp.path().join("action");
    std::fs::create_dir_all(&action).unwrap();
    std::fs::copy(root().join("action/run.sh"), action.join("run.sh")).unwrap();
    let fake_gh = tmp.path().join("fake-gh");
    std::fs::create_dir_all(&fake_gh).unwrap();
    let gh_log = tmp.path().join("gh.log");
    let write_gh = |exit: i32| {
        let script = fake_gh.join("gh");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit {exit}\n", gh_log.display()))
            .unwrap();
        Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    };
    let path = format!("{}:{}", fake_gh.display(), std::env::var("PATH").unwrap());
    let url = format!("file://{}", releases.display());
    let run = |checksums: &str| {
        std::fs::write(action.join("checksums.txt"), checksums).unwrap();
        let _ = std::fs::remove_file(&gh_log);
        let runner_temp = tmp.path().join("runner-temp");
        let (out, outputs, _) = run_script(
            &action.join("run.sh"),
            &root(),
            tmp.path(),
            &[
                ("MODELGATE_BIN", ""),
                ("MODELGATE_RELEASE_URL", &url),
                ("RUNNER_TEMP", runner_temp.to_str().unwrap()),
                ("PATH", &path),
                ("MG_VERSION", version),
                ("MG_PATHS", "examples/malicious-model"),
                ("MG_SARIF_FILE", ""),
            ],
        );
        (out, outputs, std::fs::read_to_string(&gh_log).unwrap_or_default())
    };

    // Not listed, attestation verified: runs.
    write_gh(0);
    let (out, outputs, gh) = run("# none\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(outputs_as_github_reads_them(&outputs)["verdict"], "fail", "{outputs}");
    assert!(gh.starts_with("attestation verify "), "{gh}");
    for part in [
        "--repo modelgate/modelgate",
        "--signer-workflow modelgate/modelgate/.github/workflows/release.yml",
        &format!("--source-ref refs/tags/v{version}"),
        "--deny-self-hosted-runners",
    ] {
        assert!(gh.contains(part), "{part}: {gh}");
    }
    // Not listed, attestation refused: exit 2, nothing run.
    write_gh(1);
    let (out, outputs, _) = run("");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no valid attestation"), "{}", text(&out));
    assert!(!outputs.contains("verdict"), "{outputs}");
    // Listed: the checksum decides, gh is not asked.
    let (out, _, gh) = run(&format!("{sha}  {asset}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(gh.is_empty(), "{gh}");
    write_gh(0);
    let wrong = format!("{}  {asset}\n", "0".repeat(64));
    let (out, outputs, _) = run(&wrong);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("refusing to run it"), "{}", text(&out));
    assert!(!outputs.contains("verdict"), "{outputs}");
}

/// `version: source` runs the build the action restored from the Actions cache, without cargo.
#[test]
fn action_source_build_comes_from_the_cache_when_present() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("build-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("modelgate"), format!("#!/bin/sh\nexec '{}' \"$@\"\n", bin())).unwrap();
    Command::new("chmod").arg("+x").arg(cache.join("modelgate")).status().unwrap();
    let (out, outputs, _) = run_action(
        &root(),
        tmp.path(),
        &[
            ("MODELGATE_BIN", ""),
            ("MG_VERSION", "source"),
            ("MG_BUILD_CACHE", cache.to_str().unwrap()),
            ("PATH", "/usr/bin:/bin"), // no cargo: a build would fail
            ("MG_PATHS", "examples/malicious-model"),
            ("MG_SARIF_FILE", ""),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(outputs_as_github_reads_them(&outputs)["verdict"], "fail", "{outputs}");
}

/// `actions/checkout` without `lfs: true` leaves pointer files: the action fails the gate and
/// says why, rather than passing an empty scan.
#[test]
fn action_on_a_checkout_without_lfs_reports_the_pointers() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("model.safetensors"),
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d9e442de408bf2971fd76b3f6d52122be5d1d3f725d462fe056f8745f52035b\nsize 2461\n",
    )
    .unwrap();
    let (out, outputs, summary) =
        run_action(&repo, tmp.path(), &[("MG_PATHS", "."), ("MG_SARIF_FILE", ""), ("MG_SBOM_FILE", "")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(outputs.contains("verdict=fail\n"), "{outputs}");
    assert!(summary.contains("MG008"), "{summary}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("title=MG008"), "{}", text(&out));
}

/// The GitLab template's two jobs, their scripts run by a POSIX shell as the runner would.
#[test]
fn gitlab_template_scan_job_records_and_gate_job_enforces() {
    let template = root().join("ci/gitlab/modelgate.gitlab-ci.yml");
    let script = |job: &str| {
        let out = lint_tool(&["gitlab-script", template.to_str().unwrap(), job], &root(), None);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let (scan, gate) = (script("modelgate_scan"), script("modelgate_gate"));
    let tmp = tempfile::tempdir().unwrap();
    let path = bin_dir(tmp.path());
    for (example, expected) in [("malicious-model", 1), ("benign-model", 0)] {
        let work = tmp.path().join(example);
        copy_dir(&root().join("examples").join(example), &work);
        let job = |script: &str| {
            let mut cmd = Command::new("sh");
            clean(&mut cmd)
                .args(["-e", "-c", script])
                .current_dir(&work)
                .env("PATH", format!("{}:/usr/bin:/bin", path.display()))
                .env("MODELGATE_PATHS", ".")
                .env("MODELGATE_FAIL_ON", "high")
                .env("MODELGATE_ARGS", "")
                .output()
                .unwrap()
        };
        let out = job(&scan);
        assert_eq!(out.status.code(), Some(0), "{example}: scan job: {}", text(&out));
        for report in [
            "gl-modelgate.json",
            "gl-codequality-modelgate.json",
            "gl-junit-modelgate.xml",
            "gl-sast-modelgate.json",
            "gl-sbom-modelgate.cdx.json",
            "gl-modelgate.sarif",
        ] {
            assert!(work.join(report).is_file(), "{example}: {report} missing");
        }
        let out = job(&gate);
        assert_eq!(out.status.code(), Some(expected), "{example}: gate job: {}", text(&out));
    }

    // A bad argument is exit 2, and the scan job itself fails.
    let work = tmp.path().join("benign-model");
    let out = clean(Command::new("sh").args(["-e", "-c", &scan]))
        .current_dir(&work)
        .env("PATH", format!("{}:/usr/bin:/bin", path.display()))
        .env("MODELGATE_PATHS", ".")
        .env("MODELGATE_FAIL_ON", "sometimes")
        .env("MODELGATE_ARGS", "")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
}

/// The pre-commit hooks, through `pre-commit try-repo` against this checkout.
#[test]
fn pre_commit_hooks_fail_a_commit_of_a_malicious_model() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bin_dir(tmp.path());
    let repo = tmp.path().join("repo");
    copy_dir(&root().join("examples/malicious-model"), &repo);
    std::fs::copy(root().join("examples/benign-model/model.pt"), repo.join("model.pt")).unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&repo, &["init", "--quiet"]);
    git(&repo, &["add", "."]);
    // The hooks as a repository of their own, so the test does not depend on this checkout being
    // a git repository or on what is committed in it.
    let hooks = tmp.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(root().join(".pre-commit-hooks.yaml"), hooks.join(".pre-commit-hooks.yaml")).unwrap();
    git(&hooks, &["init", "--quiet"]);
    git(&hooks, &["add", "."]);
    git(&hooks, &["commit", "--quiet", "-m", "hooks"]);

    let hook = |files: &[&str]| {
        let mut args = vec!["pre-commit", "try-repo", hooks.to_str().unwrap(), "modelgate", "--files"];
        args.extend_from_slice(files);
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("support/lint/ci-files.py")).args(&args).current_dir(&repo);
        cmd.env("PATH", format!("{}:{}", path.display(), std::env::var("PATH").unwrap()))
            .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"));
        clean(&mut cmd).output().unwrap()
    };
    let out = hook(&["model.pt", "config.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hook(&["pytorch_model.bin", "model.pt"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("MG101"), "{}", text(&out));
    // Content decides, not the name: a malicious pickle named weights.dat is caught, a README
    // passes.
    std::fs::write(repo.join("weights.dat"), b"cposix\nsystem\n(S'echo pwned'\ntR.").unwrap();
    std::fs::write(repo.join("README.md"), "# models\n").unwrap();
    git(&repo, &["add", "."]);
    let out = hook(&["README.md"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hook(&["README.md", "weights.dat"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("weights.dat") && text(&out).contains("MG101"), "{}", text(&out));
}

/// `modelgate lock` then the locked hook in an ordinary repository (a README, a policy, the
/// lockfile itself): the gate's own files and documents outside the pinned models are no pinning
/// findings; a changed model is.
#[test]
fn locked_hook_passes_after_lock_and_fails_on_a_changed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bin_dir(tmp.path());
    let repo = tmp.path().join("repo");
    copy_dir(&root().join("examples/benign-model"), &repo.join("models"));
    std::fs::write(repo.join("README.md"), "# an ordinary repository\n").unwrap();
    std::fs::write(repo.join("modelgate.toml"), "fail-on = \"high\"\n").unwrap();
    let _ = std::fs::remove_file(repo.join("models/modelgate.lock"));
    let _ = std::fs::remove_file(repo.join("models/modelgate.toml"));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "--quiet"]);
    // `lock .` pins the directory; `lock` of an empty selection says so.
    std::fs::create_dir_all(repo.join("empty")).unwrap();
    let out = clean(Command::new(bin()).args(["lock", "empty"]).current_dir(&repo)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nothing to pin under empty"), "{}", text(&out));
    for paths in [&["."][..], &["models"]] {
        let _ = std::fs::remove_file(repo.join("modelgate.lock"));
        let out = clean(Command::new(bin()).arg("lock").args(paths).current_dir(&repo)).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let lock = std::fs::read_to_string(repo.join("modelgate.lock")).unwrap();
        assert!(
            !lock.contains("path = \"modelgate.lock\"") && !lock.contains("path = \"modelgate.toml\""),
            "{lock}"
        );
        let out =
            clean(Command::new(bin()).args(["scan", "--locked", "."]).current_dir(&repo)).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "lock {paths:?}: {}", text(&out));
    }
    git(&["add", "."]);
    let hooks = tmp.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(root().join(".pre-commit-hooks.yaml"), hooks.join(".pre-commit-hooks.yaml")).unwrap();
    for args in [&["init", "--quiet"][..], &["add", "."], &["commit", "--quiet", "-m", "hooks"]] {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&hooks)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let hook = || {
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("support/lint/ci-files.py"))
            .args(["pre-commit", "try-repo", hooks.to_str().unwrap(), "modelgate-locked", "--all-files"])
            .current_dir(&repo)
            .env("PATH", format!("{}:{}", path.display(), std::env::var("PATH").unwrap()))
            .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"));
        clean(&mut cmd).output().unwrap()
    };
    let out = hook();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(repo.join("models/config.json"), "{\"changed\": true}\n").unwrap();
    let out = hook();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("MG70"), "{}", text(&out));
}

/// The GitLab template run by gitlab-ci-local (npm; shell executor, the modelgate binary on PATH
/// standing in for the image): the gate job fails the pipeline on a malicious model, the policy's
/// `fail-on` wins unless MODELGATE_FAIL_ON is set, and the jobs run only in merge-request and
/// default-branch pipelines.
#[test]
fn gitlab_template_runs_in_gitlab_ci_local() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bin_dir(tmp.path());
    let repo_with = |name: &str, models: &[PathBuf], policy: Option<&str>| {
        let repo = tmp.path().join(name);
        std::fs::create_dir_all(repo.join("models")).unwrap();
        for m in models {
            std::fs::copy(m, repo.join("models").join(m.file_name().unwrap())).unwrap();
        }
        std::fs::copy(root().join("ci/gitlab/modelgate.gitlab-ci.yml"), repo.join("modelgate.gitlab-ci.yml"))
            .unwrap();
        std::fs::write(
            repo.join(".gitlab-ci.yml"),
            "include:\n  - local: modelgate.gitlab-ci.yml\nvariables:\n  MODELGATE_PATHS: models\n",
        )
        .unwrap();
        if let Some(p) = policy {
            std::fs::write(repo.join("modelgate.toml"), p).unwrap();
        }
        for args in
            [&["init", "--quiet", "-b", "main"][..], &["add", "-A"], &["commit", "--quiet", "-m", "x"]]
        {
            let out = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@example.invalid",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(&repo)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {}", text(&out));
        }
        repo
    };
    let pipeline = |repo: &Path, extra: &[&str]| {
        let mut args = vec!["gitlab-ci-local", "--force-shell-executor", "--shell-isolation"];
        args.extend_from_slice(extra);
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("support/lint/ci-files.py"))
            .args(&args)
            .current_dir(repo)
            .env("PATH", format!("{}:{}", path.display(), std::env::var("PATH").unwrap()));
        clean(&mut cmd).output().unwrap()
    };
    let ex = |p: &str| root().join("examples").join(p);

    let bad = repo_with("bad", &[ex("malicious-model/pytorch_model.bin"), ex("benign-model/model.pt")], None);
    let out = pipeline(&bad, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("PASS  modelgate_scan") && text(&out).contains("FAIL  modelgate_gate"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("MG101"), "{}", text(&out));

    let good = repo_with("good", &[ex("benign-model/model.pt")], None);
    let out = pipeline(&good, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("PASS  modelgate_gate"), "{}", text(&out));

    // A stricter policy: a medium finding fails the gate unless the variable overrides it.
    let medium = root().join("tests/fixtures/benign/anomalies/state_dict_crc32_disabled.pt");
    let strict = repo_with("strict", &[medium], Some("fail-on = \"medium\"\n"));
    let out = pipeline(&strict, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("FAIL  modelgate_gate"), "{}", text(&out));
    let out = pipeline(&strict, &["--variable", "MODELGATE_FAIL_ON=high"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Other branches without a merge request: no modelgate jobs.
    let out = Command::new("git")
        .args(["checkout", "--quiet", "-b", "feature"])
        .current_dir(&bad)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = pipeline(&bad, &[]);
    assert!(!text(&out).contains("modelgate_gate starting"), "{}", text(&out));
    let out = pipeline(&bad, &["--variable", "CI_PIPELINE_SOURCE=merge_request_event"]);
    assert!(text(&out).contains("FAIL  modelgate_gate"), "{}", text(&out));
}

/// CLI conventions: completions and a man page from the clap definitions, listed in `--help`;
/// `--version` with the commit and the rule-data digest; `--color` and `NO_COLOR`; the text
/// report's whole fix and `explain` hint; `policy check --policy F` like `scan --policy F`.
#[test]
fn cli_completions_man_version_colour_and_hints() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(bin());
        clean(&mut cmd).args(args).current_dir(root()).env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let help = String::from_utf8(run(&["--help"], &[]).stdout).unwrap();
    assert!(help.contains("completions") && help.contains("man") && help.contains("--color"), "{help}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("modelgate") && script.contains("sarif-category"), "{shell}");
    }
    let bash = std::process::Command::new("bash")
        .args(["-n", "-c", &String::from_utf8(run(&["completions", "bash"], &[]).stdout).unwrap()])
        .output()
        .unwrap();
    assert!(bash.status.success(), "bash completion does not parse: {}", text(&bash));
    let man = String::from_utf8(run(&["man"], &[]).stdout).unwrap();
    assert!(man.contains(".TH modelgate 1") && man.contains("scan"), "{man}");
    let version = String::from_utf8(run(&["--version"], &[]).stdout).unwrap();
    let rules = version.split("rules ").nth(1).map(|r| r.trim_end_matches([')', '\n']).to_string());
    assert!(
        version.starts_with(&format!("modelgate {} (", env!("CARGO_PKG_VERSION")))
            && rules.is_some_and(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_hexdigit())),
        "{version}"
    );

    let scan = |colour: &str, env: &[(&str, &str)]| {
        String::from_utf8(run(&["scan", "examples/malicious-model", "--color", colour], env).stdout).unwrap()
    };
    let painted = scan("always", &[]);
    assert!(painted.contains("\x1b[1;31mFAIL\x1b[0m"), "{painted}");
    // auto: standard output is a pipe here, and NO_COLOR is honoured either way.
    for out in [scan("never", &[]), scan("auto", &[]), scan("auto", &[("NO_COLOR", "1")])] {
        assert!(!out.contains('\x1b'), "{out}");
    }
    let plain = scan("never", &[]);
    assert!(plain.contains("more: modelgate explain MG101"), "{plain}");
    assert!(plain.contains("There is no reason to allow-list a denied global."), "whole fix: {plain}");

    let policy = root().join("examples/benign-model/modelgate.toml");
    let out = run(&["policy", "check", "--policy", policy.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("require-pins true"), "{}", text(&out));
    let out = run(&["policy", "check", "--policy", "no/such.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// The sample sessions (```console blocks) in README.md and docs/getting-started.md are what the
/// commands print: each `$ modelgate …` runs in a copy of examples/, `$ cd DIR` moves, `$ echo $?`
/// prints the last exit code. `…` in a sample line stands for any text.
#[test]
fn docs_sample_outputs_are_what_the_commands_print() {
    fn matches(want: &str, got: &str) -> bool {
        let parts: Vec<&str> = want.split('…').collect();
        if parts.len() == 1 {
            return want == got;
        }
        let mut rest = match got.strip_prefix(parts[0]) {
            Some(r) => r,
            None => return false,
        };
        for (i, part) in parts.iter().enumerate().skip(1) {
            if i == parts.len() - 1 {
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
    for doc in ["README.md", "docs/getting-started.md"] {
        let text_of_doc = std::fs::read_to_string(root().join(doc)).unwrap();
        let blocks: Vec<&str> =
            text_of_doc.split("```console\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
        assert!(!blocks.is_empty(), "{doc} has no console sample");
        for block in blocks {
            let tmp = tempfile::tempdir().unwrap();
            fn copy_tree(from: &Path, to: &Path) {
                std::fs::create_dir_all(to).unwrap();
                for e in std::fs::read_dir(from).unwrap() {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        copy_tree(&e.path(), &to.join(e.file_name()));
                    } else {
                        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
                    }
                }
            }
            copy_tree(&root().join("examples"), &tmp.path().join("examples"));
            let mut cwd = tmp.path().to_path_buf();
            let mut last = 0;
            let mut got = String::new();
            let mut want = String::new();
            for line in block.lines() {
                let Some(cmd) = line.strip_prefix("$ ") else {
                    want.push_str(line);
                    want.push('\n');
                    continue;
                };
                want.push_str(line);
                want.push('\n');
                got.push_str(line);
                got.push('\n');
                let words: Vec<&str> = cmd.split_whitespace().collect();
                match words.as_slice() {
                    ["cd", dir] => cwd = cwd.join(dir),
                    ["echo", "$?"] => got.push_str(&format!("{last}\n")),
                    ["modelgate", args @ ..] => {
                        let out = clean(Command::new(bin()).args(args).current_dir(&cwd)).output().unwrap();
                        last = out.status.code().unwrap();
                        got.push_str(&String::from_utf8_lossy(&out.stdout));
                        got.push_str(&String::from_utf8_lossy(&out.stderr));
                    }
                    other => panic!("{doc}: cannot run sample command {other:?}"),
                }
            }
            let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
            assert!(
                w.len() == g.len() && w.iter().zip(&g).all(|(w, g)| matches(w, g)),
                "{doc}: the sample differs from what the commands print.\n--- sample\n{want}--- printed\n{got}"
            );
        }
    }
}
