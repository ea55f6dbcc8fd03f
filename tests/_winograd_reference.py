"""What the F(2x2, 3x3) and F(4x4, 3x3) Winograd tests share: the schemes' matrices, the per-tile
reference transforms, and the checks both files run with their own scheme.

``test_winograd.py`` and ``test_winograd4.py`` test two kernels that do the same thing with other
tile sizes and matrices. The references here take the geometry and the matrices from a
:class:`Scheme`, so one piece of text serves both and a fix to it reaches both. They are the textbook
per-tile matrix form -- plain NumPy products on an explicitly zero-padded input, one tile at a time --
and never call the Numba kernels they check; the kernels work on runs of tiles along a tile row, so a
wrong run boundary, border or overhang shows as a disagreement.

Randomness: every function that draws takes the generator as ``rng``; the test files pass their
module ``RNG``, which ``conftest.py`` reseeds per test.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest

from minivgg import ops
from minivgg.gradcheck import GradCheckReport, check_op
from minivgg.kernels import _parallel as threads
from minivgg.ops import conv as conv_mod

LINEAR_H = 1e-3  # conv is linear in x and w: no truncation error, a larger step shrinks round-off

#: (N, C, H, W, F) both schemes run end to end: odd and even sizes, non-square, 1x1 images, batch 1, channels 1
CONV_CASES = [
    (2, 3, 7, 7, 4),
    (1, 1, 5, 8, 2),
    (3, 2, 6, 5, 3),
    (1, 4, 1, 1, 2),
    (2, 2, 2, 3, 1),
    (1, 5, 9, 4, 6),
]


def _frozen(rows) -> np.ndarray:
    """A read-only float64 matrix, so no test can change a scheme's constants for the tests after it."""
    a = np.array(rows, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Scheme:
    """One Winograd F(m x m, 3x3) scheme: ``Y = A^T [(G g G^T) . (B^T d B^T^T)] A`` per tile.

    ``m`` is the output tile side, ``alpha = m + 2`` the input tile side (tiles overlap by 2);
    ``B_T`` is ``alpha x alpha``, ``G`` is ``alpha x 3``, ``A_T`` is ``m x alpha``. ``name`` is the
    ``algo=`` string of the convolution that uses it.
    """

    name: str
    m: int
    alpha: int
    B_T: np.ndarray
    G: np.ndarray
    A_T: np.ndarray

    def __post_init__(self):
        a, m = self.alpha, self.m
        if (self.B_T.shape, self.G.shape, self.A_T.shape) != ((a, a), (a, 3), (m, a)) or a != m + 2:
            raise ValueError(f"Scheme {self.name}: expected B^T {a}x{a}, G {a}x3, A^T {m}x{a} with alpha = m + 2, "
                             f"got B^T {self.B_T.shape}, G {self.G.shape}, A^T {self.A_T.shape}, alpha {a}, m {m}")

    @property
    def positions(self) -> int:
        """Winograd positions per tile (the leading axis of ``U``, ``V`` and ``M``): ``alpha**2``."""
        return self.alpha ** 2

    def tiles(self, h: int, w: int) -> tuple[int, int]:
        """Output tiles along H and W, ``ceil(H/m), ceil(W/m)``, worked out here, not by the code under test."""
        return -(-h // self.m), -(-w // self.m)


#: Lavin & Gray's F(2x2, 3x3), points 0, 1, -1 and infinity.
F2 = Scheme("winograd", 2, 4,
            B_T=_frozen([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
            G=_frozen([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
            A_T=_frozen([[1, 1, 1, 0], [0, 1, -1, -1]]))

#: Lavin & Gray's F(4x4, 3x3), points 0, 1, -1, 2, -2 and infinity, as the kernel docstring prints them
#: (``test_winograd4.py`` rebuilds them from Toom-Cook).
F4 = Scheme("winograd4", 4, 6,
            B_T=_frozen([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]),
            G=_frozen([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                       [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
            A_T=_frozen([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]))


# ---------------------------------------------------------------- small helpers

def conv_inputs(rng: np.random.Generator, n: int, c: int, h: int, w: int, f: int, dtype=np.float64):
    """Random ``x (N, C, H, W)``, 3x3 ``w (F, C, 3, 3)`` and ``b (F,)`` in ``dtype``."""
    return (rng.standard_normal((n, c, h, w)).astype(dtype), rng.standard_normal((f, c, 3, 3)).astype(dtype),
            rng.standard_normal(f).astype(dtype))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference, as a Python float."""
    return float(np.max(np.abs(a - b)))


# ---------------------------------------------------------------- one tile: the minimal filtering identity

def correlate_tile(scheme: Scheme, d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Direct 3x3 correlation of one ``alpha x alpha`` tile: its ``m x m`` valid outputs."""
    return np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(scheme.m)] for i in range(scheme.m)])


def winograd_tile(scheme: Scheme, d: np.ndarray, g: np.ndarray, a_t=None, g_m=None, b_t=None) -> np.ndarray:
    """One tile through the scheme's matrices (or the ones given, for a negative control)."""
    a_t = scheme.A_T if a_t is None else a_t
    g_m = scheme.G if g_m is None else g_m
    b_t = scheme.B_T if b_t is None else b_t
    return a_t @ ((g_m @ g @ g_m.T) * (b_t @ d @ b_t.T)) @ a_t.T


def check_minimal_filtering_identity(scheme: Scheme, rng: np.random.Generator) -> None:
    """The scheme's matrices give direct correlation on random tiles; one entry off by 1 % breaks that."""
    a = scheme.alpha
    worst = 0.0
    for _ in range(50):
        d, g = rng.standard_normal((a, a)), rng.standard_normal((3, 3))
        worst = max(worst, np.abs(winograd_tile(scheme, d, g) - correlate_tile(scheme, d, g)).max())
    assert worst < 1e-12
    # negative control: one entry of each matrix off by 1 % breaks the identity
    d, g = rng.standard_normal((a, a)), rng.standard_normal((3, 3))
    for which in ("a_t", "g_m", "b_t"):
        mats = {"a_t": scheme.A_T.copy(), "g_m": scheme.G.copy(), "b_t": scheme.B_T.copy()}
        mats[which][1, 1] *= 1.01
        assert np.abs(winograd_tile(scheme, d, g, **mats) - correlate_tile(scheme, d, g)).max() > 1e-4, which


# ---------------------------------------------------------------- the per-tile reference transforms

def tile_index(p: int, th: int, tw: int) -> tuple[int, int, int]:
    """``(n, ty, tx)`` of global tile number ``p = (n * th + ty) * tw + tx``."""
    n, rem = divmod(p, th * tw)
    return (n, *divmod(rem, tw))


def reference_input_transform(scheme: Scheme, x: np.ndarray, p0: int, p1: int) -> np.ndarray:
    """``V (alpha^2, C, p1 - p0)``: ``B^T d B`` of tiles ``[p0, p1)`` of ``x (N, C, H, W)`` padded by 1."""
    m, a, b_t = scheme.m, scheme.alpha, scheme.B_T
    n_img, c, h, w = x.shape
    th, tw = scheme.tiles(h, w)
    xp = np.zeros((n_img, c, m * th + 2, m * tw + 2))
    xp[:, :, 1:h + 1, 1:w + 1] = x
    v = np.empty((a * a, c, p1 - p0))
    for p in range(p0, p1):
        n, ty, tx = tile_index(p, th, tw)
        d = xp[n, :, m * ty:m * ty + a, m * tx:m * tx + a]           # (C, alpha, alpha)
        v[:, :, p - p0] = (b_t @ d @ b_t.T).reshape(c, a * a).T
    return v


def reference_output_transform(scheme: Scheme, mm: np.ndarray, b: np.ndarray, p0: int, p1: int,
                               out_shape: tuple) -> np.ndarray:
    """``(N, F, H, W)``: ``A^T M A + b`` of tiles ``[p0, p1)`` from ``mm (alpha^2, F, p1 - p0)``; NaN elsewhere."""
    m, a, a_t = scheme.m, scheme.alpha, scheme.A_T
    n_img, f, h, w = out_shape
    th, tw = scheme.tiles(h, w)
    out = np.full((n_img, f, m * th, m * tw), np.nan)
    for p in range(p0, p1):
        n, ty, tx = tile_index(p, th, tw)
        y = a_t @ mm[:, :, p - p0].T.reshape(f, a, a) @ a_t.T + b[:, None, None]   # (F, m, m)
        out[n, :, m * ty:m * ty + m, m * tx:m * tx + m] = y
    return out[:, :, :h, :w]


def _span(scheme: Scheme, shape: tuple, span) -> tuple[int, int, int, int]:
    """``(th, tw, p0, p1)`` for an ``(N, C, H, W)`` input and a tile range (``None``: every tile)."""
    th, tw = scheme.tiles(*shape[2:])
    p0, p1 = span or (0, shape[0] * th * tw)
    return th, tw, p0, p1


def check_transforms_match_reference(scheme: Scheme, wk: ModuleType, shape: tuple, span,
                                     rng: np.random.Generator) -> None:
    """``wk``'s input and output transforms on tiles ``span`` of an ``shape`` input equal the references.

    The output transform must write exactly the tiles asked for: ``out`` starts as NaN everywhere.
    """
    q = scheme.positions
    x = rng.standard_normal(shape)
    th, tw, p0, p1 = _span(scheme, shape, span)
    v = np.full((q, shape[1], p1 - p0), np.nan)
    wk.input_transform(x, 0, shape[1], p0, p1, th, tw, v)
    assert max_diff(v, reference_input_transform(scheme, x, p0, p1)) < 1e-12
    f = 3
    mm, b = rng.standard_normal((q, f, p1 - p0)), rng.standard_normal(f)
    out = np.full((shape[0], f) + shape[2:], np.nan)
    wk.output_transform(mm, b, 0, f, p0, p1, th, tw, out)
    ref = reference_output_transform(scheme, mm, b, p0, p1, out.shape)
    assert np.array_equal(np.isnan(out), np.isnan(ref))               # exactly the tiles asked for are written
    assert np.nanmax(np.abs(out - ref)) < 1e-12


def check_reference_catches_a_wrong_border(scheme: Scheme, wk: ModuleType, x: np.ndarray, n_tiles: int) -> None:
    """Negative control: the kernel fed a tile range shifted by one, or an input shifted by a column
    (padding on the wrong side), must disagree with the reference on tiles ``[0, n_tiles)`` of ``x``."""
    c = x.shape[1]
    th, tw = scheme.tiles(*x.shape[2:])
    v = np.empty((scheme.positions, c, n_tiles))
    wk.input_transform(x, 0, c, 1, n_tiles + 1, th, tw, v)
    assert max_diff(v, reference_input_transform(scheme, x, 0, n_tiles)) > 1e-3
    x_shift = np.zeros_like(x)
    x_shift[:, :, :, 1:] = x[:, :, :, :-1]                            # padding on the wrong side
    wk.input_transform(x_shift, 0, c, 0, n_tiles, th, tw, v)
    assert max_diff(v, reference_input_transform(scheme, x, 0, n_tiles)) > 1e-3


def check_adjoint_check_catches_a_mirrored_adjoint(scheme: Scheme, wk: ModuleType, x: np.ndarray, n_tiles: int,
                                                   rng: np.random.Generator) -> None:
    """Negative control for :func:`check_adjoints_are_transposes`: the inner-product test holds for
    ``wk``'s input transform on tiles ``[0, n_tiles)`` of ``x`` and fails once the adjoint's rows are mirrored."""
    c = x.shape[1]
    th, tw = scheme.tiles(*x.shape[2:])
    v = np.empty((scheme.positions, c, n_tiles))
    dv = rng.standard_normal(v.shape)
    wk.input_transform(x, 0, c, 0, n_tiles, th, tw, v)
    dx = np.zeros_like(x)
    wk.input_transform_adjoint(dv, 0, c, 0, n_tiles, th, tw, dx)
    assert abs(np.sum(v * dv) - np.sum(x * dx)) < 1e-10 * (1 + abs(np.sum(v * dv)))
    assert abs(np.sum(v * dv) - np.sum(x * dx[:, :, ::-1])) > 1e-3                 # rows mirrored: caught


def check_adjoints_are_transposes(scheme: Scheme, wk: ModuleType, shape: tuple, span,
                                  rng: np.random.Generator) -> None:
    """``<T a, c> == <a, T^T c>`` for ``wk``'s input, output and filter transforms and their adjoints."""
    q_pos = scheme.positions
    n_img, c, h, w = shape
    th, tw, p0, p1 = _span(scheme, shape, span)
    q = p1 - p0
    x, dv = rng.standard_normal(shape), rng.standard_normal((q_pos, c, q))
    v = np.empty((q_pos, c, q))
    wk.input_transform(x, 0, c, p0, p1, th, tw, v)
    dx = np.zeros(shape)
    wk.input_transform_adjoint(dv, 0, c, p0, p1, th, tw, dx)
    assert abs(np.sum(v * dv) - np.sum(x * dx)) < 1e-10 * (1 + abs(np.sum(v * dv)))
    f = 2
    mm, dout = rng.standard_normal((q_pos, f, q)), rng.standard_normal((n_img, f, h, w))
    out = np.zeros((n_img, f, h, w))
    wk.output_transform(mm, np.zeros(f), 0, f, p0, p1, th, tw, out)    # tiles outside [p0, p1) stay 0
    dm = np.empty((q_pos, f, q))
    wk.output_transform_adjoint(dout, 0, f, p0, p1, th, tw, dm)
    assert abs(np.sum(out * dout) - np.sum(mm * dm)) < 1e-10 * (1 + abs(np.sum(mm * dm)))
    wts, du = rng.standard_normal((f, c, 3, 3)), rng.standard_normal((q_pos, f, c))
    u, dw = np.empty((q_pos, f, c)), np.empty((f, c, 3, 3))
    wk.filter_transform(wts, 0, f, u)
    wk.filter_transform_adjoint(du, 0, f, dw)
    assert abs(np.sum(u * du) - np.sum(wts * dw)) < 1e-12 * (1 + abs(np.sum(u * du)))


# ---------------------------------------------------------------- the whole convolution

def check_agrees_with(algo: str, case: tuple, refs: tuple[str, ...], rng: np.random.Generator):
    """``algo``'s forward equals every algorithm in ``refs`` to 1e-10 on a ``case`` (N, C, H, W, F) input,
    and its backward equals ``refs[0]``'s; returns ``algo``'s cache."""
    x, w, b = conv_inputs(rng, *case)
    out, cache = ops.conv2d_forward(x, w, b, algo=algo)
    out_r, cache_r = ops.conv2d_forward(x, w, b, algo=refs[0])
    assert out.shape == out_r.shape == (case[0], case[4], case[2], case[3])
    for ref in refs[1:]:
        assert max_diff(out, ops.conv2d_forward(x, w, b, algo=ref)[0]) < 1e-10, ref
    assert max_diff(out, out_r) < 1e-10
    dout = rng.standard_normal(out.shape)
    for g, g_r in zip(ops.conv2d_backward(dout, cache), ops.conv2d_backward(dout, cache_r)):
        assert g.shape == g_r.shape
        assert max_diff(g, g_r) < 1e-10
    return cache


def gradient_report(algo: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, name: str | None = None
                    ) -> GradCheckReport:
    """Finite-difference check of ``conv2d`` with ``algo`` in float64 (linear op: ``h = LINEAR_H``)."""
    return check_op(lambda x, w, b: ops.conv2d_forward(x, w, b, algo=algo), ops.conv2d_backward,
                    {"x": x, "w": w, "b": b}, h=LINEAR_H, name=name)


def gradient_report_with_backward(monkeypatch, algo: str, forward, backward, x, w, b) -> GradCheckReport:
    """:func:`gradient_report` with ``algo``'s backward replaced by ``backward`` (for a negative control)."""
    monkeypatch.setitem(conv_mod.ALGORITHMS, algo, (forward, backward))
    return gradient_report(algo, x, w, b)


def check_blocked_paths_match_im2col(monkeypatch, wmod: ModuleType, algo: str, nthreads: int,
                                     rng: np.random.Generator) -> None:
    """Tiny block budgets in ``wmod`` force many tile blocks that straddle images and tile rows, through
    the pipelined forward (one block per thread at a time), the phase-parallel one and a many-block
    backward; every path must equal im2col to 1e-10 on a (3, 5, 17, 13) input."""
    if nthreads > threads.available_cores():
        pytest.skip("needs 2 cores")
    x, w, b = conv_inputs(rng, 3, 5, 17, 13, 4)
    ref, cache_i = ops.conv2d_forward(x, w, b, algo="im2col")
    dout = rng.standard_normal(ref.shape)
    ref_grads = ops.conv2d_backward(dout, cache_i)
    for budget in ("PIPELINE_BLOCK_BYTES", "FORWARD_BLOCK_BYTES"):
        with monkeypatch.context() as m:
            for name in ("PIPELINE_BLOCK_BYTES", "FORWARD_BLOCK_BYTES", "BACKWARD_BLOCK_BYTES"):
                m.setattr(wmod, name, 1 if name in (budget, "BACKWARD_BLOCK_BYTES") else 2**40)
            m.setattr(wmod, "_MIN_WORK_PER_THREAD", 1)   # split even tiny blocks over threads
            with threads.limit_threads(nthreads):
                out, cache = ops.conv2d_forward(x, w, b, algo=algo)
                grads = ops.conv2d_backward(dout, cache)
        assert max_diff(out, ref) < 1e-10, budget
        for g, r in zip(grads, ref_grads):
            assert max_diff(g, r) < 1e-10, budget


def check_matches_torch(algo: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> None:
    """Forward and all three gradients of ``algo`` equal torch's float64 conv2d (stride 1, pad 1) to 1e-10."""
    torch = pytest.importorskip("torch")
    out, cache = ops.conv2d_forward(x, w, b, algo=algo)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=1, padding=1)
    tout.backward(torch.from_numpy(dout))
    assert max_diff(out, tout.detach().numpy()) < 1e-10
    for mine, theirs in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        assert max_diff(mine, theirs.numpy()) < 1e-10
