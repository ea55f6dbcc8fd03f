"""Hugging Face ``.safetensors`` in, with NumPy alone, and timm's VGG layout mapped to torchvision's.

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
unsigned header length ``n``, then ``n`` bytes of UTF-8 JSON
``{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {...}}``, then the data buffer. Offsets are relative to the
start of the buffer; tensors are C-contiguous little-endian, and the buffer is
indexed entirely (no holes, no overlaps).

Every claim is checked against the file before anything is allocated: the
header fits in the file, each tensor's ``[begin, end)`` lies inside the
buffer, ``prod(shape) * itemsize == end - begin``, and the tensors tile the
buffer. Peak memory is therefore the file size plus one tensor (each tensor
is read with one bounded read; BF16 is widened to float32, doubling only it).

timm's VGG (``vgg16.tv_in1k``) keeps torchvision's ``features.N`` but stores
the classifier as convolutions: ``pre_logits.fc1.weight`` ``(4096, 512, 7, 7)``
is fc6 as a 7x7 conv over the 7x7 map, ``pre_logits.fc2.weight``
``(4096, 4096, 1, 1)`` is fc7, ``head.fc`` is fc8. A 7x7 conv with no padding
over a 7x7 map is one dot product per output over ``(c, h, w)`` -- exactly
torch's ``Flatten`` order -- so ``w.reshape(4096, -1)`` is torchvision's
``classifier.0.weight`` (and minivgg's fc6 is its transpose).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

from .files import CheckpointError, open_input, read_bounded, reading

#: safetensors dtype tags minivgg reads -> NumPy little-endian dtypes (BF16 is widened by hand).
DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
#: The format caps the JSON header at 100 MB (the reference implementation refuses larger ones).
MAX_HEADER = 100_000_000


def _header(fh, size: int, source: str) -> tuple[dict, int]:
    raw = fh.read(8)
    if len(raw) < 8:
        raise CheckpointError(f"{source}: {size}-byte file is too short for a safetensors header (8-byte length)")
    (n,) = struct.unpack("<Q", raw)
    if n > size - 8 or n > MAX_HEADER:
        raise CheckpointError(f"{source}: safetensors header claims {n:,} bytes but the file holds {size - 8:,} "
                              f"after the length (limit {MAX_HEADER:,}); truncated or not a safetensors file")
    text = read_bounded(fh, n)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{source}: safetensors header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{source}: safetensors header is a {type(header).__name__}, expected a JSON object")
    return header, 8 + n


def _entries(header: dict, buffer_size: int, source: str) -> list[tuple[str, np.dtype, str, tuple, int, int]]:
    """Validate every entry: ``(name, dtype, tag, shape, begin, end)`` sorted by ``begin``."""
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{source}: tensor {name!r}: expected keys dtype, shape, data_offsets, got {entry!r:.120}")
        tag, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if tag not in DTYPES:
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {tag!r}; minivgg reads {sorted(DTYPES)}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{source}: tensor {name!r} has shape {shape!r}; expected a list of ints >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(f"{source}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end], 0 <= begin <= end")
        begin, end = offsets
        if end > buffer_size:
            raise CheckpointError(f"{source}: tensor {name!r} ends at byte {end:,} of the data buffer, past its end "
                                  f"({buffer_size:,} bytes); truncated file?")
        dtype = DTYPES[tag]
        if math.prod(shape) * dtype.itemsize != end - begin:
            raise CheckpointError(f"{source}: tensor {name!r} of shape {tuple(shape)} and dtype {tag} needs "
                                  f"{math.prod(shape) * dtype.itemsize:,} bytes, its offsets give {end - begin:,}")
        out.append((name, dtype, tag, tuple(shape), begin, end))
    out.sort(key=lambda e: (e[4], e[5]))
    position = 0
    for name, _, _, _, begin, end in out:
        if begin != position:
            what = "overlaps the previous tensor" if begin < position else f"leaves a hole at byte {position:,}"
            raise CheckpointError(f"{source}: tensor {name!r} at data_offsets [{begin}, {end}] {what}; "
                                  "safetensors tensors tile the buffer without gaps or overlaps")
        position = end
    if position != buffer_size:
        raise CheckpointError(f"{source}: the tensors cover {position:,} of the {buffer_size:,}-byte data buffer")
    return out


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``.safetensors`` file -> ``{name: array}`` in file order of offsets (F16/F32/F64 kept, BF16 -> float32).

    Raises
    ------
    FileNotFoundError; CheckpointError (a ValueError) naming the file and the tensor for any bad claim.
    """
    source = os.fspath(path)
    fh = open_input(path, "weights file")
    with fh, reading(path, "weights file"):
        size = os.fstat(fh.fileno()).st_size
        header, start = _header(fh, size, source)
        arrays: dict[str, np.ndarray] = {}
        for name, dtype, tag, shape, begin, end in _entries(header, size - start, source):
            fh.seek(start + begin)
            data = read_bounded(fh, end - begin)
            if len(data) != end - begin:  # the file shrank while we read it
                raise CheckpointError(f"{source}: tensor {name!r} is truncated")
            arr = np.frombuffer(data, dtype=dtype).reshape(shape)
            if tag == "BF16":  # bfloat16 is the top half of a float32
                arr = (arr.astype("<u4") << 16).view("<f4")
            arrays[name] = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return arrays


#: timm's VGG classifier -> torchvision's (``pre_logits`` is a ConvMlp, ``head.fc`` a Linear).
_TIMM_TO_TORCHVISION = {"pre_logits.fc1": "classifier.0", "pre_logits.fc2": "classifier.3", "head.fc": "classifier.6"}


def timm_to_torchvision(state: Mapping[str, np.ndarray], source: str = "<state dict>") -> dict[str, np.ndarray]:
    """timm's VGG state dict -> torchvision's (a state dict of torchvision layout passes through).

    ``pre_logits.fc1.weight (O, C, k, k)`` -> ``classifier.0.weight (O, C*k*k)`` by
    reshape (row-major ``(c, h, w)``: the order of torch's ``Flatten``), likewise fc2's
    ``(O, I, 1, 1)``; ``head.fc`` is already a Linear. Cost: reshapes are views.
    """
    if not any(k.startswith("pre_logits.") for k in state):
        return dict(state)
    out: dict[str, np.ndarray] = {}
    for key, arr in state.items():
        prefix, _, kind = key.rpartition(".")
        if prefix in _TIMM_TO_TORCHVISION:
            if kind == "weight" and prefix.startswith("pre_logits"):
                if arr.ndim != 4:
                    raise CheckpointError(f"{source}: {key} has shape {arr.shape}; timm stores it as a conv (O, C, KH, KW)")
                arr = arr.reshape(arr.shape[0], -1)  # (O, C*KH*KW), torch's flatten order
            out[f"{_TIMM_TO_TORCHVISION[prefix]}.{kind}"] = arr
        elif key.startswith("features."):
            out[key] = arr
        else:
            raise CheckpointError(f"{source}: unexpected key {key!r} in a timm VGG "
                                  "(expected features.N, pre_logits.fc1/fc2, head.fc)")
    return out


def read_safetensors_vgg(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A VGG ``.safetensors`` (timm or torchvision layout) -> a torchvision-layout state dict."""
    return timm_to_torchvision(read_safetensors(path), os.fspath(Path(path)))


__all__ = ["DTYPES", "read_safetensors", "timm_to_torchvision", "read_safetensors_vgg"]
