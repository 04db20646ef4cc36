"""What a sweep writes: its table (CSV or JSON lines) and the kept specs (YAML)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ArchspecError
from ..core.atomic import output_directory, output_target, write_atomic
from ..core.frozen import thaw  # tuples as lists, so that YAML writes plain sequences
from ..spec.resolve import literal_document
from .engine import SweepResult, kept_name
from .space import Space

TABLE_FORMATS = ("csv", "jsonl")


def table_format(path: str | Path) -> str:
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in TABLE_FORMATS:
        raise ArchspecError(f"-o: a table is written as .csv or .jsonl, not '{Path(path).suffix or path}'")
    return fmt


def table_text(result: SweepResult, fmt: str) -> str:
    """The rows as CSV (lists written as JSON, `[48, 104, 208, 440]`) or as JSON lines."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, allow_nan=False) + "\n" for row in result.rows)  # strict JSON
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = result.columns  # worked out from every row: once, not once a row
    writer.writerow([cell_text(c) for c in columns])
    for row in result.rows:
        cells = [row.get(c, "") for c in columns]
        writer.writerow([cell_text(json.dumps(v) if isinstance(v, (list, dict)) else v) for v in cells])
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell_text(value: Any) -> Any:
    """A CSV cell a spreadsheet shows and never runs: text starting with `=`, `+`, `-`, `@`, a tab or a
    carriage return gets a leading `'` (OWASP's advice on CSV injection); numbers are written as
    they are (-0.5 is a number to a spreadsheet, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_table(result: SweepResult, path: str | Path) -> None:
    write_atomic(path, table_text(result, table_format(path)), protect=result.space.locator.files)


def spec_text(spec: dict[str, Any], source: str) -> str:
    """A kept sample as a YAML spec: the resolved document (no extends, no vars), which
    `archspec build` takes as it is."""
    header = f"# Sampled from {source} by `archspec sweep`: the base spec resolved with this sample's values.\n"
    return header + yaml.safe_dump(thaw(literal_document(spec)), sort_keys=False, default_flow_style=None, width=120)


def check_emit(directory: str | Path, space: Space, outputs: tuple[str | None, ...] = ()) -> None:
    """`--emit DIRECTORY` before the sweep, as `emit_specs` would refuse it after: not one of the
    command's other outputs, and no input of the sweep (the space file, its base spec) inside it
    under a name a kept spec may take (NAME_00042.yaml)."""
    folder = output_directory(directory)
    where = os.path.realpath(folder)
    for output in outputs:
        if output is not None and os.path.realpath(output) == where:
            raise ArchspecError(f"{output}: is the --emit directory too; give the outputs different names")
    example = kept_name(space, 0)
    pattern = re.compile(re.escape(example[: -len("00000")]) + r"\d{5,}\.yaml")
    for item in space.locator.files:
        path = os.path.realpath(item)
        if os.path.dirname(path) == where and pattern.fullmatch(os.path.basename(path)):
            raise ArchspecError(f"{item}: is an input of this command, and --emit {directory} writes kept specs "
                                f"named like it ({example}.yaml, ...); an input is never overwritten, emit into "
                                "another directory")


def emit_specs(result: SweepResult, directory: str | Path) -> list[Path]:
    """Write each kept spec to DIRECTORY/NAME.yaml; returns the paths. The space file and the
    specs it extends are never overwritten."""
    directory = output_directory(directory)  # Path('') would be the current folder; a file or a pipe is refused
    inputs = result.space.locator.files
    paths = [directory / f"{spec['name']}.yaml" for spec in result.specs]
    for path in paths:  # every name checked before the first is written
        output_target(path, inputs)
    for spec, path in zip(result.specs, paths):
        write_atomic(path, spec_text(spec, result.space.source), protect=inputs)
    return paths

