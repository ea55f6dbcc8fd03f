"""Writing a student workspace: ``layers.py``, ``README.md`` and ``walkthrough.ipynb``, never over existing files unless forced."""

from __future__ import annotations

import os
from pathlib import Path

from ..io.files import atomic_write
from .notebook import walkthrough_notebook
from .template import LAYERS_PY, README_MD

#: The files of a new workspace, in the order they are written.
FILE_NAMES = ("layers.py", "README.md", "walkthrough.ipynb")


def workspace_files() -> dict[str, str]:
    """File name -> text of a new workspace (built on call: the notebook is not made at import time)."""
    return dict(zip(FILE_NAMES, (LAYERS_PY, README_MD, walkthrough_notebook())))


def new_workspace(directory: str | os.PathLike, force: bool = False) -> list[Path]:
    """Create ``directory`` (if needed) and write the workspace files atomically; return their paths.

    Raises
    ------
    FileExistsError
        A workspace file already exists and ``force`` is False; nothing is written
        (the check covers every file before the first write, so no half workspace).
    NotADirectoryError
        ``directory`` exists and is not a directory.
    """
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise NotADirectoryError(f"exercise workspace {d}: exists and is not a directory")
    existing = [name for name in FILE_NAMES if (d / name).exists()]
    if existing and not force:
        raise FileExistsError(f"exercise workspace {d}: {', '.join(existing)} already exist(s); "
                              "pass force=True (--force) to overwrite your work")
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in workspace_files().items():
        data = text.encode("utf-8")
        written.append(atomic_write(d / name, lambda fh, data=data: fh.write(data)))
    return written
