"""``minivgg train / evaluate / features / ensemble``: outputs, resume, and exit status 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from minivgg import training as tr
from minivgg.cli import main

# a small run: ~25k parameters, 64 images, well under a second per epoch
SMALL = ["--n-train", "64", "--n-val", "32", "--width", "0.0625", "--fc-width", "16", "--batch-size", "32",
         "--no-progress"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minivgg", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two short runs (seeds 0 and 1) -> their output directories."""
    dirs = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"run{seed}")
        assert main(["train", *SMALL, "--epochs", "2", "--seed", str(seed), "--out", str(out)]) == 0
        dirs.append(out)
    return dirs


def test_train_writes_checkpoint_and_history(trained, capsys):
    out = trained[0]
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert set(tr.HISTORY_KEYS) <= set(history[0])
    meta = tr.read_checkpoint(out / "checkpoint.npz").meta
    assert meta["epoch"] == 2 and tr.read_checkpoint(out / "checkpoint.npz").config.width == 0.0625 and meta["data"]["n_train"] == 64


def test_train_prints_one_line_per_epoch(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val loss" in out and "final validation accuracy" in out


def test_resume_continues_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    ckpt = tmp_path / "checkpoint.npz"
    before = ckpt.read_bytes()
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 2  # no --resume: refuse
    assert "already exists" in capsys.readouterr().err
    assert ckpt.read_bytes() == before
    assert main(["train", "--resume", "--epochs", "2", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2
    assert main(["train", "--resume", "--arch", "vgg13", "--epochs", "3", "--out", str(tmp_path)]) == 2
    assert "different architecture" in capsys.readouterr().err
    assert main(["train", "--resume", "--batch-size", "8", "--epochs", "3", "--out", str(tmp_path)]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_diverging_run_exits_3_with_a_clear_message(tmp_path, capsys):
    # an absurd learning rate makes the loss infinite in the first epochs; nothing is saved
    # (that an existing checkpoint stays intact is tested in test_train.py)
    assert main(["train", *SMALL, "--epochs", "3", "--lr", "1e30", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "diverged" in err and "lower learning rate" in err and "--lr" in err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_evaluate_reports_accuracy_and_flip(trained, capsys):
    assert main(["evaluate", str(trained[0] / "checkpoint.npz"), "--flip"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "flip averaging" in out and "test split, 32 images" in out


def test_features_writes_the_named_layer(trained, tmp_path, capsys):
    path = tmp_path / "f.npz"
    assert main(["features", str(trained[0] / "checkpoint.npz"), "--layer", "relu7", "--out", str(path)]) == 0
    with np.load(path, allow_pickle=False) as z:
        assert z["features"].shape == (32, 16) and z["labels"].shape == (32,) and str(z["layer"]) == "relu7"
    assert main(["features", str(trained[0] / "checkpoint.npz"), "--layer", "pool5", "--split", "train",
                 "--limit", "10", "--out", str(path)]) == 0
    with np.load(path, allow_pickle=False) as z:
        assert z["features"].shape == (10, 32)  # pool5: 32 channels x 1 x 1 at 1/16 width
    assert main(["features", str(trained[0] / "checkpoint.npz"), "--layer", "fc9", "--out", str(path)]) == 2
    assert "no layer named 'fc9'" in capsys.readouterr().err


def test_ensemble_reports_members_and_the_average(trained, capsys):
    paths = [str(d / "checkpoint.npz") for d in trained]
    assert main(["ensemble", *paths]) == 0
    out = capsys.readouterr().out
    assert "ensemble (mean softmax)" in out and paths[0] in out and paths[1] in out


@pytest.mark.parametrize("args,message", [
    (["train", "--lr", "0"], "expected a number > 0"),
    (["train", "--lr", "-0.1"], "expected a number > 0"),
    (["train", "--data", "imagenet"], "invalid choice"),
    (["train", "--arch", "vgg99"], "unknown architecture"),
])
def test_bad_arguments_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize("args,message", [
    (["train", "--resume"], "--resume needs --out"),
    (["train", "--data", "cifar10"], "needs a data directory"),
    (["train", "--data", "cifar10", "--data-dir", "/nonexistent/dir"], "does not exist"),
    (["train", "--data", "mnist", "--data-dir", "/"], "missing"),
    (["evaluate", "/nonexistent/checkpoint.npz"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and err.startswith(f"minivgg {args[0]}: error:")


def test_corrupt_checkpoint_exits_2_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    result = run_cli("ensemble", str(bad))
    assert result.returncode == 2 and "not a readable minivgg .npz" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_wrong_image_size_for_the_checkpoint_exits_2(trained, tmp_path, capsys):
    # a checkpoint trained on 3-channel shapes cannot evaluate 1-channel MNIST digits
    import gzip
    import struct

    for kind, n in (("train", 6), ("t10k", 3)):
        imgs = struct.pack(">IIII", 0x803, n, 28, 28) + bytes(n * 28 * 28)
        labels = struct.pack(">II", 0x801, n) + bytes(n)
        (tmp_path / f"{kind}-images-idx3-ubyte.gz").write_bytes(gzip.compress(imgs))
        (tmp_path / f"{kind}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    code = main(["evaluate", str(trained[0] / "checkpoint.npz"), "--data", "mnist", "--data-dir", str(tmp_path),
                 "--n-val", "2"])
    assert code == 2 and "3-channel" in capsys.readouterr().err


def test_a_training_checkpoint_is_a_weights_file_for_every_command(trained, tmp_path, capsys):
    """One minivgg file format: ``train``'s checkpoint works with predict, convert, evaluate and features."""
    ckpt = trained[0] / "checkpoint.npz"
    converted = tmp_path / "weights.npz"
    assert main(["convert", str(ckpt), str(converted)]) == 0
    assert "wrote" in capsys.readouterr().out
    model, _ = tr.model_from_checkpoint(ckpt)
    weights = tr.read_checkpoint(converted)
    assert weights.config == model.config and not weights.is_checkpoint  # plain weights: no run state
    assert all(np.array_equal(weights.params[k], v) for k, v in model.params.items())
    pil = pytest.importorskip("PIL.Image")
    image = tmp_path / "shape.png"
    pil.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--weights", str(ckpt), "--top", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["evaluate", str(ckpt)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["features", str(ckpt), "--out", str(tmp_path / "f.npz")]) == 0
    # converted (plain) weights lack the training mean and dataset these commands need: said on one line
    for args in (["evaluate", str(converted)], ["features", str(converted), "--out", str(tmp_path / "h.npz")],
                 ["ensemble", str(converted), str(ckpt)]):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert "plain weights" in err and "\n" not in err, (args, err)
    # negative control: a file that is not minivgg's is refused by each of them, on one line
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    for args in (["convert", str(foreign), str(tmp_path / "x.npz")],
                 ["predict", str(image), "--weights", str(foreign)],
                 ["evaluate", str(foreign)], ["features", str(foreign), "--out", str(tmp_path / "g.npz")]):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert "no __minivgg__ record" in err and "\n" not in err, (args, err)
