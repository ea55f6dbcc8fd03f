"""The ``localization`` experiment: its table is real (rows, ranges, baseline) and PCR beats a constant box."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minivgg.training import load_dataset
from minivgg.training.checkpoint import write_json
from minivgg.training.experiments import NAMES, get


def _mean_box_baseline(n_train: int, n_val: int, seed: int = 0) -> tuple[float, float]:
    """Error and mean IoU of predicting the mean training box, computed here without minivgg's IoU."""
    data = load_dataset("shapes", n_train=n_train, n_val=n_val, data_seed=seed)
    cx, cy, w, h = data.boxes_train.mean(axis=0)
    ious = []
    for bx, by, bw, bh in data.boxes_val:
        ix = max(0.0, min(cx + w / 2, bx + bw / 2) - max(cx - w / 2, bx - bw / 2))
        iy = max(0.0, min(cy + h / 2, by + bh / 2) - max(cy - h / 2, by - bh / 2))
        inter = ix * iy
        ious.append(inter / (w * h + bw * bh - inter))
    ious = np.array(ious)
    return float(np.mean(ious <= 0.5)), float(ious.mean())


def test_localization_is_registered():
    assert "localization" in NAMES
    m = get("localization")
    assert isinstance(m.TITLE, str) and callable(m.run) and callable(m.plot)


def test_tiny_run_gives_a_real_table(tmp_path):
    m = get("localization")
    messages = []
    r = m.run(n_train=96, n_val=48, classifier_epochs=1, epochs=1, variants=[("scr", "fc"), ("pcr", "all")],
              width=1 / 16, fc_width=16, progress=messages.append)
    assert r.name == "localization" and not r.quick and len(messages) == 3
    assert [row[:2] for row in r.rows] == [["SCR", "fc6-fc8"], ["PCR", "all"], ["mean training box", "-"]]
    for row in r.rows[:2]:
        gt, pred = row[2], row[3]
        assert 0 <= gt <= 100 and 0 <= pred <= 100 and pred >= gt  # wrong classes only add errors
        assert 0 <= row[4] <= 1 and row[5] > 0
    assert r.rows[0][6] == 36.4 and r.rows[1][6] == 33.1  # the paper's Table 8 beside each
    err, iou = _mean_box_baseline(96, 48)
    assert r.rows[2][2] == pytest.approx(100 * err) and r.rows[2][4] == pytest.approx(iou)
    assert "SCR" in r.table() and "36.4%" in r.table()
    write_json(tmp_path / "r.json", r.to_json())
    assert json.loads((tmp_path / "r.json").read_text())["rows"][1][0] == "PCR"
    png = m.plot(r, tmp_path / "loc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="variants must be among"):
        m.run(variants=[("pcr", "conv")])


@pytest.mark.slow
def test_pcr_boxes_beat_the_mean_box():
    m = get("localization")
    r = m.run(n_train=2000, n_val=400, classifier_epochs=3, epochs=3, variants=[("pcr", "all")])
    err, iou = _mean_box_baseline(2000, 400)
    pcr = r.rows[0]
    assert pcr[2] < 100 * err - 10  # at least 10 points fewer errors than the constant box
    assert pcr[4] > iou
