"""The lecture's comparisons, computed: configs side by side, 3x3 stacks vs one large kernel,
where memory and parameters sit, and where the notes' "~93 MB per image" comes from.

cs231n lecture 9 ("CNN Architectures") and the notes' "VGGNet in detail".
"""

from __future__ import annotations

from typing import Sequence


from .counts import MB, MIB, Summary, summarize
from .report import _config_letter

def compare(archs: Sequence = ("vgg11", "vgg13", "vgg16", "vgg19"), input_size: int | None = None, batch: int = 1,
            dtype="float32", width: float = 1.0, **kwargs) -> list[dict]:
    """All configurations side by side: parameters, MACs and memory (one dict per arch).

    ``archs`` items are names or custom config lists; ``kwargs`` go to :func:`summarize`.
    ``input_size=None`` gives each architecture its own (224; the original AlexNet 227).
    Keys: ``arch, config, conv_layers, weight_layers, params, param_bytes, macs, flops,
    forward_bytes, backward_bytes, inference_peak_bytes, fc6_param_share``.
    """
    if isinstance(archs, str):
        archs = [archs]
    rows = []
    for a in archs:
        s = summarize(a, input_size=input_size, batch=batch, dtype=dtype, width=width, **kwargs)
        t = s.totals
        convs = sum(1 for x in s.layers if x.type == "conv")
        fc6 = next((x.params for x in s.layers if x.name == "fc6"), 0)
        rows.append({"arch": s.arch, "config": _config_letter(s.arch), "conv_layers": convs,
                     "weight_layers": convs + sum(1 for x in s.layers if x.type == "dense"),
                     "params": t.params, "param_bytes": t.param_bytes, "macs": t.macs, "flops": t.flops,
                     "forward_bytes": t.forward_bytes, "backward_bytes": t.backward_bytes,
                     "inference_peak_bytes": t.inference_peak_bytes, "fc6_param_share": fc6 / t.params,
                     "input_size": s.input_size, "batch": s.batch, "dtype": s.dtype})
    return rows


def format_compare(rows: Sequence[dict]) -> str:
    """Table of :func:`compare` rows; the last two columns are ratios to the first row."""
    if not rows:
        return "(no architectures)"
    r0 = rows[0]
    # an arch at another input size than the header's (AlexNet's 227) says so
    names = [r["arch"] if r["input_size"] == r0["input_size"] else f"{r['arch']}@{r['input_size']}" for r in rows]
    wa = max(8, *map(len, names))  # column widths fit the longest name ("alexnet-tv@227", "A-LRN")
    wc = max(3, *(len(r["config"]) for r in rows))
    lines = [f"input {r0['input_size']}x{r0['input_size']}, batch {r0['batch']}, {r0['dtype']}",
             f"{'arch':<{wa}} {'cfg':<{wc}} {'weight layers':>13} {'params':>13} {'GMACs':>7} {'fwd MiB':>8} "
             f"{'kept MiB':>8} {'peak MiB':>8} {'fc6 %':>6} {'params x':>8} {'MACs x':>7}"]
    for arch, r in zip(names, rows):
        lines.append(f"{arch:<{wa}} {r['config']:<{wc}} {r['weight_layers']:>13} {r['params']:>13,} "
                     f"{r['macs'] / 1e9:>7.2f} {r['forward_bytes'] / MIB:>8.1f} {r['backward_bytes'] / MIB:>8.1f} "
                     f"{r['inference_peak_bytes'] / MIB:>8.1f} {100 * r['fc6_param_share']:>6.1f} "
                     f"{r['params'] / r0['params']:>8.3f} {r['macs'] / r0['macs']:>7.3f}")
    lines.append("GMACs = 10^9 multiply-adds (FLOPs = 2 x MACs); fwd = all layer outputs; kept = what training "
                 "keeps for backward; peak = inference peak incl. params; MiB = 2^20 B.")
    for r in rows[1:]:  # the lecture's phrasing: "VGG-16 has about 2.3x AlexNet's parameters and ~21x its MACs"
        if r["params"] < r0["params"]:
            lines.append(f"{r0['arch']} has {r0['params'] / r['params']:.2f}x {r['arch']}'s parameters and "
                         f"{r0['macs'] / r['macs']:.1f}x its MACs")
    return "\n".join(lines)


def stack_vs_large_kernel(channels: int, depth: int = 3, height: int = 56, width: int | None = None) -> dict:
    """``depth`` stacked 3x3 convs vs one ``(2*depth+1)x(2*depth+1)`` conv, C channels in and out.

    Both see the same field; the stack has ``depth`` ReLUs instead of one and
    ``depth*9 C^2`` weights instead of ``(2 depth+1)^2 C^2`` (27C^2 vs 49C^2 for
    depth 3). MACs are for one ``height x width`` map (stride 1, "same" padding).

    Returns ``{"stack": {...}, "single": {...}, "ratio": {...}}``; each side has
    ``layers, kernel, weights, biases, params, receptive_field, nonlinearities, macs``.
    """
    for label, v in (("channels", channels), ("depth", depth), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"stack_vs_large_kernel: {label} must be an int >= 1, got {v!r}")
    width = height if width is None else width
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"stack_vs_large_kernel: width must be an int >= 1, got {width!r}")

    def side(kernels: list[int]) -> dict:
        r, j = 1, 1
        for k in kernels:            # stride 1 everywhere: j stays 1
            r += (k - 1) * j
        w = sum(k * k * channels * channels for k in kernels)
        return {"layers": len(kernels), "kernel": kernels[0], "weights": w, "biases": channels * len(kernels),
                "params": w + channels * len(kernels), "receptive_field": r, "nonlinearities": len(kernels),
                "macs": w * height * width}

    stack, single = side([3] * depth), side([2 * depth + 1])
    ratio = {k: stack[k] / single[k] for k in ("weights", "params", "macs", "nonlinearities")}
    return {"channels": channels, "depth": depth, "height": height, "width": width,
            "stack": stack, "single": single, "ratio": ratio}


def format_stack_vs_large_kernel(cmp: dict) -> str:
    """Text for :func:`stack_vs_large_kernel`."""
    c, d = cmp["channels"], cmp["depth"]
    k = cmp["single"]["kernel"]
    rows = [("layers", "layers"), ("receptive field", "receptive_field"), ("non-linearities", "nonlinearities"),
            ("weights", "weights"), ("params (with biases)", "params"), ("MACs", "macs")]
    lines = [f"{d} x (3x3 conv) vs 1 x ({k}x{k} conv), C = {c} channels, map {cmp['height']}x{cmp['width']}",
             f"{'':<22} {f'{d} x 3x3':>16} {f'1 x {k}x{k}':>16} {'ratio':>7}"]
    for label, key in rows:
        a, b = cmp["stack"][key], cmp["single"][key]
        lines.append(f"{label:<22} {a:>16,} {b:>16,} {a / b:>7.3f}")
    lines.append(f"weights: {d}*(9C^2) = {9 * d}C^2 vs {k}^2 C^2 = {k * k}C^2 "
                 f"-> {100 * (1 - cmp['ratio']['weights']):.0f}% fewer, same field, {d}x the non-linearities")
    return "\n".join(lines)


def _group(name: str) -> str:
    # conv3_2 / relu3_2 / pool3 -> block3; flatten, fc*, relu6/7, drop* -> classifier
    for prefix in ("conv", "relu", "pool"):
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest[:1].isdigit() and ("_" in rest or prefix == "pool"):
            return f"block{rest.split('_')[0]}"
    return "classifier"


def memory_vs_params(summary: Summary) -> dict:
    """Where memory sits (early convs) vs where parameters sit (fc6), as shares of the totals.

    Returns ``{"groups": [{group, activation_bytes, memory_share, kept_bytes, kept_share,
    params, param_share}], "layers": [{name, activation_bytes, memory_share, params,
    param_share}], "top_params": (name, share), "top_memory": (name, share)}``. Memory is
    ``forward_bytes`` (views excluded); ``kept`` is ``backward_bytes``.
    """
    t = summary.totals
    groups: dict[str, dict] = {}
    layers = []
    for s in summary.layers:
        mem = 0 if s.view else s.activation_bytes
        g = groups.setdefault(_group(s.name), {"group": _group(s.name), "activation_bytes": 0, "kept_bytes": 0,
                                               "params": 0})
        g["activation_bytes"] += mem
        g["kept_bytes"] += s.kept_bytes
        g["params"] += s.params
        layers.append({"name": s.name, "activation_bytes": mem, "memory_share": mem / t.forward_bytes,
                       "params": s.params, "param_share": s.params / t.params})
    for g in groups.values():
        g["memory_share"] = g["activation_bytes"] / t.forward_bytes
        g["kept_share"] = g["kept_bytes"] / t.backward_bytes if t.backward_bytes else 0.0
        g["param_share"] = g["params"] / t.params
    top_p = max(layers, key=lambda x: x["params"])
    top_m = max(layers, key=lambda x: x["activation_bytes"])
    return {"groups": list(groups.values()), "layers": layers,
            "top_params": (top_p["name"], top_p["param_share"]),
            "top_memory": (top_m["name"], top_m["memory_share"])}


def format_memory_vs_params(summary: Summary) -> str:
    """Per-block shares of activation memory and of parameters."""
    mp = memory_vs_params(summary)
    lines = [f"{summary.arch} at {summary.input_size}x{summary.input_size}: where memory and parameters sit",
             f"{'group':<11} {'act MiB':>9} {'memory %':>9} {'kept %':>7} {'params':>13} {'params %':>9}"]
    for g in mp["groups"]:
        lines.append(f"{g['group']:<11} {g['activation_bytes'] / MIB:>9.2f} {100 * g['memory_share']:>9.1f} "
                     f"{100 * g['kept_share']:>7.1f} {g['params']:>13,} {100 * g['param_share']:>9.1f}")
    (pn, ps), (mn, ms) = mp["top_params"], mp["top_memory"]
    lines.append(f"most parameters: {pn} ({100 * ps:.1f}% of all); largest activation: {mn} ({100 * ms:.1f}%)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# "TOTAL memory: 24M * 4 bytes ~= 93MB / image" -- where do such figures come from?
# ---------------------------------------------------------------------------

#: The cs231n notes' VGG-16 lines ("VGGNet in detail"): label, the minivgg layer
#: it describes ("input" = the image) and the memory figure as printed.
LECTURE_LINES: tuple = (
    ("INPUT [224x224x3]", "input", "150K", 150e3),
    ("CONV3-64 [224x224x64]", "conv1_1", "3.2M", 3.2e6), ("CONV3-64 [224x224x64]", "conv1_2", "3.2M", 3.2e6),
    ("POOL2 [112x112x64]", "pool1", "800K", 800e3),
    ("CONV3-128 [112x112x128]", "conv2_1", "1.6M", 1.6e6), ("CONV3-128 [112x112x128]", "conv2_2", "1.6M", 1.6e6),
    ("POOL2 [56x56x128]", "pool2", "400K", 400e3),
    ("CONV3-256 [56x56x256]", "conv3_1", "800K", 800e3), ("CONV3-256 [56x56x256]", "conv3_2", "800K", 800e3),
    ("CONV3-256 [56x56x256]", "conv3_3", "800K", 800e3),
    ("POOL2 [28x28x256]", "pool3", "200K", 200e3),
    ("CONV3-512 [28x28x512]", "conv4_1", "400K", 400e3), ("CONV3-512 [28x28x512]", "conv4_2", "400K", 400e3),
    ("CONV3-512 [28x28x512]", "conv4_3", "400K", 400e3),
    ("POOL2 [14x14x512]", "pool4", "100K", 100e3),
    ("CONV3-512 [14x14x512]", "conv5_1", "100K", 100e3), ("CONV3-512 [14x14x512]", "conv5_2", "100K", 100e3),
    ("CONV3-512 [14x14x512]", "conv5_3", "100K", 100e3),
    ("POOL2 [7x7x512]", "pool5", "25K", 25e3),
    ("FC [1x1x4096]", "fc6", "4096", 4096), ("FC [1x1x4096]", "fc7", "4096", 4096),
    ("FC [1x1x1000]", "fc8", "1000", 1000),
)
#: The notes' total: "24M * 4 bytes ~= 93MB / image (only forward! ~*2 for bwd)".
LECTURE_CLAIM_VALUES = 24_000_000
LECTURE_CLAIM_MB = 93


def lecture_memory_check(dtype="float32") -> dict:
    """Reproduce the lecture's VGG-16 memory lines and test its "24M * 4 bytes ~= 93MB" total.

    Returns ``{"lines": [...], "conventions": [...], "claim": {...}, "summary": Summary}``.
    Each line: ``label, layer, stated, stated_values, exact_values``. Each
    convention: ``label, values`` (None where mixed dtypes), ``bytes, mib, mb``.
    The per-line figures are exact (rounded in print); they sum to 15,237,608
    values, about 61 MB -- no convention we know of gives 24M values, and 24M x 4 B
    is 96 MB or 91.6 MiB, not 93 (only the mixed unit 1000*1024 B gives 93.75).
    """
    s = summarize("vgg16", input_size=224, batch=1, dtype=dtype)
    isz, t = s.itemsize, s.totals
    in_vals = t.input_bytes // isz
    lines = []
    for label, layer, stated, stated_vals in LECTURE_LINES:
        exact = in_vals if layer == "input" else s[layer].activations
        lines.append({"label": label, "layer": layer, "stated": stated, "stated_values": int(stated_vals),
                      "exact_values": exact})
    lecture_sum = sum(x["exact_values"] for x in lines)
    relu_outputs = sum(x.activations for x in s.layers if x.type == "relu")

    def conv(label: str, values: int | None, nbytes: int | None = None) -> dict:
        nbytes = values * isz if nbytes is None else nbytes
        return {"label": label, "values": values, "bytes": nbytes, "mib": nbytes / MIB, "mb": nbytes / MB}

    conventions = [
        conv("lecture lines summed exactly (input + conv/pool/fc outputs; ReLU in place)", lecture_sum),
        conv("lecture lines as printed (rounded: 150K, 3.2M, ...)",
             int(sum(x["stated_values"] for x in lines))),
        conv("lecture lines summed exactly, without the input image", lecture_sum - in_vals),
        conv("ReLU outputs as separate arrays (+ input)", lecture_sum + relu_outputs),
        conv("minivgg forward: every layer output its own array (+ input)", t.activations + in_vals),
        conv("minivgg training keeps for backward (+ input; uint8/bool masks incl.)", None,
             t.backward_bytes + t.input_bytes),
        conv("lecture lines x2 ('~*2 for bwd')", 2 * lecture_sum),
    ]
    claim_bytes = LECTURE_CLAIM_VALUES * isz
    claim = {"values": LECTURE_CLAIM_VALUES, "bytes": claim_bytes, "mb": claim_bytes / MB, "mib": claim_bytes / MIB,
             "mixed_kib_mb": claim_bytes / 1024 / 1000,
             "values_for_93_mb": LECTURE_CLAIM_MB * MB // isz, "values_for_93_mib": LECTURE_CLAIM_MB * MIB // isz,
             "lines_sum": lecture_sum, "ratio_claim_to_lines": LECTURE_CLAIM_VALUES / lecture_sum,
             "kept_ratio_to_lines": (t.backward_bytes + t.input_bytes) / (lecture_sum * isz)}
    return {"lines": lines, "conventions": conventions, "claim": claim, "summary": s}


def format_lecture_memory_check(check: dict | None = None) -> str:
    """Text for :func:`lecture_memory_check`: each line, each convention, and the verdict."""
    check = lecture_memory_check() if check is None else check
    out = ["cs231n VGG-16 memory lines vs minivgg (per image, 224x224)",
           f"{'lecture line':<26} {'printed':>8} {'exact':>11}"]
    for x in check["lines"]:
        out.append(f"{x['label']:<26} {x['stated']:>8} {x['exact_values']:>11,}")
    c = check["claim"]
    out += ["", f"{'convention':<76} {'values':>11} {'MB':>8} {'MiB':>8}"]
    for v in check["conventions"]:
        vals = f"{v['values']:,}" if v["values"] is not None else "-"
        out.append(f"{v['label']:<76} {vals:>11} {v['mb']:>8.2f} {v['mib']:>8.2f}")
    out += ["",
            f"The notes claim {c['values']:,} values ('24M') = {c['bytes']:,} B = {c['mb']:.2f} MB = "
            f"{c['mib']:.2f} MiB, and call it '~= 93MB'.",
            f"* Their own lines sum to {c['lines_sum']:,} values; 24M is {c['ratio_claim_to_lines']:.2f}x that, "
            "and no counting convention above reproduces it.",
            f"* 93 MB would be {c['values_for_93_mb']:,} values, 93 MiB {c['values_for_93_mib']:,}; 24M x 4 B reads "
            f"as 93 only in the mixed unit 1000*1024 B ({c['mixed_kib_mb']:.2f}).",
            f"* '~*2 for bwd': what minivgg's training forward keeps is {c['kept_ratio_to_lines']:.2f}x the lines, "
            "not 2x -- a conv's output dies once its ReLU has copied it, the ReLU output doubles as the "
            "next conv's input, and a pool keeps 1-byte arg-maxes."]
    return "\n".join(out)
