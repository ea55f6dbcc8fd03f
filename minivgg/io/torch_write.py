"""PyTorch out without PyTorch: a state dict in torch's zip format (what ``torch.save`` writes since 1.6).

The archive (stored, not deflated; every member's data 64-byte aligned, as torch
writes it so that it can be memory-mapped)::

    archive/data.pkl     protocol-2 pickle of an OrderedDict {key: tensor}
    archive/byteorder    b"little"
    archive/data/0 ...   each tensor's raw little-endian bytes (one storage per tensor)
    archive/version      b"3\\n"

Each tensor in ``data.pkl`` is the call ``torch._utils._rebuild_tensor_v2(storage,
0, size, stride, False, OrderedDict())`` where ``storage`` is the persistent id
``("storage", torch.FloatStorage, "N", "cpu", numel)``: exactly the globals
``torch.load(weights_only=True)`` allows. The pickle is written opcode by opcode
because Python's pickler would import ``torch`` to check those globals.

Cost: one pass over the parameters (each array written once; contiguous arrays are not copied).
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Mapping

import numpy as np

from .files import atomic_write

#: NumPy dtype -> torch's legacy storage class name (what ``torch.load`` maps back to a dtype).
_STORAGES = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
             np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage"}
_ALIGN = 64


def _str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _int(i: int) -> bytes:
    if 0 <= i < 2 ** 31:
        return b"J" + struct.pack("<i", i)  # BININT
    raw = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


_ORDERED_DICT = b"ccollections\nOrderedDict\n)R"  # GLOBAL, EMPTY_TUPLE, REDUCE: OrderedDict()


def state_dict_pickle(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The ``data.pkl`` of ``arrays``: storage ``N`` is the N-th array, each tensor C-contiguous at offset 0."""
    out = [b"\x80\x02", _ORDERED_DICT]
    for n, (key, arr) in enumerate(arrays.items()):
        storage = _STORAGES[arr.dtype]
        strides = [s // arr.itemsize for s in np.empty(arr.shape, arr.dtype).strides]  # C order, in elements
        pid = _tuple([_str("storage"), f"ctorch\n{storage}\n".encode(), _str(str(n)), _str("cpu"), _int(arr.size)])
        args = _tuple([pid + b"Q",  # BINPERSID: the storage
                       _int(0), _tuple([_int(d) for d in arr.shape]), _tuple([_int(s) for s in strides]),
                       b"\x89",  # NEWFALSE: requires_grad
                       _ORDERED_DICT])  # backward hooks
        out.append(_str(key) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R" + b"s")  # REDUCE, SETITEM
    out.append(b".")  # STOP
    return b"".join(out)


def _member(zf: zipfile.ZipFile, name: str, data: bytes | memoryview) -> None:
    """Add a stored member whose data starts at a multiple of :data:`_ALIGN` (padding in the extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    offset = zf.fp.tell() + 30 + len(name.encode())  # local header is 30 bytes + name + extra
    pad = (-(offset + 4)) % _ALIGN
    info.extra = struct.pack("<HH", 0xFE00, pad) + b"\0" * pad  # an unregistered header id, as torch uses
    with zf.open(info, "w", force_zip64=False) as fh:
        fh.write(data)


def write_torch_state_dict(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``{key: array}`` as a file ``torch.load(path, weights_only=True)`` returns as an OrderedDict of tensors.

    Arrays must be float16/32/64 or int64; they are written little-endian, C order. Atomic (temp file + rename).
    """
    staged: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, value in arrays.items():
        arr = np.asarray(value)
        native = arr.dtype.newbyteorder("=")
        if native not in _STORAGES:
            raise TypeError(f"write_torch_state_dict: {key} has dtype {arr.dtype}; expected one of "
                            f"{sorted(str(d) for d in _STORAGES)}")
        staged[key] = np.ascontiguousarray(arr.astype(native.newbyteorder("<"), copy=False))  # torch: little-endian
    arrays = staged
    root = "archive"  # torch reads any single top-level folder; "archive" is what torch.save writes

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            _member(zf, f"{root}/data.pkl", state_dict_pickle(arrays))
            _member(zf, f"{root}/byteorder", b"little")
            for n, arr in enumerate(arrays.values()):
                _member(zf, f"{root}/data/{n}", memoryview(arr).cast("B"))
            _member(zf, f"{root}/version", b"3\n")

    return atomic_write(path, write)


__all__ = ["state_dict_pickle", "write_torch_state_dict"]
