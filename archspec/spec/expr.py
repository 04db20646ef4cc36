"""A small, safe evaluator for `${...}` expressions in specs.

Specs may compute values (`${num_classes}`, `${width * 2}`, `${convs[1]}`,
`${make_divisible(32 * width, 8)}`). Python's `eval` would let a spec run code, so
expressions are parsed with `ast` and only a whitelist of node types is walked:
literals, names, indexing, attribute access on mappings, arithmetic, comparisons,
conditionals and a few pure functions (`round`, `floor`, `ceil`, `min`, `max`, `log`,
`make_divisible`, ...). Results are bounded in size: `**` checks the size of its result
before computing it, so `10**10**10` is an error, not a hang.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import reprlib
from typing import Any
from collections.abc import Callable, Mapping

from ..core import memo as memos
from ..core.errors import ArchspecError

INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
MAX_EXPR_CHARS = 500
MAX_RESULT_ITEMS = 10_000
MAX_ABS_INT = 10**15


class ExprError(ArchspecError, ValueError):
    pass


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never below 90% of `value`.

    This is the rule of the MobileNet and EfficientNet reference code (torchvision's
    `_make_divisible`), which compound scaling must reproduce exactly.
    """
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def list_of(items: int) -> int:
    """`items`, the length of a list a helper is about to build, if within MAX_RESULT_ITEMS: every
    helper that makes a list asks here before it allocates (`split_channels(10**9, 10**9)`)."""
    if items > MAX_RESULT_ITEMS:
        raise ValueError(f"result too large: {items:,} items, more than {MAX_RESULT_ITEMS:,}")
    return items


def split_channels(channels: int, parts: int) -> list[int]:
    """`channels` cut into `parts` groups as equal as can be, the remainder to the first: the
    rule of mixed-kernel depthwise convolutions (MixNet; timm's `_split_channels`)."""
    if (not isinstance(channels, int) or not isinstance(parts, int) or isinstance(parts, bool)
            or parts < 1 or parts > channels):
        raise ValueError(f"split_channels needs 1 <= parts <= channels, got {channels} channels, {parts} parts")
    list_of(parts)
    sizes = [channels // parts] * parts
    sizes[0] += channels - sum(sizes)
    return sizes


def _range(*bounds: int) -> list[int]:
    """`range(n)` or `range(start, stop[, step])` as a list, for `for:` items."""
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        raise ValueError("range takes integers")
    values = range(*bounds)
    list_of(len(values))
    return list(values)


MAX_ROUND_DIGITS = 20
MAX_VAR_DEPTH = 64  # variables referring to variables, as deep as this


def _round(value: float, ndigits: int | None = None) -> float:
    """`round`, with the digits bounded: `round(5, -10**15)` would compute 10**(10**15)."""
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS):
        raise ValueError(f"the number of digits must be an integer within +-{MAX_ROUND_DIGITS}")
    return round(value, ndigits)


def _log(value: float, base: float | None = None) -> float:
    """`log(x)` (natural) or `log(x, base)`; a ValueError (a located message) outside the domain."""
    return math.log(value) if base is None else math.log(value, base)


def _power(base: Any, exponent: Any) -> Any:
    """`base ** exponent` for numbers, refused before it is computed when the result would exceed
    MAX_ABS_INT (an integer power costs time in the number of digits: `9**9**9` would hang)."""
    if isinstance(base, bool) or isinstance(exponent, bool) or not all(
            isinstance(v, (int, float)) for v in (base, exponent)):
        raise ExprError("'**' works on numbers only")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > math.log10(MAX_ABS_INT) + 1:
        raise ExprError(f"number too large: {_short(base)} ** {_short(exponent)} exceeds {MAX_ABS_INT}")
    if base == 0 and exponent < 0:
        raise ExprError("0 cannot be raised to a negative power")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise ExprError("a negative number to a fractional power is not a real number")
    try:
        return base ** exponent
    except OverflowError as exc:
        raise ExprError(f"'**': {exc}") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "round": _round,
    "min": min,
    "max": max,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "len": len,
    "log": _log,
    "make_divisible": make_divisible,
    "split_channels": split_channels,
    "range": _range,
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def value_size(value: Any, memo: dict[int, tuple[Any, int]] | None = None) -> int:
    """The size of `value` as printing or comparing it walks it: every item of every nested
    list or mapping, a shared list counted each time it appears, a string by its characters.
    Counting stops just past MAX_RESULT_ITEMS, and `memo` (by identity) makes `[[x] * 100] * 100`
    cost its distinct lists, not their 10,000 expanded items."""
    if isinstance(value, str):
        return max(1, len(value))
    if not isinstance(value, (list, tuple, dict)):
        return 1
    memo = {} if memo is None else memo
    hit = memo.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    total = 1
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    for item in items:
        total += value_size(item, memo)
        if total > MAX_RESULT_ITEMS:
            break
    memo[id(value)] = (value, total)  # the entry keeps `value` alive, so its id stays its own
    return total


def _bounded(value: Any, sizes: dict[int, tuple[Any, int]]) -> Any:
    """`value`, if within the limits at every level of nesting (not just the top); `sizes`: the
    memo of `value_size`."""
    if type(value) is int and -MAX_ABS_INT <= value <= MAX_ABS_INT:  # the usual case, first
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"the result is not a finite number ({value})")
    if isinstance(value, (int, float)) and abs(value) > MAX_ABS_INT:
        raise ExprError(f"number too large: more than {MAX_ABS_INT}")
    if isinstance(value, (str, list, tuple, dict)) and value_size(value, sizes) > MAX_RESULT_ITEMS:
        raise ExprError(f"result too large: more than {MAX_RESULT_ITEMS} items in all")
    return value


class _Evaluator:
    def __init__(self, lookup: Callable[[str], Any], sizes: dict[int, tuple[Any, int]] | None = None):
        self.lookup = lookup
        self.sizes: dict[int, tuple[Any, int]] = {} if sizes is None else sizes

    def eval(self, node: ast.AST) -> Any:
        method = _METHODS.get(type(node))
        if method is None:
            raise ExprError(f"'{type(node).__name__}' is not allowed in an expression")
        return self.bounded(method(self, node))

    def size(self, value: Any) -> int:
        return value_size(value, self.sizes)

    def bounded(self, value: Any) -> Any:
        return _bounded(value, self.sizes)

    def _Expression(self, node: ast.Expression) -> Any:
        return self.eval(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, (int, float, str, bool)) and node.value is not None:
            raise ExprError(f"constant {node.value!r} is not allowed")
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        if node.id in ("null", "None"):
            return None
        return self.lookup(node.id)

    def _List(self, node: ast.List) -> list:
        return [self.eval(e) for e in node.elts]

    def _Tuple(self, node: ast.Tuple) -> list:
        return [self.eval(e) for e in node.elts]

    def _Subscript(self, node: ast.Subscript) -> Any:
        container = self.eval(node.value)
        key = self.eval(node.slice)
        try:
            return container[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise ExprError(f"cannot index {_short(container)} with {key!r}: {exc}") from None

    def _Attribute(self, node: ast.Attribute) -> Any:
        container = self.eval(node.value)
        if isinstance(container, Mapping) and node.attr in container:
            return container[node.attr]
        raise ExprError(f"no key '{node.attr}' in {_short(container)}")

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExprError(f"operator '{type(node.op).__name__}' is not allowed")
        left, right = self.eval(node.left), self.eval(node.right)
        if isinstance(node.op, ast.Mod) and not isinstance(left, (int, float)):
            raise ExprError("'%' works on numbers only (string formatting is not supported)")
        if isinstance(node.op, ast.Mult):
            seq, count = (left, right) if isinstance(left, (str, list)) else (right, left)
            if isinstance(seq, (str, list)) and isinstance(count, int) and count * self.size(seq) > MAX_RESULT_ITEMS:
                raise ExprError(f"result too large: more than {MAX_RESULT_ITEMS} items in all")
        try:
            return op(left, right)
        except (TypeError, ZeroDivisionError, OverflowError) as exc:
            raise ExprError(str(exc)) from None

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and not isinstance(value, (int, float)):
            raise ExprError(f"'{'-' if isinstance(node.op, ast.USub) else '+'}' needs a number, got {_short(value)}")
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        if isinstance(node.op, ast.Not):
            return not value
        raise ExprError(f"operator '{type(node.op).__name__}' is not allowed")

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise ExprError(f"comparison '{type(op_node).__name__}' is not allowed")
            right = self.eval(right_node)
            try:
                if not op(left, right):
                    return False
            except TypeError as exc:
                raise ExprError(str(exc)) from None
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        """Python's `and`/`or`: the deciding operand itself, so `${width or 1}` gives a number."""
        value: Any = None
        for operand in node.values:
            value = self.eval(operand)
            if bool(value) != isinstance(node.op, ast.And):
                return value
        return value

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def _Call(self, node: ast.Call) -> Any:
        available = ", ".join(sorted(FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"only the functions {available} can be called")
        if node.func.id not in FUNCTIONS:
            raise ExprError(f"function '{node.func.id}' is not available; use one of {available}")
        if node.keywords:
            raise ExprError("keyword arguments are not supported")
        args = [self.eval(a) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
            raise ExprError(f"{node.func.id}(): {exc}") from None


# Each node type's method, e.g. ast.Name: _Evaluator._Name (looked up for every node evaluated).
_METHODS: dict[type, Callable[[_Evaluator, Any], Any]] = {
    getattr(ast, name[1:]): method for name, method in vars(_Evaluator).items()
    if name[:1] == "_" and name[1:2].isupper() and isinstance(getattr(ast, name[1:], None), type)}

_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 4, 30, 30


def _short(value: Any) -> str:
    """A bounded repr for messages: never walks more than a few items of a big value."""
    text = _REPR.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(tree: ast.AST) -> None:
    """Refuse the whole expression up front if any part of it is not allowed, taken branch or not."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)):
            continue  # Load, Add, Lt, And...: checked where they are used
        if not hasattr(_Evaluator, f"_{type(node).__name__}"):
            raise ExprError(f"'{type(node).__name__}' is not allowed in an expression")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExprError(f"'.{node.attr}' is not allowed (names starting with '_' are private)")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            available = ", ".join(sorted(FUNCTIONS))
            raise ExprError(f"function '{name}' is not available; use one of {available}" if name else
                            f"only the functions {available} can be called")


def evaluate(expression: str, lookup: Callable[[str], Any], memo: bool = False,
             sizes: dict[int, tuple[Any, int]] | None = None) -> Any:
    """Evaluate one expression; names are resolved through `lookup` (which raises ExprError).

    Evaluation is pure, so with `memo` a result is remembered for the expression and the
    values (and types) of the names it uses, when those are plain scalars: a YAML block
    evaluates the same expressions with the same few parameters for every block, spec and
    sweep sample. `memo` looks every name up first, so it is for a `lookup` that only reads
    values (a block's parameters), not one that evaluates them (spec variables).

    `sizes`: `value_size`'s memo, shared by the expressions of one document (whose values do not
    change while it is resolved), so that a list variable is measured once, not at every use.
    """
    tree, names, plain = _parsed(expression)
    if plain is not None and not memo:  # `name` or `name[3]`: one step, no evaluator
        try:
            return plain(lookup, {} if sizes is None else sizes)
        except RecursionError:  # a lookup that evaluates variables naming variables, too deep for the stack
            raise ExprError("expression nested too deeply") from None
    key = _result_key(expression, names, lookup) if memo else None
    if key is not None and (hit := _RESULTS.get(key)) is not memos.MISS:
        return hit
    try:
        evaluator = _Evaluator(lookup, sizes)
        value = plain(lookup, evaluator.sizes) if plain is not None else evaluator.eval(tree.body)  # the Expression only wraps it
    except RecursionError:
        raise ExprError("expression nested too deeply") from None
    if key is not None:
        _RESULTS.put(key, value)
    return value


_RESULTS: memos.Memo[Any] = memos.Memo("spec.expressions", 16384)
_SCALARS = (int, str, bool, type(None))


def _result_key(expression: str, names: tuple[str, ...], lookup: Callable[[str], Any]) -> tuple | None:
    """(expression, (type, value) of each name), or None when a name is unknown (it may sit in a
    branch not taken) or its value is not a plain scalar (a list could be changed later)."""
    parts: list[Any] = [expression]
    for name in names:
        try:
            value = lookup(name)
        except Exception:
            return None
        if isinstance(value, float):
            parts.append((float, repr(value)))  # -0.0 == 0.0, but str() tells them apart
        elif isinstance(value, _SCALARS):
            parts.append((type(value), value))
        else:
            return None
    return tuple(parts)


def expression_names(expression: str) -> tuple[str, ...]:
    """The names an expression reads (not its functions, not true/false/null); raises ExprError
    when it does not parse or uses what is not allowed."""
    return _parsed(expression)[1]


_Plain = Callable[[Callable[[str], Any], dict[int, tuple[Any, int]]], Any]  # (lookup, value_size's memo) -> value


@memos.function("spec.expression_trees", 4096)
def _parsed(expression: str) -> tuple[ast.Expression, tuple[str, ...], _Plain | None]:
    """The checked syntax tree of an expression, the names it reads and its `_plain` steps (or None),
    made once per text (the evaluator only reads the tree): a spec's blocks, and every sample of a
    sweep, evaluate the same few texts again."""
    if len(expression) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid expression '{expression.strip()}': {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression too complex") from None
    _check(tree)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    functions = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return tree, tuple(sorted(names - functions - _CONSTANT_NAMES)), _plain(tree.body)


_CONSTANT_NAMES = {"true", "True", "false", "False", "null", "None"}


def _plain(body: ast.expr) -> _Plain | None:
    """The steps `_Evaluator` takes for the commonest expressions, `name` and `name[number]` (a
    sweep's RegNet stages read `${widths[2]}`), as one function: the same lookup, bounds and error,
    without walking the tree node by node. None for any other expression."""
    if type(body) is ast.Name and body.id not in _CONSTANT_NAMES:
        name = body.id
        return lambda lookup, sizes: _bounded(lookup(name), sizes)
    if not (type(body) is ast.Subscript and type(body.value) is ast.Name and body.value.id not in _CONSTANT_NAMES
            and type(body.slice) is ast.Constant and type(body.slice.value) is int
            and -MAX_ABS_INT <= body.slice.value <= MAX_ABS_INT):
        return None
    name, key = body.value.id, body.slice.value

    def item(lookup: Callable[[str], Any], sizes: dict[int, tuple[Any, int]]) -> Any:
        container = _bounded(lookup(name), sizes)
        try:
            value = container[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise ExprError(f"cannot index {_short(container)} with {key!r}: {exc}") from None
        return _bounded(value, sizes)

    return item


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(text: str, lookup: Callable[[str], Any], memo: bool = False,
               sizes: dict[int, tuple[Any, int]] | None = None) -> Any:
    """`"${a * 2}"` -> the value itself (any type); `"conv${i}"` -> the text with each `${}` replaced.
    `memo`, `sizes`: see `evaluate`."""
    whole = _whole(text)
    if whole is not None:
        return evaluate(whole, lookup, memo, sizes)
    return INTERPOLATION.sub(lambda m: _as_text(evaluate(m.group(1), lookup, memo, sizes)), text)


def _whole(text: str) -> str | None:
    """The expression of a text that is one `${...}` and nothing else (its value is the result)."""
    if len(text) > 2 * MAX_EXPR_CHARS:  # not kept: a long text is no expression that evaluates
        return _whole_match(text)
    return _whole_short(text)


def _whole_match(text: str) -> str | None:
    whole = INTERPOLATION.fullmatch(text.strip())
    return whole.group(1) if whole else None


_whole_short = memos.function("spec.whole_expressions", 4096)(_whole_match)


def free_names(expression: str) -> tuple[set[str], set[str]]:
    """The variable names and the function names an expression uses (raises ExprError on bad syntax)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid expression '{expression.strip()}': {exc.msg}") from None
    functions = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - functions
    return names - {"true", "True", "false", "False", "null", "None"}, functions
