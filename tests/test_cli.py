"""The command line: conventions (--help, exit status 2 on bad arguments), gradcheck, tour."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from minivgg import ops
from minivgg.cli import main


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minivgg", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("tour", "gradcheck"):
        assert command in result.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: minivgg" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["frobnicate"], ["gradcheck", "--seed", "x"], ["tour", "--bogus"]])
def test_bad_arguments_exit_2_with_a_usage_line(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "usage: minivgg" in result.stderr and "error:" in result.stderr


def test_a_closed_pipe_stops_output_quietly_with_141():
    """`minivgg summary vgg16 | head -1`: the reader is gone; no traceback, no 'internal error', status 141.

    The pipe's read end is closed before the command writes (a reader that left early, without the race of
    reading first), so its first write fails with EPIPE.
    """
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "minivgg", "summary", "vgg16"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # control: with a reader the same command succeeds
    assert run_cli("summary", "vgg16").returncode == 0


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "conv2d[im2col]" in out and "FAIL" not in out and " 0 failed" in out


def test_gradcheck_command_fails_on_a_wrong_backward(monkeypatch, capsys):
    # negative control: a ReLU backward that passes gradient through negative inputs
    monkeypatch.setattr(ops, "relu_backward", lambda dout, cache: dout * np.ones_like(cache.out))
    assert main(["gradcheck", "--no-model"]) == 1
    out = capsys.readouterr().out
    assert "relu" in out and "FAIL" in out and "1 failed" in out


@pytest.mark.slow
def test_tour_runs_and_reports_the_published_parameter_count():
    result = run_cli("tour", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "138,357,544" in result.stdout
    assert "every check passed" in result.stdout
