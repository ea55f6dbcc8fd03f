"""PyTorch checkpoints read with NumPy alone: the zip format and the 2017 legacy stream.

The container half of :mod:`minivgg.io.weights`: bytes in, ``{key: ndarray}`` out,
with every pickle global checked against an allow-list. What those keys mean
for a VGG (torchvision's ``features.N.weight`` ...) is :mod:`minivgg.io.weights`' job.

File formats
------------
PyTorch zip (``torch.save`` since 1.6)
    A zip archive with one top folder (its name varies): ``<top>/data.pkl`` is the
    pickled state dict in which every tensor's data is replaced by a *persistent
    id* ``("storage", torch.FloatStorage, key, location, numel)``; the bytes of
    storage ``key`` are the member ``<top>/data/<key>``; ``<top>/byteorder`` says
    ``little`` or ``big`` (absent in old files: little).
PyTorch legacy stream (before 1.6, and ``_use_new_zipfile_serialization=False``)
    Five pickles back to back -- the magic number ``0x1950a86a20f9469cfc6c``, the
    protocol version 1001, a sys-info dict (byte order, type sizes), the state
    dict (persistent ids as above plus a sixth field, an optional storage view
    ``(view_key, offset, numel)``), and the list of storage keys -- followed, per
    key in that list's order, by an int64 element count and the raw bytes. The
    torchvision VGG files of 2017 are in this format and rebuild tensors with
    ``torch._utils._rebuild_tensor`` (4 arguments) rather than ``_rebuild_tensor_v2``.

How the pickled part is read safely is :mod:`minivgg.io.torch_pickle`'s job.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .files import CheckpointError, check_input_file, check_zip_member, reading
from .safe_pickle import UnsafePickleError
from .torch_pickle import TorchReader, check_all_read, materialize, pickled_text, unpickle

__all__ = ["CheckpointError", "UnsafePickleError", "MAGIC_NUMBER", "PROTOCOL_VERSION", "read_torch_checkpoint"]

#: ``progress(done, total)`` callbacks report bytes read so far of the declared total.
Progress = Callable[[int, int], None]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def _read_legacy(fh: io.BufferedIOBase, source: str, progress: Progress | None = None) -> Any:
    """The pre-1.6 stream: magic, version, sys-info, main pickle, storage keys, then the storages."""
    no_globals: dict = {}
    magic = unpickle(fh, no_globals, source)
    if type(magic) is not int or magic != MAGIC_NUMBER:
        raise CheckpointError(f"{source}: wrong magic number {magic!r}; expected PyTorch's 0x1950a86a20f9469cfc6c "
                              "(not a PyTorch checkpoint, or corrupt)")
    version = unpickle(fh, no_globals, source)
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"{source}: PyTorch legacy protocol version {version!r}; expected {PROTOCOL_VERSION}")
    sys_info = unpickle(fh, no_globals, source)
    if not isinstance(sys_info, dict):
        raise CheckpointError(f"{source}: sys-info record must be a dict, got {type(sys_info).__name__}")
    byteorder = "little" if sys_info.get("little_endian", True) else "big"
    total = os.fstat(fh.fileno()).st_size
    reader = TorchReader(source)
    result = unpickle(fh, reader.allowed(), source, reader.persistent_load)
    keys = unpickle(fh, no_globals, source)
    report = _reporter(reader, progress)
    if not isinstance(keys, list):
        raise CheckpointError(f"{source}: storage key list must be a list, got {type(keys).__name__}")
    for key in keys:
        key = pickled_text(key, "storage key", source)
        root = reader.roots.get(key)
        if root is None:
            raise CheckpointError(f"{source}: storage {key} is listed but no tensor uses it")
        if root.flat is not None:
            raise CheckpointError(f"{source}: storage {key} is listed twice")
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{source}: file ends before storage {key} (truncated?)")
        count = int.from_bytes(head, byteorder, signed=True)
        if count != root.numel:
            raise CheckpointError(f"{source}: storage {key} holds {count} elements on disk but the tensors "
                                  f"declare {root.numel}")
        left = total - fh.tell()
        if root.nbytes > left:  # checked before allocating: a crafted count must not reserve huge memory
            raise CheckpointError(f"{source}: storage {key} is cut short: {max(left, 0)} of {root.nbytes} bytes "
                                  "(truncated file?)")
        buf = bytearray(root.nbytes)
        got = fh.readinto(buf)
        if got != root.nbytes:
            raise CheckpointError(f"{source}: storage {key} is cut short: {got} of {root.nbytes} bytes "
                                  "(truncated file?)")
        root.flat = root.stype.decode(buf, byteorder)
        report(root.nbytes)
    check_all_read(reader)
    return materialize(result, source, reader)


def _read_zip(path: Path, source: str, progress: Progress | None = None) -> Any:
    """The torch >= 1.6 zip: ``<top>/data.pkl`` + ``<top>/data/<key>``."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{source}: damaged zip archive ({exc}); truncated download?") from None
    archive_size = os.path.getsize(path)
    with zf:
        for info in zf.infolist():  # every size the directory claims, bounded by the archive before any read
            check_zip_member(info, archive_size, source)
        names = set(zf.namelist())
        pickles = sorted(n for n in names if n.rsplit("/", 1)[-1] == "data.pkl" and n.count("/") <= 1)
        if len(pickles) != 1:
            raise CheckpointError(f"{source}: a PyTorch zip checkpoint has exactly one <top>/data.pkl; "
                                  f"found {pickles or 'none'}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise CheckpointError(f"{source}: byteorder record must be 'little' or 'big', got {byteorder!r}")
        reader = TorchReader(source)
        try:
            data = zf.read(pickles[0])
            result = unpickle(io.BytesIO(data), reader.allowed(), source, reader.persistent_load)
            report = _reporter(reader, progress)
            for key, root in reader.roots.items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    continue  # reported by _check_all_read with every other missing key
                info = zf.getinfo(member)
                if info.file_size != root.nbytes:
                    raise CheckpointError(f"{source}: storage {key} has {info.file_size} bytes, the tensors "
                                          f"declare {root.numel} x {root.stype.itemsize} = {root.nbytes}")
                buf = bytearray(root.nbytes)
                with zf.open(info) as member_fh:
                    got = member_fh.readinto(buf)
                if got != root.nbytes:
                    raise CheckpointError(f"{source}: storage {key} is cut short ({got} of {root.nbytes} bytes)")
                root.flat = root.stype.decode(buf, byteorder)
                report(root.nbytes)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CheckpointError(f"{source}: damaged zip member ({exc})") from None
    check_all_read(reader)
    return materialize(result, source, reader)


def _reporter(reader: TorchReader, progress: Progress | None) -> Callable[[int], None]:
    """``report(nbytes)`` after each storage: calls ``progress(bytes read, bytes declared)``."""
    total = sum(root.nbytes for root in reader.roots.values())
    done = [0]

    def report(nbytes: int) -> None:
        done[0] += nbytes
        if progress is not None:
            progress(done[0], total)

    return report


def _sniff(path: Path) -> str:
    """``"zip" | "legacy" | "hdf5" | "tar" | "unknown"`` from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80":  # pickle PROTO opcode; the reader checks the magic number that follows
        return "legacy"
    return "unknown"


def _find_state_dict(obj: Any, source: str) -> dict[str, np.ndarray]:
    """The ``{key: array}`` mapping inside a checkpoint (top level, or under "state_dict"/"model")."""
    def is_state(o: Any) -> bool:
        return isinstance(o, dict) and bool(o) and all(isinstance(k, str) for k in o) \
            and all(isinstance(v, np.ndarray) for v in o.values())

    candidates = [obj]
    if isinstance(obj, dict):
        candidates += [obj[k] for k in ("state_dict", "model", "model_state_dict") if k in obj]
    for cand in candidates:
        if is_state(cand):
            state = dict(cand)
            if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
                state = {k[len("module."):]: v for k, v in state.items()}
            return state
    shown = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{source}: no state dict of tensors found (top level: {shown})")


def read_torch_checkpoint(path: str | os.PathLike, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Read a PyTorch checkpoint's state dict without importing torch.

    Parameters
    ----------
    path : path-like
        A file written by ``torch.save(state_dict, path)`` in the zip format
        (torch >= 1.6) or the legacy stream (older torch,
        ``_use_new_zipfile_serialization=False``); detected from the first bytes.

    Returns
    -------
    dict
        ``{key: ndarray}`` in the file's order, torch's names and layouts
        (conv ``(F, C, KH, KW)``, linear ``(D_out, D_in)``). float32/float64/
        float16 stay as they are, bfloat16 becomes float32, integer tensors
        keep their width. A dict nested under ``"state_dict"``/``"model"`` and a
        ``"module."`` prefix (DataParallel) are unwrapped.

    ``progress(bytes_read, bytes_total)``, if given, is called after each
    storage is read (VGG-16's file: 528 MB in 32 storages).

    Raises
    ------
    UnsafePickleError
        The pickle names a global outside the allow-list (nothing was called).
    CheckpointError
        Truncated or corrupt file, wrong magic number, missing storages,
        out-of-bounds tensors, or no tensors at all.
    FileNotFoundError
        No such file (a directory or an unreadable path is a CheckpointError naming it).
    """
    path = check_input_file(path, "PyTorch checkpoint")
    source = str(path)
    with reading(path, "PyTorch checkpoint"):
        kind = _sniff(path)
    if kind == "zip":
        result = _read_zip(path, source, progress)
    elif kind == "legacy":
        with reading(path, "PyTorch checkpoint"), open(path, "rb") as fh:
            result = _read_legacy(fh, source, progress)
    elif kind == "tar":
        raise CheckpointError(f"{source}: tar-format checkpoint (PyTorch < 0.1.10) is not supported; "
                              "re-save it with a newer torch")
    else:
        raise CheckpointError(f"{source}: not a PyTorch checkpoint (expected a zip archive or a pickle stream "
                              f"starting with byte 0x80, file looks like {kind})")
    return _find_state_dict(result, source)


