"""archspec summary: per-layer shapes, parameters, MACs, memory and receptive field (no torch)."""

from __future__ import annotations

import argparse

from .common import (
    add_analysis_options,
    add_input_option,
    add_spec_options,
    analyze,
    human,
    human_bytes,
    print_json,
    shape_text,
    table,
)

EXAMPLE = """\
example:
  archspec summary specs/resnet50.yaml
  archspec summary resnet50 --input 3x160x160 --depth block
  archspec summary resnet50 --batch 32 --dtype float16 --json | jq .peak_activation_bytes
  archspec summary resnet50 --features                      # every stage's end: channels, stride, field
  archspec summary resnet50 --features --set 'features={c2: stem.maxpool, c4: stages.2}' --input 800
  archspec summary resnet50 --features --set output_stride=8
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="shapes, parameters, MACs, memory and receptive field of every layer",
                       description="Analyse SPEC from its IR alone (no weights, no torch): the output shape, "
                                   "parameters, MACs and receptive field of every layer, grouped by stem, stages "
                                   "and head, with the totals and the conventions they follow.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name")
    add_input_option(p)
    add_spec_options(p)
    add_analysis_options(p)
    p.add_argument("--depth", choices=["stage", "block", "layer"], default="stage",
                   help="one row per stage (default), per block or per layer")
    p.add_argument("--features", action="store_true",
                   help="one row per tap (the spec's `features:`, else every stage's end): channels, reduction "
                        "(stride), shape and receptive field, as a detector or segmentation head needs them")
    p.add_argument("--json", action="store_true",
                   help="print the whole report (every layer, whatever --depth) as JSON")
    p.set_defaults(run=run)


def rf_text(rf, shape) -> str:
    """`427x427/32`: the field and the step between neighbouring units (none for one unit)."""
    size, jump = rf.size, rf.jump
    text = f"{size[0]}x{size[1]}"
    if len(shape) != 3 or tuple(shape[1:]) == (1, 1):
        return text
    return f"{text}/{jump[0]}" if jump[0] == jump[1] else f"{text}/{jump[0]}x{jump[1]}"


def summary_table(report, depth: str) -> str:
    rows = []
    for name, layers in report.rows(depth):
        last = layers[-1]
        what = last.label if depth == "layer" else str(len(layers))
        rows.append([name, what, shape_text(last.output_shape), f"{sum(la.params for la in layers):,}",
                     human(sum(la.macs for la in layers)), human_bytes(sum(report.layer_bytes(la) for la in layers)),
                     rf_text(last.rf, last.output_shape)])
    return table(rows, ["name", "layer" if depth == "layer" else "layers", "output", "params", "MACs",
                        "activations", "RF/stride"], right={3, 4, 5})


def features_table(report) -> str:
    rows = [[f.name, f.layer, str(f.channels), str(f.reduction), shape_text(f.shape),
             f"{f.rf.size[0]}x{f.rf.size[1]}", f"{f.rf.padding[0]}x{f.rf.padding[1]}"] for f in report.features]
    return table(rows, ["tap", "layer", "channels", "reduction", "shape", "RF", "RF padding"], right={2, 3})


def totals_text(report) -> str:
    rf = report.receptive_field
    context = " (+ context: every unit also sees the whole map through a broadcast gate)" if rf.has_context else ""
    lines = [
        f"params       {report.params:,} (trainable {report.trainable_params:,}), buffers {report.buffers:,}",
        f"MACs         {report.macs:,} ({human(report.macs)}); FLOPs = 2 x MACs = {human(report.flops)}",
        (f"activations  {human_bytes(report.activation_bytes)} in all, forward peak "
         f"{human_bytes(report.peak_activation_bytes)} (batch {report.batch}, {report.dtype_bytes} bytes a value)"),
        (f"receptive    {rf.size[0]}x{rf.size[1]} px, stride {rf.jump[0]}x{rf.jump[1]}, padding "
         f"{rf.padding[0]}x{rf.padding[1]} at {report.receptive_field_layer}{context}"),
        f"depth        {report.depth} conv/linear layers on the longest path",
        "",
        "conventions: MACs count one fused multiply-add once, over conv and linear layers on the inference",
        "path (aux heads excluded), as torchvision's documented GFLOPS; activations are output elements x dtype",
        "bytes x batch; RF/stride is the receptive field of one output unit and the step between neighbours.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = analyze(args.spec, args)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"{report.name}: input {shape_text(report.input_shape)} -> output {shape_text(report.output_shape)}")
    if args.features:
        print(features_table(report))
        print("\nreduction: input pixels between neighbouring units; RF: the receptive field of one unit, "
              "unit i starting at -padding + i * reduction")
        return 0
    print(summary_table(report, args.depth))
    print()
    print(totals_text(report))
    return 0
