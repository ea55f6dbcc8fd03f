"""Effective receptive fields of a trained shapes network against the same network untrained.

    python examples/shapes_erf.py CHECKPOINT [N]   # a checkpoint of `minivgg train --data shapes`

Averages |dy/dx| of the centre unit of relu3_2 and pool5 over the first N (64)
validation images (Luo et al. 2016 average over inputs), for the checkpoint's
weights and for freshly initialised ones of the same architecture (He init,
seed 0), and prints how much of the theoretical field holds 90% of the mass.
"""

import sys

import numpy as np

from minivgg import VGG
from minivgg.training import dataset_for_checkpoint, model_from_checkpoint
from minivgg.visualize import effective_receptive_field


def main(path: str, n: int = 64) -> None:
    trained, ckpt = model_from_checkpoint(path)
    data = dataset_for_checkpoint(ckpt.meta)
    x = data.preprocess(data.x_val[:n]).astype(trained.dtype)
    untrained = VGG(trained.config, dtype=trained.dtype, seed=0)
    for name, model in (("trained", trained), ("untrained", untrained)):
        for layer in ("relu3_2", "pool5"):
            erf = effective_receptive_field(model, x, layer)
            r0, r1 = erf.unclipped[:2]
            print(f"{name:9s} {layer:7s} field {r1 - r0 + 1:3d} px (box {erf.box} on the {x.shape[-1]} px image): "
                  f"90% of |dy/dx| on {erf.area_for_mass:.1%} of it")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
