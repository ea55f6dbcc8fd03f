"""Shared fixtures: a seeded random generator per test, and a factory of tiny VGGs.

Randomness: every test gets its own generator, seeded from the test's id, so
a test sees the same numbers whether it runs alone, in its file or in the
whole suite, and no test depends on how much randomness another one drew.
Modules that name a module-level ``RNG`` (helpers use it to make inputs) get
it replaced by that per-test generator for the duration of each test.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from minivgg import VGG

#: The tiny VGG the tests build unless they say otherwise: VGG-11's layer
#: pattern at 1/16 width (4..32 channels), 32x32 input, 16-wide fc6/fc7,
#: float64 (the checking path). About 25k parameters: a whole-model gradient
#: check takes well under a second.
TINY_VGG = dict(config="vgg11", num_classes=10, input_size=32, width=1 / 16, fc_width=16, dtype=np.float64, seed=0)


def seed_of(nodeid: str) -> int:
    """A stable 32-bit seed for a test id (the same in every run and process)."""
    return zlib.crc32(nodeid.encode("utf-8"))


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A fresh generator seeded from this test's id."""
    return np.random.default_rng(seed_of(request.node.nodeid))


@pytest.fixture(autouse=True)
def _per_test_module_rng(request, monkeypatch):
    """Give a module's ``RNG`` global a fresh per-test generator (see the module docstring)."""
    module = getattr(request, "module", None)
    if module is not None and isinstance(getattr(module, "RNG", None), np.random.Generator):
        monkeypatch.setattr(module, "RNG", np.random.default_rng(seed_of(request.node.nodeid)))
    yield


@pytest.fixture
def tiny_vgg():
    """Factory of tiny VGGs: ``tiny_vgg(**overrides)`` builds :data:`TINY_VGG` with ``overrides``.

    Any :class:`minivgg.VGG` keyword may be overridden (``config="vgg16"``,
    ``dtype=np.float32``, ``seed=3`` ...).
    """
    def make(**overrides) -> VGG:
        return VGG(**{**TINY_VGG, **overrides})

    return make
