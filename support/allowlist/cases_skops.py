"""skops files: every fitted scikit-learn estimator of cases_sklearn written with skops.io.dump,
plus the NumPy random states and generators skops has node kinds of its own for.

skops does not pickle: its schema.json names classes and functions that skops.io.load imports
(skops_walk.py). Names only these files contain are allowed for the loader "skops" alone.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import skops
import skops.io as sio

import cases_sklearn
from common import Case

SKOPS = f"skops {skops.__version__} + {cases_sklearn.SKLEARN}"

SKIPPED: list[tuple[str, str]] = []


def _dump(obj, out: str, name: str, label: str):
    safe = name.replace("/", "_").replace(" ", "_").replace("'", "").replace(",", "")[:80]
    path = os.path.join(out, f"sk_{safe}.skops")
    sio.dump(obj, path)
    return Case(label, path, "skops")


def cases(out: str):
    warnings.filterwarnings("ignore")
    SKIPPED.clear()
    for name, est in cases_sklearn.fitted():
        try:
            yield _dump(est, out, name, f"{SKOPS}: skops.io.dump of a fitted estimator")
        except Exception as e:
            SKIPPED.append((f"skops {name}", f"cannot dump: {type(e).__name__}: {e}"[:160]))
    rngs = [("RandomState", np.random.RandomState(0))]
    for bg in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        rngs.append((f"Generator_{bg}", np.random.Generator(getattr(np.random, bg)(0))))
    for name, rng in rngs:
        yield _dump({"random_state": rng}, out, name, f"skops {skops.__version__} + numpy {np.__version__}: "
                    "skops.io.dump of a random state or generator")
