"""Static walk of pickle streams: which globals would the unpickler import?

Nothing here unpickles. Every stream is read with ``pickletools.genops`` and run on a small
symbolic stack machine that only keeps what is needed to resolve imports:

* ``GLOBAL``/``INST`` operands are taken from the opcode argument;
* ``STACK_GLOBAL`` operands are taken from the symbolic stack, which follows ``PUT``/``GET``/
  ``MEMOIZE`` through the memo, so a name stored once and fetched later is still resolved;
  an operand that is not a plain string is reported as unresolved;
* names are renamed exactly as CPython's ``find_class`` does for protocols below 3
  (``_compat_pickle``: ``__builtin__`` -> ``builtins``, ``copy_reg`` -> ``copyreg`` ...);
* container formats are opened the way their loaders open them: torch zip archives (every
  member that is a pickle), legacy torch stacked pickles, ``.npy`` object arrays, ``.npz``, and
  joblib files, whose raw array bytes (and nested object-array pickles) follow each
  ``NumpyArrayWrapper`` BUILD and are skipped or walked using the wrapper's own state.

The result is a list of :class:`Hit` (module, name, loader, where).
"""

from __future__ import annotations

import _compat_pickle
import ast
import io
import pickletools
import struct
import zipfile
from dataclasses import dataclass

LOADERS = ("pickle", "joblib", "torch-zip", "torchscript", "torch-legacy", "numpy-object")


@dataclass(frozen=True)
class Hit:
    module: str
    name: str
    loader: str
    where: str  # file (and member) it was seen in


class Unresolved:
    """A STACK_GLOBAL operand that is not a plain string."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<unresolved>"


class _Mark:
    pass


MARK = _Mark()


class Global:
    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name


class Obj:
    """Result of a call (REDUCE/NEWOBJ/OBJ/INST); ``state`` is what BUILD gave it."""

    __slots__ = ("callee", "args", "state")

    def __init__(self, callee, args):
        self.callee = callee
        self.args = args
        self.state = None


class SymDict:
    __slots__ = ("items",)

    def __init__(self, items=None):
        self.items = list(items or [])

    def get(self, key, default=None):
        for k, v in self.items:
            if k == key:
                return v
        return default


def find_class_name(module: str, name: str, proto: int) -> tuple[str, str]:
    """CPython's ``Unpickler.find_class`` renaming (fix_imports=True)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name


class Walker:
    """Runs one pickle stream symbolically from a file object positioned at its start."""

    def __init__(self, fh, where: str, loader: str, hits: list, joblib: bool = False):
        self.fh = fh
        self.where = where
        self.loader = loader
        self.hits = hits
        self.joblib = joblib
        self.proto = 0

    def _record(self, module, name):
        if isinstance(module, str) and isinstance(name, str):
            module, name = find_class_name(module, name, self.proto)
            self.hits.append(Hit(module, name, self.loader, self.where))
            return Global(module, name)
        self.hits.append(Hit("<unresolved>", repr((module, name)), self.loader, self.where))
        return Unresolved()

    def run(self) -> None:
        stack: list = []
        marks: list = []
        memo: dict = {}

        def pop_mark():
            nonlocal stack
            items = stack
            stack = marks.pop()
            return items

        for op, arg, _pos in pickletools.genops(self.fh):
            n = op.name
            if n == "PROTO":
                self.proto = arg
            elif n in ("FRAME",):
                pass
            elif n in (
                "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
                "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES",
                "BINBYTES8", "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
                "BINUNICODE8", "FLOAT", "BINFLOAT",
            ):
                stack.append(arg)
            elif n == "NONE":
                stack.append(None)
            elif n == "NEWTRUE":
                stack.append(True)
            elif n == "NEWFALSE":
                stack.append(False)
            elif n in ("NEXT_BUFFER",):
                stack.append(Unresolved())
            elif n == "READONLY_BUFFER":
                pass
            elif n in ("EMPTY_LIST",):
                stack.append([])
            elif n == "EMPTY_TUPLE":
                stack.append(())
            elif n == "EMPTY_DICT":
                stack.append(SymDict())
            elif n == "EMPTY_SET":
                stack.append([])
            elif n == "APPEND":
                v = stack.pop()
                if isinstance(stack[-1], list):
                    stack[-1].append(v)
            elif n == "APPENDS":
                items = pop_mark()
                if isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif n == "ADDITEMS":
                items = pop_mark()
                if isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif n == "LIST":
                items = pop_mark()  # rebinds `stack`: pop first, then push
                stack.append(list(items))
            elif n == "TUPLE":
                items = pop_mark()
                stack.append(tuple(items))
            elif n == "FROZENSET":
                items = pop_mark()
                stack.append(list(items))
            elif n == "TUPLE1":
                stack[-1:] = [tuple(stack[-1:])]
            elif n == "TUPLE2":
                stack[-2:] = [tuple(stack[-2:])]
            elif n == "TUPLE3":
                stack[-3:] = [tuple(stack[-3:])]
            elif n == "DICT":
                items = pop_mark()
                stack.append(SymDict(zip(items[0::2], items[1::2])))
            elif n == "SETITEM":
                v = stack.pop()
                k = stack.pop()
                if isinstance(stack[-1], SymDict):
                    stack[-1].items.append((k, v))
            elif n == "SETITEMS":
                items = pop_mark()
                if isinstance(stack[-1], SymDict):
                    stack[-1].items.extend(zip(items[0::2], items[1::2]))
            elif n == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif n == "DUP":
                stack.append(stack[-1])
            elif n == "MARK":
                marks.append(stack)
                stack = []
            elif n == "POP_MARK":
                pop_mark()
            elif n in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(arg, Unresolved()))
            elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif n == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif n in ("EXT1", "EXT2", "EXT4"):
                self.hits.append(Hit("<extension>", str(arg), self.loader, self.where))
                stack.append(Unresolved())
            elif n == "GLOBAL":
                module, _, name = arg.partition(" ")
                stack.append(self._record(module, name))
            elif n == "STACK_GLOBAL":
                name = stack.pop()
                module = stack.pop()
                stack.append(self._record(module, name))
            elif n == "INST":
                module, _, name = arg.partition(" ")
                g = self._record(module, name)
                stack.append(Obj(g, tuple(pop_mark())))
            elif n == "OBJ":
                items = pop_mark()
                stack.append(Obj(items[0] if items else Unresolved(), tuple(items[1:])))
            elif n == "REDUCE":
                args = stack.pop()
                func = stack.pop()
                stack.append(Obj(func, args))
            elif n == "NEWOBJ":
                args = stack.pop()
                cls = stack.pop()
                stack.append(Obj(cls, args))
            elif n == "NEWOBJ_EX":
                stack.pop()  # kwargs
                args = stack.pop()
                cls = stack.pop()
                stack.append(Obj(cls, args))
            elif n == "BUILD":
                state = stack.pop()
                target = stack[-1]
                if isinstance(target, Obj):
                    target.state = state
                    if self.joblib and _is_wrapper(target):
                        self._skip_joblib_array(target)
            elif n in ("PERSID", "BINPERSID"):
                if n == "BINPERSID":
                    stack.pop()
                stack.append(Unresolved())
            elif n == "STOP":
                return
            else:  # pragma: no cover - every opcode is handled above
                raise ValueError(f"unhandled opcode {n}")

    def _skip_joblib_array(self, wrapper: "Obj") -> None:
        """After BUILD of a NumpyArrayWrapper joblib reads the array bytes from the stream."""
        state = wrapper.state
        if not isinstance(state, SymDict):
            raise ValueError("NumpyArrayWrapper state is not a dict")
        shape = state.get("shape")
        dtype = state.get("dtype")
        align = state.get("numpy_array_alignment_bytes")
        count = 1
        for d in shape:
            count *= int(d)
        itemsize, hasobject = _dtype_itemsize(dtype)
        if hasobject:
            # A nested pickle stream (protocol 5) read by a fresh Unpickler on the same handle.
            Walker(self.fh, self.where + " [object array]", self.loader, self.hits, joblib=True).run()
            return
        if align is not None:
            pad = self.fh.read(1)[0]
            self.fh.read(pad)
        self.fh.seek(count * itemsize, io.SEEK_CUR)


def _is_wrapper(obj: Obj) -> bool:
    c = obj.callee
    return isinstance(c, Global) and c.name in ("NumpyArrayWrapper",) and c.module.endswith("numpy_pickle")


def _dtype_itemsize(dtype) -> tuple[int, bool]:
    """Item size of a symbolically rebuilt ``numpy.dtype(str, align, copy)`` + BUILD state."""
    if not isinstance(dtype, Obj) or not isinstance(dtype.args, tuple) or not dtype.args:
        raise ValueError("cannot size a joblib array whose dtype is not a numpy.dtype call")
    code = dtype.args[0]
    state = dtype.state
    elsize = None
    if isinstance(state, tuple) and len(state) >= 8 and isinstance(state[5], int) and state[5] > 0:
        elsize = state[5]
    hasobject = code.startswith("O")
    if isinstance(state, tuple) and len(state) >= 5 and isinstance(state[4], SymDict):
        # structured dtype: any object field makes the whole array an object pickle
        hasobject = hasobject or _fields_have_object(state[4])
    if elsize is None:
        import numpy as np  # a dtype from a plain string code, not from pickle data

        elsize = np.dtype(code).itemsize
    return elsize, hasobject


def _fields_have_object(fields: SymDict) -> bool:
    for _k, v in fields.items:
        if isinstance(v, tuple) and v and isinstance(v[0], Obj) and v[0].args and str(v[0].args[0]).startswith("O"):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# containers


def walk_stream(data: bytes, where: str, loader: str, hits: list, *, max_streams: int | None = None,
                joblib: bool = False) -> int:
    """Walk concatenated pickles in ``data`` until EOF (or ``max_streams``). Returns the end offset."""
    fh = io.BytesIO(data)
    n = 0
    while fh.tell() < len(data) and (max_streams is None or n < max_streams):
        Walker(fh, where if n == 0 else f"{where} [stream {n}]", loader, hits, joblib=joblib).run()
        n += 1
    return fh.tell()


def walk_npy(data: bytes, where: str, hits: list) -> None:
    if not data.startswith(b"\x93NUMPY"):
        raise ValueError(f"{where}: not an npy file")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    descr = header["descr"]
    if "O" in str(descr):  # object dtype, alone or as a structured field: a pickle follows
        walk_stream(data[start + hlen:], where, "numpy-object", hits, max_streams=1)


def walk_torch_zip(data: bytes, where: str, hits: list) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        script = any("/code/" in n or n.endswith("constants.pkl") for n in names)
        loader = "torchscript" if script else "torch-zip"
        for n in names:
            blob = zf.read(n)
            if n.endswith(".pkl") or n.endswith(".debug_pkl"):
                walk_stream(blob, f"{where}:{n}", loader, hits)


def walk_torch_legacy(data: bytes, where: str, hits: list) -> None:
    # magic, protocol version, sys_info, the object, the storage keys; raw storage bytes follow
    walk_stream(data, where, "torch-legacy", hits, max_streams=5)


def walk_file(path: str, kind: str, hits: list) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if kind == "pickle":
        walk_stream(data, path, "pickle", hits)
    elif kind == "joblib":
        walk_stream(data, path, "joblib", hits, joblib=True)
    elif kind == "torch-zip":
        walk_torch_zip(data, path, hits)
    elif kind == "torch-legacy":
        walk_torch_legacy(data, path, hits)
    elif kind == "npy":
        walk_npy(data, path, hits)
    elif kind == "skops":
        import skops_walk

        skops_walk.walk_skops(path, hits)
    elif kind == "npz":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for n in zf.namelist():
                walk_npy(zf.read(n), f"{path}:{n}", hits)
    else:
        raise ValueError(f"unknown kind {kind}")
