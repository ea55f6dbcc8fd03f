"""The grade sheet: a JSON-able dict and a text table of :class:`~minivgg.exercises.checks.ExerciseResult`."""

from __future__ import annotations

from typing import Any, Sequence

from .checks import PASS, ExerciseResult
from .loader import LoadResult


def as_dict(load: LoadResult, results: Sequence[ExerciseResult]) -> dict[str, Any]:
    """``{"file", "load_error", "passed", "exercises": [...]}``; ``passed`` only when the file loaded and all pass."""
    return {"file": str(load.path), "load_error": load.error,
            "passed": load.error is None and bool(results) and all(r.status == PASS for r in results),
            "exercises": [r.to_dict() for r in results]}


def as_table(load: LoadResult, results: Sequence[ExerciseResult]) -> str:
    """One line per exercise, then the explanation and smallest failing case of each that did not pass."""
    if load.error is not None:
        return f"cannot check {load.path}: {load.error}"
    w = max([len("exercise")] + [len(r.name) for r in results])
    lines = [f"{'exercise':<{w}}  result"] + [f"{r.name:<{w}}  {r.status}" for r in results]
    for r in results:
        if r.status != PASS:
            lines.append(f"\n{r.name}: {r.status}\n  {r.explanation}")
            if r.case:
                lines.append(f"  smallest failing case: {r.case}")
    npass = sum(r.status == PASS for r in results)
    lines.append(f"\n{npass} of {len(results)} exercises pass")
    return "\n".join(lines)
