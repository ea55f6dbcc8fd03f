"""The benchmark runners: each times one thing and returns a JSON-able record; :func:`run` runs them all.

Every figure is a *ratio measured in the same run* -- against the machine's
own BLAS sgemm rate (:func:`~minivgg.bench.machine.sgemm_rate`) and against
PyTorch's CPU kernels when torch is installed -- because absolute seconds
drift between machines and between minutes on a shared one:

* each timing discards ``warmup`` runs, then keeps ``repeats`` (see
  :mod:`minivgg.bench.timing`); minivgg and PyTorch are timed interleaved;
* GFLOP/s come from the *analytic* MACs of :attr:`minivgg.configs.LayerSpec.macs`
  (``2 * MACs / seconds``), backward counted as twice the forward. Winograd
  does fewer multiplications than that, so its "effective" GFLOP/s can exceed
  the sgemm rate -- that is the point of it;
* :func:`run` holds :func:`minivgg.kernels._parallel.limit_threads` (minivgg's
  kernels, BLAS and Numba) and ``torch.set_num_threads`` at the same count,
  and restores all thread settings when it returns.

Memory is not measured here: :func:`minivgg.analysis.measure.measure_memory`
owns the tracemalloc probe, and :func:`run` takes its result and sets it
against the analytic bound of :func:`memory_bound`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Callable, Sequence

import numpy as np

from ..configs import ARCHS
from ..kernels import _parallel as threads
from ..ops import conv as _conv
from .conv_algos import conv_accuracy, conv_race
from .machine import machine_info, sgemm_rate
from .timing import gflops, measure, measure_pair
from .torch_twin import have_torch, torch_model, torch_threads

#: What :func:`run` can time, in the order it times them.
PARTS = ("model", "layers", "race", "accuracy")


def bench_model(model, batch: int, *, train_batch: int = 2, repeats: int = 5, warmup: int = 1,
                use_torch: bool = True) -> dict:
    """Whole-model forward (inference, ``batch``) and forward+backward (``train_batch``), minivgg vs torch."""
    rng = np.random.default_rng(0)
    shape = (model.in_channels, model.input_size, model.input_size)
    x = rng.standard_normal((batch, *shape)).astype(model.dtype)
    xt = rng.standard_normal((train_batch, *shape)).astype(model.dtype)
    y = rng.integers(0, model.num_classes, train_batch)
    macs = sum(s.macs for s in model.specs)
    res = {"batch": batch, "train_batch": train_batch, "macs_per_image": macs}
    def m_forward():
        model.forward(x)

    def m_train():
        model.loss(xt, y)

    with_torch = use_torch and have_torch()
    if not with_torch:
        fwd, train = measure(m_forward, repeats, warmup), measure(m_train, repeats, warmup)
    else:
        import torch

        net = torch_model(model)
        tx, txt, ty = torch.from_numpy(x), torch.from_numpy(xt), torch.from_numpy(y)
        loss_fn = torch.nn.CrossEntropyLoss()

        def t_forward():
            with torch.no_grad():
                net.eval()(tx)

        def t_train():
            net.train()
            net.zero_grad(set_to_none=True)
            loss_fn(net(txt), ty).backward()

        # interleaved, so drifting machine capacity is charged to both sides (see measure_pair)
        fwd, tf, res["ratio_forward"] = measure_pair(m_forward, t_forward, repeats, warmup)
        train, tt, res["ratio_train"] = measure_pair(m_train, t_train, repeats, warmup)
        res["torch"] = {"forward": tf.to_dict(), "train": tt.to_dict(),
                        "forward_gflops": gflops(macs * batch, tf.median),
                        "train_gflops": gflops(3 * macs * train_batch, tt.median)}
    model.layers.clear_caches()
    res["minivgg"] = {"forward": fwd.to_dict(), "train": train.to_dict(),
                      "forward_gflops": gflops(macs * batch, fwd.median),
                      "train_gflops": gflops(3 * macs * train_batch, train.median)}
    return res


def bench_layers(model, batch: int, *, repeats: int = 5, warmup: int = 1, backward: bool = True) -> list[dict]:
    """Per layer: forward time (inference mode) and forward+backward time (train mode), with GFLOP/s.

    Each layer is fed the previous layer's real output, so shapes and
    sparsity (ReLU zeros) are those of a real pass.
    """
    rng = np.random.default_rng(0)
    h = rng.standard_normal((batch, model.in_channels, model.input_size, model.input_size)).astype(model.dtype)
    rows = []
    for layer, spec in zip(model.layers, model.specs):
        macs = spec.macs * batch
        fwd = measure(lambda: layer.forward(h, train=False), repeats, warmup)
        row = {"name": spec.name, "kind": spec.kind, "macs": macs, "forward": fwd.to_dict(),
               "forward_gflops": gflops(macs, fwd.median) if macs else None}
        if spec.kind == "conv":
            row["algo"] = _conv.choose_algorithm(h.shape, layer.params["w"].shape, spec.stride, spec.pad, layer.algo)
        out = layer.forward(h, train=False)
        if backward:
            dout = rng.standard_normal(out.shape).astype(model.dtype)

            def step():
                layer.forward(h, train=True)
                layer.backward(dout)

            both = measure(step, repeats, warmup)
            row["train"] = both.to_dict()
            row["train_gflops"] = gflops(3 * macs, both.median) if macs else None
        rows.append(row)
        h = out
    return rows


def memory_bound(model, batch: int = 1) -> dict:
    """The analytic ceiling of an inference forward's extra memory: ``3 * largest activation + workspace``.

    A generous ceiling for a layer-by-layer forward: a layer's input and
    output plus room for one more activation-sized temporary, and the largest
    conv scratch buffer (im2col columns or Winograd tiles) of the algorithm
    each layer uses (``"auto"`` picks by shape), all for ``batch`` images of
    ``model.dtype``. Measured peaks
    (:func:`minivgg.analysis.measure.measure_memory`) are compared with it.

    Returns ``{"batch", "largest_activation_bytes", "max_workspace_bytes", "bound_bytes"}``.
    """
    itemsize = np.dtype(model.dtype).itemsize
    act = max(batch * int(np.prod(s.out_shape)) for s in model.specs) * itemsize
    work = max((_conv.workspace_bytes((batch, *s.in_shape), s.weight_shape, s.stride, s.pad, itemsize,
                                      getattr(layer, "algo", "auto"))
                for layer, s in zip(model.layers, model.specs) if s.kind == "conv"), default=0)
    return {"batch": batch, "largest_activation_bytes": act, "max_workspace_bytes": work,
            "bound_bytes": 3 * act + work}


def _memory_record(model, measured: dict) -> dict:
    """A measured ``inference_peak_bytes`` set against :func:`memory_bound`, as the report shows it."""
    peak = int(measured["inference_peak_bytes"])
    bound = memory_bound(model, measured.get("batch", 1))
    return {"batch": bound["batch"], "peak_bytes": peak,
            **{k: bound[k] for k in ("largest_activation_bytes", "max_workspace_bytes", "bound_bytes")},
            "ratio_to_bound": peak / bound["bound_bytes"]}


def _check_memory(measured) -> None:
    peak = measured.get("inference_peak_bytes") if isinstance(measured, dict) else None
    batch = measured.get("batch", 1) if isinstance(measured, dict) else None
    if (isinstance(peak, bool) or not isinstance(peak, (int, np.integer))
            or isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError("memory must be the dict minivgg.analysis.measure.measure_memory returns (an int "
                         f"'inference_peak_bytes', optionally an int 'batch' >= 1), got {measured!r}")


_STARTUP_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import minivgg
from minivgg.kernels import _parallel as threads
t1 = time.perf_counter()
model = minivgg.VGG(sys.argv[1], dtype=np.float32)
x = np.random.default_rng(0).standard_normal((1, 3, model.input_size, model.input_size)).astype(np.float32)
with threads.limit_threads(int(sys.argv[2])):
    t2 = time.perf_counter(); model.forward(x); t3 = time.perf_counter()
    model.forward(x); t4 = time.perf_counter()
    model.forward(x); t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_forward_s": t3 - t2, "later_forward_s": min(t4 - t3, t5 - t4)}))
"""


def startup_cost(arch: str = "vgg16", num_threads: int | None = None, runs: int = 2) -> dict:
    """``import minivgg`` time and the first forward's extra cost, in fresh processes.

    Runs a child interpreter ``runs + 1`` times (the first one may have to
    fill the Numba cache and is reported separately as ``cold``); compile
    overhead = first forward - a later forward of the same process.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds minivgg/
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    n = threads.available_cores() if num_threads is None else num_threads
    results = []
    for _ in range(runs + 1):
        proc = subprocess.run([sys.executable, "-c", _STARTUP_SCRIPT, arch, str(n)], capture_output=True,
                              text=True, env=env, timeout=600, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    warm = results[1:]
    return {
        "cold": results[0],
        "import_s": statistics.median(r["import_s"] for r in warm),
        "first_forward_extra_s": statistics.median(r["first_forward_s"] - r["later_forward_s"] for r in warm),
        "runs": warm,
    }


def run(arch: str = "vgg16", *, batch: int = 1, train_batch: int = 2, num_threads: int | None = None,
        repeats: int = 5, warmup: int = 1, use_torch: bool = True, parts: Sequence[str] = PARTS,
        startup: bool = False, memory: dict | None = None,
        progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The whole suite for one architecture and thread count; a JSON-serialisable dict.

    Parameters
    ----------
    arch : a key of :data:`minivgg.configs.ARCHS` (``"vgg16"`` ...)
    batch : images per inference forward (default 1: one image, the latency case)
    train_batch : images per forward+backward (default 2)
    num_threads : 1 .. cores; ``None`` = all cores
    repeats, warmup : timed and discarded runs per measurement
    use_torch : also time PyTorch (if installed) with the same thread count
    parts : subset of :data:`PARTS`, ``("model", "layers", "race", "accuracy")``
    startup : also time ``import minivgg`` and the first forward in fresh processes
    memory : what :func:`minivgg.analysis.measure.measure_memory` returned for this
        ``arch`` in float32 (at batch 1, or say ``"batch"`` in the dict); its
        ``inference_peak_bytes`` is set against :func:`memory_bound` under the
        result's ``"memory"`` key. ``None`` (default): no memory section.
    progress : called as ``progress(step, done, total)`` before each step
        (``"sgemm"``, each part, ``"sgemm_end"``, ``"startup"``) with the
        number of steps done so far, and once more with ``("done", total, total)``.

    Raises
    ------
    ValueError
        Unknown architecture or part, batch < 1, a thread count outside
        1..cores, or a ``memory`` that is not a measure_memory result.
    """
    from ..vgg import VGG

    if arch not in ARCHS:
        raise ValueError(f"unknown model {arch!r}; expected one of {', '.join(ARCHS)}")
    for label, value in (("batch", batch), ("train_batch", train_batch), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be an int >= 1, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if "memory" in parts:
        raise ValueError("'memory' is not a part bench measures: pass the result of "
                         "minivgg.analysis.measure.measure_memory as memory=...")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown benchmark parts {unknown}; expected {', '.join(PARTS)}")
    cores = threads.available_cores()
    n = cores if num_threads is None else num_threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ValueError(f"thread count must be between 1 and {cores} (the cores available), got {num_threads!r}")
    if memory is not None:
        _check_memory(memory)

    steps = ["sgemm", *(p for p in PARTS if p in parts), "sgemm_end"] + (["startup"] if startup else [])
    done = 0

    def step(name: str) -> None:
        nonlocal done
        if progress is not None:
            progress(name, done, len(steps))
        done += 1

    result: dict = {"arch": arch}
    with threads.limit_threads(n), torch_threads(n):
        result["machine"] = machine_info(n)
        step("sgemm")
        result["sgemm"] = sgemm_rate(repeats=repeats, warmup=warmup)
        model = VGG(arch, dtype=np.float32)
        if "model" in parts:
            step("model")
            result["model"] = bench_model(model, batch, train_batch=train_batch, repeats=repeats,
                                          warmup=warmup, use_torch=use_torch)
        if "layers" in parts:
            step("layers")
            result["layers"] = bench_layers(model, batch, repeats=repeats, warmup=warmup)
        if "race" in parts:
            step("race")
            result["race"] = conv_race(model.specs, batch, repeats=repeats, warmup=warmup, use_torch=use_torch)
        if "accuracy" in parts:
            step("accuracy")
            result["accuracy"] = conv_accuracy()
        if memory is not None:
            result["memory"] = _memory_record(model, memory)
        step("sgemm_end")
        result["sgemm_end"] = sgemm_rate(repeats=repeats, warmup=warmup)  # drift check: was the machine busy?
    if startup:
        step("startup")
        result["startup"] = startup_cost(arch, n)
    if progress is not None:
        progress("done", done, len(steps))
    return result
