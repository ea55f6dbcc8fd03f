"""Crafting PyTorch checkpoints without torch: a protocol-2 pickle writer and the two container layouts.

Shared by the tests of :mod:`minivgg.io` (``test_weights``, ``test_bad_inputs``,
``test_fuzz_files``). Opcodes are written by hand, so any global can be named
and any size claimed: files torch would write (including the 2017
``_rebuild_tensor`` form of the torchvision VGG files) and files it never would
(malicious, truncated, inconsistent, claiming terabytes).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

MAGIC = 0x1950A86A20F9469CFC6C


# ---------------------------------------------------------------------------
# A minimal protocol-2 pickle writer (opcodes by hand, so any global can be named)
# ---------------------------------------------------------------------------

class G:
    """GLOBAL opcode: ``module.name``."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class Call:
    """REDUCE: ``func(*args)``."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args


class PID:
    """BINPERSID: a persistent id."""

    def __init__(self, value) -> None:
        self.value = value


class Build:
    """BUILD: ``obj.__setstate__(state)``."""

    def __init__(self, obj, state) -> None:
        self.obj, self.state = obj, state


def enc(o) -> bytes:
    if o is None:
        return b"N"
    if o is True:
        return b"\x88"
    if o is False:
        return b"\x89"
    if isinstance(o, int):
        if -(2 ** 31) <= o < 2 ** 31:
            return b"J" + struct.pack("<i", o)
        n = (o.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + o.to_bytes(n, "little", signed=True)
    if isinstance(o, str):
        raw = o.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw
    if isinstance(o, tuple):
        return b"(" + b"".join(enc(i) for i in o) + b"t"
    if isinstance(o, list):
        return b"]" + (b"(" + b"".join(enc(i) for i in o) + b"e" if o else b"")
    if isinstance(o, dict):
        return b"}" + (b"(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u" if o else b"")
    if isinstance(o, G):
        return b"c" + o.module.encode() + b"\n" + o.name.encode() + b"\n"
    if isinstance(o, Call):
        return enc(o.func) + enc(tuple(o.args)) + b"R"
    if isinstance(o, PID):
        return enc(o.value) + b"Q"
    if isinstance(o, Build):
        return enc(o.obj) + enc(o.state) + b"b"
    raise TypeError(o)


def dumps(o) -> bytes:
    return b"\x80\x02" + enc(o) + b"."


def ordered(items: dict) -> Call:
    """``OrderedDict([(k, v), ...])`` as torch's state dicts are pickled."""
    return Call(G("collections", "OrderedDict"), [tuple(kv) for kv in items.items()])


def tensor(key, stype, numel, offset, size, stride, v2=True, view=None, legacy=True):
    pid = ("storage", G("torch", stype), key, "cpu", numel) + ((view,) if legacy else ())
    if v2:
        return Call(G("torch._utils", "_rebuild_tensor_v2"), PID(pid), offset, size, stride, False, ordered({}))
    return Call(G("torch._utils", "_rebuild_tensor"), PID(pid), offset, size, stride)


def legacy_file(main, storages, *, magic=MAGIC, version=1001, little=True, keys=None) -> bytes:
    """The legacy stream: 5 pickles, then per storage an int64 count + bytes."""
    keys = [k for k, _, _ in storages] if keys is None else keys
    out = dumps(magic) + dumps(version) + dumps({"protocol_version": 1001, "little_endian": little,
                                                 "type_sizes": {"short": 2, "int": 4, "long": 8}})
    out += dumps(main) + dumps(keys)
    for _key, count, raw in storages:
        out += count.to_bytes(8, "little" if little else "big", signed=True) + raw
    return out


def zip_file(path: Path, main_pickle: bytes, storages: dict, top="archive", byteorder=b"little") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{top}/data.pkl", main_pickle)
        zf.writestr(f"{top}/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"{top}/data/{key}", raw)
        zf.writestr(f"{top}/version", b"3\n")
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
