"""joblib wrappers, transformers TrainingArguments, and the stdlib value types models carry."""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import fractions
import os
import pathlib
import pickle
import uuid
import warnings

import joblib
import numpy as np

from common import Case

JOBLIB = f"joblib {joblib.__version__}"


def _stdlib_values() -> dict:
    return {
        "builtins": [set([1, 2]), frozenset([3]), complex(1, 2), bytearray(b"ab"), slice(1, 5, 2), range(3), b"bytes",
                     b"", bytearray()],
        "builtin_types": [int, float, str, bytes, list, dict, tuple, bool, object, set, frozenset, complex, bytearray,
                          slice, range],
        "collections": [collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]),
                        collections.defaultdict(int), collections.Counter("abca"), collections.deque([1, 2], maxlen=5)],
        "datetime": [datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.date(2020, 1, 2), datetime.time(1, 2),
                     datetime.timedelta(days=1), datetime.timezone.utc,
                     datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))],
        "decimal": [decimal.Decimal("1.25")],
        "fractions": [fractions.Fraction(1, 3)],
        "uuid": [uuid.UUID("12345678-1234-5678-1234-567812345678")],
        "pathlib": [pathlib.PurePosixPath("/a/b"), pathlib.PosixPath("/a/b"), pathlib.PureWindowsPath("c:/a")],
        "argparse": [argparse.Namespace(a=1, b="x")],
    }


def cases(out: str):
    warnings.filterwarnings("ignore")
    for name, vals in _stdlib_values().items():
        for proto in (0, 2, 4, 5):
            path = os.path.join(out, f"std_{name}_p{proto}.pkl")
            with open(path, "wb") as f:
                pickle.dump(vals, f, protocol=proto)
            yield Case(f"CPython 3.11: pickled {name} values (protocols 0-5)", path, "pickle")

    # joblib: arrays are written as NumpyArrayWrapper + raw bytes, object arrays as nested pickles
    payload = {"a": np.arange(10.0), "f": np.asfortranarray(np.ones((3, 2))), "o": np.array([1, "x", None], dtype=object),
               "s": np.zeros(2, dtype=[("x", "i4"), ("y", "f8")]), "u": np.array(["ab", "c"]), "e": np.zeros((0, 3)),
               "list": [np.int64(1), np.float32(2.0)]}
    path = os.path.join(out, "joblib_arrays.joblib")
    joblib.dump(payload, path)
    yield Case(f"{JOBLIB}: joblib.dump of arrays (NumpyArrayWrapper)", path, "joblib")
    for proto in (2, 3, 4):
        path = os.path.join(out, f"joblib_arrays_p{proto}.joblib")
        joblib.dump(payload, path, protocol=proto)
        yield Case(f"{JOBLIB}: joblib.dump of arrays (NumpyArrayWrapper)", path, "joblib")

    # scipy sparse matrices: TF-IDF / one-hot outputs pickled next to scikit-learn models
    try:
        import scipy
        import scipy.sparse as sp

        m = sp.random(5, 4, density=0.5, format="csr", random_state=0)
        mats = [m, m.tocsc(), m.tocoo(), sp.csr_array(m), sp.csc_array(m), sp.coo_array(m)]
        for proto in (2, 5):
            path = os.path.join(out, f"scipy_sparse_p{proto}.pkl")
            with open(path, "wb") as f:
                pickle.dump(mats, f, protocol=proto)
            yield Case(f"scipy {scipy.__version__}: pickled sparse matrices (csr/csc/coo)", path, "pickle")
    except ImportError as e:
        print(f"  scipy cases skipped: {e}")

    # transformers: Trainer saves training_args.bin with torch.save(TrainingArguments)
    try:
        import torch
        import transformers
        from transformers import Seq2SeqTrainingArguments, TrainingArguments

        label = f"transformers {transformers.__version__}: training_args.bin (torch.save of TrainingArguments)"
        variants = {
            "default": TrainingArguments(output_dir=os.path.join(out, "ta")),
            "strategies": TrainingArguments(output_dir=os.path.join(out, "ta"), eval_strategy="steps",
                                            save_strategy="epoch", logging_strategy="no", lr_scheduler_type="cosine",
                                            optim="adafactor", hub_strategy="checkpoint", report_to="none",
                                            accelerator_config={"split_batches": True}),
            "seq2seq": Seq2SeqTrainingArguments(output_dir=os.path.join(out, "ta"), predict_with_generate=True),
        }
        for name, kw in {"debug": {"debug": "underflow_overflow"}, "fsdp": {"fsdp": "full_shard"},
                         "save-steps": {"save_strategy": "steps", "eval_strategy": "epoch", "logging_strategy": "steps"}
                         }.items():
            try:
                variants[name] = TrainingArguments(output_dir=os.path.join(out, "ta"), **kw)
            except Exception as e:  # some options need hardware this machine lacks
                print(f"  TrainingArguments({kw}) skipped: {type(e).__name__}: {str(e)[:80]}")
        for name, args in variants.items():
            path = os.path.join(out, f"training_args_{name}.bin")
            torch.save(args, path)
            yield Case(label, path, "torch-zip")
    except Exception as e:  # transformers missing or changed: report, do not hide
        print(f"  transformers cases skipped: {type(e).__name__}: {e}")
