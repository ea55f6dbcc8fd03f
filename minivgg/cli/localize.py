"""``minivgg localize CHECKPOINT IMAGE...``: class and box of each image; and ``train --task localize``'s body.

The checkpoint is one self-contained file written by ``minivgg train --task
localize`` (:mod:`minivgg.training.localization.localizer`): the classifier
names the object, the regressor boxes it (for PCR, the box of the predicted
class). Boxes print as ``(cx, cy, w, h)`` normalised to the image and as
pixel corners ``x0, y0, x1, y1`` of the file as given (images are resized to
the model's input, so the normalised box maps back to any size).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import training as tr
from . import UsageError
from ._common import DistinctPaths, output_path

# ------------------------------------------------------------------ the localize command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("localize", help="class and bounding box of images with a localization checkpoint",
                       description="Classify each image and predict the object's bounding box (paper Appendix A) "
                                   "with a checkpoint written by minivgg train --task localize. Images are resized "
                                   "to the model's input. Prints, per image, the class, its probability and the box "
                                   "(cx, cy, w, h normalised to the image; x0, y0, x1, y1 in the file's pixels). "
                                   "Needs Pillow (pip install 'minivgg[image]').")
    p.add_argument("checkpoint", help="checkpoint.npz of minivgg train --task localize")
    p.add_argument("image", nargs="+", action=DistinctPaths, help="image file(s) (anything Pillow reads)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--draw", metavar="OUT.png",
                   help="write the image(s) with their boxes drawn (several images side by side)")
    p.set_defaults(func=run)


def _load(path: str):
    from ..training.localization import load_localizer

    try:
        return load_localizer(path)
    except (OSError, ValueError) as e:  # CheckpointError is a ValueError
        raise UsageError(str(e)) from None


def _pillow():
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise UsageError("reading and drawing images needs Pillow: pip install 'minivgg[image]'") from None
    return Image, ImageDraw


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io.images import read_rgb
    from ..ops import cxcywh_to_xyxy

    _pillow()  # fail before any work when Pillow is missing
    draw = output_path(args.draw, "--draw", (".png",)) if args.draw else None
    loc, ckpt = _load(args.checkpoint)
    size = loc.classifier.input_size
    images, originals = [], []
    for path in args.image:
        try:
            x, wh = read_rgb(path, size)
        except (OSError, ValueError) as e:
            raise UsageError(str(e)) from None
        if x.shape[0] != loc.classifier.in_channels:
            raise UsageError(f"{path}: the model takes {loc.classifier.in_channels}-channel images, got {x.shape[0]}")
        images.append(x)
        originals.append(wh)
    x = np.stack(images).astype(loc.classifier.dtype)
    pred = loc.predict(x)
    results = []
    for i, path in enumerate(args.image):
        w, h = originals[i]
        box = pred.boxes[i]
        x0, y0, x1, y1 = cxcywh_to_xyxy(box[None])[0] * np.array([w, h, w, h])
        results.append({"image": path, "class": loc.class_names[pred.classes[i]], "class_index": int(pred.classes[i]),
                        "probability": float(pred.probs[i, pred.classes[i]]),
                        "box_cxcywh": [float(v) for v in box], "box_pixels_xyxy": [float(v) for v in (x0, y0, x1, y1)],
                        "image_size": [w, h]})
    if args.json:
        print(json.dumps({"checkpoint": str(ckpt.path), "regression": loc.regression, "results": results}, indent=1))
    else:
        for r in results:
            cx, cy, bw, bh = r["box_cxcywh"]
            x0, y0, x1, y1 = r["box_pixels_xyxy"]
            print(f"{r['image']}: {r['class']} ({r['probability']:.1%})  box cx {cx:.3f} cy {cy:.3f} w {bw:.3f} "
                  f"h {bh:.3f}  = pixels ({x0:.1f}, {y0:.1f})-({x1:.1f}, {y1:.1f}) of {r['image_size'][0]}x"
                  f"{r['image_size'][1]}{'  (no area: w or h <= 0)' if min(bw, bh) <= 0 else ''}")
    if draw is not None:
        _draw(args.image, results, draw)
        if not args.json:
            print(f"wrote {draw}")
    return 0


def _draw(paths, results, out: Path) -> None:
    """Each image (scaled up to >= 256 px, nearest) with its box and class, side by side, as one PNG."""
    Image, ImageDraw = _pillow()
    tiles = []
    for path, r in zip(paths, results):
        with Image.open(path) as img:
            img = img.convert("RGB")
        scale = max(1, -(-256 // max(img.width, img.height)))
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        d = ImageDraw.Draw(img)
        x0, y0, x1, y1 = (v * scale for v in r["box_pixels_xyxy"])
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)  # a box of negative size: its outline
        for k in range(2):  # two rectangles, red inside yellow: visible on any colour
            d.rectangle([x0 - k, y0 - k, x1 + k, y1 + k], outline=(255, 0, 0) if k == 0 else (255, 255, 0))
        label = f"{r['class']} {r['probability']:.0%}"
        d.rectangle(d.textbbox((3, 2), label), fill=(0, 0, 0))  # readable on any background
        d.text((3, 2), label, fill=(255, 255, 0))
        tiles.append(img)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), max(t.height for t in tiles)))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    tr.atomic_write(out, lambda fh: sheet.save(fh, format="PNG"))


# ------------------------------------------------------------------ minivgg train --task localize

#: train options that mean nothing for fine-tuning a localizer (the architecture comes from --init).
_NOT_FOR_LOCALIZE = ("arch", "width", "fc_width", "dropout", "dtype", "schedule", "patience", "crop_pad")
#: train options fine-tuning takes, mapped onto LocConfig.
_LOC_ARGS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "lr_step", "lr_gamma", "seed",
             "flip")


def check_task_arguments(args: argparse.Namespace) -> None:
    """Refuse localize-only options under --task classify and vice versa (UsageError, exit 2)."""
    if args.task != "localize":
        for opt in ("regression", "init", "finetune"):
            if getattr(args, opt) is not None:
                raise UsageError(f"--{opt} applies only to --task localize")
        return
    if args.init is None:
        raise UsageError("--task localize needs --init CHECKPOINT (a classification checkpoint.npz from minivgg train)")
    if args.resume:
        raise UsageError("--resume is not supported with --task localize (fine-tuning takes minutes; rerun it)")
    given = [f"--{k.replace('_', '-')}" for k in _NOT_FOR_LOCALIZE if getattr(args, k) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} do(es) not apply to --task localize (the network comes from --init)")
    if args.data is not None and args.data != "shapes":
        raise UsageError(f"--task localize needs ground-truth boxes, which only --data shapes has (got --data {args.data})")


def run_train(args: argparse.Namespace, load_data, thread_limit, progress_cls) -> int:
    """``minivgg train --task localize``: fine-tune a localizer from ``--init`` and save it to ``--out``."""
    from ..training.localization import LocConfig, finetune_localizer, is_localization_checkpoint

    try:
        ckpt = tr.read_checkpoint(args.init)
    except (OSError, ValueError) as e:
        raise UsageError(f"--init: {e}") from None
    if is_localization_checkpoint(ckpt):
        raise UsageError(f"--init {args.init} is already a localization checkpoint; give the classification "
                         "checkpoint it was made from")
    if "preprocess" not in ckpt.meta or "data" not in ckpt.meta:
        raise UsageError(f"--init {args.init} holds plain weights; it needs a checkpoint.npz written by minivgg train")
    if ckpt.meta["data"].get("name") != "shapes" and args.data is None:
        raise UsageError(f"--init {args.init} was trained on {ckpt.meta['data'].get('name')}; localization needs "
                         "the boxes only the embedded shapes have (train the classifier with --data shapes)")
    data = load_data(args, ckpt.meta, ckpt.dtype)
    if data.num_classes != ckpt.config.num_classes:
        raise UsageError(f"--init {args.init} predicts {ckpt.config.num_classes} classes, the data have "
                         f"{data.num_classes}")
    explicit = {k: getattr(args, k) for k in _LOC_ARGS if getattr(args, k) is not None}
    try:
        config = LocConfig(regression=args.regression or LocConfig.regression,
                           finetune=args.finetune or LocConfig.finetune, **explicit)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(f"{data.name}: {len(data.x_train):,} training, {len(data.x_val):,} validation images with boxes; "
          f"from {args.init} ({ckpt.config.describe()})")
    print(f"localization: {config.regression.upper()} head ({4 if config.regression == 'scr' else 4 * data.num_classes}"
          f" outputs, random init), fine-tuning {'fc6-fc8' if config.finetune == 'fc' else 'all layers'}, "
          f"squared-L2 loss; {config.optimizer} lr {config.lr:g} (x{config.lr_gamma:g} every {config.lr_step} epochs), "
          f"batch {config.batch_size}, {config.epochs} epochs, flips {'on' if config.flip else 'off'}, "
          f"seed {config.seed}", flush=True)
    progress = progress_cls(args.progress, print_line=lambda line: print(line, flush=True))
    try:
        with thread_limit(args.threads):
            try:
                result = finetune_localizer(ckpt, data, config, out=args.out, callback=progress)
            finally:
                progress.close()
    # TrainingDiverged (exit 3) and Ctrl-C (exit 130) are reported by minivgg.cli.main like every command's
    except (tr.CheckpointError, ValueError, OSError) as e:
        raise UsageError(str(e)) from e
    f = result.final
    print(f"final validation localization error {f['val_loc_error']:.2%} with the ground-truth class "
          f"(IoU > 0.5, paper protocol 1), {f['val_loc_error_pred']:.2%} with the predicted class "
          f"(classifier accuracy {f['val_acc']:.2%}); mean IoU {f['val_mean_iou']:.3f}; {result.seconds:.1f} s in all")
    if args.out:
        print(f"wrote {Path(args.out) / tr.CHECKPOINT_NAME} and {Path(args.out) / tr.HISTORY_NAME}")
    return 0


def format_loc_epoch(entry: dict, epochs: int) -> str:
    """One line per fine-tuning epoch."""
    return (f"epoch {entry['epoch']:>{len(str(epochs))}}/{epochs}  train loss {entry['train_loss']:.4f} "
            f"loc-err {entry['train_loc_error']:.3f}  |  val loss {entry['val_loss']:.4f} "
            f"loc-err {entry['val_loc_error']:.3f} (pred. class {entry['val_loc_error_pred']:.3f}) "
            f"IoU {entry['val_mean_iou']:.3f}  |  lr {entry['lr']:.2g}  {entry['seconds']:.1f} s")
