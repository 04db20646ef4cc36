"""A report as people read it: the table `archspec summary` prints, its HTML for Jupyter, a DataFrame."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..core.errors import printable
from ..core.formatting import html_table, human, human_bytes, shape_text, table

if TYPE_CHECKING:
    from .report import LayerInfo, Report

LEVELS = ("stage", "block", "layer")
RIGHT = {3, 4, 5}  # the numeric columns of the table


def rf_text(rf, shape) -> str:
    """`427x427/32`: the field and the step between neighbouring units (none for one unit)."""
    size, jump = rf.size, rf.stride
    text = f"{size[0]}x{size[1]}"
    if len(shape) != 3 or tuple(shape[1:]) == (1, 1):
        return text
    return f"{text}/{jump[0]}" if jump[0] == jump[1] else f"{text}/{jump[0]}x{jump[1]}"


def table_rows(report: Report, level: str) -> tuple[list[list[str]], list[str]]:
    rows = []
    for name, layers in report.rows(level):
        last = layers[-1]
        what = last.label if level == "layer" else str(len(layers))
        macs, memory = human(sum(la.macs for la in layers)), human_bytes(sum(report.layer_bytes(la) for la in layers))
        if all(la.group == "aux" for la in layers):  # training only: not in the totals' MACs and activations
            macs, memory = f"({macs})", f"({memory})"
        rows.append([name, what, shape_text(last.output_shape), f"{sum(la.params for la in layers):,}",
                     macs, memory, rf_text(last.rf, last.output_shape)])
    header = ["name", "layer" if level == "layer" else "layers", "output", "params", "MACs", "activations", "RF/stride"]
    return rows, header


def summary_table(report: Report, level: str = "stage") -> str:
    rows, header = table_rows(report, level)
    return table(rows, header, right=RIGHT)


def outputs_text(report: Report) -> str:
    """What the module returns: `output 1000`, or its ordered dict of taps `{out 21x520x520, aux 21x520x520}`."""
    if report.returns_features:
        return "{" + ", ".join(f"{f.name} {shape_text(f.shape)}" for f in report.features) + "}"
    return f"output {shape_text(report.output_shape)}"


def heading(report: Report) -> str:
    """The first line; names from the spec (taps) with control characters escaped, as in the table."""
    return printable(f"{report.name}: input {shape_text(report.input_shape)} -> {outputs_text(report)}")


def totals_text(report: Report) -> str:
    rf = report.receptive_field
    context = " (+ context: every unit also sees the whole map, through a broadcast gate or attention)" if rf.has_context else ""
    lines = [
        (f"params       {report.params:,} (trainable {report.trainable_params:,}"
         + (f", frozen {report.frozen_params:,}" if report.frozen_params else "") + f"), buffers {report.buffers:,}"),
        f"MACs         {report.macs:,} ({human(report.macs)}); FLOPs = 2 x MACs = {human(report.flops)}",
        (f"activations  {human_bytes(report.activation_bytes)} in all, forward peak "
         f"{human_bytes(report.peak_activation_bytes)} (batch {report.batch}, {report.dtype_bytes} bytes a value)"),
        (f"receptive    {rf.size[0]}x{rf.size[1]} px, stride {rf.stride[0]}x{rf.stride[1]}, padding "
         f"{rf.padding[0]}x{rf.padding[1]} at {report.receptive_field_layer}{context}"),
        f"depth        {report.depth} conv/linear layers on the longest path",
    ]
    return printable("\n".join(lines), keep="\n")  # the receptive field's layer is a name from the spec


CONVENTIONS_TEXT = """\
conventions: MACs count one fused multiply-add once, over conv and linear layers on the inference
path (aux heads excluded: their rows show them in parentheses), as torchvision's documented GFLOPS;
activations are output elements x dtype bytes x batch; RF/stride is the receptive field of one output
unit and the step between neighbours."""


def report_text(report: Report, level: str = "stage", conventions: bool = False) -> str:
    parts = [heading(report), summary_table(report, level), "", totals_text(report)]
    if conventions:
        parts += ["", CONVENTIONS_TEXT]
    return "\n".join(parts)


def report_html(report: Report, level: str = "stage") -> str:
    rows, header = table_rows(report, level)
    totals = "<br>".join(html.escape(line).replace("  ", "&nbsp;&nbsp;") for line in totals_text(report).splitlines())
    return (f"<div><b>{html.escape(heading(report))}</b>{html_table(rows, header, right=RIGHT)}"
            f"<p style='font-family:monospace'>{totals}</p></div>")


def layer_record(report: Report, la: LayerInfo) -> dict[str, Any]:
    """One layer as plain data: what `--json` prints and `to_dataframe()` tabulates."""
    window = la.window
    return {
        "name": la.name, "label": la.label, "op": la.op, "group": la.group, "stage": la.stage, "block": la.block,
        "input_shapes": [list(s) for s in la.input_shapes],
        "input_shape": list(la.input_shapes[0]) if la.input_shapes else None,
        "output_shape": list(la.output_shape),
        "kernel": list(window.kernel) if window else None, "stride": list(window.stride) if window else None,
        "padding": list(window.padding) if window else None, "dilation": list(window.dilation) if window else None,
        "groups": window.groups if window else None,
        "params": la.params, "buffers": la.buffers, "macs": la.macs, "activation_bytes": report.layer_bytes(la),
        "rf_size": list(la.rf.size), "rf_stride": list(la.rf.stride), "rf_padding": list(la.rf.padding),
        "rf_context": [list(c) if c is not None else None for c in la.rf.context],
    }


def report_dataframe(report: Report, level: str = "layer"):
    """A pandas DataFrame: one row per layer (level="layer"), or per block / stage with summed numbers."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("Report.to_dataframe() needs pandas: pip install pandas "
                          "(report.to_dict()['layers'] gives the same rows as plain dicts)") from None
    if level not in LEVELS:
        raise ValueError(f"level is one of {', '.join(LEVELS)}, not {level!r}")
    if level == "layer":
        return pd.DataFrame([layer_record(report, la) for la in report.layers]).set_index("name")
    records = []
    for name, layers in report.rows(level):
        last = layers[-1]
        records.append({"name": name, "layers": len(layers), "output_shape": list(last.output_shape),
                        "params": sum(la.params for la in layers), "macs": sum(la.macs for la in layers),
                        "activation_bytes": sum(report.layer_bytes(la) for la in layers),
                        "rf_size": list(last.rf.size), "rf_stride": list(last.rf.stride)})
    return pd.DataFrame(records).set_index("name")
