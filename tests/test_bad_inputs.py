"""Bad inputs, as a new user would try them: every one a clear one-line error, never a traceback.

Two tables:

* :data:`CLI_CASES` -- a command line with one bad argument or one unusable
  file. Each must exit with status 2, print one error line (after argparse's
  usage text, for argument errors) that names what was wrong (the option or
  the path the user gave), print no traceback, and leave nothing behind in
  the output directory. They run in-process (``minivgg.cli.main`` with
  ``capsys``); :func:`test_no_traceback_in_a_real_process` repeats a few as
  real processes.
* :data:`API_CASES` -- the library functions behind those commands, called on
  the same kinds of files: a ``ValueError`` (``CheckpointError`` is one) or a
  ``FileNotFoundError`` whose one-line message names the file and the problem.

Files that claim more data than they hold are also checked for bounded
memory (``tracemalloc``): the error must come before the allocation.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.io import files as F
from minivgg.io.files import CheckpointError, atomic_write, check_output_path
from minivgg.io.npz import read_minivgg
from minivgg.io.safe_pickle import UnsafePickleError, numpy_array_globals, resolve_arrays, restricted_loads
from minivgg.io.torch_format import read_torch_checkpoint
from minivgg.io.weights import convert, read_weights, save_weights
from minivgg.training.data import load_cifar10, load_mnist
from minivgg.vgg import VGG

from _craft import G, dumps, legacy_file, ordered, tensor, zip_file
from conftest import TINY_VGG

#: Peak traced memory allowed while refusing a file that claims gigabytes.
PEAK_LIMIT = 50 * 2 ** 20


class Kit:
    """Input files made on first use in ``tmp/in``; commands write to ``tmp/out`` (checked to stay empty)."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "in"
        self.out = tmp / "out"
        self.dir.mkdir()
        self.out.mkdir()

    def file(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def o(self, name: str) -> str:
        return str(self.out / name)

    # -- minivgg files
    @cached_property
    def weights(self) -> str:
        model = VGG(**{**TINY_VGG, "dtype": np.float32, "width": 1 / 32, "fc_width": 8})
        path = self.dir / "weights.npz"
        save_weights(path, model.params, model.config)
        return str(path)

    @cached_property
    def folder(self) -> str:
        path = self.dir / "folder.npz"  # a directory with a weights-like name
        path.mkdir()
        return str(path)

    @cached_property
    def garbage(self) -> str:
        return self.file("garbage.npz", b"this is not a zip archive at all\n" * 4)

    @cached_property
    def truncated_npz(self) -> str:
        data = Path(self.weights).read_bytes()
        return self.file("truncated.npz", data[: len(data) // 2])

    @cached_property
    def pickled_npz(self) -> str:
        path = self.dir / "pickled.npz"
        np.savez(path, __minivgg__=np.array("{}"), obj=np.array([{"a": 1}], dtype=object))
        return str(path)

    @cached_property
    def huge_npy_npz(self) -> str:
        """An .npz whose only entry's header claims a 4 TB array."""
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
        header += b" " * (118 - len(header)) + b"\n"
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)
        path = self.dir / "huge.npz"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("__minivgg__.npy", npy)
        return str(path)

    @cached_property
    def not_npy_npz(self) -> str:
        path = self.dir / "notnpy.npz"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", b"hello")
        return str(path)

    # -- PyTorch files
    def pth(self, name: str, t) -> str:
        raw = dumps(ordered({"features.0.weight": t}))
        return str(zip_file(self.dir / name, raw, {"0": bytes(4 * 108)}))

    @cached_property
    def stride0_pth(self) -> str:  # 10^12 elements claimed over a 108-element storage
        return self.pth("stride0.pth", tensor("0", "FloatStorage", 108, 0, (10 ** 12,), (0,), legacy=False))

    @cached_property
    def stride0_1e9_pth(self) -> str:  # 10^9: would really allocate 4 GB before the shape check
        return self.pth("stride0_1e9.pth", tensor("0", "FloatStorage", 108, 0, (10 ** 9,), (0,), legacy=False))

    @cached_property
    def negative_stride_pth(self) -> str:
        return self.pth("negstride.pth", tensor("0", "FloatStorage", 108, 10, (4,), (-1,), legacy=False))

    @cached_property
    def lying_zip_pth(self) -> str:
        """A storage whose zip directory entry claims 2 GB (stored) while the archive is 1 KB."""
        data = bytearray(Path(self.pth("lying_src.pth", tensor("0", "FloatStorage", 108, 0, (108,), (1,),
                                                                legacy=False))).read_bytes())
        at = data.rfind(b"PK\x01\x02", 0, data.rfind(b"archive/data/0") + 1)
        data[at + 20:at + 28] = struct.pack("<II", 0x7FFFFFF0, 0x7FFFFFF0)
        return self.file("lying.pth", bytes(data))

    @cached_property
    def legacy_huge_pth(self) -> str:
        main_pickle = ordered({"features.0.bias": tensor("k", "FloatStorage", 10 ** 12, 0, (4,), (1,))})
        return self.file("legacy_huge.pth", legacy_file(main_pickle, [("k", 10 ** 12, bytes(16))]))

    @cached_property
    def binbytes8_pth(self) -> str:
        """data.pkl claiming a 2 GB BINBYTES8 it does not hold."""
        raw = b"\x80\x04\x8e" + (2 * 10 ** 9).to_bytes(8, "little") + b"abc."
        return str(zip_file(self.dir / "binbytes8.pth", raw, {}))

    @cached_property
    def evil_pth(self) -> str:
        return self.file("evil.pth", dumps({"x": G("os", "system")}))

    # -- Keras files
    def h5(self, name: str, build) -> str:
        """An HDF5 file made by ``build(h5py.File)`` (skips without h5py)."""
        h5py = pytest.importorskip("h5py")
        path = self.dir / name
        with h5py.File(path, "w") as f:
            build(f)
        return str(path)

    @cached_property
    def keras_missing_group(self) -> str:
        return self.h5("nogroup.h5", lambda f: f.attrs.create("layer_names", [b"block1_conv1"]))

    @cached_property
    def keras_missing_dataset(self) -> str:
        def build(f) -> None:
            f.attrs["layer_names"] = [b"block1_conv1"]
            f.create_group("block1_conv1").attrs["weight_names"] = [b"block1_conv1_W_1:0"]

        return self.h5("nodataset.h5", build)

    @cached_property
    def keras_dataset_not_group(self) -> str:
        def build(f) -> None:
            f.attrs["layer_names"] = [b"block1_conv1"]
            f.create_dataset("block1_conv1", data=np.zeros(3))

        return self.h5("flat.h5", build)

    @cached_property
    def keras_unwritten_huge(self) -> str:
        # 4 TB declared, no chunk ever written: the file is a few KB
        return self.h5("unwritten.h5", lambda f: f.create_group("block1_conv1").create_dataset(
            "kernel", shape=(10 ** 6, 10 ** 6), dtype="f4", chunks=(1000, 1000)))

    # -- data directories
    @cached_property
    def cifar_dir(self) -> Path:
        base = self.dir / "cifar"
        base.mkdir()
        rng = np.random.default_rng(0)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [0, 1, 2]}
            (base / name).write_bytes(pickle.dumps(batch, protocol=2))
        return base

    def cifar_with(self, name: str, data: bytes) -> str:
        (self.cifar_dir / "data_batch_2").write_bytes(data)
        return str(self.cifar_dir)

    def cifar_batch_as_dir(self) -> str:
        (self.cifar_dir / "test_batch").unlink()
        (self.cifar_dir / "test_batch").mkdir()
        return str(self.cifar_dir)

    def folder_named(self, name: str) -> str:
        (self.dir / name).mkdir()
        return str(self.dir / name)

    def link_to(self, target: str) -> str:
        link = self.dir / ("link-" + Path(target).name)
        link.symlink_to(target)
        return str(link)

    def mnist_with(self, images: bytes, gz: bool = False, raw_gz: bool = False) -> str:
        """An MNIST directory whose image file holds ``images`` (gzipped if ``gz``; named .gz unzipped if ``raw_gz``)."""
        base = self.dir / "mnist"
        base.mkdir(exist_ok=True)
        name = "train-images-idx3-ubyte" + (".gz" if gz or raw_gz else "")
        (base / name).write_bytes(gzip.compress(images) if gz else images)
        (base / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 3) + bytes([1, 2, 3]))
        return str(base)

    @cached_property
    def image(self) -> str:
        pil = pytest.importorskip("PIL.Image")
        path = self.dir / "img.png"
        pil.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
        return str(path)


def evil_global_batch() -> bytes:
    return dumps({"data": G("os", "system"), "labels": []})


def idx(n: int, rows: int = 28, cols: int = 28, body: int | None = None) -> bytes:
    return struct.pack(">IIII", 0x803, n, rows, cols) + bytes(n * rows * cols if body is None else body)


# (case id, argv from the kit, text the error line must contain (from the kit))
CLI_CASES = [
    # ---- numbers: argparse errors, exit 2, the option named
    ("summary-width-inf", lambda k: ["summary", "vgg16", "--width", "inf"], lambda k: "--width"),
    ("summary-width-nan", lambda k: ["summary", "vgg16", "--width", "nan"], lambda k: "--width"),
    ("summary-width-negative", lambda k: ["summary", "vgg16", "--width", "-1"], lambda k: "--width"),
    ("summary-width-1e300", lambda k: ["summary", "vgg16", "--width", "1e300"], lambda k: "--width"),
    ("summary-input-size-0", lambda k: ["summary", "vgg16", "--input-size", "0"], lambda k: "--input-size"),
    ("summary-batch-fraction", lambda k: ["summary", "vgg16", "--batch", "1.5"], lambda k: "--batch"),
    ("summary-unknown-arch", lambda k: ["summary", "vgg99"], lambda k: "vgg99"),
    ("gradcheck-seed-negative", lambda k: ["gradcheck", "--seed", "-1"], lambda k: "--seed"),
    ("tour-seed-negative", lambda k: ["tour", "--seed", "-1"], lambda k: "--seed"),
    ("tour-seed-text", lambda k: ["tour", "--seed", "abc"], lambda k: "--seed"),
    ("compare-channels-0", lambda k: ["compare", "--channels", "0"], lambda k: "--channels"),
    ("compare-width-inf", lambda k: ["compare", "vgg11", "--width", "inf"], lambda k: "--width"),
    ("receptive-field-input-nan", lambda k: ["receptive-field", "vgg16", "--input-size", "nan"],
     lambda k: "--input-size"),
    ("bench-batch-0", lambda k: ["bench", "--batch", "0"], lambda k: "--batch"),
    ("bench-repeats-inf", lambda k: ["bench", "--repeats", "inf"], lambda k: "--repeats"),
    ("bench-warmup-negative", lambda k: ["bench", "--warmup", "-1"], lambda k: "--warmup"),
    ("train-lr-inf", lambda k: ["train", "--lr", "inf"], lambda k: "--lr"),
    ("train-lr-nan", lambda k: ["train", "--lr", "nan"], lambda k: "--lr"),
    ("train-momentum-1", lambda k: ["train", "--momentum", "1"], lambda k: "--momentum"),
    ("train-weight-decay-inf", lambda k: ["train", "--weight-decay", "inf"], lambda k: "--weight-decay"),
    ("train-width-inf", lambda k: ["train", "--width", "inf"], lambda k: "--width"),
    ("train-seed-negative", lambda k: ["train", "--seed", "-1"], lambda k: "--seed"),
    ("evaluate-batch-size-0", lambda k: ["evaluate", k.weights, "--batch-size", "0"], lambda k: "--batch-size"),
    ("predict-top-0", lambda k: ["predict", "x.png", "--weights", k.weights, "--top", "0"], lambda k: "--top"),
    ("features-limit-negative", lambda k: ["features", k.weights, "--out", k.o("f.npz"), "--limit", "-5"],
     lambda k: "--limit"),
    # ---- checkpoint and weights files
    ("evaluate-directory", lambda k: ["evaluate", k.folder], lambda k: f"{k.folder} is a directory"),
    ("evaluate-missing", lambda k: ["evaluate", k.o("nothing.npz")], lambda k: "does not exist"),
    ("evaluate-not-a-zip", lambda k: ["evaluate", k.garbage], lambda k: f"{k.garbage} is not a zip archive"),
    ("evaluate-truncated-zip", lambda k: ["evaluate", k.truncated_npz], lambda k: f"{k.truncated_npz} is truncated"),
    ("evaluate-pickled-entry", lambda k: ["evaluate", k.pickled_npz], lambda k: "holds Python objects"),
    ("evaluate-plain-weights", lambda k: ["evaluate", k.weights], lambda k: "plain weights"),
    ("evaluate-path-through-a-file", lambda k: ["evaluate", os.path.join(k.garbage, "x.npz")],
     lambda k: "is a file, not a directory"),
    ("convert-not-a-zip", lambda k: ["convert", k.garbage, k.o("w.npz")], lambda k: k.garbage),
    ("convert-directory", lambda k: ["convert", k.folder, k.o("w.npz")], lambda k: "is a directory"),
    ("convert-huge-npy-header", lambda k: ["convert", k.huge_npy_npz, k.o("w.npz")], lambda k: "claims"),
    ("convert-zip-entry-not-npy", lambda k: ["convert", k.not_npy_npz, k.o("w.npz")], lambda k: "readme.txt"),
    ("convert-out-txt", lambda k: ["convert", k.weights, k.o("w.txt")], lambda k: "ending in .npz"),
    ("convert-out-no-suffix", lambda k: ["convert", k.weights, k.o("w")], lambda k: "ending in .npz"),
    ("convert-out-missing-dir", lambda k: ["convert", k.weights, k.o("no/such/w.npz")],
     lambda k: f"directory {k.o('no/such')} does not exist"),
    ("convert-out-is-a-directory", lambda k: ["convert", k.weights, k.folder], lambda k: "is a directory"),
    ("convert-unknown-extension", lambda k: ["convert", k.file("w.tflite", b"x"), k.o("w.npz")],
     lambda k: "unknown weights file extension"),
    ("convert-corrupt-onnx", lambda k: ["convert", k.file("w.onnx", b"x"), k.o("w.npz")],
     lambda k: "not a readable ONNX model"),
    ("convert-stride0-1e12", lambda k: ["convert", k.stride0_pth, k.o("w.npz")], lambda k: "1000000000000 elements"),
    ("convert-stride0-1e9", lambda k: ["convert", k.stride0_1e9_pth, k.o("w.npz")], lambda k: "1000000000 elements"),
    ("convert-negative-stride", lambda k: ["convert", k.negative_stride_pth, k.o("w.npz")], lambda k: "stride"),
    ("convert-zip-directory-lies", lambda k: ["convert", k.lying_zip_pth, k.o("w.npz")], lambda k: "claims"),
    ("convert-legacy-huge-storage", lambda k: ["convert", k.legacy_huge_pth, k.o("w.npz")], lambda k: "cut short"),
    ("convert-pickle-claims-2GB", lambda k: ["convert", k.binbytes8_pth, k.o("w.npz")], lambda k: "truncated"),
    ("convert-code-in-pickle", lambda k: ["convert", k.evil_pth, k.o("w.npz")], lambda k: "os.system"),
    ("convert-h5-not-hdf5", lambda k: ["convert", k.file("w.h5", b"not hdf5"), k.o("w.npz")],
     lambda k: "not a readable HDF5 file"),
    ("convert-h5-missing-group", lambda k: ["convert", k.keras_missing_group, k.o("w.npz")],
     lambda k: "group 'block1_conv1' is missing"),
    ("convert-h5-missing-dataset", lambda k: ["convert", k.keras_missing_dataset, k.o("w.npz")],
     lambda k: "'block1_conv1_W_1:0' is missing"),
    ("convert-h5-dataset-not-group", lambda k: ["convert", k.keras_dataset_not_group, k.o("w.npz")],
     lambda k: "expected a Group"),
    ("convert-h5-unwritten-4TB", lambda k: ["convert", k.keras_unwritten_huge, k.o("w.npz")],
     lambda k: "stores 0 bytes"),
    # ---- output paths, checked before the work
    ("features-out-txt", lambda k: ["features", k.weights, "--out", k.o("f.txt")], lambda k: "ending in .npz"),
    ("features-out-missing-dir", lambda k: ["features", k.weights, "--out", k.o("no/f.npz")],
     lambda k: "does not exist"),
    ("summary-plot-txt", lambda k: ["summary", "vgg16", "--plot", k.o("x.txt")], lambda k: "x.txt"),
    ("summary-plot-missing-dir", lambda k: ["summary", "vgg16", "--plot", k.o("no/dir/x.png")],
     lambda k: k.o("no/dir/x.png")),
    ("summary-plot-is-a-directory", lambda k: ["summary", "vgg16", "--plot", k.folder_named("plot.png")],
     lambda k: "is a directory"),
    ("train-out-under-a-file", lambda k: ["train", "--n-train", "64", "--n-val", "32", "--out",
                                          k.garbage + "/run"], lambda k: f"{k.garbage} is a file, not a directory"),
    # ---- data directories
    ("cifar-dir-is-a-file", lambda k: ["train", "--data", "cifar10", "--data-dir", k.garbage],
     lambda k: f"{k.garbage} is a file, not a directory"),
    ("mnist-dir-is-a-file", lambda k: ["train", "--data", "mnist", "--data-dir", k.garbage],
     lambda k: f"{k.garbage} is a file, not a directory"),
    ("cifar-forbidden-global", lambda k: ["train", "--data", "cifar10", "--data-dir",
                                          k.cifar_with("data_batch_2", evil_global_batch())], lambda k: "os.system"),
    ("cifar-truncated-batch", lambda k: ["train", "--data", "cifar10", "--data-dir",
                                         k.cifar_with("data_batch_2", pickle.dumps({b"a": 1}, protocol=2)[:-3])],
     lambda k: "data_batch_2"),
    ("cifar-batch-is-a-directory", lambda k: ["train", "--data", "cifar10", "--data-dir", k.cifar_batch_as_dir()],
     lambda k: "test_batch is a directory"),
    ("mnist-header-claims-4G-images", lambda k: ["train", "--data", "mnist", "--data-dir",
                                                 k.mnist_with(idx(0xFFFFFFFF, body=100))], lambda k: "truncated"),
    ("mnist-gz-header-claims-more-than-deflate", lambda k: ["train", "--data", "mnist", "--data-dir",
                                                            k.mnist_with(idx(0xFFFFFF, body=100), gz=True)],
     lambda k: "can hold at most"),
    ("mnist-gz-not-gzip", lambda k: ["train", "--data", "mnist", "--data-dir", k.mnist_with(b"not gzip", raw_gz=True)],
     lambda k: "gzip"),
    # ---- ensembles and images
    ("ensemble-same-file-twice", lambda k: ["ensemble", k.weights, k.weights], lambda k: "given twice"),
    ("ensemble-same-file-two-spellings", lambda k: ["ensemble", k.weights,
                                                    os.path.join(k.dir, ".", "..", "in", "weights.npz")],
     lambda k: "given twice"),
    ("ensemble-symlink-to-the-same-file", lambda k: ["ensemble", k.weights, k.link_to(k.weights)],
     lambda k: "given twice"),
    ("predict-image-missing", lambda k: ["predict", k.o("none.png"), "--weights", k.weights],
     lambda k: "does not exist"),
    ("predict-image-is-a-directory", lambda k: ["predict", k.folder, "--weights", k.weights],
     lambda k: "is a directory"),
    ("predict-image-garbage", lambda k: ["predict", k.garbage, "--weights", k.weights], lambda k: "cannot read image"),
    ("predict-weights-directory", lambda k: ["predict", k.image, "--weights", k.folder], lambda k: "is a directory"),
]


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit from parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, needle", [pytest.param(a, n, id=i) for i, a, n in CLI_CASES])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    kit = Kit(tmp_path)
    args = argv(kit)
    want = needle(kit)
    before = sorted(kit.out.rglob("*"))
    tracemalloc.start()
    try:
        code, out, err = run_main(args, capsys)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert code == 2, (args, code, out[-500:], err)
    assert "Traceback" not in err and "allow_pickle" not in err and ".tmp" not in err, err
    lines = err.strip().splitlines()
    last = lines[-1]
    assert last.startswith(f"minivgg {args[0]}: error:"), err
    assert want in last, (want, last)
    if not last.split("error: ", 1)[1].startswith("argument"):  # not argparse's: the whole message is one line
        assert len(lines) == 1, err
    assert not out.strip(), out[-500:]  # nothing printed before the error (e.g. summary's table)
    assert sorted(kit.out.rglob("*")) == before  # no file left behind
    assert peak < PEAK_LIMIT, f"peak {peak / 2 ** 20:.0f} MiB"


def test_the_cli_cases_are_distinct():
    ids = [i for i, _, _ in CLI_CASES]
    assert len(set(ids)) == len(ids) >= 60


def test_negative_control_a_good_command_passes_the_same_checks(tmp_path, capsys):
    kit = Kit(tmp_path)
    code, out, err = run_main(["convert", kit.weights, kit.o("w.npz")], capsys)
    assert code == 0 and "wrote" in out and not err
    assert sorted(p.name for p in kit.out.iterdir()) == ["w.npz"]


def test_decompression_bomb_image_is_refused_naming_the_file_and_limit(tmp_path, capsys, monkeypatch):
    pil = pytest.importorskip("PIL.Image")
    kit = Kit(tmp_path)
    monkeypatch.setattr(pil, "MAX_IMAGE_PIXELS", 1000)  # 64x64 = 4096 pixels: 4x the limit, an "error" bomb
    code, out, err = run_main(["predict", kit.image, "--weights", kit.weights], capsys)
    assert code == 2 and "Traceback" not in err
    assert kit.image in err and "1,000" in err and "decompression bomb" in err and err.count("\n") == 1
    monkeypatch.setattr(pil, "MAX_IMAGE_PIXELS", 3000)  # 4096 pixels: only Pillow's warning zone, refused too
    code, _, err = run_main(["predict", kit.image, "--weights", kit.weights], capsys)
    assert code == 2 and "3,000" in err
    monkeypatch.setattr(pil, "MAX_IMAGE_PIXELS", 10 ** 6)  # negative control: under the limit it is classified
    code, out, _ = run_main(["predict", kit.image, "--weights", kit.weights, "--top", "1"], capsys)
    assert code == 0 and out.startswith(kit.image)


@pytest.mark.parametrize("argv, needle", [
    (["summary", "vgg16", "--width", "inf"], "--width"),
    (["convert", "GARBAGE", "OUT/w.npz"], "is not a zip archive"),
    (["ensemble", "GARBAGE", "GARBAGE"], "given twice"),
])
def test_no_traceback_in_a_real_process(tmp_path, argv, needle):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"garbage")
    argv = [a.replace("GARBAGE", str(garbage)).replace("OUT", str(tmp_path)) for a in argv]
    env = dict(os.environ, PYTHONWARNINGS="error::DeprecationWarning:minivgg")
    result = subprocess.run([sys.executable, "-m", "minivgg", *argv], capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.npz"]


# ------------------------------------------------------------------ the library, directly
def _cifar_pickle(protocol: int) -> tuple[bytes, np.ndarray]:
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    return pickle.dumps({b"data": data, b"labels": [3, 7]}, protocol=protocol), data


@pytest.mark.parametrize("protocol", range(6))
def test_a_legitimate_cifar_batch_loads_in_every_pickle_protocol(tmp_path, protocol):
    raw, data = _cifar_pickle(protocol)
    base = tmp_path / "cifar"
    base.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (base / name).write_bytes(raw)
    x, y, xt, _ = load_cifar10(base)
    assert x.shape == (10, 3, 32, 32) and np.array_equal(xt.reshape(2, 3072), data) and y.tolist()[:2] == [3, 7]
    assert x.flags.writeable


def _rebuild(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


#: Pickles that look like NumPy's array reconstruction but are not what NumPy writes.
LOOK_ALIKES = {
    "object-dtype": pickle.dumps(np.array([1, "x"], dtype=object), protocol=2),
    "object-dtype-protocol5": pickle.dumps(np.array([None], dtype=object), protocol=5),
    "structured-dtype": pickle.dumps(np.zeros(2, dtype=[("a", "u1"), ("b", "f4")]), protocol=2),
    "dtype-flags-forged": _rebuild(
        b"cnumpy\ndtype\n(X\x02\x00\x00\x00u1\x89\x88tR",
        b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ftb"),  # flags 0x3f: "has objects"
    "reconstruct-other-class": _rebuild(b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(K\x00tC\x01btR"),
    "frombuffer-wrong-size": _rebuild(b"cnumpy._core.numeric\n_frombuffer\n(C\x03abc",  # 3 bytes for 3 float32s
                                      b"cnumpy\ndtype\n(X\x02\x00\x00\x00f4\x89\x88tR",
                                      b"(K\x03tX\x01\x00\x00\x00CtR"),
    "frombuffer-order-K": _rebuild(b"cnumpy._core.numeric\n_frombuffer\n(C\x04abcd",
                                   b"cnumpy\ndtype\n(X\x02\x00\x00\x00u1\x89\x88tR",
                                   b"(K\x04tX\x01\x00\x00\x00KtR"),
    "ndarray-build-twice": None,  # filled below from a real pickle
}
_one = pickle.dumps(np.zeros(3, np.uint8), protocol=2)
LOOK_ALIKES["ndarray-build-twice"] = _one[:-1] + _one[_one.index(b"(K\x01"):_one.rindex(b"b") + 1] + b"."


@pytest.mark.parametrize("name", sorted(LOOK_ALIKES))
def test_numpy_look_alike_pickles_are_refused(name):
    with pytest.raises((UnsafePickleError, pickle.UnpicklingError)) as info:
        resolve_arrays(restricted_loads(LOOK_ALIKES[name], numpy_array_globals(), source="batch.pkl",
                                        encoding="bytes"), "batch.pkl")
    assert str(info.value).startswith("batch.pkl") and "\n" not in str(info.value)


def test_negative_control_plain_pickle_accepts_the_look_alikes():
    # what the allow-list stops: NumPy itself builds an object array / a structured one from these bytes
    assert pickle.loads(LOOK_ALIKES["object-dtype"]).dtype == object
    assert pickle.loads(LOOK_ALIKES["structured-dtype"]).dtype.names == ("a", "b")


def _bounded(call) -> BaseException:
    """Run ``call``, which must raise; return the exception after checking the traced peak stayed small."""
    tracemalloc.start()
    try:
        with pytest.raises((ValueError, OSError)) as info:
            call()
        return info.value
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"peak {peak / 2 ** 20:.0f} MiB"


# (case id, call on the kit, error type, text the message contains)
API_CASES = [
    ("read-minivgg-directory", lambda k: read_minivgg(k.folder), CheckpointError, "is a directory"),
    ("read-minivgg-missing", lambda k: read_minivgg(k.o("none.npz")), FileNotFoundError, "does not exist"),
    ("read-minivgg-not-zip", lambda k: read_minivgg(k.garbage), CheckpointError, "an .npz file is a zip archive"),
    ("read-minivgg-huge-header", lambda k: read_minivgg(k.huge_npy_npz), CheckpointError, "4000000000000 bytes"),
    ("read-weights-directory-pth", lambda k: read_weights(k.dir), ValueError, "unknown weights file extension"),
    ("read-torch-stride0", lambda k: read_torch_checkpoint(k.stride0_pth), CheckpointError, "no stride-0"),
    ("read-torch-lying-zip", lambda k: read_torch_checkpoint(k.lying_zip_pth), CheckpointError, "claims"),
    ("read-torch-legacy-huge", lambda k: read_torch_checkpoint(k.legacy_huge_pth), CheckpointError, "cut short"),
    ("read-torch-directory", lambda k: read_torch_checkpoint(k.folder), CheckpointError, "is a directory"),
    ("convert-leaves-no-output", lambda k: convert(k.stride0_pth, k.o("w.npz")), CheckpointError, "storage"),
    ("load-cifar-file-as-dir", lambda k: load_cifar10(k.garbage), ValueError, "is a file, not a directory"),
    ("load-mnist-file-as-dir", lambda k: load_mnist(k.garbage), ValueError, "is a file, not a directory"),
    ("load-mnist-huge-dims", lambda k: load_mnist(k.mnist_with(idx(0xFFFFFFFF, 0xFFFF, 0xFFFF, body=10))),
     ValueError, "truncated"),
    ("load-image-directory", lambda k: __import__("minivgg.io.images", fromlist=["x"]).load_image(k.folder),
     ValueError, "is a directory"),
    ("atomic-write-missing-dir", lambda k: atomic_write(k.o("no/dir/x.bin"), lambda f: f.write(b"x")),
     FileNotFoundError, "does not exist"),
    ("atomic-write-into-a-file", lambda k: atomic_write(os.path.join(k.garbage, "x.bin"), lambda f: None),
     NotADirectoryError, "is a file, not a directory"),
    ("output-path-wrong-suffix", lambda k: check_output_path(k.o("x.txt"), "--out", (".npz",)), ValueError,
     "ending in .npz"),
]


@pytest.mark.parametrize("call, error, needle", [pytest.param(c, e, n, id=i) for i, c, e, n in API_CASES])
def test_api_bad_input_is_one_clear_line(tmp_path, call, error, needle):
    kit = Kit(tmp_path)
    exc = _bounded(lambda: call(kit))
    assert isinstance(exc, error), (type(exc), exc)
    msg = str(exc)
    assert needle in msg and "\n" not in msg and ".tmp" not in msg and "allow_pickle" not in msg, msg
    assert list(kit.out.rglob("*")) == []


def test_negative_controls_of_the_file_checks(tmp_path):
    kit = Kit(tmp_path)
    assert F.check_input_file(kit.weights, "weights") == Path(kit.weights)
    assert F.check_input_dir(kit.dir, "data") == kit.dir
    assert check_output_path(kit.o("x.npz"), "--out", (".npz",)) == Path(kit.o("x.npz"))
    assert F.zip_problem(kit.weights) is None and F.zip_problem(kit.garbage).startswith("is not a zip")
    atomic_write(kit.o("ok.bin"), lambda f: f.write(b"ok"))
    assert (kit.out / "ok.bin").read_bytes() == b"ok"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads and writes everything")
def test_unreadable_file_and_unwritable_directory(tmp_path):
    kit = Kit(tmp_path)
    locked = Path(kit.weights)
    locked.chmod(0)
    with pytest.raises(CheckpointError, match="permission denied"):
        read_minivgg(locked)
    kit.out.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            atomic_write(kit.o("x.bin"), lambda f: None)
    finally:
        kit.out.chmod(0o700)
