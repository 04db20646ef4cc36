"""archspec validate: check specs without building anything (no torch)."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import ArchspecError, SpecError, printable
from ..core.limits import DEFAULT_MAX_PARAMS, DEFAULT_MAX_PARAMS_TEXT
from .common import add_input_option, add_spec_options, load, param_limit, print_json

EXAMPLE = """\
example:
  archspec validate specs/*.yaml
  archspec validate my_net.yaml --set num_classes=10
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check specs and report every problem with its location",
                       description="Parse, resolve and validate each SPEC, including the shape checks, "
                                   "without allocating weights. Exit code 2 if any spec is wrong.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="+", metavar="SPEC")
    add_input_option(p)
    add_spec_options(p)
    p.add_argument("--max-params", type=param_limit, default=DEFAULT_MAX_PARAMS, metavar="N",
                   help=f"refuse networks with more parameters than this (default: {DEFAULT_MAX_PARAMS_TEXT})")
    p.add_argument("--json", action="store_true", help="print one result per spec as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import check

    failed = False
    results = []
    from ..progress import track

    for path in track(args.specs, "validate", label=str):
        try:
            spec = load(path, args)
            report = check(spec, max_params=args.max_params)
            result = {"spec": path, "ok": True, "params": report.params}
            if spec.notes:
                result["notes"] = spec.notes
            results.append(result)
            if not args.json:
                print(printable(f"{path}: ok ({spec.name}, {report.params:,} parameters)"))
                for note in spec.notes:
                    print(printable(note))
        except SpecError as exc:
            if args.debug:
                raise
            failed = True
            results.append({"spec": path, "ok": False, "errors": [str(p) for p in exc.problems]})
            if not args.json:
                print(str(exc), file=sys.stderr)
        except ArchspecError as exc:
            if args.debug:
                raise
            failed = True
            results.append({"spec": path, "ok": False, "errors": [f"{path}: {exc}"]})
            if not args.json:
                print(printable(f"{path}: {exc}"), file=sys.stderr)
    if args.json:
        print_json(results)
    return 2 if failed else 0
