"""``minivgg train``: train a VGG on the embedded shapes, CIFAR-10 or (Fashion-)MNIST.

Also home of the data options shared by ``evaluate``, ``features`` and
``ensemble`` (:func:`add_data_arguments`, :func:`load_data`,
:func:`load_checkpoint_model`).
"""

from __future__ import annotations

import argparse
import os
import contextlib
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import training as tr
from ..configs import ARCHS, CONFIGS, VGGConfig
from ..training.trainer import TrainCallback
from ..vgg import VGG
from . import EXIT_INTERRUPTED, UsageError
from ._progress import bar
from ._common import arch_name, non_negative_float, non_negative_int, positive_float, positive_int, probability
from .localize import check_task_arguments, format_loc_epoch, run_train as run_localize_train

RECIPE = tr.RECIPE_MODEL
DEFAULT_CONFIG = tr.TrainConfig()


# ------------------------------------------------------------------ shared data options
def add_data_arguments(p: argparse.ArgumentParser, *, from_checkpoint: bool) -> None:
    """``--data``, ``--data-dir``, ``--n-train``, ``--n-val``, ``--data-seed``.

    With ``from_checkpoint`` the defaults are whatever the checkpoint was trained on.
    """
    g = p.add_argument_group("data")
    default = "the checkpoint's dataset" if from_checkpoint else "shapes"
    g.add_argument("--data", choices=tr.DATASETS, default=None,
                   help=f"shapes (embedded, generated), cifar10 (python batches) or mnist "
                        f"(MNIST/Fashion-MNIST idx files) (default: {default})")
    g.add_argument("--data-dir", metavar="DIR", help="directory of the cifar10 or mnist files")
    g.add_argument("--n-train", type=positive_int, metavar="N",
                   help="shapes: training images to generate (default 10000); cifar10/mnist: cap on training images")
    g.add_argument("--n-val", type=positive_int, metavar="N",
                   help="shapes: validation (and test) images (default 2000); "
                        "cifar10/mnist: images held out of the training files for validation (default 5000)")
    g.add_argument("--data-seed", type=non_negative_int, metavar="S",
                   help="seed of the generated shapes (default 0; independent of --seed)")


def load_data(args: argparse.Namespace, meta: Mapping[str, Any] | None = None, dtype: str = "float32") -> tr.Dataset:
    """The dataset the options (or, for unset options, the checkpoint ``meta``) name; bad input -> UsageError."""
    info = dict(meta["data"]) if meta is not None else {}
    name = args.data or info.get("name", "shapes")
    same = meta is not None and name == info.get("name")
    pick = lambda opt, key, default=None: opt if opt is not None else (info.get(key, default) if same else default)  # noqa: E731
    data_dir = args.data_dir if args.data_dir is not None else (info.get("data_dir") if same else None)
    try:
        return tr.load_dataset(name, data_dir, n_train=pick(args.n_train, "n_train"), n_val=pick(args.n_val, "n_val"),
                               data_seed=pick(args.data_seed, "data_seed", 0),
                               classes=info.get("classes") if same and name == "shapes" else None, dtype=dtype)
    except (ValueError, OSError) as e:  # missing/corrupt files, unknown names, bad sizes
        raise UsageError(str(e)) from e


def refuse_localization_checkpoint(ckpt, path) -> None:
    """UsageError when ``ckpt`` holds a box regressor: its outputs are boxes, not class scores."""
    from ..training.localization import is_localization_checkpoint

    if is_localization_checkpoint(ckpt):
        raise UsageError(f"{path} is a localization checkpoint (minivgg train --task localize): its outputs are "
                         "boxes, not class scores; use minivgg localize with it")


def load_checkpoint_model(path: str):
    """``(model, checkpoint)`` from a training checkpoint; unreadable, foreign or weights-only files -> UsageError.

    Evaluating a model needs the preprocessing it was trained with (the
    training mean, the input size) and its dataset, which only a checkpoint
    written by ``minivgg train`` records; plain weights (``minivgg convert``)
    are refused with that reason.
    """
    try:
        model, ckpt = tr.model_from_checkpoint(path)
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from e
    refuse_localization_checkpoint(ckpt, path)
    missing = [k for k in ("preprocess", "data") if k not in ckpt.meta]
    if missing:
        raise UsageError(f"{path} holds plain weights without a training run's {' and '.join(missing)} records; "
                         "this command needs a checkpoint.npz written by minivgg train "
                         "(minivgg predict takes plain weights)")
    return model, ckpt


def thread_limit(n: int | None):
    """A context limiting minivgg's kernels and BLAS to ``n`` threads (no-op for None)."""
    if n is None:
        return contextlib.nullcontext()
    from ..kernels._parallel import limit_threads

    try:
        return limit_threads(n)
    except ValueError as e:
        raise UsageError(str(e)) from e


# ------------------------------------------------------------------ the command
_MODEL_ARGS = ("arch", "width", "fc_width", "dropout")
_CONFIG_ARGS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule", "lr_step",
                "lr_gamma", "patience", "crop_pad", "seed")


def register(sub: argparse._SubParsersAction) -> None:
    d, s = DEFAULT_CONFIG, RECIPE
    p = sub.add_parser(
        "train", help="train a VGG (embedded shapes, CIFAR-10 or MNIST) with checkpoints and history",
        description="Train a VGG with mini-batch SGD/Adam, weight decay, dropout and flips, as in the paper "
                    "(§3.1). Prints one line per epoch and, with --out DIR, writes DIR/checkpoint.npz and "
                    "DIR/history.json after every epoch. --resume continues DIR/checkpoint.npz exactly. "
                    "The defaults reach >= 95% validation accuracy on the embedded shapes in a few minutes. "
                    "--task localize fine-tunes a trained classifier (--init) into a bounding-box regressor "
                    "(paper Appendix A); history.json then records val_loc_error (IoU > 0.5, ground-truth class) "
                    "and val_loc_error_pred (predicted class).")
    add_data_arguments(p, from_checkpoint=False)
    t = p.add_argument_group("task")
    t.add_argument("--task", choices=("classify", "localize"), default="classify",
                   help="classify (default): train a classifier; localize: fine-tune --init into a box regressor")
    t.add_argument("--regression", choices=("scr", "pcr"), default=None,
                   help="localize: one box for all classes (scr, 4 outputs) or one per class (pcr, 4 x classes; "
                        "default pcr)")
    t.add_argument("--init", metavar="CHECKPOINT",
                   help="localize: the classification checkpoint.npz to start from (its data are the default data)")
    t.add_argument("--finetune", choices=("fc", "all"), default=None,
                   help="localize: update only fc6-fc8 (fc) or every layer (all, default)")
    m = p.add_argument_group("model")
    m.add_argument("--arch", type=arch_name, help=f"{', '.join(ARCHS)} or the paper's letters {', '.join(CONFIGS)} "
                                                   f"(default {s['arch']})")
    m.add_argument("--width", type=positive_float, metavar="W", help=f"multiplier on the paper's conv channels (default {s['width']})")
    m.add_argument("--fc-width", type=positive_int, metavar="N", help=f"width of fc6 and fc7 (default {s['fc_width']})")
    m.add_argument("--dropout", type=probability, metavar="P", help=f"dropout after fc6/fc7 (default {s['dropout']})")
    m.add_argument("--dtype", choices=("float32", "float64"), help="parameter dtype (default float32)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=positive_int, metavar="N", help=f"total epochs (default {d.epochs})")
    o.add_argument("--batch-size", type=positive_int, metavar="N", help=f"images per step (default {d.batch_size})")
    o.add_argument("--lr", type=positive_float, metavar="LR", help=f"initial learning rate, > 0 (default {d.lr:g})")
    o.add_argument("--optimizer", choices=tr.OPTIMIZERS, help=f"default {d.optimizer}")
    o.add_argument("--momentum", type=probability, metavar="MU", help=f"SGD momentum (default {d.momentum})")
    o.add_argument("--weight-decay", type=non_negative_float, metavar="WD", help=f"L2 on the weights (default {d.weight_decay:g})")
    o.add_argument("--schedule", choices=tr.SCHEDULES,
                   help=f"step: x lr-gamma every lr-step epochs; plateau: x lr-gamma when val accuracy stalls "
                        f"(the paper); none (default {d.schedule})")
    o.add_argument("--lr-step", type=positive_int, metavar="N", help=f"epochs between step decays (default {d.lr_step})")
    o.add_argument("--lr-gamma", type=probability, metavar="G", help=f"decay factor (default {d.lr_gamma})")
    o.add_argument("--patience", type=non_negative_int, metavar="N", help=f"plateau: epochs without gain (default {d.patience})")
    o.add_argument("--no-flip", dest="flip", action="store_false", default=None,
                   help="no random horizontal flips (default: flips on, except for mnist)")
    o.add_argument("--crop-pad", type=non_negative_int, metavar="P",
                   help="random crops after zero padding by this many pixels (default: 0 for shapes, 4 for cifar10, 2 for mnist)")
    o.add_argument("--seed", type=non_negative_int, metavar="S", help="seed of weights, dropout, shuffling, augmentation (default 0)")
    r = p.add_argument_group("output")
    r.add_argument("--out", metavar="DIR", help="write checkpoint.npz and history.json here")
    r.add_argument("--resume", action="store_true", help="continue DIR/checkpoint.npz (needs --out DIR)")
    r.add_argument("--threads", type=positive_int, metavar="N", help="limit kernels and BLAS to N threads (default: all cores)")
    r.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (it is only drawn on a terminal anyway)")
    p.set_defaults(func=run)


def _dataset_defaults(name: str) -> dict:
    # Digits are not mirror-symmetric; CIFAR-10 benefits from the usual pad-4 crops.
    return {"shapes": {}, "cifar10": {"crop_pad": 4}, "mnist": {"crop_pad": 2, "flip": False}}[name]


def _build(args: argparse.Namespace, ckpt: tr.Checkpoint | None, data: tr.Dataset) -> tuple[VGGConfig, tr.TrainConfig]:
    """The architecture and TrainConfig: defaults < dataset defaults < checkpoint < explicit options."""
    explicit_cfg = {k: getattr(args, k) for k in _CONFIG_ARGS + ("flip",) if getattr(args, k) is not None}
    explicit_model = {k: getattr(args, k) for k in _MODEL_ARGS if getattr(args, k) is not None}
    if ckpt is not None:
        theirs = ckpt.config
        diffs = [f"--{k.replace('_', '-')} {v} (checkpoint: {getattr(theirs, k)})" for k, v in explicit_model.items()
                 if not (VGGConfig(arch=v).layers == theirs.layers if k == "arch" else v == getattr(theirs, k))]
        if args.dtype is not None and args.dtype != ckpt.dtype:
            diffs.append(f"--dtype {args.dtype} (checkpoint: {ckpt.dtype})")
        if diffs:
            raise UsageError(f"cannot resume with a different architecture: {', '.join(diffs)}")
        arch, base = theirs, dict(ckpt.meta["train"])
    else:
        try:
            arch = tr.recipe_config(data, **explicit_model)  # validated now, not mid-run
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from e
        base = {**dataclasses.asdict(DEFAULT_CONFIG), **_dataset_defaults(data.name)}
    try:
        config = tr.TrainConfig(**{**base, **explicit_cfg})
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e
    return arch, config


def _check_out_dir(out: Path) -> None:
    """Fail before loading data if ``--out`` could not be created or written (its nearest existing ancestor)."""
    base = out
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise UsageError(f"--out {out}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {base} is not writable")


def run(args: argparse.Namespace) -> int:
    check_task_arguments(args)
    if args.task == "localize":
        if args.out:
            if (Path(args.out) / tr.CHECKPOINT_NAME).exists():
                raise UsageError(f"{Path(args.out) / tr.CHECKPOINT_NAME} already exists; choose another --out")
            if Path(args.out).exists() and not Path(args.out).is_dir():
                raise UsageError(f"--out {args.out} exists and is not a directory")
            _check_out_dir(Path(args.out))
        return run_localize_train(args, load_data, thread_limit, LocProgress)
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR (the directory holding checkpoint.npz)")
    ckpt = None
    if args.out:
        ckpt_path = Path(args.out) / tr.CHECKPOINT_NAME
        if args.resume:
            try:
                ckpt = tr.read_checkpoint(ckpt_path)
            except (OSError, ValueError) as e:
                raise UsageError(str(e)) from e
            if "train" not in ckpt.meta:
                raise UsageError(f"{ckpt_path} holds weights only; it cannot resume training")
        elif ckpt_path.exists():
            raise UsageError(f"{ckpt_path} already exists; pass --resume to continue it or choose another --out")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise UsageError(f"--out {args.out} exists and is not a directory")
        _check_out_dir(Path(args.out))
    dtype = ckpt.dtype if ckpt is not None else (args.dtype or "float32")
    data = load_data(args, ckpt.meta if ckpt is not None else None, dtype)
    arch, config = _build(args, ckpt, data)
    model = VGG(arch, dtype=dtype, seed=config.seed)
    print(f"{data.name}: {len(data.x_train):,} training, {len(data.x_val):,} validation images, "
          f"{data.num_classes} classes; model {arch.describe()}, {dtype}, {model.num_params:,} parameters")
    print(f"{config.optimizer} lr {config.lr:g} ({config.schedule} schedule), batch {config.batch_size}, "
          f"{plural(config.epochs, 'epoch')}, weight decay {config.weight_decay:g}, flips {'on' if config.flip else 'off'}, "
          f"crops {'pad ' + str(config.crop_pad) if config.crop_pad else 'off'}, seed {config.seed}", flush=True)
    trainer = None
    try:
        with thread_limit(args.threads):
            trainer = tr.Trainer(model, data, config, args.out)
            if ckpt is not None:
                trainer.restore(ckpt)
                if trainer.epoch >= config.epochs:
                    print(f"the checkpoint already has {plural(trainer.epoch, 'epoch')}; raise --epochs to train more")
                    return 0
                print(f"resuming after epoch {trainer.epoch}")
            progress = TrainProgress(args.progress, print_line=lambda line: print(line, flush=True))
            try:
                result = trainer.fit(callback=progress)
            finally:
                progress.close()
    # TrainingDiverged: exit 3 with its one-line message, from minivgg.cli.main like every command's
    except KeyboardInterrupt:
        print(f"minivgg train: {interrupted_message(trainer, getattr(args, 'argv', None))}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (tr.CheckpointError, ValueError, OSError) as e:
        raise UsageError(str(e)) from e
    h = result.history
    best = max(h, key=lambda e: e["val_acc"])
    print(f"final validation accuracy {h[-1]['val_acc']:.2%} (best {best['val_acc']:.2%} at epoch {best['epoch']}); "
          f"{h[-1]['seconds']:.1f} s of training in all")
    if args.out:
        print(f"wrote {Path(args.out) / tr.CHECKPOINT_NAME} and {Path(args.out) / tr.HISTORY_NAME}")
    return 0


def plural(n: int, noun: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def interrupted_message(trainer: tr.Trainer | None, argv: list[str] | None) -> str:
    """What Ctrl-C during training says: the epoch kept on disk and the exact command that continues it."""
    if trainer is None or trainer.epoch == 0 or trainer.checkpoint_path is None or not trainer.checkpoint_path.exists():
        why = "no --out DIR was given" if trainer is not None and trainer.out is None else "no epoch was complete"
        return f"interrupted; nothing was saved ({why})"
    cmd = ["minivgg", "train", *(argv[1:] if argv and argv[0] == "train" else (argv or []))]
    if "--resume" not in cmd:
        cmd.append("--resume")
    return (f"interrupted; kept {trainer.checkpoint_path} ({plural(trainer.epoch, 'epoch')} complete, the epoch "
            f"under way was not saved). Continue with: {shlex.join(cmd)}")


# ------------------------------------------------------------------ progress
class TrainProgress(TrainCallback):
    """A bar per epoch (steps, running loss and accuracy, img/s) and one printed line per finished epoch."""

    def __init__(self, enabled: bool | None = None, print_line: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled
        self.print_line = print_line if print_line is not None else print
        self.epochs = 0
        self._bar = None

    def on_fit_start(self, epochs_done: int, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_start(self, epoch: int, n_batches: int) -> None:
        self._bar = bar(n_batches, f"epoch {epoch}/{self.epochs}", self.enabled, unit="step")

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, entry: dict) -> None:
        self.close()
        self.print_line(format_epoch(entry, self.epochs))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LocProgress(TrainProgress):
    """TrainProgress for --task localize: the bar shows the running box loss and IoU > 0.5 rate."""

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", correct=f"{acc:.3f}", refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, entry: dict) -> None:
        self.close()
        self.print_line(format_loc_epoch(entry, self.epochs))


def format_epoch(entry: dict, epochs: int) -> str:
    """One summary line per epoch (what ``minivgg train`` prints)."""
    return (f"epoch {entry['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {entry['train_loss']:.4f} acc {entry['train_acc']:.3f}  |  "
            f"val loss {entry['val_loss']:.4f} acc {entry['val_acc']:.3f}  |  "
            f"lr {entry['lr']:.2g}  {entry['images_per_s']:,.0f} img/s  {entry['seconds']:.1f} s")
