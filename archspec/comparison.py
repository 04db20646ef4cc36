"""Several networks side by side: one row of numbers each, metrics of one's own, families, Pareto fronts.

    rows = compare(["resnet18", "resnet50", "efficientnet_b0"])
    metrics = read_metrics("top1.csv")                   # columns of one's own, joined on the name
    for r in rows: r.update(metrics.of(r))
    front = pareto(rows, x="macs", y="top1")            # the rows no other row beats on both axes

The plot itself is `archspec.plotting.plot_comparison`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.errors import ArchspecError, unknown_name
from .core.reading import InputFileError, read_regular

MAX_METRICS_BYTES = 1 << 24  # 16 MiB: a table of numbers per network, not a data set

# Quantities of the analysis that can go on an axis: key -> (axis title, scale, lower is better)
QUANTITIES: dict[str, tuple[str, float, bool]] = {
    "macs": ("GMACs (multiply-adds per image)", 1e9, True),
    "params": ("parameters (millions)", 1e6, True),
    "activation_bytes": ("activation memory (MiB)", 1 << 20, True),
    "peak_activation_bytes": ("peak activation memory (MiB)", 1 << 20, True),
    "depth": ("depth (conv and linear layers)", 1, True),
    "rf": ("receptive field (pixels)", 1, False),
}
ALIASES = {"activations": "activation_bytes", "peak": "peak_activation_bytes", "receptive_field": "rf"}


ROW_KEYS = ("spec", "name", "family", "input_shape", "params", "macs", "flops", "receptive_field", "rf", "rf_stride",
            "depth", "activation_bytes", "peak_activation_bytes")


def row(spec: Any, report: Any, family: str) -> dict[str, Any]:
    """The numbers `compare` prints for one analysed network (the keys of ROW_KEYS)."""
    rf = report.receptive_field
    values = (str(spec), report.name, family, list(report.input_shape), report.params, report.macs, report.flops,
              list(rf.size), rf.size[0], list(rf.stride), report.depth, report.activation_bytes,
              report.peak_activation_bytes)
    return dict(zip(ROW_KEYS, values, strict=True))


def family(spec: Any) -> str:
    """A network's family: the first word of the spec at the root of its `extends` chain.

    resnext50_32x4d extends resnet50, so its family is `resnet`; vgg16_bn's is `vgg`;
    mobilenet_v3_large's `mobilenet`. A spec that extends nothing is its own root.
    """
    chains = getattr(getattr(spec, "locator", None), "chains", {}) or {}
    longest = max(chains.values(), key=len, default=())
    root = Path(longest[-1]).stem if longest and not longest[-1].startswith("<") else spec.name
    word = re.match(r"[A-Za-z]+", root)
    return word.group(0).lower() if word else root


def compare(specs: Iterable[Any], *, input: Any = None, batch: int = 1, dtype: str = "float32",
            **overrides: Any) -> list[dict[str, Any]]:
    """Analyse each spec (no torch) and return one row of numbers per network, with a progress bar."""
    from .api import analyze, input_overrides
    from .spec.load import load_spec
    from .progress import track

    if input is not None:
        overrides.update(input_overrides(input))
    specs = list(specs)
    rows = []
    for spec in track(specs, "compare", label=str):
        located = load_spec(spec, **overrides)
        rows.append(row(spec, analyze(located, batch=batch, dtype=dtype), family(located)))
    return rows


@dataclass
class Metrics:
    """Numbers of one's own from a CSV: `values[name][column]`; `columns` in the file's order."""

    source: str
    columns: list[str]
    values: dict[str, dict[str, float]]

    def of(self, r: dict[str, Any]) -> dict[str, float]:
        """The metrics of a compare row: by network name, else by the SPEC as given, else its file stem."""
        for key in (r["name"], r["spec"], Path(r["spec"]).stem):
            if key in self.values:
                return self.values[key]
        return {}


def read_metrics(path: str | Path) -> Metrics:
    """A CSV of one's own numbers, `name,top1,...` (header first).

    The name is a network's name (`resnet50`) or the SPEC as given on the command line.
    Empty cells are missing values; any other cell must be a finite number.
    """
    if isinstance(path, str) and not path.strip():  # Path('') would be the current folder
        raise ArchspecError("the metrics file name is empty")
    path = Path(path)
    try:
        data = read_regular(path, MAX_METRICS_BYTES)  # a named pipe or a device is refused, not read
    except InputFileError as exc:
        raise ArchspecError(f"cannot read the metrics file {path}: {exc.reason}") from None
    if len(data) > MAX_METRICS_BYTES:
        raise ArchspecError(f"the metrics file {path} is larger than {MAX_METRICS_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArchspecError(f"the metrics file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    if "name" not in columns:
        raise ArchspecError(f"{path}:1: the first row must name the columns, one of them `name` "
                            f"(e.g. `name,top1`); found {', '.join(columns) or 'nothing'}")
    metrics = [c for c in columns if c != "name"]
    for column in dict.fromkeys(columns):
        if columns.count(column) > 1:
            raise ArchspecError(f"{path}:1: the column `{column}` is named twice")
        if column != "name" and (column in ROW_KEYS or column in ALIASES):
            raise ArchspecError(f"{path}:1: `{column}` is one of compare's own columns (its number would be "
                                f"replaced); call yours another name, e.g. `my_{column}`")
    if not metrics:
        raise ArchspecError(f"{path}:1: no column besides `name`; add one, e.g. `name,top1`")
    values: dict[str, dict[str, float]] = {}
    lines: dict[str, int] = {}
    try:
        rows = list(enumerate(reader, start=2))
    except csv.Error as exc:  # a cell over the csv module's field limit (128 KiB), a stray NUL
        raise ArchspecError(f"{path}:{reader.line_num + 1}: not a table of numbers ({exc})") from None  # the line being read
    for line, record in rows:
        name = (record.get("name") or "").strip()
        if not name:
            continue
        if name in lines:
            raise ArchspecError(f"{path}:{line}: {name} has a row already (line {lines[name]})")
        lines[name] = line
        found = {}
        for column in metrics:
            cell = (record.get(column) or "").strip()
            if not cell:
                continue
            try:
                found[column] = float(cell)
            except ValueError:
                raise ArchspecError(f"{path}:{line}: {column} of {name} is {cell!r}, not a number") from None
            if not math.isfinite(found[column]):
                raise ArchspecError(f"{path}:{line}: {column} of {name} is {cell}, not a finite number")
        values[name] = found
    if not values:
        raise ArchspecError(f"{path}: no rows after the header")
    return Metrics(str(path), metrics, values)


def axis_key(name: str, metrics: Sequence[str] = ()) -> str:
    """The row key an axis name refers to (`activations` -> `activation_bytes`), or a clear error."""
    key = ALIASES.get(name, name)
    if key in QUANTITIES or key in metrics:
        return key
    from .core.errors import unknown_name

    raise ArchspecError(unknown_name("axis", name, [*QUANTITIES, *ALIASES, *metrics]))


def check_lower(names: Iterable[str], metrics: Sequence[str], option: str = "--lower") -> list[str]:
    """`names`, each a metric column (compare's own figures have a fixed direction); a clear error otherwise."""
    from .core.errors import unknown_name

    names = list(names)
    for name in names:
        if name not in metrics:
            known = unknown_name("metric column", name, metrics) if metrics else \
                f"unknown metric column '{name}': there is no --metric file"
            raise ArchspecError(f"{option}: {known}")
    return names


def lower_is_better(key: str, lower: Iterable[str] = ()) -> bool:
    """Costs (parameters, MACs, memory, depth) are lower-better; metric columns higher-better unless named in `lower`."""
    if key in QUANTITIES:
        return QUANTITIES[key][2]
    return key in set(lower)


def pareto(rows: Sequence[dict[str, Any]], x: str, y: str, lower: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The rows that no other row beats on both axes (ties on both keep both), sorted by x.

    A row beats another when it is at least as good on x and y and better on one; "good" is
    lower for costs and higher for metric columns (unless named in `lower`).
    """
    lower = set(lower)
    sx = 1 if lower_is_better(x, lower) else -1
    sy = 1 if lower_is_better(y, lower) else -1
    points = sorted(((sx * r[x], sy * r[y], i) for i, r in enumerate(rows)
                     if _number(r.get(x)) and _number(r.get(y))))
    # Sorted by x: a point is beaten by a point of smaller x that is at least as good on y, or by
    # one of the same x that is better on y; so one pass keeps the best y seen at smaller x.
    front: list[dict[str, Any]] = []
    best_before = math.inf
    start = 0
    while start < len(points):
        end = start
        while end < len(points) and points[end][0] == points[start][0]:
            end += 1
        group_best = points[start][1]  # the group is sorted by y too
        if group_best < best_before:
            front += [rows[i] for a, b, i in points[start:end] if b == group_best]
        best_before = min(best_before, group_best)
        start = end
    return sorted(front, key=lambda r: r[x])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def expand(specs: Iterable[str]) -> list[str]:
    """SPEC arguments with zoo patterns expanded (`'resnet*'` -> resnet101, resnet152, ...); a file
    or a name is kept as given; a pattern that matches no zoo network is an error."""
    from .spec import catalog
    from .core.errors import did_you_mean

    out: list[str] = []
    for spec in specs:
        if isinstance(spec, str) and any(c in spec for c in "*?[") and not Path(spec).exists():
            found = catalog.names(spec)
            if not found:
                raise ArchspecError(f"no zoo network matches '{spec}'{did_you_mean(spec, catalog.names())}; "
                                    "`archspec list` shows them all")
            out += [n for n in found if n not in out]
        else:
            out.append(spec)
    return out


def default_weights(spec: Any) -> Any:
    """The spec's default weights entry (a whole-network one, not a backbone's), or None."""
    return next((e for e in spec.model.weights if e.default and not e.backbone), None)


def is_published(metric: str) -> bool:
    """Whether `--metric` names published metrics (`acc@1`, `acc@1,acc@5`) rather than a CSV file."""
    return not metric.lower().endswith(".csv") and not Path(metric).exists()


def published_metrics(specs: Iterable[Any], names: str, **overrides: Any) -> Metrics:
    """The metrics `names` (comma-separated: acc@1, acc@5, miou, pixel_acc) of each spec's default
    weights, as `read_metrics` would read them from a CSV; a name no spec publishes is an error."""
    from .spec.load import load_spec

    columns = [n.strip() for n in names.split(",") if n.strip()]
    values: dict[str, dict[str, float]] = {}
    known: set[str] = set()
    for spec in specs:
        located = load_spec(spec, **overrides)
        entry = default_weights(located)
        if entry is None:
            continue
        known |= set(entry.metrics)
        values[located.name] = {c: entry.metrics[c] for c in columns if c in entry.metrics}
    for column in columns:
        if column not in known:
            raise ArchspecError(unknown_name("published metric (or a CSV file)", column, known) if known else
                                f"'{column}' is no CSV file, and none of these networks publishes weights with metrics")
    return Metrics("the default weights", columns, values)
