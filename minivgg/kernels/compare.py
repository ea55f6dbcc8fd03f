"""Bitwise equality of two arrays, without a temporary: the check behind the Winograd filter cache.

``np.array_equal(a, b)`` builds a boolean array as large as ``a`` and treats
NaN as unequal to itself; the filter cache needs neither. :func:`same_bits`
compares the raw bits of two flat unsigned-integer views and stops at the
first difference, so an unchanged weight tensor costs one streaming read of
each copy (VGG-16's conv weights: 2 x 59 MB) and a changed one usually much
less.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def same_bits(a, b):  # pragma: no cover - compiled
    """True if the 1-D integer arrays ``a`` and ``b`` (same length) are equal element by element."""
    n = a.shape[0]
    block = 4096
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        diff = 0
        for i in range(lo, hi):  # no early exit inside a block: the loop vectorises
            diff |= a[i] ^ b[i]
        if diff != 0:
            return False
    return True
