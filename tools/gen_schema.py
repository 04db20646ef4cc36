"""Write `schemas/archspec.schema.json` from the models: `python tools/gen_schema.py [--check]`.

Run it after adding or changing an op, a block family or a spec key; the test suite fails
while the file is stale. `--check` only reports whether it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archspec.core.atomic import write_atomic
from archspec.spec.schema import schema_text

TARGET = ROOT / "schemas" / "archspec.schema.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the file differs from the models")
    p.add_argument("-o", "--output", type=Path, default=TARGET, help=f"where to write (default: {TARGET})")
    args = p.parse_args(argv)
    text = schema_text()
    current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run python tools/gen_schema.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    if current == text:
        print(f"{args.output} is up to date")
        return 0
    write_atomic(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
