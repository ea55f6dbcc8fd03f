"""The workspace's ``walkthrough.ipynb``: the checks one exercise at a time, with plots.

Written as plain nbformat-4.5 JSON (no dependency on ``nbformat`` to *write*
it; the tests validate it with ``nbformat`` and execute it with ``nbclient``).
The notebook imports the student's ``layers.py`` from the kernel's working
directory, which Jupyter sets to the notebook's own folder, and re-imports it
in every section, so "edit layers.py, re-run the section" works without a
kernel restart.
"""

from __future__ import annotations

import json

_SETUP = '''\
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt

from minivgg.exercises import NOT_IMPLEMENTED, PASS, as_table, check_exercise, check_module, load_student
from minivgg.exercises.explore import case_labels, coordinate_errors

WORKSPACE = Path.cwd()  # Jupyter runs the kernel in the notebook's folder: your workspace
if not (WORKSPACE / "layers.py").is_file():
    raise FileNotFoundError(f"no layers.py in {WORKSPACE}: open this notebook from your exercise workspace")


def check(name):
    """Re-import layers.py (so your latest edit counts), grade one exercise, print the verdict."""
    load = load_student(WORKSPACE)
    if load.module is None:
        print(as_table(load, []))
        return load, None
    result = check_exercise(load.module, name)
    print(as_table(load, [result]))
    return load, result


def plot_errors(load, result, name):
    """The gradient check on every coordinate of the exercise's largest case (red line: the tolerance)."""
    if result is None or result.status == NOT_IMPLEMENTED:
        print("nothing to plot yet: implement the functions first")
        return
    try:
        rows = coordinate_errors(load.module, name)
    except Exception as exc:  # your code raised: the verdict above already says where
        print(f"cannot plot the gradient check: {type(exc).__name__}: {exc}")
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3), squeeze=False)
    for ax, r in zip(axes[0], rows):
        ax.semilogy(np.maximum(r.rel_error.ravel(), 1e-17), ".", ms=4)
        ax.axhline(1e-7, color="r", lw=1)
        ax.set_ylim(1e-17, 10)
        ax.set_title(f"d{r.name}, shape {r.rel_error.shape}", fontsize=9)
        ax.set_xlabel("coordinate (flattened, C order)")
    axes[0][0].set_ylabel("relative error")
    fig.suptitle(f"{name}: {case_labels(name)[-1]}", fontsize=10)
    fig.tight_layout()
    plt.show()
'''

_SECTIONS = [
    ("affine", "1. Affine (fully-connected) layer: `affine_forward`, `affine_backward`",
     "`out = x.reshape(N, D) @ w + b` for `x` of shape `(N, d_1, ..., d_k)`, `w` `(D, M)`, `b` `(M,)`.\n\n"
     "Backward with `X = x.reshape(N, D)`: `dx = (dout @ w.T).reshape(x.shape)`, `dw = X.T @ dout`, "
     "`db = dout.sum(axis=0)` (the bias is added to every row, so its gradient sums over the batch).\n\n"
     "Typical bugs the checker names: a transposed `dw`, a missing batch sum in `db`, a factor 2."),
    ("relu", "2. ReLU: `relu_forward`, `relu_backward`",
     "`out = max(0, x)`; `dx = dout * (x > 0)`. The derivative at exactly 0 is taken as 0. The check uses "
     "inputs with `|x| >= 0.1`, far from the kink, so a wrong mask (`x < 0`) or a flipped sign shows "
     "on exactly the coordinates it affects: look at the plot."),
    ("conv", "3. Convolution: `conv_forward_naive`, `conv_backward_naive`",
     "`conv_param = {\"stride\": s, \"pad\": p}`; pad with `p` zeros on every side, then "
     "`out[n, f, i, j] = b[f] + sum_{c,k,l} xpad[n, c, i*s + k, j*s + l] * w[f, c, k, l]`, with "
     "`H' = 1 + (H + 2p - HH) // s`.\n\n"
     "Backward: `db` sums `dout` over `n, i, j`; `dw` correlates `dout` with the padded input; `dxpad` "
     "receives `dout * w` at the same windows (`+=`, windows overlap), then the padding is cut off. "
     "The cases include a non-square image, stride 2 and no padding: a backward that forgets the stride "
     "passes stride 1 and fails stride 2."),
    ("max_pool", "4. Max pooling: `max_pool_forward_naive`, `max_pool_backward_naive`",
     "`pool_param = {\"pool_height\": PH, \"pool_width\": PW, \"stride\": s}`; each output is the max of "
     "its window. The backward sends each `dout` to the position of its window's maximum only (spreading "
     "it over the window is *average* pooling's backward). Inputs have no ties, and one case has "
     "overlapping 3x3 windows with stride 2, where gradients must add up."),
    ("softmax", "5. Softmax loss: `softmax_loss`",
     "`p = exp(x - max x) / sum exp(x - max x)` per row (subtracting the max keeps `exp` finite: one case "
     "adds 1000 to every score), `loss = -mean_n log p[n, y_n]`, `dx = (p - onehot(y)) / N`. "
     "A missing `1/N` shows as a constant factor on every coordinate."),
]

_TRAIN = '''\
from minivgg.exercises.train import train_student
from minivgg.training.data.shapes import load_shapes

STEPS = 300  # a taste (seconds); `minivgg exercise check . --train` runs the full budget (>= 90% validation accuracy)
load = load_student(WORKSPACE)
results = check_module(load.module) if load.module is not None else []
if results and all(r.status == PASS for r in results):
    split = load_shapes(STEPS * 32, 500, seed=0, size=16)
    res = train_student(load.module, split.x_train, split.y_train, split.x_val, split.y_val,
                        steps=STEPS, keep_params=True)
    print(f"{res['steps']} steps in {res['seconds']:.1f} s: validation accuracy "
          f"{100 * res['val_accuracy']:.1f}% on {res['n_val']} images (chance: 10%)")
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3), gridspec_kw={"width_ratios": [1, 2]})
    ax0.plot(res["losses"])
    ax0.set_xlabel("step")
    ax0.set_ylabel("training loss")
    w = res["params"]["conv1.w"]  # (8, 3, 3, 3): the first layer's eight 3x3 RGB filters
    w = (w - w.min()) / (w.max() - w.min())
    ax1.imshow(np.concatenate([np.pad(f.transpose(1, 2, 0), ((0, 0), (0, 1), (0, 0)), constant_values=1)
                               for f in w], axis=1))
    ax1.set_title("conv1 filters learned with your layers")
    ax1.axis("off")
    plt.show()
else:
    print("training needs every exercise to PASS first:",
          ", ".join(f"{r.name} {r.status}" for r in results) or "layers.py does not import")
'''


def _cell(kind: str, source: str, n: int) -> dict:
    cell = {"cell_type": kind, "id": f"cell-{n:02d}", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def walkthrough_notebook() -> str:
    """The text of ``walkthrough.ipynb`` (nbformat 4.5 JSON, no outputs)."""
    cells = [("markdown", "# Walkthrough: your `layers.py`, checked step by step\n\n"
                          "Each section says what to implement, grades it like `minivgg exercise check . --only NAME` "
                          "(forward against minivgg's ops, float64 gradient check, odd shapes) and plots the "
                          "gradient check on every coordinate. Every section re-imports `layers.py`: edit the "
                          "file, then re-run the section. Open this notebook from your workspace folder."),
             ("code", _SETUP)]
    for name, title, text in _SECTIONS:
        cells += [("markdown", f"## {title}\n\n{text}"),
                  ("code", f'load, result = check("{name}")'),
                  ("code", f'plot_errors(load, result, "{name}")')]
    cells += [("markdown", "## 6. The payoff: your layers train a VGG\n\n"
                           "A tiny VGG (two 3x3 conv-ReLU-pool stages, two affine layers) built from *your* "
                           "functions, trained with Adam on minivgg's shapes data, then its first-layer filters."),
              ("code", _TRAIN)]
    nb = {"cells": [_cell(kind, src, i) for i, (kind, src) in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"
