#!/usr/bin/env bash
# Measures `modelgate scan` on a large PyTorch checkpoint against plain SHA-256 of the same bytes
# (the floor: a gate must read and hash every byte) and, optionally, against the Python scanners.
#
#   support/bench/run.sh [SIZE_GIB]        # default 2
#
# Environment:
#   BENCH_DIR      where the checkpoint is generated (default /tmp/modelgate-bench; needs SIZE+ GiB)
#   TORCH_PYTHON   a Python with torch, to write the checkpoint with torch.save (default: a
#                  torch-identical layout written with the standard library instead)
#   BENCH_PEERS=1  also time picklescan, modelscan, fickling and modelaudit (pip-installed into
#                  $BENCH_DIR/venv; needs network)
#   RUNS           repetitions per command (default 5); the median is reported
#
# Prints a Markdown table; docs/performance.md records the figures from a run.
#
# Per format family (torch zip, legacy torch, opcode-dense pickle, joblib, safetensors, GGUF, HDF5
# Keras, SavedModel, ONNX, tokenizer.json, a 10k-file directory, a 2 KiB checkpoint), after the two
# `cargo build --release` lines below: `python3 support/bench/families.py` (see its docstring).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_GIB=${1:-2}
BENCH_DIR=${BENCH_DIR:-/tmp/modelgate-bench}
RUNS=${RUNS:-5}
mkdir -p "$BENCH_DIR"
CKPT="$BENCH_DIR/checkpoint-${SIZE_GIB}g.pt"

if [ ! -f "$CKPT" ]; then
  echo "generating $CKPT" >&2
  if [ -n "${TORCH_PYTHON:-}" ]; then
    "$TORCH_PYTHON" - "$CKPT" "$SIZE_GIB" <<'PY'
import sys, torch
path, gib = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
n = 8192
sd = {f"layer{i}.weight": torch.randn(n, n) for i in range(gib * 4)}  # 256 MiB each
torch.save(sd, path)
PY
  else
    python3 support/bench/make_checkpoint.py "$CKPT" "$SIZE_GIB"
  fi
fi

cargo build --release --locked -q -p modelgate
cargo build --release --locked -q -p modelgate-formats --example sha256
MG=target/release/modelgate
SHA=target/release/examples/sha256

# Warm the page cache so every tool reads from memory, as they would on a second CI step.
cat "$CKPT" > /dev/null

measure() { # label, command... → "label wall_s rss_kib"
  local label=$1; shift
  local walls=() rss=0
  local tmp
  tmp=$(mktemp)
  for _ in $(seq "$RUNS"); do
    local out
    /usr/bin/time -f "%e %M" -o "$tmp" "$@" > /dev/null 2>&1 || true
    out=$(tail -1 "$tmp")
    walls+=("${out%% *}")
    local r=${out##* }
    [ "$r" -gt "$rss" ] && rss=$r
  done
  local median
  rm -f "$tmp"
  median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$label $median $rss"
}

results=()
results+=("$(measure 'sha256 (Rust sha2, 128 KiB reads)' "$SHA" "$CKPT")")
results+=("$(measure 'openssl dgst -sha256' openssl dgst -sha256 "$CKPT")")
results+=("$(measure 'sha256sum' sha256sum "$CKPT")")
results+=("$(measure 'modelgate scan' "$MG" scan -q "$CKPT")")

if [ "${BENCH_PEERS:-0}" = 1 ]; then
  VENV="$BENCH_DIR/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q picklescan modelscan fickling modelaudit
  fi
  results+=("$(measure 'picklescan' "$VENV/bin/picklescan" -p "$CKPT")")
  results+=("$(measure 'modelscan' "$VENV/bin/modelscan" -p "$CKPT")")
  results+=("$(measure 'fickling --check-safety' "$VENV/bin/fickling" --check-safety "$CKPT")")
  results+=("$(measure 'modelaudit scan' env PROMPTFOO_DISABLE_TELEMETRY=1 "$VENV/bin/modelaudit" scan "$CKPT")")
fi

base=$(echo "${results[0]}" | awk '{print $(NF-1)}')
bytes=$(stat -c %s "$CKPT")
echo
echo "checkpoint: $bytes bytes, median of $RUNS runs, page cache warm, $(nproc) CPUs"
echo
echo "| command | wall (s) | MB/s | × Rust SHA-256 | max RSS (MiB) |"
echo "|---|---|---|---|---|"
for r in "${results[@]}"; do
  rss=${r##* }; rest=${r% *}; wall=${rest##* }; label=${rest% *}
  awk -v l="$label" -v w="$wall" -v b="$base" -v r="$rss" -v n="$bytes" \
    'BEGIN { printf "| %s | %.2f | %.0f | %.2f | %.1f |\n", l, w, n / w / 1e6, w / b, r / 1024 }'
done
