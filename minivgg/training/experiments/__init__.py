"""The lecture's measurable claims, each an experiment on the embedded data.

``get(name)`` imports an experiment module lazily (each may pull in a lot of
training code); :data:`NAMES` lists them in the order ``minivgg experiment --help``
shows. See :mod:`.base` for what a module provides.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .base import ExperimentResult, Progress

__all__ = ["NAMES", "TITLES", "get", "ExperimentResult", "Progress"]

#: experiment name -> module of this package
_MODULES = {"lrn": "lrn", "depth": "depth", "ensemble": "ensemble", "transfer": "transfer",
            "localization": "localization"}

#: experiment name -> its one-line title (each module's ``TITLE``), here so ``minivgg --help`` need not import them
TITLES = {
    "lrn": "LRN does not help (paper Table 3: A vs A-LRN)",
    "depth": "Deeper is better, at a cost (paper Table 3: A, B, D, E)",
    "ensemble": "Ensembles win (paper §4.3: averaging soft-max posteriors)",
    "transfer": "FC7 features transfer to new classes (lecture 9; paper Appendix B)",
    "localization": "Localization: SCR vs PCR, fine-tuning fc6-fc8 vs all layers (paper Appendix A, Table 8)",
}

NAMES: tuple[str, ...] = tuple(_MODULES)


def get(name: str) -> ModuleType:
    """The experiment module ``name``; ValueError naming the known ones otherwise."""
    if name not in _MODULES:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f".{_MODULES[name]}", __name__)
