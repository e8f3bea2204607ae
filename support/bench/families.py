#!/usr/bin/env python3
"""Per-format-family benchmark: `modelgate scan` against a plain SHA-256 of the same bytes.

Writes one benign file (or directory) per format family into $BENCH_DIR, then times
`target/release/modelgate scan -q FILE` and `target/release/examples/sha256 FILE` alternately
(A B A B …, $RUNS pairs after one warm-up pair, page cache warm) under `/usr/bin/time -f "%e %M"`
(see `timed` for which figure comes from where)
and prints a Markdown table of medians: MB/s, the ratio to SHA-256, wall and CPU (user + system)
seconds, peak RSS and the verdict. CPU time is the steadier figure on a loaded machine, where
modelgate's second (hashing) thread competes for a core instead of running beside the parser. A
directory is compared with SHA-256 of its files' bytes concatenated into one file.

It builds nothing. Build first, from the repository root:

    cargo build --release -p modelgate
    cargo build --release -p modelgate-formats --example sha256
    python3 support/bench/families.py            # or: BENCH_DIR=/big/disk RUNS=7 python3 …

Generation uses the standard library (Python 3.11). Rows that need a library — joblib (numpy,
joblib), HDF5 Keras (h5py, numpy), SavedModel (tensorflow) — are generated only when the Python
running this script can import it, else they read "not measured: needs X". Any Python will do,
e.g. a virtualenv with `pip install numpy joblib h5py`. Nothing generated is executed by the
scanner; the only unpickling is CPython's own `pickle.load` of the benign opcode-dense pickle this
script wrote, timed as the "× CPython unpickler" figure of issue 19.

Environment: BENCH_DIR (default /tmp/modelgate-bench/families; needs about 2 GB), RUNS (default
5), MODELGATE (default target/release/modelgate), SHA256 (default
target/release/examples/sha256). Generated files are kept and reused; delete BENCH_DIR to
regenerate. modelgate runs with BENCH_DIR as its working directory (so no ./modelgate.toml is
picked up) and without MODELGATE_CACHE.
"""
import collections
import io
import json
import os
import pickle
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository
from make_checkpoint import data_pkl  # noqa: E402  (torch.save's data.pkl, standard library)

MiB = 1 << 20
RND = random.Random(0)
CHUNK = RND.randbytes(MiB)


def fill(f, nbytes):
    """Writes nbytes of pseudo-random filler (tensor data)."""
    while nbytes > 0:
        n = min(nbytes, MiB)
        f.write(CHUNK[:n])
        nbytes -= n


def have(*modules):
    missing = []
    for m in modules:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    return missing


# ---------------------------------------------------------------------------------------------
# Generators: each writes `path` (a file or directory) and returns nothing.


def write_torch_zip(path, n_tensors=8, tensor_bytes=32 * MiB):
    """torch.save's zip layout (as make_checkpoint.py, smaller): data.pkl + raw storages."""
    name = os.path.basename(path).split(".")[0]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr(f"{name}/data.pkl", data_pkl(n_tensors, tensor_bytes // 4))
        z.writestr(f"{name}/byteorder", b"little")
        for i in range(n_tensors):
            with z.open(f"{name}/data/{i}", "w", force_zip64=tensor_bytes > (1 << 30)) as f:
                fill(f, tensor_bytes)
        z.writestr(f"{name}/version", b"3\n")


class _FakeTorch:
    """Stand-ins registered under torch's module names, so that the standard pickle module writes
    the same globals `torch.save` does (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`)."""

    def __enter__(self):
        torch = types.ModuleType("torch")
        utils = types.ModuleType("torch._utils")

        class FloatStorage:
            def __init__(self, key, numel):
                self.key, self.numel = key, numel

        FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

        def _rebuild_tensor_v2(*args):  # never called: only pickled by reference
            raise RuntimeError("stand-in")

        _rebuild_tensor_v2.__module__ = "torch._utils"
        _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"

        class Tensor:
            def __init__(self, storage, shape):
                self.storage, self.shape = storage, shape

            def __reduce_ex__(self, protocol):
                stride = (self.shape[1], 1)
                return (
                    _rebuild_tensor_v2,
                    (self.storage, 0, self.shape, stride, False, collections.OrderedDict()),
                )

        torch.FloatStorage, torch._utils = FloatStorage, utils
        utils._rebuild_tensor_v2 = _rebuild_tensor_v2
        self.saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
        self.FloatStorage, self.Tensor = FloatStorage, Tensor
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_legacy_torch(path, n_tensors=8, tensor_bytes=32 * MiB):
    """torch.save(..., _use_new_zipfile_serialization=False): torch/serialization.py _legacy_save."""
    with _FakeTorch() as t, open(path, "wb") as f:
        proto = 2  # torch's DEFAULT_PROTOCOL
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=proto)  # MAGIC_NUMBER
        pickle.dump(1001, f, protocol=proto)  # PROTOCOL_VERSION
        sys_info = dict(
            protocol_version=1001,
            little_endian=True,
            type_sizes=dict(short=2, int=4, long=4),
        )
        pickle.dump(sys_info, f, protocol=proto)
        numel = tensor_bytes // 4
        storages = {}
        sd = collections.OrderedDict()
        for i in range(n_tensors):
            key = str(94000000000000 + i * 64)
            storages[key] = t.FloatStorage(key, numel)
            sd[f"layer{i}.weight"] = t.Tensor(storages[key], (numel // 1024, 1024))

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, t.FloatStorage):
                    return ("storage", t.FloatStorage, obj.key, "cpu", obj.numel, None)
                return None

        P(f, protocol=proto).dump(sd)
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=proto)
        for k in keys:  # storage._write_file: int64 numel, then the raw bytes
            f.write(struct.pack("<q", storages[k].numel))
            fill(f, storages[k].numel * 4)


def dense_pickle_object(n=2_000_000):
    return [{"id": i, "word": f"w{i}", "count": i % 1000, "weight": 0.5} for i in range(n)]


def write_dense_pickle(path):
    """A plain protocol-4 pickle of 2 million small dicts (the shape of issue 19's 86 MB pickle)."""
    with open(path, "wb") as f:
        pickle.dump(dense_pickle_object(), f, protocol=4)


def write_joblib(path):
    import joblib
    import numpy as np

    rng = np.random.default_rng(0)
    obj = {
        "coef": [rng.standard_normal((1024, 4096), dtype=np.float32) for _ in range(12)],
        "classes": np.arange(1000, dtype=np.int64),
        "params": {"alpha": 0.1, "n_iter": 100, "name": "benchmark"},
    }
    joblib.dump(obj, path)


def write_safetensors(path, n_tensors=16, tensor_bytes=16 * MiB):
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for i in range(n_tensors):
        numel = tensor_bytes // 4
        header[f"layer{i}.weight"] = {
            "dtype": "F32",
            "shape": [numel // 1024, 1024],
            "data_offsets": [off, off + tensor_bytes],
        }
        off += tensor_bytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        fill(f, off)


CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)


def vocab_tokens(n):
    # Byte-level-BPE-looking tokens, distinct.
    return [f"\u0120tok{i}" if i % 3 == 0 else f"t{i:x}" for i in range(n)]


def write_gguf(path, n_vocab=150_000, n_tensors=16, tensor_bytes=8 * MiB):
    """GGUF v3 by hand: a 150k-token tokenizer.ggml.tokens array, merges, a chat template."""
    S, ARR, U32, I32, F32 = 8, 9, 4, 5, 6

    def gstr(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    kvs = []

    def kv(key, vtype, payload):
        kvs.append(gstr(key) + struct.pack("<I", vtype) + payload)

    def arr(elem_type, items, enc):
        return struct.pack("<IQ", elem_type, len(items)) + b"".join(map(enc, items))

    kv("general.architecture", S, gstr("llama"))
    kv("general.name", S, gstr("families-benchmark"))
    kv("general.alignment", U32, struct.pack("<I", 32))
    kv("llama.context_length", U32, struct.pack("<I", 4096))
    kv("llama.block_count", U32, struct.pack("<I", n_tensors))
    kv("tokenizer.ggml.model", S, gstr("gpt2"))
    toks = vocab_tokens(n_vocab)
    kv("tokenizer.ggml.tokens", ARR, arr(S, toks, gstr))
    kv("tokenizer.ggml.token_type", ARR, arr(I32, [1] * n_vocab, lambda v: struct.pack("<i", v)))
    kv("tokenizer.ggml.scores", ARR, arr(F32, [0.0] * n_vocab, lambda v: struct.pack("<f", v)))
    merges = [f"{toks[i]} {toks[i + 1]}" for i in range(0, n_vocab - 1, 1)]
    kv("tokenizer.ggml.merges", ARR, arr(S, merges, gstr))
    kv("tokenizer.ggml.bos_token_id", U32, struct.pack("<I", 1))
    kv("tokenizer.ggml.eos_token_id", U32, struct.pack("<I", 2))
    kv("tokenizer.chat_template", S, gstr(CHATML))

    infos, off = [], 0
    for i in range(n_tensors):
        numel = tensor_bytes // 4
        infos.append(
            gstr(f"blk.{i}.ffn_up.weight")
            + struct.pack("<IQQIQ", 2, 1024, numel // 1024, 0, off)  # n_dims, dims, F32, offset
        )
        off += tensor_bytes  # multiples of 32: aligned
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kvs)))
        for b in kvs + infos:
            f.write(b)
        f.write(b"\0" * (-f.tell() % 32))
        fill(f, off)


def write_keras_h5(path, n_layers=1000, units=128):
    """Keras 2 `model.save("x.h5")` layout: model_config JSON, model_weights/<layer>/<layer>/…"""
    import h5py
    import numpy as np

    layers = [
        {
            "class_name": "InputLayer",
            "config": {"batch_input_shape": [None, units], "dtype": "float32", "name": "input"},
        }
    ]
    names = [f"dense_{i}" for i in range(n_layers)]
    for n in names:
        layers.append(
            {
                "class_name": "Dense",
                "config": {
                    "name": n,
                    "trainable": True,
                    "dtype": "float32",
                    "units": units,
                    "activation": "relu",
                    "use_bias": True,
                    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}},
                },
            }
        )
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((units, units), dtype=np.float32)
    with h5py.File(path, "w", libver="latest") as f:  # "latest": attributes over 64 KiB
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = "2.15.0"
        mw.attrs["backend"] = "tensorflow"
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            g = mw.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()])
            inner = g.create_group(n)
            inner.create_dataset("kernel:0", data=kernel)
            inner.create_dataset("bias:0", data=np.zeros(units, dtype=np.float32))


def write_savedmodel(path):
    import tensorflow as tf

    class M(tf.Module):
        def __init__(self):
            self.w = [tf.Variable(tf.random.normal((256, 256)), name=f"w{i}") for i in range(400)]

        @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32)])
        def __call__(self, x):
            for w in self.w:
                x = tf.nn.relu(tf.matmul(x, w))
            return x

    tf.saved_model.save(M(), path)


# Protobuf by hand (wire format) for ONNX.
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_int(field, n):
    return varint(field << 3) + varint(n)


def pb_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def write_onnx(path, n_nodes=200_000, n_inits=2000, init_floats=10240):
    """ModelProto / GraphProto / NodeProto hand-encoded: a 200k-node chain over 2000 initializers."""
    dim = 10240
    tensor_type = pb_bytes(1, pb_int(1, 1) + pb_bytes(2, pb_bytes(1, pb_int(1, dim))))
    graph = bytearray()
    ops = ("Add", "Relu", "Mul", "Sigmoid")
    for i in range(n_nodes):
        op = ops[i % 4]
        node = pb_bytes(1, f"x{i}")
        if op in ("Add", "Mul"):
            node += pb_bytes(1, f"w{i % n_inits}")
        node += pb_bytes(2, f"x{i + 1}") + pb_bytes(3, f"n{i}") + pb_bytes(4, op)
        graph += pb_bytes(1, node)
    graph += pb_bytes(2, "families")
    raw = (CHUNK * (init_floats * 4 // MiB + 1))[: init_floats * 4]
    for i in range(n_inits):
        t = pb_int(1, init_floats) + pb_int(2, 1) + pb_bytes(8, f"w{i}") + pb_bytes(9, raw)
        graph += pb_bytes(5, t)
    graph += pb_bytes(11, pb_bytes(1, "x0") + pb_bytes(2, tensor_type))
    graph += pb_bytes(12, pb_bytes(1, f"x{n_nodes}") + pb_bytes(2, tensor_type))
    model = (
        pb_int(1, 8)
        + pb_bytes(2, "families.py")
        + pb_bytes(3, "1.0")
        + pb_bytes(8, pb_bytes(1, "") + pb_int(2, 17))
        + pb_bytes(7, bytes(graph))
    )
    with open(path, "wb") as f:
        f.write(model)


def write_tokenizer_json(path, n_vocab=200_000):
    """A Hugging Face tokenizers `tokenizer.json`: BPE with a 200k vocabulary and merges."""
    toks = vocab_tokens(n_vocab)
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": f"<|special_{i}|>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for i in range(256)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel"},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "vocab": {t: i for i, t in enumerate(toks)},
            "merges": [f"{toks[i]} {toks[i + 1]}" for i in range(n_vocab - 1)],
        },
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)


def small_torch_zip_bytes(numel, name="archive"):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", data_pkl(1, numel))
        z.writestr(f"{name}/byteorder", b"little")
        z.writestr(f"{name}/data/0", CHUNK[: numel * 4])
        z.writestr(f"{name}/version", b"3\n")
    return out.getvalue()


def small_safetensors_bytes(nbytes):
    h = json.dumps(
        {"w": {"dtype": "F32", "shape": [nbytes // 4], "data_offsets": [0, nbytes]}},
        separators=(",", ":"),
    ).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + CHUNK[:nbytes]


def write_small_dir(path, n_files=10_000):
    """10,000 small files in 100 folders: safetensors, torch zips, config JSON, text."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    kinds = [
        ("model.safetensors", small_safetensors_bytes(8192)),
        ("pytorch_model.bin", small_torch_zip_bytes(1024, "pytorch_model")),
        ("config.json", json.dumps({"model_type": "bert", "architectures": ["BertModel"],
                                    "hidden_size": 768, "num_hidden_layers": 12}).encode()),
        ("README.md", b"# A small model\n\nBenchmark filler.\n" * 20),
    ]
    for i in range(n_files):
        d = os.path.join(tmp, f"m{i // 100:03}")
        os.makedirs(d, exist_ok=True)
        name, data = kinds[i % len(kinds)]
        with open(os.path.join(d, f"{i:05}-{name}"), "wb") as f:
            f.write(data)
    os.rename(tmp, path)


def write_small_ckpt(path):
    with open(path, "wb") as f:
        f.write(small_torch_zip_bytes(356, "model"))


# ---------------------------------------------------------------------------------------------
# Measurement.


def files_under(path):
    if os.path.isfile(path):
        return [path]
    out = []
    for d, _, fs in os.walk(path):
        out += [os.path.join(d, f) for f in sorted(fs)]
    return sorted(out)


def size_of(path):
    return sum(os.path.getsize(p) for p in files_under(path))


def warm(path):
    for p in files_under(path):
        with open(p, "rb") as f:
            while f.read(8 * MiB):
                pass


def timed(cmd, cwd):
    """One run under /usr/bin/time: (wall s, peak RSS KiB, exit code, last stdout line, CPU s).

    Peak RSS is /usr/bin/time's %M; wall is timed around the spawn and CPU (user + system) comes
    from wait4, both at microsecond resolution (%e, %U and %S have 10 ms steps)."""
    fd, tf = tempfile.mkstemp()
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            ["/usr/bin/time", "-f", "%e %M", "-o", tf] + cmd,
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV,
        )
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        with open(tf) as f:
            rss = f.read().split()[-1]
    finally:
        os.unlink(tf)
    lines = out.decode(errors="replace").strip().splitlines()
    return wall, int(rss), p.returncode, (lines[-1] if lines else ""), ru.ru_utime + ru.ru_stime


def spawn_ms(cmd, cwd, runs):
    """Median wall in ms of `cmd` spawned directly (no /usr/bin/time, whose %e has 10 ms steps)."""
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        walls.append((time.perf_counter() - t0) * 1000)
    return statistics.median(walls)


def compare(cmd_a, cmd_b, cwd, runs):
    """Alternates A and B (one warm-up pair, then `runs` pairs); medians and A's details."""
    timed(cmd_a, cwd), timed(cmd_b, cwd)
    a, b = [], []
    for _ in range(runs):
        a.append(timed(cmd_a, cwd))
        b.append(timed(cmd_b, cwd))
    return (
        statistics.median(x[0] for x in a),
        statistics.median(x[0] for x in b),
        max(x[1] for x in a),
        a[-1][2],
        a[-1][3],
        statistics.median(x[4] for x in a),
        statistics.median(x[4] for x in b),
    )


def verdict(rc, line, width=60):
    line = " ".join(line.split()).removeprefix("modelgate: ").split(";")[0]
    if len(line) > width:
        line = line[: width - 1] + "…"
    return f"{rc} / {line}".replace("|", "\\|")


FAMILIES = [
    # (label, file name in BENCH_DIR, generator, Python modules it needs)
    ("torch zip checkpoint", "torch-zip.pt", write_torch_zip, ()),
    ("legacy torch (pre-zip torch.save)", "legacy-torch.pt", write_legacy_torch, ()),
    ("plain pickle, opcode-dense (2M dicts)", "dense.pkl", write_dense_pickle, ()),
    ("joblib with arrays", "arrays.joblib", write_joblib, ("numpy", "joblib")),
    ("safetensors", "model.safetensors", write_safetensors, ()),
    ("GGUF v3, 150k-token vocabulary", "model.gguf", write_gguf, ()),
    ("HDF5 Keras, 1000 layers", "model.h5", write_keras_h5, ("h5py", "numpy")),
    ("SavedModel, large graph", "savedmodel", write_savedmodel, ("tensorflow",)),
    ("ONNX, 200k nodes", "model.onnx", write_onnx, ()),
    ("tokenizer.json, 200k vocab + merges", "tokenizer.json", write_tokenizer_json, ()),
    ("directory of 10k small files", "small-files", write_small_dir, ()),
]


def generate(path, gen):
    if os.path.exists(path):
        return
    print(f"generating {path}", file=sys.stderr)
    if gen is write_small_dir:
        gen(path)
        return
    tmp = path + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    gen(tmp)
    os.rename(tmp, path)


def main():
    global ENV
    generate_only = "--generate" in sys.argv
    only = set(a for a in sys.argv[1:] if a != "--generate")  # optional: names of families to run
    bench = os.path.abspath(os.environ.get("BENCH_DIR", "/tmp/modelgate-bench/families"))
    runs = int(os.environ.get("RUNS", "5"))
    mg = os.path.abspath(os.environ.get("MODELGATE", os.path.join(ROOT, "target/release/modelgate")))
    sha = os.path.abspath(
        os.environ.get("SHA256", os.path.join(ROOT, "target/release/examples/sha256"))
    )
    for b in () if generate_only else (mg, sha):
        if not os.access(b, os.X_OK):
            sys.exit(
                f"{b} is missing: run `cargo build --release -p modelgate` and "
                "`cargo build --release -p modelgate-formats --example sha256` first"
            )
    ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    os.makedirs(bench, exist_ok=True)

    rows, notes = [], []
    load0 = os.getloadavg()
    for label, name, gen, needs in FAMILIES:
        if only and name not in only:
            continue
        path = os.path.join(bench, name)
        missing = have(*needs)
        if missing:
            rows.append(f"| {label} | — | not measured: needs {', '.join(missing)} | | | | | | |")
            continue
        generate(path, gen)
        if generate_only:
            continue
        nbytes = size_of(path)
        sha_target = path
        if os.path.isdir(path):  # SHA-256 of the same bytes, concatenated into one file
            sha_target = path + ".concat"
            if not os.path.exists(sha_target):
                with open(sha_target, "wb") as out:
                    for p in files_under(path):
                        with open(p, "rb") as f:
                            shutil.copyfileobj(f, out)
        warm(path), warm(sha_target)
        print(f"timing {label}", file=sys.stderr)
        mg_s, sha_s, rss, rc, line, mg_cpu, sha_cpu = compare([mg, "scan", "-q", path], [sha, sha_target], bench, runs)
        rows.append(
            f"| {label} | {nbytes:,} | {nbytes / mg_s / 1e6:.0f} | {mg_s / sha_s:.2f} "
            f"| {mg_cpu / max(sha_cpu, 1e-6):.2f} | {mg_s:.3f} / {sha_s:.3f} | {mg_cpu:.3f} / {sha_cpu:.3f} | {rss / 1024:.1f} "
            f"| {verdict(rc, line)} |"
        )
        if name == "dense.pkl":
            py = [sys.executable, "-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", path]
            timed(py, bench)
            pys = [timed(py, bench) for _ in range(runs)]
            py_s = statistics.median(x[0] for x in pys)
            notes.append(
                f"- opcode-dense pickle: CPython {sys.version.split()[0]} `pickle.load` takes "
                f"{py_s:.2f} s and {max(x[1] for x in pys) / 1024:.0f} MiB; modelgate "
                f"{mg_s:.2f} s, so it runs at **{py_s / mg_s:.1f}× the speed of CPython's unpickler** "
                "(issue 19 asks ≥ 25×)."
            )

    # Small-file latency: a 2 KiB checkpoint, and process start.
    small = os.path.join(bench, "small.pt")
    if not only or "small.pt" in only:
        generate(small, write_small_ckpt)
        if generate_only:
            return
        warm(small)
        n = max(runs * 6, 31)
        scan_ms = spawn_ms([mg, "scan", "-q", small], bench, n)
        ver_ms = spawn_ms([mg, "--version"], bench, n)
        sha_ms = spawn_ms([sha, small], bench, n)
        _, rss, rc, line, _ = timed([mg, "scan", "-q", small], bench)
        rows.append(
            f"| 2 KiB checkpoint (small-file latency) | {os.path.getsize(small):,} | "
            f"{scan_ms:.1f} ms wall | — | — | {sha_ms:.1f} ms SHA-256 | | {rss / 1024:.1f} | "
            f"{verdict(rc, line)} |"
        )
        notes.append(
            f"- 2 KiB checkpoint: `modelgate scan -q` {scan_ms:.1f} ms, `modelgate --version` "
            f"{ver_ms:.1f} ms (process-start floor), sha256 example {sha_ms:.1f} ms; median of {n} "
            "runs each, timed around the spawn (not `/usr/bin/time`, whose %e has 10 ms steps)."
        )
    load1 = os.getloadavg()

    print()
    print(
        f"{os.cpu_count()} CPUs, load average {load0[0]:.2f} at start and {load1[0]:.2f} at end; "
        f"median of {runs} alternating runs after a warm-up pair, page cache warm"
    )
    print()
    print("| family | bytes | modelgate MB/s | × SHA-256 | × SHA-256 CPU | wall s (modelgate / SHA-256) "
          "| CPU s (modelgate / SHA-256) | peak RSS MiB | exit / verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print()
    for n_ in notes:
        print(n_)


ENV = None

if __name__ == "__main__":
    main()
