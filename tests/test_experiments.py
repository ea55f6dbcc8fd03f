"""``minivgg experiment``: the result record, the registry, each experiment on tiny knobs, the command.

Every experiment runs here at a toy scale (64 training images, 1 epoch, 1/16
width), so the accuracies mean nothing; what is checked is what the table
claims about them: the rows name the right configs, the counts equal the
configs' own, the reported ensemble accuracy is the one its stored member
probabilities give, and so on -- each recomputed here, not read back.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys

import numpy as np
import pytest

from minivgg.analysis.counts import summarize
from minivgg.cli import main
from minivgg.configs import VGGConfig
from minivgg.training import experiments
from minivgg.training.experiments import ExperimentResult, depth, ensemble, lrn, recipe, transfer

TINY = dict(n_train=64, n_val=40, epochs=1, width=1 / 16, fc_width=16)


def _cfg(arch: str, classes: int = 10) -> VGGConfig:
    """The tiny recipe's architecture, built here from the knobs (not by the code under test)."""
    return VGGConfig.from_arch(arch, num_classes=classes, input_size=32, in_channels=3, width=TINY["width"],
                               fc_width=TINY["fc_width"], dropout=0.0)


# ------------------------------------------------------------------ the result record
def _result(**kw) -> ExperimentResult:
    base = dict(name="demo", title="A demo", columns=["config", "acc", "params"],
                rows=[["A", 0.91234, 1234567], ["B", 0.5, 12]], paper="paper: 1%", verdict="fine.", quick=True)
    return ExperimentResult(**{**base, **kw})


def test_result_table_formats_cells_and_ends_with_paper_and_verdict():
    r = _result(notes=["shapes, not ImageNet"])
    lines = r.table().splitlines()
    assert lines[0] == "A demo  (quick)"
    assert lines[1].split() == ["config", "acc", "params"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].split() == ["A", "0.9123", "1,234,567"]
    assert lines[-3:] == ["paper: paper: 1%", "here:  fine.", "note:  shapes, not ImageNet"]


def test_result_json_round_trips():
    r = _result(data={"x": [1.5, 2]})
    back = json.loads(json.dumps(r.to_json()))
    assert ExperimentResult(**back) == r


def test_result_refuses_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"experiment demo: row 1 has 2 cells, expected 3"):
        _result(rows=[["A", 1.0, 3], ["B", 2.0]])


# ------------------------------------------------------------------ the registry
def test_registry_lists_the_experiments_and_each_has_the_interface():
    assert {"lrn", "depth", "ensemble", "transfer"} <= set(experiments.NAMES)
    for name in experiments.NAMES:
        m = experiments.get(name)
        assert isinstance(m.TITLE, str) and m.TITLE
        params = inspect.signature(m.run).parameters
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("quick", "seed", "progress"))
        assert callable(m.plot)


def test_registry_refuses_an_unknown_name():
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'; expected one of .*lrn.*depth"):
        experiments.get("nope")


# ------------------------------------------------------------------ measurements
@pytest.mark.parametrize("arch", ["vgg11", "vgg16"])
def test_kept_bytes_measured_equal_the_analytic_prediction(arch):
    cfg = _cfg(arch)
    from minivgg import VGG

    model = VGG(cfg, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    measured = recipe.kept_bytes_per_image(model, x)
    predicted = summarize(arch, 32, batch=1, width=cfg.width, num_classes=10, fc_width=cfg.fc_width,
                          dropout=0.0).totals.backward_bytes
    assert measured == predicted
    assert all(layer._cache is None for layer in model.layers)  # caches cleared again


def test_kept_bytes_of_lrn_add_exactly_its_denominator():
    from minivgg import VGG

    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    a = recipe.kept_bytes_per_image(VGG(_cfg("vgg11"), seed=0), x)
    b = recipe.kept_bytes_per_image(VGG(_cfg("vgg11-lrn"), seed=0), x)
    norm = next(s for s in _cfg("vgg11-lrn").specs() if s.kind == "lrn")
    assert b - a == 4 * math.prod(norm.out_shape)  # the float32 scale array s; its input is relu1_1's, already kept


def test_recipe_refuses_unknown_fields_and_bad_seeds():
    with pytest.raises(TypeError, match="no field"):
        recipe.pick(True, {"epoch": 3})
    for bad in ([], [1, 1], [-1]):
        with pytest.raises(ValueError, match="seeds"):
            recipe.check_seeds(bad, "lrn")


# ------------------------------------------------------------------ the experiments, tiny
def test_lrn_rows_for_both_configs_with_identical_params():
    messages: list[str] = []
    r = lrn.run(quick=True, seed=3, seeds=[0, 1], progress=messages.append, **TINY)
    assert [row[1] for row in r.rows] == ["vgg11", "vgg11-lrn"]
    col = {c: i for i, c in enumerate(r.columns)}
    params = _cfg("vgg11").num_params
    assert params == _cfg("vgg11-lrn").num_params
    for row, arch in zip(r.rows, ("vgg11", "vgg11-lrn")):
        accs = [run["val_acc"] for run in r.data["runs"][arch]]
        assert [run["seed"] for run in r.data["runs"][arch]] == [0, 1]
        assert row[col["params"]] == params
        assert row[col["runs"]] == 2
        assert row[col["val acc mean"]] == pytest.approx(np.mean(accs))
        assert row[col["sd"]] == pytest.approx(np.std(accs, ddof=1))
        assert 0 <= min(accs) and max(accs) <= 1
    assert row[col["kept KiB / image"]] > r.rows[0][col["kept KiB / image"]]  # LRN keeps its denominator
    diff = r.rows[1][col["val acc mean"]] - r.rows[0][col["val acc mean"]]
    assert f"{diff * 100:+.2f} points" in r.verdict
    assert any("A-LRN seed 1" in m for m in messages) and any("A seed 0" in m for m in messages)
    assert r.name == "lrn" and r.quick
    # the divisor is (k + alpha * window sum)^beta >= k^beta
    assert r.data["lrn_divisor"]["mean"] >= 2 ** 0.75


def test_depth_counts_are_the_configs_and_grow_with_depth():
    r = depth.run(quick=True, seed=0, **TINY)
    col = {c: i for i, c in enumerate(r.columns)}
    assert [row[1] for row in r.rows] == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert [row[col["weight layers"]] for row in r.rows] == [11, 13, 16, 19]
    for row in r.rows:
        cfg = _cfg(row[1])
        assert row[col["params"]] == cfg.num_params
        macs = 0  # counted here from the shapes: H_out * W_out * F * k * k * C per conv, D_in * D_out per dense
        for s in cfg.specs():
            if s.kind == "conv":
                macs += s.out_shape[1] * s.out_shape[2] * s.out_channels * 9 * s.in_channels
            elif s.kind == "dense":
                macs += s.in_channels * s.out_channels
        assert row[col["MACs"]] == macs
    assert [row[col["paper top-1 err %"]] for row in r.rows] == [29.6, 28.7, 27.0, 27.3]
    macs = [row[col["MACs"]] for row in r.rows]
    assert macs == sorted(macs) and len(set(macs)) == 4


@pytest.mark.parametrize("diff, se, n, words", [
    (0.001, 0.01, 3, "no gain, as in the paper"),
    (0.05, 0.01, 3, "LRN helped here, unlike on ImageNet"),
    (-0.05, 0.01, 3, "LRN hurt here"),
    (0.05, 0.0, 1, "one seed per config"),
])
def test_lrn_verdict_follows_the_numbers(diff, se, n, words):
    v = lrn._verdict(diff, se, n, 1.5, 1.25, True)
    assert words in v and f"{diff * 100:+.2f} points" in v and "1.50x the time" in v and "1.25x the memory" in v


def test_depth_verdict_follows_the_numbers():
    def summ(accs):
        return {a: {"mean": m, "sd": 0.01, "n": 3, "params": 100 * (i + 1), "macs": 10 * (i + 1),
                    "step_seconds": 1.0 + i} for i, (a, m) in enumerate(zip(depth.ARCHS, accs))}

    rising = depth._verdict(summ([0.5, 0.6, 0.7, 0.8]), list(depth.ARCHS))
    assert "best here is E" in rising and "rises with every step" in rising and "+30.00 points" in rising
    assert "beyond two standard errors" in rising and "4.00x the MACs" in rising
    falling = depth._verdict(summ([0.8, 0.81, 0.7, 0.79]), list(depth.ARCHS))
    assert "best here is B" in falling and "does not rise steadily" in falling and "within two" in falling


def test_depth_refuses_unknown_archs():
    with pytest.raises(ValueError, match="depth: archs"):
        depth.run(quick=True, archs=["vgg11", "alexnet"], **TINY)


def test_ensemble_accuracy_is_the_mean_of_its_members_probabilities():
    r = ensemble.run(quick=True, seed=0, seeds=[0, 1, 2], **TINY)
    d = r.data
    y = np.array(d["test_labels"])
    probs = np.array(d["member_test_proba"])  # (M, N, K)
    assert probs.shape == (3, len(y), 10)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-5)
    members = [float(np.mean(p.argmax(1) == y)) for p in probs]
    ens = float(np.mean(probs.mean(axis=0).argmax(1) == y))
    col = {c: i for i, c in enumerate(r.columns)}
    assert [row[col["test acc"]] for row in r.rows[:3]] == members
    assert r.rows[-1][0] == "ensemble of 3" and r.rows[-1][col["test acc"]] == ens
    i, j = (d["seeds"].index(s) for s in d["best_pair"])
    assert r.rows[-2][col["test acc"]] == float(np.mean((probs[i] + probs[j]).argmax(1) == y))
    assert r.rows[-1][col["vs best member (points)"]] == pytest.approx(100 * (ens - max(members)))


def test_ensemble_needs_two_members():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        ensemble.run(quick=True, seeds=[0], **TINY)


def test_transfer_rows_and_baselines():
    r = transfer.run(quick=True, seed=0, n_target_train=60, n_target_test=50, **TINY)
    d = r.data
    assert [row[1] for row in r.rows] == [d["feature_acc"], d["random_feature_acc"], d["pixel_acc"], 0.2]
    assert r.rows[2][2] == 0.0
    assert r.rows[0][2] == pytest.approx(100 * (d["feature_acc"] - d["pixel_acc"]))
    assert d["n_target_train"] == 60 and d["n_target_test"] == 50
    assert set(d["source_classes"]).isdisjoint(d["target_classes"])
    assert ("do NOT beat" in r.verdict) == (d["feature_acc"] <= max(d["pixel_acc"], d["random_feature_acc"]))


# ------------------------------------------------------------------ the command
@pytest.fixture
def tiny_lrn(monkeypatch):
    """``minivgg experiment lrn`` at the tiny knobs (the command passes quick, seed and progress)."""
    monkeypatch.setattr(lrn, "run", functools.partial(lrn.run, seeds=[0, 1], **TINY))


def test_cli_writes_json_and_png_and_prints_the_table(tiny_lrn, tmp_path, capsys):
    out = tmp_path / "new" / "dir"
    assert main(["experiment", "lrn", "--quick", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "LRN does not help" in cap.out and "vgg11-lrn" in cap.out and "here:" in cap.out
    assert "minivgg experiment lrn: A seed 0" in cap.err  # progress on stderr
    saved = json.loads((out / "lrn.json").read_text())
    assert saved["name"] == "lrn" and saved["quick"] is True and len(saved["rows"]) == 2
    assert (out / "lrn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_json_and_no_plot(tiny_lrn, tmp_path, capsys):
    assert main(["experiment", "lrn", "--json", "--no-plot", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "lrn.json").read_text())
    assert not (tmp_path / "lrn.png").exists()


def test_cli_without_matplotlib_fails_before_training(monkeypatch, tmp_path, capsys):
    def never(**kw):
        raise AssertionError("trained although the plot cannot be drawn")

    monkeypatch.setattr(lrn, "run", never)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["experiment", "lrn", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["minivgg experiment: error: the plot needs matplotlib (pip install 'minivgg[plot]'); "
                   "or pass --no-plot"]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["experiment", "nope"], "invalid choice: 'nope'"),
    (["experiment", "lrn", "--seed", "-1"], "--seed: expected a seed"),
    (["experiment"], "required: NAME"),
])
def test_cli_bad_arguments_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("minivgg experiment: error:") and message in err


def test_cli_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert main(["experiment", "lrn", "--out", str(f), "--no-plot"]) == 2
    assert capsys.readouterr().err.strip() == f"minivgg experiment: error: --out {str(f)!r} is not a directory"


def test_cli_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit) as e:
        from minivgg.cli import build_parser
        build_parser().parse_args(["experiment", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in experiments.NAMES:
        assert name in out


@pytest.mark.slow
def test_cli_quick_end_to_end(tmp_path, capsys):
    """The real ``--quick`` run of the cheapest experiment, unpatched."""
    assert main(["experiment", "transfer", "--quick", "--out", str(tmp_path), "--threads", "1"]) == 0
    saved = json.loads((tmp_path / "transfer.json").read_text())
    assert saved["quick"] is True and saved["data"]["n_target_train"] == 500
    assert (tmp_path / "transfer.png").exists()


def test_the_command_line_does_not_import_the_experiments():
    """`minivgg --help` (any command) builds every parser: the experiment modules must stay unimported until run."""
    import subprocess
    import sys

    code = ("import sys; from minivgg.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('minivgg.training.experiments.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['minivgg.training.experiments.base']"
    # the titles --help shows are the modules' own
    for name in experiments.NAMES:
        assert experiments.get(name).TITLE == experiments.TITLES[name]
