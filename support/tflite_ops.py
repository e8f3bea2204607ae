#!/usr/bin/env python3
"""Writes crates/modelgate-formats/data/tflite-builtin-ops.txt: TFLite's BuiltinOperator enum
(code and name, one per line) from the schema TensorFlow ships.

    /work/venv-tf/bin/python support/tflite_ops.py      # any interpreter with tensorflow-cpu

The TFLite parser names builtin operator codes with it in the inventory and the BOM
(`CONV_2D` rather than `BUILTIN(3)`). A code beyond the table (a newer schema) stays
`BUILTIN(n)`. Regenerate it when moving to a newer TensorFlow; the first line records the
version it came from.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "crates", "modelgate-formats", "data", "tflite-builtin-ops.txt")


def main():
    ops = sorted((v, k) for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_"))
    codes = [v for v, _ in ops]
    assert codes == list(range(len(codes))), "BuiltinOperator codes are not 0..n"
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(f"# TensorFlow {tf.__version__} lite/schema BuiltinOperator: code name\n")
        for code, name in ops:
            f.write(f"{code} {name}\n")
    print(f"{len(ops)} builtin operators -> {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
