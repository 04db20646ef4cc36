"""archspec compare: several networks side by side, optionally plotted (no torch)."""

from __future__ import annotations

import argparse

from ..core.formatting import shape_text
from .common import (
    add_analysis_options,
    check_output_names,
    add_input_option,
    add_spec_options,
    human,
    human_bytes,
    note,
    overrides,
    print_json,
    table,
)

EXAMPLE = """\
examples:
  archspec compare resnet18 resnet50 vgg16
  archspec compare specs/*.yaml --input 3x224x224 --plot zoo.png
  archspec compare resnet50 efficientnet_b0 mobilenet_v3_large --metric top1.csv --plot acc.svg \\
      --title "ImageNet top-1 against cost"
  archspec compare 'resnet*' 'efficientnet*' --metric acc@1 --plot acc.png
                       the published top-1 of each network's default weights, no CSV needed

--metric FILE.csv adds columns of your own, joined on the network name (header row first):
  name,top1
  resnet50,76.13
  efficientnet_b0,77.69
--metric acc@1 (or acc@1,acc@5; miou, pixel_acc for segmentation) takes the numbers published with
each network's default weights (its spec's `weights:`). Either way, the first column goes on the
y axis of the plot unless --y names another. The Pareto front joins the networks no other beats
on both axes: fewer parameters, MACs or bytes are better, a metric column is higher-better unless --lower names it (latency, say).
"""

AXES = "macs, params, activations, peak, depth, rf, or a --metric column"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare networks: parameters, MACs, receptive field, depth, memory",
                       description="Analyse each SPEC (no weights, no torch) and print one row per network: "
                                   "parameters, MACs, receptive field, depth and activation memory. --plot draws "
                                   "them as points coloured by family, with the Pareto front (needs matplotlib).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, zoo names or zoo patterns ('resnet*')")
    add_input_option(p)
    add_spec_options(p)
    add_analysis_options(p)
    p.add_argument("--metric", metavar="FILE.csv|NAME", help="numbers of your own (top-1 accuracy, latency), a CSV with a "
                                                              "`name` column, or published ones by name (acc@1, "
                                                              "acc@5, miou); they join the table, --json and the plot")
    p.add_argument("--plot", metavar="OUT.png", help="draw the networks on two axes (format from the extension: "
                                                     "png, svg, pdf)")
    p.add_argument("--x", default="macs", metavar="AXIS", help=f"the plot's x axis: {AXES} (default: macs)")
    p.add_argument("--y", metavar="AXIS", help="the plot's y axis (default: the first --metric column, else params)")
    p.add_argument("--title", help="the plot's title (default: names the two axes)")
    p.add_argument("--lower", action="append", default=[], metavar="COLUMN",
                   help="a --metric column where lower is better, for the Pareto front (repeatable)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..comparison import axis_key, check_lower, compare, expand, is_published, published_metrics, read_metrics
    from ..plugins import load_plugins

    check_output_names(args.plot)
    given = [flag for flag, value in (("--x", args.x != "macs"), ("--y", args.y), ("--title", args.title),
                                      ("--lower", args.lower)) if value]
    if given and not args.plot:
        from ..core.errors import ArchspecError

        raise ArchspecError(f"{', '.join(given)} shape the plot: add --plot OUT.png")
    load_plugins(args.plugins)
    args.specs = expand(args.specs)
    if args.metric is not None and is_published(args.metric):
        metrics = published_metrics(args.specs, args.metric, **overrides(args))
    else:
        metrics = read_metrics(args.metric) if args.metric is not None else None  # a bad file, a missing matplotlib or a bad
    check_output_names(args.plot)  # again, now that the metrics file is read: it is an input
    if args.plot:                                                   # suffix is reported before any analysis
        from ..plotting import plot_format, require_matplotlib

        require_matplotlib()
        plot_format(args.plot)
        columns = metrics.columns if metrics else []
        x = axis_key(args.x, columns)
        y = axis_key(args.y or (columns[0] if columns else "params"), columns)
        check_lower(args.lower, columns)
    rows = compare(args.specs, batch=args.batch, dtype=args.dtype, **overrides(args))
    missing = []
    if metrics:
        for r in rows:
            found = metrics.of(r)
            r.update(found)
            if len(found) < len(metrics.columns):
                missing.append(r["name"])
        if missing:
            note(f"note: {metrics.source} lacks some numbers for {', '.join(missing)}")
    if args.plot:
        from ..plotting import plot_comparison

        plot_comparison(rows, args.plot, protect=args.specs, x=x, y=y, title=args.title, lower=args.lower)
    if args.json:
        print_json(rows)
    else:
        extra = metrics.columns if metrics else []
        print(table(
            [[r["name"], r["family"], f"{r['params']:,}", human(r["macs"]),
              f"{r['receptive_field'][0]}x{r['receptive_field'][1]}", str(r["depth"]), human_bytes(r["activation_bytes"]),
              human_bytes(r["peak_activation_bytes"]), shape_text(r["input_shape"])]
             + [f"{r[c]:g}" if c in r else "-" for c in extra] for r in rows],
            ["name", "family", "params", "MACs", "RF", "depth", "activations", "peak", "input", *extra],
            right={2, 3, 4, 5, 6, 7, *range(9, 9 + len(extra))}))
    if args.plot:
        note(f"wrote {args.plot}")
    return 0

