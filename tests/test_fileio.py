"""atomic_write: all-or-nothing, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from minivgg.io.files import atomic_write


def test_writes_the_file_with_the_mode_open_would_give(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, lambda fh: fh.write(b"hello"))
    assert target.read_bytes() == b"hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_keeps_an_existing_files_mode(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, lambda fh: fh.write(b"new"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"new"


def test_failure_mid_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_negative_control_a_plain_write_would_corrupt(tmp_path):
    # the failure injected above really does damage a non-atomic write
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        with open(target, "wb") as fh:
            fh.write(b"partial")
            raise OSError("disk full")
    assert target.read_bytes() != b"old"


def test_errors_name_the_users_path_never_the_temp_file(tmp_path):
    target = tmp_path / "no" / "dir" / "x.png"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write(target, lambda fh: fh.write(b"x"))
    assert str(target) in str(info.value) and ".tmp" not in str(info.value) and "does not exist" in str(info.value)

    def disk_full(fh):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as info:  # same type, the user's path, and no temp file left behind
        atomic_write(tmp_path / "y.bin", disk_full)
    assert str(tmp_path / "y.bin") in str(info.value) and "No space left" in str(info.value)
    assert ".tmp" not in str(info.value) and list(tmp_path.iterdir()) == []


def test_zip_member_claims_are_bounded_by_the_archive(tmp_path):
    import zipfile

    from minivgg.io.files import DEFLATE_MAX_RATIO, CheckpointError, check_zip_member

    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", bytes(100_000))
    info = zipfile.ZipFile(path).infolist()[0]
    size = path.stat().st_size
    assert check_zip_member(info, size, str(path)) == 100_000  # negative control: an honest member passes
    info.file_size = DEFLATE_MAX_RATIO * info.compress_size + 65  # more than deflate can expand
    with pytest.raises(CheckpointError, match="more than deflate can expand"):
        check_zip_member(info, size, str(path))
    info.file_size, info.compress_size = 100_000, size + 1  # compressed bytes past the end of the archive
    with pytest.raises(CheckpointError, match="past the end"):
        check_zip_member(info, size, str(path))


def test_figures_are_written_whole_and_refuse_an_unknown_suffix(tmp_path):
    pytest.importorskip("matplotlib")
    from minivgg.io.figures import new_figure, save_figure

    fig, axes = new_figure(2, 1, (2.0, 2.0))
    assert axes.shape == (1, 2)
    axes[0, 0].plot([0, 1], [1, 0])
    out = save_figure(fig, tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="expected a suffix among"):
        save_figure(fig, tmp_path / "f.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # nothing half-written left behind


def test_figures_name_the_plot_extra_without_matplotlib(monkeypatch):
    import builtins

    from minivgg.io.figures import new_figure

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"plotting an experiment needs matplotlib: install the 'plot' extra"):
        new_figure(what="plotting an experiment")
