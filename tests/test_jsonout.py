"""Strict JSON: no minivgg JSON output contains NaN or Infinity."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from minivgg import bench
from minivgg.io.jsonout import dumps, jsonable


def _strict_loads(text: str):
    """json.loads that refuses the NaN/Infinity tokens Python's json would accept."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


@dataclass
class _Point:
    x: float
    y: tuple


def test_non_finite_numbers_become_null_everywhere():
    obj = {"a": float("nan"), "b": [np.float32(np.inf), (1, -math.inf)], "c": np.array([1.0, np.nan]),
           "d": _Point(np.float64(2.5), (np.int64(3),))}
    assert jsonable(obj) == {"a": None, "b": [None, [1, None]], "c": [1.0, None], "d": {"x": 2.5, "y": [3]}}
    assert _strict_loads(dumps(obj))["d"]["x"] == 2.5


def test_strict_loads_would_catch_python_s_default_output():
    # negative control: plain json.dumps writes a bare NaN, which the strict reader above refuses
    with pytest.raises(ValueError, match="non-standard"):
        _strict_loads(json.dumps({"a": float("nan")}))


def test_bench_json_is_strict():
    res = {"arch": "vgg16", "x": float("nan"), "runs": []}
    assert _strict_loads(bench.to_json(res))["x"] is None


def test_summary_json_is_strict(capsys):
    from minivgg.cli import main

    assert main(["summary", "vgg11", "--format", "json"]) == 0
    _strict_loads(capsys.readouterr().out)
