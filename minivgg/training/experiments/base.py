"""What every experiment returns: a table, the paper's figure beside it, and the raw data.

``minivgg experiment NAME`` runs one of the lecture's measurable claims on the
embedded data. Each experiment is a module of this package exposing

* ``TITLE: str`` -- one line, e.g. ``"LRN does not help (paper Table 3, A vs A-LRN)"``;
* ``run(*, quick: bool = False, seed: int = 0, progress: Progress | None = None) -> ExperimentResult``;
* ``plot(result: ExperimentResult, path: Path) -> Path`` -- one PNG (matplotlib, the ``plot`` extra).

The result is plain data so the CLI can print :meth:`ExperimentResult.table`,
write :meth:`ExperimentResult.to_json` and hand it back to ``plot``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

__all__ = ["Progress", "ExperimentResult", "format_cell"]

#: ``progress(message)``: one line of news from a long experiment (which model is training, ...).
Progress = Callable[[str], None]


def format_cell(v: Any) -> str:
    """A table cell: floats to 4 significant digits, ints with thousands separators."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class ExperimentResult:
    """One experiment's outcome.

    ``columns``/``rows`` are the table a reader compares with ``paper`` (what the
    paper or lecture reports, with its setting). ``verdict`` is one sentence on
    whether the claim held *here*; ``notes`` say honestly where the embedded data
    differs from ImageNet. ``data`` holds everything else (per-seed numbers,
    histories) for the JSON file and the plot. ``quick`` records whether this
    was the ~1 minute version.
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    paper: str
    verdict: str
    quick: bool
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"experiment {self.name}: row {i} has {len(row)} cells, "
                                 f"expected {len(self.columns)} (columns {self.columns})")

    def table(self) -> str:
        """The result as an aligned text table, then the paper's figure and the verdict."""
        cells = [self.columns] + [[format_cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[j]) for r in cells) for j in range(len(self.columns))]
        lines = [f"{self.title}{'  (quick)' if self.quick else ''}"]
        for k, r in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += ["", f"paper: {self.paper}", f"here:  {self.verdict}"]
        lines += [f"note:  {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready (the CLI writes it with minivgg's atomic JSON writer)."""
        return asdict(self)
