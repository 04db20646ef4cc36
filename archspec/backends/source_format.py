"""Lay out Python call expressions the way black and `ruff format` do.

Generated source should look hand-formatted, and a formatter run over it should change
nothing. Only the shapes code export writes are covered: calls, lists and `def`
signatures whose arguments are atoms or further calls. The rules are black's: a call
that fits stays on one line; else its arguments move to one indented line; else one
argument per line with a trailing comma (a lone argument is split inside instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 88  # black's and ruff's default line length
INDENT = "    "


@dataclass
class Call:
    """`func(args..., key=value...)`; `brackets="[]"` with an empty func makes a list."""

    func: str | Call  # a Call when the callee is itself a call (`getattr(self.a, "0")(x)`)
    args: list[Expr] = field(default_factory=list)
    kwargs: list[tuple[str, Expr]] = field(default_factory=list)
    brackets: str = "()"


Expr = Call | str  # a string is an atom, already source


def _items(call: Call) -> list[tuple[str, Expr]]:
    return [("", a) for a in call.args] + [(f"{k}=", v) for k, v in call.kwargs]


def flat(expr: Expr) -> str:
    if isinstance(expr, str):
        return expr
    inner = ", ".join(key + flat(value) for key, value in _items(expr))
    return f"{flat(expr.func)}{expr.brackets[0]}{inner}{expr.brackets[1]}"


def render(expr: Expr, depth: int = 0, prefix: str = "", suffix: str = "") -> list[str]:
    """The lines of `prefix + expr + suffix` at `depth` levels of indentation."""
    pad = INDENT * depth
    line = pad + prefix + flat(expr) + suffix
    if len(line) <= WIDTH or isinstance(expr, str):
        return [line]
    if isinstance(expr.func, Call):
        # The callee is a call too: black splits at the last brackets when the line up to them fits,
        # else it leaves them whole and splits the callee's: `getattr(\n    getattr(a, "1"), "0"\n)(x)`.
        callee = flat(expr.func)
        if len(pad + prefix + callee + expr.brackets[0]) > WIDTH:
            trailer = expr.brackets[0] + ", ".join(k + flat(v) for k, v in _items(expr)) + expr.brackets[1]
            return render(expr.func, depth, prefix, trailer + suffix)
        expr = Call(callee, expr.args, expr.kwargs, expr.brackets)
    items = _items(expr)
    head = pad + prefix + expr.func + expr.brackets[0]
    tail = pad + expr.brackets[1] + suffix
    body = INDENT * (depth + 1) + ", ".join(key + flat(value) for key, value in items)
    # black keeps the arguments of a call on one line when they fit there, but always splits a
    # display (list, dict) of several items one per line
    if len(body) <= WIDTH and not (expr.func == "" and len(items) > 1):
        return [head, body, tail]
    if len(items) == 1:
        key, value = items[0]
        return [head, *render(value, depth + 1, key), tail]
    lines = [head]
    for key, value in items:
        lines += render(value, depth + 1, key, ",")
    return [*lines, tail]
