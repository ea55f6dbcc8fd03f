"""The paper's localization comparison (Appendix A, Table 8) on the embedded shapes.

    python examples/localization_experiment.py [--quick] [--seed S] [--out DIR]

Trains one classifier with the shapes recipe, fine-tunes SCR and PCR box
regressors from it (fc6-fc8 only, and all layers), prints the table beside
the paper's numbers, and writes DIR/localization.json and DIR/localization.png
(default DIR: the current directory). The same module runs as
``minivgg experiment localization`` where that command is installed.
"""

import argparse
import time
from pathlib import Path

from minivgg.training.checkpoint import write_json
from minivgg.training.experiments import get


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about a minute on a quiet 2-core machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".")
    args = p.parse_args()
    m = get("localization")
    start = time.perf_counter()
    result = m.run(quick=args.quick, seed=args.seed,
                   progress=lambda s: print(f"[{time.perf_counter() - start:6.1f} s] {s}", flush=True))
    print(result.table())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "localization.json", result.to_json())
    print(f"wrote {out / 'localization.json'} and {m.plot(result, out / 'localization.png')}")


if __name__ == "__main__":
    main()
