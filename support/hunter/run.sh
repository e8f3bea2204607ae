#!/usr/bin/env bash
# The silent-pass hunter (support/hunter/README.md). Not part of .ci/run: it needs torch, numpy,
# joblib and jinja2, installed here into a throw-away venv under target/.
#
#   support/hunter/run.sh [hunt.py options]     e.g. --loadable 2000 --seed 1 --families pickle,joblib
#
# Environment: HUNTER_VENV (target/hunter-venv), HUNTER_PYTHON (python3, to create the venv),
# HUNTER_NO_BUILD=1 to use the modelgate binary already in target/release.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${HUNTER_VENV:-$repo/target/hunter-venv}"
py="${HUNTER_PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, numpy, joblib, jinja2' 2>/dev/null; then
    # The CPU wheel of torch is much smaller; fall back to PyPI (which also pulls CUDA libraries).
    "$venv/bin/pip" install --quiet "$(grep '^torch==' "$here/requirements.txt")" \
        --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
        || "$venv/bin/pip" install --quiet "$(grep '^torch==' "$here/requirements.txt")"
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
if [ "${HUNTER_NO_BUILD:-0}" != 1 ]; then
    (cd "$repo" && cargo build --release -p modelgate)
fi
exec "$venv/bin/python" "$here/hunt.py" --scanner "$repo/target/release/modelgate" "$@"
