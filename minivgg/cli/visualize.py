"""``minivgg visualize KIND --out PNG``: saliency, guided backprop, Grad-CAM, class models, effective receptive
fields, features, filters, maximally activating patches, occlusion.

The model is a training checkpoint (``--checkpoint``), published weights
(``--weights``) or, with neither, a randomly initialised ``--arch`` (the
untrained picture to compare against). The input is ``--image`` (read with
torchvision's preprocessing) or a seeded N(0, 1) image. All math lives in
:mod:`minivgg.visualize`; this module parses, loads and calls.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import UsageError
from ._common import arch_name, non_negative_int, output_path, positive_float, positive_int, seed, width_multiplier
from .convert import FILE_ERRORS

KINDS = ("saliency", "guided", "gradcam", "class-model", "erf", "features", "filters", "patches", "occlusion")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("visualize", help="gradient pictures of a VGG: saliency, class models, ERF, features...",
                       description="Draw one picture of a VGG's insides as an image file (needs matplotlib).")
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=" | ".join(KINDS))
    p.add_argument("--out", required=True, help="output picture (.png, .pdf, .svg...)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a checkpoint.npz written by minivgg train")
    src.add_argument("--weights", help="published weights (.pth, .h5, minivgg .npz)")
    p.add_argument("--arch", type=arch_name, default=None, help="architecture of a random model (default vgg16)")
    p.add_argument("--input-size", type=positive_int, default=224, help="random model: input side (default 224)")
    p.add_argument("--width", type=width_multiplier, default=1.0, help="random model: channel multiplier")
    p.add_argument("--num-classes", type=positive_int, default=1000, help="random model: classes (default 1000)")
    p.add_argument("--fc-width", type=positive_int, default=4096, help="random model: fc6/fc7 width")
    p.add_argument("--seed", type=seed, default=0, help="weights of a random model and the random input image")
    p.add_argument("--image", help="input image file (Pillow, torchvision preprocessing); default: with "
                                   "--checkpoint a validation image of its dataset, else a seeded N(0,1) image")
    p.add_argument("--index", type=non_negative_int, default=0,
                   help="with --checkpoint: which validation image of its dataset (default 0)")
    p.add_argument("--layer", default=None, help="layer for erf (default pool5), features (default conv1_1), "
                                                 "gradcam (default the last conv-part ReLU), patches (default relu3_1)")
    p.add_argument("--channel", type=non_negative_int, default=0, help="patches: the unit's channel (default 0)")
    p.add_argument("--top", type=positive_int, default=9, help="patches: how many images (default 9)")
    p.add_argument("--dataset-size", type=positive_int, default=None,
                   help="patches: images scanned (default: with --checkpoint its whole validation set, else 256 "
                        "seeded N(0,1) images)")
    p.add_argument("--all-classes", action="store_true",
                   help="class-model: one image per class, as a grid (one batched ascent)")
    p.add_argument("--class", dest="class_index", type=int, default=None,
                   help="class index (default: the predicted class; class-model: 0)")
    p.add_argument("--steps", type=positive_int, default=100, help="class-model: ascent steps (default 100)")
    p.add_argument("--lr", type=positive_float, default=1.0, help="class-model: step size (default 1)")
    p.add_argument("--l2", type=float, default=1e-3, help="class-model: lambda of the L2 penalty (default 1e-3)")
    p.add_argument("--patch", type=positive_int, default=None, help="occlusion: patch side (default S/8)")
    p.set_defaults(func=run)


def _model(args: argparse.Namespace):
    """``(model, checkpoint or None)``; unreadable files -> UsageError."""
    from ..vgg import VGG

    try:
        if args.checkpoint:
            from ..training import model_from_checkpoint
            from .train import refuse_localization_checkpoint
            model, ckpt = model_from_checkpoint(args.checkpoint)
            refuse_localization_checkpoint(ckpt, args.checkpoint)
            return model, ckpt
        if args.weights:
            from ..io.weights import load_model
            return load_model(args.weights, args.arch), None
        return VGG(args.arch or "vgg16", num_classes=args.num_classes, input_size=args.input_size,
                   width=args.width, fc_width=args.fc_width, seed=args.seed), None
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None


def _image(args: argparse.Namespace, model, ckpt) -> np.ndarray:
    if args.image is None and ckpt is not None and "data" in ckpt.meta:
        from ..training import dataset_for_checkpoint
        try:
            data = dataset_for_checkpoint(ckpt.meta)
        except FILE_ERRORS as exc:
            raise UsageError(f"{args.checkpoint}: cannot reload its dataset: {exc}") from None
        if args.index >= len(data.x_val):
            raise UsageError(f"--index: {data.name} has {len(data.x_val)} validation images, got {args.index}")
        return data.preprocess(data.x_val[args.index:args.index + 1]).astype(model.dtype)
    if args.image is None:
        shape = (1, model.in_channels, model.input_size, model.input_size)
        return np.random.default_rng(args.seed).standard_normal(shape).astype(model.dtype)
    from ..io.images import load_image
    try:
        x = load_image(args.image, size=model.input_size)
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None
    if x.shape[1] != model.in_channels:
        raise UsageError(f"{args.image}: the model takes {model.in_channels}-channel images, the file gives {x.shape[1]}")
    return x.astype(model.dtype)


def _dataset(args: argparse.Namespace, model, ckpt) -> tuple[np.ndarray, np.ndarray, list | None]:
    """``(model inputs, images to display, class names or None)`` for ``patches``."""
    if ckpt is not None and "data" in ckpt.meta:
        from ..training import dataset_for_checkpoint
        try:
            data = dataset_for_checkpoint(ckpt.meta)
        except FILE_ERRORS as exc:
            raise UsageError(f"{args.checkpoint}: cannot reload its dataset: {exc}") from None
        raw = data.x_val[:args.dataset_size]
        return data.preprocess(raw).astype(model.dtype), raw, data.class_names
    n = args.dataset_size or 256
    shape = (n, model.in_channels, model.input_size, model.input_size)
    x = np.random.default_rng(args.seed).standard_normal(shape).astype(model.dtype)
    return x, x, None


def _class_names(ckpt) -> list | None:
    names = ckpt.meta.get("data", {}).get("classes") if ckpt is not None else None
    if names is None and ckpt is not None and ckpt.meta.get("data", {}).get("name") == "shapes":
        from ..training.data.shapes import class_names
        names = class_names
    return list(names) if names else None


def _layer(model, name: str | None, default: str) -> str:
    name = name or default
    if name not in model.layers.names():
        raise UsageError(f"--layer: no layer {name!r}; layers are {', '.join(model.layers.names())}")
    return name


def run(args: argparse.Namespace) -> int:
    from ..io.files import plot_suffixes

    out = output_path(args.out, "--out", plot_suffixes())  # before any work
    if not np.isfinite(args.l2) or args.l2 < 0:
        raise UsageError(f"--l2: expected a number >= 0, got {args.l2}")
    from .. import visualize as vis
    from ..visualize import plots

    model, ckpt = _model(args)
    if args.class_index is not None and not 0 <= args.class_index < model.num_classes:
        raise UsageError(f"--class: expected 0..{model.num_classes - 1}, got {args.class_index}")
    x = _image(args, model, ckpt) if args.kind != "patches" else None
    c = args.class_index
    if c is None and args.kind in ("saliency", "occlusion", "guided", "gradcam"):
        c = int(model.layers.forward(x)[0].argmax())
    try:
        if args.kind == "saliency":
            plots.plot_pair(x[0], vis.saliency(model, x, c)[0], out, f"saliency, class {c}")
        elif args.kind == "guided":
            g = vis.guided_backprop(model, x, c)[0]
            plots.plot_row([(x[0], "input", None), (g, f"guided backprop, class {c}", None),
                            (vis.saliency(model, x, c)[0], "saliency (plain gradient)", "hot")], out)
        elif args.kind == "gradcam":
            from ..visualize.gradcam import default_layer
            layer = _layer(model, args.layer, default_layer(model))
            cam = vis.grad_cam(model, x, c, layer=layer)
            guided = vis.guided_backprop(model, x, c)[0] * cam.heatmap[0]  # Guided Grad-CAM (Selvaraju §3.1)
            h, w = cam.cam.shape[1:]
            plots.plot_row([(x[0], "input", None), (cam.heatmap[0], f"Grad-CAM at {layer} ({h}x{w}), class {c}", "jet"),
                            (guided, "guided Grad-CAM", None)], out)
        elif args.kind == "patches":
            from ..visualize.gradcam import default_layer
            layer = _layer(model, args.layer, "relu3_1" if "relu3_1" in model.layers.names() else default_layer(model))
            xs, shown, _ = _dataset(args, model, ckpt)
            if args.top > len(xs):
                raise UsageError(f"--top: the dataset has {len(xs)} images, got {args.top}")
            top = vis.top_patches(model, xs, layer, args.channel, k=args.top)
            crops = [shown[i, :, r0:r1 + 1, c0:c1 + 1] for i, (r0, r1, c0, c1) in zip(top.index, top.boxes)]
            r0, r1 = vis.receptive_box(model.specs, layer, 0, 0)[:2]
            plots.plot_images(crops, [f"#{i}: {v:.3g}" for i, v in zip(top.index, top.activation)], out,
                              f"{layer} channel {args.channel}: top {args.top} of {len(xs)} images "
                              f"(field {r1 - r0 + 1} px)")
            print(f"{layer} channel {args.channel}: top activation {top.activation[0]:.4g} (image {top.index[0]}), "
                  f"{args.top}th {top.activation[-1]:.4g}", file=sys.stderr)
        elif args.kind == "occlusion":
            patch = args.patch or max(1, model.input_size // 8)
            drop = vis.occlusion_map(model, x, c, patch=patch, stride=max(1, patch // 2))
            plots.plot_pair(x[0], drop, out, f"score drop, class {c}, patch {patch}", cmap="coolwarm")
        elif args.kind == "erf":
            erf = vis.effective_receptive_field(model, x, _layer(model, args.layer, "pool5"))
            r0, r1 = erf.unclipped[:2]
            plots.plot_pair(x[0], erf.heatmap, out, f"ERF of {args.layer or 'pool5'}, RF {r1 - r0 + 1} px", box=erf.box)
            print(f"theoretical field {r1 - r0 + 1} px; {erf.level:.0%} of |dy/dx| lies on "
                  f"{erf.area_for_mass:.1%} of it", file=sys.stderr)
        elif args.kind == "features":
            layer = _layer(model, args.layer, "conv1_1")
            plots.plot_grid(vis.feature_maps(model, x, layer)[0], out, f"feature maps of {layer}")
        elif args.kind == "filters":
            f = vis.first_layer_filters(model)
            plots.plot_grid(f if f.shape[-1] == 3 else f[..., 0], out, "conv1_1 filters", cmap="gray")
        elif args.all_classes:
            res = vis.class_models(model, steps=args.steps, lr=args.lr, l2=args.l2, seed=args.seed)
            names = _class_names(ckpt) or [str(k) for k in range(model.num_classes)]
            plots.plot_images(list(res.images), [f"{k}: {names[k]}" for k in res.classes], out,
                              f"class models ({args.steps} steps, lr {args.lr:g}, L2 {args.l2:g})")
            rose = int((res.scores[-1] > res.scores[0]).sum())
            print(f"{len(res.classes)} classes: score rose for {rose}; mean {res.scores[0].mean():.4g} -> "
                  f"{res.scores[-1].mean():.4g} in {args.steps} steps", file=sys.stderr)
        else:
            c = c or 0
            res = vis.class_model(model, c, steps=args.steps, lr=args.lr, l2=args.l2)
            plots.plot_class_model(res.image[0], res.scores, out, f"class model {c}")
            print(f"class {c}: score {res.scores[0]:.4g} -> {res.scores[-1]:.4g} in {args.steps} steps",
                  file=sys.stderr)
    except (ImportError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out}", file=sys.stderr)
    return 0
