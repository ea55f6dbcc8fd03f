"""``minivgg gradcheck``: gradient-check every op and a tiny whole VGG in float64."""

from __future__ import annotations

import argparse

from ..analysis.selfcheck import format_results, run_all
from . import _common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradcheck", help="gradient-check every op (float64, centered differences)",
                       description="Compare every backward pass with centered differences in float64 "
                                   "and print the relative errors. Exit status 1 if any check fails.")
    p.add_argument("--seed", type=_common.seed, default=0, help="seed for the random inputs (default 0)")
    p.add_argument("--no-model", action="store_true", help="skip the whole tiny-VGG check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results = run_all(args.seed, include_model=not args.no_model)
    print(format_results(results))
    failed = sum(not r.report.passed for r in results)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
