#!/usr/bin/env bash
# Measures the verdict cache (docs/scale.md, docs/performance.md "Cache"):
#
#  1. a 1000-file repository on a hub on loopback (a stand-in for the Hugging Face API, the same
#     two endpoints as the fake hub of the remote tests: /api/models/ORG/NAME/revision/REV and
#     /ORG/NAME/resolve/COMMIT/PATH, every file listed with its LFS SHA-256): a cold scan with an
#     empty cache against a second scan with the cache the first one filled, counting downloads;
#  2. a local re-scan with a warm cache: a 1 GiB PyTorch checkpoint and a tree of 1000 small
#     files, cold and warm, against the SHA-256 of the same bytes
#     (target/release/examples/sha256, the scanner's own hash crate and read size).
#
#   support/bench/cache.sh
#
# Environment:
#   BENCH_DIR   scratch space (default /tmp/modelgate-bench-cache; needs about 1.2 GiB)
#   RUNS        repetitions per command (default 7); the median is reported
#   FILES       files in the repository and in the local tree (default 1000)
#   FILE_KIB    size of each of them in KiB (default 64)
#
# Prints Markdown tables; docs/performance.md records the figures from a run. Nothing here is
# asserted in a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_DIR=${BENCH_DIR:-/tmp/modelgate-bench-cache}
RUNS=${RUNS:-7}
FILES=${FILES:-1000}
FILE_KIB=${FILE_KIB:-64}
mkdir -p "$BENCH_DIR"

cargo build --release --locked -q -p modelgate
cargo build --release --locked -q -p modelgate-formats --example sha256
MG=$PWD/target/release/modelgate
SHA=$PWD/target/release/examples/sha256

# --- the data -----------------------------------------------------------------------------------
REPO=$BENCH_DIR/repo-$FILES-$FILE_KIB
if [ ! -f "$REPO/.complete" ]; then
  echo "generating $REPO" >&2
  rm -rf "$REPO"
  python3 - "$REPO" "$FILES" "$FILE_KIB" <<'PY'
import json, os, struct, sys
root, files, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root)
rng = __import__("random").Random(0)
for i in range(files):
    # A safetensors file of one F32 tensor with distinct bytes (each file its own cache entry).
    n = kib * 1024 // 4 - 32
    header = json.dumps({f"layer{i}.weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}})
    header += " " * (-len(header) % 8)
    data = rng.randbytes(n * 4)
    with open(os.path.join(root, f"layer-{i:04d}.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + data)
open(os.path.join(root, ".complete"), "w").close()
PY
fi
CKPT=$BENCH_DIR/checkpoint-1g.pt
[ -f "$CKPT" ] || python3 support/bench/make_checkpoint.py "$CKPT" 1

# --- the hub ------------------------------------------------------------------------------------
LOG=$BENCH_DIR/hub-downloads.log
PORT_FILE=$BENCH_DIR/hub.port
rm -f "$PORT_FILE" "$LOG"
python3 - "$REPO" "$LOG" "$PORT_FILE" <<'PY' &
import hashlib, http.server, json, os, sys, threading
root, log, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
commit = "c" * 40
files = {}
for name in sorted(os.listdir(root)):
    if name.startswith("."):
        continue
    data = open(os.path.join(root, name), "rb").read()
    files[name] = (data, hashlib.sha256(data).hexdigest())
siblings = [{"rfilename": n, "size": len(d), "blobId": "b" * 40,
             "lfs": {"sha256": s, "size": len(d), "pointerSize": 134}} for n, (d, s) in files.items()]
info = json.dumps({"_id": "x", "id": "bench/repo", "sha": commit, "gated": False, "private": False,
                   "siblings": siblings}).encode()
lock = threading.Lock()

class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, status, body, kind="application/octet-stream", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/api/models/bench/repo/revision/"):
            return self.reply(200, info, "application/json")
        prefix = f"/bench/repo/resolve/{commit}/"
        if path.startswith(prefix) and path[len(prefix):] in files:
            data = files[path[len(prefix):]][0]
            if self.command == "GET":
                with lock, open(log, "a") as f:
                    f.write(path + "\n")
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                a, b = int(a or 0), int(b) if b else len(data) - 1
                part = data[a:b + 1]
                return self.reply(206, part, extra=[("Content-Range", f"bytes {a}-{a + len(part) - 1}/{len(data)}")])
            return self.reply(200, data)
        return self.reply(404, b'{"error":"not found"}', "application/json")
    do_HEAD = do_GET

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
PY
HUB_PID=$!
trap 'kill $HUB_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$PORT_FILE" ] && break; sleep 0.1; done
HF_ENDPOINT=http://127.0.0.1:$(cat "$PORT_FILE")
export HF_ENDPOINT
unset HF_TOKEN MODELGATE_CACHE HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy GITHUB_ACTIONS 2>/dev/null || true

# --- timing -------------------------------------------------------------------------------------
# time_runs cold|warm CMD...: runs CMD RUNS times (cold: with the cache emptied before each run);
# prints the median wall time in seconds.
time_runs() {
  local mode=$1
  shift
  local times=()
  for _ in $(seq "$RUNS"); do
    if [ "$mode" = cold ]; then rm -rf "$CACHE"; fi
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || [ $? -eq 1 ]
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

downloads() { [ -f "$LOG" ] && wc -l <"$LOG" || echo 0; }

CACHE=$BENCH_DIR/cache
cat "$REPO"/*.safetensors "$CKPT" >/dev/null # page cache warm
BYTES=$(du -cb "$REPO"/*.safetensors | tail -1 | cut -f1)

echo
echo "### $FILES-file repository ($((BYTES / 1024 / 1024)) MiB) on a loopback hub, median of $RUNS"
echo
echo "| scan | wall (s) | downloads |"
echo "|---|---|---|"
rm -rf "$CACHE"
before=$(downloads)
"$MG" scan -q hf://bench/repo --cache "$CACHE" >/dev/null
cold_dl=$(( $(downloads) - before ))
cold=$(time_runs cold "$MG" scan -q hf://bench/repo --cache "$CACHE")
"$MG" scan -q hf://bench/repo --cache "$CACHE" >/dev/null
before=$(downloads)
"$MG" scan -q hf://bench/repo --cache "$CACHE" >/dev/null
warm_dl=$(( $(downloads) - before ))
warm=$(time_runs warm "$MG" scan -q hf://bench/repo --cache "$CACHE")
before=$(downloads)
"$MG" scan -q hf://bench/repo >/dev/null
none_dl=$(( $(downloads) - before ))
none=$(time_runs warm "$MG" scan -q hf://bench/repo)
echo "| no cache | $none | $none_dl |"
echo "| cold cache (empty) | $cold | $cold_dl |"
echo "| warm cache | $warm | $warm_dl |"
echo "| warm / cold | $(echo "$warm / $cold" | bc -l | xargs printf '%.3f') | |"

echo
echo "### Local re-scan, page cache warm, median of $RUNS"
echo
echo "| input | sha256 (s) | scan, no cache (s) | scan, cold cache (s) | scan, warm cache (s) | warm / sha256 |"
echo "|---|---|---|---|---|---|"
local_row() {
  local name=$1 path=$2 sha
  shift 2
  sha=$(time_runs warm "$@")
  local plain cold warm
  plain=$(time_runs warm "$MG" scan -q "$path")
  cold=$(time_runs cold "$MG" scan -q "$path" --cache "$CACHE")
  "$MG" scan -q "$path" --cache "$CACHE" >/dev/null || true
  warm=$(time_runs warm "$MG" scan -q "$path" --cache "$CACHE")
  echo "| $name | $sha | $plain | $cold | $warm | $(echo "$warm / $sha" | bc -l | xargs printf '%.2f') |"
}
local_row "1 GiB PyTorch checkpoint" "$CKPT" "$SHA" "$CKPT"
# The floor for a tree: every file hashed by one process (the example hashes one file; cat feeds
# all of them through one pipe).
sha_tree() { cat "$REPO"/*.safetensors | "$SHA" /dev/stdin; }
local_row "$FILES files of $FILE_KIB KiB" "$REPO" sha_tree
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
