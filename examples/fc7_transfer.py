"""FC7 features transfer to new classes: train on five shapes, classify the other five with a frozen network.

    python examples/fc7_transfer.py     # about 2 minutes on 2 cores

Prints softmax-on-FC7 accuracy on the held-out classes against softmax on raw
pixels and on the FC7 features of the same network before training.
"""

from minivgg.training.transfer import format_transfer_result, transfer_experiment

if __name__ == "__main__":
    result = transfer_experiment(seed=0, log=print)
    print()
    print(format_transfer_result(result))
