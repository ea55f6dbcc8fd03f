"""Numbers that go non-finite, and the exit statuses that report them (issue 11, part A).

* max-pooling propagates NaN like ``np.max`` on both paths, and the backward
  routes the gradient to the NaN the forward picked;
* a non-finite loss, metric, parameter or optimiser buffer stops training
  before that epoch is saved;
* minivgg's JSON never holds NaN/Infinity (``null`` instead);
* a model with NaN/inf parameters is refused by every command that loads one;
* each documented exit status, and what Ctrl-C during ``train`` says.

Every CLI case asserts the exit status, a one-line message naming what was
wrong, no traceback, and no file left behind.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivgg import cli, ops, training as tr
from minivgg.cli import main
from minivgg.cli import train as cli_train
from minivgg.configs import ARCHS, CONFIGS, VGGConfig
from minivgg.io.weights import NonFiniteParameters, check_finite_params, load_model
from minivgg.training import trainer as trainer_module

# ~25k parameters, 64 images: well under a second per epoch
SMALL = ["--n-train", "64", "--n-val", "32", "--width", "0.0625", "--fc-width", "16", "--batch-size", "32",
         "--no-progress"]
README = Path(__file__).resolve().parent.parent / "README.md"


def one_line_error(err: str, command: str) -> str:
    """The stderr of a failed command: exactly one line, no traceback; return it."""
    err = err.strip()
    assert "Traceback" not in err, err
    assert err.count("\n") == 0, err
    assert err.startswith(f"minivgg {command}:"), err
    return err


# ====================================================================== max-pooling and NaN
def _window_with(pos: int, value: float, dtype) -> np.ndarray:
    x = np.array([1.0, 4.0, 2.0, 3.0], dtype=dtype)
    x[pos] = value
    return x.reshape(1, 1, 2, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", range(4))
def test_maxpool_nan_at_every_window_position_propagates_on_both_paths(pos, dtype):
    x = _window_with(pos, np.nan, dtype)
    dout = np.ones((1, 1, 1, 1), dtype)
    for algo in ("numba", "naive"):
        out, cache = ops.maxpool_forward(x, algo=algo)
        assert out.dtype == dtype and np.isnan(out).all(), (algo, out)
        assert int(cache.argmax[0, 0, 0, 0]) == pos  # the position np.argmax picks
        dx = ops.maxpool_backward(dout, cache, algo=algo)
        expected = np.zeros_like(x)
        expected.reshape(-1)[pos] = 1.0  # the gradient goes where the forward's NaN came from
        np.testing.assert_array_equal(dx, expected)
    assert np.isnan(np.max(x))  # the reference: numpy agrees


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_first_of_two_nans_wins_and_negative_control_without_nan(dtype):
    x = np.array([1.0, np.nan, 5.0, np.nan], dtype).reshape(1, 1, 2, 2)
    fast, naive = ops.maxpool_forward(x)[1], ops.maxpool_forward(x, algo="naive")[1]
    assert int(fast.argmax.ravel()[0]) == int(naive.argmax.ravel()[0]) == 1
    clean = np.array([1.0, 4.0, 5.0, 3.0], dtype).reshape(1, 1, 2, 2)  # control: the plain maximum
    out, cache = ops.maxpool_forward(clean)
    assert out.ravel()[0] == 5.0 and int(cache.argmax.ravel()[0]) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values,want,arg", [
    ([1.0, np.inf, 2.0, 3.0], np.inf, 1),
    ([-np.inf, -np.inf, -np.inf, -np.inf], -np.inf, 0),  # all -inf: the first, like np.argmax
    ([-np.inf, 2.0, -np.inf, 1.0], 2.0, 1),
    ([np.inf, 1.0, np.nan, 0.0], np.nan, 2),  # NaN beats +inf, as in np.max
])
def test_maxpool_infinities_are_ordinary_extremes(values, want, arg, dtype):
    x = np.array(values, dtype).reshape(1, 1, 2, 2)
    for algo in ("numba", "naive"):
        out, cache = ops.maxpool_forward(x, algo=algo)
        np.testing.assert_array_equal(out.ravel(), np.array([want], dtype))
        assert int(cache.argmax.ravel()[0]) == arg == int(np.argmax(x.ravel()))


@pytest.mark.parametrize("size,stride", [(3, 2), (3, 1), (2, 1)])
def test_maxpool_generic_path_agrees_with_naive_on_random_nans(size, stride, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    (fast, cf), (naive, cn) = ops.maxpool_forward(x, size, stride), ops.maxpool_forward(x, size, stride, algo="naive")
    np.testing.assert_array_equal(fast, naive)  # NaN == NaN here
    np.testing.assert_array_equal(cf.argmax, cn.argmax)
    dout = rng.standard_normal(fast.shape)
    np.testing.assert_array_equal(ops.maxpool_backward(dout, cf), ops.maxpool_backward(dout, cn, algo="naive"))


# ====================================================================== the training NaN guard
def _tiny_arch() -> VGGConfig:
    return VGGConfig.from_arch("vgg11", width=0.0625, fc_width=16, dropout=0.0, num_classes=10, input_size=32)


@pytest.fixture(scope="module")
def data():
    return tr.load_dataset("shapes", n_train=64, n_val=32, data_seed=0)


def _config(**kw) -> tr.TrainConfig:
    return tr.TrainConfig(**{"epochs": 3, "batch_size": 32, "optimizer": "sgd", "lr": 0.02, "schedule": "none",
                             "flip": False, "seed": 1, **kw})


def _assert_epoch_1_kept(out: Path, err: tr.TrainingDiverged) -> None:
    ckpt = out / tr.CHECKPOINT_NAME
    assert err.epoch == 2 and err.checkpoint == ckpt
    assert tr.read_checkpoint(ckpt).meta["epoch"] == 1
    history = json.loads((out / tr.HISTORY_NAME).read_text())
    assert [e["epoch"] for e in history] == [1]
    assert sorted(p.name for p in out.iterdir()) == [tr.CHECKPOINT_NAME, tr.HISTORY_NAME]  # no temp files
    assert f"{ckpt} (epoch 1) is intact" in str(err) and "--lr" in str(err)


@pytest.mark.parametrize("bad", [(float("nan"), 0.5), (float("inf"), 0.5), (1.0, float("nan"))])
def test_a_non_finite_validation_metric_stops_before_the_epoch_is_saved(bad, data, tmp_path, monkeypatch):
    real = trainer_module.loss_and_accuracy
    calls = []

    def second_epoch_goes_bad(*args, **kwargs):
        calls.append(1)
        return bad if len(calls) == 2 else real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "loss_and_accuracy", second_epoch_goes_bad)
    with pytest.raises(tr.TrainingDiverged) as err:
        tr.train(data, _config(), arch=_tiny_arch(), out=tmp_path)
    what = "validation loss" if not np.isfinite(bad[0]) else "validation accuracy"
    assert what in str(err.value)
    _assert_epoch_1_kept(tmp_path, err.value)


class _Poison(tr.TrainCallback):
    """After the last step of epoch 2, write a non-finite value into a parameter or an optimiser buffer."""

    def __init__(self, trainer: tr.Trainer, target: str) -> None:
        self.trainer, self.target, self.epoch, self.n = trainer, target, 0, 0

    def on_epoch_start(self, epoch: int, n_batches: int) -> None:
        self.epoch, self.n = epoch, n_batches

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        if self.epoch == 2 and batch == self.n:
            if self.target == "param":
                self.trainer.model.params["conv2_1.w"][0, 0, 0, 0] = np.inf
            else:
                self.trainer.optimizer.state["velocity"]["fc8.w"][0, 0] = np.nan


@pytest.mark.parametrize("target,named", [("param", "parameter conv2_1.w"), ("optim", "optimiser state")])
def test_non_finite_weights_or_optimiser_state_after_the_updates_are_never_saved(target, named, data, tmp_path):
    trainer = tr.Trainer(VGG_for(data), data, _config(momentum=0.9), tmp_path)
    with pytest.raises(tr.TrainingDiverged) as err:
        trainer.fit(callback=_Poison(trainer, target))
    assert named in str(err.value)
    _assert_epoch_1_kept(tmp_path, err.value)


def VGG_for(data):  # noqa: N802 - reads as the model it builds
    from minivgg import VGG

    return VGG(_tiny_arch(), seed=1)


def test_divergence_in_the_first_epoch_leaves_no_directory_behind(data, tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(tr.TrainingDiverged, match="nothing was saved") as err:
        tr.train(data, _config(lr=1e30), arch=_tiny_arch(), out=out)
    assert err.value.checkpoint is None and err.value.epoch == 1
    assert not (tmp_path / "new").exists()


def test_the_issue_repro_exits_3_keeps_no_nan_epoch_and_suggests_a_lower_lr(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--n-train", "200", "--n-val", "100", "--epochs", "6", "--optimizer", "sgd",
                   "--lr", "1.1", "--schedule", "none", "--no-progress", "--out", str(out)])
    assert status == cli.EXIT_NONFINITE == 3
    err = one_line_error(capsys.readouterr().err, "train")
    assert "diverged at epoch" in err and "lower learning rate" in err and "--lr 0.11" in err
    epoch = int(re.search(r"diverged at epoch (\d+)", err).group(1))
    if epoch == 1:
        assert "nothing was saved" in err and not out.exists()
    else:  # every epoch on disk is finite, strict JSON, and the message names the last one
        assert f"(epoch {epoch - 1}) is intact" in err
        history = json.loads((out / tr.HISTORY_NAME).read_text(), parse_constant=_refuse)
        assert len(history) == epoch - 1
        tr.model_from_checkpoint(out / tr.CHECKPOINT_NAME)


def test_huge_but_finite_weights_are_saved_as_documented(data, tmp_path):
    # the guard is about non-finite numbers; 1e25 is finite and a loadable model
    trainer = tr.Trainer(VGG_for(data), data, _config(epochs=1, lr=1e-12), tmp_path)
    trainer.model.params["fc8.b"][...] = 1e25
    trainer.fit()
    model, _ = tr.model_from_checkpoint(tmp_path / tr.CHECKPOINT_NAME)
    assert np.isfinite(model.params["fc8.b"]).all() and model.params["fc8.b"].max() > 1e24


# ====================================================================== strict JSON
def _refuse(token: str):
    raise AssertionError(f"bare {token} in JSON output")


def test_write_json_maps_non_finite_numbers_to_null_and_writes_strict_json(tmp_path):
    path = tmp_path / "h.json"
    tr.checkpoint.write_json(path, [{"loss": float("nan"), "acc": np.float32(np.inf), "lr": -np.inf,
                                     "ok": 0.5, "n": np.int64(3), "t": (1.0, float("nan"))}])
    back = json.loads(path.read_text(), parse_constant=_refuse)
    assert back == [{"loss": None, "acc": None, "lr": None, "ok": 0.5, "n": 3, "t": [1.0, None]}]


def test_write_json_still_refuses_what_is_not_json(tmp_path):
    with pytest.raises(TypeError):
        tr.checkpoint.write_json(tmp_path / "x.json", {"a": object()})
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# ====================================================================== loading a non-finite model
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A good training checkpoint, and copies whose fc7.b holds NaN / whose conv1_1.w holds -inf."""
    root = tmp_path_factory.mktemp("nonfinite")
    good = root / "good"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(good)]) == 0
    with np.load(good / tr.CHECKPOINT_NAME, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    files = {"good": good / tr.CHECKPOINT_NAME}
    for name, key, index, value in (("nan", "param.fc7.b", (3,), np.nan),
                                    ("inf", "param.conv1_1.w", (1, 0, 2, 2), -np.inf),
                                    ("huge", "param.fc8.w", slice(None), 3e38)):  # finite; the logits overflow
        bad = dict(arrays)
        bad[key] = arrays[key].copy()
        bad[key][index] = value
        (root / name).mkdir()
        np.savez(root / name / tr.CHECKPOINT_NAME, **bad)
        files[name] = root / name / tr.CHECKPOINT_NAME
    return files


def test_check_finite_params_names_the_first_bad_parameter_and_passes_finite_ones():
    check_finite_params({"a": np.ones(3), "n": np.arange(4)}, "f.npz")  # control: finite, and ints
    with pytest.raises(NonFiniteParameters, match=r"f\.npz: parameter b holds NaN and inf .*index \(1,\)") as err:
        check_finite_params({"a": np.ones(3), "b": np.array([0.0, np.nan, np.inf]), "c": np.full(2, np.nan)},
                            "f.npz")
    assert err.value.name == "b" and isinstance(err.value, tr.CheckpointError)


@pytest.mark.parametrize("kind,param", [("nan", "fc7.b holds NaN"), ("inf", "conv1_1.w holds inf")])
def test_the_library_loaders_refuse_a_non_finite_model(checkpoints, kind, param):
    for load in (tr.model_from_checkpoint, tr.read_checkpoint, load_model):
        with pytest.raises(NonFiniteParameters, match=re.escape(f"{checkpoints[kind]}: parameter {param}")):
            load(checkpoints[kind])
    tr.model_from_checkpoint(checkpoints["good"])  # control


@pytest.mark.parametrize("command", [
    ["evaluate", "{nan}"],
    ["evaluate", "{inf}", "--flip"],
    ["ensemble", "{good}", "{nan}"],
    ["features", "{nan}", "--out", "{tmp}/f.npz"],
    ["convert", "{inf}", "{tmp}/w.npz"],
    ["predict", "{tmp}/cat.png", "--weights", "{nan}"],
    ["train", "--resume", "--epochs", "2", "--no-progress", "--out", "{nan_dir}"],
])
def test_every_command_that_loads_a_non_finite_model_exits_3(command, checkpoints, tmp_path, capsys):
    names = {k: str(v) for k, v in checkpoints.items()}
    args = [a.format(tmp=tmp_path, nan_dir=checkpoints["nan"].parent, **names) for a in command]
    before = sorted(checkpoints["nan"].parent.iterdir())
    assert main(args) == cli.EXIT_NONFINITE
    err = one_line_error(capsys.readouterr().err, command[0])
    bad = checkpoints["inf" if "{inf}" in command else "nan"]
    assert f"{bad}: parameter" in err and "non-finite" in err
    assert list(tmp_path.iterdir()) == []  # no output written
    assert sorted(checkpoints["nan"].parent.iterdir()) == before


@pytest.mark.parametrize("command", [["evaluate", "{huge}"], ["ensemble", "{good}", "{huge}"]])
def test_finite_weights_whose_outputs_overflow_exit_3_not_a_meaningless_accuracy(command, checkpoints, capsys):
    names = {k: str(v) for k, v in checkpoints.items()}
    assert main([a.format(**names) for a in command]) == cli.EXIT_NONFINITE
    captured = capsys.readouterr()
    err = one_line_error(captured.err, command[0])
    assert f"{checkpoints['huge']}" in err and "not finite" in err
    assert "accuracy" not in captured.out.replace("accuracies", "")  # no accuracy was reported as if it meant something


def test_overflowing_outputs_in_a_real_process_give_one_line_and_no_numpy_warnings(checkpoints):
    result = subprocess.run([sys.executable, "-m", "minivgg", "evaluate", str(checkpoints["huge"])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == cli.EXIT_NONFINITE
    assert "RuntimeWarning" not in result.stderr
    one_line_error(result.stderr, "evaluate")


def test_evaluate_of_a_good_checkpoint_still_exits_0(checkpoints, capsys):  # negative control of the above
    assert main(["evaluate", str(checkpoints["good"])]) == 0
    assert "trained 1 epoch\n" in capsys.readouterr().out  # singular


# ====================================================================== exit statuses
def test_exit_status_constants_are_distinct_and_match_the_readme_table():
    names = sorted(n for n in vars(cli) if n.startswith("EXIT_"))  # every constant, EXIT_PIPE included
    assert len(names) >= 7
    codes = [getattr(cli, n) for n in names]
    assert len(set(codes)) == len(codes)
    section = README.read_text(encoding="utf-8").split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    assert sorted(int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)) == sorted(codes)
    for n in names:
        assert f"``{n}``" in cli.__doc__


def test_argparse_errors_return_2_and_help_returns_0(capsys):
    assert main(["train", "--epochs", "zero"]) == cli.EXIT_USAGE
    assert "argument --epochs: expected a positive integer" in capsys.readouterr().err
    assert main(["train", "--help"]) == cli.EXIT_OK


def test_an_unexpected_exception_is_an_internal_error_70(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli_train, "run", boom)
    assert main(["train"]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err.strip()
    assert err.startswith("Traceback") and "kaboom" in err  # the traceback first, for the report
    assert err.splitlines()[-1] == "minivgg train: internal error, please report: RuntimeError: kaboom"


def test_ctrl_c_in_any_command_exits_130_with_one_line(monkeypatch, capsys):
    from minivgg.cli import evaluate as cli_evaluate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_evaluate, "run", interrupted)
    assert main(["evaluate", "x.npz"]) == cli.EXIT_INTERRUPTED
    assert one_line_error(capsys.readouterr().err, "evaluate") == "minivgg evaluate: interrupted"


def test_a_usage_error_is_still_2_not_70(monkeypatch, capsys):  # negative control of the above
    def usage(args):
        raise cli.UsageError("--thing must be\nsomething")

    monkeypatch.setattr(cli_train, "run", usage)
    assert main(["train"]) == cli.EXIT_USAGE
    assert one_line_error(capsys.readouterr().err, "train") == "minivgg train: error: --thing must be something"


# ====================================================================== Ctrl-C, plurals, --help
class _CtrlC(tr.TrainCallback):
    def __init__(self, epoch: int) -> None:
        self.at, self.epoch = epoch, 0

    def on_epoch_start(self, epoch: int, n_batches: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        if self.epoch == self.at:
            raise KeyboardInterrupt


def _interrupt_at(monkeypatch, epoch: int) -> None:
    ctrl_c = _CtrlC(epoch)
    monkeypatch.setattr(cli_train.TrainProgress, "on_epoch_start", lambda self, e, n: ctrl_c.on_epoch_start(e, n))
    monkeypatch.setattr(cli_train.TrainProgress, "on_batch_end", lambda self, *a: ctrl_c.on_batch_end(*a))


def test_ctrl_c_names_the_kept_epoch_and_the_exact_resume_command(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["train", *SMALL, "--epochs", "3", "--out", str(out)]
    _interrupt_at(monkeypatch, 2)
    assert main(argv) == cli.EXIT_INTERRUPTED == 130
    err = one_line_error(capsys.readouterr().err, "train")
    assert f"kept {out / tr.CHECKPOINT_NAME} (1 epoch complete" in err
    command = err.split("Continue with: ", 1)[1]
    assert command == shlex.join(["minivgg", *argv, "--resume"])
    monkeypatch.undo()
    assert main(shlex.split(command)[1:]) == 0  # the printed command really continues the run
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert tr.read_checkpoint(out / tr.CHECKPOINT_NAME).meta["epoch"] == 3


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, 1)
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == cli.EXIT_INTERRUPTED
    err = one_line_error(capsys.readouterr().err, "train")
    assert "nothing was saved" in err and "--resume" not in err
    assert not out.exists()


def test_one_epoch_is_singular(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "1 epoch," in text and "1 epochs" not in text
    assert cli_train.plural(1, "epoch") == "1 epoch" and cli_train.plural(2, "epoch") == "2 epochs"


def test_train_help_lists_every_architecture_name_it_accepts(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in (*ARCHS, *CONFIGS):
        assert re.search(rf"\b{name}\b", text), name
    assert "vgg16c" in text


# ====================================================================== empty batch
def test_forward_on_an_empty_batch_says_the_batch_is_empty(tiny_vgg):
    model = tiny_vgg()
    with pytest.raises(ValueError, match=r"the batch is empty .*N must be >= 1"):
        model.forward(np.zeros((0, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"must have shape \(N, 3, 32, 32\), got \(1, 3, 16, 16\)"):
        model.forward(np.zeros((1, 3, 16, 16)))  # a wrong shape still says so
