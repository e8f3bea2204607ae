#!/usr/bin/env python3
"""The silent-pass hunter: a differential oracle for modelgate (support/hunter/README.md).

Seeds are malicious files made here with the real libraries (pickle, torch.save, numpy.save,
joblib.dump) or written as Jinja text. Their payload is harmless but observable: it creates
`hunter_mark` in the working directory. Each mutant is a structure-aware rewrite of a seed that a
loader should still run. Every mutant is

1. scanned by modelgate (a batch of mutants per `modelgate scan --json` run, one file per
   directory; a file that passes in the batch is scanned again alone and must exit 0), and
2. loaded by the real library in a forked child, in a throw-away directory, with a timeout.

A mutant whose payload ran (the marker appeared) and that modelgate passes is a SILENT PASS: it is
saved under `found/` with a note. Mutants a loader rejects are counted as not loadable.

Nothing here runs at scan time; this script is a test harness and needs the heavy libraries
(requirements.txt). The payloads only create an empty file or directory named `hunter_mark`.
"""

import argparse
import bz2
import codecs
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import pickletools
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

MARK = "hunter_mark"
FAMILIES = ("pickle", "torch", "numpy", "joblib", "template")

# --------------------------------------------------------------------------------------------
# Payloads: objects whose __reduce__ makes the unpickler call something that creates MARK.
# --------------------------------------------------------------------------------------------


class R:
    """Pickles as `f(*args)` (REDUCE). Callable so that it can stand as another R's callable."""

    def __init__(self, f, *args):
        self.f = f
        self.args = args

    def __reduce__(self):
        return (self.f, self.args)

    def __call__(self, *a):  # never called: only pickled
        raise RuntimeError("not for calling")


def payloads():
    import builtins
    import functools
    import operator
    import pathlib
    import subprocess as sp

    return {
        "os.makedirs": R(os.makedirs, MARK),
        "posix.mkdir": R(os.mkdir, MARK),
        "io.open": R(builtins.open, MARK, "w"),
        "os.open": R(os.open, MARK, os.O_CREAT | os.O_WRONLY),
        "posix.system": R(os.system, "mkdir " + MARK),
        "subprocess.call": R(sp.call, ["mkdir", MARK]),
        "builtins.exec": R(builtins.exec, f"open('{MARK}','w').close()"),
        "builtins.eval": R(builtins.eval, f"__import__('os').mkdir('{MARK}')"),
        "getattr(__import__)": R(R(builtins.getattr, R(builtins.__import__, "os"), "mkdir"), MARK),
        "pathlib.touch": R(R(builtins.getattr, R(pathlib.Path, MARK), "touch")),
        "operator.methodcaller": R(R(operator.methodcaller, "mkdir"), R(pathlib.Path, MARK)),
        "functools.partial": R(R(functools.partial, os.mkdir, MARK)),
        "codecs.open": R(codecs.open, MARK, "w"),
    }


def wrap(payload, rnd, torch_mod=None):
    """The payload alone or inside an ordinary-looking structure."""
    k = rnd.randrange(4)
    if k == 0:
        return payload
    if k == 1:
        return {"epoch": 3, "lr": 0.001, "state": payload, "name": "model"}
    if k == 2:
        return [1, 2.5, "x", payload, None, True]
    return {"config": {"layers": [4, 8], "act": "relu"}, "extra": (payload,)}


# --------------------------------------------------------------------------------------------
# Pickle re-encoder
# --------------------------------------------------------------------------------------------

OPS = {op.name: op for op in pickletools.opcodes}
MARKOBJ = pickletools.markobject
USTR = {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
SSTR = {"STRING", "BINSTRING", "SHORT_BINSTRING"}
BYTES = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
INTS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
STORES = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
FETCHES = {"GET", "BINGET", "LONG_BINGET"}


class Op:
    __slots__ = ("name", "arg", "raw", "old")

    def __init__(self, name, arg=None, raw=None, old=None):
        self.name = name
        self.arg = arg
        self.raw = raw
        self.old = old  # memo index in the original stream (stores and fetches)

    def __repr__(self):
        return f"{self.name}({self.arg!r})"


def parse_stream(data, start=0):
    """One pickle stream at `start`: (ops, end offset). Raises on anything genops rejects."""
    ops = []
    positions = []
    end = None
    for opcode, arg, pos in pickletools.genops(io.BytesIO(data[start:])):
        ops.append(Op(opcode.name, arg))
        positions.append(pos)
        if opcode.name == "STOP":
            end = pos + 1
            break
    if end is None:
        raise ValueError("no STOP")
    positions.append(end)
    for i, op in enumerate(ops):
        op.raw = data[start + positions[i] : start + positions[i + 1]]
    # Memo indices as the unpickler numbers them.
    keys = set()
    for op in ops:
        if op.name == "MEMOIZE":
            op.old = len(keys)
            keys.add(op.old)
        elif op.name in STORES:
            op.old = op.arg
            keys.add(op.arg)
        elif op.name in FETCHES:
            op.old = op.arg
    return ops, start + end


def effect(name):
    """(pops to a mark?, items popped (below the mark when it pops to one), items pushed)."""
    op = OPS[name]
    before, after = op.stack_before, op.stack_after
    if MARKOBJ in before:
        return True, before.index(MARKOBJ), len(after)
    return False, len(before), len(after)


def analyse(ops):
    """Per op: (start indices of the items it pops, bottom first; index of the MARK it pops).

    An item's start is the index of the first op that built it. Returns None when the stream
    does something the simulation does not follow (then no structural rewrite is made)."""
    stack = []  # entries: ("m", idx) or ("o", start)
    info = []
    try:
        for i, op in enumerate(ops):
            if op.name == "MARK":
                info.append(([], None))
                stack.append(("m", i))
                continue
            if op.name == "DUP":
                top = stack[-1]
                info.append(([top[1]], None))
                stack.append(("o", i))
                continue
            if op.name == "POP" and stack and stack[-1][0] == "m":
                m = stack.pop()
                info.append(([], m[1]))
                continue
            to_mark, n, pushed = effect(op.name)
            popped = []
            mark = None
            if to_mark:
                while stack[-1][0] != "m":
                    popped.append(stack.pop()[1])
                mark = stack.pop()[1]
                popped.reverse()
                below = [stack.pop()[1] for _ in range(n)][::-1]
                popped = below + popped
            else:
                popped = [stack.pop()[1] for _ in range(n)][::-1]
                if any(p is None for p in popped):
                    return None
            for e in popped:
                if e is None:
                    return None
            info.append((popped, mark))
            starts = popped + ([mark] if mark is not None else []) + [i]
            for _ in range(pushed):
                stack.append(("o", min(starts)))
    except (IndexError, KeyError):
        return None
    return info


def fetched_stores(ops):
    """Indices of store ops whose value a later fetch reads."""
    last = {}
    used = set()
    for i, op in enumerate(ops):
        if op.name in STORES:
            last[op.old] = i
        elif op.name in FETCHES and op.old in last:
            used.add(last[op.old])
    return used


def rebuild(ops, inserts, removes, replaces):
    out = []
    for i, op in enumerate(ops):
        out.extend(inserts.get(i, []))
        if i in replaces:
            out.extend(replaces[i])
        elif i not in removes:
            out.append(op)
    out.extend(inserts.get(len(ops), []))
    return out


def only_literal(ops, lo, hi, used, kinds):
    """The op range [lo, hi) is one op of `kinds` plus stores nobody fetches: that op's index."""
    core = [j for j in range(lo, hi) if ops[j].name not in STORES]
    if len(core) != 1 or ops[core[0]].name not in kinds:
        return None
    if any(j in used for j in range(lo, hi) if ops[j].name in STORES):
        return None
    return core[0]


def rewrite_tuples(ops, rnd, p, log):
    info = analyse(ops)
    if info is None:
        return ops
    inserts, removes, replaces = {}, set(), {}
    n = 0
    for i, op in enumerate(ops):
        if rnd.random() >= p:
            continue
        items, mark = info[i]
        nm = op.name
        if nm in ("TUPLE1", "TUPLE2", "TUPLE3"):
            inserts.setdefault(items[0], []).append(Op("MARK"))
            replaces[i] = [Op("TUPLE")]
        elif nm == "EMPTY_TUPLE":
            replaces[i] = [Op("MARK"), Op("TUPLE")]
        elif nm == "TUPLE" and len(items) <= 3:
            removes.add(mark)
            replaces[i] = [Op(["EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"][len(items)])]
        elif nm == "APPEND":
            inserts.setdefault(items[1], []).append(Op("MARK"))
            replaces[i] = [Op("APPENDS")]
        elif nm == "APPENDS" and len(items) == 2:
            removes.add(mark)
            replaces[i] = [Op("APPEND")]
        elif nm == "SETITEM":
            inserts.setdefault(items[1], []).append(Op("MARK"))
            replaces[i] = [Op("SETITEMS")]
        elif nm == "SETITEMS" and len(items) == 3:
            removes.add(mark)
            replaces[i] = [Op("SETITEM")]
        elif nm == "EMPTY_LIST":
            replaces[i] = [Op("MARK"), Op("LIST")]
        elif nm == "EMPTY_DICT":
            replaces[i] = [Op("MARK"), Op("DICT")]
        elif nm == "LIST" and not items:
            removes.add(mark)
            replaces[i] = [Op("EMPTY_LIST")]
        elif nm == "DICT" and not items:
            removes.add(mark)
            replaces[i] = [Op("EMPTY_DICT")]
        else:
            continue
        n += 1
    if n:
        log.append(f"tuple/list/dict forms x{n}")
    return rebuild(ops, inserts, removes, replaces)


def rewrite_globals(ops, rnd, p, log):
    info = analyse(ops)
    if info is None:
        return ops
    used = fetched_stores(ops)
    inserts, removes, replaces = {}, set(), {}
    touched = set()
    counts = {}
    for i, op in enumerate(ops):
        if rnd.random() >= p or i in touched:
            continue
        items, mark = info[i]
        nm = op.name
        if nm == "GLOBAL":
            mod, name = op.arg.split(" ", 1)
            replaces[i] = [Op("SHORT_BINUNICODE", mod), Op("SHORT_BINUNICODE", name), Op("STACK_GLOBAL")]
            counts["GLOBAL->STACK_GLOBAL"] = counts.get("GLOBAL->STACK_GLOBAL", 0) + 1
        elif nm == "STACK_GLOBAL":
            a = only_literal(ops, items[0], items[1], used, USTR | SSTR)
            b = only_literal(ops, items[1], i, used, USTR | SSTR)
            if a is None or b is None:
                continue
            mod, name = ops[a].arg, ops[b].arg
            if "\n" in mod + name or " " in mod:
                continue
            removes.update(range(items[0], i))
            touched.update(range(items[0], i))
            replaces[i] = [Op("GLOBAL", f"{mod} {name}")]
            counts["STACK_GLOBAL->GLOBAL"] = counts.get("STACK_GLOBAL->GLOBAL", 0) + 1
        elif nm == "REDUCE" and ops[i - 1].name == "TUPLE":
            # [callable][MARK args TUPLE][REDUCE]
            tup_items, tup_mark = info[i - 1]
            if not tup_items or tup_mark != items[1]:
                continue
            span = set(range(items[0], i + 1))
            if span & touched:
                continue
            g = only_literal(ops, items[0], items[1], used, {"GLOBAL"})
            if g is not None and rnd.random() < 0.5:
                # MARK args INST module name
                removes.update(range(items[0], items[1]))
                removes.add(i - 1)
                mod, name = ops[g].arg.split(" ", 1)
                replaces[i] = [Op("INST", f"{mod} {name}")]
                counts["REDUCE->INST"] = counts.get("REDUCE->INST", 0) + 1
            else:
                # MARK callable args OBJ
                inserts.setdefault(items[0], []).append(Op("MARK"))
                removes.add(tup_mark)
                removes.add(i - 1)
                replaces[i] = [Op("OBJ")]
                counts["REDUCE->OBJ"] = counts.get("REDUCE->OBJ", 0) + 1
            touched.update(span)
    for k, v in counts.items():
        log.append(f"{k} x{v}")
    return rebuild(ops, inserts, removes, replaces)


def rewrite_noise(ops, rnd, p, log):
    """Insert no-op sequences and memo round trips between ops."""
    info = analyse(ops)
    if info is None:
        return ops
    # Which positions have an object (not a mark) on top: replay the simulation.
    top_obj = [False] * (len(ops) + 1)
    depth = []
    for i, op in enumerate(ops):
        top_obj[i] = bool(depth) and depth[-1] == "o"
        if op.name == "MARK":
            depth.append("m")
            continue
        if op.name == "POP" and depth and depth[-1] == "m":
            depth.pop()
            continue
        to_mark, n, pushed = effect(op.name)
        if to_mark:
            while depth and depth[-1] != "m":
                depth.pop()
            if depth:
                depth.pop()
        for _ in range(n):
            if depth:
                depth.pop()
        depth.extend("o" * pushed)
    inserts = {}
    kinds = {}
    stop = len(ops) - 1
    first = 1 if ops and ops[0].name == "PROTO" else 0  # encode_stream looks for PROTO first
    for i in range(first, stop + 1):
        if rnd.random() >= p:
            continue
        choices = ["none-pop", "mark-popmark", "junk-memo", "true-pop"]
        if top_obj[i]:
            choices += ["dup-pop", "memo-roundtrip", "memo-roundtrip"]
        k = rnd.choice(choices)
        if k == "none-pop":
            seq = [Op("NONE"), Op("POP")]
        elif k == "true-pop":
            seq = [Op("NEWTRUE"), Op("POP")]
        elif k == "mark-popmark":
            seq = [Op("MARK"), Op("SHORT_BINUNICODE", "pad"), Op("POP_MARK")]
        elif k == "junk-memo":
            seq = [Op("SHORT_BINUNICODE", rnd.choice(["a", "junk", "torch"])), Op("MEMOIZE", old=None), Op("POP")]
        elif k == "dup-pop":
            seq = [Op("DUP"), Op("POP")]
        else:
            # Store the top, drop it and fetch it back.
            key = ("rt", i)
            seq = [Op("MEMOIZE", old=key), Op("POP"), Op("GET", old=key)]
        inserts.setdefault(i, []).extend(seq)
        kinds[k] = kinds.get(k, 0) + 1
    for k, v in sorted(kinds.items()):
        log.append(f"noise {k} x{v}")
    return rebuild(ops, inserts, set(), {})


# ---- scalar encodings ----


def int_text(v, rnd, c_ok):
    """Decimal text CPython's INT/LONG accept for v (int(s, 0) rules; strtol when c_ok)."""
    forms = [str(v)]
    s = "-" if v < 0 else ""
    a = abs(v)
    if v >= 0:
        forms.append("+" + str(v))
    forms += [" " + str(v), str(v) + " ", "\t" + str(v), s + hex(a), s + hex(a).upper().replace("X", "X"),
              s + oct(a), s + bin(a), s + "0x_" + format(a, "x")]
    d = str(a)
    if len(d) > 1:
        j = rnd.randrange(1, len(d))
        forms.append(s + d[:j] + "_" + d[j:])
    if c_ok and 7 < a < 2**31:
        forms.append(s + "0" + format(a, "o"))  # C strtol octal (pure Python rejects it)
    return rnd.choice(forms)


def enc_int(v, rnd, c_ok=True):
    forms = ["INT", "LONG", "LONG1", "LONG4"]
    if 0 <= v < 256:
        forms.append("BININT1")
    if 0 <= v < 65536:
        forms.append("BININT2")
    if -(2**31) <= v < 2**31:
        forms.append("BININT")
    f = rnd.choice(forms)
    if f == "BININT1":
        return b"K" + bytes([v]), f
    if f == "BININT2":
        return b"M" + struct.pack("<H", v), f
    if f == "BININT":
        return b"J" + struct.pack("<i", v), f
    if f == "LONG1":
        b = pickle.encode_long(v)
        return b"\x8a" + bytes([len(b)]) + b, f
    if f == "LONG4":
        b = pickle.encode_long(v)
        return b"\x8b" + struct.pack("<i", len(b)) + b, f
    if f == "INT":
        while True:
            t = int_text(v, rnd, c_ok=c_ok)
            # The C unpickler reads any two-character 0 or 1 (`I 1`, `I+0`) as a bool.
            if not (len(t) == 2 and v in (0, 1)):
                break
        return b"I" + t.encode() + b"\n", f
    t = int_text(v, rnd, c_ok=False)
    return b"L" + t.encode() + (b"L" if rnd.random() < 0.5 else b"") + b"\n", f


def enc_bool(v, rnd):
    if rnd.random() < 0.5:
        return (b"\x88" if v else b"\x89"), "NEWTRUE/FALSE"
    return (b"I01\n" if v else b"I00\n"), "INT-bool"


def raw_unicode_escape(s, rnd, pesc):
    out = []
    for ch in s:
        if ch in "\\\n\r\x00\x1a" or rnd.random() < pesc:
            o = ord(ch)
            out.append(("\\u%04x" % o) if o < 0x10000 and rnd.random() < 0.7 else ("\\U%08x" % o))
        else:
            out.append(ch)
    return "".join(out).encode("raw-unicode-escape")


def string_literal(s, rnd, pesc):
    """A STRING opcode line: quoted, escape_decode escapes (s is latin-1 text)."""
    q = rnd.choice("'\"")
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\" or ch == "\n" or ch == "\r" or o < 32 or o > 126 or rnd.random() < pesc:
            out.append(rnd.choice(["\\x%02x" % o, "\\%03o" % o]) if o < 256 else ch)
        else:
            out.append(ch)
    return (q + "".join(out) + q).encode("latin-1")


def enc_ustr(s, rnd, pesc, sstr_ok=True):
    b = s.encode("utf-8", "surrogatepass")
    forms = ["BINUNICODE", "BINUNICODE8", "UNICODE"]
    if len(b) < 256:
        forms += ["SHORT_BINUNICODE", "SHORT_BINUNICODE"]
    if sstr_ok and s.isascii():
        forms += ["STRING", "BINSTRING"] + (["SHORT_BINSTRING"] if len(b) < 256 else [])
    f = rnd.choice(forms)
    if f == "SHORT_BINUNICODE":
        return b"\x8c" + bytes([len(b)]) + b, f
    if f == "BINUNICODE":
        return b"X" + struct.pack("<I", len(b)) + b, f
    if f == "BINUNICODE8":
        return b"\x8d" + struct.pack("<Q", len(b)) + b, f
    if f == "UNICODE":
        return b"V" + raw_unicode_escape(s, rnd, pesc) + b"\n", f
    return enc_sstr(s, rnd, pesc, forced=f)


def enc_sstr(s, rnd, pesc, forced=None):
    b = s.encode("latin-1")
    forms = ["STRING", "BINSTRING"] + (["SHORT_BINSTRING"] if len(b) < 256 else [])
    f = forced or rnd.choice(forms)
    if f == "STRING":
        return b"S" + string_literal(s, rnd, pesc) + b"\n", f
    if f == "BINSTRING":
        return b"T" + struct.pack("<i", len(b)) + b, f
    return b"U" + bytes([len(b)]) + b, f


def enc_bytes(v, rnd):
    f = rnd.choice(["BINBYTES", "BINBYTES8"] + (["SHORT_BINBYTES"] if len(v) < 256 else []))
    if f == "SHORT_BINBYTES":
        return b"C" + bytes([len(v)]) + v, f
    if f == "BINBYTES":
        return b"B" + struct.pack("<I", len(v)) + v, f
    return b"\x8e" + struct.pack("<Q", len(v)) + v, f


def enc_float(v, rnd):
    if rnd.random() < 0.5 or v != v or v in (float("inf"), float("-inf")):
        return b"G" + struct.pack(">d", v), "BINFLOAT"
    t = repr(v)
    if rnd.random() < 0.3 and "e" not in t and "." in t:
        t = t + "0"
    return b"F" + t.encode() + b"\n", "FLOAT"


def memo_text(n, rnd):
    return rnd.choice([str(n), "+" + str(n), " " + str(n), "0" + str(n), str(n) + " "])


class Encoder:
    """Emits ops with random encodings; renumbers the memo so that MEMOIZE stays valid."""

    def __init__(self, rnd, p, sstr_ok, c_ok=True, py2=False):
        self.rnd = rnd
        self.c_ok = c_ok  # forms only the C unpickler reads (C's octal INT)
        self.py2 = py2  # spell GLOBAL/INST names as Python 2 did (the stream's protocol is < 3)
        self.p = p  # probability that an op is re-encoded
        self.sstr_ok = sstr_ok
        self.pesc = rnd.choice([0.0, 0.1, 0.5])
        self.next = 0
        self.map = {}
        self.forms = {}

    def note(self, f):
        self.forms[f] = self.forms.get(f, 0) + 1

    def store(self, old, drop_ok):
        rnd = self.rnd
        if drop_ok and rnd.random() < self.p * 0.5:
            self.note("store dropped")
            return b""
        n = self.next
        self.next += 1
        self.map[old] = n
        forms = ["MEMOIZE", "PUT", "LONG_BINPUT"] + (["BINPUT"] if n < 256 else [])
        f = rnd.choice(forms)
        self.note(f)
        if f == "MEMOIZE":
            return b"\x94"
        if f == "BINPUT":
            return b"q" + bytes([n])
        if f == "LONG_BINPUT":
            return b"r" + struct.pack("<I", n)
        return b"p" + memo_text(n, rnd).encode() + b"\n"

    def fetch(self, old):
        rnd = self.rnd
        n = self.map[old]
        forms = ["GET", "LONG_BINGET"] + (["BINGET"] if n < 256 else [])
        f = rnd.choice(forms)
        self.note(f)
        if f == "BINGET":
            return b"h" + bytes([n])
        if f == "LONG_BINGET":
            return b"j" + struct.pack("<I", n)
        return b"g" + memo_text(n, rnd).encode() + b"\n"

    def op(self, op, used_store):
        rnd = self.rnd
        nm, arg = op.name, op.arg
        if nm in STORES:
            return self.store(op.old, drop_ok=not used_store)
        if nm in FETCHES:
            return self.fetch(op.old)
        fresh = op.raw is None
        if not fresh and rnd.random() >= self.p:
            return op.raw
        b, f = None, None
        if nm in USTR:
            b, f = enc_ustr(arg, rnd, self.pesc, self.sstr_ok)
        elif nm in SSTR:
            if arg.isascii():
                b, f = enc_ustr(arg, rnd, self.pesc, True)
            else:
                b, f = enc_sstr(arg, rnd, self.pesc)
        elif nm in BYTES:
            b, f = enc_bytes(arg, rnd)
        elif nm in INTS or (nm == "INT"):
            if isinstance(arg, bool):
                b, f = enc_bool(arg, rnd)
            else:
                b, f = enc_int(arg, rnd, self.c_ok)
        elif nm in ("NEWTRUE", "NEWFALSE"):
            b, f = enc_bool(nm == "NEWTRUE", rnd)
        elif nm in ("FLOAT", "BINFLOAT"):
            b, f = enc_float(arg, rnd)
        elif nm in ("GLOBAL", "INST"):
            mod, name = arg.split(" ", 1)
            if self.py2:
                mod, name = py2_name(mod, name)
            b = (b"c" if nm == "GLOBAL" else b"i") + mod.encode() + b"\n" + name.encode() + b"\n"
            f = nm
        elif fresh:
            simple = {
                "MARK": b"(", "TUPLE": b"t", "EMPTY_TUPLE": b")", "TUPLE1": b"\x85", "TUPLE2": b"\x86",
                "TUPLE3": b"\x87", "APPEND": b"a", "APPENDS": b"e", "SETITEM": b"s", "SETITEMS": b"u",
                "EMPTY_LIST": b"]", "LIST": b"l", "EMPTY_DICT": b"}", "DICT": b"d", "STACK_GLOBAL": b"\x93",
                "OBJ": b"o", "NONE": b"N", "POP": b"0", "POP_MARK": b"1", "DUP": b"2", "REDUCE": b"R",
                "STOP": b".",
            }
            return simple[nm]
        else:
            return op.raw
        if f:
            self.note(f)
        return b


def py2_name(mod, name):
    import _compat_pickle as cp

    if (mod, name) in cp.REVERSE_NAME_MAPPING:
        return cp.REVERSE_NAME_MAPPING[(mod, name)]
    return cp.REVERSE_IMPORT_MAPPING.get(mod, mod), name


def encode_stream(ops, rnd, log, sstr_ok=True, p=None, frames=True, proto_ok=True, c_ok=True, lead=None):
    """Bytes of one stream from ops, with PROTO/FRAME variations."""
    p = rnd.choice([0.3, 0.7, 1.0]) if p is None else p
    proto = None
    body = []
    for op in ops:
        if op.name == "FRAME":
            continue
        if op.name == "PROTO" and proto is None and not body:
            proto = op.arg
            continue
        body.append(op)
    # PROTO: keep, drop, or change within its class: below 3 the unpickler maps Python 2 names
    # (fix_imports), from 4 on it resolves dotted names.
    head = b""
    final = proto or 0
    moved = False
    if proto is not None:
        choice = rnd.random() if proto_ok else 0.0
        if choice < 0.6:
            head = b"\x80" + bytes([proto])
        elif choice < 0.8:
            newp = rnd.choice([0, 1, 2] if proto < 3 else [3] if proto == 3 else [4, 5])
            head = b"\x80" + bytes([newp])
            final = newp
            log.append(f"PROTO {proto}->{newp}")
        elif proto < 3:
            log.append("PROTO dropped")
        else:
            log.append("PROTO moved after the first opcode")
            moved = True
    elif proto_ok and rnd.random() < 0.2:
        final = rnd.randrange(0, 3)
        head = b"\x80" + bytes([final])
        log.append(f"PROTO {final} added")
    py2 = final < 3 and rnd.random() < 0.4
    if py2:
        log.append("GLOBAL names in Python 2 spelling")
    used = fetched_stores(body)
    enc = Encoder(rnd, p, sstr_ok, c_ok=c_ok, py2=py2)
    chunks = [enc.op(op, i in used) for i, op in enumerate(body)]
    if lead:
        chunks[0:0] = lead
    if moved:
        chunks.insert(1, b"\x80" + bytes([proto]))
    for k, v in sorted(enc.forms.items()):
        log.append(f"{k} x{v}")
    # Frames.
    mode = rnd.random() if frames else 1.0
    out = bytearray(head)
    if mode < 0.35:
        out += framed(chunks, rnd, log)
    elif mode < 0.45:
        # One frame over everything, even with no PROTO in front.
        data = b"".join(chunks)
        out += b"\x95" + struct.pack("<Q", len(data)) + data
        log.append("one FRAME over the whole stream")
    else:
        out += b"".join(chunks)
    return bytes(out)


def framed(chunks, rnd, log):
    out = bytearray()
    i = 0
    n = 0
    while i < len(chunks):
        j = min(len(chunks), i + rnd.randrange(1, max(2, len(chunks) // 2 + 2)))
        if rnd.random() < 0.15:
            out += b"".join(chunks[i:j])  # some ops outside any frame
        else:
            data = b"".join(chunks[i:j])
            out += b"\x95" + struct.pack("<Q", len(data)) + data
            n += 1
        i = j
    log.append(f"{n} FRAMEs at opcode boundaries")
    return bytes(out)


def lead_ops(rnd, log, c_ok):
    """Opcodes that leave the stack as it was, for the very start of a stream (where recognition
    looks) or in front of the payload: odd number syntax, every push form, or a long prefix."""
    k = rnd.choice(["int", "long", "float", "string", "containers", "many", "big", "get"])
    if k == "int":
        t = int_text(rnd.choice([0, 1, 2, 7, 10, 65, 255, 2**31, 2**64]), rnd, c_ok)
        seq = [b"I" + t.encode() + b"\n", b"0"]
    elif k == "long":
        t = int_text(rnd.choice([0, 3, 2**70]), rnd, False)
        seq = [b"L" + t.encode() + rnd.choice([b"L", b""]) + b"\n", b"0"]
    elif k == "float":
        t = rnd.choice(["1.5", "1e3", "-0.0", "inf", "nan", "1.", ".5", "1E-3"] + ([] if c_ok else [" 1.5", "1_0.5"]))
        seq = [b"F" + t.encode() + b"\n", b"0"]
    elif k == "string":
        seq = [b"S" + string_literal(rnd.choice(["x", "it's", "a\\b", "\x00\x01"]), rnd, 0.3) + b"\n", b"0"]
    elif k == "containers":
        seq = [rnd.choice([b"}", b"]", b")", b"(t", b"(l", b"(d", b"N", b"\x88", b"\x89", b"(\x91"]), b"0"]
    elif k == "many":
        n = rnd.choice([1000, 20000, 70000, 200000])
        seq = [b"N0" * n]
        k = f"many x{n}"
    elif k == "big":
        n = rnd.choice([70000, 1 << 20, 3 << 20])
        seq = [b"\x8e" + struct.pack("<Q", n) + b"\x00" * n, b"0"]
        k = f"big bytes {n}"
    else:
        # A memo entry stored and fetched before anything else.
        seq = [b"N", b"p0\n", b"0", b"g0\n", b"0"]
    log.append(f"lead: {k}")
    return seq


def mutate_pickle(data, rnd, log, start=0, sstr_ok=True, proto_ok=True, c_ok=True):
    """A mutant of the stream at `start`: (bytes, end of the original stream)."""
    ops, end = parse_stream(data, start)
    if rnd.random() < 0.6:
        ops = rewrite_tuples(ops, rnd, rnd.choice([0.3, 1.0]), log)
    if rnd.random() < 0.6:
        ops = rewrite_globals(ops, rnd, rnd.choice([0.5, 1.0]), log)
    if rnd.random() < 0.4:
        ops = rewrite_noise(ops, rnd, rnd.choice([0.05, 0.2]), log)
    lead = lead_ops(rnd, log, c_ok) if rnd.random() < 0.25 else None
    return encode_stream(ops, rnd, log, sstr_ok=sstr_ok, proto_ok=proto_ok, c_ok=c_ok, lead=lead), end


JUNK = [
    lambda r: bytes(r.randrange(256) for _ in range(r.randrange(1, 64))),
    lambda r: b"\n# trailing text\n",
    lambda r: b"\x00" * r.randrange(1, 512),
    lambda r: pickle.dumps({"a": 1}, protocol=r.randrange(6)),
    lambda r: b"PK\x03\x04" + bytes(26),
]


def pickle_extras(data, rnd, log):
    """Multiple streams and data after STOP."""
    k = rnd.random()
    if k < 0.15:
        j = rnd.choice(JUNK)(rnd)
        log.append(f"{len(j)} bytes after STOP")
        return data + j
    if k < 0.25:
        pre = pickle.dumps(rnd.choice([0, "version", {"format": 1}, [1, 2]]), protocol=rnd.randrange(6))
        log.append("a benign stream before it (second stream)")
        return pre + data
    if k < 0.3:
        log.append("the payload stream twice")
        return data + data
    return data


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------


def zip_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def write_zip(members, rnd, log, deflate_ok=True):
    buf = io.BytesIO()
    order = list(members)
    if rnd.random() < 0.3:
        head, rest = order[0], order[1:]
        rnd.shuffle(rest)
        order = [head] + rest
        log.append("member order shuffled")
    if rnd.random() < 0.15:
        rnd.shuffle(order)
        log.append("member order shuffled, data.pkl may not be first")
    comp_mode = rnd.random() if deflate_ok else 0.0
    extra_mode = rnd.random()
    zip64 = rnd.random() < 0.1
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in order:
            zi = zipfile.ZipInfo(name, date_time=(1980 + rnd.randrange(40), 1, 1, 0, 0, 0))
            if comp_mode > 0.6 or (comp_mode > 0.4 and rnd.random() < 0.5):
                zi.compress_type = zipfile.ZIP_DEFLATED
            else:
                zi.compress_type = zipfile.ZIP_STORED
            if extra_mode < 0.3:
                # An unknown extra field (and torch's own 'FB' padding field).
                hid = rnd.choice([0xCAFE, 0x4246, 0x7075, 0x5455])
                payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
                zi.extra = struct.pack("<HH", hid, len(payload)) + payload
            with z.open(zi, "w", force_zip64=zip64) as f:
                f.write(content)
        if rnd.random() < 0.2:
            z.comment = rnd.choice([b"archive comment", b"PK\x05\x06", bytes(rnd.randrange(256) for _ in range(30))])
            log.append("archive comment")
    if comp_mode > 0.4 and deflate_ok:
        log.append("members deflated")
    if extra_mode < 0.3:
        log.append("extra fields")
    if zip64:
        log.append("zip64 entries")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Families: each yields (seed name, file name, bytes, mutation log)
# --------------------------------------------------------------------------------------------


PICKLE_NAMES = ["model.pkl", "model.pickle", "weights.bin", "model.pt", "checkpoint.pth", "data.dat", "model",
                "params.p", "model.ckpt", "state.data", "embedding.npy.pkl", "x.txt"]
TORCH_NAMES = ["pytorch_model.bin", "model.pt", "model.pth", "checkpoint.ckpt", "model.pth.tar", "weights.dat",
               "model.bin", "model"]
NUMPY_NAMES = ["array.npy", "weights.npy", "data.bin", "array.dat", "array"]
JOBLIB_NAMES = ["model.joblib", "model.pkl", "model.z", "model.gz", "model.bz2", "model.xz", "model.lzma",
                "model.dat", "model.joblib.z"]


class Seeds:
    def __init__(self, families):
        self.pl = payloads()
        self.cache = {}
        self.families = families

    def payload(self, rnd):
        name = rnd.choice(sorted(self.pl))
        return name, self.pl[name]


def pickle_mutant(S, rnd):
    pname, pl = S.payload(rnd)
    proto = rnd.randrange(6)
    obj = wrap(pl, rnd)
    seed = pickle.dumps(obj, protocol=proto)
    log = [f"seed: pickle.dumps({pname}, protocol={proto})"]
    data, _ = mutate_pickle(seed, rnd, log)
    data = pickle_extras(data, rnd, log)
    if rnd.random() < 0.2:
        # Compressed as pandas.read_pickle (compression by extension) and pickle.load(gzip.open())
        # read it.
        k = rnd.choice(["gz", "bz2", "xz"])
        comp = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[k]
        if rnd.random() < 0.3 and len(data) > 2:
            cut = rnd.randrange(1, len(data))
            data = comp(data[:cut]) + comp(data[cut:])
            log.append(f"{k}, two members cut at byte {cut}")
        else:
            data = comp(data)
            log.append(f"{k} compressed")
        return f"pickle-p{proto}-{pname}", rnd.choice(["model.pkl", "df.pkl", "data"]) + "." + k, data, log
    return f"pickle-p{proto}-{pname}", rnd.choice(PICKLE_NAMES), data, log


def torch_mutant(S, rnd):
    import torch

    pname, pl = S.payload(rnd)
    obj = {"weight": torch.arange(4, dtype=torch.float32), "payload": wrap(pl, rnd)}
    legacy = rnd.random() < 0.35
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    seed = buf.getvalue()
    log = [f"seed: torch.save({pname}, legacy={legacy})"]
    if legacy:
        # magic, protocol, sys_info, the object, the storage keys; then raw storage bytes.
        out = bytearray()
        pos = 0
        for k in range(5):
            if k == 3 or rnd.random() < 0.3:
                sub = []
                data, pos = mutate_pickle(seed, rnd, sub, start=pos)
                log.append(f"stream {k}: " + ", ".join(sub))
            else:
                _, end = parse_stream(seed, pos)
                data = seed[pos:end]
                pos = end
            out += data
        out += seed[pos:]
        return f"torch-legacy-{pname}", rnd.choice(TORCH_NAMES), bytes(out), log
    members = zip_members(seed)
    prefix = members[0][0].split("/")[0]
    if rnd.random() < 0.25:
        newp = rnd.choice(["model", "checkpoint", "a", "archive_1", "pytorch_model"])
        members = [(newp + n[len(prefix):], c) for n, c in members]
        log.append(f"archive prefix {prefix!r}->{newp!r}")
    out = []
    for n, c in members:
        if n.endswith("/data.pkl"):
            sub = []
            c, _ = mutate_pickle(c, rnd, sub)
            c = pickle_extras(c, rnd, sub) if rnd.random() < 0.1 else c
            log.append("data.pkl: " + ", ".join(sub))
        out.append((n, c))
    if rnd.random() < 0.1:
        # A second data.pkl of the same name: benign, before or after the real one.
        benign = io.BytesIO()
        torch.save({"weight": 1}, benign)
        bpk = [c for n, c in zip_members(benign.getvalue()) if n.endswith("/data.pkl")][0]
        at = [i for i, (n, _) in enumerate(out) if n.endswith("/data.pkl")][0]
        where = rnd.choice([at, at + 1, len(out)])
        out.insert(where, (out[at][0], bpk))
        log.append("a benign data.pkl of the same name " + ("before" if where <= at else "after") + " it")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = write_zip(out, rnd, log)
    return f"torch-zip-{pname}", rnd.choice(TORCH_NAMES), data, log


def npy_header(d, rnd, log):
    """A header dict literal with key order, quotes and spacing varied."""
    items = [("descr", repr(d["descr"])), ("fortran_order", repr(d["fortran_order"])), ("shape", repr(d["shape"]))]
    if rnd.random() < 0.5:
        rnd.shuffle(items)
        log.append("header key order " + ",".join(k for k, _ in items))
    q = rnd.choice(["'", '"'])
    sp = rnd.choice(["", " ", "  ", "\t"])
    parts = []
    for k, v in items:
        if k == "descr" and rnd.random() < 0.3:
            v = repr(rnd.choice(["|O", "O", "|O8", "O8"]))
            log.append(f"descr {v}")
        if q == '"':
            v = v.replace("'", '"')
        parts.append(f"{q}{k}{q}:{sp}{v}")
    text = "{" + sp + ("," + sp).join(parts) + ("," if rnd.random() < 0.5 else "") + sp + "}"
    return text


def numpy_mutant(S, rnd):
    import numpy as np

    pname, pl = S.payload(rnd)
    arr = np.empty(rnd.choice([1, 2, 3]), dtype=object)
    for i in range(len(arr)):
        arr[i] = i
    arr[rnd.randrange(len(arr))] = pl
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    seed = buf.getvalue()
    log = [f"seed: np.save(object array with {pname})"]
    hlen = struct.unpack("<H", seed[8:10])[0]
    import ast

    d = ast.literal_eval(seed[10 : 10 + hlen].decode("latin-1"))
    body = seed[10 + hlen :]
    sub = []
    pk, _ = mutate_pickle(body, rnd, sub)
    log.append("pickle: " + ", ".join(sub))
    text = npy_header(d, rnd, log)
    version = rnd.choice([(1, 0), (1, 0), (2, 0), (3, 0)])
    lenw = 2 if version == (1, 0) else 4
    pre = 6 + 2 + lenw
    align = rnd.choice([64, 64, 16, 1])
    total = pre + len(text) + 1
    pad = (-total) % align
    if rnd.random() < 0.2:
        pad += rnd.randrange(0, 80)
    header = (text + " " * pad + "\n").encode("utf-8" if version == (3, 0) else "latin-1")
    log.append(f"npy v{version[0]}.{version[1]}, header aligned to {align}")
    data = b"\x93NUMPY" + bytes(version) + (struct.pack("<H", len(header)) if lenw == 2 else struct.pack("<I", len(header))) + header + pk
    if rnd.random() < 0.1:
        data += rnd.choice(JUNK)(rnd)
        log.append("data after the pickle")
    if rnd.random() < 0.2:
        # An .npz: numpy.savez (stored) or savez_compressed (deflated) layout, maybe with a
        # benign array beside it.
        members = [(rnd.choice(["arr_0.npy", "weights.npy", "x.npy"]), data)]
        if rnd.random() < 0.5:
            b2 = io.BytesIO()
            np.save(b2, np.arange(4))
            members.insert(rnd.randrange(2), ("bias.npy", b2.getvalue()))
        data = write_zip(members, rnd, log)
        log.append("inside an .npz")
        return f"numpy-npz-{pname}", rnd.choice(["arrays.npz", "model.npz", "data.zip"]), data, log
    return f"numpy-{pname}", rnd.choice(NUMPY_NAMES), data, log


NO_ZF = False  # --no-zf: leave out the legacy ZF wrapper (a known silent-pass class)


def joblib_wrap(data, rnd, log):
    k = rnd.choice(["none", "none", "zlib", "gzip", "bz2", "lzma", "xz"] + ([] if NO_ZF else ["zf", "zf"]))
    if k == "none":
        return data
    if k == "zlib":
        lvl = rnd.randrange(1, 10)
        log.append(f"joblib zlib wrapper (level {lvl})")
        return zlib.compress(data, lvl)
    if k == "gzip":
        flags = rnd.random()
        log.append("joblib gzip wrapper")
        if flags < 0.5:
            return gzip.compress(data, mtime=rnd.randrange(2**31))
        # A gzip header with FNAME and FCOMMENT (zlib reads any header).
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = co.compress(data) + co.flush()
        hdr = b"\x1f\x8b\x08\x18" + struct.pack("<I", 0) + b"\x00\x03" + b"model.pkl\x00" + b"comment\x00"
        log.append("gzip FNAME and FCOMMENT")
        return hdr + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    if k in ("bz2", "lzma", "xz"):
        if k == "bz2":
            log.append("joblib bz2 wrapper")
            comp = lambda d: bz2.compress(d, rnd.randrange(1, 10))
        elif k == "lzma":
            log.append("joblib lzma (alone) wrapper")
            comp = lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)
        else:
            log.append("joblib xz wrapper")
            check = rnd.choice([lzma.CHECK_CRC64, lzma.CHECK_NONE, lzma.CHECK_SHA256])
            comp = lambda d: lzma.compress(d, format=lzma.FORMAT_XZ, check=check)
        if rnd.random() < 0.3 and len(data) > 2:
            # BZ2File and LZMAFile read concatenated streams as one.
            cut = rnd.randrange(1, len(data))
            log.append(f"split into two {k} streams at byte {cut}")
            return comp(data[:cut]) + comp(data[cut:])
        return comp(data)
    # Legacy (joblib < 0.10) ZF wrapper: 'ZF', the length in hex padded to 19, zlib data.
    n = len(data)
    form = rnd.choice(["0x%x", "0x%X", "%x", "0X%x", "0x%016x", " 0x%x", "+0x%x"])
    length = (form % n).ljust(19)
    extra = " " if rnd.random() < 0.3 else ""
    log.append(f"legacy ZF wrapper, length {length.strip()!r}{' and the extra space' if extra else ''}")
    return b"ZF" + length.encode() + extra.encode() + zlib.compress(data, rnd.randrange(1, 10))


def joblib_mutant(S, rnd):
    import joblib

    pname, pl = S.payload(rnd)
    obj = wrap(pl, rnd)
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "m.joblib")
        joblib.dump(obj, f)
        seed = open(f, "rb").read()
    log = [f"seed: joblib.dump({pname})"]
    data, _ = mutate_pickle(seed, rnd, log, c_ok=False)
    data = joblib_wrap(data, rnd, log)
    return f"joblib-{pname}", rnd.choice(JOBLIB_NAMES), data, log


# ---- Jinja ----

# (base, steps, call args): steps are ("a", name) attribute or ("i", key) item.
CHAINS = [
    ("cycler", [("a", "__init__"), ("a", "__globals__"), ("i", "os"), ("a", "mkdir")], f"'{MARK}'"),
    ("joiner", [("a", "__init__"), ("a", "__globals__"), ("i", "os"), ("a", "makedirs")], f"'{MARK}'"),
    ("namespace", [("a", "__init__"), ("a", "__globals__"), ("i", "os"), ("a", "mkdir")], f"'{MARK}'"),
    ("lipsum", [("a", "__globals__"), ("i", "os"), ("a", "mkdir")], f"'{MARK}'"),
    ("lipsum", [("a", "__globals__"), ("i", "__builtins__"), ("i", "open")], f"'{MARK}', 'w'"),
    ("cycler", [("a", "__init__"), ("a", "__globals__"), ("i", "__builtins__"), ("i", "open")], f"'{MARK}', 'w'"),
    ("self", [("a", "_TemplateReference__context"), ("i", "cycler"), ("a", "__init__"), ("a", "__globals__"),
              ("i", "os"), ("a", "mkdir")], f"'{MARK}'"),
    ("self", [("a", "_TemplateReference__context"), ("i", "joiner"), ("a", "__init__"), ("a", "__globals__"),
              ("i", "os"), ("a", "system")], f"'mkdir {MARK}'"),
    ("lipsum", [("a", "__globals__"), ("i", "os"), ("a", "popen")], f"'mkdir {MARK}'"),
]

BENIGN_HEAD = [
    "",
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}",
    "{{ bos_token }}",
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% endif %}",
]
BENIGN_TAIL = [
    "",
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "{{ eos_token }}",
]


def jstr(s, rnd, sets, log):
    """A Jinja expression whose value is the string s."""
    k = rnd.choice(["lit", "lit", "concat", "plus", "mul", "join", "format", "strformat", "reverse", "replace",
                    "escape", "set", "lower", "setblock", "strof", "dictkw", "implicit", "center"])
    q = rnd.choice(["'", '"'])
    if len(s) < 2:
        k = rnd.choice(["lit", "escape"])
    j = rnd.randrange(1, len(s)) if len(s) > 1 else 1
    a, b = s[:j], s[j:]
    L = lambda t: q + t + q
    if k == "lit":
        return L(s)
    log.add(f"string by {k}")
    if k == "strof":
        # Underscores taken out of a function's repr: "<function generate_lorem_ipsum at …>".
        if "_" not in s:
            return L(s)
        return " ~ ".join("(lipsum|string)[18]" if c == "_" else L(c) for c in s)
    if k == "dictkw":
        return f"(dict({s}=1)|first)" if s.isidentifier() else L(s)
    if k == "implicit":
        return f"{L(a)} {L(b)}"
    if k == "center":
        core = s.strip("_")
        if s == "__" + core + "__" and core:
            return f"{L(core)}|center({len(s)})|replace(' ', '_')"
        return L(s)
    if k == "concat":
        return f"{L(a)} ~ {L(b)}"
    if k == "plus":
        return f"({L(a)} + {L(b)})"
    if k == "mul":
        if s.startswith("__") and s.endswith("__") and len(s) > 4:
            return f"{L('_')}*2 ~ {L(s[2:-2])} ~ {L('_')}*2"
        return f"({L(a)} ~ {L(b)})"
    if k == "join":
        return f"[{L(a)}, {L(b)}]|join"
    if k == "format":
        return f"{L('%s%s')}|format({L(a)}, {L(b)})"
    if k == "strformat":
        return f"{L('{}{}')}.format({L(a)}, {L(b)})"
    if k == "reverse":
        return f"{L(s[::-1])}[::-1]"
    if k == "replace":
        return f"{L(s.replace('_', '-'))}|replace('-', '_')" if "_" in s and "-" not in s else L(s)
    if k == "escape":
        return L("".join(("\\x%02x" % ord(c)) if (c == "_" or rnd.random() < 0.2) else c for c in s))
    if k == "lower":
        return f"{L(s.upper())}|lower" if s.lower() == s else L(s)
    if k == "set":
        v = f"k{len(sets)}"
        sets.append(f"{{% set {v} = {L(a)} ~ {L(b)} %}}")
        return v
    v = f"k{len(sets)}"
    sets.append(f"{{% set {v} %}}{s}{{% endset %}}")
    return v


def jchain(base, steps, args, rnd, log):
    sets = []
    e = base
    for kind, name in steps:
        forms = ["sub", "sub"]
        if name.isidentifier():
            forms += ["dot", "dot"]
        if kind == "a":
            forms += ["attr", "map"]
        else:
            forms.append("get")
        f = rnd.choice(forms)
        if f == "dot":
            e = e + "." + name
            continue
        s = jstr(name, rnd, sets, log)
        log.add(f"step by {f}")
        if f == "sub":
            e = f"{e}[{s}]"
        elif f == "attr":
            e = f"({e}|attr({s}))"
        elif f == "map":
            e = f"([{e}]|map(attribute={s})|first)"
        else:
            e = f"{e}.get({s})"
    return sets, f"{e}({args})"


def jspace(expr, rnd):
    return rnd.choice([" ", "", "  ", "\n", "\t "]) + expr + rnd.choice([" ", "", "\n "])


def template_mutant(S, rnd):
    base, steps, args = rnd.choice(CHAINS)
    log = set()
    sets, call = jchain(base, steps, args, rnd, log)
    wc = lambda: rnd.choice(["", "", "-", "+"]) if rnd.random() < 0.3 else ""
    wr = lambda: rnd.choice(["", "", "-"]) if rnd.random() < 0.3 else ""
    k = rnd.choice(["out", "out", "set", "if", "for", "macro", "filter", "tuple", "cond", "call", "with",
                    "filterblock"])
    log.add(f"payload in {k}")
    if k == "out":
        stmt = "{{" + wr() + jspace(call, rnd) + wr() + "}}"
    elif k == "set":
        stmt = "{%" + wc() + " set _x = " + call + " " + wr() + "%}"
    elif k == "if":
        stmt = "{%" + wc() + " if " + call + " %}{% endif %}"
    elif k == "for":
        stmt = "{% for m in messages %}{% if loop.first %}{{ " + call + " }}{% endif %}{% endfor %}"
    elif k == "macro":
        stmt = "{% macro f(x) %}{{ " + call + " }}{% endmacro %}{{ f(1) }}"
    elif k == "filter":
        stmt = "{{ " + call + "|string|length }}"
    elif k == "tuple":
        stmt = "{{ (" + call + ", 1)[1] }}"
    elif k == "cond":
        stmt = "{{ '' if " + call + " else '' }}"
    elif k == "with":
        stmt = "{% with r = " + call + " %}{{ r }}{% endwith %}"
    elif k == "filterblock":
        stmt = "{% filter lower %}{{ " + call + " }}{% endfilter %}"
    else:
        stmt = "{% macro g() %}{{ caller() }}{% endmacro %}{% call g() %}{{ " + call + " }}{% endcall %}"
    parts = sets + [stmt]
    if rnd.random() < 0.3:
        parts.insert(rnd.randrange(len(parts) + 1), "{# " + rnd.choice(["{{ x }}", "note", "%}", "{%"]) + " #}")
        log.add("comment")
    if rnd.random() < 0.1:
        parts.insert(0, "{% raw %}{{ not code }}{% endraw %}")
        log.add("raw block")
    text = rnd.choice(BENIGN_HEAD) + rnd.choice(["", "\n", "  "]).join(parts) + rnd.choice(BENIGN_TAIL)
    container = rnd.choice(["jinja", "jinja", "tokenizer_config", "tokenizer_config_list", "chat_template_json"])
    loglist = [f"seed: {base}." + ".".join(n for _, n in steps) + f"({args})"] + sorted(log)
    if container == "jinja":
        return f"template-{base}", "chat_template.jinja", text.encode(), loglist + ["chat_template.jinja"]
    if container == "chat_template_json":
        body = {"chat_template": text}
        name = "chat_template.json"
    elif container == "tokenizer_config":
        body = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": text, "model_max_length": 2048}
        name = "tokenizer_config.json"
    else:
        body = {"bos_token": "<s>", "chat_template": [{"name": "default", "template": BENIGN_HEAD[1]},
                                                      {"name": "tool_use", "template": text}]}
        name = "tokenizer_config.json"
    s = json.dumps(body, ensure_ascii=rnd.random() < 0.5, indent=rnd.choice([None, 2]))
    if rnd.random() < 0.3:
        # JSON \u escapes of underscores and braces inside strings.
        # Every '_' of a JSON text is inside a string, where \u005f means the same.
        s = s.replace("_", "\\u005f")
        loglist.append("JSON \\u005f escapes")
    return f"template-{base}", name, s.encode(), loglist + [name + " (" + container + ")"]


MAKERS = {"pickle": pickle_mutant, "torch": torch_mutant, "numpy": numpy_mutant, "joblib": joblib_mutant,
          "template": template_mutant}


# --------------------------------------------------------------------------------------------
# The oracle: real loaders in a forked child, in a throw-away directory
# --------------------------------------------------------------------------------------------

LOADERS = {
    "pickle": ["pickle.load", "pickle._Unpickler", "pickle.load until EOF", "pickle.load(gzip/bz2/lzma.open)"],
    "torch": ["torch.load(weights_only=False)"],
    "numpy": ["numpy.load(allow_pickle=True)"],
    "joblib": ["joblib.load"],
    "template": ["jinja2.Environment", "ImmutableSandboxedEnvironment"],
}


def render_templates(path, sandboxed):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    raw = open(path, "rb").read().decode("utf-8")
    if path.endswith(".json"):
        v = json.loads(raw)["chat_template"]
        texts = [t["template"] for t in v] if isinstance(v, list) else [v]
    else:
        texts = [raw]
    cls = ImmutableSandboxedEnvironment if sandboxed else jinja2.Environment
    env = cls(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(m):
        raise jinja2.exceptions.TemplateError(m)

    env.globals["raise_exception"] = raise_exception
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    err = None
    for t in texts:
        try:
            env.from_string(t).render(messages=msgs, add_generation_prompt=True, bos_token="<s>",
                                      eos_token="</s>", tools=None)
        except Exception as e:  # noqa: BLE001 - the sandbox raises SecurityError
            err = e
    if err:
        raise err


def load_with(loader, path):
    if loader == "pickle.load":
        with open(path, "rb") as f:
            pickle.load(f)
    elif loader == "pickle._Unpickler":
        with open(path, "rb") as f:
            pickle._Unpickler(f).load()
    elif loader == "pickle.load until EOF":
        with open(path, "rb") as f:
            n = os.fstat(f.fileno()).st_size
            while f.tell() < n:
                pickle.load(f)
    elif loader == "pickle.load(gzip/bz2/lzma.open)":
        with open(path, "rb") as f:
            magic = f.read(6)
        opener = gzip.open if magic[:2] == b"\x1f\x8b" else bz2.open if magic[:3] == b"BZh" else lzma.open
        with opener(path, "rb") as f:
            pickle.load(f)
    elif loader.startswith("torch.load"):
        import torch

        torch.load(path, weights_only=False)
    elif loader.startswith("numpy.load"):
        import numpy as np

        r = np.load(path, allow_pickle=True)
        if hasattr(r, "files"):  # an .npz loads its arrays when they are read
            for k in r.files:
                r[k]
    elif loader == "joblib.load":
        import joblib

        joblib.load(path)
    elif loader == "jinja2.Environment":
        render_templates(path, sandboxed=False)
    elif loader == "ImmutableSandboxedEnvironment":
        render_templates(path, sandboxed=True)
    else:
        raise ValueError(loader)


def oracle(loader, data, relname, root, timeout):
    """Loads `data` as `relname` in a fresh directory under root in a forked child.
    Returns (status, marker): status 'ok', 'error' or 'timeout'; marker True when the payload ran."""
    d = tempfile.mkdtemp(dir=root)
    try:
        path = os.path.join(d, relname)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(d)
                fd = os.open(os.devnull, os.O_RDWR)
                os.dup2(fd, 0)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                signal.alarm(timeout)
                import warnings

                warnings.simplefilter("ignore")
                load_with(loader, path)
                code = 0
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st):
            status = "timeout" if os.WTERMSIG(st) == signal.SIGALRM else "crash"
        else:
            status = "ok" if os.WEXITSTATUS(st) == 0 else "error"
        return status, os.path.lexists(os.path.join(d, MARK))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------

RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def scan_batch(scanner, root, batch, jobs):
    """batch: {id: relname}. Returns {id: (verdict, [failing rules], format)}."""
    rep = os.path.join(root, "report.json")
    r = subprocess.run([scanner, "scan", "--json", rep, "-q", "-j", str(jobs), "--color", "never", "batch"],
                       cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"scanner exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
    report = json.load(open(rep))
    fail_on = RANK.get(report.get("fail_on", "high"), 3)
    out = {}
    for a in report["artifacts"]:
        parts = a["path"].split("/")
        if len(parts) < 3 or parts[0] != "batch":
            continue
        mid = parts[1]
        failing = sorted({f["rule"] for f in a["findings"] if RANK.get(f["severity"], 0) >= fail_on and not f.get("suppressed")})
        prev = out.get(mid)
        fmt = a.get("format")
        if prev:
            failing = sorted(set(prev[1]) | set(failing))
        out[mid] = ("fail" if failing else "pass", failing, fmt)
    return out


def scan_alone(scanner, root, relpath):
    r = subprocess.run([scanner, "scan", "-q", "--color", "never", relpath], cwd=root,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# --------------------------------------------------------------------------------------------
# The campaign
# --------------------------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scanner", default=os.path.join(repo, "target", "release", "modelgate"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--loadable", type=int, default=2000, help="stop a family after this many loadable mutants")
    ap.add_argument("--max", type=int, default=0, help="stop a family after this many mutants (0: 3x --loadable)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=1, help="scanner threads (-j)")
    ap.add_argument("--timeout", type=int, default=20, help="seconds a load may take")
    ap.add_argument("--work", default=os.path.join(repo, "target", "hunter-work"))
    ap.add_argument("--found", default=os.path.join(here, "found"))
    ap.add_argument("--summary", default=None, help="write the counts as JSON here")
    ap.add_argument("--no-zf", action="store_true",
                    help="make no joblib file in the legacy ZF wrapper (to spend the budget elsewhere)")
    ap.add_argument("--save-per-class", type=int, default=5,
                    help="silent passes saved per class (all are counted)")
    args = ap.parse_args()
    args.scanner = os.path.abspath(args.scanner)
    args.work = os.path.abspath(args.work)
    args.found = os.path.abspath(args.found)
    global NO_ZF
    NO_ZF = args.no_zf

    fams = [f for f in args.families.split(",") if f]
    for f in fams:
        if f not in FAMILIES:
            ap.error(f"unknown family {f}")
    if not os.access(args.scanner, os.X_OK):
        ap.error(f"no scanner at {args.scanner}: cargo build --release -p modelgate")
    if "torch" in fams:
        import torch

        torch.set_num_threads(1)
    import jinja2  # noqa: F401
    import joblib  # noqa: F401
    import numpy  # noqa: F401

    os.makedirs(args.work, exist_ok=True)
    S = Seeds(fams)
    versions = scanner_and_library_versions(args.scanner, fams)
    print("versions:", json.dumps(versions), flush=True)
    counts = {f: {"mutants": 0, "seed_errors": 0, "loadable": 0, "not_loadable": 0, "scanner_fail": 0,
                  "scanner_pass": 0, "pass_not_loadable": 0, "silent_pass": 0, "sandbox_ran": 0,
                  "loader_timeouts": 0}
              for f in fams}
    found = []
    by_class = {}
    t0 = time.time()
    maxn = args.max or 3 * args.loadable
    for fam in fams:
        rnd = random.Random(f"{args.seed}-{fam}")
        c = counts[fam]
        tf = time.time()
        while c["loadable"] < args.loadable and c["mutants"] < maxn:
            root = tempfile.mkdtemp(dir=args.work, prefix=f"{fam}-")
            batch = {}
            try:
                os.makedirs(os.path.join(root, "batch"))
                while len(batch) < args.batch:
                    try:
                        seed_name, relname, data, log = MAKERS[fam](S, rnd)
                    except Exception as e:  # noqa: BLE001 - a rewrite that genops or a writer refused
                        c["seed_errors"] += 1
                        if c["seed_errors"] < 5:
                            print(f"  [{fam}] mutant not built: {e!r}", flush=True)
                        continue
                    mid = f"m{len(batch):04d}"
                    p = os.path.join(root, "batch", mid, relname)
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, "wb") as f:
                        f.write(data)
                    batch[mid] = (seed_name, relname, data, log)
                verdicts = scan_batch(args.scanner, root, batch, args.jobs)
                for mid, (seed_name, relname, data, log) in batch.items():
                    c["mutants"] += 1
                    verdict, rules, fmt = verdicts.get(mid, ("pass", [], None))
                    ran_by = None
                    statuses = []
                    for loader in LOADERS[fam]:
                        if loader == "ImmutableSandboxedEnvironment":
                            continue
                        st, mark = oracle(loader, data, relname, args.work, args.timeout)
                        statuses.append(f"{loader}: {st}")
                        if st == "timeout":
                            c["loader_timeouts"] += 1
                        if mark:
                            ran_by = loader
                            break
                    if fam == "template":
                        st, mark = oracle("ImmutableSandboxedEnvironment", data, relname, args.work, args.timeout)
                        if mark:
                            c["sandbox_ran"] += 1
                            ran_by = ran_by or "ImmutableSandboxedEnvironment"
                    if verdict == "fail":
                        c["scanner_fail"] += 1
                    else:
                        c["scanner_pass"] += 1
                    if not ran_by:
                        c["not_loadable"] += 1
                        if verdict == "pass":
                            c["pass_not_loadable"] += 1
                        continue
                    c["loadable"] += 1
                    if verdict == "pass":
                        code, out = scan_alone(args.scanner, root, os.path.join("batch", mid, relname))
                        if code != 0:
                            continue
                        c["silent_pass"] += 1
                        cls = silent_class(fam, log)
                        with open(os.path.join(args.work, f"silent-s{args.seed}.jsonl"), "a") as f:
                            f.write(json.dumps({"family": fam, "class": cls, "file_name": relname,
                                                "mutations": log}) + "\n")
                        by_class[cls] = by_class.get(cls, 0) + 1
                        c.setdefault("classes", {})[cls] = by_class[cls]
                        if by_class[cls] > args.save_per_class:
                            continue
                        h = hashlib.sha256(data).hexdigest()[:12]
                        os.makedirs(args.found, exist_ok=True)
                        dst = os.path.join(args.found, f"{fam}-{h}-{os.path.basename(relname)}")
                        with open(dst, "wb") as f:
                            f.write(data)
                        note = {
                            "family": fam, "seed": seed_name, "file_name": relname, "sha256": hashlib.sha256(data).hexdigest(),
                            "class": cls, "payload_ran_under": ran_by, "scanner_format": fmt, "scanner_output": out.strip()[-1500:],
                            "mutations": log, "campaign_seed": args.seed,
                        }
                        with open(dst + ".json", "w") as f:
                            json.dump(note, f, indent=2)
                        found.append(note)
                        print(f"  SILENT PASS [{fam}] {dst}\n    {'; '.join(log)}", flush=True)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            el = time.time() - tf
            print(f"[{fam}] mutants {c['mutants']} loadable {c['loadable']} fail {c['scanner_fail']} "
                  f"pass {c['scanner_pass']} silent {c['silent_pass']} ({el:.0f} s)", flush=True)
        c["seconds"] = round(time.time() - tf, 1)
    total = time.time() - t0
    print()
    print(f"{'family':10} {'mutants':>8} {'loadable':>9} {'not-load':>9} {'scan-fail':>10} {'scan-pass':>10} "
          f"{'silent':>7} {'seconds':>8}")
    for fam in fams:
        c = counts[fam]
        print(f"{fam:10} {c['mutants']:8} {c['loadable']:9} {c['not_loadable']:9} {c['scanner_fail']:10} "
              f"{c['scanner_pass']:10} {c['silent_pass']:7} {c['seconds']:8}")
    tot = {k: sum(counts[f][k] for f in fams) for k in ("mutants", "loadable", "silent_pass")}
    print(f"total: {tot['mutants']} mutants, {tot['loadable']} loadable, {tot['silent_pass']} silent passes, "
          f"{total:.0f} s")
    for cls, n in sorted(by_class.items()):
        print(f"silent passes of class {cls!r}: {n}")
    if any(counts[f]["sandbox_ran"] for f in fams):
        print("WARNING: a template payload ran inside ImmutableSandboxedEnvironment")
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seed": args.seed,
                       "versions": versions, "counts": counts, "seconds": round(total, 1),
                       "silent_passes": found}, f, indent=2)
    return 1 if found else 0


def silent_class(fam, log):
    """A coarse class for a silent pass, so that one known gap does not fill found/."""
    text = "; ".join(log)
    wrapped = any(w in text for w in ("joblib zlib wrapper", "joblib gzip wrapper", "joblib bz2 wrapper",
                                       "joblib xz wrapper", "joblib lzma (alone) wrapper"))
    if "legacy ZF wrapper" in text:
        return f"{fam}: legacy ZF wrapper"
    if wrapped and "lead: big bytes" in text:
        return f"{fam}: compressed, first opcode past 64 KiB"
    if "two members cut" in text or "split into two" in text:
        return f"{fam}: compressed, cut into two streams"
    if any(w in text for w in ("gz compressed", "bz2 compressed", "xz compressed")) and "lead: big bytes" in text:
        return f"{fam}: compressed, first opcode past 64 KiB"
    for marker in ("legacy ZF wrapper", "joblib zlib wrapper", "joblib gzip wrapper", "joblib bz2 wrapper",
                   "joblib xz wrapper", "joblib lzma (alone) wrapper", "inside an .npz", "a benign stream before it",
                   "the payload stream twice", "bytes after STOP", "GLOBAL names in Python 2 spelling"):
        if marker in text:
            return f"{fam}: {marker}"
    return fam


def scanner_and_library_versions(scanner, fams):
    v = {"python": sys.version.split()[0]}
    v["modelgate"] = subprocess.run([scanner, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    for m in ("numpy", "joblib", "jinja2", "torch"):
        if m == "torch" and "torch" not in fams:
            continue
        try:
            v[m] = __import__(m).__version__
        except ImportError:
            v[m] = None
    return v


if __name__ == "__main__":
    sys.exit(main())
