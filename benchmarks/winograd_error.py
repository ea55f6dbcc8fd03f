"""fp32 error of direct, Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution on every VGG-16 conv layer shape.

Usage::

    .venv/bin/python benchmarks/winograd_error.py [--max-hw 56] [--seed 0]

Prints three Markdown tables (forward output, ``dx``, ``dw``) in the pattern of
Lavin & Gray's Table 4: per layer, each algorithm's float32 RMS and max error
against a float64 reference on the same data, relative to the reference's RMS
(:func:`minivgg.bench.conv_algos.winograd_error_table`). Batch 1; H and W are
capped at ``--max-hw`` (default 56) to keep the run short -- the channel counts,
which set the summation length, are VGG-16's.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minivgg.bench.conv_algos import ACCURACY_ALGOS, winograd_error_table  # noqa: E402

LABELS = {"im2col": "direct", "winograd": "F(2x2,3x3)", "winograd4": "F(4x4,3x3)"}
PARTS = {"out": "forward output", "dx": "input gradient dx", "dw": "weight gradient dw"}


def markdown(rows: list[dict], part: str) -> list[str]:
    """One table: a row per layer shape, RMS and max relative error per algorithm, and F4's RMS over direct's."""
    algos = [a for a in ACCURACY_ALGOS if a in rows[0]["errors"]]
    head = "| layers | x (N,C,H,W) | F | " + " | ".join(f"{LABELS[a]} rms | {LABELS[a]} max" for a in algos)
    lines = [f"**{PARTS[part]}** (fp32 error / RMS of the float64 reference)", "",
             head + " | F(4x4) rms / direct rms |",
             "|" + "---|" * (3 + 2 * len(algos) + 1)]
    for r in rows:
        e = r["errors"]
        cells = " | ".join(f"{e[a][part]['rms_rel']:.1e} | {e[a][part]['max_rel']:.1e}" for a in algos)
        ratio = e["winograd4"][part]["rms_rel"] / e["im2col"][part]["rms_rel"]
        lines.append(f"| {r['layers']} | {tuple(r['x_shape'])} | {r['w_shape'][0]} | {cells} | {ratio:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-hw", type=int, default=56, help="cap on H and W (0: full 224x224)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = winograd_error_table(max_hw=args.max_hw or None, seed=args.seed)
    lines = [f"fp32 convolution error per VGG-16 layer, batch 1, H and W capped at {args.max_hw or 'none'}", ""]
    for part in PARTS:
        lines += markdown(rows, part) + [""]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
