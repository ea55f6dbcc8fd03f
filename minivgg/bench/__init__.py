"""CPU benchmarks of minivgg: the whole model, each layer and each conv algorithm, against PyTorch and the hardware.

Every figure is a ratio measured within one run: minivgg's time over
PyTorch's on the same network, weights and thread count -- **each library in
its own fresh process**, alternating, repeated until the per-round ratios
agree (:mod:`~minivgg.bench.isolated`; why: see there) -- and each layer's
time against its physical floor from this machine's sgemm rate and memory
bandwidth, measured in the same run (:mod:`~minivgg.bench.roofline`). Each
timing discards its warm-up runs (JIT cache loading, first-touch page faults)
and keeps the median and spread of the rest.

Runners return JSON-able dicts; formatters turn them into text, JSON or a
chart; nothing here prints. ``minivgg bench`` is the front end.

Modules: :mod:`~minivgg.bench.timing` (measure, GFLOP/s),
:mod:`~minivgg.bench.machine` (CPU, BLAS kernel, sgemm rate, bandwidth),
:mod:`~minivgg.bench.workloads` (what one process times),
:mod:`~minivgg.bench.isolated` (fresh-process comparisons),
:mod:`~minivgg.bench.roofline` (compute- or memory-bound, floors),
:mod:`~minivgg.bench.torch_twin` (the same model in ``torch.nn``; torch is optional),
:mod:`~minivgg.bench.runners` (minivgg-only per-layer forward/backward, memory bound, start-up),
:mod:`~minivgg.bench.conv_algos` (the conv algorithm race and fp32 accuracy),
:mod:`~minivgg.bench.suite` (:func:`run`, :func:`verdicts`),
:mod:`~minivgg.bench.report` (text, JSON, plot).
"""

from .conv_algos import NAIVE_MAX_MACS, conv_accuracy, conv_race
from .isolated import WorkerError, compare, compare_layers
from .machine import cpu_model, machine_info, memory_bandwidth, sgemm_rate
from .report import format_report, plot_report, to_json
from .roofline import layer_floor, model_floors, roofline
from .runners import bench_layers, memory_bound, memory_record, startup_cost
from .suite import PARTS, run, verdicts
from .timing import Timing, gflops, measure
from .torch_twin import have_torch, torch_model, torch_threads
from .workloads import LIBS, WORKLOADS, check_request, run_request

__all__ = [
    "LIBS", "NAIVE_MAX_MACS", "PARTS", "Timing", "WORKLOADS", "WorkerError", "bench_layers", "check_request",
    "compare", "compare_layers", "conv_accuracy", "conv_race", "cpu_model", "format_report", "gflops",
    "have_torch", "layer_floor", "machine_info", "measure", "memory_bandwidth", "memory_bound", "memory_record", "model_floors",
    "plot_report", "roofline", "run", "run_request", "sgemm_rate", "startup_cost", "to_json", "torch_model",
    "torch_threads", "verdicts",
]
