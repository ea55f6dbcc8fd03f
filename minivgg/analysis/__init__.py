"""VGG on paper and on a real model: parameters, MACs, memory, receptive fields, and the lecture's claims.

* :mod:`~minivgg.analysis.counts` -- :func:`summarize`: every layer's counts from a config alone;
* :mod:`~minivgg.analysis.receptive_field` -- what each unit sees;
* :mod:`~minivgg.analysis.lecture` -- configs compared, 3x3 stacks vs large kernels, where memory and
  parameters sit, the notes' "~93 MB";
* :mod:`~minivgg.analysis.report` -- tables and CSV; :mod:`~minivgg.analysis.plots` -- the figure;
* :mod:`~minivgg.analysis.verify` -- the analytic figures measured on a built model;
* :mod:`~minivgg.analysis.selfcheck` -- every op's backward gradient-checked, for ``minivgg gradcheck``.
"""

from .counts import MB, MIB, LayerStats, Summary, Totals, resolve_dtype, summarize, summarize_specs
from .lecture import (LECTURE_CLAIM_MB, LECTURE_CLAIM_VALUES, LECTURE_LINES, compare, format_compare,
                      format_lecture_memory_check, format_memory_vs_params, format_stack_vs_large_kernel,
                      lecture_memory_check, memory_vs_params, stack_vs_large_kernel)
from .receptive_field import centre_unit, field_bounds, receptive_fields
from .report import format_bytes, format_receptive_fields, format_table, to_csv

__all__ = [
    "LECTURE_CLAIM_MB", "LECTURE_CLAIM_VALUES", "LECTURE_LINES", "MB", "MIB", "LayerStats", "Summary", "Totals",
    "centre_unit", "compare", "field_bounds", "format_bytes", "format_compare", "format_lecture_memory_check",
    "format_memory_vs_params", "format_receptive_fields", "format_stack_vs_large_kernel", "format_table",
    "lecture_memory_check", "memory_vs_params", "receptive_fields", "resolve_dtype", "stack_vs_large_kernel",
    "summarize", "summarize_specs", "to_csv",
]
