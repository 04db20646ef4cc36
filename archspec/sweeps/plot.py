"""The sweep plot: the population's scatter of two figures with its Pareto front, and the
empirical distribution function of a figure (the RegNet paper's EDF: the share of the
population at or below each value)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..comparison import pareto
from ..core.errors import ArchspecError
from .figures import FIGURES

# Figures where more is better (the rest are costs): the Pareto front minimises x and maximises these.
HIGHER_IS_BETTER = ("receptive_field",)
_SCALES = {"params": (1e6, "M"), "buffers": (1e3, "K"), "macs": (1e6, "M"), "flops": (1e6, "M"),
           "activation_bytes": (1 << 20, "MiB"), "peak_activation_bytes": (1 << 20, "MiB")}


def lower(figure: str) -> bool:
    return figure not in HIGHER_IS_BETTER


def front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """The rows no other row beats on both figures (costs lower, receptive field higher), by x."""
    return pareto(rows, x, y, lower=[f for f in (x, y) if lower(f)])


def edf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The empirical distribution function: sorted values and the share at or below each."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def check_figure(name: str, option: str) -> str:
    if name not in FIGURES:
        from ..core.errors import unknown_name

        raise ArchspecError(f"{option}: {unknown_name('figure', name, FIGURES)}")
    return name


def _label(figure: str) -> str:
    scale = _SCALES.get(figure)
    text = figure.replace("_", " ")
    return f"{text} ({scale[1]})" if scale else text


def _scaled(rows: Sequence[dict[str, Any]], figure: str) -> list[float]:
    scale = _SCALES.get(figure, (1, ""))[0]
    return [r[figure] / scale for r in rows]


def front_steps(x: str) -> str:
    """How the front's staircase runs between two of its points, ordered by x: a front point is
    the best y there is until the next point, where x is a cost (`post`: hold y until the next
    network, which costs more); where more x is better, the best y at x is the next point's (`pre`)."""
    return "post" if lower(x) else "pre"


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path, *, x: str = "macs", y: str = "receptive_field",
               edf_of: str | None = None, title: str = "") -> None:
    """Write the figure (format from the suffix: png, svg, pdf)."""
    from ..core.atomic import write_with

    fig = sweep_figure(rows, x=x, y=y, edf_of=edf_of, title=title)
    from matplotlib import pyplot as plt  # after sweep_figure chose the Agg backend

    fmt = Path(path).suffix.lstrip(".").lower()
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format=fmt), suffix=f".{fmt}")
    finally:
        plt.close(fig)


def sweep_figure(rows: Sequence[dict[str, Any]], *, x: str = "macs", y: str = "receptive_field",
                 edf_of: str | None = None, title: str = "") -> Any:
    """The matplotlib figure `plot_sweep` writes: the scatter with its Pareto front, and the EDF."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from ..plotting import plain

    if not rows:
        raise ArchspecError("nothing to plot: the sweep kept no network")
    edf_of = edf_of or x
    fig, (scatter, dist) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    scatter.scatter(_scaled(rows, x), _scaled(rows, y), s=6, alpha=0.5, color="tab:blue", linewidths=0,
                    label=f"{len(rows):,} networks")
    best = front(rows, x, y)
    scatter.step(_scaled(best, x), _scaled(best, y), where=front_steps(x), color="tab:red",
                 linewidth=1.2, label=f"Pareto front ({len(best)})")
    scatter.set_xlabel(_label(x) + (", lower is better" if lower(x) else ", higher is better"))
    scatter.set_ylabel(_label(y) + (", lower is better" if lower(y) else ", higher is better"))
    scatter.grid(True, alpha=0.3)
    scatter.legend(loc="best", fontsize=8)
    values, shares = edf(_scaled(rows, edf_of))
    dist.step(values, shares, where="post", color="tab:blue")
    dist.set_xlabel(_label(edf_of))
    dist.set_ylabel("share of networks at or below")
    dist.set_ylim(0, 1.02)
    dist.grid(True, alpha=0.3)
    dist.set_title("empirical distribution (EDF)", fontsize=10)
    if title:
        fig.suptitle(plain(title), fontsize=11)
    fig.tight_layout()
    return fig
