"""What ran the benchmark: the CPU, the BLAS behind NumPy, library versions, and the sgemm rate.

A GFLOP/s figure means little without the machine it came from, so every
result records it. :func:`sgemm_rate` is the yardstick of every "% sgemm"
figure: float32 matrix multiplication through the same BLAS minivgg's im2col
path calls, timed in the same run, which is the practical ceiling of dense
arithmetic on this CPU with this thread count.
"""

from __future__ import annotations

import datetime
import os
import platform

import numpy as np

from ..kernels import _parallel as threads
from .timing import gflops, measure


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


def memory_bandwidth(mbytes: int = 256, repeats: int = 5, warmup: int = 1) -> dict:
    """Main-memory bandwidth in GB/s: a streaming read (BLAS ``sdot``) and a copy, of ``mbytes`` MB each.

    The arrays are far larger than any cache, so this is what a layer that
    streams its weights (fc6 at batch 1: 411 MB) can hope for. The read is
    ``np.dot(src, src)``: BLAS's vectorised dot product touches each element
    once and does too little arithmetic to be anything but memory-bound
    (``np.sum``'s pairwise summation is not: it measured a third of this).
    The copy figure counts both the bytes read and the bytes written; it
    runs on one thread, the dot product on BLAS's threads.
    """
    n = mbytes * 2**20 // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    read = measure(lambda: np.dot(src, src), repeats, warmup)
    copy = measure(lambda: np.copyto(dst, src), repeats, warmup)
    nbytes = src.nbytes
    return {"mbytes": mbytes, "read_gbs": nbytes / read.median / 1e9, "copy_gbs": 2 * nbytes / copy.median / 1e9,
            "read": read.to_dict(), "copy": copy.to_dict()}
