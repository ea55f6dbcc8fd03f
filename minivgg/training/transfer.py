"""Transfer learning with FC7 features: a frozen VGG plus a softmax classifier.

cs231n lecture 9: "FC7 features generalize well to other tasks". The recipe
(Donahue et al., DeCAF, 2014; Razavian et al., 2014; the VGG paper's own §4
appendix on VOC/Caltech) is: run a network trained on one task, keep the
activations of a late layer -- FC7 after its ReLU, ``relu7`` -- as a feature
vector, and fit a linear softmax classifier on those features for the new
task. The network stays frozen.

* :func:`extract_features` -- activations of any named layer, flattened.
* :func:`fit_softmax` -- multinomial logistic regression on fixed features
  (standardised, L2-regularised, full-batch Adam in float64).
* :func:`transfer_experiment` -- the demonstration on the embedded shapes:
  train a VGG on classes 0-4 only, then compare, on the five held-out classes
  5-9, softmax on its FC7 features against softmax on raw pixels (and on the
  FC7 features of the same network untrained, which separates "a trained
  network" from "any nonlinear random projection").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .data import SHAPE_CLASSES, batch_slices
from .evaluate import Transform
from ..ops import softmax, softmax_cross_entropy
from .optim import Adam
from ..vgg import FEATURE_LAYER, VGG

__all__ = ["FEATURE_LAYER", "extract_features", "SoftmaxClassifier", "fit_softmax", "TransferResult",
           "transfer_experiment", "format_transfer_result"]


def extract_features(model: VGG, x: np.ndarray, layer: str = FEATURE_LAYER, *, transform: Transform | None = None,
                     batch_size: int = 250, flatten: bool = True) -> np.ndarray:
    """Activations of ``layer`` for every image, in inference mode.

    Parameters
    ----------
    model : VGG
    x : ndarray, shape (N, C, H, W)
        Raw images if ``transform`` is given (applied per batch), else model inputs.
    layer : str
        Any layer name: ``relu7`` (FC7 features, the default), ``fc6``,
        ``pool5``, ``conv4_2``, ...
    flatten : bool
        Return ``(N, D)`` with ``D`` the product of the layer's per-image shape
        (channel-major, as fc6 sees pool5); otherwise ``(N, *out_shape)``.

    Returns
    -------
    ndarray of the model's dtype: ``(N, fc_width)`` for ``relu7``.

    Cost: a forward pass up to ``layer`` per image.
    """
    model.layers[layer]  # KeyError listing the valid names, before any work
    if not isinstance(x, np.ndarray) or x.ndim != 4 or len(x) == 0:
        raise ValueError(f"extract_features: expected images (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    parts = []
    for s in batch_slices(len(x), batch_size, "extract_features"):
        xb = x[s]
        xb = transform(xb) if transform is not None else xb
        parts.append(model.features(xb, layer=layer, batch_size=batch_size))
    feats = np.concatenate(parts)
    return feats.reshape(len(feats), -1) if flatten else feats


@dataclass
class SoftmaxClassifier:
    """A linear softmax classifier on standardised features: ``p = softmax(((f - mu) / sigma) W + b)``."""

    w: np.ndarray  # (D, K) float64
    b: np.ndarray  # (K,) float64
    mu: np.ndarray  # (D,) feature means on the training set
    sigma: np.ndarray  # (D,) feature standard deviations (1 where a feature is constant)
    losses: list = field(default_factory=list)  # training loss per iteration

    def _logits(self, features: np.ndarray) -> np.ndarray:
        f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        if f.shape[1] != len(self.mu):
            raise ValueError(f"SoftmaxClassifier: trained on {len(self.mu)} features, got {f.shape[1]}")
        return ((f - self.mu) / self.sigma) @ self.w + self.b  # (N, K)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)``."""
        return softmax(self._logits(features))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted labels ``(N,)``."""
        return self._logits(features).argmax(axis=1)

    def score(self, features: np.ndarray, y: np.ndarray) -> float:
        """Accuracy in [0, 1]."""
        return float(np.mean(self.predict(features) == np.asarray(y)))


def fit_softmax(features: np.ndarray, y: np.ndarray, num_classes: int | None = None, *, reg: float = 1e-3,
                iters: int = 300, lr: float = 0.05, tol: float = 1e-6) -> SoftmaxClassifier:
    """Fit multinomial logistic regression on fixed features.

    Minimises, over ``W`` (D, K) and ``b`` (K,),

    .. math::

        L = \\frac{1}{N} \\sum_n -\\log \\mathrm{softmax}(z_n W + b)_{y_n}
            + \\frac{\\lambda}{2} \\lVert W \\rVert^2,
        \\qquad z_n = (f_n - \\mu) / \\sigma

    (features standardised with the training mean and standard deviation, so
    one ``lr`` and ``reg`` suit pixels and FC7 alike) by full-batch Adam from
    ``W = 0``: deterministic, no seed. Stops early when the loss improves by
    less than ``tol`` (relative) between iterations.

    Parameters
    ----------
    features : ndarray, shape (N, ...)
        Flattened to (N, D).
    y : int ndarray, shape (N,)
    num_classes : int, optional
        Default ``y.max() + 1``.
    reg : float
        L2 strength ``lambda`` >= 0 on ``W``.
    iters, lr, tol
        Adam iterations (>= 1), its learning rate (> 0), the stopping tolerance.

    Cost: ``2 N D K`` MACs per iteration.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim < 2 or len(f) == 0:
        raise ValueError(f"fit_softmax: features must be (N, D) with N >= 1, got {f.shape}")
    f = f.reshape(len(f), -1)
    y = np.asarray(y)
    if y.shape != (len(f),) or y.dtype.kind not in "iu":
        raise ValueError(f"fit_softmax: y must be {len(f)} integer labels, got {y.dtype} {y.shape}")
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"fit_softmax: labels must be in 0..{k - 1}, got {y.min()}..{y.max()}")
    if iters < 1 or reg < 0:
        raise ValueError(f"fit_softmax: need iters >= 1 and reg >= 0, got iters={iters}, reg={reg}")
    mu = f.mean(axis=0)
    sigma = f.std(axis=0)
    sigma[sigma < 1e-8] = 1.0  # dead ReLU units / constant pixels: leave them at 0 after centring
    z = (f - mu) / sigma  # (N, D)
    params = {"w": np.zeros((z.shape[1], k)), "b": np.zeros(k)}
    opt = Adam(params, lr=lr, weight_decay=reg)  # L2 on "w" only: g += reg * w
    losses: list[float] = []
    for _ in range(iters):
        loss, dlogits = softmax_cross_entropy(z @ params["w"] + params["b"], y)  # dlogits (N, K), mean over N
        loss += 0.5 * reg * float(np.sum(params["w"] ** 2))
        losses.append(float(loss))
        if len(losses) > 1 and losses[-2] - losses[-1] < tol * abs(losses[-2]) and losses[-1] <= losses[-2]:
            break
        opt.step({"w": z.T @ dlogits, "b": dlogits.sum(axis=0)})
    return SoftmaxClassifier(params["w"], params["b"], mu, sigma, losses)


@dataclass
class TransferResult:
    """Accuracies of the held-out-classes experiment (fractions in [0, 1])."""

    source_classes: list  # what the network was trained on
    target_classes: list  # the new task
    layer: str  # feature layer
    source_val_acc: float  # the network on its own (source) validation set
    feature_acc: float  # softmax on the trained network's features, target test set
    pixel_acc: float  # softmax on raw (mean-subtracted) pixels, target test set
    random_feature_acc: float  # softmax on the same network's features before training
    n_target_train: int
    n_target_test: int
    history: list  # the source training history
    seconds: float


def transfer_experiment(seed: int = 0, *, source: Sequence[str] = SHAPE_CLASSES[:5],
                        target: Sequence[str] = SHAPE_CLASSES[5:], layer: str = FEATURE_LAYER,
                        n_source_train: int = 5_000, n_source_val: int = 1_000, n_target_train: int = 1_000,
                        n_target_test: int = 1_000, epochs: int = 6, arch=None, config=None,
                        callback=None) -> TransferResult:
    """Train on ``source`` shape classes, then classify the held-out ``target`` classes with frozen features.

    1. A VGG (``arch``, a :class:`~minivgg.configs.VGGConfig`; default:
       ``minivgg train``'s recipe network) is trained on the source classes
       only (:func:`minivgg.training.trainer.train`, reporting to ``callback``).
    2. Target-class images (a different data seed, never seen in training)
       go through the frozen network; ``layer`` activations are the features.
    3. :func:`fit_softmax` on ``n_target_train`` target images; accuracy on
       ``n_target_test`` others. The same classifier is fitted on raw pixels
       and on the features of the untrained network (the same seed's
       initial weights) as baselines.
    """
    from . import config as cfg, datasets, trainer  # trainer imports this package's evaluate: import when used

    start = time.perf_counter()
    src = datasets.load_dataset("shapes", n_train=n_source_train, n_val=n_source_val, data_seed=seed, classes=source)
    config = config or cfg.TrainConfig(epochs=epochs, seed=seed)
    arch = arch or cfg.recipe_config(src)
    untrained = VGG(arch, dtype=src.preprocess.dtype, seed=config.seed)
    result = trainer.train(src, config, arch=arch, callback=callback)
    model = result.model
    tgt = datasets.load_dataset("shapes", n_train=n_target_train, n_val=n_target_test, data_seed=seed + 1000, classes=target)
    pre = src.preprocess  # the network sees every image as it saw its training data
    x_tr, y_tr, x_te, y_te = tgt.x_train, tgt.y_train, tgt.x_val, tgt.y_val

    def acc_on(fn) -> float:
        clf = fit_softmax(fn(x_tr), y_tr, len(target))
        return clf.score(fn(x_te), y_te)

    feature_acc = acc_on(lambda x: extract_features(model, x, layer, transform=pre))
    random_acc = acc_on(lambda x: extract_features(untrained, x, layer, transform=pre))
    pixel_acc = acc_on(lambda x: pre(x).reshape(len(x), -1))
    return TransferResult(list(source), list(target), layer, result.history[-1]["val_acc"], feature_acc, pixel_acc,
                          random_acc, len(x_tr), len(x_te), result.history, time.perf_counter() - start)


def format_transfer_result(r: TransferResult) -> str:
    """The experiment's report, one line per classifier."""
    rows = [(f"softmax on {r.layer} features of the trained network", r.feature_acc),
            (f"softmax on {r.layer} features of the untrained network", r.random_feature_acc),
            ("softmax on raw pixels", r.pixel_acc)]
    width = max(len(label) for label, _ in rows)
    return "\n".join([
        f"network trained on {', '.join(r.source_classes)}: {r.source_val_acc:.1%} validation accuracy",
        f"held-out task: {', '.join(r.target_classes)} ({r.n_target_train} training, {r.n_target_test} test images)",
        *(f"  {label:<{width}}  {acc:.1%}" for label, acc in rows),
        f"  (chance {1 / len(r.target_classes):.1%}; {r.seconds:.0f} s in all)",
    ])
