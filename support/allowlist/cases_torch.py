"""PyTorch files: what torch.save and torch.jit.save really write.

Each case writes one file with the real library and says which loader reads it. Modules used by
torch.jit.script are defined here at module level so that TorchScript can read their source.
"""

from __future__ import annotations

import argparse
import collections
import os
import warnings

import torch
import torch.nn as nn

from common import Case

TORCH = f"torch {torch.__version__.split('+')[0]}"

# dtypes torch.save can write a tensor of (creation may still fail for a few on CPU)
DTYPES = [
    "float32", "float64", "float16", "bfloat16", "complex32", "complex64", "complex128",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn_x2", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
]


def weights_only_allowlist() -> list[tuple[str, str]]:
    """torch's own vetted list: the globals ``torch.load(weights_only=True)`` accepts."""
    from torch._weights_only_unpickler import _get_allowed_globals

    out = []
    for key in _get_allowed_globals():
        module, _, name = key.rpartition(".")
        out.append((module, name))
    return out


class Scripted(nn.Module):
    """A TorchScript module with the attribute kinds the TorchScript pickler tags."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm1d(3)
        self.seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.ml = nn.ModuleList([nn.Linear(3, 3), nn.Tanh()])
        self.md = nn.ModuleDict({"a": nn.Linear(3, 3)})
        self.ints: list[int] = [1, 2, 3]
        self.floats: list[float] = [1.0, 2.5]
        self.bools: list[bool] = [True, False]
        self.strs: list[str] = ["a", "b"]
        self.tensors: list[torch.Tensor] = [torch.zeros(2), torch.ones(3)]
        self.mapping: dict[str, int] = {"a": 1}
        self.tmap: dict[str, torch.Tensor] = {"t": torch.arange(3)}
        self.opt: torch.Tensor | None = None
        self.tup: tuple[int, float, str] = (1, 2.0, "x")
        self.register_buffer("buf", torch.arange(4, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x) + self.buf[0]
        for m in self.ml:
            y = m(y)
        return self.seq(y) * self.floats[0] + self.md["a"](y)


class WithConstants(nn.Module):
    __constants__ = ["k", "names"]

    def __init__(self):
        super().__init__()
        self.k = 3
        self.names = ("a", "b")
        self.w = nn.Parameter(torch.randn(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w * self.k + torch.tensor([1.0, 2.0, 3.0])


def _module_variants():
    """Instances of every public torch.nn module class that can be built with small arguments."""
    out = []
    for name in sorted(nn.modules.__all__):
        cls = getattr(nn, name)
        if not isinstance(cls, type) or not issubclass(cls, nn.Module):
            continue
        for args in ((), (4,), (4, 4), (4, 4, 3), (4, 4, 4), (4, (2, 2))):
            try:
                m = cls(*args)
            except Exception:
                continue
            out.append((name, m))
            break
    # layers whose defaults skip interesting state
    extra = {
        "Transformer": nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                      dim_feedforward=16),
        "TransformerEncoderLayer-gelu": nn.TransformerEncoderLayer(8, 2, 16, activation="gelu"),
        "TransformerEncoder": nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2),
        "TransformerDecoder": nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 1),
        "LSTM-proj": nn.LSTM(4, 8, num_layers=2, bidirectional=True, proj_size=2, batch_first=True),
        "GRU": nn.GRU(4, 4, 2), "RNN": nn.RNN(4, 4, nonlinearity="relu"),
        "Embedding-sparse": nn.Embedding(10, 4, padding_idx=0, max_norm=1.0),
        "EmbeddingBag": nn.EmbeddingBag(10, 4, mode="max"),
        "Upsample": nn.Upsample(scale_factor=2, mode="bilinear"),
        "MultiheadAttention-kdim": nn.MultiheadAttention(8, 2, kdim=4, vdim=4),
        "ParameterList": nn.ParameterList([nn.Parameter(torch.zeros(2))]),
        "ParameterDict": nn.ParameterDict({"p": nn.Parameter(torch.zeros(2))}),
        "AdaptiveLogSoftmaxWithLoss": nn.AdaptiveLogSoftmaxWithLoss(8, 20, [5, 10]),
        "Sequential-mixed": nn.Sequential(collections.OrderedDict(
            c1=nn.Conv1d(2, 4, 3), bn=nn.BatchNorm1d(4), act=nn.GELU(approximate="tanh"),
            drop=nn.Dropout(0.1), pool=nn.AdaptiveAvgPool1d(1), flat=nn.Flatten(),
            fc=nn.Linear(4, 2), ln=nn.LayerNorm(2), rms=nn.RMSNorm(2), sm=nn.Softmax(dim=-1))),
    }
    out.extend(extra.items())
    return out


def _tensor_variants():
    out = {}
    for dt in DTYPES:
        d = getattr(torch, dt, None)
        if d is None:
            continue
        try:
            out[dt] = torch.zeros(4, dtype=d)
        except Exception:
            try:
                out[dt] = torch.empty(4, dtype=d)
            except Exception:
                continue
    x = torch.randn(4, 4)
    out["noncontig"] = x.t()
    out["view"] = x[1:3]
    out["scalar"] = torch.tensor(3.5)
    out["requires_grad"] = torch.randn(2, requires_grad=True)
    out["channels_last"] = torch.randn(1, 2, 3, 3).to(memory_format=torch.channels_last)
    out["meta"] = torch.empty(3, 3, device="meta")
    out["sparse_coo"] = torch.eye(3).to_sparse()
    out["sparse_csr"] = torch.eye(3).to_sparse_csr()
    out["sparse_csc"] = torch.eye(3).to_sparse_csc()
    out["sparse_bsr"] = torch.eye(4).to_sparse_bsr((2, 2))
    out["sparse_bsc"] = torch.eye(4).to_sparse_bsc((2, 2))
    out["q_per_tensor"] = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.quint8)
    out["q_per_tensor_qint8"] = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)
    out["q_per_tensor_qint32"] = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint32)
    out["q_per_channel"] = torch.quantize_per_channel(torch.randn(2, 3), torch.tensor([0.1, 0.2]),
                                                      torch.tensor([0, 1]), 0, torch.qint8)
    out["q_quint4x2"] = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.quint4x2)
    out["q_per_channel_float_qparams"] = torch.quantize_per_channel(
        torch.randn(2, 4), torch.tensor([0.1, 0.2]), torch.tensor([0.0, 1.0]), 0, torch.quint8)
    p = nn.Parameter(torch.randn(3))
    out["parameter"] = p
    p2 = nn.Parameter(torch.randn(3))
    p2.extra_info = {"note": "attribute on a parameter"}
    out["parameter_with_state"] = p2
    t = torch.randn(2)
    t.note = "python attribute on a tensor"
    out["tensor_with_attr"] = t
    out["untyped_storage"] = torch.arange(4).untyped_storage()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["typed_storage"] = torch.FloatStorage(3)
    try:
        out["nested"] = torch.nested.nested_tensor([torch.randn(2), torch.randn(3)])
    except Exception:
        pass
    return out


def _values():
    """Non-tensor values that appear in checkpoints next to tensors."""
    return {
        "size": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "dtypes": [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool, torch.uint8],
        "layouts": [torch.strided, torch.sparse_coo],
        "memory_format": torch.channels_last,
        "qscheme": torch.per_tensor_affine,
        "rng_state": torch.get_rng_state(),
        "generator": torch.Generator().manual_seed(0),
    }


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _checkpoint():
    """A training checkpoint as training scripts write it."""
    net = _TinyNet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    sched.step()
    scaler = torch.amp.GradScaler("cpu")
    return {
        "epoch": 3, "model": net.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
        "args": argparse.Namespace(lr=1e-3, layers=[4, 8, 2], name="tiny"),
        "rng": {"torch": torch.get_rng_state()},
        "metrics": collections.OrderedDict(loss=0.5),
    }


def cases(out: str):
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)

    def save(obj, fname, label, legacy=False):
        path = os.path.join(out, fname)
        if legacy:
            torch.save(obj, path, _use_new_zipfile_serialization=False)
            return Case(f"{TORCH}: {label} (legacy format)", path, "torch-legacy")
        torch.save(obj, path)
        return Case(f"{TORCH}: {label}", path, "torch-zip")

    for name, t in _tensor_variants().items():
        try:
            yield save({"t": t}, f"tensor_{name}.pt", "torch.save of tensors (every dtype, sparse, quantized, parameters)")
        except Exception:
            continue
    try:
        yield save({k: t for k, t in _tensor_variants().items() if not k.startswith("nested")},
                   "tensors_legacy.pt", "torch.save of tensors", legacy=True)
    except Exception:
        pass
    for name, v in _values().items():
        try:
            yield save({name: v}, f"value_{name}.pt", "torch.save of sizes, devices, dtypes, layouts, RNG state")
        except Exception:
            continue
    yield save(_checkpoint(), "checkpoint.pt", "training checkpoint (state_dicts, optimizer, scheduler, argparse args)")
    yield save(_checkpoint(), "checkpoint_legacy.pt", "training checkpoint", legacy=True)
    net = _TinyNet()
    yield save(net.state_dict(), "state_dict.pt", "torch.save of a state_dict")
    for i, (name, m) in enumerate(_module_variants()):
        try:
            yield save(m, f"module_{i}_{name}.pt", "torch.save of a whole torch.nn module")
        except Exception:
            continue
        try:
            yield save(m.state_dict(), f"module_{i}_{name}_sd.pt", "torch.save of a torch.nn module's state_dict")
        except Exception:
            pass
    yield save(nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 2)), "module_legacy.pt", "torch.save of a whole torch.nn module",
               legacy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wn = nn.utils.weight_norm(nn.Linear(3, 3))
        sn = nn.utils.spectral_norm(nn.Linear(3, 3))
    yield save(nn.Sequential(wn, sn), "module_weight_norm.pt", "torch.save of modules with weight_norm/spectral_norm hooks")
    for name, opt_cls in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)):
        n2 = _TinyNet()
        opt = opt_cls(n2.parameters(), lr=0.1)
        n2(torch.randn(2, 4)).sum().backward()
        opt.step()
        yield save(opt.state_dict(), f"optim_{name}_sd.pt", "optimizer state_dict")

    # Files that contain globals this allow-list refuses (reported as exclusions, see review.py):
    # torch.fx GraphModules pickle their generated Python source and exec it on load, and plain
    # pickle/joblib of a tensor nests a whole torch.load() in torch.storage._load_from_bytes.
    gm = torch.fx.symbolic_trace(_TinyNet())
    yield save(gm, "fx_graph_module.pt", "torch.save of a torch.fx GraphModule")
    path = os.path.join(out, "tensor_plain_pickle.pkl")
    with open(path, "wb") as f:
        import pickle

        pickle.dump({"w": torch.randn(2)}, f)
    yield Case(f"{TORCH}: pickle.dump of a tensor (not torch.save)", path, "pickle")

    # TorchScript archives: data.pkl / constants.pkl are read by torch.jit.load's own unpickler
    def jit(m, fname, label):
        path = os.path.join(out, fname)
        torch.jit.save(m, path)
        return Case(f"{TORCH}: {label}", path, "torch-zip")  # walk_torch_zip detects TorchScript

    yield jit(torch.jit.script(Scripted()), "ts_scripted.pt", "torch.jit.save of a scripted module")
    yield jit(torch.jit.script(WithConstants()), "ts_constants.pt", "torch.jit.save of a scripted module with constants")
    yield jit(torch.jit.trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)),
                              torch.randn(1, 1, 4, 4)),
              "ts_traced.pt", "torch.jit.save of a traced module")
    yield jit(torch.jit.trace(_TinyNet(), torch.randn(1, 4)), "ts_traced2.pt", "torch.jit.save of a traced module")
    qm = torch.ao.nn.quantized.Linear(4, 4)
    try:
        yield jit(torch.jit.script(nn.Sequential(qm)), "ts_quantized.pt", "torch.jit.save of a quantized module")
    except Exception:
        pass
