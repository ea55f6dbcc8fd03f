"""FC7 features transfer to new classes: train on five shapes, classify the other five with a frozen network.

    python examples/fc7_transfer.py     # about 2 minutes on 2 cores

Prints softmax-on-FC7 accuracy on the held-out classes against softmax on raw
pixels and on the FC7 features of the same network before training.
"""

from minivgg.training import TrainCallback
from minivgg.training.transfer import format_transfer_result, transfer_experiment


class PrintEpochs(TrainCallback):
    """Print each epoch of the source training (the library itself prints nothing)."""

    def on_epoch_end(self, entry: dict) -> None:
        print(f"epoch {entry['epoch']}: val acc {entry['val_acc']:.3f}")


if __name__ == "__main__":
    result = transfer_experiment(seed=0, callback=PrintEpochs())
    print()
    print(format_transfer_result(result))
