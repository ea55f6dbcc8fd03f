"""LRN did not help: config A against A-LRN, same recipe, several seeds (paper Table 3, §4.1).

Simonyan & Zisserman §4.1: "the local response normalisation (A-LRN network)
does not improve on the model A without any normalisation layers" -- ImageNet,
single-scale test, top-1/top-5 error 29.6/10.4% (A) vs 29.7/10.5% (A-LRN).
So they dropped it from B-E.

Here both configs (``vgg11`` and ``vgg11-lrn``: A with AlexNet's LRN after
conv1_1's ReLU) are trained with the shared recipe (:mod:`.recipe`) once per
training seed on the same data; the table gives the mean and spread of the
final validation accuracy, the time per epoch and the memory a training forward
keeps for backward (LRN has no parameters but keeps its denominator), and
one training step's forward + backward timed on its own (minimum of
repeats: fairer than epoch times on a busy machine). The verdict compares the mean difference with its standard
error, ``sqrt(sd_A^2 / n_A + sd_LRN^2 / n_LRN)``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...layers import LRN
from . import TITLES
from .base import ExperimentResult, Progress
from .recipe import arch_config, check_seeds, load_data, pick, run_stats, train_archs

TITLE = TITLES["lrn"]
ARCHS = ("vgg11", "vgg11-lrn")
LABELS = {"vgg11": "A", "vgg11-lrn": "A-LRN"}
PAPER = ("ImageNet, single-scale test (train and test scale 256): top-1/top-5 error A 29.6/10.4%, "
         "A-LRN 29.7/10.5% -- no gain from LRN, so B-E go without it")
COLUMNS = ["config", "arch", "runs", "val acc mean", "sd", "min", "max", "s / epoch", "ms / step", "kept KiB / image",
           "params"]


def _lrn_denominator(model, x: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of LRN's divisor ``s ** beta`` over a training forward of ``x``."""
    layer = next(layer for layer in model.layers if isinstance(layer, LRN))
    try:
        model.forward(x, train=True)
        d = np.asarray(layer._cache.scale, dtype=np.float64) ** layer.beta  # (N, C, H, W)
    finally:
        model.layers.clear_caches()
    return float(d.mean()), float(d.std())


def run(*, quick: bool = False, seed: int = 0, progress: Progress | None = None, seeds: Sequence[int] | None = None,
        n_train: int | None = None, n_val: int | None = None, epochs: int | None = None,
        width: float | None = None, fc_width: int | None = None) -> ExperimentResult:
    """Train A and A-LRN once per training seed; ``seeds`` default ``seed, seed+1[, seed+2]`` (quick: two)."""
    start = time.perf_counter()
    recipe = pick(quick, dict(n_train=n_train, n_val=n_val, epochs=epochs, width=width, fc_width=fc_width))
    seeds = check_seeds(seeds if seeds is not None else range(seed, seed + (2 if quick else 3)), "lrn")
    data = load_data(recipe, data_seed=seed)
    denominators = []

    def on_trained(arch, t, probe):
        if arch == "vgg11-lrn":
            denominators.append(_lrn_denominator(t.model, probe))

    runs, kept, step = train_archs(ARCHS, data, recipe, seeds, progress, lambda a, s: f"{LABELS[a]} seed {s}",
                                   on_trained)
    rows, summary = [], {}
    for arch in ARCHS:
        st = run_stats(runs[arch])
        accs, m, sd, secs = st["accs"], st["mean"], st["sd"], st["seconds_per_epoch"]
        cfg = arch_config(arch, data, recipe)
        summary[arch] = {"mean": m, "sd": sd, "seconds_per_epoch": secs, "step_seconds": step[arch],
                         "kept_bytes_per_image": kept[arch], "params": cfg.num_params, "n": len(accs)}
        rows.append([LABELS[arch], arch, len(accs), m, sd, min(accs), max(accs), secs, 1000 * step[arch],
                     kept[arch] / 1024, cfg.num_params])
    a, b = summary["vgg11"], summary["vgg11-lrn"]
    diff = b["mean"] - a["mean"]
    se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"])
    verdict = _verdict(diff, se, len(seeds), b["step_seconds"] / a["step_seconds"],
                       b["kept_bytes_per_image"] / a["kept_bytes_per_image"], a["params"] == b["params"])
    d_mean = float(np.mean([d[0] for d in denominators]))
    d_sd = float(np.mean([d[1] for d in denominators]))
    notes = [f"the shapes (32x32, 10 classes, {recipe.n_train:,} training images, conv widths x{recipe.width:g}), "
             "not ImageNet; accuracy is on the validation split after the last epoch; "
             "times are wall clock on a shared machine (noisy)",
             f"with the paper's constants (k 2, alpha 1e-4, beta 0.75) LRN's divisor (k + alpha * sum a^2)^beta "
             f"averaged {d_mean:.4f} (sd {d_sd:.2g}) on validation images in the trained A-LRN nets; "
             f"k^beta alone is {2 ** 0.75:.4f}, so here LRN is close to a constant rescaling"]
    return ExperimentResult("lrn", TITLE, COLUMNS, rows, PAPER, verdict, quick, time.perf_counter() - start, notes,
                            {"recipe": recipe.to_json(), "seeds": seeds, "runs": runs, "summary": summary,
                             "difference": diff, "standard_error": se,
                             "lrn_divisor": {"mean": d_mean, "sd": d_sd}})


def _verdict(diff: float, se: float, n: int, time_ratio: float, mem_ratio: float, same_params: bool) -> str:
    pts = f"{diff * 100:+.2f} points"
    if n < 2 or se == 0:
        judged = "one seed per config gives no spread to judge it against"
    elif abs(diff) <= 2 * se:
        judged = f"within two standard errors ({se * 100:.2f} points): no gain, as in the paper"
    elif diff > 0:
        judged = f"more than two standard errors ({se * 100:.2f} points): LRN helped here, unlike on ImageNet"
    else:
        judged = f"more than two standard errors ({se * 100:.2f} points): LRN hurt here"
    params = "the same parameter count" if same_params else "DIFFERENT parameter counts"
    return (f"A-LRN's mean validation accuracy is {pts} vs A's over {n} seed{'s' if n != 1 else ''}, {judged}; "
            f"a training step costs {time_ratio:.2f}x the time (min of repeats) and {mem_ratio:.2f}x the memory kept for backward, "
            f"with {params}.")


def plot(result: ExperimentResult, path: str | Path) -> Path:
    """Validation accuracy per seed (dots) and mean +- sd (bars); time per epoch; kept memory."""
    from .plotting import figure, save

    fig, (ax1, ax2, ax3) = figure(3, result.title)
    runs: dict[str, Any] = result.data["runs"]
    summ = result.data["summary"]
    labels = [LABELS[a] for a in ARCHS]
    for i, arch in enumerate(ARCHS):
        ax1.bar(i, summ[arch]["mean"], yerr=summ[arch]["sd"], color="C0" if i == 0 else "C1", alpha=0.6, capsize=6)
        ax1.plot([i] * len(runs[arch]), [r["val_acc"] for r in runs[arch]], "k.", ms=8)
    ax1.set_xticks(range(len(ARCHS)), labels)
    ax1.set_ylabel("validation accuracy")
    ax1.set_ylim(0, 1)
    ax2.bar(labels, [1000 * summ[a]["step_seconds"] for a in ARCHS], color=["C0", "C1"])
    ax2.set_ylabel("ms per training step (min of repeats)")
    ax3.bar(labels, [summ[a]["kept_bytes_per_image"] / 1024 for a in ARCHS], color=["C0", "C1"])
    ax3.set_ylabel("KiB kept for backward per image")
    return save(fig, path)
