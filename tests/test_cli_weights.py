"""`minivgg convert` and `minivgg predict`: happy paths and one-line errors with exit status 2."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from minivgg import VGG
from minivgg.cli import main
from minivgg.io.weights import read_weights, save_weights


@pytest.fixture
def weights_file(tmp_path, tiny_vgg):
    model = tiny_vgg(num_classes=1000, dtype=np.float32, seed=2)
    path = tmp_path / "tiny.npz"
    save_weights(path, model.params, model.config)
    return model, path


def test_convert_npz_roundtrip(weights_file, tmp_path, capsys):
    model, path = weights_file
    out = tmp_path / "copy.npz"
    assert main(["convert", str(path), str(out)]) == 0
    params, config = read_weights(out)
    assert config == model.config
    assert all(np.array_equal(params[k], model.params[k]) for k in model.params)
    assert "wrote" in capsys.readouterr().out


def test_predict_prints_top_k(weights_file, tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    _, path = weights_file
    image = tmp_path / "cat.png"
    pil.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--weights", str(path), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{image}:" and len(out) == 4
    assert out[1].strip().startswith("1.") and "class" in out[1]


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"not a checkpoint"), ["bad.pth"]),
    (lambda p: None, ["bad.pth", "no such"]),
])
def test_convert_bad_input_is_one_line_exit_2(tmp_path, capsys, make, words):
    bad = tmp_path / "bad.pth"
    make(bad)
    assert main(["convert", str(bad), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minivgg convert: error:") and "\n" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "out.npz").exists()


def test_convert_refuses_a_checkpoint_that_runs_code(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": Payload()}, protocol=2))
    assert main(["convert", str(evil), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert "system" in err and "refusing" in err
    assert not marker.exists()


def test_convert_to_unsupported_extension_exit_2(weights_file, tmp_path, capsys):
    _, path = weights_file
    assert main(["convert", str(path), str(tmp_path / "out.h5")]) == 2
    assert ".npz" in capsys.readouterr().err
