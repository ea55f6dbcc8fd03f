"""``minivgg exercise``: write a cs231n-style workspace (``new``) and grade it (``check``)."""

from __future__ import annotations

import argparse
import sys
import time

from ..exercises import EXERCISES, as_dict, as_table, check_module, load_student, new_workspace
from ..exercises.checks import CASE_TIMEOUT
from ..exercises.loader import IMPORT_TIMEOUT
from ..exercises.train import DEFAULT_STEPS
from ..io.jsonout import dumps
from . import EXIT_FAILED, EXIT_OK, UsageError, _common
from ._progress import counter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercise", help="cs231n-style layer exercises that minivgg grades",
                       description="Write a workspace of layer stubs, then check your implementation "
                                   "against minivgg's ops and float64 gradient checks.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="write DIR/layers.py (stubs), DIR/README.md and DIR/walkthrough.ipynb")
    new.add_argument("dir", metavar="DIR")
    new.add_argument("--force", action="store_true", help="overwrite an existing workspace")
    new.set_defaults(func=run_new)
    check = actions.add_parser("check", help="grade DIR/layers.py; exit 0 only when every exercise passes")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.add_argument("--only", choices=list(EXERCISES), help="check one exercise")
    check.add_argument("--train", action="store_true",
                       help="when every check passes, train a tiny VGG built from your layers on the shapes data")
    check.add_argument("--steps", type=_common.positive_int, default=DEFAULT_STEPS,
                       help=f"Adam steps of batch 32 for --train (default {DEFAULT_STEPS}: >= 90%% validation "
                            "accuracy with a correct solution, whatever the machine's speed)")
    check.add_argument("--seconds", type=_common.positive_float, default=None,
                       help="optional time cap for --train: stop after the first step past it (default: none)")
    check.add_argument("--seed", type=_common.seed, default=0, help="seed of the --train weights and batches (default 0)")
    check.add_argument("--timeout", type=_common.positive_float, default=None,
                       help=f"seconds your code may run: importing layers.py (default {IMPORT_TIMEOUT:g}) "
                            f"and each check case (default {CASE_TIMEOUT:g}); an endless loop becomes a report")
    check.set_defaults(func=run_check)


def run_new(args: argparse.Namespace) -> int:
    try:
        paths = new_workspace(args.dir, force=args.force)
    except (FileExistsError, NotADirectoryError, OSError) as exc:
        raise UsageError(str(exc)) from None
    for path in paths:
        print(f"wrote {path}")
    print(f"next: implement {paths[0]}, then run `minivgg exercise check {args.dir}` "
          f"(or open {paths[-1]} in Jupyter)")
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    import_limit = IMPORT_TIMEOUT if args.timeout is None else args.timeout
    case_limit = CASE_TIMEOUT if args.timeout is None else args.timeout
    load = load_student(args.dir, timeout=import_limit)
    if load.error is not None and not load.path.exists():
        raise UsageError(load.error)
    results = check_module(load.module, args.only, timeout=case_limit) if load.module is not None else []
    report = as_dict(load, results)
    passed = report["passed"]
    if not args.json:
        print(as_table(load, results), flush=True)
    if args.train:
        if passed and args.only is None:
            report["train"] = _train(load.module, args)
        else:
            report["train"] = None
            if not args.json:
                print("--train skipped: it needs every exercise to pass (and no --only)")
    if args.json:
        print(dumps(report, indent=2))  # strict JSON: a diverged run's NaN loss becomes null
    return EXIT_OK if passed else EXIT_FAILED


def _progress(steps: int):
    """A tqdm bar on a terminal; otherwise a line on stderr every tenth of the run (logs stay readable)."""
    if sys.stderr.isatty():
        return counter("training", unit="step")
    start, every = time.perf_counter(), max(1, steps // 10)

    def update(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            print(f"training: step {done}/{total} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    return update


def _train(module, args: argparse.Namespace) -> dict:
    """Draw the shapes data here (the cli floor may import training; exercises may not), train, report."""
    from ..exercises.train import train_student
    from ..training.data.shapes import load_shapes

    split = load_shapes(20_000, 1_000, seed=0, size=16)
    cap = "" if args.seconds is None else f", at most {args.seconds:g} s"
    if not args.json:
        print(f"\ntraining a tiny VGG built from your layers on 16x16 shapes: {args.steps} Adam steps{cap} ...",
              flush=True)
    res = train_student(module, split.x_train, split.y_train, split.x_val, split.y_val, steps=args.steps,
                        seconds=args.seconds, seed=args.seed, progress=_progress(args.steps))
    if not args.json:
        cut = f" (stopped by the {args.seconds:g} s cap of {res['planned_steps']} steps)" if res["stopped"] == "time cap" else ""
        print(f"{res['steps']} steps ({res['epochs']:.1f} epochs) in {res['seconds']:.0f} s{cut}; "
              f"validation accuracy {100 * res['val_accuracy']:.1f}% on {res['n_val']} images (chance 10%)")
    return res
