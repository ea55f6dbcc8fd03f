"""ReLU loop: ``out = max(x, 0)`` over a flat array, as NumPy's ``np.maximum(x, 0)`` computes it.

Elementwise: ``x`` where ``x > 0``, NaN stays NaN (the same NaN), everything
else (negatives, ``-0.0``) becomes ``+0.0`` -- the values ``np.maximum(x, 0)``
returns, bit for bit. Why a kernel for one comparison? ``np.maximum`` takes its
NaN-aware path and runs at about half the memory bandwidth; this loop
vectorises to a compare and two blends and is about 2x faster on conv1_2's
12 MiB output. Serial, ``cache=True, nogil=True``, no ``fastmath`` (NaN must
survive). Cost: one comparison per element, no MACs; memory-bound, which is
also why splitting it over threads measured no gain.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def relu_flat(x, out):  # pragma: no cover - compiled
    """``out[i] = max(x[i], 0)`` for 1-D ``x``, ``out`` of the same length and dtype (NaN kept)."""
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        # one store of a select (not three branches with a store each): LLVM vectorises this form;
        # v != v is NaN, kept as np.maximum keeps it
        out[i] = v if (v > zero or v != v) else zero
