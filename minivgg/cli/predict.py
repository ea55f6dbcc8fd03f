"""``minivgg predict IMAGE --weights FILE``: the top-5 ImageNet classes of an image."""

from __future__ import annotations

import argparse

from . import UsageError
from ._common import arch_name, positive_int
from ._progress import counter
from .convert import FILE_ERRORS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of an image with real VGG weights",
                       description="Classify an image with weights from torchvision (.pth), Keras (.h5), "
                                   "minivgg (.npz), timm/torchvision (.safetensors) or ONNX (.onnx). Needs Pillow (pip install 'minivgg[image]').")
    p.add_argument("image", nargs="+", help="image file(s) (anything Pillow reads)")
    p.add_argument("--weights", required=True, help="weights file, e.g. vgg16-397923af.pth")
    p.add_argument("--arch", type=arch_name, default=None, help="architecture; inferred from the file if omitted")
    p.add_argument("--top", type=positive_int, default=5, help="how many classes to print (default 5)")
    p.add_argument("--preprocessing", choices=("torchvision", "caffe"), default=None,
                   help="torchvision: RGB, /255, ImageNet mean/std, resize 256 + crop 224; caffe (Keras): BGR, "
                        "mean subtraction. Default: caffe for .h5 weights, torchvision otherwise")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.images import predict_topk
    from ..io.weights import load_model

    preprocessing = args.preprocessing or ("caffe" if args.weights.lower().endswith((".h5", ".hdf5")) else "torchvision")
    try:
        model = load_model(args.weights, args.arch, progress=counter(f"reading {args.weights}", unit="B"))
    except FILE_ERRORS as exc:
        raise UsageError(str(exc)) from None
    for image in args.image:
        try:
            top = predict_topk(model, image, k=args.top, preprocessing=preprocessing)
        except FILE_ERRORS as exc:
            raise UsageError(str(exc)) from None
        print(f"{image}:")
        for rank, (index, name, prob) in enumerate(top, 1):
            print(f"  {rank}. {prob:7.2%}  {name}  (class {index})")
    return 0
