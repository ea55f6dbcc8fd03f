"""``minivgg exercise``: write a cs231n-style workspace (``new``) and grade it (``check``)."""

from __future__ import annotations

import argparse
import json

from ..exercises import EXERCISES, PASS, as_dict, as_table, check_module, load_student, new_workspace
from . import EXIT_FAILED, EXIT_OK, UsageError, _common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercise", help="cs231n-style layer exercises that minivgg grades",
                       description="Write a workspace of layer stubs, then check your implementation "
                                   "against minivgg's ops and float64 gradient checks.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="write DIR/layers.py (stubs) and DIR/README.md")
    new.add_argument("dir", metavar="DIR")
    new.add_argument("--force", action="store_true", help="overwrite an existing workspace")
    new.set_defaults(func=run_new)
    check = actions.add_parser("check", help="grade DIR/layers.py; exit 0 only when every exercise passes")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.add_argument("--only", choices=list(EXERCISES), help="check one exercise")
    check.add_argument("--train", action="store_true",
                       help="when every check passes, train a tiny VGG built from your layers on the shapes data")
    check.add_argument("--seconds", type=_common.positive_float, default=60.0,
                       help="training time budget for --train (default 60)")
    check.add_argument("--steps", type=_common.positive_int, default=None,
                       help="stop --train after this many Adam steps (reproducible; still capped by --seconds)")
    check.set_defaults(func=run_check)


def run_new(args: argparse.Namespace) -> int:
    try:
        paths = new_workspace(args.dir, force=args.force)
    except (FileExistsError, NotADirectoryError, OSError) as exc:
        raise UsageError(str(exc)) from None
    for path in paths:
        print(f"wrote {path}")
    print(f"next: implement {paths[0]}, then run `minivgg exercise check {args.dir}`")
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    if args.train and args.json:
        raise UsageError("--train prints a training report and cannot be combined with --json")
    load = load_student(args.dir)
    if load.error is not None and not load.path.exists():
        raise UsageError(load.error)
    results = check_module(load.module, args.only) if load.module is not None else []
    if args.json:
        print(json.dumps(as_dict(load, results), indent=2))
    else:
        print(as_table(load, results))
    passed = load.module is not None and all(r.status == PASS for r in results)
    if args.train and passed and args.only is None:
        return _train(load.module, args.seconds, args.steps)
    if args.train and not args.json:
        print("--train skipped: it needs every exercise to pass (and no --only)")
    return EXIT_OK if passed else EXIT_FAILED


def _train(module, seconds: float, steps: int | None) -> int:
    """Draw the shapes data here (the cli floor may import training; exercises may not) and train."""
    from ..exercises.train import train_student
    from ..training.data.shapes import load_shapes

    split = load_shapes(20_000, 1_000, seed=0, size=16)
    print(f"training a tiny VGG built from your layers on 16x16 shapes for {seconds:g} s ...", flush=True)
    res = train_student(module, split.x_train, split.y_train, split.x_val, split.y_val, seconds=seconds, max_steps=steps)
    print(f"{res['steps']} steps ({res['epochs']:.1f} epochs) in {res['seconds']:.0f} s; "
          f"validation accuracy {100 * res['val_accuracy']:.1f}% on {res['n_val']} images")
    return EXIT_OK
