"""The benchmark's plumbing: fresh-process comparisons, workloads, roofline, report -- nothing here times anything.

Speed is never asserted. What is tested: that the comparison alternates and
stops only when the ratios agree (with a fake worker and made-up times), that
each workload really runs the work it names, that the roofline puts each layer
on the right side with hand-computed figures, and that the command line
rejects bad arguments before doing any work.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numba
import numpy as np
import pytest

from minivgg import bench
from minivgg.bench import isolated, workloads
from minivgg.cli import main as cli_main
from minivgg.cli._bench_worker import WORKER, optimizer_factory
from minivgg.configs import VGGConfig
from minivgg.kernels import _parallel as threads

TINY = VGGConfig.from_arch("vgg11", num_classes=4, input_size=32, width=0.0625, fc_width=16).to_dict()


def _settings():
    return threads.get_num_threads(), numba.get_num_threads(), [d["num_threads"] for d in threads.blas_info()]


# ----------------------------------------------------------------- fresh-process comparison (fake workers)

def _fake(times: dict[str, list[float]], calls: list):
    """A ``run(request)`` that returns, per library, the next made-up time, and records the call order."""
    it = {lib: iter(ts) for lib, ts in times.items()}

    def run(req):
        calls.append(req["lib"])
        return {"runs_s": [next(it[req["lib"]])]}

    return run


def test_compare_alternates_order_and_stops_once_ratios_agree():
    calls: list = []
    # ratios per round: 2.0, 1.0, 1.02, 1.01 -> rounds 2..4 agree within 10%, so it stops after round 4
    run = _fake({"minivgg": [2.0, 1.0, 1.02, 1.01, 9.0, 9.0], "torch": [1.0] * 6}, calls)
    res = isolated.compare({"workload": "forward"}, [], run=run, min_rounds=3, max_rounds=6, target_spread=0.1)
    assert calls == ["minivgg", "torch", "torch", "minivgg", "minivgg", "torch", "torch", "minivgg"]
    assert res["rounds"] == 4 and res["converged"]
    assert res["ratio"]["per_round"] == [2.0, 1.0, 1.02, 1.01]
    assert res["ratio"]["median"] == pytest.approx(1.015)
    assert res["minivgg"]["median_s"] == pytest.approx(1.015) and res["torch"]["median_s"] == 1.0


def test_compare_says_when_the_ratios_never_settle():
    calls: list = []
    run = _fake({"minivgg": [1.0, 2.0, 1.0, 2.0], "torch": [1.0] * 4}, calls)
    res = isolated.compare({"workload": "forward"}, [], run=run, min_rounds=2, max_rounds=4)
    assert res["rounds"] == 4 and not res["converged"]  # negative control: a ±100% swing is not a result
    assert res["ratio"]["spread"] == pytest.approx(1 / 1.5)


def test_compare_layers_takes_the_median_over_rounds_per_layer():
    seq = iter([{"a": [1.0], "b": [4.0]}, {"a": [2.0], "b": [2.0]}, {"a": [3.0], "b": [6.0]},
                {"a": [1.0], "b": [2.0]}])
    res = isolated.compare_layers({"config": TINY}, [], libs=("minivgg", "torch"), rounds=2,
                                  run=lambda req: {"layers": next(seq)})
    # round 0: minivgg {a:1,b:4}, torch {a:2,b:2}; round 1 (reversed): torch {a:3,b:6}, minivgg {a:1,b:2}
    a, b = res["layers"]
    assert (a["minivgg_s"], a["torch_s"], a["ratio"]) == (1.0, 2.5, 0.4)
    assert (b["minivgg_s"], b["torch_s"]) == (3.0, 4.0)


def test_child_env_sets_every_thread_knob_and_keeps_the_rest():
    env = isolated.child_env(3, {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "8"})
    assert env == {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3",
                   "OPENBLAS_NUM_THREADS": "3"}


def test_run_worker_reports_a_failing_child_with_its_stderr():
    def runner(cmd, **kw):
        assert json.loads(cmd[-1])["lib"] == "minivgg" and kw["env"]["OMP_NUM_THREADS"] == "1"
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Traceback...\nMemoryError: boom")

    with pytest.raises(isolated.WorkerError, match="(?s)minivgg forward failed.*MemoryError: boom"):
        isolated.run_worker({"lib": "minivgg", "workload": "forward", "config": TINY, "batch": 1, "threads": 1},
                            [], runner=runner)


@pytest.mark.parametrize("bad,message", [
    ({"lib": "jax"}, "lib must be one of"),
    ({"workload": "inference"}, "workload must be one of"),
    ({"batch": 0}, "batch must be an int >= 1"),
    ({"threads": True}, "threads must be an int"),
    ({"config": {"arch": "vgg11", "layers": [1, "Q"]}}, "architecture record"),
])
def test_check_request_rejects_bad_requests(bad, message):
    req = {"lib": "minivgg", "workload": "forward", "config": TINY, "batch": 1, **bad}
    with pytest.raises((ValueError, TypeError), match=message):
        workloads.check_request(req)


# ----------------------------------------------------------------- the workloads run the real work

@pytest.mark.parametrize("workload", ["forward", "train_step", "epoch", "layers"])
def test_minivgg_workloads_run_and_restore_thread_settings(workload):
    before = _settings()
    req = {"lib": "minivgg", "workload": workload, "config": TINY, "batch": 4, "threads": 1, "repeats": 2,
           "warmup": 0, "epoch_images": 10, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    res = workloads.run_request(req, optimizer_factory)
    assert _settings() == before
    if workload == "layers":
        assert list(res["layers"]) == [s.name for s in VGGConfig.from_dict(TINY).specs()]
        assert all(len(v) == 2 and min(v) > 0 for v in res["layers"].values())
    else:
        assert len(res["runs_s"]) == 2 and min(res["runs_s"]) > 0
    if workload == "epoch":  # 10 images at batch 4: two full batches are timed
        assert res["images_per_s"] == pytest.approx(8 / np.median(res["runs_s"]))


def test_train_step_workload_really_updates_the_weights():
    from minivgg.vgg import VGG

    model = VGG(VGGConfig.from_dict(TINY), seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    step = optimizer_factory(model.params, {"name": "adam", "lr": 1e-3, "weight_decay": 5e-4})
    _, grads = model.loss(np.ones((2, 3, 32, 32), np.float32), np.array([0, 1]))
    step(grads)
    assert all(not np.array_equal(before[k], v) for k, v in model.params.items() if k.endswith(".w"))
    with pytest.raises(ValueError, match="no optimizer_factory"):
        workloads.run_request({"lib": "minivgg", "workload": "train_step", "config": TINY, "batch": 2,
                               "threads": 1, "repeats": 1, "warmup": 0, "optimizer": {"name": "sgd", "lr": 1.0}})


@pytest.mark.parametrize("workload", ["forward", "train_step", "layers"])
def test_torch_workloads_run_the_same_network(workload):
    pytest.importorskip("torch")
    req = {"lib": "torch", "workload": workload, "config": TINY, "batch": 2, "threads": 1, "repeats": 1,
           "warmup": 0, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}}
    res = workloads.run_request(req)
    if workload == "layers":
        assert list(res["layers"]) == [s.name for s in VGGConfig.from_dict(TINY).specs()]
    else:
        assert res["runs_s"][0] > 0


def test_worker_process_prints_one_json_result_and_exits_2_on_a_bad_request():
    req = {"lib": "minivgg", "workload": "forward", "config": TINY, "batch": 1, "threads": 1, "repeats": 1,
           "warmup": 0}
    res = isolated.run_worker(req, WORKER)
    assert res["request"]["workload"] == "forward" and len(res["runs_s"]) == 1
    bad = subprocess.run([*WORKER, json.dumps({**req, "lib": "jax"})], capture_output=True, text=True)
    assert bad.returncode == 2 and "lib must be one of" in bad.stderr and "Traceback" not in bad.stderr
    assert WORKER[0] == sys.executable


# ----------------------------------------------------------------- roofline, by hand

def test_roofline_puts_fc6_on_memory_and_conv3_2_on_compute():
    specs = {s.name: s for s in VGGConfig.from_arch("vgg16").specs()}
    fc6 = bench.layer_floor(specs["fc6"], 1, sgemm_gflops=100.0, bandwidth_gbs=20.0)
    # 25088*4096 weights + 4096 biases, plus 25088 inputs and 4096 outputs, float32
    assert fc6["bytes"] == 4 * (25088 * 4096 + 4096 + 25088 + 4096)
    assert fc6["bound"] == "memory" and fc6["floor_s"] == pytest.approx(fc6["bytes"] / 20e9)
    conv = bench.layer_floor(specs["conv3_2"], 1, sgemm_gflops=100.0, bandwidth_gbs=20.0)
    assert conv["flops"] == 2 * 56 * 56 * 256 * 256 * 9
    assert conv["bound"] == "compute" and conv["floor_s"] == pytest.approx(conv["flops"] / 100e9)
    # negative control: with a slow enough memory the same conv becomes memory-bound
    assert bench.layer_floor(specs["conv3_2"], 1, 100.0, 1e-3)["bound"] == "memory"


def test_model_floors_divide_only_the_3x3_convs_compute_by_the_winograd_saving():
    specs = VGGConfig.from_arch("vgg16").specs()
    fl = bench.model_floors(specs, 1, 100.0, 20.0)
    conv = sum(2 * s.macs / 100e9 for s in specs if s.kind == "conv")
    assert fl["direct_s"] > fl["F(2x2,3x3)_s"] > fl["F(4x4,3x3)_s"] > fl["memory_s"] * 0.5
    assert fl["direct_s"] - fl["F(2x2,3x3)_s"] == pytest.approx(conv * (1 - 1 / 2.25), rel=1e-2)
    rows = bench.roofline(specs, 1, 100.0, 20.0, {"fc6": 0.04})
    fc6 = next(r for r in rows if r["name"] == "fc6")
    assert fc6["fraction"] == pytest.approx(fc6["floor_s"] / 0.04)
    assert "fraction" not in rows[0]


# ----------------------------------------------------------------- the suite, the report, the command

def _fake_result():
    cmp = {"rounds": 3, "converged": True, "target_spread": 0.1, "request": {"batch": 1, "epoch_images": 64},
           "minivgg": {"median_s": 0.1, "spread": 0.05, "images_per_s": 640.0},
           "torch": {"median_s": 0.2, "spread": 0.04, "images_per_s": 320.0},
           "ratio": {"median": 0.5, "spread": 0.03, "per_round": [0.5] * 3}}
    specs = VGGConfig.from_arch("vgg16").specs()
    layers = [{"name": s.name, "kind": s.kind, "minivgg_s": 1e-3, "torch_s": 2e-3, "ratio": 0.5,
               "bound": "compute", "floor_s": 5e-4, "minivgg_fraction": 0.5, "torch_fraction": 0.25}
              for s in specs]
    rec = {"threads": 1, "sgemm": {"gflops": 100.0}, "sgemm_end": {"gflops": 100.0},
           "blas": [{"internal_api": "openblas", "version": "0.3", "architecture": "Haswell"}],
           "floors": {"forward": bench.model_floors(specs, 1, 100.0, 20.0), "batch": 1},
           "forward": cmp, "train": cmp, "small_step": cmp, "small_epoch": cmp, "small_label": "tiny",
           "layers": {"rounds": 3, "layers": layers}}
    res = {"arch": "vgg16", "libs": ["minivgg", "torch"], "machine": bench.machine_info(1),
           "bandwidth": {"read_gbs": 20.0, "copy_gbs": 30.0, "mbytes": 256}, "runs": [rec, {**rec, "threads": 2}]}
    res["runs"][1] = {**rec, "threads": 2, "small_step": {**cmp, "minivgg": {**cmp["minivgg"], "median_s": 0.3}}}
    res["verdicts"] = bench.verdicts(res)
    return res


def test_verdicts_compare_each_target_and_catch_a_slower_second_thread():
    v = {x["what"]: x for x in _fake_result()["verdicts"]}
    assert v["forward, 1 thread"]["met"] and v["forward, 1 thread"]["ratio"] == 0.5
    assert v["forward+backward, 2 threads"]["target"] == 0.9
    # the fake 2-thread step (0.3 s) is slower than the 1-thread one (0.1 s): that target fails
    slower = v["small-net step, 2 threads / 1 thread"]
    assert slower["ratio"] == pytest.approx(3.0) and not slower["met"]


def test_format_report_json_and_plot_of_a_result(tmp_path):
    res = _fake_result()
    text = bench.format_report(res)
    for needle in ("fresh process", "kernel=Haswell", "20.0 GB/s", "0.50x", "images/s: minivgg 640",
                   "floor: direct", "NOT met", "conv5_3"):
        assert needle in text, needle
    json.loads(bench.to_json(res))
    pytest.importorskip("matplotlib")
    path = tmp_path / "layers.png"
    bench.plot_report(res, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["layers.png"]


def test_in_process_parts_run_on_a_tiny_model():
    from minivgg import VGG

    model = VGG("vgg11", num_classes=4, input_size=32, width=0.0625, fc_width=16)
    rows = bench.bench_layers(model, 1, repeats=1, warmup=0)
    assert [r["name"] for r in rows] == model.layers.names()
    race = bench.conv_race(model.specs, 1, repeats=1, warmup=0)
    assert all(row["winner"] in row["times"] and "torch" not in row["times"] for row in race)
    acc = bench.conv_accuracy((1, 8, 10, 10), (8, 8, 3, 3))
    for algo in ("im2col", "winograd"):
        for k in ("out", "dx", "dw"):
            assert 0 < acc[algo][k]["rms_rel"] <= acc[algo][k]["max_rel"] < 1e-5


def test_memory_record_sets_measure_memory_against_the_bound():
    from minivgg import VGG
    from minivgg.analysis.measure import measure_memory

    model = VGG("vgg11", num_classes=4, input_size=64, width=0.125, fc_width=16)
    measured = measure_memory(model, 1)
    record = bench.memory_record(model, measured)
    bound = bench.memory_bound(model, 1)
    assert record["peak_bytes"] == measured["inference_peak_bytes"] > 0
    assert record["bound_bytes"] == 3 * bound["largest_activation_bytes"] + bound["max_workspace_bytes"]
    assert "of the bound" in bench.format_report({"arch": "vgg11", "memory": record})
    with pytest.raises(ValueError, match="measure_memory returns"):
        bench.memory_record(model, {"kept_bytes": 1})


def test_suite_run_validates_before_doing_any_work():
    before = _settings()
    for kwargs in ({"arch": "resnet"}, {"batch": 0}, {"thread_counts": [0]}, {"parts": ("model", "gpu")},
                   {"parts": ("model",)}, {"parts": ("small",), "worker": ["x"]},
                   {"min_rounds": 4, "max_rounds": 2, "parts": ("race",)}):
        with pytest.raises(ValueError):
            bench.run(**kwargs)
    assert _settings() == before


@pytest.mark.parametrize("argv,message", [
    (["bench", "--model", "vgg99"], "unknown"),
    (["bench", "--batch", "0"], "positive integer"),
    (["bench", "--train-batch", "-2"], "positive integer"),
    (["bench", "--threads", str(threads.available_cores() + 1)], "impossible"),
    (["bench", "--threads", "0"], "impossible"),
    (["bench", "--threads", "two"], "expects integers"),
    (["bench", "--parts", "model,gpu"], "unknown"),
    (["bench", "--rounds", "5", "--max-rounds", "3"], "more than --max-rounds"),
    (["bench", "--target-spread", "nan"], "a number > 0"),
    (["bench", "--plot", "x.txt"], "expected a file name ending in"),
    (["bench", "--plot", "/nonexistent/dir/x.png"], "/nonexistent/dir"),
])
def test_bench_cli_bad_input_exits_2(argv, message, capsys):
    before = _settings()
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert _settings() == before


def test_bench_cli_race_only_prints_the_report(capsys):
    assert cli_main(["bench", "--model", "vgg11", "--threads", "1", "--parts", "accuracy", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "fp32 error vs float64" in out and "kernel=" in out


def test_only_the_epoch_workload_draws_the_epoch_images():
    # 100,000 tiny images would be 1.2 GB; a forward request must not allocate them
    import tracemalloc

    req = {"lib": "minivgg", "workload": "forward", "config": TINY, "batch": 1, "threads": 1, "repeats": 1,
           "warmup": 0, "epoch_images": 100_000}
    tracemalloc.start()
    try:
        workloads.run_request(req)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
