"""The lecture's measurable claims, each an experiment on the embedded data.

``get(name)`` imports an experiment module lazily (each may pull in a lot of
training code); :data:`NAMES` lists them in the order ``minivgg experiment --help``
shows. See :mod:`.base` for what a module provides.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .base import ExperimentResult, Progress

__all__ = ["NAMES", "get", "ExperimentResult", "Progress"]

#: experiment name -> module of this package
_MODULES = {"lrn": "lrn", "depth": "depth", "ensemble": "ensemble", "transfer": "transfer",
            "localization": "localization"}

NAMES: tuple[str, ...] = tuple(_MODULES)


def get(name: str) -> ModuleType:
    """The experiment module ``name``; ValueError naming the known ones otherwise."""
    if name not in _MODULES:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f".{_MODULES[name]}", __name__)
