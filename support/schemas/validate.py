#!/usr/bin/env python3
"""Validates modelgate's reports against the official schemas, taken from registry packages.

    validate.py cyclonedx 1.5|1.6|1.7 FILE...
    validate.py sarif FILE...
    validate.py sarif-multitool FILE...

CycloneDX: the strict JSON validator of `cyclonedx-python-lib` (PyPI), which ships the official
bom-1.x schemas. SARIF: the SARIF 2.1.0 JSON schema shipped in Microsoft's `@microsoft/jest-sarif`
package (npm), checked with `jsonschema` (PyPI). sarif-multitool: Microsoft's SARIF Multitool
(npm `@microsoft/sarif-multitool`) `validate` with its SARIF and GitHub (`Gh`) rules, the checks
GitHub code scanning's ingestion applies; any error or warning fails. Nothing is vendored into the repository: the
packages are installed on first use into a cache (MODELGATE_SCHEMA_CACHE, default
target/schema-cache), under a lock so parallel tests share one install. Exit 0 when every file is
valid, 1 with the errors otherwise, 2 when the validators cannot be installed.
"""
import fcntl
import json
import os
import subprocess
import sys
import tarfile

os.environ.setdefault("PIP_ROOT_USER_ACTION", "ignore")

CYCLONEDX_LIB = "cyclonedx-python-lib[json-validation]==11.12.0"
JSONSCHEMA = "jsonschema==4.26.0"
SARIF_NPM = "@microsoft/jest-sarif@1.0.0-beta.0"
SARIF_SCHEMA = "package/lib/schemas/sarif-2.1.0-rtm.5.json"
MULTITOOL_NPM = ["@microsoft/sarif-multitool@5.7.0", "@microsoft/sarif-multitool-linux@5.7.0"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("MODELGATE_SCHEMA_CACHE") or os.path.join(ROOT, "target", "schema-cache")


def ensure():
    os.makedirs(CACHE, exist_ok=True)
    site = os.path.join(CACHE, "site")
    sarif_dir = os.path.join(CACHE, "sarif")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(site, ".complete")):
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
                 "--target", site, CYCLONEDX_LIB, JSONSCHEMA],
                check=True,
            )
            open(os.path.join(site, ".complete"), "w").close()
        if not os.path.exists(os.path.join(sarif_dir, SARIF_SCHEMA)):
            os.makedirs(sarif_dir, exist_ok=True)
            out = subprocess.run(["npm", "pack", "--silent", SARIF_NPM], cwd=sarif_dir, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            with tarfile.open(os.path.join(sarif_dir, out)) as t:
                t.extract(SARIF_SCHEMA, sarif_dir)
        if sys.argv[1:2] == ["sarif-multitool"] and not os.path.exists(multitool()):
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                            os.path.join(CACHE, "multitool"), *MULTITOOL_NPM], check=True)
    sys.path.insert(0, site)
    return os.path.join(sarif_dir, SARIF_SCHEMA)


def multitool():
    # The self-contained Linux build, run directly: the npm wrapper passes arguments through a
    # shell, which splits "Gh;Sarif" at the semicolon.
    return os.path.join(CACHE, "multitool", "node_modules", "@microsoft", "sarif-multitool-linux", "Sarif.Multitool")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        sarif_schema = ensure()
    except Exception as e:  # noqa: BLE001 - report any install failure the same way
        print(f"cannot install the validators: {e}", file=sys.stderr)
        return 2
    kind, rest = sys.argv[1], sys.argv[2:]
    problems = []
    if kind == "cyclonedx":
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator

        version = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[rest[0]]
        validator = JsonStrictValidator(version)
        for path in rest[1:]:
            with open(path) as f:
                error = validator.validate_str(f.read())
            if error is not None:
                problems.append(f"{path}: {error}")
    elif kind == "sarif":
        import jsonschema

        with open(sarif_schema) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema)
        for path in rest:
            with open(path) as f:
                doc = json.load(f)
            for error in validator.iter_errors(doc):
                problems.append(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    elif kind == "sarif-multitool":
        import tempfile

        for path in rest:
            with tempfile.TemporaryDirectory() as tmp:
                log = os.path.join(tmp, "validation.sarif")
                p = subprocess.run([multitool(), "validate", "--rule-kind", "Gh;Sarif", "-o", log, path],
                                   capture_output=True, text=True)
                if p.returncode != 0 or not os.path.exists(log):
                    problems.append(f"{path}: sarif-multitool failed ({p.returncode}): {p.stdout}{p.stderr}")
                    continue
                with open(log) as f:
                    out = json.load(f)
                for r in out["runs"][0].get("results", []):
                    if r.get("level", "warning") in ("error", "warning"):
                        problems.append(f"{path}: {r['ruleId']}: {json.dumps(r['message'])}")
    else:
        print(f"unknown kind {kind!r}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
