"""`minivgg summary`, `receptive-field` and `compare`: formats, schema, plot, exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from minivgg.cli import main

LAYER_KEYS = {"name", "type", "output_shape", "weights", "biases", "params", "activations", "activation_bytes",
              "macs", "flops", "receptive_field", "effective_stride", "effective_padding"}
TOTAL_KEYS = {"params", "macs", "flops", "activations", "param_bytes", "forward_bytes", "backward_bytes"}


def test_summary_json_follows_the_documented_schema(capsys):
    assert main(["summary", "vgg16", "--format", "json", "--batch", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"arch", "input_size", "batch", "dtype", "layers", "totals"} <= set(doc)
    assert doc["arch"] == "vgg16" and doc["batch"] == 2 and doc["dtype"] == "float32"
    assert all(LAYER_KEYS <= set(layer) for layer in doc["layers"])
    assert TOTAL_KEYS <= set(doc["totals"])
    assert doc["totals"]["params"] == 138_357_544
    assert doc["totals"]["macs"] == 2 * 15_470_264_320  # MACs count the whole batch
    conv1 = doc["layers"][0]
    assert conv1["name"] == "conv1_1" and conv1["output_shape"] == [64, 224, 224]  # per image
    assert conv1["activations"] == 2 * 64 * 224 * 224
    pool5 = next(layer for layer in doc["layers"] if layer["name"] == "pool5")
    assert pool5["receptive_field"] == 212 and pool5["effective_stride"] == 32


def test_summary_csv_has_one_row_per_layer(capsys):
    assert main(["summary", "vgg19", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 16 + 16 + 5 + 1 + 3 * 3 - 2  # convs, relus, pools, flatten, fc/relu/drop (no relu8/drop8)
    assert rows[0]["name"] == "conv1_1" and int(rows[-1]["params"]) == 4096 * 1000 + 1000


def test_summary_table_and_lecture_check(capsys):
    assert main(["summary", "vgg16", "--lecture"]) == 0
    out = capsys.readouterr().out
    assert "138,357,544" in out and "15,470,264,320" in out
    assert "15,237,608" in out  # what the lecture's own per-layer lines add up to
    assert "fc6 (74.3% of all)" in out


def test_summary_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "vgg16.png"
    assert main(["summary", "vgg16", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_receptive_field_and_compare(capsys):
    assert main(["receptive-field", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["conv5_3", "512x14x14", "196"] for line in out.splitlines())
    assert main(["compare", "vgg16", "vgg19", "--channels", "64"]) == 0
    out = capsys.readouterr().out
    assert "143,667,240" in out and "27C^2 vs 7^2 C^2 = 49C^2" in out


@pytest.mark.parametrize("args, words", [
    (["summary", "vgg17"], ["unknown architecture"]),
    (["summary", "vgg16", "--input-size", "16"], ["too small for 5 max-pools"]),
    (["summary", "vgg16", "--batch", "0"], ["positive integer"]),
    (["summary", "vgg16", "--dtype", "int8"], ["invalid choice"]),
    (["summary", "vgg16", "--width", "-1"], ["--width", "channel multiplier in (0, 1024]"]),
    (["compare", "vgg11", "E", "nope"], ["unknown architecture 'nope'"]),
    (["receptive-field"], ["arguments are required"]),
])
def test_bad_arguments_exit_2(args, words, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    assert info.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
