"""archspec sweep: sample a design space, keep the networks within bounds, write the population (no torch)."""

from __future__ import annotations

import argparse

from .common import check_output_directory, check_output_names, human, note, print_json, say

EXAMPLE = """\
examples:
  archspec sweep docs/examples/regnet_space.yaml -o regnets.csv
  archspec sweep space.yaml -n 500 --seed 3 -j 2 -o population.jsonl --emit kept/
  archspec sweep space.yaml --plot front.png --x macs --y receptive_field --edf params

A space file names a base spec, samplers over its keys and bounds on analysed figures:
  extends: regnet_y_like.yaml
  samples: 2000
  seed: 0
  sample:
    vars: {regnet: {depth: [12, 28], w_0: [8, 256], w_a: [8, 256], w_m: [2, 3], group_width: [1, 32], stages: 4}}
    vars.se: {choice: [0, 0.25]}
  constraints:
    macs: {max: 400M}
See docs/sweeps.md. Exit status 2 when no sample is kept (the reasons are counted).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="sample a design space: thousands of networks, kept within bounds",
                       description="Draw networks from a space file (a base spec, samplers over its keys, "
                                   "constraints on analysed figures), analyse each one (no torch) and keep those that "
                                   "build and meet the constraints. Samples whose spec repeats an earlier one are "
                                   "counted, not kept. The same seed gives the same table, whatever -j.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("space", metavar="SPACE.yaml", help="the space file")
    p.add_argument("-n", "--samples", type=int, metavar="N", help="networks to keep (default: the space file's)")
    p.add_argument("--seed", type=int, help="random seed (default: the space file's)")
    p.add_argument("--max-draws", type=int, metavar="N", help="give up after N draws (default: the space file's, "
                                                               "else 10 x samples)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes: 1 to the number of CPUs (4 where there are fewer; default: 1)")
    p.add_argument("-o", "--output", metavar="TABLE",
                   help="write the table: .csv or .jsonl, one row per kept network: the sampled values, then params, "
                        "buffers, macs, flops, activation_bytes, peak_activation_bytes, depth, receptive_field, "
                        "output_stride")
    p.add_argument("--emit", metavar="DIR", help="write each kept network as a spec DIR/NAME.yaml (archspec build "
                                                 "takes it as it is)")
    p.add_argument("--plot", metavar="OUT.png", help="draw the population: a scatter of --x and --y with its Pareto "
                                                     "front, and the EDF of --edf (png, svg or pdf; needs matplotlib)")
    p.add_argument("--x", default="macs", metavar="FIGURE", help="the scatter's x axis (default: macs)")
    p.add_argument("--y", default="receptive_field", metavar="FIGURE",
                   help="the scatter's y axis (default: receptive_field)")
    p.add_argument("--edf", metavar="FIGURE", help="the figure whose distribution is drawn (default: --x)")
    p.add_argument("--json", action="store_true", help="print the summary and the rows as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ArchspecError
    from ..sweeps import load_space, run_sweep
    from ..sweeps.engine import check_jobs
    from ..sweeps.output import check_emit, emit_specs, table_format, write_table

    check_jobs(args.jobs, "-j")
    check_output_names(args.output, args.plot)
    check_output_directory(args.emit)
    given = [flag for flag, value in (("--x", args.x != "macs"), ("--y", args.y != "receptive_field"),
                                      ("--edf", args.edf)) if value]
    if given and not args.plot:
        raise ArchspecError(f"{', '.join(given)} shape the plot: add --plot OUT.png")
    if args.output:
        table_format(args.output)
    if args.plot:  # a missing matplotlib, a bad suffix or an unknown figure is reported before any work
        from ..plotting import plot_format, require_matplotlib
        from ..sweeps.plot import check_figure

        require_matplotlib()
        plot_format(args.plot)
        for option in ("x", "y", "edf"):
            if getattr(args, option):
                check_figure(getattr(args, option), f"--{option}")
    space = load_space(args.space, samples=args.samples, seed=args.seed, max_draws=args.max_draws)
    check_output_names(args.output, args.plot)  # again, now that the inputs (space, base spec, parents) are read
    if args.emit:
        check_emit(args.emit, space, (args.output, args.plot))
    result = run_sweep(space, jobs=args.jobs, progress=True)
    # the result first: a write that fails (a full disk) loses no more than that file
    if args.json:
        print_json({**result.summary(), "rows": result.rows})
    else:
        say(_summary(result))
    if args.output:
        write_table(result, args.output)
        note(f"wrote {args.output}")
    if args.emit:
        emit_specs(result, args.emit)
        note(f"wrote {len(result.specs)} specs in {args.emit}")
    if args.plot:
        from ..sweeps.plot import plot_sweep

        plot_sweep(result.rows, args.plot, x=args.x, y=args.y, edf_of=args.edf, title=space.name)
        note(f"wrote {args.plot}")
    return 0


def _summary(result) -> str:
    s = result.summary()
    lines = [f"{s['space']}: kept {s['kept']:,} of {s['samples']:,} asked; {s['draws']:,} drawn, {s['evaluated']:,} "
             f"analysed in {s['seconds']:.2f} s ({s['evaluated_per_s']:,.0f} analysed/s, seed {s['seed']})"]
    if s["kept"] < s["samples"]:
        lines.append("  fewer than asked: the draws ran out (raise --max-draws, or widen the space)")
    for reason, n in s["rejected"].items():
        lines.append(f"  rejected {n:>7,}  {reason}")
    rows = result.rows
    for figure in ("params", "macs", "receptive_field"):
        values = sorted(r[figure] for r in rows)
        mid = values[len(values) // 2]
        lines.append(f"  {figure:<16} {human(values[0]):>8} .. {human(values[-1]):>8}  (median {human(mid)})")
    return "\n".join(lines)
