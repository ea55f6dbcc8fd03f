"""``minivgg train --task localize`` and ``minivgg localize``: outputs, drawing, and exit status 2 on bad input."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.training.data import make_shapes

SMALL = ["--n-train", "64", "--n-val", "32", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny classifier (1 epoch), a PCR localizer fine-tuned from it (1 epoch), and two shapes images."""
    root = tmp_path_factory.mktemp("loc")
    cls, loc = root / "cls", root / "loc"
    assert main(["train", *SMALL, "--width", "0.0625", "--fc-width", "16", "--epochs", "1", "--out", str(cls)]) == 0
    assert main(["train", "--task", "localize", "--init", str(cls / "checkpoint.npz"), "--regression", "pcr",
                 "--finetune", "all", "--epochs", "1", *SMALL, "--out", str(loc)]) == 0
    from PIL import Image

    x, _ = make_shapes(2, seed=(0, 1))
    images = []
    for i in range(2):
        p = root / f"shape{i}.png"
        Image.fromarray((x[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(p)
        images.append(str(p))
    return cls / "checkpoint.npz", loc / "checkpoint.npz", images


def test_train_localize_writes_history_with_both_errors(runs):
    _, loc, _ = runs
    history = json.loads((loc.parent / "history.json").read_text())
    assert len(history) == 1
    e = history[0]
    assert 0 <= e["val_loc_error"] <= 1 and 0 <= e["val_loc_error_pred"] <= 1
    assert e["val_loc_error_pred"] >= e["val_loc_error"]


def test_localize_prints_class_and_box_and_draws(runs, tmp_path, capsys):
    _, loc, images = runs
    capsys.readouterr()
    assert main(["localize", str(loc), *images, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in doc["results"]] == images and doc["regression"] == "pcr"
    for r in doc["results"]:
        cx, cy, w, h = r["box_cxcywh"]
        x0, y0, x1, y1 = r["box_pixels_xyxy"]  # the same box in the file's 32x32 pixels
        assert np.allclose([x0, y0, x1, y1], np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * 32)
        assert 0 <= r["probability"] <= 1
    out = tmp_path / "boxes.png"
    assert main(["localize", str(loc), *images, "--draw", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("box cx") == 2 and f"wrote {out}" in text
    from PIL import Image

    with Image.open(out) as img:
        assert img.width > 2 * 256 and img.height >= 256  # two tiles, scaled up


def test_localize_needs_pillow(runs, monkeypatch, capsys):
    _, loc, images = runs
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    assert main(["localize", str(loc), images[0]]) == 2
    assert "needs Pillow" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["localize", "{cls}", "{img}"], "is a classification checkpoint, not a localization checkpoint"),
    (["localize", "{loc}", "missing.png"], "does not exist"),
    (["localize", "{loc}", "{img}", "--draw", "out.jpg"], "ending in .png"),
    (["evaluate", "{loc}"], "is a localization checkpoint"),
    (["visualize", "saliency", "--checkpoint", "{loc}", "--out", "{tmp}/s.png"], "is a localization checkpoint"),
    (["train", "--task", "localize", "--out", "{tmp}/x"], "needs --init CHECKPOINT"),
    (["train", "--task", "localize", "--init", "{loc}", "--out", "{tmp}/x"], "already a localization checkpoint"),
    (["train", "--task", "localize", "--init", "{cls}", "--data", "mnist"], "only --data shapes has"),
    (["train", "--task", "localize", "--init", "{cls}", "--arch", "vgg16"], "--arch do(es) not apply"),
    (["train", "--task", "localize", "--init", "{tmp}/nope.npz"], "--init"),
    (["train", "--regression", "scr"], "--regression applies only to --task localize"),
    (["train", "--finetune", "fc"], "--finetune applies only to --task localize"),
    (["train", "--task", "localize", "--init", "{cls}", "--resume", "--out", "{tmp}/x"], "--resume is not supported"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, argv, words):
    cls, loc, images = runs
    argv = [a.format(cls=cls, loc=loc, img=images[0], tmp=tmp_path) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.startswith(f"minivgg {argv[0]}: error:") and "\n" not in err


def test_localize_out_dir_is_not_overwritten(runs, capsys):
    cls, loc, _ = runs
    assert main(["train", "--task", "localize", "--init", str(cls), "--out", str(loc.parent), *SMALL]) == 2
    assert "already exists" in capsys.readouterr().err


def test_commands_list_localize_after_predict():
    from minivgg.cli import COMMANDS

    assert COMMANDS.index("localize") == COMMANDS.index("predict") + 1
