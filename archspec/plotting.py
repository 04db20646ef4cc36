"""The compare plot: one point per network, coloured by family, the Pareto front, labels that never overlap.

Labels are placed, not nudged: each goes to the first spot around its point (nearest first,
then further out with a leader line) whose box meets no other label, no point and no edge of
the axes. A name with no room left is replaced by a number, and the numbers are spelled out in
a key under the plot. Crowded points choose first. Text sizes are measured once with
matplotlib's renderer, so the boxes checked are the boxes drawn.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .comparison import QUANTITIES, lower_is_better, pareto
from .core.errors import ArchspecError

FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")
FONT_SIZE = 8
MARKER_PT = 5.0  # half the side of the box kept clear around each point, in points
NAME_RADII_PT = (2, 6, 12, 20, 28)  # distances tried for a name, nearest first; further out a number reads better
NUMBER_RADII_PT = (2, 6, 12, 20, 28, 40, 56, 80, 110, 150, 200, 300)
LEADER_FROM_PT = 12  # a label this far out gets a thin line to its point


def require_matplotlib() -> None:
    """Fail before any analysis when matplotlib is missing (MissingDependency: exit code 3)."""
    from .core.deps import require

    require("matplotlib", feature="a plot (compare --plot)")


def plot_format(path: str | Path) -> str:
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ArchspecError(f"unknown image format '.{fmt}' for a plot; end the file name in .png, .svg or .pdf")
    return fmt


@dataclass
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def meets(self, other: "Box") -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, other: "Box") -> bool:
        return self.x0 >= other.x0 and self.x1 <= other.x1 and self.y0 >= other.y0 and self.y1 <= other.y1


def plain(text: str) -> str:
    """`text` shown as it is: matplotlib reads the part between two `$` as mathtext (and fails on
    `$\\frac{$`); every text from the input (names, metric columns, titles) goes through here."""
    return str(text).replace("$", "\\$")


def _title(key: str) -> str:
    return QUANTITIES[key][0] if key in QUANTITIES else plain(key)


def _scale(key: str) -> float:
    return QUANTITIES[key][1] if key in QUANTITIES else 1.0


def comparison_figure(rows: Sequence[dict[str, Any]], *, x: str = "macs", y: str = "params", title: str | None = None,
                      lower: Iterable[str] = (), dpi: int = 150):
    """The matplotlib figure of `rows` (from `comparison.compare`), and the label annotations placed on it.

    Rows lacking a number for x or y are left out. Returns (figure, labels, numbered) where
    `numbered` lists the names shown as numbers, in key order.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [r for r in rows if _finite(r.get(x)) and _finite(r.get(y))]
    if not rows:
        raise ArchspecError(f"nothing to plot: no network has both {x} and {y}")
    fig = plt.figure(figsize=(9, 6.5), dpi=dpi)
    ax = fig.add_axes((0.1, 0.1, 0.86, 0.82))
    xs = [r[x] / _scale(x) for r in rows]
    ys = [r[y] / _scale(y) for r in rows]
    families = sorted({r["family"] for r in rows})
    cmap = matplotlib.colormaps["tab10" if len(families) <= 10 else "tab20"]
    colour = {f: cmap(i % cmap.N) for i, f in enumerate(families)}
    for f in families:
        chosen = [i for i, r in enumerate(rows) if r["family"] == f]
        ax.scatter([xs[i] for i in chosen], [ys[i] for i in chosen], s=(1.6 * MARKER_PT) ** 2 * 0.6,
                   color=colour[f], label=plain(f), zorder=3, edgecolors="white", linewidths=0.5)
    front = pareto(rows, x, y, lower)
    if len(front) > 1:
        ax.plot([r[x] / _scale(x) for r in front], [r[y] / _scale(y) for r in front], color="0.35",
                linestyle="--", linewidth=1, zorder=2, label="Pareto front")
    for values, set_scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if min(values) > 0 and max(values) / min(values) > 20:  # LeNet to EfficientNet-B7 spans decades
            set_scale("log")
    ax.margins(0.1)
    ax.set_xlabel(_title(x) + (" (lower is better)" if lower_is_better(x, lower) else " (higher is better)"))
    ax.set_ylabel(_title(y) + (" (lower is better)" if lower_is_better(y, lower) else " (higher is better)"))
    ax.set_title(plain(title) if title is not None else f"{_title(y)} against {_title(x)}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title="family", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=FONT_SIZE, frameon=False)
    ax.set_xlim(ax.get_xlim())  # freeze the limits: placement works in display coordinates
    ax.set_ylim(ax.get_ylim())
    labels, numbered = _place_labels(fig, ax, [plain(r["name"]) for r in rows], xs, ys)
    if numbered:
        key = "   ".join(f"{i}\u00a0{name}" for i, name in enumerate(numbered, start=1))  # never split an entry
        ax.text(0.0, -0.1, "\n".join(textwrap.wrap(key, 110)), transform=ax.transAxes, va="top", ha="left",
                fontsize=FONT_SIZE)
    return fig, labels, numbered


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _place_labels(fig, ax, names: list[str], xs: list[float], ys: list[float]):
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0  # pixels per point
    points = ax.transData.transform(list(zip(xs, ys)))
    frame = ax.get_window_extent(renderer)
    area = Box(frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    half = MARKER_PT * px
    markers = [Box(px_ - half, py - half, px_ + half, py + half) for px_, py in points]
    sizes: dict[str, tuple[float, float]] = {}

    def size(text: str) -> tuple[float, float]:
        if text not in sizes:
            probe = ax.text(0, 0, text, fontsize=FONT_SIZE)
            extent = probe.get_window_extent(renderer)
            sizes[text] = (extent.width, extent.height)
            probe.remove()
        return sizes[text]

    def crowd(i: int) -> int:
        near = 60 * px
        return sum(1 for j, p in enumerate(points) if j != i and abs(p[0] - points[i][0]) < near
                   and abs(p[1] - points[i][1]) < near)

    order = sorted(range(len(names)), key=lambda i: (-crowd(i), names[i]))
    placed: list[Box] = []
    labels, numbered = [], []

    def spot(i: int, text: str, radii: Sequence[float], avoid_markers: bool):
        w, h = size(text)
        for r in radii:
            for angle in _angles(r):
                dx, dy = math.cos(angle) * r, math.sin(angle) * r
                ha = "left" if dx > 0.5 else "right" if dx < -0.5 else "center"
                va = "bottom" if dy > 0.5 else "top" if dy < -0.5 else "center"
                ox = points[i][0] + dx * px + {"left": half, "right": -half, "center": 0}[ha]
                oy = points[i][1] + dy * px + {"bottom": half, "top": -half, "center": 0}[va]
                x0 = {"left": ox, "right": ox - w, "center": ox - w / 2}[ha]
                y0 = {"bottom": oy, "top": oy - h, "center": oy - h / 2}[va]
                box = Box(x0, y0, x0 + w, y0 + h)
                if not box.inside(area) or any(box.meets(b) for b in placed):
                    continue
                if avoid_markers and any(box.meets(m) for m in markers):
                    continue
                return box, (ox - points[i][0]) / px, (oy - points[i][1]) / px, ha, va, r
        return None

    for i in order:
        found = spot(i, names[i], NAME_RADII_PT, True)
        text = names[i]
        if found is None:
            text = str(len(numbered) + 1)
            found = spot(i, text, NUMBER_RADII_PT, True) or spot(i, text, NUMBER_RADII_PT, False)
            if found is None:
                raise ArchspecError(f"no room left on the plot to label {names[i]}")
            numbered.append(names[i])
        box, ox, oy, ha, va, r = found
        placed.append(box)
        # A line to the point when the label is far from it, or nearer another point than its own.
        leader = r >= LEADER_FROM_PT or min(range(len(points)), key=lambda j: _distance(box, points[j])) != i
        arrow = {"arrowstyle": "-", "color": "0.5", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2} if leader else None
        labels.append(ax.annotate(text, (xs[i], ys[i]), xytext=(ox, oy), textcoords="offset points", ha=ha, va=va,
                                  fontsize=FONT_SIZE, arrowprops=arrow, zorder=4, annotation_clip=False))
    return labels, numbered


def _distance(box: Box, point: Sequence[float]) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def _angles(radius: float) -> list[float]:
    """Directions to try at a distance, right first then round: 8 near the point, 16 further out."""
    n = 8 if radius < 20 else 16
    order = sorted(range(n), key=lambda k: (min(k, n - k), k))  # 0, 1, n-1, 2, n-2, ...: right side first
    return [2 * math.pi * k / n for k in order]


def plot_comparison(rows: Sequence[dict[str, Any]], path: str | Path, protect: Sequence[str | Path] = (),
                    **options: Any) -> Path:
    """Write the compare plot to `path` (png, svg or pdf, from the suffix), atomically; never over
    a file in `protect` (the specs compared)."""
    from matplotlib import pyplot as plt

    from .core.atomic import write_with

    fmt = plot_format(path)
    fig, _, _ = comparison_figure(rows, **options)
    try:
        # bbox_inches="tight" grows the canvas to the legend and key outside the axes, never moving the axes.
        write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight"), protect=protect)
    finally:
        plt.close(fig)
    return Path(path)
