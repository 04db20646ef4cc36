"""Write `schemas/archspec.schema.json` (specs) and `schemas/archspec-space.schema.json` (space
files of `archspec sweep`) from the models: `python tools/gen_schema.py [--check]`.

Run it after adding or changing an op, a block family, a spec key or a sampler; the test suite
fails while a file is stale. `--check` only reports whether they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archspec.core.atomic import write_atomic
from archspec.spec.schema import schema_text
from archspec.sweeps.space import space_schema_text

TARGET = ROOT / "schemas" / "archspec.schema.json"
SPACE_TARGET = ROOT / "schemas" / "archspec-space.schema.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the file differs from the models")
    p.add_argument("-o", "--output", type=Path, default=TARGET, help=f"where to write (default: {TARGET})")
    p.add_argument("--space-output", type=Path, default=SPACE_TARGET,
                   help=f"where to write the space files' schema (default: {SPACE_TARGET})")
    args = p.parse_args(argv)
    status = 0
    for path, text in ((args.output, schema_text()), (args.space_output, space_schema_text())):
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            print(f"{path} is up to date")
        elif args.check:
            print(f"{path} is stale: run python tools/gen_schema.py", file=sys.stderr)
            status = 1
        else:
            write_atomic(path, text)
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
