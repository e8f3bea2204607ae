#!/usr/bin/env bash
# Entry point of the modelgate GitHub Action (action.yml). Inputs arrive as MG_* environment
# variables, never interpolated into script text. Runs the scan, records the verdict and report
# paths in $GITHUB_OUTPUT, and exits 0 whatever the verdict (a later step enforces it); exits 2
# when the gate itself cannot run (a bad input included).
#
# Used by the repository's tests:
#   MODELGATE_BIN          the binary to run (no download, no build)
#   MODELGATE_RELEASE_URL  where release archives are downloaded from (default: GitHub releases)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${GITHUB_OUTPUT:-/dev/null}
repo=modelgate/modelgate

fail() {
  echo "::error title=modelgate::$*" >&2
  exit 2
}

# Boolean inputs: exactly `true` or `false`, as YAML 1.2 and GitHub's expressions spell them. A
# `True`, `yes` or `1` would silently mean false in an `inputs.x == 'true'` comparison.
boolean() {
  local name=$1 value=$2
  case "$value" in
    true | false) ;;
    *) fail "input '$name' must be true or false, not '$value'" ;;
  esac
}

# A value that goes into $GITHUB_OUTPUT or onto the command line as one argument: no newline or
# carriage return, so no input can add a line of its own.
one_line() {
  local name=$1 value=$2
  case "$value" in
    *$'\n'* | *$'\r'*) fail "input '$name' must be one line" ;;
  esac
}

# $GITHUB_OUTPUT in the multi-line form (name<<DELIMITER), with a delimiter no value contains:
# even a value with a newline could not start a line `verdict=pass` of its own.
output() {
  local name=$1 value=$2 delimiter
  delimiter="MODELGATE_EOF_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  case "$value" in *"$delimiter"*) fail "output '$name' contains its delimiter" ;; esac
  printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >> "$out"
}

locked=${MG_LOCKED-false}
boolean locked "$locked"
boolean upload-sarif "${MG_UPLOAD_SARIF-true}"
for input in policy:MG_POLICY lockfile:MG_LOCKFILE fail-on:MG_FAIL_ON sbom-file:MG_SBOM_FILE \
  sbom-spec:MG_SBOM_SPEC sarif-file:MG_SARIF_FILE json-file:MG_JSON_FILE category:MG_CATEGORY \
  version:MG_VERSION; do
  var=${input#*:}
  one_line "${input%%:*}" "${!var:-}"
done

# `paths` and `args` are lists: split on any whitespace, newlines included (a YAML block
# `paths: |` has one path per line). No globbing, no quotes, no shell evaluation.
IFS=$' \t\r\n' read -r -d '' -a paths <<< "${MG_PATHS:-}" || true
[ "${#paths[@]}" -gt 0 ] || paths=(.)
IFS=$' \t\r\n' read -r -d '' -a extra <<< "${MG_ARGS:-}" || true

# A release archive is trusted when this action's commit vouches for it: its SHA-256 is in
# action/checksums.txt, or (for a release newer than the commit's checksums, such as the one
# tagged at this very commit) GitHub's artifact attestation says it was built by this
# repository's release workflow from the tag `v<version>` — verified with `gh attestation verify`
# against Sigstore, the signer identity fixed here. See docs/ci.md, "Where the binary comes from".
verify_release() {
  local archive=$1 asset=$2 version=$3 expected actual
  expected=$(awk -v a="$asset" '$2 == a { print $1 }' "$here/checksums.txt")
  if [ -n "$expected" ]; then
    actual=$(sha256sum "$archive" | cut -d' ' -f1)
    [ "$actual" = "$expected" ] \
      || fail "$asset has SHA-256 $actual, expected $expected (action/checksums.txt); refusing to run it"
    return
  fi
  command -v gh >/dev/null \
    || fail "$asset is not in action/checksums.txt and the gh CLI (needed to verify its attestation) is not installed"
  if ! gh attestation verify "$archive" --repo "$repo" \
    --signer-workflow "$repo/.github/workflows/release.yml" \
    --source-ref "refs/tags/v$version" --deny-self-hosted-runners >&2; then
    fail "$asset has no valid attestation from $repo's release workflow at v$version; refusing to run it"
  fi
}

resolve_binary() {
  if [ -n "${MODELGATE_BIN:-}" ]; then
    echo "$MODELGATE_BIN"
    return
  fi
  local version=${MG_VERSION:-source}
  if [ "$version" = source ]; then
    # action.yml restores a build of this exact source from the Actions cache into
    # MG_BUILD_CACHE; only a cache miss builds.
    local cached=${MG_BUILD_CACHE:-}
    if [ -n "$cached" ] && [ -x "$cached/modelgate" ]; then
      echo "$cached/modelgate"
      return
    fi
    cargo build --release --locked --quiet --manifest-path "$here/../Cargo.toml" -p modelgate >&2
    if [ -n "$cached" ]; then
      mkdir -p "$cached"
      cp "$here/../target/release/modelgate" "$cached/modelgate"
      echo "$cached/modelgate"
      return
    fi
    echo "$here/../target/release/modelgate"
    return
  fi
  case "$version" in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) fail "version must be X.Y.Z or source, not '$version'" ;;
  esac
  local os arch target
  os=$(uname -s); arch=$(uname -m)
  case "$os/$arch" in
    Linux/x86_64) target=x86_64-unknown-linux-gnu ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-gnu ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    Darwin/arm64) target=aarch64-apple-darwin ;;
    *) fail "no release binary for $os/$arch; use version: source" ;;
  esac
  local asset="modelgate-$version-$target.tar.gz"
  local dir="${RUNNER_TEMP:-/tmp}/modelgate-$version"
  local base=${MODELGATE_RELEASE_URL:-https://github.com/$repo/releases/download}
  mkdir -p "$dir"
  curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
    --output "$dir/$asset" "$base/v$version/$asset" >&2 || fail "cannot download $asset"
  verify_release "$dir/$asset" "$asset" "$version"
  tar -xzf "$dir/$asset" -C "$dir" modelgate
  echo "$dir/modelgate"
}

# The SARIF category: code scanning keeps one set of alerts per category, so two jobs (or two
# steps) scanning different folders must not share one. Default: the job and the paths.
category=${MG_CATEGORY:-}
if [ -z "$category" ]; then
  category="modelgate/${GITHUB_JOB:-job}/${paths[*]}"
fi

bin=$(resolve_binary)

args=(scan)
[ -n "${MG_POLICY:-}" ] && args+=(--policy "$MG_POLICY")
[ -n "${MG_LOCKFILE:-}" ] && args+=(--lockfile "$MG_LOCKFILE")
[ -n "${MG_FAIL_ON:-}" ] && args+=(--fail-on "$MG_FAIL_ON")
[ "$locked" = true ] && args+=(--locked)
if [ -n "${MG_SBOM_FILE:-}" ]; then args+=(--sbom "$MG_SBOM_FILE" --sbom-spec "${MG_SBOM_SPEC:-1.6}"); fi
if [ -n "${MG_SARIF_FILE:-}" ]; then args+=(--sarif "$MG_SARIF_FILE" --sarif-category "$category"); fi
[ -n "${MG_JSON_FILE:-}" ] && args+=(--json "$MG_JSON_FILE")
args+=("${extra[@]}")
# Everything after `--` is a path, even one that starts with `-`.
args+=(-- "${paths[@]}")

status=0
GITHUB_ACTIONS=true "$bin" "${args[@]}" || status=$?
case "$status" in
  0 | 1) ;;
  *) fail "the scan could not run (exit $status); see the log above" ;;
esac

# modelgate wrote verdict and findings itself; add the report paths.
output sbom-file "${MG_SBOM_FILE:-}"
output sarif-file "${MG_SARIF_FILE:-}"
output json-file "${MG_JSON_FILE:-}"
output category "$category"
exit 0
