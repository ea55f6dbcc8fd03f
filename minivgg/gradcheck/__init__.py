"""Numerical gradients and gradient checkers that say what is wrong.

cs231n lecture 4 ("Backpropagation") and the assignments' ``gradient_check.py``:
the analytic gradient a ``*_backward`` function computes is compared with a
numerical estimate from the forward function alone.

Centered differences
--------------------
For a scalar function :math:`f` and a coordinate :math:`x_i`,

.. math::

    \\frac{\\partial f}{\\partial x_i} \\approx
    \\frac{f(x + h e_i) - f(x - h e_i)}{2h},

whose truncation error is :math:`O(h^2)` (:math:`h^2 f'''/6`): the even terms of
the two Taylor series cancel. The one-sided difference
:math:`(f(x + h e_i) - f(x)) / h` is only :math:`O(h)`, which is why nobody uses
it. Rounding adds an error of about :math:`\\epsilon_{mach} |f| / h`, so ``h``
cannot be made arbitrarily small; ``h = 1e-5`` balances the two in float64
(:math:`10^{-10}` truncation, :math:`10^{-11}` rounding).

Why float64
-----------
In float32 :math:`\\epsilon_{mach} \\approx 1.2 \\times 10^{-7}`; with any ``h`` the
two errors above cannot both be small, and a centered difference is good to
about :math:`10^{-3}` relative -- a correct backward and one that is 0.1 % off
look the same. The checkers therefore refuse float32 inputs (``TypeError``):
check in float64, run in float32. minivgg's ops keep dtype in = dtype out, so
a float64 input gives a float64 check of the very same code.

Relative error
--------------
:func:`rel_error` is cs231n's
:math:`\\max_i |a_i - b_i| / \\max(\\epsilon, |a_i| + |b_i|)`, scale-free so one
threshold works for gradients of any size. With ``h = 1e-5`` in float64:
around ``1e-7`` or below is a correct gradient (``1e-10`` is typical for smooth
ops), ``1e-4`` to ``1e-2`` is suspicious (a kink, or a small bug), above
``1e-2`` the gradient is wrong. The checkers default to ``tol = 1e-7``.
The measure is per coordinate, so a coordinate whose true gradient is tiny
compared with the rest (a saturated sigmoid, ~1e-9; a weight that barely
matters, ~1e-6) can fail on rounding noise alone (~1e-11 absolute). The
checkers therefore measure each coordinate relative to at least
:data:`FLOOR_FRACTION` (0.1 %) of the tensor's largest numerical gradient:
round-off on near-zero entries no longer fails a correct backward, while a real
error on such an entry (a wrong sign, a missing term) is still millions of
times above ``tol``. :func:`rel_error` itself stays cs231n's plain formula.

The upstream-gradient trick
---------------------------
A layer maps an array to an array, so its "gradient" is a Jacobian, far too
big to build for a conv layer. Backward never builds it either: it computes the
vector-Jacobian product :math:`\\bar{x} = J^T \\bar{y}` for one upstream
gradient ``dout`` = :math:`\\bar{y}`. That product is exactly the gradient of
the scalar :math:`L(x) = \\sum_j f(x)_j \\, \\bar{y}_j`, so
:func:`numerical_gradient_array` differentiates that scalar:
``grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)``. A random
``dout`` exercises every output, so a bug in any of them shows up.

Kinks (ReLU, max-pool)
----------------------
A centered difference straddling a kink averages the two one-sided slopes: if
an input of a ReLU lies within ``h`` of 0 (or two max-pool candidates within
``h`` of each other), the numerical gradient at that coordinate is legitimately
neither 0 nor 1 and disagrees with a correct backward. Use inputs away from the
kink (e.g. ``x`` drawn with ``|x| > 1e-3``, or distinct pool candidates); a
failure on one or two coordinates whose inputs sit near a kink is this effect,
not a bug. Dropout must use a fixed mask (fixed seed) while checking.

The checkers say so: :func:`check_op` takes a *kink finder* (``kinks=``) that
marks the input coordinates whose centered difference may straddle a kink --
:func:`relu_kinks` (``|x| < h``) and :func:`maxpool_ties` (a window's top two
entries within ``2h``, the width of the difference) are built in and chosen
automatically for ops named ``relu``/``maxpool``. A failing row then names the
failing coordinates that sit at a kink, and says whether any failing
coordinate does NOT (that one is a real error). It is a hint, never an
excuse: the row still fails, and the way to decide is to move the inputs away
from the kink. :func:`check_params` takes ``kinks=`` too, a callable of ``h``
describing the activations near a kink (:func:`activation_kinks` inspects a
model's ReLU and max-pool inputs).

Cost
----
Every checked coordinate costs two forward passes, so the checkers sample at
most ``max_coords`` coordinates of a large tensor (seeded) and report how many
they checked. A bug that touches every coordinate (a wrong scale, a missing
term, a transposed weight) is caught by any sample; a bug in a single element
of a big tensor may be missed -- check small shapes for those, or raise
``max_coords`` to the tensor's size. The report says when it sampled, and the
``max_coords`` that checks every coordinate.

This package imports only NumPy and the standard library, so it checks a
student's own forward/backward functions as well as :mod:`minivgg.ops`.

Modules: :mod:`~minivgg.gradcheck.numerical` (centered differences,
:func:`rel_error`), :mod:`~minivgg.gradcheck.report` (rows, reports and the
diagnosis of a failure), :mod:`~minivgg.gradcheck.kinks` (ReLU kinks and
max-pool ties), :mod:`~minivgg.gradcheck.check` (:func:`check_op`,
:func:`check_params`).
"""

from __future__ import annotations

from .check import GradCheckError, check_op, check_params
from .kinks import KinkFinder, Kinks, activation_kinks, maxpool_tie_finder, maxpool_ties, relu_kink_finder, relu_kinks
from .numerical import FLOOR_FRACTION, REL_EPS, numerical_gradient, numerical_gradient_array, rel_error  # noqa: F401
from .report import GradCheckReport, GradCheckRow, _diagnose  # noqa: F401 - _diagnose: tests read its wording

__all__ = [
    "rel_error",
    "numerical_gradient",
    "numerical_gradient_array",
    "check_op",
    "check_params",
    "GradCheckRow",
    "GradCheckReport",
    "GradCheckError",
    "Kinks",
    "KinkFinder",
    "relu_kinks",
    "maxpool_ties",
    "relu_kink_finder",
    "maxpool_tie_finder",
    "activation_kinks",
]
