"""matplotlib for the experiments' plots (imported lazily: the ``plot`` extra), written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...io.files import atomic_write


def figure(ncols: int, title: str, size: tuple[float, float] = (4.2, 3.4)) -> tuple[Any, list]:
    """A figure with ``ncols`` axes side by side; ImportError naming the extra without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the experiment plots need matplotlib: install the 'plot' extra "
                          "(pip install 'minivgg[plot]')") from exc
    fig = Figure(figsize=(size[0] * ncols, size[1]))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.suptitle(title, fontsize=10)
    return fig, list(axes)


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) atomically; ValueError for an unknown suffix."""
    fmt = Path(path).suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot write {os.fspath(path)!r}: expected a suffix among {sorted(supported)}")
    fig.tight_layout()
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=100))
