"""Writing files all-or-nothing: one helper every minivgg writer uses.

:class:`CheckpointError` is the one error every reader of minivgg's files
raises for a file that is corrupt or does not fit.

A checkpoint, a weights file or a plot is written to a temporary file in the
same directory, flushed to disk, given the permissions an ordinary file would
get, and only then renamed over the target. ``os.replace`` is atomic within a
file system, so a crash, a full disk or an exception in the middle leaves
either the old file or the new one -- never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


class CheckpointError(ValueError):
    """A file minivgg reads (weights, checkpoint) is truncated, corrupt, of an unknown format, or does not fit."""


def _default_mode(path: Path) -> int:
    """The mode ``open()`` would give a new file (0o666 minus the umask), or the existing file's."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left exactly
    as it was. ``mkstemp`` creates files readable only by their owner; the
    result gets the mode a normal ``open(path, "wb")`` would have given it.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
