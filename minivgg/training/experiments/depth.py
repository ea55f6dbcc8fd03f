"""Does deeper help, and at what cost: configs A, B, D, E with one recipe (paper Table 3).

Simonyan & Zisserman §4.1, Table 3 (ImageNet validation, single-scale test,
fixed training scale S = 256, test scale Q = 256), top-1/top-5 error:
A (11 weight layers) 29.6/10.4, B (13) 28.7/9.9, D (16) 27.0/8.8,
E (19) 27.3/9.0 -- "the classification error decreases with the increased
ConvNet depth" up to D; at this fixed scale E is no better than D (with scale
jittering E edges ahead: 25.5 vs 25.6 top-1).

Here ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19`` are trained with the shared
recipe (:mod:`.recipe`) from scratch (He initialisation; the paper instead
initialised B-E's first four convs and the FC layers from a trained A), once
per training seed, on the same data. Parameters and MACs come from the
configs' layer specs, the kept memory is measured on the built models.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

from . import TITLES
from .base import ExperimentResult, Progress
from .recipe import arch_config, check_seeds, forward_macs, load_data, pick, run_stats, train_archs

TITLE = TITLES["depth"]
ARCHS = ("vgg11", "vgg13", "vgg16", "vgg19")
LABELS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
#: ImageNet top-1 / top-5 validation error (%), Table 3, S = Q = 256
PAPER_ERRORS = {"vgg11": (29.6, 10.4), "vgg13": (28.7, 9.9), "vgg16": (27.0, 8.8), "vgg19": (27.3, 9.0)}
PAPER = ("ImageNet, single-scale test, train scale S=256, test scale Q=256: top-1/top-5 error "
         + ", ".join(f"{LABELS[a]} {t}/{f}%" for a, (t, f) in PAPER_ERRORS.items())
         + " -- deeper helps up to D; E is no better at a fixed scale")
COLUMNS = ["config", "arch", "weight layers", "runs", "val acc mean", "sd", "params", "MACs", "s / epoch",
           "ms / step", "kept KiB / image", "paper top-1 err %"]


def run(*, quick: bool = False, seed: int = 0, progress: Progress | None = None, seeds: Sequence[int] | None = None,
        archs: Sequence[str] = ARCHS, n_train: int | None = None, n_val: int | None = None,
        epochs: int | None = None, width: float | None = None, fc_width: int | None = None) -> ExperimentResult:
    """Train each of ``archs`` once per training seed (default: the one seed ``seed``; pass ``seeds`` for a spread)."""
    start = time.perf_counter()
    archs = list(archs)
    if not archs or len(set(archs)) != len(archs) or any(a not in LABELS for a in archs):
        raise ValueError(f"depth: archs must be distinct names among {list(ARCHS)}, got {archs!r}")
    recipe = pick(quick, dict(n_train=n_train, n_val=n_val, epochs=epochs, width=width, fc_width=fc_width))
    seeds = check_seeds(seeds if seeds is not None else [seed], "depth")
    data = load_data(recipe, data_seed=seed)
    runs, kept, step = train_archs(archs, data, recipe, seeds, progress,
                                   lambda a, s: f"{LABELS[a]} ({a}) seed {s}")
    rows, summary = [], {}
    for arch in archs:
        cfg = arch_config(arch, data, recipe)
        specs = cfg.specs()
        st = run_stats(runs[arch])
        accs, m, sd, secs = st["accs"], st["mean"], st["sd"], st["seconds_per_epoch"]
        layers = sum(1 for sp in specs if sp.kind in ("conv", "dense"))
        summary[arch] = {"mean": m, "sd": sd, "n": len(accs), "params": cfg.num_params, "macs": forward_macs(cfg),
                         "seconds_per_epoch": secs, "step_seconds": step[arch], "kept_bytes_per_image": kept[arch],
                         "weight_layers": layers}
        rows.append([LABELS[arch], arch, layers, len(accs), m, sd, cfg.num_params, summary[arch]["macs"], secs,
                     1000 * step[arch], kept[arch] / 1024, PAPER_ERRORS[arch][0]])
    d16 = arch_config("vgg16", data, recipe).specs()
    fc_share = sum(sp.num_params for sp in d16 if sp.kind == "dense") / sum(sp.num_params for sp in d16)
    notes = [f"the shapes (32x32, 10 classes, {recipe.n_train:,} training images, {recipe.epochs} epochs, conv "
             f"widths x{recipe.width:g}, fc {recipe.fc_width}), not ImageNet: at 32x32 pool5 is 1x1, so fc6-fc8 "
             f"hold only {fc_share:.0%} of D's parameters here (89% at ImageNet scale)",
             "every net trains from scratch with the same epochs and learning rate; deeper plain nets (no batch "
             "normalisation) start slower, so a short budget favours shallow ones -- the paper trained for 74 "
             "epochs and initialised the deeper nets from A",
             "times are wall clock on a shared 2-core machine (noisy); MACs and parameters are exact counts"]
    return ExperimentResult("depth", TITLE, COLUMNS, rows, PAPER, _verdict(summary, archs), quick,
                            time.perf_counter() - start, notes,
                            {"recipe": recipe.to_json(), "seeds": seeds, "runs": runs, "summary": summary})


def _verdict(summary: dict, archs: list[str]) -> str:
    best = max(archs, key=lambda a: summary[a]["mean"])
    base, deep = archs[0], archs[-1]
    if len(archs) == 1:
        return f"only {LABELS[base]} was trained ({summary[base]['mean']:.1%}); nothing to compare."
    b, d = summary[base], summary[deep]
    diff = d["mean"] - b["mean"]
    se = math.sqrt(b["sd"] ** 2 / b["n"] + d["sd"] ** 2 / d["n"])
    if se == 0:
        how = "(one seed each: no spread to judge it by)"
    elif abs(diff) <= 2 * se:
        how = f"(within two standard errors, {se * 100:.2f} points: no clear difference)"
    else:
        how = f"(beyond two standard errors, {se * 100:.2f} points)"
    accs = [summary[a]["mean"] for a in archs]
    order = ("accuracy rises with every step in depth" if all(x < y for x, y in zip(accs, accs[1:]))
             else "accuracy does not rise steadily with depth")
    return (f"best here is {LABELS[best]} ({best}, {summary[best]['mean']:.1%}); {LABELS[deep]} vs "
            f"{LABELS[base]}: {diff * 100:+.2f} points {how}, for {d['params'] / b['params']:.2f}x the parameters, "
            f"{d['macs'] / b['macs']:.2f}x the MACs and {d['step_seconds'] / b['step_seconds']:.2f}x the "
            f"time per training step; {order}.")


def plot(result: ExperimentResult, path: str | Path) -> Path:
    """Validation accuracy against MACs (one point per seed, the mean joined), and time per training step."""
    from .plotting import figure, save

    fig, (ax1, ax2) = figure(2, result.title)
    summ, runs = result.data["summary"], result.data["runs"]
    archs = list(summ)
    macs = [summ[a]["macs"] / 1e6 for a in archs]
    ax1.plot(macs, [summ[a]["mean"] for a in archs], "-o", color="C0")
    for a, x in zip(archs, macs):
        ax1.plot([x] * len(runs[a]), [r["val_acc"] for r in runs[a]], "k.", ms=6)
        ax1.annotate(LABELS[a], (x, summ[a]["mean"]), textcoords="offset points", xytext=(4, 4))
    ax1.set_xlabel("forward MMACs per image")
    ax1.set_ylabel("validation accuracy")
    ax1.set_ylim(0, 1)
    ax2.bar([LABELS[a] for a in archs], [1000 * summ[a]["step_seconds"] for a in archs], color="C1")
    ax2.set_ylabel("ms per training step (min of repeats)")
    return save(fig, path)
