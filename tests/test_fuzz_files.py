"""Fuzzing the readers: valid small files, mutated deterministically, must load right or fail cleanly.

For each file kind minivgg reads (a training checkpoint, a weights ``.npz``, a
PyTorch zip and legacy ``.pth`` written by hand, a CIFAR-10 python batch at
protocols 2 and 5, an MNIST idx file plain and gzipped) the valid file is
truncated at several points, has bytes flipped at seeded positions (biased
towards headers and zip directories, where the parsing happens) and has its
length fields bloated to claim gigabytes. Every mutant must either

* load with the right shapes (a flipped pixel is still a valid batch), or
* raise a ``ValueError`` (``CheckpointError``/``UnsafePickleError`` are ones)
  or ``FileNotFoundError`` whose message is one line, names the file and
  never suggests ``allow_pickle``;

and in both cases the reader's peak Python memory (``tracemalloc``) stays
under :data:`PEAK_LIMIT` and a conversion leaves no output file behind.
"""

from __future__ import annotations

import gzip
import pickle
import pickletools
import struct
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from minivgg.io.npz import read_minivgg, write_minivgg
from minivgg.io.torch_format import read_torch_checkpoint
from minivgg.io.weights import convert, save_weights
from minivgg.training.data.cifar10 import _read_cifar_batch
from minivgg.training.data.mnist import load_mnist

from _craft import dumps, legacy_file, ordered, tensor, zip_file

#: Peak traced allocation a reader may reach on a mutant of a file of at most ~120 KB.
PEAK_LIMIT = 50 * 2 ** 20
#: The number a bloated length field claims: far more than the machine has.
HUGE = 0x7FFFFFF0


# ------------------------------------------------------------------ mutations
def truncations(data: bytes, rng: np.random.Generator, n: int = 10) -> list[tuple[str, bytes]]:
    """Cut at 0, 1, a few random points and one byte short of the end."""
    cuts = sorted({0, 1, len(data) - 1, *rng.integers(2, len(data) - 1, size=n - 3).tolist()})
    return [(f"cut@{c}", data[:c]) for c in cuts]


def flips(data: bytes, rng: np.random.Generator, n: int = 30) -> list[tuple[str, bytes]]:
    """One bit flipped per mutant; half the positions in the first and last 512 bytes (headers, zip directory)."""
    out = []
    edge = min(512, len(data))
    for i in range(n):
        if i % 2:
            pos = int(rng.integers(0, edge)) if i % 4 == 1 else len(data) - 1 - int(rng.integers(0, edge))
        else:
            pos = int(rng.integers(0, len(data)))
        buf = bytearray(data)
        buf[pos] ^= 1 << int(rng.integers(0, 8))
        out.append((f"flip@{pos}", bytes(buf)))
    return out


def bloat_zip_directory(data: bytes) -> list[tuple[str, bytes]]:
    """Each central-directory entry in turn claims HUGE uncompressed bytes (and, separately, compressed ones)."""
    out = []
    start = 0
    while (i := data.find(b"PK\x01\x02", start)) >= 0:
        for field, name in ((24, "file_size"), (20, "compress_size")):
            buf = bytearray(data)
            buf[i + field:i + field + 4] = struct.pack("<I", HUGE)
            out.append((f"cd{i}.{name}", bytes(buf)))
        start = i + 4
    return out


def bloat_npy_shapes(data: bytes) -> list[tuple[str, bytes]]:
    """Every ``.npy`` header's shape digits replaced by 9s (same length, so the header still parses)."""
    out = []
    start = 0
    while (i := data.find(b"'shape': (", start)) >= 0:
        j = data.index(b")", i)
        buf = bytearray(data)
        for k in range(i + 10, j):
            if chr(buf[k]).isdigit():
                buf[k] = ord("9")
        out.append((f"shape@{i}", bytes(buf)))
        start = j
    return out


#: Opcodes with a counted argument, and the width of the count.
COUNTED = {"BINUNICODE": 4, "BINBYTES": 4, "BINSTRING": 4, "BINBYTES8": 8, "BINUNICODE8": 8, "BYTEARRAY8": 8}


def bloat_pickle_lengths(data: bytes, offset: int = 0) -> list[tuple[str, bytes]]:
    """Every counted length (BINUNICODE, BINBYTES8, BYTEARRAY8...) of the pickle at ``offset`` set to HUGE."""
    out = []
    for op, _arg, pos in pickletools.genops(data[offset:]):
        width = COUNTED.get(op.name)
        if width:
            at = offset + pos + 1
            out.append((f"{op.name}@{at}", data[:at] + HUGE.to_bytes(width, "little") + data[at + width:]))
    return out[:12]


def bloat_frame(data: bytes) -> list[tuple[str, bytes]]:
    """A protocol-4/5 pickle's first FRAME length set to HUGE."""
    i = data.find(b"\x95", 0, 4)
    return [] if i < 0 else [("frame", data[:i + 1] + struct.pack("<Q", HUGE) + data[i + 9:])]


# ------------------------------------------------------------------ the check
def check_mutants(tmp_path: Path, name: str, mutants: list[tuple[str, bytes]], read: Callable[[Path], object],
                  ok: Callable[[object], None], output: Path | None = None) -> dict:
    """Run ``read`` on each mutant: a clean one-line error naming the file, or ``ok(result)``; bounded memory."""
    outcome = {"loaded": 0, "refused": 0}
    for label, data in mutants:
        path = tmp_path / name
        path.write_bytes(data)
        if output is not None and output.exists():
            output.unlink()
        tracemalloc.start()
        try:
            result = read(path)
        except (ValueError, FileNotFoundError) as exc:
            msg = str(exc)
            assert "\n" not in msg and str(path) in msg, (label, msg)
            assert "allow_pickle" not in msg and ".tmp" not in msg, (label, msg)
            if output is not None:
                assert not output.exists(), (label, "partial output left behind")
            outcome["refused"] += 1
        else:
            ok(result)
            outcome["loaded"] += 1
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < PEAK_LIMIT, (label, f"peak {peak / 2 ** 20:.0f} MiB")
    assert outcome["refused"] > 0  # the mutations did reach the checks
    return outcome


def same_shapes(expected: dict) -> Callable[[object], None]:
    def ok(result) -> None:
        params = result.params if hasattr(result, "params") else result
        assert {k: np.shape(v) for k, v in params.items()} == {k: np.shape(v) for k, v in expected.items()}

    return ok


# ------------------------------------------------------------------ the formats
@pytest.fixture
def small_model(tiny_vgg):
    return tiny_vgg(dtype=np.float32, width=1 / 32, fc_width=8, seed=1)


def test_fuzz_training_checkpoint(tmp_path, small_model, rng):
    src = tmp_path / "src.npz"
    write_minivgg(src, small_model.config, small_model.params, meta={"epoch": 1, "data": {"name": "shapes"}})
    data = src.read_bytes()
    mutants = truncations(data, rng) + flips(data, rng) + bloat_zip_directory(data)[:8] + bloat_npy_shapes(data)[:8]
    check_mutants(tmp_path, "checkpoint.npz", mutants, read_minivgg, same_shapes(small_model.params))


def test_fuzz_weights_npz_through_convert(tmp_path, small_model, rng):
    src = tmp_path / "src.npz"
    save_weights(src, small_model.params, small_model.config)
    data = src.read_bytes()
    out = tmp_path / "converted.npz"
    mutants = truncations(data, rng) + flips(data, rng) + bloat_zip_directory(data)[-6:] + bloat_npy_shapes(data)[-6:]

    def ok(config) -> None:
        assert config == small_model.config and same_shapes(small_model.params)(read_minivgg(out)) is None

    check_mutants(tmp_path, "weights.npz", mutants, lambda p: convert(p, out), ok, output=out)


def _torch_state() -> tuple[bytes, dict, dict]:
    w = np.arange(4 * 3 * 3 * 3, dtype="<f4")
    b = np.array([0.5, -1.0, 2.0, 3.0], dtype="<f4")
    main = ordered({"features.0.weight": tensor("0", "FloatStorage", w.size, 0, (4, 3, 3, 3), (27, 9, 3, 1),
                                                legacy=False),
                    "features.0.bias": tensor("1", "FloatStorage", 4, 0, (4,), (1,), legacy=False)})
    return dumps(main), {"0": w.tobytes(), "1": b.tobytes()}, {"features.0.weight": (4, 3, 3, 3),
                                                                "features.0.bias": (4,)}


def test_fuzz_torch_zip(tmp_path, rng):
    pkl, storages, shapes = _torch_state()
    data = zip_file(tmp_path / "src.pth", pkl, storages).read_bytes()
    # claims made inside the pickle: a stride-0 tensor of 10^12 elements, a storage of 10^12 elements
    crafted = []
    for label, t in (("stride0", tensor("0", "FloatStorage", 108, 0, (10 ** 12,), (0,), legacy=False)),
                     ("numel", tensor("0", "FloatStorage", 10 ** 12, 0, (10 ** 6, 10 ** 6), (10 ** 6, 1),
                                      legacy=False)),
                     ("stride0-1e9", tensor("0", "FloatStorage", 108, 0, (10 ** 9,), (0,), legacy=False))):
        raw = dumps(ordered({"features.0.weight": t}))
        crafted.append((label, zip_file(tmp_path / "c.pth", raw, {"0": storages["0"]}).read_bytes()))
    for label, raw in bloat_pickle_lengths(pkl)[:6]:  # re-zipped, so the claim gets past the zip's CRC
        crafted.append((label, zip_file(tmp_path / "c.pth", raw, storages).read_bytes()))
    mutants = truncations(data, rng) + flips(data, rng) + bloat_zip_directory(data)[:8] + crafted
    check_mutants(tmp_path, "model.pth", mutants, read_torch_checkpoint,
                  lambda sd: {k: v.shape for k, v in sd.items()} == shapes or pytest.fail(f"shapes {sd}"))


def test_fuzz_torch_legacy(tmp_path, rng):
    w = np.arange(6, dtype="<f4")
    main = ordered({"features.0.bias": tensor("k", "FloatStorage", 6, 0, (6,), (1,))})
    data = legacy_file(main, [("k", 6, w.tobytes())])
    count_at = len(data) - 6 * 4 - 8
    bloated = [("count", data[:count_at] + HUGE.to_bytes(8, "little") + data[count_at + 8:]),
               ("numel", legacy_file(ordered({"features.0.bias": tensor("k", "FloatStorage", 10 ** 12, 0, (6,), (1,))}),
                                     [("k", 10 ** 12, w.tobytes())]))]
    mutants = truncations(data, rng) + flips(data, rng) + bloat_pickle_lengths(data)[:4] + bloated
    check_mutants(tmp_path, "old.pth", mutants, read_torch_checkpoint,
                  lambda sd: sd["features.0.bias"].shape == (6,) or pytest.fail(f"shape {sd}"))


@pytest.mark.parametrize("protocol", [2, 5])
def test_fuzz_cifar_batch(tmp_path, rng, protocol):
    n = 4
    batch = {b"batch_label": b"training batch 1 of 5",
             b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    data = pickle.dumps(batch, protocol=protocol)

    def ok(result) -> None:
        x, y = result
        assert x.shape == (n, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (n,)

    mutants = truncations(data, rng) + flips(data, rng) + bloat_pickle_lengths(data) + bloat_frame(data)
    check_mutants(tmp_path, "data_batch_1", mutants, _read_cifar_batch, ok)


@pytest.mark.parametrize("gz", [False, True])
def test_fuzz_mnist_idx(tmp_path, rng, gz):
    n = 3
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images = struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + bytes([1, 2, 3]))
    bloated = []
    for field in range(1, 4):  # each dim in turn claims 2^32 - 1
        bloated.append((f"dim{field}", images[:4 * field] + b"\xff\xff\xff\xff" + images[4 * field + 4:]))
    mutants = truncations(images, rng) + flips(images, rng, 20) + bloated
    if gz:
        mutants = [(label, gzip.compress(m, mtime=0)) for label, m in mutants]
        whole = gzip.compress(images, mtime=0)
        mutants += truncations(whole, rng) + flips(whole, rng, 20)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")

    def ok(result) -> None:
        assert result[0].shape[0] == n and result[0].shape[1] == 1 and result[1].shape == (n,)

    check_mutants(tmp_path, name, mutants, lambda p: load_mnist(p.parent), ok)


# ------------------------------------------------------------------ negative controls of the checker
def test_the_checker_catches_an_unbounded_reader_a_vague_error_and_partial_output(tmp_path):
    mutants = [("a", b"x"), ("b", b"y")]
    with pytest.raises(AssertionError, match="peak"):  # allocating what a header claims
        check_mutants(tmp_path, "f.bin", mutants, lambda p: np.ones(PEAK_LIMIT // 8 + 1).size, lambda r: None)
    with pytest.raises(AssertionError):  # an error that does not name the file
        check_mutants(tmp_path, "f.bin", mutants, lambda p: (_ for _ in ()).throw(ValueError("bad")), lambda r: None)
    with pytest.raises(AssertionError):  # a multi-line message
        check_mutants(tmp_path, "f.bin", mutants,
                      lambda p: (_ for _ in ()).throw(ValueError(f"{p}\nTraceback")), lambda r: None)
    with pytest.raises(KeyError):  # an exception that is not a clean ValueError escapes
        check_mutants(tmp_path, "f.bin", mutants, lambda p: {}["missing"], lambda r: None)
    out = tmp_path / "out.npz"

    def leaves_output(p):
        out.write_bytes(b"half")
        raise ValueError(f"{p}: refused")

    with pytest.raises(AssertionError, match="partial"):
        check_mutants(tmp_path, "f.bin", mutants, leaves_output, lambda r: None, output=out)
