"""The picture of cs231n lecture 9's VGG slides: memory per layer next to parameters per layer.

Needs matplotlib (the ``plot`` extra: ``pip install 'minivgg[plot]'``); it is
imported inside :func:`plot_summary`, so ``import minivgg`` never needs it.
"""

from __future__ import annotations

import os

from .counts import MIB, Summary
from ..io.files import atomic_write

#: Layer types drawn: the lecture's lines (conv, pool, fc). A ReLU's output has
#: its conv's size, and flatten/dropout are views or copies of their input.
PLOTTED_TYPES = ("conv", "pool", "dense")


def plot_summary(summary: Summary, path: str | os.PathLike) -> str:
    """Draw two bar charts -- activation memory per layer (MiB) and parameters per layer (millions).

    Parameters
    ----------
    summary : minivgg.analysis.counts.Summary
        From :func:`minivgg.analysis.counts.summarize`.
    path : str or path-like
        Output file; the format comes from its suffix (``.png``, ``.pdf``,
        ``.svg``, ...). Written atomically (temporary file in the same
        directory, then renamed).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ImportError
        matplotlib is not installed (names the ``plot`` extra).
    ValueError
        The suffix is not a format matplotlib can write.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("minivgg.analysis.plots needs matplotlib: install the 'plot' extra "
                          "(pip install 'minivgg[plot]')") from exc

    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    # Figure + Agg canvas directly: no pyplot, so no global backend or figure state is touched
    fig = Figure(figsize=(12, 7), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    if fmt not in canvas.get_supported_filetypes():
        raise ValueError(f"plot_summary: cannot write {path!r}; expected a suffix among "
                         f"{sorted(canvas.get_supported_filetypes())}")

    layers = [s for s in summary.layers if s.type in PLOTTED_TYPES]
    names = [s.name for s in layers]
    xs = range(len(layers))
    colours = {"conv": "tab:blue", "pool": "tab:orange", "dense": "tab:green"}
    per = "batch" if summary.batch > 1 else "image"
    ax_mem, ax_par = fig.subplots(2, 1, sharex=True)
    ax_mem.bar(xs, [s.activation_bytes / MIB for s in layers], color=[colours[s.type] for s in layers])
    ax_mem.set_ylabel(f"activations per {per} (MiB)")
    ax_mem.set_title(f"{summary.arch}, {summary.input_size}x{summary.input_size}, batch {summary.batch}, "
                     f"{summary.dtype}: memory sits in the early convs ...")
    ax_par.bar(xs, [s.params / 1e6 for s in layers], color=[colours[s.type] for s in layers])
    ax_par.set_ylabel("parameters (millions)")
    top = max(layers, key=lambda s: s.params)
    ax_par.set_title(f"... parameters in the fully connected layers ({top.name}: "
                     f"{100 * top.params / summary.totals.params:.0f}% of {summary.totals.params:,})")
    ax_par.set_xticks(list(xs), names, rotation=90)
    for ax in (ax_mem, ax_par):
        ax.grid(axis="y", alpha=0.3)

    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
    return path
