"""archspec list: the zoo with parameter counts (from analysis; no torch)."""

from __future__ import annotations

import argparse

from .common import human, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the zoo networks with parameters and MACs",
                       description="List the networks in the zoo (the specs/ folder installed with archspec).",
                       epilog="example:\n  archspec list\n  archspec build resnet50",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..analysis import analyze_network
    from ..spec.load import load_spec

    rows, data = [], []
    from ..progress import track

    for name in track(zoo.names(), "list: analysing the zoo", label=str):
        spec = load_spec(zoo.path_of(name))
        report = analyze_network(spec.network())
        input_text = "x".join(map(str, report.input_shape))
        data.append({"name": name, "params": report.params, "macs": report.macs, "input_shape": list(report.input_shape),
                     "description": spec.model.description})
        rows.append([name, f"{report.params:,}", human(report.macs), input_text, spec.model.description[:60]])
    if args.json:
        print_json(data)
    else:
        print(table(rows, ["name", "params", "MACs", "input", "description"], right={1, 2}))
    return 0
