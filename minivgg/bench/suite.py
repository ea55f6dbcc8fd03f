"""The whole benchmark: machine yardsticks, then each comparison in fresh processes, then minivgg-only detail.

:func:`run` measures, for each thread count:

1. the yardsticks, in this process: the BLAS kernel in use (threadpoolctl),
   the sgemm rate (:func:`~minivgg.bench.machine.sgemm_rate`) and the memory
   bandwidth (:func:`~minivgg.bench.machine.memory_bandwidth`), and from them
   the physical floors of the model (:func:`~minivgg.bench.roofline.model_floors`);
2. ``"model"``: VGG forward at ``batch`` and forward+backward at
   ``train_batch``, minivgg against PyTorch, one fresh process per library per
   round (:func:`~minivgg.bench.isolated.compare`);
3. ``"small"``: a small network's training step (forward, backward, optimiser)
   and a whole training epoch in images per second, likewise -- by default the
   network ``minivgg train`` trains (the shapes recipe), given by the caller;
4. ``"layers"``: per-layer forward times of both libraries, in fresh processes,
   each set against its roofline floor (compute- or memory-bound);
5. ``"race"`` and ``"accuracy"``: minivgg's conv algorithms against each other
   on every layer shape, and their fp32 error -- in this process, since only
   minivgg runs.

The sgemm rate is measured again at the end; a drift over 20% is flagged,
because it means the machine was busy. Nothing here prints; the result is a
JSON-able dict for :func:`minivgg.bench.report.format_report`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..configs import ARCHS, VGGConfig
from ..kernels import _parallel as threads
from . import isolated
from .conv_algos import conv_accuracy, conv_race
from .machine import machine_info, memory_bandwidth, sgemm_rate
from .roofline import model_floors, roofline
from .torch_twin import have_torch

#: What :func:`run` can measure, in the order it measures them.
PARTS = ("model", "small", "layers", "race", "accuracy")


def _check_count(label: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{label} must be an int >= {low}, got {value!r}")


def run(arch: str = "vgg16", *, worker: Sequence[str] = (), thread_counts: Sequence[int] | None = None,
        batch: int = 1, train_batch: int = 2, small: Mapping[str, Any] | None = None,
        parts: Sequence[str] = PARTS, use_torch: bool = True, repeats: int = 5, warmup: int = 2,
        min_rounds: int = 3, max_rounds: int = 7, target_spread: float = 0.10, algo: str = "auto",
        progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run the benchmark; return a JSON-able dict (see the module docstring).

    Parameters
    ----------
    arch : a key of :data:`minivgg.configs.ARCHS`
    worker : command that runs one request in a fresh process (``minivgg bench``
        passes :data:`minivgg.cli._bench_worker.WORKER`); needed for the
        ``model``, ``small`` and ``layers`` parts
    thread_counts : e.g. ``(1, 2)``; default all cores
    batch, train_batch : images per inference forward / per forward+backward
    small : ``{"label", "config": VGGConfig dict, "batch", "optimizer", "epoch_images"}``
        for the ``small`` part (``None``: the part is skipped)
    use_torch : compare with PyTorch when installed (otherwise minivgg alone)
    repeats, warmup : timed and discarded runs inside each process
    min_rounds, max_rounds, target_spread : see :func:`minivgg.bench.isolated.compare`
    algo : minivgg's conv algorithm in every timed process (``"auto"``, ``"tune"``, ...)
    progress : ``progress(step, done, total)``

    Raises
    ------
    ValueError
        Unknown architecture or part, a count < 1, a thread count outside 1..cores.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown model {arch!r}; expected one of {', '.join(ARCHS)}")
    for label, value in (("batch", batch), ("train_batch", train_batch), ("repeats", repeats),
                         ("min_rounds", min_rounds), ("max_rounds", max_rounds)):
        _check_count(label, value)
    _check_count("warmup", warmup, 0)
    if min_rounds > max_rounds:
        raise ValueError(f"min_rounds ({min_rounds}) must be <= max_rounds ({max_rounds})")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ValueError(f"unknown benchmark parts {unknown or '(none given)'}; expected some of {', '.join(PARTS)}")
    cores = threads.available_cores()
    counts = list(thread_counts) if thread_counts else [cores]
    for n in counts:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
            raise ValueError(f"thread count must be between 1 and {cores} (the cores available), got {n!r}")
    if {"model", "small", "layers"} & set(parts) and not worker:
        raise ValueError("the model, small and layers parts run in fresh processes: pass worker=[...]")
    if "small" in parts and small is None:
        raise ValueError("the small part needs small={'config': ..., 'batch': ..., ...}")
    libs = ("minivgg", "torch") if use_torch and have_torch() else ("minivgg",)
    config = VGGConfig.from_arch(arch)

    per_count = [p for p in ("model", "small", "layers", "race") if p in parts]
    steps_total = 2 + len(counts) * (1 + len(per_count)) + ("accuracy" in parts)
    done = [0]

    def step(name: str) -> None:
        if progress is not None:
            progress(name, done[0], steps_total)
        done[0] += 1

    def cmp(request: dict) -> dict:
        return isolated.compare({"repeats": repeats, "warmup": warmup, "algo": algo, **request}, worker, libs=libs,
                                min_rounds=min_rounds, max_rounds=max_rounds, target_spread=target_spread)

    result: dict[str, Any] = {"arch": arch, "libs": list(libs), "algo": algo, "machine": machine_info(max(counts))}
    step("bandwidth")
    result["bandwidth"] = memory_bandwidth()
    runs = []
    for n in counts:
        rec: dict[str, Any] = {"threads": n}
        with threads.limit_threads(n):
            step(f"sgemm, {n} threads")
            rec["sgemm"] = sgemm_rate(repeats=repeats, warmup=1)
            rec["blas"] = [{k: d.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
                           for d in threads.blas_info()]
        peak, bw = rec["sgemm"]["gflops"], result["bandwidth"]["read_gbs"]
        rec["floors"] = {"forward": model_floors(config.specs(), batch, peak, bw),
                         "batch": batch}
        if "model" in parts:
            step(f"model, {n} threads")
            base = {"config": config.to_dict(), "threads": n}
            rec["forward"] = cmp({**base, "workload": "forward", "batch": batch})
            rec["train"] = cmp({**base, "workload": "train_step", "batch": train_batch})
        if "small" in parts:
            step(f"small network, {n} threads")
            base = {"config": dict(small["config"]), "threads": n, "batch": int(small.get("batch", 32)),
                    "optimizer": small.get("optimizer"), "epoch_images": int(small.get("epoch_images", 1024))}
            rec["small_step"] = cmp({**base, "workload": "train_step"})
            rec["small_epoch"] = cmp({**base, "workload": "epoch", "repeats": 3, "warmup": 1})
            rec["small_label"] = small.get("label", "small network")
        if "layers" in parts:
            step(f"layers, {n} threads")
            lay = isolated.compare_layers({"config": config.to_dict(), "threads": n, "batch": batch,
                                           "repeats": repeats, "warmup": warmup, "algo": algo}, worker, libs=libs,
                                          rounds=min_rounds)
            measured = {r["name"]: r["minivgg_s"] for r in lay["layers"]}
            floors = {r["name"]: r for r in roofline(config.specs(), batch, peak, bw, measured)}
            for row in lay["layers"]:
                row.update({k: floors[row["name"]][k] for k in ("kind", "bound", "floor_s", "flops", "bytes")})
                for lib in libs:
                    row[f"{lib}_fraction"] = row["floor_s"] / row[f"{lib}_s"] if row[f"{lib}_s"] > 0 else None
            rec["layers"] = lay
        if "race" in parts:
            step(f"race, {n} threads")
            with threads.limit_threads(n):
                rec["race"] = conv_race(config.specs(), batch, repeats=repeats, warmup=1)
        with threads.limit_threads(n):
            rec["sgemm_end"] = sgemm_rate(repeats=repeats, warmup=1)  # drift: was the machine busy meanwhile?
        runs.append(rec)
    result["runs"] = runs
    if "accuracy" in parts:
        step("accuracy")
        result["accuracy"] = conv_accuracy()
    step("done")
    return result


def verdicts(result: dict) -> list[dict]:
    """Each speed target of issue 10 against what ``result`` measured: ``{"what", "ratio", "target", "met"}``.

    Targets (whole-model ratios are minivgg time / PyTorch time, medians of
    per-round ratios in fresh processes): VGG-16 forward batch 1 <= 0.7x at
    every thread count; forward+backward <= 0.9x; the small network's
    training step <= 1.0x; and the small network's 2-thread step never slower
    than its 1-thread step.
    """
    out = []
    for rec in result.get("runs", []):
        n = rec["threads"]
        for key, label, target in (("forward", "forward", 0.7), ("train", "forward+backward", 0.9),
                                   ("small_step", "small-net training step", 1.0)):
            if key in rec and "ratio" in rec[key]:
                r = rec[key]["ratio"]["median"]
                out.append({"what": f"{label}, {n} thread{'s' if n > 1 else ''}", "ratio": r, "target": target,
                            "met": r <= target, "spread": rec[key]["ratio"]["spread"]})
    steps = {rec["threads"]: rec["small_step"]["minivgg"]["median_s"] for rec in result.get("runs", [])
             if "small_step" in rec}
    if len(steps) > 1:
        lo, hi = min(steps), max(steps)
        r = steps[hi] / steps[lo]
        out.append({"what": f"small-net step, {hi} threads / {lo} thread", "ratio": r, "target": 1.0,
                    "met": r <= 1.0, "spread": None})
    return out

