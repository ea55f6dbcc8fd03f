"""Embedded shapes, the CIFAR-10 / MNIST loaders on format-exact files, augmentation, batching."""

from __future__ import annotations

import gzip
import os
import pickle
import shlex
import struct
from pathlib import Path

import numpy as np
import pytest

from minivgg.training.data import (
    SHAPE_CLASSES,
    channel_mean,
    class_names,
    iterate_minibatches,
    load_cifar10,
    load_mnist,
    load_shapes,
    make_shapes,
    random_crop,
    random_flip,
    subtract_mean,
    to_float,
)
from minivgg.io.safe_pickle import UnsafePickleError


# ====================================================================== shapes
def fit_linear_softmax(x, y, k, *, iters=120, lr=0.5, reg=1e-4):
    """Multinomial logistic regression on standardised features, full-batch GD with momentum.

    A test helper, deliberately independent of minivgg. Returns a predict function.
    """
    x = x.reshape(len(x), -1).astype(np.float32)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = np.zeros((z.shape[1], k), np.float32)
    b = np.zeros(k, np.float32)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    onehot = np.eye(k, dtype=np.float32)[y]
    for _ in range(iters):
        s = z @ w + b
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        d = (p - onehot) / len(z)
        vw = 0.9 * vw - lr * (z.T @ d + reg * w)
        vb = 0.9 * vb - lr * d.sum(0)
        w += vw
        b += vb
    return lambda xs: (((xs.reshape(len(xs), -1).astype(np.float32) - mu) / sd) @ w + b).argmax(1)


def leak_label_into_colour(x, y):
    """A deliberately broken variant: the image's colour level encodes the class."""
    return 0.02 * x + 0.1 * y[:, None, None, None].astype(np.float32)


def leak_label_into_pixels(x, y):
    """A deliberately broken variant: a bright band at columns 3y..3y+2 marks the class."""
    out = x.copy()
    for c in range(10):
        out[y == c, :, :, 3 * c : 3 * c + 3] = 1.0
    return out


def knn_accuracy(f_train, y_train, f_val, y_val, k=15):
    """k-nearest-neighbour accuracy on standardised features (a probe with no linearity assumption)."""
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-9
    a, b = (f_train - mu) / sd, (f_val - mu) / sd
    d = (b * b).sum(1)[:, None] - 2 * b @ a.T + (a * a).sum(1)[None, :]
    nearest = y_train[np.argsort(d, axis=1)[:, :k]]  # (n_val, k)
    votes = np.stack([(nearest == c).sum(1) for c in range(10)], axis=1)
    return (votes.argmax(1) == y_val).mean()


@pytest.fixture(scope="module")
def shapes_split():
    return load_shapes(3000, 1000, seed=0)


def test_make_shapes_shapes_dtypes_range():
    x, y = make_shapes(37, seed=1)
    assert x.shape == (37, 3, 32, 32) and x.dtype == np.float32
    assert y.shape == (37,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(np.unique(y)) <= set(range(10))
    x16, _ = make_shapes(5, seed=1, size=16)
    assert x16.shape == (5, 3, 16, 16)
    x0, y0 = make_shapes(0)
    assert x0.shape == (0, 3, 32, 32) and y0.shape == (0,)
    assert len(SHAPE_CLASSES) == 10 == len(set(SHAPE_CLASSES)) and class_names == list(SHAPE_CLASSES)


def test_make_shapes_deterministic_and_prefix_stable(monkeypatch):
    a = make_shapes(120, seed=7)
    b = make_shapes(120, seed=7)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    c = make_shapes(120, seed=8)
    assert not np.array_equal(a[0], c[0])
    # The documented guarantee: sample i depends only on (seed, size, classes, i),
    # even across the internal render-chunk boundary (2048).
    small = make_shapes(13, seed=7)
    assert np.array_equal(a[0][:13], small[0]) and np.array_equal(a[1][:13], small[1])
    big = make_shapes(2100, seed=7)
    assert np.array_equal(big[0][:120], a[0]) and np.array_equal(big[1][:120], a[1])
    # Rendering in other chunk sizes gives the same bits.
    import minivgg.training.data.shapes as data_mod

    monkeypatch.setattr(data_mod, "_RENDER_CHUNK", 7)
    rechunked = make_shapes(120, seed=7)
    assert rechunked[0].tobytes() == a[0].tobytes()


def test_make_shapes_class_balance():
    _, y = make_shapes(1000, seed=3)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [100] * 10)
    for block in y.reshape(100, 10):  # each block of 10 is a permutation of the classes
        assert sorted(block) == list(range(10))
    assert not all(np.array_equal(y[:10], y[i : i + 10]) for i in range(10, 1000, 10))  # not one fixed order
    _, y = make_shapes(1005, seed=3)
    counts = np.bincount(y, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1005


def test_make_shapes_class_subset():
    x, y = make_shapes(40, seed=0, classes=("ring", "cross", "diamond"))
    assert set(np.unique(y)) == {0, 1, 2}
    assert x.shape == (40, 3, 32, 32)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"n": -1}, ValueError, "n must"),
        ({"n": 2.5}, ValueError, "n must"),
        ({"n": 4, "size": 4}, ValueError, "size"),
        ({"n": 4, "classes": ("circle", "hexagon")}, ValueError, "hexagon"),
        ({"n": 4, "classes": ("circle", "circle")}, ValueError, "duplicates"),
        ({"n": 4, "classes": ()}, ValueError, "empty"),
        ({"n": 4, "classes": "circle"}, TypeError, "sequence"),
        ({"n": 4, "seed": -3}, ValueError, "seed"),
    ],
)
def test_make_shapes_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        make_shapes(**kw)


def test_load_shapes_splits(shapes_split):
    s = shapes_split
    assert s.x_train.shape == (3000, 3, 32, 32) and s.x_val.shape == (1000, 3, 32, 32)
    assert s.class_names == list(SHAPE_CLASSES)
    # Different seeds: no validation image equals a training image.
    train_rows = {row.tobytes() for row in s.x_train[:, 0, :4, :4].reshape(3000, -1)}
    assert not any(row.tobytes() in train_rows for row in s.x_val[:, 0, :4, :4].reshape(1000, -1))
    x_tr, y_tr = make_shapes(3000, seed=(0, 0))
    assert np.array_equal(s.x_train, x_tr) and np.array_equal(s.y_train, y_tr)


def test_colour_and_intensity_do_not_carry_the_label(shapes_split):
    s = shapes_split

    def colour_stats(x):  # the mean colour of each image: (N, 3)
        return x.mean(axis=(2, 3))

    acc = knn_accuracy(colour_stats(s.x_train), s.y_train, colour_stats(s.x_val), s.y_val)
    assert acc < 0.2, acc  # chance is 0.10
    # Negative control: the same probe finds a label that IS in the colour.
    leak_tr, leak_val = leak_label_into_colour(s.x_train, s.y_train), leak_label_into_colour(s.x_val, s.y_val)
    assert knn_accuracy(colour_stats(leak_tr), s.y_train, colour_stats(leak_val), s.y_val) > 0.9


def test_linear_softmax_on_raw_pixels_is_far_below_a_cnn(shapes_split):
    s = shapes_split
    pred = fit_linear_softmax(s.x_train, s.y_train, 10)
    val_acc = (pred(s.x_val) == s.y_val).mean()
    print(f"linear softmax on raw pixels: val accuracy {val_acc:.3f} (chance 0.100)")
    assert val_acc < 0.6, val_acc
    # Negative control: the same fitter on a linearly separable variant scores high,
    # so the low number above is the data's doing, not a broken fitter.
    pred = fit_linear_softmax(leak_label_into_pixels(s.x_train, s.y_train), s.y_train, 10)
    leak_acc = (pred(leak_label_into_pixels(s.x_val, s.y_val)) == s.y_val).mean()
    assert leak_acc > 0.9, leak_acc


@pytest.mark.slow
@pytest.mark.torch
def test_small_cnn_learns_the_shapes():
    """The other half of the claim: a small VGG-style CNN (PyTorch, as a quick oracle) learns it."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    s = load_shapes(3000, 1000, seed=0)
    mean = channel_mean(s.x_train)
    xtr, xva = (torch.from_numpy(subtract_mean(a, mean)) for a in (s.x_train, s.x_val))
    ytr, yva = torch.from_numpy(s.y_train), torch.from_numpy(s.y_val)
    nn = torch.nn
    w = 12
    net = nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * w * 16, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(6):
        for i in range(0, len(xtr), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xtr[i : i + 64]), ytr[i : i + 64]).backward()
            opt.step()
    with torch.no_grad():
        acc = (net(xva).argmax(1) == yva).float().mean().item()
    print(f"small CNN: val accuracy {acc:.3f}")
    assert acc > 0.6, acc


# ==================================================================== CIFAR-10
def cifar_dict(n, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = list(rng.integers(0, 10, size=n)) if labels is None else labels
    return {
        b"batch_label": b"training batch",
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }


def write_cifar(root: Path, sizes=(3, 2, 4, 1, 2, 5), sub=True, seed=0):
    """Write data_batch_1..5 and test_batch (pickle protocol 2, as the real files)."""
    base = root / "cifar-10-batches-py" if sub else root
    base.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    dicts = {}
    for i, (name, n) in enumerate(zip(names, sizes)):
        dicts[name] = cifar_dict(n, seed=seed + i)
        (base / name).write_bytes(pickle.dumps(dicts[name], protocol=2))
    return base, dicts


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """The bytes Python 2 + numpy 1.x wrote: str as SHORT_BINSTRING, numpy.core.multiarray."""

    def sbs(b):  # SHORT_BINSTRING
        return b"U" + bytes([len(b)]) + b

    n = data.shape[0]
    out = b"\x80\x02}q\x00(" + sbs(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85" + sbs(b"b") + b"\x87R"
    out += b"(K\x01K" + bytes([n]) + b"M" + struct.pack("<H", 3072) + b"\x86"  # version 1, shape (n, 3072)
    out += b"cnumpy\ndtype\nq\x03" + sbs(b"u1") + b"K\x00K\x01\x87R"  # dtype('u1', 0, 1)
    out += b"(K\x03" + sbs(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state
    out += b"\x89T" + struct.pack("<i", data.size) + data.tobytes() + b"tb"  # not fortran, raw bytes
    out += sbs(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return out + b"u."


def test_load_cifar10_reads_the_pickle_batches(tmp_path):
    base, dicts = write_cifar(tmp_path)
    # One hand-placed pixel: green plane (offset 1024), row 5, column 7.
    dicts["data_batch_2"][b"data"][1, 1024 + 5 * 32 + 7] = 201
    (base / "data_batch_2").write_bytes(pickle.dumps(dicts["data_batch_2"], protocol=2))
    x_tr, y_tr, x_te, y_te = load_cifar10(tmp_path)
    assert x_tr.shape == (3 + 2 + 4 + 1 + 2, 3, 32, 32) and x_tr.dtype == np.uint8
    assert x_te.shape == (5, 3, 32, 32) and y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert x_tr[3 + 1, 1, 5, 7] == 201
    rows = np.concatenate([dicts[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    for i in range(len(rows)):  # R plane, G plane, B plane, each row-major
        for c in range(3):
            assert np.array_equal(x_tr[i, c].ravel(), rows[i, c * 1024 : (c + 1) * 1024])
    assert y_tr.tolist() == sum((dicts[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert y_te.tolist() == dicts["test_batch"][b"labels"]


def test_load_cifar10_python2_numpy1_file_without_subdir(tmp_path):
    rng = np.random.default_rng(5)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=2)]
        batches[name] = (data, labels)
        (tmp_path / name).write_bytes(py2_cifar_pickle(data, labels))
    x_tr, y_tr, x_te, y_te = load_cifar10(tmp_path)
    assert np.array_equal(x_te.reshape(2, 3072), batches["test_batch"][0])
    assert y_te.tolist() == batches["test_batch"][1]
    assert np.array_equal(x_tr[8:].reshape(2, 3072), batches["data_batch_5"][0])


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_load_cifar10_refuses_code_execution(tmp_path):
    base, dicts = write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps({**dicts["data_batch_3"], b"labels": _Evil(marker)}, protocol=2)
    (base / "data_batch_3").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=r"data_batch_3.*system"):
        load_cifar10(tmp_path)
    assert not marker.exists()
    # Negative control: the payload is live — plain pickle would have run it.
    pickle.loads(payload)
    assert marker.exists()


def test_load_cifar10_refuses_object_arrays_and_odd_codec_calls(tmp_path):
    base, dicts = write_cifar(tmp_path)
    bad = {**dicts["data_batch_1"], b"data": np.array([[1, "x"]], dtype=object)}
    (base / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"data_batch_1.*object"):
        load_cifar10(tmp_path)
    # _codecs.encode is allowed only as pickle itself uses it: encode(str, "latin1").
    rot13 = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    assert pickle.loads(rot13) == "k"  # negative control: plain pickle calls it
    (base / "data_batch_1").write_bytes(rot13)
    with pytest.raises(UnsafePickleError, match=r"data_batch_1.*latin1"):
        load_cifar10(tmp_path)


def _rewrite(base, dicts, name, **changes):
    d = dict(dicts[name])
    d.update({k.encode(): v for k, v in changes.items()})
    (base / name).write_bytes(pickle.dumps(d, protocol=2))


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"data": np.zeros((3, 3000), np.uint8)}, r"data_batch_4.*3072"),
        ({"data": np.zeros((3, 3072), np.float32)}, r"data_batch_4.*uint8"),
        ({"labels": [0, 1, 10]}, r"data_batch_4.*0\.\.9"),
        ({"labels": [0, 1, -1]}, r"data_batch_4.*0\.\.9"),
        ({"labels": [0, 1]}, r"data_batch_4.*labels"),
        ({"labels": ["a", "b", "c"]}, r"data_batch_4.*labels"),
    ],
)
def test_load_cifar10_bad_content(tmp_path, changes, match):
    base, dicts = write_cifar(tmp_path, sizes=(3,) * 6)
    _rewrite(base, dicts, "data_batch_4", **changes)
    with pytest.raises(ValueError, match=match):
        load_cifar10(tmp_path)


def test_load_cifar10_missing_and_corrupt_files(tmp_path):
    base, _ = write_cifar(tmp_path)
    good = (base / "test_batch").read_bytes()
    (base / "test_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(tmp_path)
    (base / "test_batch").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match=r"test_batch.*dict"):
        load_cifar10(tmp_path)
    (base / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch.*'data'"):
        load_cifar10(tmp_path)
    (base / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cifar10(tmp_path / "nowhere")


# ======================================================================= MNIST
def idx_images(x: np.ndarray) -> bytes:
    n, rows, cols = x.shape
    return struct.pack(">IIII", 0x00000803, n, rows, cols) + x.astype(np.uint8).tobytes()


def idx_labels(y) -> bytes:
    y = np.asarray(y, dtype=np.uint8)
    return struct.pack(">II", 0x00000801, len(y)) + y.tobytes()


def mnist_arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n)


def test_load_mnist_plain_and_gz(tmp_path):
    x, y = mnist_arrays(6)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_images(x))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels(y))
    xt, yt = mnist_arrays(4, seed=1)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(xt)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels(yt)))
    gx, gy = load_mnist(tmp_path)
    assert gx.shape == (6, 1, 28, 28) and gx.dtype == np.uint8 and gy.dtype == np.int64
    assert np.array_equal(gx[:, 0], x) and gy.tolist() == y.tolist()
    gx, gy = load_mnist(tmp_path, kind="t10k")
    assert np.array_equal(gx[:, 0], xt) and gy.tolist() == yt.tolist()


def test_load_mnist_dotted_file_names(tmp_path):
    x, y = mnist_arrays(2)
    (tmp_path / "train-images.idx3-ubyte").write_bytes(idx_images(x))
    (tmp_path / "train-labels.idx1-ubyte").write_bytes(idx_labels(y))
    assert np.array_equal(load_mnist(tmp_path)[0][:, 0], x)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (lambda x, y: idx_labels(y), lambda x, y: idx_labels(y), r"images.*0x00000801.*0x00000803"),
        (lambda x, y: idx_images(x)[:-5], lambda x, y: idx_labels(y), r"images.*truncated"),
        (lambda x, y: idx_images(x) + b"\0", lambda x, y: idx_labels(y), r"images.*trailing"),
        (lambda x, y: idx_images(x)[:10], lambda x, y: idx_labels(y), r"images.*header"),
        (lambda x, y: idx_images(x), lambda x, y: idx_labels(y[:3]), r"5 images.*3 labels"),
        (lambda x, y: idx_images(x), lambda x, y: idx_labels([0, 1, 2, 3, 10]), r"labels.*0\.\.9"),
    ],
)
def test_load_mnist_bad_files(tmp_path, images, labels, match):
    x, y = mnist_arrays(5)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(images(x, y))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels(x, y))
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path)


def test_load_mnist_missing_corrupt_gz_and_bad_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    x, y = mnist_arrays(3)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"definitely not gzip")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels(y))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(x))[:-12])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind="test")


# ================================================================ augmentation
@pytest.fixture
def batch():
    return np.random.default_rng(0).integers(0, 256, size=(6, 3, 8, 10), dtype=np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_crop_identity_and_dtype(batch, dtype):
    x = batch.astype(dtype)
    out = random_crop(x, (8, 10), 0, np.random.default_rng(1))
    assert out.dtype == dtype and np.array_equal(out, x)


def test_crop_with_padding_takes_windows_of_the_padded_images(batch):
    out = random_crop(batch, 8, 2, np.random.default_rng(2))
    assert out.shape == (6, 3, 8, 8) and out.dtype == np.uint8
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))  # zeros, built independently
    offsets = []
    for i in range(len(batch)):
        hits = [
            (oy, ox)
            for oy in range(12 - 8 + 1)
            for ox in range(14 - 8 + 1)
            if np.array_equal(out[i], padded[i, :, oy : oy + 8, ox : ox + 8])
        ]
        assert hits, f"sample {i} is not a window of its padded image"
        offsets.append(hits[0])
    assert len(set(offsets)) > 1  # offsets are drawn per image
    again = random_crop(batch, 8, 2, np.random.default_rng(2))
    assert np.array_equal(out, again)  # seeded


def test_crop_errors(batch):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fit"):
        random_crop(batch, 13, 2, rng)
    with pytest.raises(ValueError, match="4-D"):
        random_crop(batch[0], 4, 0, rng)
    with pytest.raises(ValueError, match="padding"):
        random_crop(batch, 4, -1, rng)
    with pytest.raises(ValueError, match="size"):
        random_crop(batch, 4.0, 0, rng)
    with pytest.raises(TypeError, match="Generator"):
        random_crop(batch, 4, 0, np.random.RandomState(0))


def test_flip(batch):
    before = batch.copy()
    assert np.array_equal(random_flip(batch, np.random.default_rng(0), p=1.0), batch[..., ::-1])
    assert np.array_equal(random_flip(batch, np.random.default_rng(0), p=0.0), batch)
    once = random_flip(batch, np.random.default_rng(3))
    twice = random_flip(once, np.random.default_rng(3))  # same draws flip the same images back
    assert np.array_equal(twice, batch) and twice.dtype == np.uint8
    flipped = [not np.array_equal(once[i], batch[i]) for i in range(len(batch))]
    for i, f in enumerate(flipped):
        assert np.array_equal(once[i], batch[i, :, :, ::-1] if f else batch[i])
    assert np.array_equal(batch, before)  # input untouched
    with pytest.raises(ValueError, match="p must"):
        random_flip(batch, np.random.default_rng(0), p=1.5)


def test_flip_half_on_average():
    x = np.arange(2000 * 2, dtype=np.float32).reshape(2000, 1, 1, 2)
    out = random_flip(x, np.random.default_rng(4))
    frac = np.mean(out[:, 0, 0, 0] != x[:, 0, 0, 0])
    assert 0.45 < frac < 0.55


def test_channel_mean_and_subtraction():
    x = np.zeros((4, 3, 2, 2), np.float32)
    x[:, 1] = 1.0
    x[:, 2] = 2.0
    x[0, 2, 0, 0] = 18.0  # channel 2: (15 * 2 + 18) / 16 = 3
    np.testing.assert_array_equal(channel_mean(x), [0.0, 1.0, 3.0])
    assert channel_mean(x).dtype == np.float64

    rng = np.random.default_rng(0)
    for x in (rng.random((20, 3, 5, 5), dtype=np.float32), rng.integers(0, 256, (20, 3, 5, 5)).astype(np.uint8)):
        out = subtract_mean(x, channel_mean(x))
        assert out.dtype == np.float32 and out.shape == x.shape
        np.testing.assert_allclose(channel_mean(out), 0.0, atol=1e-4)
        assert np.abs(channel_mean(x)).max() > 0.1  # negative control: the input's means were not 0
    x64 = rng.random((3, 3, 2, 2))
    assert subtract_mean(x64, channel_mean(x64)).dtype == np.float64
    with pytest.raises(ValueError, match=r"\(3,\)"):
        subtract_mean(x64, np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        channel_mean(np.zeros((0, 3, 2, 2)))


def test_to_float():
    x = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    f = to_float(x)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, np.array([[[[0.0, 0.2, 1.0]]]], dtype=np.float32))
    assert to_float(f) is f  # idempotent on floats
    assert to_float(x, np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="uint8"):
        to_float(x.astype(np.int32))


# ================================================================ minibatches
def test_iterate_minibatches_in_order_with_partial_last_batch():
    x = np.arange(23 * 2).reshape(23, 2)
    y = np.arange(23)
    batches = list(iterate_minibatches(x, y, 5, shuffle=False))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    assert np.array_equal(np.concatenate([b[1] for b in batches]), y)
    for xb, yb in batches:
        assert np.array_equal(xb[:, 0], 2 * yb)  # pairs stay together


def test_iterate_minibatches_shuffled_covers_each_sample_once():
    x = np.arange(23 * 2).reshape(23, 2)
    y = np.arange(23)
    seen = [b for b in iterate_minibatches(x, y, 4, shuffle=True, rng=np.random.default_rng(0))]
    ys = np.concatenate([b[1] for b in seen])
    assert sorted(ys.tolist()) == list(range(23)) and not np.array_equal(ys, y)
    assert [len(b[1]) for b in seen] == [4] * 5 + [3]
    for xb, yb in seen:
        assert np.array_equal(xb[:, 0], 2 * yb)
    again = np.concatenate([b[1] for b in iterate_minibatches(x, y, 4, shuffle=True, rng=np.random.default_rng(0))])
    assert np.array_equal(ys, again)


def test_iterate_minibatches_errors():
    x, y = np.zeros((4, 2)), np.zeros(3)
    # Raised at the call, before any iteration.
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        iterate_minibatches(x, y, 2, shuffle=False)
    with pytest.raises(ValueError, match="batch_size"):
        iterate_minibatches(x, np.zeros(4), 0, shuffle=False)
    with pytest.raises(TypeError, match="Generator"):
        iterate_minibatches(x, np.zeros(4), 2, shuffle=True)
