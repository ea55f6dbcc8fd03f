"""minivgg-only measurements in this process: per-layer forward and backward, the memory bound, start-up cost.

Nothing here runs another library, so timing in this process is fair: these
are where-does-minivgg's-time-go figures (GFLOP/s from the *analytic* MACs of
:attr:`minivgg.configs.LayerSpec.macs`, ``2 * MACs / seconds``, backward
counted as twice the forward; Winograd does fewer multiplications than that,
so its "effective" GFLOP/s can exceed the sgemm rate -- that is the point of
it). Comparisons with PyTorch run in fresh processes:
:mod:`minivgg.bench.isolated`.

Memory is not measured here: :func:`minivgg.analysis.measure.measure_memory`
owns the tracemalloc probe, and :func:`memory_bound` is the analytic ceiling
it is set against.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import numpy as np

from ..kernels import _parallel as threads
from ..ops import conv as _conv
from .timing import gflops, measure


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


def memory_record(model, measured: dict) -> dict:
    """A measured ``inference_peak_bytes`` set against :func:`memory_bound`, as the report shows it.

    ``measured`` is what :func:`minivgg.analysis.measure.measure_memory` returned for ``model``.

    Raises
    ------
    ValueError
        ``measured`` is not such a result.
    """
    _check_memory(measured)
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


