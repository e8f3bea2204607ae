#!/usr/bin/env bash
# Entry point of the modelgate GitHub Action (action.yml). Inputs arrive as MG_* environment
# variables, never interpolated into script text. Runs the scan, records the verdict and report
# paths in $GITHUB_OUTPUT, and exits 0 whatever the verdict (a later step enforces it); exits 2
# when the gate itself cannot run.
#
# MODELGATE_BIN, when set, is the binary to run (used by the repository's tests).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${GITHUB_OUTPUT:-/dev/null}

resolve_binary() {
  if [ -n "${MODELGATE_BIN:-}" ]; then
    echo "$MODELGATE_BIN"
    return
  fi
  local version=${MG_VERSION:-source}
  if [ "$version" = source ]; then
    cargo build --release --locked --quiet --manifest-path "$here/../Cargo.toml" -p modelgate >&2
    echo "$here/../target/release/modelgate"
    return
  fi
  case "$version" in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "::error title=modelgate::version must be X.Y.Z or source, not '$version'" >&2; exit 2 ;;
  esac
  local os arch target
  os=$(uname -s); arch=$(uname -m)
  case "$os/$arch" in
    Linux/x86_64) target=x86_64-unknown-linux-gnu ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-gnu ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    Darwin/arm64) target=aarch64-apple-darwin ;;
    *) echo "::error title=modelgate::no release binary for $os/$arch; use version: source" >&2; exit 2 ;;
  esac
  local asset="modelgate-$version-$target.tar.gz"
  local expected
  expected=$(awk -v a="$asset" '$2 == a { print $1 }' "$here/checksums.txt")
  if [ -z "$expected" ]; then
    echo "::error title=modelgate::$asset is not in action/checksums.txt of this action version; pin a newer action commit or use version: source" >&2
    exit 2
  fi
  local dir="${RUNNER_TEMP:-/tmp}/modelgate-$version"
  mkdir -p "$dir"
  curl --fail --silent --show-error --location --retry 3 \
    --output "$dir/$asset" "https://github.com/modelgate/modelgate/releases/download/v$version/$asset" >&2
  local actual
  actual=$(sha256sum "$dir/$asset" | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    echo "::error title=modelgate::$asset has SHA-256 $actual, expected $expected; refusing to run it" >&2
    exit 2
  fi
  tar -xzf "$dir/$asset" -C "$dir"
  echo "$dir/modelgate"
}

bin=$(resolve_binary)

args=(scan)
read -r -a paths <<< "${MG_PATHS:-.}"
args+=("${paths[@]}")
[ -n "${MG_POLICY:-}" ] && args+=(--policy "$MG_POLICY")
[ -n "${MG_FAIL_ON:-}" ] && args+=(--fail-on "$MG_FAIL_ON")
[ "${MG_LOCKED:-false}" = true ] && args+=(--locked)
if [ -n "${MG_SBOM_FILE:-}" ]; then args+=(--sbom "$MG_SBOM_FILE" --sbom-spec "${MG_SBOM_SPEC:-1.6}"); fi
[ -n "${MG_SARIF_FILE:-}" ] && args+=(--sarif "$MG_SARIF_FILE")
[ -n "${MG_JSON_FILE:-}" ] && args+=(--json "$MG_JSON_FILE")

status=0
GITHUB_ACTIONS=true "$bin" "${args[@]}" || status=$?
case "$status" in
  0 | 1) ;;
  *) echo "::error title=modelgate::the scan could not run (exit $status); see the log above" >&2; exit 2 ;;
esac

# modelgate wrote verdict= and findings= itself; add the report paths.
{
  echo "sbom-file=${MG_SBOM_FILE:-}"
  echo "sarif-file=${MG_SARIF_FILE:-}"
  echo "json-file=${MG_JSON_FILE:-}"
} >> "$out"
exit 0
