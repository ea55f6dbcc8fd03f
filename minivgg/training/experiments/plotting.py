"""matplotlib for the experiments' plots (imported lazily: the ``plot`` extra), written atomically."""

from __future__ import annotations

from typing import Any

from ...io.figures import new_figure, save_figure


def figure(ncols: int, title: str, size: tuple[float, float] = (4.2, 3.4)) -> tuple[Any, list]:
    """A figure with ``ncols`` axes side by side; ImportError naming the extra without matplotlib."""
    fig, axes = new_figure(ncols, 1, size, what="plotting an experiment")
    fig.suptitle(title, fontsize=10)
    return fig, list(axes[0])


#: Write a figure atomically, format from the suffix (ValueError for an unknown one).
save = save_figure
