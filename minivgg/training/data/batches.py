"""Mini-batches: the one batching loop of the training package (paper §3.1).

Simonyan & Zisserman (arXiv 1409.1556, §3.1) trained with mini-batch
gradient descent, batches of 256. Every loop over a data set in
:mod:`minivgg.training` -- an epoch of training, the inference passes of
:mod:`~minivgg.training.evaluate` and :mod:`~minivgg.training.transfer`, the
rendering of the embedded shapes -- walks it with :func:`batch_slices`, so
``batch_size`` is checked in one place and the last, short batch is handled
the same way everywhere.

* :func:`batch_slices` -- consecutive ``slice`` objects covering ``range(n)``.
* :func:`iterate_minibatches` -- ``(xb, yb)`` pairs for one epoch, in order or shuffled.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...ops._validate import check_array, check_positive_int, check_rng

__all__ = ["batch_slices", "iterate_minibatches"]


def batch_slices(n: int, batch_size: int, name: str = "batch_slices") -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` covering ``0..n-1`` in order.

    ``batch_size`` is checked when this is called, not at the first ``next()``
    (errors name ``name``, the caller). The last slice holds the
    ``n % batch_size`` leftovers if any; every slice satisfies
    ``stop - start == len(seq[s])``, so it also says how many samples it holds.

    Parameters
    ----------
    n : int
        Number of samples, >= 0 (0 gives no slices).
    batch_size : int
        >= 1.
    name : str
        The function to name in error messages.

    Returns
    -------
    iterator of slice
        ``ceil(n / batch_size)`` slices: ``slice(0, B)``, ``slice(B, 2B)``, ...

    Examples
    --------
    >>> [(s.start, s.stop) for s in batch_slices(7, 3)]
    [(0, 3), (3, 6), (6, 7)]
    """
    n = check_positive_int(n, name, "the number of samples", minimum=0)
    b = check_positive_int(batch_size, name, "batch_size")
    return (slice(start, min(start + b, n)) for start in range(0, n, b))


def iterate_minibatches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(xb, yb)`` mini-batches covering every sample once (one epoch).

    Arguments are checked when this is called, not at the first ``next()``.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
    y : ndarray, shape (N, ...)
    batch_size : int
        >= 1. The last batch holds the ``N % batch_size`` leftovers if any.
    shuffle : bool
        Visit samples in a random order drawn from ``rng`` (required then);
        otherwise in order (batches are then views, not copies).
    rng : numpy.random.Generator, optional

    Returns
    -------
    iterator of (xb (B, ...), yb (B, ...)) with B = batch_size, except the last.
    """
    fn = "iterate_minibatches"
    check_array(x, fn, "x", min_ndim=1)
    check_array(y, fn, "y", min_ndim=1)
    if len(x) != len(y):
        raise ValueError(f"{fn}: x has {len(x)} samples but y has {len(y)}")
    slices = batch_slices(len(x), batch_size, fn)
    order = check_rng(rng, fn).permutation(len(x)) if shuffle else None
    return _batches(x, y, slices, order)


def _batches(
    x: np.ndarray, y: np.ndarray, slices: Iterator[slice], order: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    # A generator of its own, so that iterate_minibatches checks eagerly.
    for s in slices:
        if order is None:
            yield x[s], y[s]
        else:
            idx = order[s]
            yield x[idx], y[idx]
