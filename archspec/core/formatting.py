"""Numbers and tables as people read them: 25.56M, 9.2 MiB, 3x224x224, aligned columns.

Shared by the analysis report, diagrams and the command line (a core module: it imports nothing of archspec).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import printable


def human(n: float) -> str:
    """1234567 -> 1.23M."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    """1536 -> 1.5 KiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def shape_text(shape: Iterable[Any]) -> str:
    return "x".join(str(s) for s in shape)


def table(rows: list[list[str]], header: list[str], right: Iterable[int] = frozenset()) -> str:
    """Columns padded to their widest cell; the columns in `right` aligned right (numbers). Control
    characters are escaped: cells and headers may come from input files (a metrics CSV)."""
    right = set(right)
    rows, header = [[printable(str(c)) for c in r] for r in rows], [printable(str(c)) for c in header]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = (str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def html_table(rows: Sequence[Sequence[Any]], header: Sequence[str], right: Iterable[int] = frozenset(),
               caption: str = "") -> str:
    """The same table as HTML (for Jupyter's `_repr_html_`), every cell escaped."""
    right = set(right)

    def cells(row: Sequence[Any], tag: str) -> str:
        return "".join(f'<{tag} style="text-align:{"right" if i in right else "left"}">{html.escape(str(c))}</{tag}>'
                       for i, c in enumerate(row))

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{head}<thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>"
