"""Drawing the pictures with matplotlib (imported lazily; the 'plot' extra).

Every function takes the arrays the other modules compute and writes one figure
atomically to ``path`` (format from its suffix). Nothing here computes a gradient.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io.figures import new_figure, save_figure


def _figure(ncols: int, nrows: int = 1, size: float = 3.0) -> tuple[Any, Any]:
    return new_figure(ncols, nrows, (size, size), what="minivgg.visualize.plots")


def to_rgb(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W, C)`` (or ``(H, W)`` for one channel) min-max scaled to [0, 1] for display."""
    a = np.asarray(img, dtype=np.float64)
    a = (a - a.min()) / (np.ptp(a) or 1.0)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_pair(image: np.ndarray, heat: np.ndarray, path: str | os.PathLike, title: str,
              box: tuple | None = None, cmap: str = "hot") -> Path:
    """Image ``(C, H, W)`` beside a heatmap ``(h, w)`` (saliency, occlusion, ERF), optionally a box on the map."""
    fig, axes = _figure(2)
    axes[0, 0].imshow(to_rgb(image), cmap="gray")
    axes[0, 0].set_title("input")
    shown = axes[0, 1].imshow(heat, cmap=cmap, extent=(0, image.shape[-1], image.shape[-2], 0))
    fig.colorbar(shown, ax=axes[0, 1], fraction=0.046)
    if box is not None:
        from matplotlib.patches import Rectangle
        r0, r1, c0, c1 = box
        axes[0, 1].add_patch(Rectangle((c0, r0), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor="cyan", lw=1.5))
    axes[0, 1].set_title(title)
    for ax in axes.ravel():
        _off(ax)
    return save_figure(fig, path)


def plot_grid(tiles: np.ndarray, path: str | os.PathLike, title: str, cmap: str = "viridis") -> Path:
    """A grid of tiles ``(K, H, W)`` (feature maps) or ``(K, H, W, 3)`` (RGB filters)."""
    k = len(tiles)
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig, axes = _figure(cols, rows, size=1.2)
    for i, ax in enumerate(axes.ravel()):
        _off(ax)
        if i < k:
            ax.imshow(tiles[i], cmap=cmap, interpolation="nearest")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_class_model(image: np.ndarray, scores: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """The class-model image ``(C, H, W)`` beside its score history ``(steps + 1,)``."""
    fig, axes = _figure(2)
    axes[0, 0].imshow(to_rgb(image), cmap="gray")
    _off(axes[0, 0])
    axes[0, 0].set_title(title)
    axes[0, 1].plot(scores)
    axes[0, 1].set_xlabel("step")
    axes[0, 1].set_ylabel("class score S_c")
    return save_figure(fig, path)


def plot_row(panels: list, path: str | os.PathLike, size: float = 3.0) -> Path:
    """Panels side by side: ``panels`` is a list of ``(array, title, cmap)``; ``(C, H, W)`` arrays are shown
    as images (:func:`to_rgb`), ``(H, W)`` ones as heatmaps with a colour bar."""
    fig, axes = _figure(len(panels), size=size)
    for ax, (arr, title, cmap) in zip(axes.ravel(), panels):
        a = np.asarray(arr)
        if a.ndim == 3:
            ax.imshow(to_rgb(a), cmap="gray")
        else:
            fig.colorbar(ax.imshow(a, cmap=cmap), ax=ax, fraction=0.046)
        ax.set_title(title)
        _off(ax)
    return save_figure(fig, path)


def plot_images(images: list, titles: list, path: str | os.PathLike, title: str, size: float = 1.6) -> Path:
    """A grid of ``(C, h, w)`` images of any sizes (class models, receptive-field crops), each min-max scaled."""
    k = len(images)
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig, axes = _figure(cols, rows, size=size)
    for i, ax in enumerate(axes.ravel()):
        _off(ax)
        if i < k:
            ax.imshow(to_rgb(images[i]), cmap="gray", interpolation="nearest")
            ax.set_title(titles[i], fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
