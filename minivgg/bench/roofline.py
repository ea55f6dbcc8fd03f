"""The physical floor of each layer: is it bound by arithmetic (sgemm rate) or by memory traffic (bandwidth)?

A layer's time can be no less than the larger of

.. math::

    t_{compute} = \\frac{2 \\cdot MACs}{\\text{sgemm rate}}, \\qquad
    t_{memory} = \\frac{\\text{bytes}}{\\text{bandwidth}},

with ``bytes`` = input + output activations + parameters (each touched at
least once, float32) and both rates measured on this machine in the same run
(:func:`minivgg.bench.machine.sgemm_rate`, :func:`~minivgg.bench.machine.memory_bandwidth`).
The larger term names the bound. A measured time ``t`` then reaches
``floor / t`` of what the hardware allows. MACs are the *direct* ones
(:attr:`minivgg.configs.LayerSpec.macs`): Winograd F(2x2,3x3) does 2.25x fewer
multiplications and F(4x4,3x3) 4x fewer, so a Winograd layer can beat its
direct compute floor -- :func:`model_floors` gives those floors too.

Worked example, VGG-16 at batch 1: fc6 has 102.8M parameters (411 MB) and
103M MACs; at ~20 GB/s the weights alone take ~20 ms, against ~1 ms of
arithmetic at sgemm speed: memory-bound. conv3_2 has 1.85 GMACs on 0.8 MB of
activations: compute-bound.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..configs import LayerSpec

#: Multiplications saved by each Winograd variant on a 3x3/s1/p1 conv (Lavin & Gray 2015).
WINOGRAD_SAVING = {"F(2x2,3x3)": 2.25, "F(4x4,3x3)": 4.0}


def layer_bytes(spec: LayerSpec, batch: int, itemsize: int = 4) -> int:
    """Bytes a layer must touch at least once: ``batch`` inputs and outputs, plus its parameters."""
    return itemsize * (batch * (math.prod(spec.in_shape) + math.prod(spec.out_shape)) + spec.num_params)


def layer_floor(spec: LayerSpec, batch: int, sgemm_gflops: float, bandwidth_gbs: float,
                itemsize: int = 4) -> dict:
    """``{"flops", "bytes", "compute_s", "memory_s", "floor_s", "bound"}`` of one layer's forward."""
    flops = 2 * spec.macs * batch
    nbytes = layer_bytes(spec, batch, itemsize)
    compute = flops / (sgemm_gflops * 1e9)
    memory = nbytes / (bandwidth_gbs * 1e9)
    return {"flops": flops, "bytes": nbytes, "compute_s": compute, "memory_s": memory,
            "floor_s": max(compute, memory), "bound": "compute" if compute >= memory else "memory"}


def roofline(specs: Sequence[LayerSpec], batch: int, sgemm_gflops: float, bandwidth_gbs: float,
             measured_s: Mapping[str, float] | None = None) -> list[dict]:
    """:func:`layer_floor` for every layer, plus ``fraction = floor / measured`` where a time is given.

    For a compute-bound layer ``fraction`` is the share of the sgemm rate
    reached (in direct-MAC terms, so Winograd may exceed 1); for a
    memory-bound one the share of the bandwidth.
    """
    rows = []
    for spec in specs:
        row = {"name": spec.name, "kind": spec.kind, **layer_floor(spec, batch, sgemm_gflops, bandwidth_gbs)}
        if measured_s and spec.name in measured_s and measured_s[spec.name] > 0:
            row["measured_s"] = measured_s[spec.name]
            row["fraction"] = row["floor_s"] / measured_s[spec.name]
        rows.append(row)
    return rows


def model_floors(specs: Sequence[LayerSpec], batch: int, sgemm_gflops: float, bandwidth_gbs: float) -> dict:
    """The whole forward's floor: direct, and with each Winograd variant on the 3x3/s1/p1 convs.

    Returns ``{"direct_s", "F(2x2,3x3)_s", "F(4x4,3x3)_s", "memory_s"}`` -- sums
    of per-layer ``max(compute, memory)``, where Winograd divides the compute
    term of every 3x3/s1/p1 conv by its saving.
    """
    out = {"direct_s": 0.0, "memory_s": 0.0, **{f"{k}_s": 0.0 for k in WINOGRAD_SAVING}}
    for spec in specs:
        f = layer_floor(spec, batch, sgemm_gflops, bandwidth_gbs)
        out["direct_s"] += f["floor_s"]
        out["memory_s"] += f["memory_s"]
        wino = spec.kind == "conv" and spec.kernel == 3 and spec.stride == 1 and spec.pad == 1
        for name, saving in WINOGRAD_SAVING.items():
            compute = f["compute_s"] / saving if wino else f["compute_s"]
            out[f"{name}_s"] += max(compute, f["memory_s"])
    return out
