"""Import a student's ``layers.py`` by path without letting its errors crash the checker."""

from __future__ import annotations

import importlib.util
import itertools
import os
import traceback
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from ._timeout import StudentTimeout, run_with_time_limit

_counter = itertools.count()


class LoadResult(NamedTuple):
    """``module`` when the import worked, else None and ``error``: one paragraph naming file, line and exception."""
    path: Path
    module: ModuleType | None
    error: str | None


#: Seconds the student's module may take to import (its top-level code) before it is reported as hung.
IMPORT_TIMEOUT = 20.0


def load_student(path: str | os.PathLike, timeout: float | None = IMPORT_TIMEOUT) -> LoadResult:
    """Import the file at ``path`` (a ``layers.py`` or a workspace directory holding one).

    A missing file, a syntax error, any exception raised while the module runs,
    or top-level code still running after ``timeout`` seconds (an endless loop;
    None: no limit) becomes ``LoadResult(module=None, error=...)``. The module
    gets a fresh unique name each call, so an edited file is re-read and
    ``sys.modules`` is untouched.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "layers.py"
    if not p.is_file():
        return LoadResult(p, None, f"{p}: no such file (create a workspace with `minivgg exercise new DIR`)")
    try:
        spec = importlib.util.spec_from_file_location(f"_minivgg_student_{next(_counter)}", p)
        module = importlib.util.module_from_spec(spec)
        run_with_time_limit(lambda: spec.loader.exec_module(module), timeout)
    except StudentTimeout as exc:
        return LoadResult(p, None, f"{p}{_where(exc, p)}: importing it {exc}: does its top-level code loop forever? "
                                   "(keep the work inside the functions; a module should only define them)")
    except SyntaxError as exc:
        return LoadResult(p, None, f"{p}:{exc.lineno}: SyntaxError: {exc.msg} (fix it, then check again)")
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        return LoadResult(p, None, f"{p}{_where(exc, p)}: importing it raised {type(exc).__name__}: {exc}")
    return LoadResult(p, module, None)


def _where(exc: BaseException, p: Path) -> str:
    """``":LINE"`` of the student's file where ``exc`` was raised (or was running), else ``""``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(p)]
    return f":{frames[-1].lineno}" if frames else ""
