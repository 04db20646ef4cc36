"""archspec compare: several networks side by side, optionally plotted as MACs against parameters (no torch)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ArchspecError
from .common import (
    add_analysis_options,
    add_input_option,
    add_spec_options,
    analyze,
    human,
    human_bytes,
    print_json,
    table,
)

EXAMPLE = """\
example:
  archspec compare resnet18 resnet50 vgg16
  archspec compare specs/*.yaml --input 3x224x224 --plot zoo.png
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare networks: parameters, MACs, receptive field, depth, memory",
                       description="Analyse each SPEC (no weights, no torch) and print one row per network: "
                                   "parameters, MACs, receptive field, depth and activation memory. --plot places "
                                   "each network on MACs against parameters (needs matplotlib).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or zoo names")
    add_input_option(p)
    add_spec_options(p)
    add_analysis_options(p)
    p.add_argument("--plot", metavar="OUT.png", help="write a scatter plot of MACs against parameters "
                                                     "(format from the extension: png, svg, pdf)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=run)


def row(spec: str, report) -> dict:
    rf = report.receptive_field
    return {
        "spec": spec, "name": report.name, "input_shape": list(report.input_shape), "params": report.params,
        "macs": report.macs, "flops": report.flops, "receptive_field": list(rf.size), "rf_stride": list(rf.jump),
        "depth": report.depth, "activation_bytes": report.activation_bytes,
        "peak_activation_bytes": report.peak_activation_bytes,
    }


def plot(rows: list[dict], path: str) -> None:
    """MACs (x) against parameters (y), one labelled point per network; written atomically."""
    try:
        import matplotlib
    except ImportError:
        raise ArchspecError("--plot needs matplotlib: pip install 'archspec[plot]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from ..io import write_with

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf", "jpg", "jpeg"):
        raise ArchspecError(f"--plot: unknown image format '.{fmt}'; use .png, .svg or .pdf")
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    xs = [r["macs"] / 1e9 for r in rows]
    ys = [r["params"] / 1e6 for r in rows]
    ax.scatter(xs, ys, color="tab:blue")
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    # Networks often span decades (LeNet to EfficientNet-B7): log axes keep them apart.
    for values, axis in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if min(values) > 0 and max(values) / min(values) > 20:
            axis("log")
    ax.set_xlabel("GMACs (multiply-adds per image)")
    ax.set_ylabel("parameters (millions)")
    ax.set_title("archspec compare")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format=fmt))
    finally:
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from ..progress import track

    rows = [row(spec, analyze(spec, args)) for spec in track(args.specs, "compare", label=str)]
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print_json(rows)
        return 0
    print(table(
        [[r["name"], f"{r['params']:,}", human(r["macs"]), f"{r['receptive_field'][0]}x{r['receptive_field'][1]}",
          str(r["depth"]), human_bytes(r["activation_bytes"]), human_bytes(r["peak_activation_bytes"]),
          "x".join(map(str, r["input_shape"]))] for r in rows],
        ["name", "params", "MACs", "RF", "depth", "activations", "peak", "input"], right={1, 2, 3, 4, 5, 6}))
    if args.plot:
        print(f"\nwrote {args.plot}")
    return 0
