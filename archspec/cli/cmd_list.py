"""archspec list: the zoo with parameter counts (from analysis; no torch)."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from ..core.formatting import shape_text
from .common import human, print_json, table

EXAMPLE = """\
examples:
  archspec list                      every zoo network
  archspec list 'resnet*' vgg16      names matching a shell-style pattern (quote it from the shell)
  archspec list '*_bn' --json
  archspec list 'efficientnet*' --metric acc@1    the published top-1 of each default weights
  archspec build resnet50            then use a name as SPEC in any command
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the zoo networks with parameters and MACs",
                       description="List the networks in the zoo (the specs/ folder installed with archspec), "
                                   "with parameters, MACs, input size and description.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("patterns", nargs="*", metavar="PATTERN",
                   help="only names matching one of these patterns (* any text, ? one character, [ab] a or b)")
    p.add_argument("--metric", metavar="NAME", help="add published metrics of each network's default weights as "
                                                     "columns: acc@1, acc@5 (classifiers), miou, pixel_acc "
                                                     "(segmentation); comma-separated for several")
    p.add_argument("--json", action="store_true", help="print as JSON (with every published metric of the default weights)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..api import analyze
    from ..comparison import default_weights, published_metrics
    from ..progress import track

    rows, data = [], []
    for pattern in args.patterns:  # a pattern matching nothing is a typo more often than not
        if not zoo.names(pattern):
            from ..core.errors import ArchspecError, did_you_mean

            raise ArchspecError(f"no zoo network matches '{pattern}'{did_you_mean(pattern, zoo.names())}; "
                                f"`archspec list` shows them all")
    names = zoo.names(*args.patterns)
    metrics = published_metrics(names, args.metric) if args.metric else None
    columns = metrics.columns if metrics else []
    for name in track(names, "list: analysing the zoo", label=str):
        spec = zoo.load_spec(name)
        report = analyze(spec)
        input_text = shape_text(report.input_shape)
        entry = default_weights(spec)
        data.append({"name": name, "params": report.params, "macs": report.macs, "input_shape": list(report.input_shape),
                     "description": spec.model.description, "weights": entry.name if entry else None,
                     "metrics": dict(entry.metrics) if entry else {}})
        found = metrics.values.get(name, {}) if metrics else {}
        rows.append([name, f"{report.params:,}", human(report.macs), input_text,
                     *[f"{found[c]:g}" if c in found else "-" for c in columns], spec.model.description])
    if args.json:
        print_json(data)
        return 0
    print(wrapped_table(rows, ["name", "params", "MACs", "input", *columns, "description"],
                        right={1, 2, *range(4, 4 + len(columns))}))
    return 0


def wrapped_table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    """The table with its last column wrapped at word boundaries to fit the terminal (100 columns off one)."""
    width = shutil.get_terminal_size((100, 24)).columns
    used = sum(max(len(r[i]) for r in rows + [header]) + 2 for i in range(len(header) - 1))
    room = max(30, width - used - 1)
    out: list[list[str]] = []
    for r in rows:
        lines = textwrap.wrap(r[-1], room) or [""]
        out.append(r[:-1] + [lines[0]])
        out += [[""] * (len(r) - 1) + [line] for line in lines[1:]]
    return table(out, header, right)
