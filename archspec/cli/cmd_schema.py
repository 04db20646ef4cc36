"""archspec schema: print (or write) the JSON Schema of the spec language (no torch)."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """\
example:
  archspec schema > archspec.schema.json
  archspec schema -o schemas/archspec.schema.json
  archspec schema --space -o schemas/archspec-space.schema.json    (space files of archspec sweep)

Point your editor at it with a first line in the spec:
  # yaml-language-server: $schema=../schemas/archspec.schema.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of specs, for editors",
                       description="Print the JSON Schema (draft 2020-12) of a spec file, generated from the models "
                                   "and from every registered op and block family.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE (atomically) instead of stdout")
    p.add_argument("--space", action="store_true", help="the schema of space files (archspec sweep) instead of specs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .common import check_output_names, note

    check_output_names(args.output)
    if args.space:
        from ..sweeps.space import space_schema_text

        text = space_schema_text()
    else:
        from ..api import schema_text

        text = schema_text()
    if args.output:
        from ..core.atomic import write_atomic

        write_atomic(args.output, text)
        note(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
