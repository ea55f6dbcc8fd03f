"""Progress bars for long commands (tqdm), fed by the library's callbacks.

``tqdm.auto`` picks a notebook widget under Jupyter and a text bar in a
terminal; with ``disable=None`` nothing is drawn when stderr is not a
terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

from typing import Callable

from tqdm.auto import tqdm



def bar(total: int, desc: str, enabled: bool | None = None, unit: str = "it") -> tqdm:
    """A tqdm bar on stderr; ``enabled=None`` draws it only on a terminal, ``False`` never.

    ``unit="B"`` counts bytes (shown as kB/MB/GB).
    """
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=False, dynamic_ncols=True,
                disable=None if enabled is None else not enabled)


def counter(desc: str, enabled: bool | None = None, unit: str = "it") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing a bar (for library calls that report counts)."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = bar(total, desc, enabled, unit)
        b = state["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return update
