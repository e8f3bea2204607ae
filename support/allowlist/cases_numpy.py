"""NumPy files: np.save/np.savez of object arrays, and pickled arrays, dtypes and scalars."""

from __future__ import annotations

import datetime
import decimal
import os
import pickle
import warnings

import numpy as np

from common import Case

NUMPY = f"numpy {np.__version__}"


def _values() -> dict:
    """The NumPy objects that end up inside pickled models, one per kind."""
    structured = np.dtype([("a", "<i4"), ("b", "<f8", (2,)), ("c", "U3")])
    vals = {
        "array_f8": np.arange(6.0).reshape(2, 3),
        "array_fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "array_int": np.arange(5, dtype=np.int32),
        "array_bool": np.array([True, False]),
        "array_complex": np.array([1 + 2j]),
        "array_str": np.array(["a", "bc"]),
        "array_bytes": np.array([b"a", b"bc"]),
        "array_datetime": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        "array_timedelta": np.array([1, 2], dtype="timedelta64[s]"),
        "array_structured": np.zeros(2, dtype=structured),
        "array_object": np.array([1, "a", None, 2.5], dtype=object),
        "array_0d": np.array(3.0),
        "array_big_endian": np.arange(3, dtype=">f4"),
        "array_float16": np.arange(3, dtype=np.float16),
        "array_longdouble": np.arange(3, dtype=np.longdouble),
        "dtypes": [np.dtype("f8"), np.dtype("i4"), np.dtype("O"), np.dtype("U5"), np.dtype("M8[ns]"), structured],
        "scalars": [np.float64(1.5), np.float32(2.5), np.int64(3), np.int8(-1), np.uint16(7), np.bool_(True),
                    np.complex128(1j), np.str_("x"), np.bytes_(b"y"), np.datetime64("2020-01-01"),
                    np.timedelta64(5, "s"), np.longdouble(1.0), np.float16(0.5), np.void(b"ab"),
                    np.zeros(1, dtype=structured)[0]],
        # scalar types and DType classes are pickled by reference when stored as a parameter
        # (e.g. scikit-learn's dtype=np.float32)
        "scalar_types": sorted({t for t in np.sctypeDict.values()}, key=lambda t: t.__name__),
        "dtype_classes": [getattr(np.dtypes, n) for n in sorted(np.dtypes.__all__)],
        "masked_array": np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-1.0),
        "masked_constant": np.ma.masked,
        "matrix": np.matrix([[1, 2], [3, 4]]),
        "recarray": np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "random_state": np.random.RandomState(0),
        "generator": np.random.default_rng(0),
        "bit_generators": [np.random.MT19937(0), np.random.PCG64(0), np.random.PCG64DXSM(0), np.random.Philox(0),
                           np.random.SFC64(0)],
        "seed_sequence": np.random.SeedSequence(1234),
    }
    try:
        vals["array_stringdtype"] = np.array(["a", "bb"], dtype=np.dtypes.StringDType())
        vals["stringdtype"] = np.dtypes.StringDType(na_object=None)
    except Exception:
        pass
    return vals


def cases(out: str):
    warnings.filterwarnings("ignore")
    for name, v in _values().items():
        for proto in (2, 4, 5):
            path = os.path.join(out, f"np_{name}_p{proto}.pkl")
            with open(path, "wb") as f:
                pickle.dump(v, f, protocol=proto)
            yield Case(f"{NUMPY}: pickled arrays, dtypes, scalars, masked arrays, RNG state", path, "pickle")
    for proto in (0, 1):
        path = os.path.join(out, f"np_array_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump([np.arange(3.0), np.float64(1.0), np.dtype("i4")], f, protocol=proto)
        yield Case(f"{NUMPY}: pickled arrays at protocol {proto}", path, "pickle")

    # np.save of object arrays: a pickle follows the .npy header (np.load(allow_pickle=True))
    objects = np.empty(8, dtype=object)
    objects[:] = [1, 2.5, "text", None, {"k": [1, 2]}, (1, "a"), np.arange(3), b"bytes"]
    path = os.path.join(out, "object_array.npy")
    np.save(path, objects, allow_pickle=True)
    yield Case(f"{NUMPY}: np.save of an object array", path, "npy")
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.zeros(2), np.ones(3), np.arange(4)]
    path = os.path.join(out, "ragged.npy")
    np.save(path, ragged, allow_pickle=True)
    yield Case(f"{NUMPY}: np.save of a ragged object array", path, "npy")
    stdlib = np.empty(4, dtype=object)
    stdlib[:] = [datetime.date(2020, 1, 2), decimal.Decimal("1.5"), {1, 2}, frozenset({3})]
    path = os.path.join(out, "object_array_stdlib.npy")
    np.save(path, stdlib, allow_pickle=True)
    yield Case(f"{NUMPY}: np.save of an object array of stdlib values", path, "npy")
    path = os.path.join(out, "arrays.npz")
    np.savez(path, a=np.arange(3), o=objects, allow_pickle=True)
    yield Case(f"{NUMPY}: np.savez with an object array", path, "npz")
    path = os.path.join(out, "arrays_compressed.npz")
    np.savez_compressed(path, o=objects, allow_pickle=True)
    yield Case(f"{NUMPY}: np.savez_compressed with an object array", path, "npz")
