"""What one benchmark process times: a workload on one library, described by a JSON-able request.

A *request* names everything that decides the speed of a run, so that two
processes given the same request do the same work::

    {"lib": "minivgg" | "torch",
     "workload": "forward" | "train_step" | "epoch" | "layers",
     "config": VGGConfig.to_dict(),      # the network (VGG-16, the shapes recipe's small net, ...)
     "batch": 1, "threads": 2,
     "repeats": 5, "warmup": 2,
     "optimizer": null | {"name": "sgd" | "adam", "lr": ..., "momentum": ..., "weight_decay": ...},
     "epoch_images": 1024,               # "epoch" only: images per timed epoch
     "algo": "auto",                     # minivgg's conv algorithm ("auto", "tune", "im2col", ...)
     "seed": 0}

* ``forward`` -- one inference forward of ``batch`` images (no caches kept;
  torch under ``inference_mode``);
* ``train_step`` -- training-mode forward, softmax cross-entropy, backward,
  and (if ``optimizer``) one optimiser update of every parameter;
* ``epoch`` -- ``epoch_images`` images in shuffled mini-batches of ``batch``,
  one ``train_step`` each, timed as a whole; reported as images per second;
* ``layers`` -- each layer's inference forward on the previous layer's real
  output (per-layer times, same shapes in both libraries).

Both libraries run the *same* network with the *same* weights (the torch
twin is built from the minivgg model, :mod:`minivgg.bench.torch_twin`) on the
same random inputs. Data content does not change the cost of these kernels,
so the inputs are standard-normal arrays, not a dataset.

:func:`run_request` executes a request in the calling process and returns
the timed runs; :mod:`minivgg.bench.isolated` runs requests in fresh
processes and compares them. The optimiser is passed in as a factory because
it belongs to :mod:`minivgg.training`, a sibling tool this package does not
import (the command-line worker wires the two together).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np

from ..configs import VGGConfig
from ..kernels import _parallel as threads
from .timing import measure

LIBS = ("minivgg", "torch")
WORKLOADS = ("forward", "train_step", "epoch", "layers")

#: ``optimizer_factory(params: dict[str, ndarray], spec: dict) -> step(grads)`` for minivgg.
OptimizerFactory = Callable[[dict, Mapping[str, Any]], Callable[[dict], None]]


def check_request(req: Mapping[str, Any]) -> dict:
    """Validate a request (see the module docstring); return it as a plain dict with defaults filled in.

    Raises
    ------
    ValueError
        An unknown library or workload, a count < 1, or a config that is not a VGGConfig dict.
    """
    req = dict(req)
    if req.get("lib") not in LIBS:
        raise ValueError(f"benchmark request: lib must be one of {LIBS}, got {req.get('lib')!r}")
    if req.get("workload") not in WORKLOADS:
        raise ValueError(f"benchmark request: workload must be one of {WORKLOADS}, got {req.get('workload')!r}")
    req.setdefault("repeats", 5)
    req.setdefault("warmup", 2)
    req.setdefault("threads", threads.available_cores())
    req.setdefault("optimizer", None)
    req.setdefault("epoch_images", 1024)
    req.setdefault("seed", 0)
    req.setdefault("algo", "auto")
    for key, low in (("batch", 1), ("threads", 1), ("repeats", 1), ("warmup", 0), ("epoch_images", 1)):
        value = req.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"benchmark request: {key} must be an int >= {low}, got {value!r}")
    VGGConfig.from_dict(req["config"])  # raises a clear error on a bad config
    return req


def _inputs(config: VGGConfig, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, config.in_channels, config.input_size, config.input_size), dtype=np.float32)
    y = rng.integers(0, config.num_classes, batch)
    return x, y


def _minivgg_steps(req: dict, optimizer_factory: OptimizerFactory | None) -> dict[str, Callable[[], object]]:
    from ..vgg import VGG

    config = VGGConfig.from_dict(req["config"])
    model = VGG(config, dtype=np.float32, seed=req["seed"], algo=req["algo"])
    x, y = _inputs(config, req["batch"], req["seed"])
    update = None
    if req["optimizer"] is not None:
        if optimizer_factory is None:
            raise ValueError("benchmark request: an optimizer was asked for but no optimizer_factory was given")
        update = optimizer_factory(model.params, req["optimizer"])

    def forward():
        model.forward(x)

    def train_step(xb=x, yb=y):
        _, grads = model.loss(xb, yb)
        if update is not None:
            update(grads)

    steps = {"forward": forward, "train_step": train_step}
    steps.update(_epoch_and_layers(req, config, x, train_step, lambda: model.layers.layers,
                                   lambda layer, h: layer.forward(h, train=False)))
    return steps


def _torch_steps(req: dict) -> dict[str, Callable[[], object]]:
    import torch

    from ..vgg import VGG
    from .torch_twin import torch_model

    config = VGGConfig.from_dict(req["config"])
    net = torch_model(VGG(config, dtype=np.float32, seed=req["seed"]))
    x, y = _inputs(config, req["batch"], req["seed"])
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = None
    spec = req["optimizer"]
    if spec is not None:
        # weight decay on weights only, as minivgg's optimisers do by default
        decay = [p for n, p in net.named_parameters() if n.endswith("weight")]
        rest = [p for n, p in net.named_parameters() if not n.endswith("weight")]
        groups = [{"params": decay, "weight_decay": spec.get("weight_decay", 0.0)},
                  {"params": rest, "weight_decay": 0.0}]
        if spec["name"] == "sgd":
            opt = torch.optim.SGD(groups, lr=spec["lr"], momentum=spec.get("momentum", 0.0))
        else:
            opt = torch.optim.Adam(groups, lr=spec["lr"])

    def forward():
        with torch.inference_mode():
            net.eval()(tx)

    def train_step(xb=tx, yb=ty):
        net.train()
        net.zero_grad(set_to_none=True)
        loss_fn(net(xb), yb).backward()
        if opt is not None:
            opt.step()

    def layer_forward(layer, h):
        with torch.inference_mode():
            return layer(h)

    steps = {"forward": forward, "train_step": train_step}
    steps.update(_epoch_and_layers(req, config, x, lambda xb, yb: train_step(torch.from_numpy(xb), torch.from_numpy(yb)),
                                   lambda: list(net.eval()), layer_forward, to_lib=torch.from_numpy))
    return steps


def _epoch_and_layers(req, config, x, train_step, layers, layer_forward, to_lib=lambda a: a):
    """The ``epoch`` and ``layers`` steps, the same code for both libraries.

    The epoch's images are drawn only for an ``epoch`` request: 1,024 VGG-16
    inputs are 616 MB, which no other workload should allocate.
    """
    steps = {}
    if req["workload"] == "epoch":
        n_img, batch = req["epoch_images"], req["batch"]
        rng = np.random.default_rng(req["seed"] + 1)
        data_x, data_y = _inputs(config, n_img, req["seed"] + 1)

        def epoch():
            order = rng.permutation(n_img)
            for lo in range(0, n_img - batch + 1, batch):  # full batches only: same work for both libraries
                idx = order[lo:lo + batch]
                train_step(data_x[idx], data_y[idx])

        steps["epoch"] = epoch

    def per_layer():
        """Not a timed step: times each layer itself and returns ``{name: seconds}``."""
        h = to_lib(x)
        out = {}
        for spec, layer in zip(config.specs(), layers()):
            t = measure(lambda: layer_forward(layer, h), req["repeats"], req["warmup"])
            out[spec.name] = t.runs
            h = layer_forward(layer, h)
        return out

    steps["layers"] = per_layer
    return steps


def run_request(req: Mapping[str, Any], optimizer_factory: OptimizerFactory | None = None) -> dict:
    """Execute one request in this process; return ``{"request", "runs_s"}`` (or ``"layers"``).

    Sets every thread knob (minivgg's kernels, BLAS, torch) to
    ``req["threads"]`` for the duration and restores them. ``warmup`` runs
    are discarded (they load Numba's cache and page-fault fresh buffers).
    For ``epoch`` each run is one whole epoch and ``images_per_s`` is added.
    """
    req = check_request(req)
    n = min(req["threads"], threads.available_cores())
    with threads.limit_threads(n):
        if req["lib"] == "torch":
            import torch

            old = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                steps = _torch_steps(req)
                return _run(req, steps)
            finally:
                torch.set_num_threads(old)
        return _run(req, _minivgg_steps(req, optimizer_factory))


def _run(req: dict, steps: dict) -> dict:
    workload = req["workload"]
    res: dict[str, Any] = {"request": req}
    t0 = time.perf_counter()
    if workload == "layers":
        res["layers"] = steps["layers"]()
    else:
        timing = measure(steps[workload], req["repeats"], req["warmup"])
        res["runs_s"] = timing.runs
        if workload == "epoch":
            full = (req["epoch_images"] // req["batch"]) * req["batch"]
            res["images_per_s"] = full / timing.median
    res["wall_s"] = time.perf_counter() - t0
    return res
