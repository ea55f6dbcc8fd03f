"""The one training recipe every experiment shares, and the measurements they all take.

Each experiment compares networks that differ in ONE thing (depth, LRN, the
seed); everything else is this recipe: ``minivgg train``'s settings
(:class:`~minivgg.training.config.TrainConfig`: Adam 1e-3, batch 32, weight
decay 5e-4, flips, lr x0.2 after ``lr_step`` epochs) and its network scale
(:data:`~minivgg.training.config.RECIPE_MODEL`: the paper's conv channels at
1/8 width, fc6/fc7 128 wide, no dropout) on the embedded shapes (32x32, 10
classes), with fewer images than ``minivgg train`` (6,000 per epoch instead
of 10,000) so that an experiment of several networks fits in minutes.
:data:`FULL` is one to three minutes per config-A network on two shared cores,
:data:`QUICK` a few seconds (a smoke run: accuracies stay far below the full run's).

The data seed is the experiment's ``seed`` for every network of one run, so
the networks see the same images; the training seed (weights, shuffling,
flips) varies where the experiment asks for several runs.

Measurements (all per image, from the config or from the built model):

* parameters and forward MACs from :class:`~minivgg.configs.LayerSpec` counts;
* :func:`kept_bytes_per_image`: what a training-mode forward really keeps for
  backward, measured on the model's caches (the input batch excluded);
* seconds per epoch: the median over the epochs of the trainer's history
  (training plus validation wall time; noisy on a shared machine), after
  :func:`warm_up` has compiled the kernels;
* :func:`step_seconds`: one training step's forward and backward, the
  minimum of several repeats (the fairer cost comparison on a busy machine).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ...configs import VGGConfig
from ...vgg import VGG
from ..config import RECIPE_MODEL, TrainConfig, recipe_config
from ..datasets import Dataset, load_dataset
from ..trainer import TrainCallback, train
from .base import Progress

__all__ = ["Recipe", "FULL", "QUICK", "pick", "load_data", "arch_config", "train_config", "Trained", "train_net", "train_archs", "run_stats",
           "kept_bytes_per_image", "forward_macs", "mean_std", "check_seeds", "warm_up", "step_seconds",
           "ProgressCallback"]


@dataclass(frozen=True)
class Recipe:
    """The shared settings of an experiment's training runs (one line per field)."""

    n_train: int = 6_000  # generated training images
    n_val: int = 1_000  # validation images (and as many test images)
    epochs: int = 6  # epochs per network
    lr_step: int = 4  # epochs before the lr is multiplied by 0.2
    width: float = float(RECIPE_MODEL["width"])  # multiplier on the paper's conv channels
    fc_width: int = int(RECIPE_MODEL["fc_width"])  # fc6/fc7 width
    batch_size: int = 32
    lr: float = 1e-3

    def to_json(self) -> dict:
        return asdict(self)


#: One to three minutes per A network on two busy cores (36,000 training images): the README's numbers.
FULL = Recipe()
#: The tour's scale (1/16 width, fc 64, 9,000 training images) for a few seconds per network: checks
#: that everything runs, not what it finds (accuracies stay far below the full run's).
QUICK = Recipe(n_train=3_000, n_val=500, epochs=3, lr_step=3, width=0.0625, fc_width=64)


def pick(quick: bool, overrides: dict[str, Any]) -> Recipe:
    """:data:`QUICK` or :data:`FULL` with the recipe fields among ``overrides`` replaced (None = keep)."""
    base = QUICK if quick else FULL
    fields = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(fields) - set(asdict(base)))
    if unknown:
        raise TypeError(f"Recipe has no field(s) {unknown}; expected some of {list(asdict(base))}")
    return replace(base, **fields)


def load_data(recipe: Recipe, data_seed: int, classes: Sequence[str] | None = None) -> Dataset:
    """The embedded shapes at the recipe's size (train, val and test of ``n_train``/``n_val``/``n_val`` images)."""
    return load_dataset("shapes", n_train=recipe.n_train, n_val=recipe.n_val, data_seed=data_seed, classes=classes)


def arch_config(arch: str, data: Dataset, recipe: Recipe) -> VGGConfig:
    """``arch`` (``vgg11``, ``vgg11-lrn``, ...) at the recipe's widths, fitted to ``data``, no dropout."""
    return recipe_config(data, arch=arch, width=recipe.width, fc_width=recipe.fc_width)


def train_config(recipe: Recipe, seed: int) -> TrainConfig:
    """``minivgg train``'s settings with the recipe's epochs, batch, lr and step (seed = training seed)."""
    return TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                       lr_step=min(recipe.lr_step, recipe.epochs), seed=seed)


class ProgressCallback(TrainCallback):
    """Turns the trainer's epoch ends into ``progress("label: epoch e/E, val acc ...")`` lines."""

    def __init__(self, progress: Progress | None, label: str) -> None:
        self.progress, self.label, self.epochs = progress, label, 0

    def on_fit_start(self, epochs_done: int, epochs: int) -> None:
        self.epochs = epochs
        if self.progress is not None:
            self.progress(f"{self.label}: training {epochs} epochs")

    def on_epoch_end(self, entry: dict) -> None:
        if self.progress is not None:
            self.progress(f"{self.label}: epoch {entry['epoch']}/{self.epochs}, val acc {entry['val_acc']:.3f}, "
                          f"{entry['seconds']:.1f} s")


@dataclass
class Trained:
    """One network trained with the recipe."""

    arch: str
    seed: int
    model: VGG
    history: list  # the trainer's per-epoch entries
    seconds_per_epoch: float  # median over epochs of training + validation wall time

    @property
    def val_acc(self) -> float:
        """Validation accuracy after the last epoch, in [0, 1]."""
        return float(self.history[-1]["val_acc"])


def train_net(arch: str, data: Dataset, recipe: Recipe, seed: int, progress: Progress | None = None,
              label: str | None = None) -> Trained:
    """Train ``arch`` on ``data`` with the recipe and training seed ``seed``."""
    cfg = arch_config(arch, data, recipe)
    result = train(data, train_config(recipe, seed), arch=cfg,
                   callback=ProgressCallback(progress, label or f"{arch} seed {seed}"))
    h = result.history
    cumulative = [0.0] + [float(e["seconds"]) for e in h]
    per_epoch = np.diff(cumulative)  # (epochs,) wall time of each epoch
    return Trained(arch, seed, result.model, h, float(np.median(per_epoch)))


def step_seconds(arch: str, data: Dataset, recipe: Recipe, repeats: int = 5) -> float:
    """Wall time of one training step's forward and backward (a batch of ``recipe.batch_size``), the
    minimum of ``repeats``: the least disturbed by other processes, so configs compare fairly on a busy
    machine. The optimiser update (a few elementwise passes over the parameters) is not included."""
    model = VGG(arch_config(arch, data, recipe), dtype=data.preprocess.dtype, seed=0)
    x = data.preprocess(data.x_train[:recipe.batch_size])
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        logits = model.forward(x, train=True)
        model.backward(np.ones_like(logits) / logits.size)
        times.append(time.perf_counter() - t0)
    return min(times[1:])  # the first call may compile kernels: discarded


def warm_up(archs: Sequence[str], data: Dataset, recipe: Recipe) -> None:
    """One training-mode forward and backward of each arch on a few images, so that Numba's compilation
    (the first call of each kernel, seconds long) is not charged to the first network's first epoch."""
    x = data.preprocess(data.x_train[:recipe.batch_size])  # the training batch's shapes pick the same kernels
    for arch in archs:
        model = VGG(arch_config(arch, data, recipe), dtype=data.preprocess.dtype, seed=0)
        logits = model.forward(x, train=True)
        model.backward(np.ones_like(logits) / logits.size)
        model.forward(x)  # and the inference path validation takes


def forward_macs(cfg: VGGConfig) -> int:
    """Forward multiply-accumulates per image: the sum of :attr:`LayerSpec.macs` over the layers."""
    return sum(s.macs for s in cfg.specs())


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        byte_bounds = np.byte_bounds
    return byte_bounds(a)


def _arrays(obj: Any) -> Iterable[np.ndarray]:
    """Every ndarray inside a cache (NamedTuples and tuples nest)."""
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, tuple):
        for item in obj:
            yield from _arrays(item)


def kept_bytes_per_image(model: VGG, x: np.ndarray) -> float:
    """Bytes a training-mode forward of ``x`` keeps alive for backward, per image (measured, not predicted).

    Runs ``model.forward(x, train=True)``, collects every array in every
    layer's cache, merges their byte ranges (an array kept by two layers, or a
    view such as flatten's, counts once), drops the input batch's range (the
    caller owns it) and the parameters' (conv and dense caches reference their
    weights), divides by ``len(x)`` and clears the caches again.
    """
    layers = model.layers
    try:
        model.forward(x, train=True)
        owned = [_byte_bounds(x)] + [_byte_bounds(p) for p in model.params.values()]  # not activations
        spans = []
        for layer in layers:
            for a in _arrays(layer._cache):  # the layers' own cache slot (what backward will read)
                lo, hi = _byte_bounds(a)
                if hi > lo and not any(lo >= o_lo and hi <= o_hi for o_lo, o_hi in owned):
                    spans.append((lo, hi))
    finally:
        layers.clear_caches()
    total, end = 0, -1
    for lo, hi in sorted(spans):  # union of intervals
        if lo > end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total / len(x)


def train_archs(archs: Sequence[str], data: Dataset, recipe: Recipe, seeds: Sequence[int],
                progress: Progress | None, label: Callable[[str, int], str],
                on_trained: Callable[[str, Trained, np.ndarray], None] | None = None
                ) -> tuple[dict[str, list[dict]], dict[str, float], dict[str, float]]:
    """Train every arch once per seed with the recipe; ``(runs, kept bytes per image, step seconds)`` per arch.

    Seeds are the outer loop, so the configs alternate and a drift of the machine's load hits
    them alike. Kept memory is measured once per arch (it depends on shapes only) on 16
    validation images, which ``on_trained(arch, trained, probe)`` also receives; one training
    step of each arch is timed after all training (:func:`step_seconds`).
    """
    probe = data.preprocess(data.x_val[:16])
    warm_up(archs, data, recipe)
    runs: dict[str, list[dict]] = {a: [] for a in archs}
    kept: dict[str, float] = {}
    for s in seeds:
        for arch in archs:
            t = train_net(arch, data, recipe, s, progress, label(arch, s))
            runs[arch].append({"seed": s, "val_acc": t.val_acc, "seconds_per_epoch": t.seconds_per_epoch,
                               "history": t.history})
            if arch not in kept:
                kept[arch] = kept_bytes_per_image(t.model, probe)
            if on_trained is not None:
                on_trained(arch, t, probe)
    if progress is not None:
        progress("timing one training step of each config")
    step = {arch: step_seconds(arch, data, recipe) for arch in archs}
    return runs, kept, step


def run_stats(runs: Sequence[dict]) -> dict[str, Any]:
    """``{"accs", "mean", "sd", "n", "seconds_per_epoch"}`` of one arch's runs (mean over the runs)."""
    accs = [r["val_acc"] for r in runs]
    m, sd = mean_std(accs)
    return {"accs": accs, "mean": m, "sd": sd, "n": len(accs),
            "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in runs]))}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0.0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def check_seeds(seeds: Any, what: str) -> list[int]:
    """``seeds`` as a list of distinct ints >= 0, at least one; ValueError naming ``what`` otherwise."""
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: seeds must be integers, got {seeds!r}") from None
    if not out or min(out) < 0 or len(set(out)) != len(out) or any(isinstance(s, bool) for s in seeds):
        raise ValueError(f"{what}: expected one or more distinct seeds >= 0, got {seeds!r}")
    return out
