"""Strict JSON for everything minivgg prints or writes: NaN and infinity become ``null``.

JSON has no NaN or Infinity. Python's :mod:`json` writes them anyway, as bare
tokens that other readers (browsers, ``jq``, most JSON libraries) reject, so
minivgg never lets one through: :func:`jsonable` maps every non-finite float
to ``None``, and :func:`dumps` serialises with ``allow_nan=False`` so a number
that slipped past is an error, not a corrupt file. In minivgg's JSON output,
``null`` in a number's place means "not finite".
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """Tuples -> lists, numpy scalars and arrays -> Python values, dataclasses -> dicts, NaN/inf -> ``None``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(jsonable(obj), allow_nan=False, **kwargs)``: strict JSON text."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)
