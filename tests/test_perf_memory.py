"""Memory behaviour, thread control and the benchmark's plumbing -- nothing here times anything."""

from __future__ import annotations

import gc
import json
import tracemalloc

import numba
import numpy as np
import pytest

from minivgg import VGG, ops
from minivgg import bench
from minivgg.kernels import _parallel as threads
from minivgg.cli import main as cli_main
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
    cols = n * c * 9 * h * w * 4                                          # by hand: (N, 9C, HW) float32
    assert conv_mod.workspace_bytes(x.shape, wt.shape, 1, 1, 4, "im2col") == cols
    ops.conv2d_forward(x, wt, b, algo="im2col")
    peak, (out, _) = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="im2col"))
    assert cols <= peak - out.nbytes <= cols + SLACK


def test_training_batch_builds_im2col_columns_in_chunks(monkeypatch):
    n, c, h, w, f = 6, 4, 16, 16, 4
    x = RNG.standard_normal((n, c, h, w))
    wt, b = RNG.standard_normal((f, c, 3, 3)), RNG.standard_normal(f)
    one_image = c * 9 * h * w * 8
    monkeypatch.setattr(im2col_mod, "WORKSPACE_BYTES", 2 * one_image)       # 2 images per chunk
    out, cache = ops.conv2d_forward(x, wt, b, algo="im2col")
    dout = RNG.standard_normal(out.shape)
    peak_f, _ = _peak_above_baseline(lambda: ops.conv2d_forward(x, wt, b, algo="im2col"))
    peak_b, _ = _peak_above_baseline(lambda: ops.conv2d_backward(dout, cache))
    assert peak_f <= out.nbytes + 2 * one_image + SLACK
    assert peak_b <= x.nbytes + 2 * one_image + SLACK                     # dx + one chunk of columns
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
def test_parallel_matmul_equals_matmul(shape_a, shape_b):
    a, b = RNG.standard_normal(shape_a), RNG.standard_normal(shape_b)
    expected = a @ b
    out = np.empty_like(expected)
    before = _settings()
    threads.parallel_matmul(a, b, out, min_cols=4)
    assert _settings() == before               # BLAS back to its thread count
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- benchmark plumbing (no timing asserted)

def test_bench_runners_on_a_tiny_model_return_complete_records(tmp_path):
    model = _small_vgg()
    rows = bench.bench_layers(model, 1, repeats=1, warmup=0)
    assert [r["name"] for r in rows] == model.layers.names()
    conv_rows = [r for r in rows if r["kind"] == "conv"]
    assert all(r["algo"] in ("im2col", "winograd") and r["macs"] > 0 and r["train"]["median_s"] > 0
               for r in conv_rows)
    spec = model.specs[0]  # conv1_1: 64*64 outputs * 16 filters * 27
    assert rows[0]["macs"] == 224 * 224 * spec.out_channels * 27
    race = bench.conv_race(model.specs, 1, repeats=1, warmup=0, use_torch=False)
    assert len(race) == len({(s.in_shape, s.out_channels) for s in model.specs if s.kind == "conv"})
    for row in race:
        assert row["winner"] in row["times"] and "torch" not in row["times"]
        assert ("naive" in row["times"]) == (row["macs"] <= bench.NAIVE_MAX_MACS)
    res = {"arch": "vgg16", "machine": bench.machine_info(1), "sgemm": {"gflops": 100.0},
           "sgemm_end": {"gflops": 100.0}, "layers": rows, "race": race}
    text = bench.format_report(res)
    assert "conv1_1" in text and "% of sgemm" in text and "winner" in text
    json.loads(bench.to_json(res))
    pytest.importorskip("matplotlib")
    path = tmp_path / "layers.png"
    bench.plot_report(res, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["layers.png"]  # no temp file left behind


def test_conv_accuracy_reports_fp32_errors_of_both_algorithms():
    acc = bench.conv_accuracy((1, 8, 10, 10), (8, 8, 3, 3))
    for algo in ("im2col", "winograd"):
        for k in ("out", "dx", "dw"):
            assert 0 < acc[algo][k]["rms_rel"] <= acc[algo][k]["max_rel"] < 1e-5


@pytest.mark.parametrize("argv,message", [
    (["bench", "--model", "vgg99"], "unknown model"),
    (["bench", "--batch", "0"], "argument --batch: expected a positive integer"),
    (["bench", "--train-batch", "-2"], "argument --train-batch: expected a positive integer"),
    (["bench", "--threads", str(threads.available_cores() + 1)], "impossible"),
    (["bench", "--threads", "0"], "impossible"),
    (["bench", "--threads", "two"], "expects integers"),
    (["bench", "--parts", "model,gpu"], "unknown"),
])
def test_bench_cli_bad_input_exits_2(argv, message, capsys):
    before = _settings()
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # numbers are checked by argparse (minivgg.cli._common), which exits itself
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert _settings() == before


def test_bench_run_validates_before_doing_any_work():
    before = _settings()
    for kwargs in ({"arch": "resnet"}, {"batch": 0}, {"num_threads": 0}, {"parts": ("model", "gpu")},
                   {"parts": ("memory",)}, {"memory": {"kept_bytes": 1}}, {"memory": {"inference_peak_bytes": 1.5}}):
        with pytest.raises(ValueError):
            bench.run(**kwargs)
    assert _settings() == before


def test_bench_memory_section_sets_measure_memory_against_the_bound():
    from minivgg.analysis.measure import measure_memory
    from minivgg.bench import runners

    model = _small_vgg()
    measured = measure_memory(model, 1)
    record = runners._memory_record(model, measured)
    bound = bench.memory_bound(model, 1)
    assert record["peak_bytes"] == measured["inference_peak_bytes"] > 0
    assert record["bound_bytes"] == 3 * bound["largest_activation_bytes"] + bound["max_workspace_bytes"]
    assert record["ratio_to_bound"] == record["peak_bytes"] / record["bound_bytes"]
    res = {"arch": "vgg16", "machine": bench.machine_info(1), "sgemm": {"gflops": 100.0},
           "sgemm_end": {"gflops": 100.0}, "memory": record}
    assert "of the bound" in bench.format_report(res)


def test_measure_pair_interleaves_and_reports_the_median_ratio(monkeypatch):
    from minivgg.bench import timing

    clock = [0.0]
    calls = []

    def make(name, cost):
        def fn():
            calls.append(name)
            clock[0] += cost
        return fn

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    ta, tb, ratio = timing.measure_pair(make("a", 2.0), make("b", 1.0), repeats=4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then alternating order
    assert ta.runs == [2.0] * 4 and tb.runs == [1.0] * 4
    assert ratio == 2.0


@pytest.mark.parametrize("use_torch", [False, True])
def test_bench_model_runs_with_and_without_the_torch_twin(use_torch):
    """The whole-model runner works on a tiny net (no time is asserted, only what it reports)."""
    from minivgg import VGG, bench

    if use_torch:
        pytest.importorskip("torch")
    model = VGG("vgg11", num_classes=10, input_size=32, width=0.0625, fc_width=16)
    res = bench.bench_model(model, 1, train_batch=2, repeats=1, warmup=0, use_torch=use_torch)
    assert res["macs_per_image"] == sum(s.macs for s in model.specs) > 0
    assert ("ratio_forward" in res and "torch" in res) == use_torch
