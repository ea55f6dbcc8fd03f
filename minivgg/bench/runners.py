"""CPU benchmarks of minivgg: runners that return data, formatters that return strings.

Every figure is a *ratio measured in the same run* -- against the machine's
own BLAS sgemm rate and against PyTorch's CPU kernels when torch is installed
-- because absolute seconds drift between machines and between minutes on a
shared one. Conventions (nanoGPT-style):

* each timing discards ``warmup`` runs (JIT loading, first-touch page faults),
  then reports the median and the spread (min, max) of ``repeats`` runs;
* GFLOP/s come from *analytic* MACs (``2 * MACs / seconds``): conv
  ``N*H_out*W_out*C_out*KH*KW*C_in``, dense ``N*D_in*D_out``, backward twice
  the forward. Winograd does fewer multiplications than that, so its
  "effective" GFLOP/s can exceed the sgemm rate -- that is the point of it;
* everything runs under :func:`minivgg.kernels._parallel.limit_threads` (minivgg's kernels,
  BLAS and Numba) and ``torch.set_num_threads`` with the same count, and all
  thread settings are restored when a runner returns.

Runners: :func:`run` (the whole suite -> a JSON-able dict), and its parts
:func:`sgemm_rate`, :func:`bench_model`, :func:`bench_layers`,
:func:`conv_race`, :func:`conv_accuracy`, :func:`memory_check`,
:func:`startup_cost`. Formatters: :func:`format_report`, :func:`plot_report`.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..kernels import _parallel as threads
from ..configs import ARCHS, LayerSpec
from ..ops import conv as _conv
from ..io.files import atomic_write

#: Conv shapes larger than this many MACs are not timed with the naive loops.
NAIVE_MAX_MACS = 2_000_000


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------

@dataclass
class Timing:
    """Seconds of ``repeats`` runs after ``warmup`` discarded ones."""

    runs: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    @property
    def spread(self) -> float:
        """``(max - min) / median``: 0.05 means the runs agree to 5%."""
        return (self.max - self.min) / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.min, "max_s": self.max, "spread": self.spread,
                "runs_s": list(self.runs)}


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times timed (``perf_counter``)."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return Timing(runs)


def measure_pair(fa: Callable[[], object], fb: Callable[[], object], repeats: int = 5,
                 warmup: int = 1) -> tuple[Timing, Timing, float]:
    """Time ``fa`` and ``fb`` interleaved; return both timings and the median of the per-round ratios.

    On a shared machine the capacity drifts (the sgemm rate here has moved 2x
    within one run). Timing all of A and then all of B charges that drift to
    one side; alternating A and B in every round -- and swapping which goes
    first each round -- charges it to both, and the median of the per-round
    ratios ``a_i / b_i`` is the comparison least affected by it.
    """
    for _ in range(warmup):
        fa()
        fb()
    runs_a, runs_b = [], []
    for i in range(repeats):
        for fn, runs in ((fa, runs_a), (fb, runs_b)) if i % 2 == 0 else ((fb, runs_b), (fa, runs_a)):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
    ratio = statistics.median(a / b for a, b in zip(runs_a, runs_b))
    return Timing(runs_a), Timing(runs_b), ratio


def gflops(macs: int, seconds: float) -> float:
    """``2 * macs / seconds / 1e9`` (one MAC = one multiply + one add)."""
    return 2.0 * macs / seconds / 1e9 if seconds > 0 else float("nan")


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(num_threads: int) -> dict:
    """CPU, cores, thread count, BLAS kernel (threadpoolctl) and library versions."""
    import numba

    blas = [{k: d.get(k) for k in ("internal_api", "architecture", "num_threads", "version", "threading_layer")}
            for d in threads.blas_info()]
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": threads.available_cores(), "threads": num_threads,
        "blas": blas, "python": platform.python_version(), "numpy": np.__version__,
        "numba": numba.__version__, "torch": torch_version,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ},
    }


def sgemm_rate(n: int = 2048, repeats: int = 5, warmup: int = 1) -> dict:
    """float32 ``(n, n) @ (n, n)`` through NumPy's BLAS: the practical ceiling, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    t = measure(lambda: np.matmul(a, b, out=c), repeats, warmup)
    return {"n": n, "timing": t.to_dict(), "gflops": gflops(n ** 3, t.median)}


# ---------------------------------------------------------------------------
# analytic cost
# ---------------------------------------------------------------------------

def layer_macs(spec: LayerSpec, batch: int) -> int:
    """Forward MACs of one layer: conv ``N*H_out*W_out*F*KH*KW*C``, dense ``N*D_in*D_out``, else 0."""
    if spec.kind == "conv":
        _, ho, wo = spec.out_shape
        return batch * ho * wo * spec.out_channels * spec.kernel * spec.kernel * spec.in_channels
    if spec.kind == "dense":
        return batch * spec.in_channels * spec.out_channels
    return 0


# ---------------------------------------------------------------------------
# PyTorch twin (no torchvision needed)
# ---------------------------------------------------------------------------

def torch_model(model):
    """A ``torch.nn.Sequential`` with the same layers and weights as a minivgg ``model`` (float32/64 alike)."""
    import torch

    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    mods = []
    for layer, spec in zip(model.layers, model.specs):
        if spec.kind == "conv":
            m = torch.nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.pad)
            m.weight.data = torch.from_numpy(layer.params["w"].copy())
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif spec.kind == "dense":
            m = torch.nn.Linear(spec.in_channels, spec.out_channels)
            m.weight.data = torch.from_numpy(np.ascontiguousarray(layer.params["w"].T))
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif spec.kind == "relu":
            m = torch.nn.ReLU()
        elif spec.kind == "pool":
            m = torch.nn.MaxPool2d(spec.kernel, spec.stride)
        elif spec.kind == "flatten":
            m = torch.nn.Flatten()
        else:
            m = torch.nn.Dropout(spec.p)
        mods.append(m)
    return torch.nn.Sequential(*mods).to(dtype)


def _torch_threads(n: int):
    """Context manager: ``torch.set_num_threads(n)`` for the body, restored after (no-op without torch)."""
    import contextlib

    @contextlib.contextmanager
    def ctx():
        try:
            import torch
        except ImportError:
            yield None
            return
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield torch
        finally:
            torch.set_num_threads(old)

    return ctx()


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------
# runners
# ---------------------------------------------------------------------------

def bench_model(model, batch: int, *, train_batch: int = 2, repeats: int = 5, warmup: int = 1,
                use_torch: bool = True) -> dict:
    """Whole-model forward (inference, ``batch``) and forward+backward (``train_batch``), minivgg vs torch."""
    rng = np.random.default_rng(0)
    shape = (model.in_channels, model.input_size, model.input_size)
    x = rng.standard_normal((batch, *shape)).astype(model.dtype)
    xt = rng.standard_normal((train_batch, *shape)).astype(model.dtype)
    y = rng.integers(0, model.num_classes, train_batch)
    macs = sum(layer_macs(s, 1) for s in model.specs)
    res = {"batch": batch, "train_batch": train_batch, "macs_per_image": macs}
    def m_forward():
        model.forward(x)

    def m_train():
        model.loss(xt, y)

    have_torch = use_torch and _have_torch()
    if not have_torch:
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
        macs = layer_macs(spec, batch)
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


def _conv_shapes(specs: Sequence[LayerSpec], batch: int) -> list[tuple[str, tuple, tuple]]:
    """Distinct conv shapes in order of first use: ``("conv3_2,conv3_3", x_shape, w_shape)``."""
    groups: dict[tuple, list[str]] = {}
    for s in specs:
        if s.kind == "conv":
            key = ((batch, *s.in_shape), (s.out_channels, s.in_channels, s.kernel, s.kernel))
            groups.setdefault(key, []).append(s.name)
    return [(",".join(names), xs, ws) for (xs, ws), names in groups.items()]


def conv_race(specs: Sequence[LayerSpec], batch: int, *, repeats: int = 5, warmup: int = 1,
              algos: Sequence[str] = ("naive", "im2col", "winograd"), use_torch: bool = True,
              dtype=np.float32) -> list[dict]:
    """Each distinct conv shape: forward time of every algorithm (and torch), the winner and GFLOP/s.

    ``naive`` only runs on shapes below :data:`NAIVE_MAX_MACS`. Times are of
    :func:`minivgg.ops.conv2d_forward` (validation included), torch's of
    ``torch.nn.functional.conv2d`` under ``no_grad``.
    """
    rng = np.random.default_rng(0)
    rows = []
    for names, xs, ws in _conv_shapes(specs, batch):
        x = rng.standard_normal(xs).astype(dtype)
        w = (rng.standard_normal(ws) * np.sqrt(2.0 / (ws[1] * ws[2] * ws[3]))).astype(dtype)
        b = np.zeros(ws[0], dtype=dtype)
        macs = xs[0] * xs[2] * xs[3] * ws[0] * ws[1] * ws[2] * ws[3]  # 3x3/s1/p1: H_out = H
        row = {"layers": names, "x_shape": xs, "w_shape": ws, "macs": macs, "times": {}, "gflops": {},
               "auto": _conv.choose_algorithm(xs, ws, 1, ws[2] // 2, "auto")}
        for algo in algos:
            if algo == "naive" and macs > NAIVE_MAX_MACS:
                continue
            if algo == "winograd" and not _conv._winograd.supports(ws, 1, ws[2] // 2):
                continue
            t = measure(lambda: _conv.conv2d_forward(x, w, b, 1, ws[2] // 2, algo=algo), repeats, warmup)
            row["times"][algo] = t.to_dict()
            row["gflops"][algo] = gflops(macs, t.median)
        if use_torch and _have_torch():
            import torch
            import torch.nn.functional as tnf

            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

            def run_torch():
                with torch.no_grad():
                    tnf.conv2d(tx, tw, tb, 1, ws[2] // 2)

            t = measure(run_torch, repeats, warmup)
            row["times"]["torch"] = t.to_dict()
            row["gflops"]["torch"] = gflops(macs, t.median)
        mine = {a: v["median_s"] for a, v in row["times"].items() if a != "torch"}
        row["winner"] = min(mine, key=mine.get)
        if "torch" in row["times"]:
            row["best_vs_torch"] = mine[row["winner"]] / row["times"]["torch"]["median_s"]
        rows.append(row)
    return rows


def conv_accuracy(x_shape=(1, 64, 56, 56), w_shape=(64, 64, 3, 3), seed: int = 0) -> dict:
    """fp32 error of each algorithm against a float64 reference on the same (fp32-representable) data.

    Returns, per algorithm, the max and the RMS absolute error of the float32
    forward output, and of the float32 ``dx`` and ``dw``, relative to the
    float64 result's RMS. Direct (im2col) convolution is the yardstick
    Winograd must not be worse than.
    """
    rng = np.random.default_rng(seed)
    x32 = rng.standard_normal(x_shape).astype(np.float32)
    w32 = (rng.standard_normal(w_shape) * np.sqrt(2.0 / np.prod(w_shape[1:]))).astype(np.float32)
    b32 = rng.standard_normal(w_shape[0]).astype(np.float32)
    ref_out, ref_cache = _conv.conv2d_forward(x32.astype(np.float64), w32.astype(np.float64),
                                              b32.astype(np.float64), algo="im2col")
    d32 = rng.standard_normal(ref_out.shape).astype(np.float32)
    refs = (ref_out, *_conv.conv2d_backward(d32.astype(np.float64), ref_cache)[:2])
    res = {"x_shape": x_shape, "w_shape": w_shape}
    for algo in ("im2col", "winograd"):
        out, cache = _conv.conv2d_forward(x32, w32, b32, algo=algo)
        dx, dw, _ = _conv.conv2d_backward(d32, cache)
        entry = {}
        for label, got, ref in zip(("out", "dx", "dw"), (out, dx, dw), refs):
            err = got.astype(np.float64) - ref
            scale = float(np.sqrt(np.mean(ref ** 2)))
            entry[label] = {"max_rel": float(np.abs(err).max() / scale),
                            "rms_rel": float(np.sqrt(np.mean(err ** 2)) / scale)}
        res[algo] = entry
    return res


def memory_check(model, batch: int = 1, seed: int = 0) -> dict:
    """Peak extra memory of an inference forward (tracemalloc) against the issue's bound.

    Bound: ``3 * largest activation + largest conv workspace`` (per the
    algorithm ``"auto"`` picks for each layer), all for ``batch``. The baseline
    already holds the parameters and the input. A first unmeasured forward
    loads the kernels.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, model.in_channels, model.input_size, model.input_size)).astype(model.dtype)
    model.forward(x)
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = model.forward(x)
        peak = tracemalloc.get_traced_memory()[1] - base
        del out
    finally:
        if not was_tracing:
            tracemalloc.stop()
    itemsize = np.dtype(model.dtype).itemsize
    act = max(batch * int(np.prod(s.out_shape)) for s in model.specs) * itemsize
    work = max((_conv.workspace_bytes((batch, *s.in_shape), (s.out_channels, s.in_channels, s.kernel, s.kernel),
                                      s.stride, s.pad, itemsize, getattr(layer, "algo", "auto"))
                for layer, s in zip(model.layers, model.specs) if s.kind == "conv"), default=0)
    bound = 3 * act + work
    return {"batch": batch, "peak_bytes": peak, "largest_activation_bytes": act, "max_workspace_bytes": work,
            "bound_bytes": bound, "ratio_to_bound": peak / bound}


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
    import minivgg

    root = os.path.dirname(os.path.dirname(os.path.abspath(minivgg.__file__)))
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
        repeats: int = 5, warmup: int = 1, use_torch: bool = True,
        parts: Sequence[str] = ("model", "layers", "race", "accuracy", "memory"),
        startup: bool = False) -> dict:
    """The whole suite for one architecture and thread count; a JSON-serialisable dict.

    Parameters
    ----------
    arch : a key of :data:`minivgg.configs.ARCHS` (``"vgg16"`` ...)
    batch : images per inference forward (the issue's target is batch 1)
    train_batch : images per forward+backward (the issue's target is batch 2)
    num_threads : 1 .. cores; ``None`` = all cores
    repeats, warmup : timed and discarded runs per measurement
    use_torch : also time PyTorch (if installed) with the same thread count
    parts : subset of ``("model", "layers", "race", "accuracy", "memory")``
    startup : also time ``import minivgg`` and the first forward in fresh processes

    Raises
    ------
    ValueError
        Unknown architecture or part, batch < 1, or a thread count outside 1..cores.
    """
    from ..vgg import VGG

    if arch not in ARCHS:
        raise ValueError(f"unknown model {arch!r}; expected one of {', '.join(ARCHS)}")
    for label, value in (("batch", batch), ("train_batch", train_batch), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be an int >= 1, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    unknown = sorted(set(parts) - {"model", "layers", "race", "accuracy", "memory"})
    if unknown:
        raise ValueError(f"unknown benchmark parts {unknown}; expected model, layers, race, accuracy, memory")
    cores = threads.available_cores()
    n = cores if num_threads is None else num_threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ValueError(f"thread count must be between 1 and {cores} (the cores available), got {num_threads!r}")

    result: dict = {"arch": arch}
    with threads.limit_threads(n), _torch_threads(n):
        result["machine"] = machine_info(n)
        result["sgemm"] = sgemm_rate(repeats=repeats, warmup=warmup)
        model = VGG(arch, dtype=np.float32)
        if "model" in parts:
            result["model"] = bench_model(model, batch, train_batch=train_batch, repeats=repeats,
                                          warmup=warmup, use_torch=use_torch)
        if "layers" in parts:
            result["layers"] = bench_layers(model, batch, repeats=repeats, warmup=warmup)
        if "race" in parts:
            result["race"] = conv_race(model.specs, batch, repeats=repeats, warmup=warmup, use_torch=use_torch)
        if "accuracy" in parts:
            result["accuracy"] = conv_accuracy()
        if "memory" in parts:
            result["memory"] = memory_check(model, batch=1)
        result["sgemm_end"] = sgemm_rate(repeats=repeats, warmup=warmup)  # drift check: was the machine busy?
    if startup:
        result["startup"] = startup_cost(arch, n)
    return result


# ---------------------------------------------------------------------------
# formatters
# ---------------------------------------------------------------------------

def _ms(t: dict) -> str:
    return f"{1e3 * t['median_s']:8.1f} ±{100 * t['spread']:3.0f}%"


def format_report(res: dict) -> str:
    """A readable text report of :func:`run`'s result."""
    m, peak = res["machine"], res["sgemm"]["gflops"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} kernel={b['architecture']} threads={b['num_threads']}"
                     for b in m["blas"]) or "unknown (threadpoolctl not installed)"
    lines = [
        f"minivgg bench -- {res['arch']}, {m['date']}",
        f"CPU      {m['cpu']} ({m['cores']} cores), threads used: {m['threads']}",
        f"BLAS     {blas}" + (f"  env {m['openblas_env']}" if m["openblas_env"] else ""),
        f"versions python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, torch {m['torch'] or '-'}",
        f"sgemm    2048^3 float32: {peak:.1f} GFLOP/s at the start, {res['sgemm_end']['gflops']:.1f} at the end "
        "(the 100% of every '% sgemm' below is the start figure)",
        "times: median of the timed runs ± spread (max-min)/median; GFLOP/s from analytic MACs",
    ]
    drift = abs(res["sgemm_end"]["gflops"] - peak) / peak
    if drift > 0.2:
        lines.append(f"WARNING  the sgemm rate moved by {100 * drift:.0f}% during the run: the machine was busy "
                     "(other processes); ratios measured minutes apart are unreliable, re-run on a quiet machine")
    if "model" in res:
        r = res["model"]
        mv = r["minivgg"]
        lines += ["", f"Whole model ({r['macs_per_image'] / 1e9:.2f} GMACs per image)",
                  f"{'':24}{'minivgg ms':>15} {'GFLOP/s':>8} {'%sgemm':>7}" +
                  (f" {'torch ms':>15} {'GFLOP/s':>8} {'ratio':>6}" if "torch" in r else "")]
        for key, label, b in (("forward", f"forward, batch {r['batch']}", r["batch"]),
                              ("train", f"fwd+bwd, batch {r['train_batch']}", r["train_batch"])):
            g = mv[f"{key}_gflops"]
            line = f"{label:24}{_ms(mv[key]):>15} {g:8.1f} {100 * g / peak:6.1f}%"
            if "torch" in r:
                tg = r["torch"][f"{key}_gflops"]
                line += f" {_ms(r['torch'][key]):>15} {tg:8.1f} {r['ratio_' + key]:5.2f}x"
            lines.append(line)
        if "torch" in r:
            lines.append("ratio = median over interleaved rounds of minivgg time / torch time (targets: forward <= 1.0x, fwd+bwd <= 1.3x)")
    if "layers" in res:
        lines += ["", "Per layer (forward in inference mode; fwd+bwd in train mode)",
                  f"{'layer':10} {'algo':9} {'fwd ms':>14} {'GFLOP/s':>8} {'%sgemm':>7} {'fwd+bwd ms':>14} "
                  f"{'GFLOP/s':>8} {'%sgemm':>7}"]
        for row in res["layers"]:
            if row["forward"]["median_s"] < 5e-4 and not row["macs"]:
                continue  # flatten, dropout at inference: nothing to see
            fg, tg = row["forward_gflops"], row.get("train_gflops")
            line = f"{row['name']:10} {row.get('algo', ''):9} {_ms(row['forward']):>14} "
            line += f"{fg:8.1f} {100 * fg / peak:6.1f}%" if fg else f"{'':8} {'':7}"
            if "train" in row:
                line += f" {_ms(row['train']):>14} "
                line += f"{tg:8.1f} {100 * tg / peak:6.1f}%" if tg else ""
            lines.append(line)
        convs = [r for r in res["layers"] if r["kind"] == "conv" and r["name"] >= "conv2_1"]
        if convs:
            macs = sum(r["macs"] for r in convs)
            secs = sum(r["forward"]["median_s"] for r in convs)
            g = gflops(macs, secs)
            lines.append(f"conv2_1..conv5_3 forward together: {g:.1f} GFLOP/s = {100 * g / peak:.1f}% of sgemm "
                         "(target >= 70%)")
    if "race" in res:
        algos = ["naive", "im2col", "winograd", "torch"]
        lines += ["", "Conv algorithms per VGG layer shape (forward ms; effective GFLOP/s = direct MACs / time)",
                  f"{'layers':26} {'x shape':>18} " + " ".join(f"{a:>18}" for a in algos) +
                  f" {'winner':>9} {'auto':>9} {'best/torch':>10}"]
        for row in res["race"]:
            cells = []
            for a in algos:
                t = row["times"].get(a)
                cells.append(f"{1e3 * t['median_s']:8.2f} ({row['gflops'][a]:6.1f})" if t else f"{'-':>18}")
            vs = f"{row['best_vs_torch']:9.2f}x" if "best_vs_torch" in row else f"{'-':>10}"
            lines.append(f"{row['layers']:26} {str(tuple(row['x_shape'])):>18} " + " ".join(f"{c:>18}" for c in cells)
                         + f" {row['winner']:>9} {row['auto']:>9} {vs}")
    if "accuracy" in res:
        a = res["accuracy"]
        lines += ["", f"fp32 error vs float64 reference, x{tuple(a['x_shape'])} w{tuple(a['w_shape'])} "
                      "(|error| / RMS of the reference)",
                  f"{'algo':9} " + " ".join(f"{k + ' max':>11} {k + ' rms':>11}" for k in ("out", "dx", "dw"))]
        for algo in ("im2col", "winograd"):
            e = a[algo]
            lines.append(f"{algo:9} " + " ".join(f"{e[k]['max_rel']:11.2e} {e[k]['rms_rel']:11.2e}"
                                                 for k in ("out", "dx", "dw")))
    if "memory" in res:
        mm = res["memory"]
        lines += ["", f"Inference memory, batch {mm['batch']}: peak above params+input "
                      f"{mm['peak_bytes'] / 2**20:.1f} MiB; bound 3 x largest activation "
                      f"({mm['largest_activation_bytes'] / 2**20:.1f} MiB) + largest conv workspace "
                      f"({mm['max_workspace_bytes'] / 2**20:.1f} MiB) = {mm['bound_bytes'] / 2**20:.1f} MiB "
                      f"-> {mm['ratio_to_bound']:.2f} of the bound"]
    if "startup" in res:
        s = res["startup"]
        lines += ["", f"Startup (fresh processes, warm Numba cache): import minivgg {s['import_s']:.2f} s "
                      f"(target < 1 s); first forward adds {s['first_forward_extra_s']:.2f} s (target <= 2 s); "
                      f"first process (may fill the cache): import {s['cold']['import_s']:.2f} s, first forward "
                      f"{s['cold']['first_forward_s']:.2f} s"]
    return "\n".join(lines)


def to_json(res: dict) -> str:
    """:func:`run`'s result as indented JSON."""
    return json.dumps(res, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))


def plot_report(res: dict, path: str) -> str:
    """Per-layer bar chart (forward GFLOP/s per conv layer, with the sgemm line) saved to ``path``.

    Needs matplotlib (imported here, not at module import). Writes atomically
    (temp file in the same directory, then ``os.replace``). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "layers" not in res and "race" not in res:
        raise ValueError("plot_report: the result has neither 'layers' nor 'race'; run with those parts")
    fig, axes = plt.subplots(1, 2 if "race" in res else 1, figsize=(14, 4.5), squeeze=False)
    peak = res["sgemm"]["gflops"]
    if "layers" in res:
        ax = axes[0, 0]
        rows = [r for r in res["layers"] if r["macs"]]
        xs = np.arange(len(rows))
        ax.bar(xs - 0.2, [r["forward_gflops"] for r in rows], 0.4, label="forward")
        if all("train_gflops" in r for r in rows):
            ax.bar(xs + 0.2, [r["train_gflops"] for r in rows], 0.4, label="fwd+bwd")
        ax.axhline(peak, color="k", ls="--", lw=1, label=f"sgemm {peak:.0f}")
        ax.set_xticks(xs, [r["name"] for r in rows], rotation=60, fontsize=8)
        ax.set_ylabel("GFLOP/s (analytic MACs)")
        ax.set_title(f"{res['arch']} per layer, {res['machine']['threads']} threads")
        ax.legend(fontsize=8)
    if "race" in res:
        ax = axes[0, -1]
        algos = [a for a in ("im2col", "winograd", "torch") if any(a in r["gflops"] for r in res["race"])]
        xs = np.arange(len(res["race"]))
        width = 0.8 / max(1, len(algos))
        for i, a in enumerate(algos):
            ax.bar(xs + (i - (len(algos) - 1) / 2) * width, [r["gflops"].get(a, 0) for r in res["race"]], width,
                   label=a)
        ax.axhline(peak, color="k", ls="--", lw=1)
        ax.set_xticks(xs, [r["layers"].split(",")[0] for r in res["race"]], rotation=60, fontsize=8)
        ax.set_ylabel("effective GFLOP/s")
        ax.set_title("conv algorithms per layer shape")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fmt = (os.path.splitext(path)[1] or ".png")[1:]
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt))
    finally:
        plt.close(fig)
    return path
