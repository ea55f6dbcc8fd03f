"""CPU benchmarks of minivgg: how fast each layer, the whole model and each conv algorithm run here.

Every figure is a ratio measured within one run -- minivgg's GFLOP/s (from the
analytic MACs) as a share of this machine's BLAS sgemm rate, and minivgg's
time over PyTorch's on the same network and weights, timed interleaved --
because absolute seconds drift between machines and, on a shared one,
between minutes. Each timing discards its warm-up runs (JIT cache loading,
first-touch page faults) and keeps the median and spread of the rest.

Runners return JSON-able dicts; formatters turn them into text, JSON or a
chart; nothing here prints::

    from minivgg import bench
    res = bench.run("vgg16", num_threads=1, parts=("layers",))
    print(bench.format_report(res))

Modules: :mod:`~minivgg.bench.timing` (measure, interleaved pairs, GFLOP/s),
:mod:`~minivgg.bench.machine` (CPU, BLAS, sgemm rate),
:mod:`~minivgg.bench.torch_twin` (the same model in ``torch.nn``; torch is
optional), :mod:`~minivgg.bench.runners` (whole model, per layer, start-up,
:func:`run`), :mod:`~minivgg.bench.conv_algos` (the conv algorithm race and
fp32 accuracy), :mod:`~minivgg.bench.report` (text, JSON, plot).
"""

from .conv_algos import NAIVE_MAX_MACS, conv_accuracy, conv_race
from .machine import cpu_model, machine_info, sgemm_rate
from .report import format_report, plot_report, to_json
from .runners import PARTS, bench_layers, bench_model, memory_bound, run, startup_cost
from .timing import Timing, gflops, measure, measure_pair
from .torch_twin import have_torch, torch_model, torch_threads

__all__ = [
    "NAIVE_MAX_MACS", "PARTS", "Timing", "bench_layers", "bench_model", "conv_accuracy", "conv_race",
    "cpu_model", "format_report", "gflops", "have_torch", "machine_info", "measure", "measure_pair",
    "memory_bound", "plot_report", "run", "sgemm_rate", "startup_cost", "to_json", "torch_model",
    "torch_threads",
]
