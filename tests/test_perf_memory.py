"""Memory behaviour and thread control -- nothing here times anything (the benchmark's plumbing: test_bench.py)."""

from __future__ import annotations

import gc
import tracemalloc

import numba
import numpy as np
import pytest

from minivgg import VGG, ops
from minivgg.kernels import _parallel as threads
from minivgg.ops import conv as conv_mod
from minivgg.ops.conv import im2col as im2col_mod
from minivgg.ops.conv import winograd as wmod

RNG = np.random.default_rng(7)
SLACK = 256 * 1024  # small temporaries (bias views, Python objects, per-thread 4x4 scratch)


def _peak_above_baseline(fn) -> tuple[int, object]:
    """Peak bytes allocated while ``fn()`` runs, above what was live before; returns (peak, result)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, result


def _small_vgg(**kw):
    # full 224x224 geometry at a quarter of the channels: activations, not weights, dominate memory
    return VGG("vgg16", num_classes=10, input_size=224, width=0.25, fc_width=64, **kw)


# ----------------------------------------------------------------- inference memory

def _issue_bound(model, batch=1):
    """3 x largest activation + largest conv workspace, computed from the specs."""
    item = np.dtype(model.dtype).itemsize
    act = max(batch * int(np.prod(s.out_shape)) for s in model.specs) * item
    work = max(conv_mod.workspace_bytes((batch, *s.in_shape), (s.out_channels, s.in_channels, 3, 3), 1, 1, item)
               for s in model.specs if s.kind == "conv")
    return act, work


def test_inference_peak_is_within_three_activations_plus_workspace():
    model = _small_vgg()
    x = RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)
    model.forward(x)  # load kernels, first-call allocations
    peak, _ = _peak_above_baseline(lambda: model.forward(x))
    act, work = _issue_bound(model)
    assert peak <= 3 * act + work
    assert peak >= act  # sanity: the measurement sees at least the largest activation


def test_the_memory_check_fails_when_activations_are_kept():
    # negative control: a train-mode forward keeps every activation and must blow the same bound
    model = _small_vgg()
    x = RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)
    model.forward(x)
    peak, _ = _peak_above_baseline(lambda: model.forward(x, train=True))
    model.layers.clear_caches()
    act, work = _issue_bound(model)
    assert peak > 3 * act + work


def test_inference_keeps_no_caches():
    model = _small_vgg()
    model.forward(RNG.standard_normal((1, 3, 224, 224)).astype(np.float32))
    assert all(layer._cache is None for layer in model.layers)


# ----------------------------------------------------------------- conv workspace

def test_im2col_workspace_formula_and_measurement_agree():
    n, c, h, w, f = 2, 8, 20, 20, 4
    x = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = np.zeros(f, np.float32)
    cols = n * c * 9 * h * w * 4                                          # by hand: (9C, N*HW) float32
    padded = n * c * (h + 2) * (w + 2) * 4                                # the padded input the loops read
    product = n * f * h * w * 4                                           # (F, N*HW) before the transpose
    assert conv_mod.workspace_bytes(x.shape, wt.shape, 1, 1, 4, "im2col") == cols + padded + product
    ops.conv2d_forward(x, wt, b, algo="im2col")
    peak, (out, _) = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="im2col"))
    assert cols + padded + product <= peak - out.nbytes <= cols + padded + product + SLACK


def test_training_batch_builds_im2col_columns_in_chunks(monkeypatch):
    n, c, h, w, f = 6, 4, 16, 16, 4
    x = RNG.standard_normal((n, c, h, w))
    wt, b = RNG.standard_normal((f, c, 3, 3)), RNG.standard_normal(f)
    one_image = c * 9 * h * w * 8
    # per chunk of 2 images besides the columns: the padded input and the (F, 2*HW) product / gradient
    extra = 2 * c * (h + 2) * (w + 2) * 8 + 2 * f * h * w * 8
    monkeypatch.setattr(im2col_mod, "WORKSPACE_BYTES", 2 * one_image)       # 2 images per chunk
    out, cache = ops.conv2d_forward(x, wt, b, algo="im2col")
    dout = RNG.standard_normal(out.shape)
    peak_f, _ = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="im2col"))
    peak_b, _ = _peak_above_baseline(lambda: ops.conv2d_backward(dout, cache))
    assert peak_f <= out.nbytes + 2 * one_image + extra + SLACK
    assert peak_b <= x.nbytes + 2 * one_image + extra + SLACK             # dx + one chunk of columns
    # negative control: without the bound the same call holds all six images' columns at once
    monkeypatch.setattr(im2col_mod, "WORKSPACE_BYTES", 2**40)
    peak_all, _ = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="im2col"))
    assert peak_all > out.nbytes + 2 * one_image + SLACK


@pytest.mark.parametrize("nthreads", [1, 2])
def test_winograd_workspace_is_bounded_by_its_blocks(nthreads):
    if nthreads > threads.available_cores():
        pytest.skip("needs 2 cores")
    n, c, h, w, f = 2, 32, 112, 112, 32
    x = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = np.zeros(f, np.float32)
    with threads.limit_threads(nthreads):
        ops.conv2d_forward(x, wt, b, algo="winograd")
        peak, (out, _) = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="winograd"))
        reported = conv_mod.workspace_bytes(x.shape, wt.shape, 1, 1, 4, "winograd")
    # by hand: U (16, F, C) plus at most max(one 4 MiB block, one 2 MiB block per thread) of V and M
    bound = 16 * f * c * 4 + max(wmod.FORWARD_BLOCK_BYTES, nthreads * wmod.PIPELINE_BLOCK_BYTES)
    assert reported <= bound
    assert peak - out.nbytes <= bound + SLACK
    # negative control: V and M for every tile at once (4x input + 4x output) is far above that bound
    full = 16 * (c + f) * n * (h // 2) * (w // 2) * 4
    assert full > 4 * (bound + SLACK)


# ----------------------------------------------------------------- threads

def _settings():
    blas = [d["num_threads"] for d in threads.blas_info()]
    return threads.get_num_threads(), numba.get_num_threads(), blas


def test_limit_threads_sets_and_restores_every_knob():
    before = _settings()
    with threads.limit_threads(1) as n:
        assert n == 1
        mine, nb, blas = _settings()
        assert mine == 1 and nb == 1 and all(t == 1 for t in blas)
    assert _settings() == before
    with pytest.raises(RuntimeError):
        with threads.limit_threads(1):
            raise RuntimeError("boom")
    assert _settings() == before


@pytest.mark.parametrize("bad", [0, -1, threads.available_cores() + 1, 1.5, True, "2"])
def test_impossible_thread_counts_are_refused_without_changing_anything(bad):
    before = _settings()
    with pytest.raises(ValueError, match="thread count"):
        with threads.limit_threads(bad):
            pass
    with pytest.raises(ValueError, match="thread count"):
        threads.set_num_threads(bad)
    assert _settings() == before


def test_parallel_for_covers_the_range_once_and_reraises():
    seen = np.zeros(1000, dtype=int)

    def mark(lo, hi):
        seen[lo:hi] += 1

    threads.parallel_for(mark, 1000)
    assert np.all(seen == 1)

    def fail(lo, hi):
        raise KeyError("worker")

    with pytest.raises(KeyError):
        threads.parallel_for(fail, 1000)


@pytest.mark.parametrize("shape_a,shape_b", [((16, 8, 5), (16, 5, 300)), ((8, 5), (1, 5, 300)),
                                             ((8, 5), (5, 3)), ((2, 7, 9), (9, 200))])
def test_parallel_matmul_equals_matmul(shape_a, shape_b, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_MACS", 0)  # split even these small products
    a, b = RNG.standard_normal(shape_a), RNG.standard_normal(shape_b)
    expected = a @ b
    out = np.empty_like(expected)
    before = _settings()
    with threads.limit_threads(threads.available_cores()):
        threads.parallel_matmul(a, b, out, min_cols=4)
    assert _settings() == before               # BLAS back to its thread count
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_parallel_matmul_keeps_small_products_on_the_calling_thread(monkeypatch):
    if threads.available_cores() < 2:
        pytest.skip("needs 2 cores to have anything to split")
    calls = []
    monkeypatch.setattr(threads, "parallel_for", lambda fn, total, grain=1: calls.append(total) or fn(0, total))
    a, b = RNG.standard_normal((64, 576)), RNG.standard_normal((576, 128))   # 64*128*576 = 4.7M MACs
    with threads.limit_threads(2):
        threads.parallel_matmul(a[:8], b, np.empty((8, 128)))                 # 0.6M MACs: inline
        assert calls == []
        threads.parallel_matmul(a, b, np.empty((64, 128)))                    # 4.7M MACs: split
    assert calls == [128]
