"""Compare libraries fairly: each run in its own fresh process, alternating, until the figures agree.

Why processes: minivgg (a Python thread pool over Numba kernels, plus
OpenBLAS's threads) and PyTorch (OpenMP, oneDNN) each keep worker threads that
spin for a while after their last task. Timed back to back in one process,
each library runs while the other's threads still burn the cores it needs: on
this 2-core machine that made the per-round ratios swing by 40-90%, and the
README once quoted a median of such rounds as "0.88x PyTorch". That figure
measured the interference, not either library.

So every measurement here is one child interpreter per (library, round):

* same request (network, weights seed, batch, thread count), same
  environment: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS``
  set to the thread count, any ``OPENBLAS_CORETYPE`` passed through as the
  caller has it;
* the order alternates every round (minivgg first, then torch first), so a
  drift in the machine's capacity is charged to both sides;
* a round's figure for each library is the median of its timed runs (warm-up
  discarded) in that process; the comparison is the median over rounds of the
  per-round ratio ``minivgg / torch``;
* rounds continue until the per-round ratios agree -- spread
  ``(max - min) / median`` at most ``target_spread`` over the last
  ``min_rounds`` -- or ``max_rounds`` is reached, and the result says which.

The worker command is passed in (``worker=[python, "-m", ...]``) because the
worker that wires optimisers in lives above this package.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from typing import Any, Callable, Mapping, Sequence

from .workloads import check_request

#: Environment variables set to the thread count in every child.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class WorkerError(RuntimeError):
    """A benchmark child process failed; the message carries its stderr's last lines."""


def child_env(num_threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmark child: ``base`` (default ``os.environ``) with the thread knobs set."""
    env = dict(os.environ if base is None else base)
    for key in THREAD_ENV:
        env[key] = str(num_threads)
    return env


def run_worker(request: Mapping[str, Any], worker: Sequence[str], *, timeout: float = 1800,
               runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> dict:
    """Run one request in a fresh child ``worker + [json]``; return the JSON it printed last.

    Raises
    ------
    WorkerError
        The child exited non-zero or printed no JSON.
    """
    req = check_request(request)
    proc = runner([*worker, json.dumps(req)], capture_output=True, text=True, timeout=timeout,
                  env=child_env(req["threads"]))
    lines = [ln for ln in (proc.stdout or "").strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-5:])
        raise WorkerError(f"benchmark worker for {req['lib']} {req['workload']} failed "
                          f"(exit {proc.returncode}): {tail or 'no output'}")
    return json.loads(lines[-1])


def _spread(values: Sequence[float]) -> float:
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med > 0 else 0.0


def _figure(result: dict) -> float:
    """One number per process: the median run, or for ``epoch`` the median epoch time."""
    return statistics.median(result["runs_s"])


def compare(request: Mapping[str, Any], worker: Sequence[str], *, libs: Sequence[str] = ("minivgg", "torch"),
            min_rounds: int = 3, max_rounds: int = 7, target_spread: float = 0.10,
            run: Callable[[Mapping[str, Any]], dict] | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Time ``request`` in each of ``libs``, one fresh process per library per round, alternating.

    Parameters
    ----------
    request : a :mod:`~minivgg.bench.workloads` request without ``lib`` (any given is replaced)
    worker : the command that runs one request (see :mod:`minivgg.cli._bench_worker`)
    libs : libraries to compare; the first is the numerator of the ratio
    min_rounds, max_rounds : rounds at least / at most
    target_spread : stop once the last ``min_rounds`` per-round ratios (or, for
        one library, per-round times) agree within this ``(max - min) / median``
    run : ``run(request) -> result`` (default: :func:`run_worker` with ``worker``);
        tests pass a fake
    progress : called as ``progress(round_done, max_rounds)``

    Returns
    -------
    dict
        ``{"request", "rounds", "converged", "<lib>": {"median_s", "spread", "per_round_s"},
        "ratio": {"median", "spread", "per_round"}}`` (``ratio`` only for two libraries).
        For ``"layers"`` requests use :func:`compare_layers`.
    """
    if not 1 <= min_rounds <= max_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    if not libs or len(libs) > 2:
        raise ValueError(f"libs must name one or two libraries, got {list(libs)}")
    run = run or (lambda req: run_worker(req, worker))
    per_round: dict[str, list[float]] = {lib: [] for lib in libs}
    extras: dict[str, list[dict]] = {lib: [] for lib in libs}
    converged = False
    for i in range(max_rounds):
        order = list(libs) if i % 2 == 0 else list(reversed(libs))
        for lib in order:
            res = run({**request, "lib": lib})
            per_round[lib].append(_figure(res))
            extras[lib].append(res)
        track = ([a / b for a, b in zip(per_round[libs[0]], per_round[libs[1]])] if len(libs) == 2
                 else per_round[libs[0]])
        if progress is not None:
            progress(i + 1, max_rounds)
        if i + 1 >= min_rounds and _spread(track[-min_rounds:]) <= target_spread:
            converged = True
            break
    out: dict[str, Any] = {"request": {k: v for k, v in request.items() if k != "lib"},
                           "rounds": len(per_round[libs[0]]), "converged": converged,
                           "target_spread": target_spread, "libs": list(libs)}
    for lib in libs:
        out[lib] = {"median_s": statistics.median(per_round[lib]), "spread": _spread(per_round[lib]),
                    "per_round_s": per_round[lib]}
        ips = [r["images_per_s"] for r in extras[lib] if "images_per_s" in r]
        if ips:
            out[lib]["images_per_s"] = statistics.median(ips)
    if len(libs) == 2:
        ratios = [a / b for a, b in zip(per_round[libs[0]], per_round[libs[1]])]
        out["ratio"] = {"median": statistics.median(ratios), "spread": _spread(ratios), "per_round": ratios}
    return out


def compare_layers(request: Mapping[str, Any], worker: Sequence[str], *,
                   libs: Sequence[str] = ("minivgg", "torch"), rounds: int = 3,
                   run: Callable[[Mapping[str, Any]], dict] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Per-layer forward times of each library, ``rounds`` fresh processes each, alternating.

    Returns ``{"request", "rounds", "layers": [{"name", "<lib>_s", "<lib>_spread", "ratio"}...]}``:
    per layer and library the median over rounds of each process's median run.
    """
    request = {**request, "workload": "layers"}
    run = run or (lambda req: run_worker(req, worker))
    per: dict[str, list[dict]] = {lib: [] for lib in libs}
    for i in range(rounds):
        for lib in (libs if i % 2 == 0 else list(reversed(libs))):
            per[lib].append(run({**request, "lib": lib})["layers"])
        if progress is not None:
            progress(i + 1, rounds)
    names = list(per[libs[0]][0])
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name}
        for lib in libs:
            figures = [statistics.median(r[name]) for r in per[lib]]
            row[f"{lib}_s"] = statistics.median(figures)
            row[f"{lib}_spread"] = _spread(figures)
        if len(libs) == 2 and row[f"{libs[1]}_s"] > 0:
            row["ratio"] = row[f"{libs[0]}_s"] / row[f"{libs[1]}_s"]
        rows.append(row)
    return {"request": {k: v for k, v in request.items() if k != "lib"}, "rounds": rounds,
            "libs": list(libs), "layers": rows}

