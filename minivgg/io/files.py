"""The one place minivgg touches a user's paths: checked inputs, checked outputs, all-or-nothing writes.

:class:`CheckpointError` is the one error every reader of minivgg's files
raises for a file that is corrupt or does not fit.

Inputs
    :func:`check_input_file` / :func:`open_input` / :func:`reading` turn every
    way opening or reading a file can fail (missing, a directory, no read
    permission, a path through a regular file, not a zip archive, truncated)
    into one line naming the path the user gave and what is wrong with it.
    :func:`check_input_dir` does the same for a data directory. A missing path
    stays a :class:`FileNotFoundError`; every other problem is the reader's
    error class (:class:`CheckpointError` unless it says otherwise).
Sizes
    A file's header may claim more data than the file holds. Every reader
    compares such claims with what the file can hold before allocating:
    :func:`check_zip_member` bounds a zip member by the archive (a stored
    member by its bytes on disk, a deflated one by deflate's maximum
    expansion, :data:`DEFLATE_MAX_RATIO`), and :func:`read_bounded` reads a
    stream in chunks so that a claim is never allocated at once.
Outputs
    :func:`check_output_path` checks an output path before long work starts
    (suffix, directory exists and is writable, path is not a directory).
    :func:`atomic_write` writes to a temporary file in the same directory,
    flushed to disk and given the permissions an ordinary file would get, and
    only then renamed over the target. ``os.replace`` is atomic within a file
    system, so a crash, a full disk or an exception in the middle leaves either
    the old file or the new one -- never half of one. Its errors name the
    user's path, never the temporary file.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence


class CheckpointError(ValueError):
    """A file minivgg reads (weights, checkpoint) is truncated, corrupt, of an unknown format, or does not fit."""


#: Deflate cannot expand its input by more than about 1032:1 (RFC 1951: a
#: 258-byte match costs at least 2 bits), so a deflated member or a gzip
#: stream of ``n`` bytes holds at most ``DEFLATE_MAX_RATIO * n`` bytes.
DEFLATE_MAX_RATIO = 1032
#: Chunk size of :func:`read_bounded`: memory is committed only as data arrives.
CHUNK = 1 << 20

ErrorType = Callable[[str], Exception]


def _label(path: str | os.PathLike, what: str) -> str:
    return f"{what} {os.fspath(path)}" if what else os.fspath(path)


def _problem(exc: OSError) -> str:
    """What an OSError says about a path, in words (without the path, which the caller names)."""
    if isinstance(exc, FileNotFoundError):
        return "does not exist (no such file or directory)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, NotADirectoryError):
        return "cannot be reached: a part of its path is a file, not a directory"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({exc.strerror or exc})"


def _stat(path: str | os.PathLike, what: str, error: ErrorType, kind: str) -> tuple[Path, str, os.stat_result]:
    """``(Path, label, stat)`` of an input; nothing there is a FileNotFoundError, any other failure ``error``."""
    p = Path(path)
    label = _label(path, what)
    try:
        return p, label, p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{label} does not exist (no such {kind})") from None
    except OSError as exc:
        raise error(f"{label} {_problem(exc)}") from None


def check_input_file(path: str | os.PathLike, what: str = "file", error: ErrorType = CheckpointError) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a readable regular file; else a one-line error.

    Parameters
    ----------
    what : str
        What the file should be ("checkpoint", "weights file", "CIFAR-10 batch");
        the message reads ``"<what> <path> <problem>"``.
    error : exception class
        Raised for every problem but a missing file (default :class:`CheckpointError`).

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path`` ("... does not exist").
    error
        A directory, not a regular file, a path through a regular file, or no read permission.
    """
    p, label, st = _stat(path, what, error, "file")
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{label} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{label} is not a regular file")
    if not os.access(p, os.R_OK):
        raise error(f"{label} cannot be read (permission denied)")
    return p


def check_input_dir(path: str | os.PathLike, what: str = "directory", error: ErrorType = ValueError) -> Path:
    """``path`` if it is a readable directory; a regular file there is reported as such, not as missing."""
    p, label, st = _stat(path, what, error, "directory")
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"{label} is a file, not a directory")
    if not os.access(p, os.R_OK | os.X_OK):
        raise error(f"{label} cannot be read (permission denied)")
    return p


def zip_problem(path: str | os.PathLike, hint: str = "") -> str | None:
    """``None`` if ``path`` is a readable zip archive, else what is wrong ("is not a zip archive" + ``hint``)."""
    try:
        if zipfile.is_zipfile(path):
            return None
    except OSError as exc:
        return _problem(exc)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":  # starts like a zip but its directory (at the end) is missing
        return f"is truncated or damaged: a zip archive without its central directory ({size} bytes)"
    return f"is not a zip archive{hint}"


@contextmanager
def reading(path: str | os.PathLike, what: str = "file", error: ErrorType = CheckpointError) -> Iterator[None]:
    """Translate low-level failures while reading ``path`` into one line naming it.

    ``FileNotFoundError`` stays a ``FileNotFoundError``; a directory, permission
    problems, a damaged zip archive, an ``EOFError`` ("is truncated") and a
    corrupt deflate/gzip stream become ``error``. The reader's own errors
    (:class:`CheckpointError`, ``ValueError``...) pass through unchanged.
    """
    label = _label(path, what)
    try:
        yield
    except FileNotFoundError:
        raise FileNotFoundError(f"{label} does not exist (no such file)") from None
    except zipfile.BadZipFile as exc:
        raise error(f"{label} is a damaged zip archive ({exc})") from None
    except EOFError:
        raise error(f"{label} is truncated (ends in the middle of its data)") from None
    except zlib.error as exc:
        raise error(f"{label} holds a corrupt compressed stream ({exc})") from None
    except OSError as exc:
        if "gzip" in str(exc).lower() or "compressed" in str(exc).lower():  # gzip.BadGzipFile and friends
            raise error(f"{label} is not a readable gzip file ({exc})") from None
        raise error(f"{label} {_problem(exc)}") from None


def open_input(path: str | os.PathLike, what: str = "file", error: ErrorType = CheckpointError) -> BinaryIO:
    """:func:`check_input_file`, then ``open(path, "rb")`` with :func:`reading`'s error messages."""
    p = check_input_file(path, what, error)
    with reading(path, what, error):
        return open(p, "rb")


def read_bounded(fh: BinaryIO, limit: int) -> bytes:
    """Read at most ``limit`` bytes in :data:`CHUNK`-sized pieces (a claimed size is never allocated at once)."""
    parts, got = [], 0
    while got < limit:
        part = fh.read(min(CHUNK, limit - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def check_zip_member(info: zipfile.ZipInfo, archive_size: int, source: str,
                     error: ErrorType = CheckpointError) -> int:
    """The uncompressed size of a zip member, after checking the archive can really hold it.

    A zip's central directory states each member's sizes; nothing stops a
    crafted archive from claiming terabytes. A stored member must lie inside
    the archive (``header_offset + compress_size <= archive_size``) and be as
    large as it says; a deflated member may expand at most
    :data:`DEFLATE_MAX_RATIO` times. Other compression methods are refused.
    """
    name = info.filename
    if info.compress_size < 0 or info.file_size < 0 or info.header_offset + info.compress_size > archive_size:
        raise error(f"{source}: zip member {name} claims {info.compress_size} bytes at offset "
                    f"{info.header_offset}, past the end of the {archive_size}-byte archive (truncated file?)")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise error(f"{source}: stored zip member {name} claims {info.file_size} bytes but holds "
                        f"{info.compress_size}")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 64:
            raise error(f"{source}: zip member {name} claims {info.file_size} bytes from {info.compress_size} "
                        f"compressed ones, more than deflate can expand ({DEFLATE_MAX_RATIO}:1)")
    else:
        raise error(f"{source}: zip member {name} uses compression method {info.compress_type}; "
                    "minivgg reads stored or deflated members")
    return info.file_size


# ------------------------------------------------------------------ outputs
def _check_output_dir(path: Path, label: str) -> None:
    parent = path.parent
    try:
        st = parent.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot write {label}: directory {parent} does not exist") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"cannot write {label}: a part of {parent} is a file, not a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"cannot write {label}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {label}: directory {parent} is not writable")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {label}: it is a directory")


def check_output_path(path: str | os.PathLike, what: str = "output", suffixes: Sequence[str] | None = None) -> Path:
    """Check, before any work, that ``path`` can be written; returns it as a Path.

    Parameters
    ----------
    what : str
        How the user named the path (``"--out"``, ``"--plot"``, ``"output"``).
    suffixes : sequence of str, optional
        Accepted suffixes (lower case, with the dot). Every writer of one
        format refuses other names: content is never written under a suffix
        that says something else.

    Raises
    ------
    ValueError
        Wrong suffix (names the expected ones).
    FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError
        The directory is missing, not a directory or not writable; ``path`` is a directory.
    """
    p = Path(path)
    label = _label(path, what)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ValueError(f"{label}: expected a file name ending in {', '.join(suffixes)}, "
                         f"got {p.suffix or 'no suffix'!r}")
    _check_output_dir(p, label)
    return p


def plot_suffixes() -> tuple[str, ...]:
    """The suffixes a plot may be saved under: what matplotlib's Agg canvas writes (``.png``, ``.pdf``, ``.svg``...).

    Without matplotlib, the common three (the plot itself then says matplotlib is missing).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        return (".png", ".pdf", ".svg")
    return tuple(sorted(f".{k}" for k in FigureCanvasAgg.get_supported_filetypes()))


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
    The directory is checked first, and file-system errors (a full disk, a
    read-only mount) are re-raised with the same type but a message naming
    ``path`` -- never the temporary file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    _check_output_dir(path, os.fspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):  # same type, the user's path instead of the temp file's
            raise type(exc)(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path
