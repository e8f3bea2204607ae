#!/usr/bin/env python3
"""Writes a large checkpoint in torch.save's zip layout using only the standard library.

Same structure as `torch.save(state_dict)`: `<name>/data.pkl` (a protocol-2 pickle whose tensors
are `torch._utils._rebuild_tensor_v2` calls on persistent-id storages), `<name>/data/<key>` raw
storages, `byteorder`, `version`. Used by the benchmark when no torch is at hand; the tensors
hold pseudo-random bytes.

    python3 make_checkpoint.py OUT.pt SIZE_GIB
"""
import io
import os
import random
import sys
import zipfile


def data_pkl(n_tensors, numel):
    out = io.BytesIO()
    w = out.write
    w(b"\x80\x02ccollections\nOrderedDict\n)R(")
    for i in range(n_tensors):
        key = str(i).encode()
        name = f"layer{i}.weight".encode()
        w(b"X" + len(name).to_bytes(4, "little") + name)
        w(b"ctorch._utils\n_rebuild_tensor_v2\n(")
        w(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n")
        w(b"X" + len(key).to_bytes(4, "little") + key)
        w(b"X\x03\x00\x00\x00cpuJ" + numel.to_bytes(4, "little") + b"tQ")
        w(b"K\x00J" + numel.to_bytes(4, "little") + b"\x85K\x01\x85\x89")
        w(b"ccollections\nOrderedDict\n)RtR")
    w(b"u.")
    return out.getvalue()


def main():
    path, gib = sys.argv[1], int(sys.argv[2])
    per = 256 << 20
    n = gib * 4
    name = os.path.splitext(os.path.basename(path))[0]
    rnd = random.Random(0)
    chunk = rnd.randbytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr(f"{name}/data.pkl", data_pkl(n, per // 4))
        z.writestr(f"{name}/byteorder", b"little")
        for i in range(n):
            with z.open(f"{name}/data/{i}", "w", force_zip64=True) as f:
                for _ in range(per >> 20):
                    f.write(chunk)
        z.writestr(f"{name}/version", b"3\n")


if __name__ == "__main__":
    main()
