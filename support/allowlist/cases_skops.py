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


def check_node_kinds():
    """The Rust walker's KNOWN_LOADERS must be exactly the node kinds this skops registers: a new
    kind would otherwise be reported as unknown (MG112) in every file that uses it, or a removed
    one accepted silently."""
    import re

    from skops.io._audit import NODE_TYPE_MAPPING

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "crates", "modelgate-formats", "src", "skops.rs"), encoding="utf-8") as f:
        src = f.read()
    block = src[src.index("const KNOWN_LOADERS"):]
    block = block[:block.index("];")]
    rust = set(re.findall(r'"(\w+)"', block))
    installed = {kind for kind, _protocol in NODE_TYPE_MAPPING}
    if rust != installed:
        raise SystemExit(f"skops {skops.__version__} node kinds differ from skops.rs KNOWN_LOADERS: "
                         f"only in skops {sorted(installed - rust)}, only in skops.rs {sorted(rust - installed)}")


def cases(out: str):
    warnings.filterwarnings("ignore")
    SKIPPED.clear()
    check_node_kinds()
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
