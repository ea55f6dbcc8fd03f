"""The analytic model on paper: published figures, hand-derived memory, formats, bad input.

Every expected number here is either published (torchvision's parameter
counts, the paper, the cs231n notes) or derived by hand in the test from the
layer shapes -- never computed by minivgg.analysis.counts itself.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minivgg import analysis
from minivgg.analysis import MB, MIB, summarize

# --------------------------------------------------------------------------- published figures

PUBLISHED = {  # arch: (parameters, MACs at 224x224) -- torchvision / the cs231n notes
    "vgg11": (132_863_336, None),
    "vgg13": (133_047_848, None),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
}


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_parameter_and_mac_counts(arch):
    params, macs = PUBLISHED[arch]
    t = summarize(arch).totals
    assert t.params == params
    assert sum(layer.params for layer in summarize(arch).layers) == params
    if macs is not None:
        assert t.macs == macs
    assert t.flops == 2 * t.macs


def test_vgg16c_is_vgg16_with_three_1x1_convs():
    # config C replaces conv3_3, conv4_3, conv5_3 of D by 1x1 convs (paper Table 1)
    d = 138_357_544
    c = d - (9 * 256 * 256 - 256 * 256) - 2 * (9 * 512 * 512 - 512 * 512)
    s = summarize("vgg16c")
    assert s.totals.params == c == 133_638_952
    assert s["conv3_3"].weights == 256 * 256 and s["conv3_3"].receptive_field == s["conv3_2"].receptive_field


def test_vgg16_layer_figures_match_the_lecture_lines():
    s = summarize("vgg16")
    # cs231n notes: CONV3-64 [224x224x64] memory 224*224*64, weights (3*3*3)*64
    assert s["conv1_1"].output_shape == (64, 224, 224)
    assert s["conv1_1"].activations == 224 * 224 * 64 == 3_211_264
    assert s["conv1_1"].weights == 3 * 3 * 3 * 64 == 1_728 and s["conv1_1"].biases == 64
    assert s["conv1_1"].macs == 224 * 224 * 64 * 3 * 3 * 3
    assert s["pool5"].output_shape == (512, 7, 7) and s["pool5"].activations == 25_088
    assert s["fc6"].weights == 7 * 7 * 512 * 4096 == 102_760_448
    assert s["fc6"].macs == 25_088 * 4096 and s["fc6"].output_shape == (4096,)
    assert s["fc8"].weights == 4096 * 1000
    # the cheap ops are labelled separately and stay out of FLOPs
    assert s["conv1_1"].bias_adds == 3_211_264 and s["relu1_1"].relu_compares == 3_211_264
    assert s["pool1"].pool_compares == 64 * 112 * 112 * 3
    assert s["relu1_1"].macs == s["pool1"].macs == 0


def test_batch_and_width_scale_as_expected():
    one, four = summarize("vgg16", batch=1), summarize("vgg16", batch=4)
    assert four.totals.macs == 4 * one.totals.macs
    assert four.totals.activations == 4 * one.totals.activations
    assert four.totals.params == one.totals.params
    half = summarize("vgg16", width=0.5)
    assert half["conv1_1"].params == 3 * 3 * 3 * 32 + 32
    assert half["conv5_3"].output_shape == (256, 14, 14)


# --------------------------------------------------------------------------- receptive fields

def test_vgg16_receptive_fields():
    s = summarize("vgg16")
    assert (s["conv5_3"].receptive_field, s["conv5_3"].effective_stride) == (196, 16)
    assert (s["pool5"].receptive_field, s["pool5"].effective_stride) == (212, 32)
    # effective padding, by hand: 2 convs at j=1, 2 at j=2, 3 at j=4, 8 and 16, pad 1 each
    assert s["pool5"].effective_padding == 2 * 1 + 2 * 2 + 3 * 4 + 3 * 8 + 3 * 16 == 90
    assert [s[n].receptive_field for n in ("conv1_1", "conv1_2", "pool1", "conv2_1")] == [3, 5, 6, 10]
    # ReLU / flatten / dropout leave the field alone
    assert s["relu5_3"].receptive_field == 196 and s["flatten"].receptive_field == 212
    # fc6 as a 7x7 conv over pool5 (paper Sec. 3.2): 212 + 6 * 32
    assert s["fc6"].receptive_field == 404 == s["fc8"].receptive_field


def test_three_3x3_convs_see_7x7():
    s = summarize([16, 16, 16], input_size=32)
    assert [s[f"conv1_{i}"].receptive_field for i in (1, 2, 3)] == [3, 5, 7]


def test_field_bounds_of_centre_unit():
    s = summarize("vgg16")
    # conv5_3: 14x14 map, centre unit 6: rows 6*16-90 .. +195
    assert analysis.field_bounds(s["conv5_3"], 224) == (6, 201, 6, 201)
    assert analysis.field_bounds(s["pool5"], 224) == (6, 217, 6, 217)
    lo, hi, clo, chi = analysis.field_bounds(s["fc6"], 224)
    assert (lo, hi, clo, chi) == (-90, 313, 0, 223)
    rows = {r["name"]: r for r in analysis.receptive_fields("vgg16")}
    assert rows["pool5"]["fits"] and not rows["fc6"]["fits"] and rows["fc6"]["visible"] == 224
    text = analysis.format_receptive_fields(analysis.receptive_fields("vgg16"))
    assert "212" in text and "pool5" in text


@settings(max_examples=25, deadline=None)
@given(size=st.integers(32, 300), width=st.sampled_from([0.125, 0.5, 1.0]),
       arch=st.sampled_from(["vgg11", "vgg13", "vgg16c", "vgg16", "vgg19"]))
def test_invariants_for_any_size_and_config(size, width, arch):
    s = summarize(arch, input_size=size, width=width)
    assert s["pool5"].output_shape[1:] == (size // 32, size // 32)
    assert s["pool5"].effective_stride == 32
    fields = [layer.receptive_field for layer in s.layers]
    assert fields == sorted(fields)
    assert s.totals.flops == 2 * s.totals.macs
    assert s.totals.params == sum(layer.weights + layer.biases for layer in s.layers)
    assert s.totals.backward_bytes == sum(layer.kept_bytes for layer in s.layers)


# --------------------------------------------------------------------------- memory

# VGG-16 at 224, per image, derived by hand from the layer shapes:
CONV_OUTPUTS = 2 * 3_211_264 + 2 * 1_605_632 + 3 * 802_816 + 3 * 401_408 + 3 * 100_352  # 13 convs
POOL_OUTPUTS = 802_816 + 401_408 + 200_704 + 100_352 + 25_088
FC_OUTPUTS = 4096 + 4096 + 1000


def test_vgg16_backward_bytes_by_hand():
    # kept: every ReLU output (conv-sized + relu6/7), every pool output (next conv's
    # input) + a uint8 arg-max, every dropout output (next fc's input) + a bool mask
    floats = CONV_OUTPUTS + 2 * 4096 + POOL_OUTPUTS + 2 * 4096
    index = POOL_OUTPUTS + 2 * 4096
    t = summarize("vgg16").totals
    assert CONV_OUTPUTS == 13_547_520
    assert t.backward_bytes == 4 * floats + index == 61_915_648
    assert t.kept_index_bytes == index
    t64 = summarize("vgg16", dtype="float64").totals
    assert t64.backward_bytes == 8 * floats + index          # masks stay 1 byte per element
    assert summarize("vgg16", batch=3).totals.backward_bytes == 3 * t.backward_bytes
    # without dropout the dropout layer returns its input: no mask, no copy
    t0 = summarize("vgg16", dropout=0.0).totals
    assert t0.backward_bytes == 4 * (floats - 2 * 4096) + (index - 2 * 4096)


def test_vgg16_forward_bytes_by_hand():
    # every output its own array: conv + ReLU copies, pools, fc, relu6/7, dropouts; flatten is a view
    values = 2 * CONV_OUTPUTS + POOL_OUTPUTS + FC_OUTPUTS + 2 * 4096 + 2 * 4096
    t = summarize("vgg16").totals
    assert t.activations == values == 28_650_984
    assert t.forward_bytes == 4 * values
    assert t.param_bytes == 4 * 138_357_544
    assert t.input_bytes == 4 * 3 * 224 * 224
    assert summarize("vgg16")["flatten"].view


def test_inference_peak_contains_params_input_and_one_working_set():
    s = summarize("vgg16")
    t = s.totals
    peak_layer = s[t.inference_peak_layer]
    assert t.inference_peak_bytes == t.param_bytes + t.input_bytes + peak_layer.working_bytes
    # a conv's working set holds at least its input and output (conv1_2: 2 x 12.25 MiB)
    assert s["conv1_2"].working_bytes >= 2 * 4 * 3_211_264
    assert s["relu1_1"].working_bytes == 2 * 4 * 3_211_264        # in + out, no scratch
    assert s["pool1"].working_bytes == 4 * (3_211_264 + 802_816) + 802_816  # + uint8 arg-max


def test_summary_allocates_no_activations():
    summarize("vgg16", batch=64)  # warm-up: lazy imports
    tracemalloc.start()
    try:
        summarize("vgg16", batch=64)  # 64 images of activations would be ~7 GB
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB


def test_lecture_memory_check():
    check = analysis.lecture_memory_check()
    exact = 150_528 + CONV_OUTPUTS + POOL_OUTPUTS + FC_OUTPUTS
    assert exact == 15_237_608
    assert sum(x["exact_values"] for x in check["lines"]) == exact
    # the printed figures, rounded as in the notes: 150K + 2*3.2M + ... + 4096 + 4096 + 1000
    printed = 150e3 + 2 * 3.2e6 + 800e3 + 2 * 1.6e6 + 400e3 + 3 * 800e3 + 200e3 + 3 * 400e3 + 100e3 + 3 * 100e3 \
        + 25e3 + 4096 + 4096 + 1000
    assert any(c["values"] == int(printed) for c in check["conventions"])
    claim = check["claim"]
    assert claim["bytes"] == 96_000_000 and claim["mb"] == 96.0
    assert claim["mib"] == pytest.approx(96e6 / 2**20)
    assert claim["values_for_93_mb"] == 93 * 10**6 // 4
    # no counting convention gets within 5% of "24M"
    assert all(c["values"] is None or abs(c["values"] / 24e6 - 1) > 0.05 for c in check["conventions"])
    text = analysis.format_lecture_memory_check(check)
    assert "15,237,608" in text and "24,000,000" in text and "MiB" in text and "MB" in text


def test_units_are_never_mixed():
    text = analysis.format_bytes(2**20)
    assert "1,048,576 B" in text and "1.00 MiB" in text and "1.05 MB" in text
    assert MIB == 1_048_576 and MB == 1_000_000


# --------------------------------------------------------------------------- formats

REQUIRED_LAYER_KEYS = {"name", "type", "output_shape", "weights", "biases", "params", "activations",
                       "activation_bytes", "macs", "flops", "receptive_field", "effective_stride",
                       "effective_padding"}
REQUIRED_TOTAL_KEYS = {"params", "macs", "flops", "activations", "param_bytes", "forward_bytes", "backward_bytes"}


def test_json_schema():
    d = json.loads(json.dumps(summarize("vgg16", batch=2).to_dict()))
    assert {"arch", "input_size", "batch", "dtype", "layers", "totals"} <= set(d)
    assert (d["arch"], d["input_size"], d["batch"], d["dtype"]) == ("vgg16", 224, 2, "float32")
    assert all(REQUIRED_LAYER_KEYS <= set(layer) for layer in d["layers"])
    assert REQUIRED_TOTAL_KEYS <= set(d["totals"])
    conv = d["layers"][0]
    assert conv["name"] == "conv1_1" and conv["output_shape"] == [64, 224, 224]
    assert conv["activations"] == 2 * 3_211_264  # whole batch; the shape is per image
    assert d["layers"][-1]["output_shape"] == [1000]


def test_csv_and_table():
    s = summarize("vgg11", input_size=64)
    rows = list(csv.DictReader(io.StringIO(analysis.to_csv(s))))
    assert [r["name"] for r in rows] == [layer.name for layer in s.layers]
    assert REQUIRED_LAYER_KEYS <= set(rows[0])
    assert rows[0]["output_shape"] == "64x64x64"
    table = analysis.format_table(summarize("vgg16"))
    assert "138,357,544" in table and "15,470,264,320" in table
    assert all(name in table for name in ("conv1_1", "pool5", "fc6", "drop7", "fc8"))


def test_compare_and_the_lecture_comparisons():
    rows = analysis.compare(["vgg11", "vgg13", "vgg16", "vgg19"])
    assert [r["params"] for r in rows] == [PUBLISHED[a][0] for a in ("vgg11", "vgg13", "vgg16", "vgg19")]
    assert [r["weight_layers"] for r in rows] == [11, 13, 16, 19]
    assert rows[2]["fc6_param_share"] == pytest.approx(102_764_544 / 138_357_544)  # ~74%
    text = analysis.format_compare(rows)
    assert "vgg19" in text and "143,667,240" in text
    custom = analysis.compare([[8, "M"], "vgg11"], input_size=32)
    assert custom[0]["arch"] == "custom"

    mp = analysis.memory_vs_params(summarize("vgg16"))
    groups = {g["group"]: g for g in mp["groups"]}
    assert mp["top_params"][0] == "fc6" and mp["top_params"][1] == pytest.approx(0.7427, abs=1e-4)
    assert max(groups, key=lambda g: groups[g]["memory_share"]) == "block1"
    assert groups["classifier"]["param_share"] > 0.89 and groups["classifier"]["memory_share"] < 0.01
    assert "fc6" in analysis.format_memory_vs_params(summarize("vgg16"))


@pytest.mark.parametrize("channels", [1, 64, 512])
def test_stack_of_3x3_vs_one_large_kernel(channels):
    c = analysis.stack_vs_large_kernel(channels, depth=3, height=56)
    assert c["stack"]["weights"] == 27 * channels**2 and c["single"]["weights"] == 49 * channels**2
    assert c["stack"]["receptive_field"] == c["single"]["receptive_field"] == 7
    assert (c["stack"]["nonlinearities"], c["single"]["nonlinearities"]) == (3, 1)
    assert c["stack"]["macs"] == 27 * channels**2 * 56 * 56
    two = analysis.stack_vs_large_kernel(channels, depth=2, height=8, width=4)
    assert two["single"]["kernel"] == 5 and two["stack"]["weights"] == 18 * channels**2
    assert two["single"]["macs"] == 25 * channels**2 * 32
    assert "27C^2" in analysis.format_stack_vs_large_kernel(c)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs", [
    {"arch": "vgg17"}, {"arch": "resnet50"}, {"arch": []}, {"arch": [64, "X"]},
    {"input_size": 16}, {"input_size": 31}, {"input_size": 0},
    {"batch": 0}, {"batch": -2}, {"batch": 1.5}, {"batch": True},
    {"dtype": "int8"}, {"dtype": "float16"}, {"dtype": "bogus"}, {"dtype": None},
    {"width": 0}, {"algo": "fft"},
])
def test_bad_input_raises_value_error(kwargs):
    kw = {"arch": "vgg16", **kwargs}
    with pytest.raises(ValueError):
        summarize(**kw)


def test_bad_comparison_input():
    for bad in ({"channels": 0}, {"channels": 8, "depth": 0}, {"channels": 8, "height": -1}):
        with pytest.raises(ValueError):
            analysis.stack_vs_large_kernel(**bad)


def test_dtypes_accepted():
    for dt in ("float32", np.float32, np.dtype("float64"), "f8"):
        assert summarize("vgg11", dtype=dt).dtype in ("float32", "float64")


# --------------------------------------------------------------------------- plot

def test_plot_summary_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    from minivgg.analysis.plots import plot_summary

    out = tmp_path / "vgg16.png"
    assert plot_summary(summarize("vgg16"), out) == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg16.png"]  # no temporary left
    with pytest.raises(ValueError):
        plot_summary(summarize("vgg16"), tmp_path / "vgg16.notaformat")


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    from minivgg.analysis import plots

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match="'plot' extra"):
        plots.plot_summary(summarize("vgg11"), "/nonexistent/x.png")
