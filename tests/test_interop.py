"""Interop proven against third-party engines: torch -> safetensors (timm layout) -> minivgg, minivgg -> .pth -> torch.

The oracle for logits is always torch's own forward pass; minivgg only reads or writes the file.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict

import numpy as np
import pytest

from minivgg.io.files import CheckpointError
from minivgg.io.safetensors import read_safetensors
from minivgg.io.weights import convert, load_model

#: VGG-11 at width 1/8: 5 pools, input 64 -> a 2x2 map, so fc6's flatten order matters.
LAYERS = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"]
SIDE, FC, CLASSES = 64, 32, 10
RTOL, ATOL = 1e-4, 1e-5  # float32: different summation orders of the same products


def write_safetensors(path, tensors: dict, *, header_edit=None) -> None:
    """The documented format, written independently of minivgg: u64 LE header length, JSON header, raw data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if header_edit:
        header_edit(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _torch_features(torch):
    mods, c = [], 3
    for item in LAYERS:
        if item == "M":
            mods.append(torch.nn.MaxPool2d(2, 2))
        else:
            mods += [torch.nn.Conv2d(c, item, 3, padding=1), torch.nn.ReLU()]
            c = item
    return torch.nn.Sequential(*mods), c


def timm_vgg(torch):
    """timm's VGG structure: features, pre_logits (ConvMlp: fc1 as a kxk conv, fc2 as 1x1), head.fc."""
    nn = torch.nn

    class ConvMlp(nn.Module):
        def __init__(self, c, k):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, FC, k), nn.Conv2d(FC, FC, 1)

        def forward(self, x):
            return torch.relu(self.fc2(torch.relu(self.fc1(x))))

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(FC, CLASSES)

        def forward(self, x):
            return self.fc(torch.flatten(x, 1))

    class TimmVGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, c = _torch_features(torch)
            self.pre_logits, self.head = ConvMlp(c, SIDE // 32), Head()

        def forward(self, x):
            return self.head(self.pre_logits(self.features(x)))

    return TimmVGG().eval()


def torchvision_vgg(torch):
    """torchvision's VGG structure (without its adaptive avgpool, the identity at 224): features, flatten, classifier."""
    nn = torch.nn
    features, c = _torch_features(torch)
    side = SIDE // 32

    class TVVGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features
            self.classifier = nn.Sequential(nn.Linear(c * side * side, FC), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(FC, FC), nn.ReLU(), nn.Dropout(), nn.Linear(FC, CLASSES))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return TVVGG().eval()


def _randomize(torch, model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (2.0 / max(1, p[0].numel())) ** 0.5)
            # biases nonzero too: a dropped bias must show in the logits
    return model


def _agree(ours: np.ndarray, theirs: np.ndarray) -> None:
    scale = np.abs(theirs).max()
    assert scale > 1e-3  # non-trivial logits
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * scale)


def test_torch_timm_safetensors_to_minivgg(tmp_path, rng):
    torch = pytest.importorskip("torch")
    net = _randomize(torch, timm_vgg(torch), 0)
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    assert state["pre_logits.fc1.weight"].shape == (FC, 64, 2, 2)  # fc6 stored as a conv, as in timm
    path = tmp_path / "model.safetensors"
    write_safetensors(path, state)
    model = load_model(path)
    assert model.config.arch == "vgg11" and model.config.input_size == SIDE
    x = rng.standard_normal((3, 3, SIDE, SIDE)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    _agree(model.forward(x), want)


def test_torchvision_layout_safetensors_and_pth_out(tmp_path, rng):
    torch = pytest.importorskip("torch")
    net = _randomize(torch, torchvision_vgg(torch), 1)
    src = tmp_path / "tv.safetensors"
    write_safetensors(src, {k: v.numpy() for k, v in net.state_dict().items()})
    out = tmp_path / "out.pth"
    convert(src, out)  # minivgg writes the .pth, torch reads it
    loaded = torch.load(out, weights_only=True)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(net.state_dict())
    fresh = torchvision_vgg(torch)
    fresh.load_state_dict(loaded)  # strict: every key and shape
    x = rng.standard_normal((2, 3, SIDE, SIDE)).astype(np.float32)
    with torch.no_grad():
        want, got = net(torch.from_numpy(x)).numpy(), fresh(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, want)  # float32 in, float32 out: bit-identical weights
    _agree(load_model(out).forward(x), want)  # and minivgg's own reader agrees


def test_safetensors_reader_reads_known_values(tmp_path):
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([-1.5], np.float32)
    write_safetensors(tmp_path / "t.safetensors", {"a": a, "b": b})
    got = read_safetensors(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)


def _shift(name, by):
    def edit(h):
        h[name]["data_offsets"] = [o + by for o in h[name]["data_offsets"]]
    return edit


@pytest.mark.parametrize("case, pattern", [
    ("truncated", "past its end|cover"),
    ("huge_header", "header claims"),
    ("short", "too short"),
    ("past_eof", "past its end"),
    ("overlap", "overlaps"),
    ("wrong_shape", "needs"),
    ("bad_dtype", "dtype"),
    ("not_json", "JSON"),
])
def test_hostile_safetensors(tmp_path, case, pattern):
    path = tmp_path / "bad.safetensors"
    tensors = {"a": np.ones((4, 4), np.float32), "b": np.ones(4, np.float32)}
    edits = {
        "past_eof": lambda h: h["b"].update(data_offsets=[64, 10 ** 12]),
        "overlap": lambda h: h["b"].update(data_offsets=[0, 16]),
        "wrong_shape": lambda h: h["a"].update(shape=[4, 5]),
        "bad_dtype": lambda h: h["a"].update(dtype="I8"),
    }
    write_safetensors(path, tensors, header_edit=edits.get(case))
    raw = path.read_bytes()
    if case == "truncated":
        path.write_bytes(raw[:-5])
    elif case == "huge_header":
        path.write_bytes(struct.pack("<Q", 2 ** 62) + raw[8:])
    elif case == "short":
        path.write_bytes(raw[:5])
    elif case == "not_json":
        (n,) = struct.unpack("<Q", raw[:8])
        path.write_bytes(raw[:8] + b"\xff" * n + raw[8 + n:])
    with pytest.raises(CheckpointError, match=pattern) as err:
        read_safetensors(path)
    assert str(path) in str(err.value)


def test_good_file_passes_the_same_checks(tmp_path):
    """Negative control for the hostile cases: the unedited file is accepted."""
    path = tmp_path / "ok.safetensors"
    write_safetensors(path, {"a": np.ones((4, 4), np.float32), "b": np.ones(4, np.float32)})
    assert set(read_safetensors(path)) == {"a", "b"}


def test_half_and_bfloat16_values(tmp_path):
    """F16 kept as float16; BF16 (the top 16 bits of a float32) widened to float32, exactly."""
    half = np.array([0.5, -2.0, 65504.0], "<f2")
    full = np.array([1.0, -3.5, 2.0 ** -10], "<f4")  # exactly representable in bfloat16
    bf16 = (full.view("<u4") >> 16).astype("<u2")
    header = {"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [6, 12]}}
    text = json.dumps(header).encode()
    path = tmp_path / "half.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + half.tobytes() + bf16.tobytes())
    got = read_safetensors(path)
    assert got["h"].dtype == np.float16 and got["b"].dtype == np.float32
    np.testing.assert_array_equal(got["h"], half)
    np.testing.assert_array_equal(got["b"], full)


def test_pth_out_is_refused_for_a_bad_suffix_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz, \.pth, \.pt"):
        convert(tmp_path / "missing.safetensors", tmp_path / "out.h5")


def test_predict_accepts_safetensors(tmp_path, tiny_vgg, capsys):
    """The same weights as .npz and as a torchvision-layout .safetensors print the same top-3."""
    pil = pytest.importorskip("PIL.Image")
    from minivgg.cli import main
    from minivgg.io.torchvision import to_torchvision
    from minivgg.io.weights import save_weights

    model = tiny_vgg(num_classes=1000, dtype=np.float32, seed=7)
    save_weights(tmp_path / "w.npz", model.params, model.config)
    write_safetensors(tmp_path / "w.safetensors", to_torchvision(model.params, model.config))
    image = tmp_path / "cat.png"
    pil.fromarray(np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    printed = []
    for name in ("w.npz", "w.safetensors"):
        assert main(["predict", str(image), "--weights", str(tmp_path / name), "--top", "3"]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and printed[0].count("class") == 3
