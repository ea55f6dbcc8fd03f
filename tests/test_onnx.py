"""ONNX out and in, proven with onnxruntime (a third-party engine) and onnx.checker."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from minivgg.cli import main  # noqa: E402
from minivgg.configs import VGGConfig  # noqa: E402
from minivgg.io.files import CheckpointError  # noqa: E402
from minivgg.io.onnx_export import onnx_model  # noqa: E402
from minivgg.io.weights import load_model, save_weights  # noqa: E402
from minivgg.vgg import VGG  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5  # float32, different summation orders


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def _agree(ours, theirs):
    scale = np.abs(theirs).max()
    assert scale > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * scale)


def _small(arch: str, seed: int) -> VGG:
    cfg = VGGConfig.from_arch(arch, num_classes=10, input_size=64, width=0.125, fc_width=32)
    return VGG(cfg, seed=seed)


@pytest.mark.parametrize("arch", ["vgg11", "vgg16"])
def test_export_cli_matches_onnxruntime(tmp_path, rng, arch):
    model = _small(arch, 3)
    save_weights(tmp_path / "w.npz", model.params, model.config)
    assert main(["export", str(tmp_path / "w.npz"), str(tmp_path / "m.onnx")]) == 0
    onnx.checker.check_model(str(tmp_path / "m.onnx"))
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    _agree(model.forward(x), _ort_logits(tmp_path / "m.onnx", x))


@pytest.mark.slow
def test_export_full_vgg16_matches_onnxruntime(tmp_path, rng):
    model = VGG("vgg16", seed=0)
    (tmp_path / "m.onnx").write_bytes(onnx_model(model.params, model.config).SerializeToString())
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    _agree(model.forward(x), _ort_logits(tmp_path / "m.onnx", x))


def test_onnx_round_trip_through_convert(tmp_path, rng):
    model = _small("vgg11", 4)
    (tmp_path / "m.onnx").write_bytes(onnx_model(model.params, model.config).SerializeToString())
    assert main(["convert", str(tmp_path / "m.onnx"), str(tmp_path / "back.npz")]) == 0
    back = load_model(tmp_path / "back.npz")
    assert back.config == model.config
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)


def _zoo_style(model: VGG):
    """A graph in the model zoo's style, built by hand with onnx.helper: Reshape, Gemm transB=1, Dropout."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "data"
    for s in model.config.specs():
        if s.kind == "conv":
            inits += [numpy_helper.from_array(model.params[f"{s.name}.w"], f"{s.name}_W"),
                      numpy_helper.from_array(model.params[f"{s.name}.b"], f"{s.name}_B")]
            nodes.append(helper.make_node("Conv", [x, f"{s.name}_W", f"{s.name}_B"], [s.name],
                                          kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]))
        elif s.kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [s.name]))
        elif s.kind == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [s.name], kernel_shape=[2, 2], strides=[2, 2]))
        elif s.kind == "flatten":
            inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "shape"))
            nodes.append(helper.make_node("Reshape", [x, "shape"], [s.name]))
        elif s.kind == "dense":
            inits += [numpy_helper.from_array(np.ascontiguousarray(model.params[f"{s.name}.w"].T), f"{s.name}_W"),
                      numpy_helper.from_array(model.params[f"{s.name}.b"], f"{s.name}_B")]
            nodes.append(helper.make_node("Gemm", [x, f"{s.name}_W", f"{s.name}_B"], [s.name], transB=1))
        else:
            nodes.append(helper.make_node("Dropout", [x], [s.name]))
        x = s.name
    graph = helper.make_graph(nodes, "zoo", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_zoo_style_graph_reads_and_matches_onnxruntime(tmp_path, rng):
    model = _small("vgg11", 5)
    m = _zoo_style(model)
    onnx.checker.check_model(m)
    path = tmp_path / "zoo.onnx"
    path.write_bytes(m.SerializeToString())
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"data": x})[0]
    _agree(load_model(path).forward(x), want)


def test_unsupported_node_is_named(tmp_path):
    m = _zoo_style(_small("vgg11", 6))
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    relu.op_type, relu.name = "LeakyRelu", "act1"
    path = tmp_path / "odd.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(CheckpointError, match=r"unsupported node 'act1' \(LeakyRelu\)") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_garbage_onnx_is_refused(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\x00not a protobuf" * 10)
    with pytest.raises(CheckpointError, match="junk.onnx"):
        load_model(path)


def test_external_data_initializer_is_refused(tmp_path):
    """A .onnx pointing at weights in another file is refused before that file is opened."""
    m = _zoo_style(_small("vgg11", 7))
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    path = tmp_path / "ext.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(CheckpointError, match=f"initializer {t.name} is stored in an external file"):
        load_model(path)


@pytest.mark.parametrize("arch, size", [("vgg11-lrn", 64), ("alexnet", 227)])
def test_export_lrn_and_grouped_conv_match_onnxruntime(tmp_path, rng, arch, size):
    """LRN (ONNX divides alpha by size, minivgg does not) and AlexNet's grouped convs, checked by onnxruntime."""
    cfg = VGGConfig.from_arch(arch, num_classes=10, input_size=size, width=0.125, fc_width=32)
    model = VGG(cfg, seed=5)
    (tmp_path / "m.onnx").write_bytes(onnx_model(model.params, model.config).SerializeToString())
    # scale the input so LRN's sum of squares is not negligible next to k=2 (else a wrong alpha would pass)
    x = (30 * rng.standard_normal((2, 3, size, size))).astype(np.float32)
    _agree(model.forward(x), _ort_logits(tmp_path / "m.onnx", x))
