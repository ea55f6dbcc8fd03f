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
