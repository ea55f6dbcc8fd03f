"""Training VGG the paper's way at laptop scale, and what a trained VGG is used for.

* :mod:`~minivgg.training.data` -- the embedded shapes, CIFAR-10 and MNIST loaders, augmentation, mini-batches;
* :mod:`~minivgg.training.datasets` -- a dataset with its preprocessing (mean subtraction, padding);
* :mod:`~minivgg.training.optim` -- SGD/Nesterov/Adam and the learning-rate schedules;
* :mod:`~minivgg.training.config` -- the run's settings and the recipe network;
* :mod:`~minivgg.training.trainer` -- the loop, with a callback for progress;
* :mod:`~minivgg.training.checkpoint` -- checkpoints (minivgg's one ``.npz`` layout) and history;
* :mod:`~minivgg.training.evaluate` -- accuracy, top-k, flips and ensembles;
* :mod:`~minivgg.training.transfer` -- FC7 features on a held-out task;
* :mod:`~minivgg.training.dense_eval` -- fully-convolutional evaluation (paper §3.2);
* :mod:`~minivgg.training.localization` -- box regression fine-tuned from a classifier (paper Appendix A);
* :mod:`~minivgg.training.tour` -- the tour's short run.
"""

from ..io.files import CheckpointError, atomic_write
from .checkpoint import (CHECKPOINT_NAME, HISTORY_KEYS, HISTORY_NAME, Checkpoint, check_architecture, load_history,
                         model_from_checkpoint, read_checkpoint, save_checkpoint)
from .config import (OPTIMIZERS, RECIPE_MODEL, SCHEDULES, TrainConfig, TrainingDiverged, TrainResult,
                     recipe_config)
from .datasets import DATASETS, Dataset, Preprocess, dataset_for_checkpoint, load_dataset
from .tour import tour_training_run
from .trainer import TrainCallback, Trainer, train

__all__ = [
    "CHECKPOINT_NAME", "DATASETS", "HISTORY_KEYS", "HISTORY_NAME", "OPTIMIZERS", "RECIPE_MODEL", "SCHEDULES",
    "Checkpoint", "CheckpointError", "Dataset", "Preprocess", "TrainCallback", "TrainConfig", "TrainResult",
    "Trainer", "TrainingDiverged", "atomic_write", "check_architecture", "dataset_for_checkpoint", "load_dataset",
    "load_history", "model_from_checkpoint", "read_checkpoint", "recipe_config", "save_checkpoint",
    "tour_training_run", "train",
]
