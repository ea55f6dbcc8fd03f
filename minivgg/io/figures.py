"""Figures: a headless matplotlib figure, and writing it atomically (matplotlib is the ``plot`` extra).

Every picture minivgg draws (experiments, visualize) goes through these two
functions, so a missing matplotlib always gives the same ImportError naming
the extra, and a plot is never left half-written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .files import atomic_write

__all__ = ["new_figure", "save_figure"]


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (3.0, 3.0),
               *, what: str = "plotting") -> tuple[Any, Any]:
    """``(figure, axes)``: an Agg figure of ``nrows x ncols`` axes (a 2-D array), each ``size`` inches.

    No pyplot and no display: safe in tests, servers and threads. ImportError
    naming the ``plot`` extra (and ``what`` needed it) without matplotlib.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"{what} needs matplotlib: install the 'plot' extra (pip install 'minivgg[plot]')") from exc
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Lay out ``fig`` and write it to ``path`` atomically, format from the suffix; ValueError for an unknown one."""
    fmt = Path(path).suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot write {os.fspath(path)!r}: expected a suffix among {sorted(supported)}")
    fig.tight_layout()
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi))
