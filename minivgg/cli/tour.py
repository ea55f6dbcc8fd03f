"""``minivgg tour``: the main job -- VGG-16 built, measured, checked, in about a minute.

Each step is a function taking the parsed arguments and a shared ``state``
dict; the tour is the list :data:`STEPS`, so it grows by appending a step.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

from .. import analysis
from ..analysis.selfcheck import format_results, run_all
from ..training import TrainResult
from ..training.tour import tour_training_run
from ..analysis.measure import measure_receptive_field
from ..analysis.verify import verify
from ..vgg import VGG
from ._common import section, seed, timed


def step_build(args, state) -> bool:
    section("1. VGG-16 (config D) at 224x224, float32")
    with timed() as t:
        model = VGG("vgg16", input_size=224, dtype=np.float32, seed=args.seed)
    state["model"] = model
    counted = sum(a.size for a in model.params.values())
    print(f"built {model!r} in {t[0]:.1f} s")
    print(f"parameters in the model's arrays: {counted:,} (torchvision's vgg16: 138,357,544)")
    return counted == 138_357_544


def step_table(args, state) -> bool:
    section("2. Layer table (analytic, from the config alone)")
    summary = analysis.summarize("vgg16", input_size=224, batch=1, dtype="float32")
    state["summary"] = summary
    print(analysis.format_table(summary))
    return summary.totals.params == sum(a.size for a in state["model"].params.values())


def step_forward(args, state) -> bool:
    section("3. One forward pass on a random image")
    model, summary = state["model"], state["summary"]
    x = np.random.default_rng(args.seed).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with timed() as first:
        logits = model.forward(x)
    with timed() as second:
        model.forward(x)
    gflop = summary.totals.flops / 1e9
    print(f"logits {logits.shape} {logits.dtype}; top class {int(logits.argmax())} (random weights, so meaningless)")
    print(f"first pass  {first[0]:.3f} s (includes loading the compiled kernels)")
    print(f"second pass {second[0]:.3f} s = {gflop / second[0]:.1f} GFLOP/s on {os.cpu_count()} cores "
          f"({gflop:.1f} GFLOP per image)")
    return bool(np.all(np.isfinite(logits)))


def step_lecture(args, state) -> bool:
    section("4. The lecture's claims, computed")
    summary = state["summary"]
    print(analysis.format_stack_vs_large_kernel(analysis.stack_vs_large_kernel(256, 3)))
    print()
    print(analysis.format_memory_vs_params(summary))
    print()
    print(analysis.format_compare(analysis.compare(("vgg16", "vgg19"))))
    print()
    print(analysis.format_lecture_memory_check())
    return True


def step_verify(args, state) -> bool:
    section("5. Analytic vs measured on the real VGG-16 (params, shapes, memory, receptive fields)")
    report = verify(state["model"], rf_layers="pools", seed=args.seed)
    print(report)
    stack = VGG([8, 8, 8, "M"], num_classes=2, input_size=32, fc_width=4, seed=args.seed)
    field = measure_receptive_field(stack, "conv1_3")
    print(f"\nthree stacked 3x3 convs, measured by backprop: the centre unit of conv1_3 sees "
          f"{field[0]}x{field[1]} input pixels (analytic: 7x7)")
    return report.ok and tuple(field) == (7, 7)


def step_gradcheck(args, state) -> bool:
    section("6. Gradient check of every op (float64, centered differences)")
    results = run_all(args.seed)
    print(format_results(results))
    return all(r.report.passed for r in results)


def step_train(args, state) -> bool:
    section("7. A short training run on the embedded shapes data (about 20 s)")
    state.pop("model", None)  # free VGG-16's 553 MB before training
    result = tour_training_run(seed=args.seed, seconds_budget=20.0)
    print(format_tour_result(result))
    h = result.history
    return bool(h) and h[-1]["train_loss"] < h[0]["train_loss"]


STEPS = [step_build, step_table, step_forward, step_lecture, step_verify, step_gradcheck, step_train]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tour", help="the main job: VGG-16 built, measured and gradient-checked",
                       description="Build VGG-16 at 224x224, print its layer table, time a forward pass, "
                                   "compute the lecture's claims and prove them on the real model, "
                                   "gradient-check every op in float64, and train a tiny VGG for ~20 s. "
                                   "About a minute on 2 cores.")
    p.add_argument("--seed", type=seed, default=0, help="seed for weights and inputs (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state: dict = {}
    failed = []
    with timed() as total:
        for step in STEPS:
            if not step(args, state):
                failed.append(step.__name__)
    section("Done")
    print(f"tour finished in {total[0]:.0f} s: "
          + ("every check passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return 1 if failed else 0


def format_tour_result(result: TrainResult) -> str:
    """The tour's report: one line per epoch, then what the run showed."""
    h = result.history
    lines = [f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'seconds':>8}"]
    for e in h:
        lines.append(f"{e['epoch']:>5} {e['train_loss']:>10.4f} {e['train_acc']:>9.3f} "
                     f"{e['val_loss']:>9.4f} {e['val_acc']:>8.3f} {e['seconds']:>8.1f}")
    if h:
        lines.append(f"loss {h[0]['train_loss']:.3f} -> {h[-1]['train_loss']:.3f} (chance: ln 10 = {math.log(10):.3f}); "
                     f"validation accuracy {h[-1]['val_acc']:.1%} (chance 10%) after {len(h)} epoch{'' if len(h) == 1 else 's'}, "
                     f"{h[-1]['images_per_s']:,.0f} img/s")
    if result.stopped_early:
        lines.append(f"stopped early: {result.stopped_early}")
    lines.append("the full recipe: `minivgg train --data shapes --out DIR` (a few minutes, >= 95% val accuracy)")
    return "\n".join(lines)
