"""How many cores minivgg's own kernels use, and a context manager that sets every thread knob.

minivgg's Numba kernels are *serial* functions compiled with
``cache=True, nogil=True`` (compiled once, reused from the on-disk cache by
later processes). To use several cores, the ops split the work (over channels,
filters or image rows) into :func:`num_threads` slices and run the slices on a
small shared :class:`~concurrent.futures.ThreadPoolExecutor`; ``nogil`` lets
the slices run truly in parallel. Why not ``numba.njit(parallel=True)``? A
parallel kernel cannot be cached reliably, so every fresh process would pay its
compilation again (seconds for the handful of kernels minivgg has), while a
user's first forward pass in a fresh process should cost well under 2 s.

The GEMMs run in NumPy's BLAS (OpenBLAS), which has its own thread pool.
:func:`limit_threads` sets both -- and Numba's, should anything use it -- and
restores all three on exit, so a benchmark never leaves the process changed::

    with limit_threads(1):
        model.forward(x)        # one core for kernels and BLAS alike
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def available_cores() -> int:
    """Cores this process may run on (``sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


_num_threads = available_cores()


def get_num_threads() -> int:
    """Number of slices minivgg's kernels split their work into (default: all cores)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 .. :func:`available_cores`) for minivgg's kernels.

    Raises
    ------
    ValueError
        ``n`` is not an int in ``1 .. available_cores()``.
    """
    global _num_threads
    cores = available_cores()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ValueError(f"thread count must be an int between 1 and {cores} (the cores available), got {n!r}")
    _num_threads = n


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(max_workers=size, thread_name_prefix="minivgg"), size
        return _pool


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges covering ``0 .. total`` in at most ``parts`` near-equal pieces."""
    parts = max(1, min(parts, total))
    step, extra = divmod(total, parts)
    bounds, lo = [], 0
    for i in range(parts):
        hi = lo + step + (1 if i < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def parallel_for(fn: Callable[[int, int], object], total: int, min_per_thread: int = 1) -> None:
    """Call ``fn(lo, hi)`` on slices of ``range(total)``, one slice per thread, and wait.

    ``fn`` must release the GIL (a ``nogil`` Numba kernel) for this to use
    several cores, and the slices must write disjoint memory. With one thread,
    or too little work (fewer than ``min_per_thread`` items per slice), ``fn``
    runs inline on the caller's thread: no pool overhead.
    """
    parts = min(_num_threads, max(1, total // max(1, min_per_thread)))
    if parts <= 1:
        fn(0, total)
        return
    chunks = split(total, parts)
    pool = _executor(_num_threads)
    futures = [pool.submit(fn, lo, hi) for lo, hi in chunks[1:]]
    fn(*chunks[0])  # the caller does the first slice itself
    for fut in futures:
        fut.result()  # re-raises a worker's exception here


def blas_info() -> list[dict]:
    """threadpoolctl's description of the BLAS libraries loaded (empty if threadpoolctl is missing)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [d for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]


_blas_controllers: list | None = None


def _blas_libs() -> list:
    global _blas_controllers
    if _blas_controllers is None:
        try:
            import numpy  # noqa: F401  (BLAS must be loaded before threadpoolctl looks for it)
            import threadpoolctl
        except ImportError:
            _blas_controllers = []
        else:
            _blas_controllers = list(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas_controllers


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Make BLAS single-threaded for the body (restored after): for GEMMs issued from several threads at once.

    Costs about a microsecond (a cached threadpoolctl controller, found once);
    without threadpoolctl it does nothing.
    """
    libs = _blas_libs()
    old = [lib.get_num_threads() for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, old):
            lib.set_num_threads(n)


#: A product smaller than this many multiply-adds per thread runs on the calling thread: handing a
#: slice to another thread costs tens of microseconds, as much as ~2M MACs of BLAS work, and a small
#: network's GEMMs are mostly that small (a 2-thread run must not be slower than a 1-thread one).
MIN_PARALLEL_MACS = 2_000_000


def _macs(a, b, out) -> int:
    """Multiply-adds of ``matmul(a, b)`` into ``out``: ``out.size * K``."""
    return out.size * a.shape[-1]


def parallel_matmul(a, b, out, min_cols: int = 64):
    """``np.matmul(a, b, out=out)`` with the work split over the threads, each GEMM single-threaded in BLAS.

    A stack of products (3-D ``out``) is split over the stack when it has at
    least one product per thread; otherwise the columns of ``b``/``out`` are
    split (column slices of C-contiguous arrays are still valid BLAS operands,
    with a leading dimension). Why not let OpenBLAS thread each GEMM? Its
    threads busy-wait between calls, which on a loaded machine (or next to
    other thread pools) can cost 10x; independent slices synchronise once.
    Products under :data:`MIN_PARALLEL_MACS` per thread are not split.
    Returns ``out``.
    """
    import numpy as np

    n = _num_threads
    if n == 1 or _macs(a, b, out) < MIN_PARALLEL_MACS * n:
        return np.matmul(a, b, out=out)
    if out.ndim == 3 and out.shape[0] >= n:
        def stack(lo, hi):
            np.matmul(a[lo:hi] if a.ndim == 3 else a, b[lo:hi] if b.ndim == 3 else b, out=out[lo:hi])

        with blas_single_threaded():
            parallel_for(stack, out.shape[0])
        return out
    if out.shape[-1] < n * min_cols:
        return np.matmul(a, b, out=out)

    def columns(lo, hi):
        np.matmul(a, b[..., lo:hi], out=out[..., lo:hi])

    with blas_single_threaded():
        parallel_for(columns, out.shape[-1], min_cols)
    return out


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[int]:
    """Run the body with ``n`` threads for minivgg's kernels, BLAS and Numba; restore all on exit.

    ``n=None`` means all available cores. Yields the count in force. BLAS is
    limited through threadpoolctl when it is installed (otherwise left alone).
    """
    import numba

    n = available_cores() if n is None else n
    old_mine, old_numba = get_num_threads(), numba.get_num_threads()
    set_num_threads(n)  # validates n first, before anything has changed
    try:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        with contextlib.ExitStack() as stack:
            try:
                import threadpoolctl
            except ImportError:
                pass
            else:
                stack.enter_context(threadpoolctl.threadpool_limits(limits=n, user_api="blas"))
            yield n
    finally:
        set_num_threads(old_mine)
        numba.set_num_threads(old_numba)
