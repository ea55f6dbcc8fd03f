"""The analytic model proven on real models -- and the verifier shown to catch wrong figures.

Small configs keep this file fast; the full VGG-16 at 224x224 is marked slow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minivgg import VGG
from minivgg.analysis import summarize_specs
from minivgg.analysis.measure import measure_memory, measure_receptive_field, measure_receptive_fields
from minivgg.analysis.verify import MEMORY_RTOL, verify


@pytest.fixture(scope="module")
def small():
    # the small config: VGG-11 at a quarter width, 32x32 (fc at full 4096)
    return VGG("vgg11", input_size=32, width=0.25)


@pytest.fixture(scope="module")
def small_report(small):
    return verify(small, batch=4)


def _summary(model, specs=None, **kw):
    return summarize_specs(model.specs if specs is None else specs, arch=model.arch, batch=kw.pop("batch", 4),
                           dtype=kw.pop("dtype", model.dtype), **kw)


# --------------------------------------------------------------------------- it passes where it should

def test_small_config_passes_every_check(small_report):
    r = small_report
    assert r.ok, str(r)
    kinds = {c.kind for c in r.checks}
    assert {"params", "shape", "memory", "peak", "receptive_field"} <= kinds
    assert len(r.by_kind("params")) == len(r.by_kind("shape")) == 29
    # measured within 5% of the prediction (tracemalloc, input excluded)
    assert abs(r.memory_measured / r.memory_analytic - 1) <= MEMORY_RTOL
    assert r.memory_analytic > 1_000_000  # about 1 MB: the check is not comparing zeros
    text = str(r)
    assert "PASS" in text and "pool5" in text and "tracemalloc" in text


@pytest.mark.parametrize("kwargs", [
    dict(config="vgg16c", input_size=40, width=0.25, fc_width=32),                       # 1x1 convs, odd pools
    dict(config=[8, (8, 5), "M", 16, "M"], input_size=37, fc_width=16, in_channels=1,
         dtype=np.float64),                                                               # 5x5 conv, float64
    dict(config="vgg13", input_size=33, width=0.125, fc_width=16, dropout=0.0),          # no dropout masks
])
def test_other_configs_pass(kwargs):
    report = verify(VGG(**kwargs), batch=3)
    assert report.ok, str(report)


def test_three_stacked_3x3_convs_measure_exactly_7x7():
    model = VGG([8, 8, 8], input_size=16, fc_width=8)
    assert measure_receptive_field(model, "conv1_1") == (3, 3)
    assert measure_receptive_field(model, "conv1_2") == (5, 5)
    assert measure_receptive_field(model, "conv1_3") == (7, 7)


def test_measurement_leaves_the_model_untouched(small):
    before = {k: (v, v.copy()) for k, v in small.params.items()}
    seen = []
    measure_receptive_fields(small, ["pool2", "fc6"], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]  # one report per layer measured
    measure_memory(small, batch=2)
    for k, (arr, copy) in before.items():
        assert small.params[k] is arr and np.array_equal(arr, copy)
    with pytest.raises(RuntimeError):  # no training cache left behind
        small.backward(np.ones((2, 1000), dtype=small.dtype))


# --------------------------------------------------------------------------- negative controls

def test_perturbed_spec_is_caught(small):
    specs = list(small.specs)
    i = next(k for k, s in enumerate(specs) if s.name == "conv3_1")
    specs[i] = dataclasses.replace(specs[i], in_channels=specs[i].in_channels + 1)  # one wrong weight count
    report = verify(small, batch=2, summary=_summary(small, specs, batch=2), memory=False,
                    receptive_field=False)
    assert not report.ok
    assert [c.layer for c in report.failures()] == ["conv3_1"]
    assert "PASS" not in str(report) and "conv3_1" in str(report)


def test_wrong_memory_prediction_is_caught(small, small_report):
    right = _summary(small)
    wrong = dataclasses.replace(right, totals=dataclasses.replace(
        right.totals, backward_bytes=int(right.totals.backward_bytes * 1.10)))
    report = verify(small, batch=4, summary=wrong, receptive_field=False)
    assert [c.kind for c in report.failures()] == ["memory"]
    # ... while a figure inside the tolerance is accepted
    close = dataclasses.replace(right, totals=dataclasses.replace(
        right.totals, backward_bytes=small_report.memory_measured))
    assert verify(small, batch=4, summary=close, receptive_field=False).ok


def test_wrong_dtype_in_the_analysis_is_caught(small):
    report = verify(small, batch=2, summary=_summary(small, batch=2, dtype="float64"), receptive_field=False)
    kinds = {c.kind for c in report.failures()}
    assert "params" in kinds and "memory" in kinds  # float64 arrays predicted, float32 found; 2x the bytes


def test_model_with_an_extra_channel_fails_shapes_and_params():
    model = VGG("vgg11", input_size=32, width=0.125, fc_width=16)
    conv, nxt = model.layers["conv1_1"], model.layers["conv2_1"]
    f = conv.params["w"].shape[0]
    rng = np.random.default_rng(0)
    conv.params["w"] = rng.standard_normal((f + 1, 3, 3, 3)).astype(np.float32)
    conv.params["b"] = np.zeros(f + 1, np.float32)
    w = nxt.params["w"]
    nxt.params["w"] = rng.standard_normal((w.shape[0], f + 1, 3, 3)).astype(np.float32)
    report = verify(model, batch=2, summary=_summary(model, batch=2), receptive_field=False)
    failed = {(c.kind, c.layer) for c in report.failures()}
    assert {("params", "conv1_1"), ("params", "conv2_1"), ("shape", "conv1_1"), ("shape", "relu1_1"),
            ("shape", "pool1")} <= failed
    assert ("shape", "conv2_1") not in failed  # conv2_1 restores the analytic shape


def test_a_shape_error_is_reported_not_raised():
    model = VGG("vgg11", input_size=32, width=0.125, fc_width=16)
    conv = model.layers["conv1_1"]
    f = conv.params["w"].shape[0]
    conv.params["w"] = np.ones((f + 1, 3, 3, 3), np.float32)  # conv2_1 will refuse f + 1 channels
    conv.params["b"] = np.zeros(f + 1, np.float32)
    report = verify(model, batch=1, memory=False, receptive_field=False)
    bad = [c for c in report.failures() if c.kind == "shape"]
    assert bad[-1].layer == "conv2_1" and "raised" in bad[-1].note


def test_wrong_receptive_field_is_caught():
    model = VGG([8, 8, "M"], input_size=16, fc_width=8)
    specs = list(model.specs)
    # claim conv1_1 is 5x5 (pad 2): same output shape, different field
    specs[0] = dataclasses.replace(specs[0], kernel=5, pad=2)
    report = verify(model, batch=1, summary=_summary(model, specs, batch=1), memory=False,
                    rf_layers=["conv1_1", "conv1_2", "pool1"])
    rf_failed = {c.layer for c in report.failures() if c.kind == "receptive_field"}
    assert rf_failed == {"conv1_1", "conv1_2", "pool1"}


def test_bad_arguments():
    model = VGG([8, "M"], input_size=8, fc_width=8)
    with pytest.raises(ValueError):
        verify(model, batch=0)
    with pytest.raises(ValueError, match="no layer named"):
        measure_receptive_field(model, "conv9_9")
    with pytest.raises(ValueError):
        measure_receptive_fields(model, rf_channels=0)


# --------------------------------------------------------------------------- the published fields, measured

@pytest.mark.slow
def test_vgg16_fields_measured_at_224():
    # geometry of VGG-16 at 224x224 (channels thinned: the field depends on kernel/stride/pad only)
    model = VGG("vgg16", input_size=224, width=0.125, fc_width=16)
    fields = measure_receptive_fields(model, ["conv5_3", "pool5", "fc6"])
    assert fields["conv5_3"] == ((6, 201), (6, 201))     # 196 wide
    assert fields["pool5"] == ((6, 217), (6, 217))       # 212 wide
    assert fields["fc6"] == ((0, 223), (0, 223))         # every fc unit sees the whole image


@pytest.mark.slow
def test_full_vgg16_at_224_memory_within_5_percent():
    model = VGG("vgg16", input_size=224)
    report = verify(model, batch=1, receptive_field=False)
    assert report.ok, str(report)
    assert report.memory_analytic == 61_915_648
    assert abs(report.memory_measured / report.memory_analytic - 1) <= MEMORY_RTOL
    assert sum(c.measured for c in report.by_kind("params")) == 138_357_544
