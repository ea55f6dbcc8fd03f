"""Progress bars for long commands (tqdm), fed by the library's callbacks.

``tqdm.auto`` picks a notebook widget under Jupyter and a text bar in a
terminal; with ``disable=None`` nothing is drawn when stderr is not a
terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

from typing import Callable

from tqdm.auto import tqdm

from ..training.trainer import TrainCallback


def bar(total: int, desc: str, enabled: bool | None = None, unit: str = "it") -> tqdm:
    """A tqdm bar on stderr; ``enabled=None`` draws it only on a terminal, ``False`` never."""
    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                disable=None if enabled is None else not enabled)


def counter(desc: str, enabled: bool | None = None) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing a bar (for library calls that report counts)."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = bar(total, desc, enabled)
        b = state["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return update


class TrainProgress(TrainCallback):
    """A bar per epoch (steps, running loss and accuracy, img/s) and one printed line per finished epoch."""

    def __init__(self, enabled: bool | None = None, print_line: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled
        self.print_line = print_line if print_line is not None else (lambda line: tqdm.write(line))
        self.epochs = 0
        self._bar: tqdm | None = None

    def on_fit_start(self, epochs_done: int, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_start(self, epoch: int, n_batches: int) -> None:
        self._bar = bar(n_batches, f"epoch {epoch}/{self.epochs}", self.enabled, unit="step")

    def on_batch_end(self, batch: int, images: int, loss: float, acc: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, entry: dict) -> None:
        self.close()
        self.print_line(format_epoch(entry, self.epochs))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(entry: dict, epochs: int) -> str:
    """One summary line per epoch (what ``minivgg train`` prints)."""
    return (f"epoch {entry['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {entry['train_loss']:.4f} acc {entry['train_acc']:.3f}  |  "
            f"val loss {entry['val_loss']:.4f} acc {entry['val_acc']:.3f}  |  "
            f"lr {entry['lr']:.2g}  {entry['images_per_s']:,.0f} img/s  {entry['seconds']:.1f} s")
