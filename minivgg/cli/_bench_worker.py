"""The child process of ``minivgg bench``: run one benchmark request, print its result as JSON.

Usage (what :mod:`minivgg.bench.isolated` runs)::

    python -m minivgg.cli._bench_worker '{"lib": "minivgg", "workload": "forward", ...}'

Glue only: the request is executed by :func:`minivgg.bench.workloads.run_request`;
this module supplies minivgg's own optimisers (:mod:`minivgg.training.optim`),
which the bench package may not import. Exit status 2 on a bad request.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Mapping, Sequence

WORKER = [sys.executable, "-m", __name__ if __name__ != "__main__" else "minivgg.cli._bench_worker"]


def optimizer_factory(params: dict, spec: Mapping[str, Any]) -> Callable[[dict], None]:
    """minivgg's SGD or Adam over ``params`` as ``spec`` says; returns its ``step``."""
    from ..training.optim import SGD, Adam

    if spec["name"] == "sgd":
        opt = SGD(params, lr=spec["lr"], momentum=spec.get("momentum", 0.0),
                  weight_decay=spec.get("weight_decay", 0.0))
    else:
        opt = Adam(params, lr=spec["lr"], weight_decay=spec.get("weight_decay", 0.0))
    return opt.step


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from ..bench.workloads import run_request
    from ..io.jsonout import dumps

    if len(argv) != 1:
        print("usage: python -m minivgg.cli._bench_worker REQUEST_JSON", file=sys.stderr)
        return 2
    try:
        request = json.loads(argv[0])
        result = run_request(request, optimizer_factory)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"minivgg bench worker: error: {exc}", file=sys.stderr)
        return 2
    print(dumps(result), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
