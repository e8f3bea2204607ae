"""Static walk of a skops file's schema.json: every name `skops.io.load` would import.

An independent reading of skops 0.16 (`skops/io/_general.py`, `_numpy.py`, `_scipy.py`,
`_sklearn.py`): each JSON object with a `__loader__` is a node, and most node kinds import
`__module__`.`__class__`. A few name something else as well: a protocol-0 `FunctionNode` names its
function in `content.module_path` / `content.function`, an `OperatorFuncNode` calls
`operator.<__class__>`, a `MethodNode` looks `content.func` up on the rebuilt object, and a
`RandomGeneratorNode` builds `numpy.random.<bit_generator>`. Nothing is imported or loaded here.
The Rust walker (crates/modelgate-formats/src/skops.rs) follows the same rules; the two are kept
apart on purpose so that one checks the other.
"""

from __future__ import annotations

import json
import zipfile

from pickle_walk import Hit

LOADER = "skops"


def _bit_generator(content) -> str | None:
    """`content.bit_generator` is the name itself (old protocols) or a DictNode of the bit
    generator's state whose `bit_generator` entry is a JsonNode holding the name."""
    if not isinstance(content, dict):
        return None
    bg = content.get("bit_generator")
    if isinstance(bg, str):
        return bg
    try:
        value = json.loads(bg["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def _walk(value, where: str, hits: list) -> None:
    if isinstance(value, list):
        for v in value:
            _walk(v, where, hits)
        return
    if not isinstance(value, dict):
        return
    loader = value.get("__loader__")
    if isinstance(loader, str) and loader not in ("JsonNode", "SliceNode", "CachedNode"):
        module, cls = value.get("__module__"), value.get("__class__")
        if not (isinstance(module, str) and isinstance(cls, str)):
            raise ValueError(f"{where}: a {loader} without __module__/__class__")
        content = value.get("content")
        if loader == "OperatorFuncNode":
            hits.append(Hit("operator", cls, LOADER, where))
        else:
            hits.append(Hit(module, cls, LOADER, where))
        if loader == "FunctionNode" and isinstance(content, dict) and "module_path" in content:
            hits.append(Hit(content["module_path"], content["function"], LOADER, where))
        if loader == "MethodNode" and isinstance(content, dict) and isinstance(content.get("func"), str):
            hits.append(Hit(module, f"{cls}.{content['func']}", LOADER, where))
        if loader == "RandomGeneratorNode":
            bg = _bit_generator(content)
            if bg:
                hits.append(Hit("numpy.random", bg, LOADER, where))
    for v in value.values():
        _walk(v, where, hits)


def walk_skops(path: str, hits: list) -> None:
    with zipfile.ZipFile(path) as zf:
        schema = json.loads(zf.read("schema.json"))
    _walk(schema, f"{path}:schema.json", hits)
