"""minivgg.io.weights: PyTorch checkpoints without torch, safety, key mapping, Keras HDF5, .npz.

Checkpoints are produced two ways: by torch itself (parity tests, skipped
without torch) and by a tiny pickle-opcode writer below, which crafts files
torch would write (including the 2017 ``_rebuild_tensor`` form of the
torchvision VGG files) and files it never would (malicious, truncated,
inconsistent) without needing torch.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivgg.configs import VGGConfig
from minivgg.io import keras, npz, torchvision as tv, weights as W
from minivgg.io.files import CheckpointError
from minivgg.io.torch_format import read_torch_checkpoint
from minivgg.vgg import torchvision_keys
from minivgg.io.safe_pickle import UnsafePickleError
from minivgg.vgg import VGG

from _craft import Build, Call, G, PID, dumps, legacy_file, ordered, tensor, write, zip_file

REPO = Path(__file__).resolve().parents[1]
VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


# ---------------------------------------------------------------------------
# Crafted checkpoints (no torch needed)
# ---------------------------------------------------------------------------

def test_legacy_2017_rebuild_tensor_offsets_strides_and_views(tmp_path):
    # storage "s0": 0..7 as float32; tensors over it by offset/stride, written like torch 0.3 did
    s0 = np.arange(8, dtype="<f4").tobytes()
    s1 = np.array([1.5, -2.0, 4.0], dtype="<f8").tobytes()
    main = ordered({
        "whole": tensor("s0", "FloatStorage", 8, 0, (2, 4), (4, 1), v2=False),
        "transposed": tensor("s0", "FloatStorage", 8, 1, (2, 2), (1, 3), v2=False),  # [[1, 4], [2, 5]]
        "viewed": tensor("s0", "FloatStorage", 8, 1, (2,), (2,), v2=False, view=("v", 4, 4)),  # view 4..7 -> [5, 7]
        "double": tensor("s1", "DoubleStorage", 3, 0, (3,), (1,), v2=False),
    })
    path = write(tmp_path / "old.pth", legacy_file(main, [("s0", 8, s0), ("s1", 3, s1)]))
    seen = []
    sd = read_torch_checkpoint(path, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(32, 56), (56, 56)]  # bytes after each storage: 8 float32, then 3 float64
    assert list(sd) == ["whole", "transposed", "viewed", "double"]
    np.testing.assert_array_equal(sd["whole"], [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(sd["transposed"], [[1, 4], [2, 5]])
    np.testing.assert_array_equal(sd["viewed"], [5, 7])
    assert sd["double"].dtype == np.float64 and sd["double"].tolist() == [1.5, -2.0, 4.0]
    sd["transposed"][0, 0] = 99.0  # tensors sharing a storage must not alias each other
    assert sd["whole"][0, 1] == 1.0


def test_zip_and_big_endian_storages(tmp_path):
    vals = np.array([1.0, -0.5, 3.25], dtype=">f2")
    main = dumps(ordered({"h": tensor("0", "HalfStorage", 3, 0, (3,), (1,), legacy=False)}))
    path = zip_file(tmp_path / "big.pth", main, {"0": vals.tobytes()}, top="weird_name", byteorder=b"big")
    seen = []
    sd = read_torch_checkpoint(path, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(6, 6)]
    assert sd["h"].dtype == np.float16 and sd["h"].tolist() == [1.0, -0.5, 3.25]
    raw = np.array([2.0, 8.0], dtype=">f4").tobytes()
    legacy = legacy_file(ordered({"f": tensor("k", "FloatStorage", 2, 0, (2,), (1,))}), [("k", 2, raw)], little=False)
    assert read_torch_checkpoint(write(tmp_path / "bigl.pth", legacy))["f"].tolist() == [2.0, 8.0]
    # negative control: the same big-endian bytes declared little-endian read as garbage
    wrong = zip_file(tmp_path / "wrong.pth", main, {"0": vals.tobytes()}, byteorder=b"little")
    assert read_torch_checkpoint(wrong)["h"].tolist() != [1.0, -0.5, 3.25]


def test_out_of_bounds_tensor_is_refused_before_touching_memory(tmp_path):
    main = ordered({"x": tensor("k", "FloatStorage", 4, 1, (2, 2), (1, 3))})  # last element 1 + 1 + 3 = 5 >= 4
    path = write(tmp_path / "oob.pth", legacy_file(main, [("k", 4, bytes(16))]))
    with pytest.raises(CheckpointError, match="reaches element 5 of storage k, which has only 4"):
        read_torch_checkpoint(path)


MALICIOUS = [("os", "system"), ("posix", "system"), ("builtins", "exec"), ("builtins", "eval"),
             ("subprocess", "call"), ("torch", "load")]


def payload(module: str, name: str, marker: Path):
    if name in ("exec", "eval"):
        code = f"open({str(marker)!r}, 'w').close()"
        return Call(G(module, name), code)
    if module == "subprocess":
        return Call(G(module, name), ["touch", str(marker)])
    return Call(G(module, name), f"touch {marker}")


def test_payload_is_live_without_the_allow_list(tmp_path):
    # negative control: the crafted payload really runs code under a plain unpickler
    marker = tmp_path / "pwned"
    pickle.loads(dumps(payload("builtins", "exec", marker)))  # our own bytes, test-only
    assert marker.exists()


@pytest.mark.parametrize("module,name", MALICIOUS)
@pytest.mark.parametrize("container", ["zip", "legacy-main", "legacy-magic"])
def test_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path, module, name, container):
    marker = tmp_path / "pwned"
    evil = payload(module, name, marker)
    if container == "zip":
        path = zip_file(tmp_path / "evil.pth", dumps(ordered({"w": evil})), {})
    elif container == "legacy-main":
        path = write(tmp_path / "evil.pth", legacy_file(ordered({"w": evil}), []))
    else:
        path = write(tmp_path / "evil.pth", dumps(evil) + dumps(1001))
    with pytest.raises(UnsafePickleError, match=rf"refusing to load global '{module}\.{name}'") as info:
        read_torch_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_build_on_a_tensor_is_refused(tmp_path):
    evil = Build(tensor("k", "FloatStorage", 1, 0, (1,), (1,)), {"storage": None})
    path = write(tmp_path / "build.pth", legacy_file(ordered({"w": evil}), [("k", 1, bytes(4))]))
    with pytest.raises(UnsafePickleError, match="BUILD"):
        read_torch_checkpoint(path)


def test_pickled_module_is_refused_with_a_hint(tmp_path):
    main = dumps(Call(G("torch.nn.modules.container", "Sequential"), ()))
    with pytest.raises(UnsafePickleError, match="state_dict"):
        read_torch_checkpoint(zip_file(tmp_path / "m.pth", main, {}))
    legacy = legacy_file(PID(("module", "x", "y", "z")), [])
    with pytest.raises(CheckpointError, match="only tensor storages"):
        read_torch_checkpoint(write(tmp_path / "m2.pth", legacy))


def good_legacy() -> bytes:
    main = ordered({"a": tensor("k", "FloatStorage", 3, 0, (3,), (1,))})
    return legacy_file(main, [("k", 3, np.array([1, 2, 3], "<f4").tobytes())])


def test_good_legacy_control(tmp_path):
    assert read_torch_checkpoint(write(tmp_path / "ok.pth", good_legacy()))["a"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("cut", [1, 10, 30, 140, -13, -4, -1])
def test_truncated_legacy_file(tmp_path, cut):
    data = good_legacy()
    path = write(tmp_path / "cut.pth", data[:cut] if cut > 0 else data[:len(data) + cut])
    with pytest.raises(CheckpointError, match="truncated|cut short|ends"):
        read_torch_checkpoint(path)


def test_truncated_zip(tmp_path):
    main = dumps(ordered({"a": tensor("0", "FloatStorage", 3, 0, (3,), (1,), legacy=False)}))
    data = zip_file(tmp_path / "z.pth", main, {"0": bytes(12)}).read_bytes()
    for cut in (len(data) // 2, len(data) - 5):
        with pytest.raises(CheckpointError, match="zip"):
            read_torch_checkpoint(write(tmp_path / "zc.pth", data[:cut]))


def test_wrong_magic_version_and_not_a_checkpoint(tmp_path):
    main = ordered({"a": tensor("k", "FloatStorage", 1, 0, (1,), (1,))})
    with pytest.raises(CheckpointError, match="wrong magic number"):
        read_torch_checkpoint(write(tmp_path / "m.pth", legacy_file(main, [("k", 1, bytes(4))], magic=12345)))
    with pytest.raises(CheckpointError, match="protocol version 1000"):
        read_torch_checkpoint(write(tmp_path / "v.pth", legacy_file(main, [("k", 1, bytes(4))], version=1000)))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_torch_checkpoint(write(tmp_path / "t.pth", b"hello, I am text"))


def test_missing_and_inconsistent_storages(tmp_path):
    main = ordered({"a": tensor("k1", "FloatStorage", 2, 0, (2,), (1,)),
                    "b": tensor("k2", "FloatStorage", 2, 0, (2,), (1,))})
    only_one = legacy_file(main, [("k1", 2, bytes(8))])
    with pytest.raises(CheckpointError, match=r"missing data for storage\(s\) \['k2'\]"):
        read_torch_checkpoint(write(tmp_path / "a.pth", only_one))
    wrong_count = legacy_file(main, [("k1", 3, bytes(12)), ("k2", 2, bytes(8))])
    with pytest.raises(CheckpointError, match="holds 3 elements on disk but the tensors declare 2"):
        read_torch_checkpoint(write(tmp_path / "b.pth", wrong_count))
    unused = legacy_file(main, [("k1", 2, bytes(8)), ("k2", 2, bytes(8))], keys=["k1", "k2", "k3"])
    with pytest.raises(CheckpointError, match="k3 is listed but no tensor uses it"):
        read_torch_checkpoint(write(tmp_path / "c.pth", unused))
    zmain = dumps(ordered({"a": tensor("0", "FloatStorage", 2, 0, (2,), (1,), legacy=False)}))
    with pytest.raises(CheckpointError, match=r"missing data for storage\(s\) \['0'\]"):
        read_torch_checkpoint(zip_file(tmp_path / "z.pth", zmain, {}))
    with pytest.raises(CheckpointError, match="storage 0 has 4 bytes"):
        read_torch_checkpoint(zip_file(tmp_path / "z2.pth", zmain, {"0": bytes(4)}))


# ---------------------------------------------------------------------------
# Key mapping and architecture inference (numpy state dicts)
# ---------------------------------------------------------------------------

def test_torchvision_names_match_torchvision_indices():
    n16 = torchvision_keys("vgg16")
    # torchvision vgg16: features = [conv0 relu1 conv2 relu3 pool4 conv5 ... conv28 relu29 pool30]
    assert n16["conv1_1.w"] == "features.0.weight" and n16["conv1_2.b"] == "features.2.bias"
    assert n16["conv2_1.w"] == "features.5.weight" and n16["conv3_1.w"] == "features.10.weight"
    assert n16["conv5_3.w"] == "features.28.weight"
    assert n16["fc6.w"] == "classifier.0.weight" and n16["fc7.b"] == "classifier.3.bias"
    assert n16["fc8.b"] == "classifier.6.bias"
    assert torchvision_keys("vgg11")["conv5_2.w"] == "features.18.weight"
    assert torchvision_keys("vgg13")["conv5_2.w"] == "features.22.weight"
    assert torchvision_keys("vgg19")["conv5_4.w"] == "features.34.weight"
    for arch in ("vgg11", "vgg13", "vgg16", "vgg19"):  # agrees with the model's own documented mapping
        tiny = VGG(arch, num_classes=3, input_size=32, width=0.0625, fc_width=4)
        assert torchvision_keys(arch) == tiny.torchvision_keys()
    assert keras.keras_names("vgg16")["conv3_2"] == "block3_conv2" and keras.keras_names("vgg19")["fc8"] == "predictions"


def random_torchvision_state(cfg, c_in=3, grid=1, fc_width=8, num_classes=5, seed=0):
    """A torchvision-layout state dict built by hand (indices: conv+relu = 2, pool = 1)."""
    rng = np.random.default_rng(seed)
    state, index, c = {}, 0, c_in
    for item in cfg:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = rng.standard_normal((item, c, 3, 3)).astype(np.float32)
        state[f"features.{index}.bias"] = rng.standard_normal(item).astype(np.float32)
        c, index = item, index + 2
    dims = [(fc_width, c * grid * grid), (fc_width, fc_width), (num_classes, fc_width)]
    for idx, (o, i) in zip((0, 3, 6), dims):
        state[f"classifier.{idx}.weight"] = rng.standard_normal((o, i)).astype(np.float32)
        state[f"classifier.{idx}.bias"] = rng.standard_normal(o).astype(np.float32)
    return state


def test_infer_arch_named_scaled_and_custom():
    quarter13 = [16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"]
    arch = tv.infer_torchvision_arch(random_torchvision_state(quarter13, grid=2, fc_width=8, num_classes=7))
    assert arch == VGGConfig(arch="vgg13", num_classes=7, input_size=64, width=0.25, fc_width=8, in_channels=3)
    # no paper config: pools between convs are index gaps; torchvision's one trailing pool is assumed
    custom = [8, "M", 8, 12, "M"]
    arch = tv.infer_torchvision_arch(random_torchvision_state(custom, grid=3))
    assert arch.arch == "custom" and list(arch.layers) == custom and arch.width == 1.0
    assert arch.input_size == 3 * 2 ** 2


def test_from_to_torchvision_roundtrip_and_transpose():
    cfg = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"]  # vgg11 at width 1/8
    state = random_torchvision_state(cfg, grid=2)
    params, arch = tv.from_torchvision(state)
    assert arch.arch == "vgg11" and arch.width == 0.125 and arch.input_size == 64
    assert params["fc6.w"].shape == (64 * 4, 8)
    np.testing.assert_array_equal(params["fc6.w"][5, 3], state["classifier.0.weight"][3, 5])
    np.testing.assert_array_equal(params["conv3_2.w"], state["features.8.weight"])
    back = tv.to_torchvision(params, arch)
    assert list(back) == list(state) and all(np.array_equal(back[k], state[k]) for k in state)
    with pytest.raises(CheckpointError, match="missing"):  # the file is a vgg11, not a vgg16
        tv.from_torchvision(state, arch="vgg16")
    with pytest.raises(CheckpointError, match="batch-norm"):
        tv.from_torchvision({**state, "features.1.running_mean": np.zeros(8, np.float32)})


# ---------------------------------------------------------------------------
# .npz, load_into, convert
# ---------------------------------------------------------------------------

@pytest.fixture
def tiny(tiny_vgg):
    """This module's tiny VGG-11 in float32: 1/8 width, 8-wide fc, 5 classes (overridable)."""
    return lambda **kw: tiny_vgg(**{"num_classes": 5, "width": 0.125, "fc_width": 8, "dtype": np.float32, **kw})


def arch_of(model):
    """The architecture record as the weights writer of format 1 stored it (``__arch__``)."""
    return {"config": model.arch, "num_classes": model.num_classes, "input_size": model.input_size,
            "width": model.width, "fc_width": model.fc_width, "in_channels": model.in_channels}


def test_npz_roundtrip_without_pickle(tiny, tmp_path):
    src = tiny(seed=1)
    path = tmp_path / "w.npz"
    W.save_weights(path, src.params, src.config)
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["__minivgg__"][()]))
        assert "param.conv1_1.w" in z.files and header["config"]["arch"] == "vgg11" and header["format"] == 2
    params, arch = W.read_weights(path)
    assert arch == src.config
    assert all(np.array_equal(params[k], v) for k, v in src.params.items())
    dst = W.load_model(path)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(dst.forward(x), src.forward(x))
    assert not [p for p in tmp_path.iterdir() if p.name != "w.npz"]  # no temp files left behind


def test_npz_of_the_previous_weights_layout_still_loads(tiny, tmp_path):
    src = tiny(seed=1)
    path = tmp_path / "old.npz"
    np.savez(path, __arch__=np.array(json.dumps(arch_of(src))), __minivgg_format__=np.array(1), **src.params)
    params, arch = W.read_weights(path)
    assert arch == src.config.__class__.from_arch(src.config)  # dropout was not stored: the paper's 0.5 both
    assert all(np.array_equal(params[k], v) for k, v in src.params.items())
    # a custom config list, as format 1 wrote it (lists, not tuples)
    custom = VGG([8, "M", (8, 1), "M"], num_classes=3, input_size=8, fc_width=4)
    rec = {**arch_of(custom), "config": [8, "M", [8, 1], "M"]}
    np.savez(tmp_path / "c.npz", __arch__=np.array(json.dumps(rec)), **custom.params)
    assert W.read_weights(tmp_path / "c.npz")[1] == custom.config
    # negative control: a format-1 file whose shapes do not fit its record is still refused
    np.savez(tmp_path / "bad.npz", __arch__=np.array(json.dumps(arch_of(src))),
             **dict(src.params, **{"fc8.b": np.zeros(2, np.float32)}))
    with pytest.raises(CheckpointError, match="fc8.b"):
        W.read_weights(tmp_path / "bad.npz")


def test_npz_write_is_atomic(tiny, tmp_path, monkeypatch):
    good = tiny(seed=1)
    path = tmp_path / "w.npz"
    W.save_weights(path, good.params, good.config)
    before = path.read_bytes()
    bad = dict(good.params, **{"fc6.w": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"fc6.w: expected \(64, 8\), file has \(3, 3\)"):
        W.save_weights(path, bad, good.config)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        W.save_weights(path, good.params, good.config)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_load_into_mismatch_keeps_old_weights(tiny, tmp_path):
    src = tiny(seed=1)
    path = tmp_path / "w.npz"
    W.save_weights(path, src.params, src.config)
    target = tiny(seed=2, fc_width=16)  # fc6/fc7/fc8 differ in shape
    old = {k: v.copy() for k, v in target.params.items()}
    with pytest.raises(ValueError, match=r"fc6\.w: model \(64, 16\), file \(64, 8\)") as info:
        W.load_into(target, path)
    assert "fc8.w" in str(info.value) and str(path) in str(info.value)
    assert all(np.array_equal(target.params[k], old[k]) for k in old)
    other = VGG("vgg13", num_classes=5, input_size=32, width=0.125, fc_width=8)
    with pytest.raises(ValueError, match="conv1_2.w: missing from the file"):
        W.load_into(other, path)
    # negative control: the same file goes into a fitting model and changes it
    fitting = tiny(seed=3)
    W.load_into(fitting, path)
    assert np.array_equal(fitting.params["conv1_1.w"], src.params["conv1_1.w"])


def test_bad_npz_and_extensions(tiny, tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="no __minivgg__ record"):
        npz.read_minivgg(tmp_path / "plain.npz")
    src = tiny()
    arrays = dict(src.params, **{"conv2_1.w": np.zeros((1, 1, 3, 3), np.float32)})
    header = {"format": 2, "config": src.config.to_dict(), "meta": {}}
    np.savez(tmp_path / "bad.npz", __minivgg__=np.array(json.dumps(header)),
             **{f"param.{k}": v for k, v in arrays.items()})
    with pytest.raises(CheckpointError, match=r"conv2_1.w: expected \(16, 8, 3, 3\), file has \(1, 1, 3, 3\)"):
        npz.read_minivgg(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="unknown weights file extension"):
        W.read_weights(tmp_path / "w.tflite")
    with pytest.raises(ValueError, match="ending in .npz"):  # the one output rule names the suffix
        W.convert(tmp_path / "plain.npz", tmp_path / "out.txt")


# ---------------------------------------------------------------------------
# Source hygiene: no torch import, no pickle.load
# ---------------------------------------------------------------------------

def forbidden_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "torch"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in ("load", "loads") and \
                isinstance(node.value, ast.Name) and node.value.id in ("pickle", "cPickle", "dill"):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg == "allow_pickle" and \
                isinstance(node.value, ast.Constant) and node.value.value is True:
            found.append("allow_pickle=True")
    return found


def test_loader_source_has_no_torch_and_no_pickle_load():
    readers = sorted((REPO / "minivgg" / "io").glob("*.py"))
    assert len(readers) >= 4, readers  # the walk found the file readers
    for path in readers:
        assert forbidden_uses(path.read_text()) == [], path.name
    # negative control: the checker sees each forbidden form
    bad = "import torch\nfrom torch.nn import Linear\nimport pickle\npickle.load(f)\nnp.load(p, allow_pickle=True)\n"
    assert forbidden_uses(bad) == ["torch", "torch.nn", "pickle.load", "allow_pickle=True"]


# ---------------------------------------------------------------------------
# Keras HDF5
# ---------------------------------------------------------------------------

def keras_layers(seed=0):
    """Random Keras-layout weights for vgg11 at width 1/8, 64 px (pool5 grid 2x2), fc 16, 5 classes."""
    rng = np.random.default_rng(seed)
    blocks = [[8], [16], [32, 32], [64, 64], [64, 64]]
    layers, c = {}, 3
    for b, chans in enumerate(blocks, 1):
        for i, f in enumerate(chans, 1):
            layers[f"block{b}_conv{i}"] = (rng.standard_normal((3, 3, c, f)).astype(np.float32) * 0.3,
                                           rng.standard_normal(f).astype(np.float32) * 0.1)
            c = f
    for name, (i, o) in (("fc1", (2 * 2 * 64, 16)), ("fc2", (16, 16)), ("predictions", (16, 5))):
        layers[name] = (rng.standard_normal((i, o)).astype(np.float32) * 0.2,
                        rng.standard_normal(o).astype(np.float32) * 0.1)
    return layers


def write_keras(path, layers, nested=False):
    """A Keras weights file: root attr layer_names, one group per layer with attr weight_names."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if nested else f
        for name, (kernel, bias) in layers.items():
            group = root.create_group(name)
            if nested:  # later Keras: <layer>/<layer>/kernel:0
                names = [f"{name}/kernel:0", f"{name}/bias:0"]
            else:       # the original vgg16_weights_tf_dim_ordering_tf_kernels.h5: <layer>_W_1:0
                names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            group.create_dataset(names[0], data=kernel)
            group.create_dataset(names[1], data=bias)
            group.attrs["weight_names"] = [n.encode() for n in names]
        for empty in ("input_1", "block1_pool", "flatten"):  # layers without weights
            root.create_group(empty).attrs["weight_names"] = np.array([], dtype="S1")
        order = ["input_1", "block1_conv1", "block1_pool"] + [n for n in layers if n != "block1_conv1"] + ["flatten"]
        root.attrs["layer_names"] = [n.encode() for n in order if n in root]
    return path


def hand_converted(layers):
    """minivgg params from Keras weights with explicit index loops (independent of weights.py)."""
    names = {"block1_conv1": "conv1_1", "block2_conv1": "conv2_1", "block3_conv1": "conv3_1",
             "block3_conv2": "conv3_2", "block4_conv1": "conv4_1", "block4_conv2": "conv4_2",
             "block5_conv1": "conv5_1", "block5_conv2": "conv5_2"}
    params = {}
    for theirs, ours in names.items():
        k, b = layers[theirs]
        kh, kw, c, f = k.shape
        w = np.empty((f, c, kh, kw), np.float32)
        for o in range(f):
            for i in range(c):
                w[o, i] = k[:, :, i, o]
        params[f"{ours}.w"], params[f"{ours}.b"] = w, b
    k1, b1 = layers["fc1"]
    C, H, Wd = 64, 2, 2
    w1 = np.empty_like(k1)
    for c in range(C):
        for h in range(H):
            for x in range(Wd):
                w1[c * H * Wd + h * Wd + x] = k1[h * Wd * C + x * C + c]
    params["fc6.w"], params["fc6.b"] = w1, b1
    params["fc7.w"], params["fc7.b"] = layers["fc2"]
    params["fc8.w"], params["fc8.b"] = layers["predictions"]
    return params


@pytest.mark.parametrize("nested", [False, True])
def test_keras_h5_mapping(tmp_path, nested):
    layers = keras_layers()
    path = write_keras(tmp_path / "vgg.h5", layers, nested=nested)
    model = W.load_model(path)
    assert (model.arch, model.width, model.input_size, model.fc_width, model.num_classes) == ("vgg11", 0.125, 64, 16, 5)
    expected = VGG("vgg11", num_classes=5, input_size=64, width=0.125, fc_width=16)
    expected.load_params(hand_converted(layers))
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    out = model.forward(x)
    np.testing.assert_allclose(out, expected.forward(x), rtol=1e-6, atol=1e-6)
    # Keras semantics end to end: flatten pool5 channels-last and use the Keras dense kernels as they are
    feats = model.features(x, "pool5").transpose(0, 2, 3, 1).reshape(2, -1)  # (N, H*W*C)
    h = np.maximum(feats @ layers["fc1"][0] + layers["fc1"][1], 0)
    h = np.maximum(h @ layers["fc2"][0] + layers["fc2"][1], 0)
    np.testing.assert_allclose(out, h @ layers["predictions"][0] + layers["predictions"][1], rtol=1e-5, atol=1e-5)
    # negative control: skipping the fc1 row permutation gives different logits
    unpermuted = hand_converted(layers)
    unpermuted["fc6.w"] = layers["fc1"][0]
    expected.load_params(unpermuted)
    assert np.abs(expected.forward(x) - out).max() > 1e-2 * np.abs(out).max()


def test_keras_notop_file_is_refused(tmp_path):
    layers = {k: v for k, v in keras_layers().items() if k.startswith("block")}
    with pytest.raises(CheckpointError, match="notop"):
        W.read_weights(write_keras(tmp_path / "notop.h5", layers))


# ---------------------------------------------------------------------------
# Parity with PyTorch (skipped without torch)
# ---------------------------------------------------------------------------

def torch_vgg(torch, cfg, grid, fc_width, num_classes, seed=0):
    """torchvision's VGG module layout (features/classifier indices), without the adaptive pool."""
    nn = torch.nn

    class TorchVGG(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 3
            for v in cfg:
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                    c = v
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(
                nn.Linear(c * grid * grid, fc_width), nn.ReLU(True), nn.Dropout(),
                nn.Linear(fc_width, fc_width), nn.ReLU(True), nn.Dropout(), nn.Linear(fc_width, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    torch.manual_seed(seed)
    net = TorchVGG().eval()
    with torch.no_grad():  # He init keeps the signal alive through 16 layers, so logits depend on the input
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.normal_(m.bias, std=0.1)
    return net


BLOCK_TORCH = """
import sys
class _BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")
sys.meta_path.insert(0, _BlockTorch())
try:
    import torch
    raise SystemExit("the torch blocker does not work")
except ImportError:
    pass
from minivgg.io import weights
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    weights.convert(src, dst)
leaked = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
assert not leaked, leaked
print("converted", len(sys.argv[1:]) // 2)
"""


def convert_without_torch(pairs):
    args = [str(Path(p).resolve()) for pair in pairs for p in pair]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"converted {len(pairs)}" in proc.stdout


def max_rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def torch_checkpoints(tmp_path_factory):
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name, cfg in (("vgg11", VGG11), ("vgg16", VGG16)):
        net = torch_vgg(torch, cfg, grid=1, fc_width=256, num_classes=10)
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            logits = net(x).numpy()
        for fmt, zip_format in (("zip", True), ("legacy", False)):
            path = root / f"{name}-{fmt}.pth"
            torch.save(net.state_dict(), path, _use_new_zipfile_serialization=zip_format)
            out[name, fmt] = (path, x.numpy(), logits)
    pairs = [(p, p.with_suffix(".npz")) for p, _, _ in out.values()]
    convert_without_torch(pairs)
    return out


@pytest.mark.torch
@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_torch_parity_logits(torch_checkpoints, name, fmt):
    path, x, ref = torch_checkpoints[name, fmt]
    model = W.load_model(path.with_suffix(".npz"))  # converted in a process where torch cannot be imported
    assert (model.arch, model.input_size, model.fc_width, model.num_classes) == (name, 32, 256, 10)
    out = model.forward(x)
    assert max_rel(out, ref) <= 1e-4
    assert max_rel(out[::-1], ref) > 1e-2  # negative control: the tolerance tells the two images apart
    direct, _ = W.read_weights(path)  # the .pth read in this process gives the same arrays
    assert all(np.array_equal(direct[k], v) for k, v in model.params.items())


@pytest.mark.torch
def test_torch_file_into_wrong_model_keeps_old_weights(torch_checkpoints):
    path = torch_checkpoints["vgg11", "legacy"][0]
    target = VGG("vgg11", num_classes=10, input_size=64, fc_width=256)  # fc6 sees a 2x2 grid, file has 1x1
    old = {k: v.copy() for k, v in target.params.items()}
    with pytest.raises(ValueError, match=r"fc6\.w: model \(2048, 256\), file \(512, 256\)"):
        W.load_into(target, path)
    assert all(np.array_equal(target.params[k], old[k]) for k in old)


@pytest.mark.torch
@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_dtypes_views_and_parameters(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    saved = {
        "f32": base, "f64": base.double(), "f16": base.half(), "bf16": base.bfloat16(),
        "transposed": base.t(), "slice": base[1:3, 1::2], "i64": torch.arange(5),
        "param": torch.nn.Parameter(base[0].clone()),
    }
    path = tmp_path / "t.pth"
    torch.save(saved, path, _use_new_zipfile_serialization=zip_format)
    sd = read_torch_checkpoint(path)
    for k, t in saved.items():
        want = t.detach().float().numpy() if k == "bf16" else t.detach().numpy()
        assert sd[k].dtype == want.dtype, k
        np.testing.assert_array_equal(sd[k], want, err_msg=k)
    assert sd["f64"].dtype == np.float64 and sd["f16"].dtype == np.float16 and sd["bf16"].dtype == np.float32
    wrapped = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in saved.items() if k != "param"}, "epoch": 3}, wrapped,
               _use_new_zipfile_serialization=zip_format)
    assert set(read_torch_checkpoint(wrapped)) == set(saved) - {"param"}


@pytest.mark.torch
def test_torch_truncated_real_files(torch_checkpoints, tmp_path):
    for fmt in ("zip", "legacy"):
        data = torch_checkpoints["vgg11", fmt][0].read_bytes()
        cut = write(tmp_path / f"cut-{fmt}.pth", data[: len(data) - 1000])
        with pytest.raises(CheckpointError):
            W.read_weights(cut)


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("zip_format", [True, False])
def test_full_vgg16_224_parity(tmp_path, zip_format):
    """torchvision's real VGG-16 shapes (138M parameters, 7x7 grid at fc6), random weights."""
    torch = pytest.importorskip("torch")
    net = torch_vgg(torch, VGG16, grid=7, fc_width=4096, num_classes=1000)
    path = tmp_path / "vgg16.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=zip_format)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = net(x).numpy()
    del net
    model = W.load_model(path)
    assert (model.arch, model.input_size, model.num_params) == ("vgg16", 224, 138_357_544)
    assert max_rel(model.forward(x.numpy()), ref) <= 1e-4


def test_many_tensors_over_one_storage_are_refused_before_copying(tmp_path):
    """A small file naming one storage from many tensors must not multiply into gigabytes of copies."""
    import tracemalloc

    n = 1 << 18  # a 1 MiB float32 storage
    raw = bytes(4 * n)

    def file_with(copies: int) -> Path:
        main = ordered({f"t{i}": tensor("0", "FloatStorage", n, 0, (n,), (1,), legacy=False) for i in range(copies)})
        return zip_file(tmp_path / f"x{copies}.pth", dumps(main), {"0": raw})

    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="more than 4 times"):
            read_torch_checkpoint(file_with(64))  # 64 MiB of copies from a 1 MiB file
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20
    tied = read_torch_checkpoint(file_with(2))  # negative control: tied weights (two keys, one storage) load
    assert tied["t0"].shape == tied["t1"].shape == (n,) and not np.shares_memory(tied["t0"], tied["t1"])
