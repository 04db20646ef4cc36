"""archspec rf: the receptive field of every layer, or where one unit of a layer looks (no torch)."""

from __future__ import annotations

import argparse

from ..core.errors import ArchspecError, printable
from .common import add_input_option, add_spec_options, analyze, print_json, shape_text, table

EXAMPLE = """\
example:
  archspec rf vgg16
  archspec rf vgg16 --layer stages.4.blocks.0.pool
  archspec rf resnet50 --layer stages.3.blocks.2.relu --unit 3,3 --json

A unit i of a layer sees input pixels [-padding + i*stride, -padding + i*stride + size - 1]
along each axis (Araujo et al., "Computing receptive fields of convolutional neural
networks", Distill 2019); its centre is -padding + i*stride + (size - 1) / 2.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rf", help="receptive field of every layer, or the input region one unit sees",
                       description="Print the receptive field (size, stride, padding per axis) of every spatial "
                                   "layer of SPEC; with --layer, the input region that one output unit of that "
                                   "layer sees and its centre in input coordinates.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name")
    add_input_option(p)
    add_spec_options(p)
    p.add_argument("--layer", metavar="NAME", help="a layer's module path, e.g. stages.3.blocks.2.relu "
                                                   "(the names `archspec summary SPEC --level layer` prints)")
    p.add_argument("--unit", metavar="I,J", help="the output unit (row, column) to locate; default: the centre one")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(run=run)


def _pair(text: str) -> tuple[int, int]:
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ArchspecError(f"--unit: expected I,J such as 3,3, got {text!r}")
    return values[0], values[1]


def locate(report, name: str, unit: tuple[int, int] | None) -> dict:
    """Where one output unit of layer `name` looks in the input."""
    layer = report.layer(name)
    if len(layer.output_shape) != 3:
        raise ArchspecError(f"layer '{name}' has a flat output ({shape_text(layer.output_shape)}); "
                            "its one unit sees the receptive field printed in the table")
    grid = layer.output_shape[1:]
    index = unit if unit is not None else tuple((n - 1) // 2 for n in grid)
    if any(not 0 <= i < n for i, n in zip(index, grid)):
        raise ArchspecError(f"--unit {index[0]},{index[1]} is outside the {grid[0]}x{grid[1]} output of '{name}'")
    rf = layer.rf
    (r0, r1), (c0, c1) = rf.region(index)
    height, width = report.input_shape[1:]
    return {
        "layer": name, "output_shape": list(layer.output_shape), "unit": list(index),
        "rf_size": list(rf.size), "rf_stride": list(rf.stride), "rf_padding": list(rf.padding),
        "rows": [r0, r1], "columns": [c0, c1],
        "rows_in_image": [max(r0, 0), min(r1, height - 1)], "columns_in_image": [max(c0, 0), min(c1, width - 1)],
        "centre": list(rf.centre(index)),
        "context": [list(c) if c is not None else None for c in rf.context],
    }


def _context_text(rf) -> str:
    if not rf.has_context:
        return ""
    return " ".join(f"{axis} {c[0]}..{c[1]}" for axis, c in zip(("rows", "cols"), rf.context) if c is not None)


def _rows(report, context: bool) -> list[list[str]]:
    rows = []
    for la in report.layers:
        if len(la.output_shape) != 3:
            continue
        centre = la.rf.centre((0, 0))
        rows.append([la.name, la.label, shape_text(la.output_shape), f"{la.rf.size[0]}x{la.rf.size[1]}",
                     f"{la.rf.stride[0]}x{la.rf.stride[1]}", f"{la.rf.padding[0]}x{la.rf.padding[1]}",
                     f"({centre[0]:g}, {centre[1]:g})"] + ([_context_text(la.rf)] if context else []))
    return rows


def run(args: argparse.Namespace) -> int:
    report = analyze(args.spec, args)
    if args.layer:
        where = locate(report, args.layer, _pair(args.unit) if args.unit else None)
        if args.json:
            print_json(where)
            return 0
        i, j = where["unit"]
        (r0, r1), (c0, c1) = where["rows"], where["columns"]
        print(printable(f"{report.name}, input {shape_text(report.input_shape)}: unit ({i}, {j}) of {args.layer} "
                        f"(output {shape_text(where['output_shape'])})"))
        print(f"  receptive field  {where['rf_size'][0]}x{where['rf_size'][1]}, stride "
              f"{where['rf_stride'][0]}x{where['rf_stride'][1]}, padding {where['rf_padding'][0]}x{where['rf_padding'][1]}")
        print(f"  sees rows {r0}..{r1} and columns {c0}..{c1} (inclusive)")
        if any(where["context"]):
            print("  (that includes the context every unit sees through a broadcast global value, e.g. an SE gate)")
        (a, b), (c, d) = where["rows_in_image"], where["columns_in_image"]
        print(f"  inside the image: rows {a}..{b}, columns {c}..{d}; the rest is padding")
        print(f"  centre at ({where['centre'][0]:g}, {where['centre'][1]:g}) in input pixels (row, column)")
        return 0
    if args.json:
        print_json({
            "name": report.name, "input_shape": list(report.input_shape),
            "receptive_field": {"size": list(report.receptive_field.size),
                                "stride": list(report.receptive_field.stride),
                                "padding": list(report.receptive_field.padding),
                                "layer": report.receptive_field_layer},
            "layers": [{"name": la.name, "op": la.op, "output_shape": list(la.output_shape),
                        "rf_size": list(la.rf.size), "rf_stride": list(la.rf.stride), "rf_padding": list(la.rf.padding),
                        "rf_context": [list(c) if c is not None else None for c in la.rf.context]}
                       for la in report.layers if len(la.output_shape) == 3],
        })
        return 0
    print(f"{report.name}: input {shape_text(report.input_shape)}")
    context = any(la.rf.has_context for la in report.layers)
    print(table(_rows(report, context), ["layer", "op", "output", "size", "stride", "padding", "unit (0,0) centre"]
                + (["context (seen by every unit)"] if context else [])))
    rf = report.receptive_field
    print(f"\nnetwork receptive field (at {printable(report.receptive_field_layer)}, before global pooling): "
          f"{rf.size[0]}x{rf.size[1]}, stride {rf.stride[0]}x{rf.stride[1]}, padding {rf.padding[0]}x{rf.padding[1]}")
    print("unit i sees input pixels [-padding + i*stride, -padding + i*stride + size - 1] along each axis")
    return 0
