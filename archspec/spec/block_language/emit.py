"""Building a YAML-defined block: the parsed body, evaluated for one stage and repeat."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from ...core import memo
from ...core.errors import ArchspecError, SpecPath, format_path
from ...ir.builder import GraphBuilder, NodeShapeError, Value
from ...ir.op import ShapeError
from ...ir.ops import OPS
from ..expr import INTERPOLATION, ExprError, expression_names, substitute
from .parse import INPUT, NAME, BlockItem, ForItem, LayerItem, MergeItem, RefItem
from ..families import BlockContext
from ..layers import parse_layer


@dataclass(frozen=True)
class Compiled:
    """A parsed definition: what the family's `emit` walks."""

    name: str
    body: tuple
    params: tuple[str, ...]
    locator: Any
    families: dict  # block type -> family class, for nested blocks (filled once all are made)
    inputs: tuple[str, ...] = ()  # the names of the values a part gives it (`in:`), in order
    outputs: tuple[str, ...] = ()  # named values returned as its outputs


class BlockBuildError(ArchspecError):
    """A YAML-defined block could not be built with the parameters a stage gave it."""


@dataclass
class Emitter:
    compiled: Compiled
    b: GraphBuilder
    ctx: BlockContext
    params: dict[str, Any]
    in_channels: int
    block_input: Value | None = None
    loop: dict[str, Any] = field(default_factory=dict)  # the loop variables in force
    named: dict[str, list[tuple[str, Value]]] = field(default_factory=dict)  # name -> (path, value)
    base: int = -1  # the builder's scope depth at the block's root

    def __post_init__(self) -> None:
        self.base = len(self.b.scope_path)

    def fail(self, message: str, path: SpecPath) -> BlockBuildError:
        where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
        return BlockBuildError(f"{format_path(path)}: {message} (at {where})")

    def identifier(self, name: Any, path: SpecPath) -> str:
        """A name made by an expression (`name: "conv${i}"`), held to the rule of written ones."""
        if not (isinstance(name, str) and NAME.match(name)):
            raise self.fail(f"name {name!r} must be a plain identifier (letters, digits, _; not starting with a digit)",
                            path)
        return name

    def lookup(self, name: str, x: Value) -> Any:
        """The value of a name in the block's expressions, `x` being the current input.

        The names of parse.CONTEXT_NAMES, which definitions are checked against. The context
        is read only where an expression names it: lowering reuses a block's graph wherever
        the context fields it read agree (spec.lower)."""
        if name in self.loop:
            return self.loop[name]
        if name in self.params:
            return self.params[name]
        if name == "channels":
            return x.channels
        if name == "in_channels":
            return self.in_channels
        return getattr(self.ctx, name)  # names were checked when the spec was validated

    def values(self, raw: Any, x: Value, path: SpecPath) -> Any:
        return self._substituted(raw, path, functools.partial(self.lookup, x=x))

    def _substituted(self, value: Any, at: SpecPath, lookup: Callable[[str], Any]) -> Any:
        """`value` with each `${...}` in its text evaluated by `lookup`. A method, not a closure that
        calls itself: that would make a reference cycle for every block emitted (a sweep emits
        thousands, with the cycle collector off)."""
        if isinstance(value, dict):
            return {k: self._substituted(v, at + (k,), lookup) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substituted(v, at + (i,), lookup) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            try:
                return substitute(value, lookup, memo=True)  # lookup only reads values
            except ExprError as exc:
                raise self.fail(f"in '{value}': {exc}", at) from None
        return value

    # -- named values ---------------------------------------------------------------------
    def define(self, name: str | None, value: Value) -> None:
        """Record `value` under `name` (and its path through named scopes) for later `from:`."""
        if name is None:
            return
        path = ".".join(self.b.scope_path[self.base:] + (name,))
        self.named.setdefault(name, []).append((path, value))
        if path != name:
            self.named.setdefault(path, []).append((path, value))

    def read(self, name: str, path: SpecPath, x: Value | None = None) -> Value:
        if "${" in name:  # a name made by an expression (`from: "y${i}"` in a loop)
            name = str(self.values(name, x or self.block_input, path))  # type: ignore[arg-type]  # the block's input is set before any read of a named value
        found = self.named.get(name, [])
        if not found and name == INPUT and self.block_input is not None:
            return self.block_input
        if not found:
            known = sorted({p for entries in self.named.values() for p, _ in entries} | {INPUT})
            raise self.fail(f"'{name}' names no value at this point (a value is read after the item that "
                            f"makes it, and not from a branch not taken); known here: {', '.join(known)}", path)
        if len({p for p, _ in found}) > 1:
            paths = ", ".join(sorted({p for p, _ in found}))
            raise self.fail(f"'{name}' names several values ({paths}); write the path to one", path)
        return found[-1][1]

    # -- items ----------------------------------------------------------------------------
    def body(self, items: tuple, x: Value) -> Value:
        if self.block_input is None:
            self.block_input = x
        for item in items:
            x = self.item(item, x)
        return x

    def item(self, item: Any, x: Value) -> Value:
        self.b.step()  # every item evaluated counts, whether or not it makes a layer
        if isinstance(item, LayerItem):
            return self.layer(item, x)
        if isinstance(item, MergeItem):
            return self.merge(item, x)
        if isinstance(item, BlockItem):
            return self.nested(item, x)
        if isinstance(item, RefItem):
            return self.read(item.name, item.path, x)
        if isinstance(item, ForItem):
            for _ in self.iterate(item, x):
                x = self.body(item.body, x)
            return x
        condition = self.values(item.condition, x, item.path + ("if",))
        if not isinstance(condition, bool):
            raise self.fail(f"the condition gave {condition!r}, not true or false", item.path + ("if",))
        return self.body(item.then if condition else item.otherwise, x)

    def iterate(self, item: ForItem, x: Value) -> Iterator[Any]:
        """Binds the loop variable to each element in turn."""
        values = self.values(item.values, x, item.path + ("in",))
        if not isinstance(values, list) or not values:
            raise self.fail(f"`in:` gave {values!r}, not a non-empty list", item.path + ("in",))
        outer = self.loop.get(item.var, _UNSET)
        try:
            for value in values:
                self.b.step()  # an iteration counts even when its body is empty
                self.loop[item.var] = value
                yield value
        finally:
            if outer is _UNSET:
                self.loop.pop(item.var, None)
            else:
                self.loop[item.var] = outer

    def layer(self, item: LayerItem, x: Value) -> Value:

        inputs = [self.read(name, item.path + ("from",), x) for name in item.sources] or [x]
        key = _layer_key(item, lambda name: self.lookup(name, inputs[0]))
        hit = _LAYERS.get(key, item) if key is not None else memo.MISS
        if hit is not memo.MISS:
            op = hit
        else:
            fields = self.values(item.fields, inputs[0], item.path)
            try:
                op = parse_layer({item.kind: fields})
            except ValidationError as exc:
                raise self.invalid(exc, {item.kind: fields}, item.path[:-1]) from None
            if op.name is not None:  # a name made by an expression: checked once, before it is kept
                self.identifier(op.name, item.path + ("name",))
            if key is not None:
                _LAYERS.put(key, op, item)
        out = self.emit_op(lambda: self.b.op(op, *inputs), item.path)
        self.define(op.name, out)
        return out

    def invalid(self, exc: ValidationError, data: Any, path: SpecPath) -> BlockBuildError:
        """The first problem of a failed validation of `data`, written at `path` in the definition."""
        from ..problems import problems_from

        first = problems_from(exc, data, self.compiled.locator, ("blocks", self.compiled.name) + tuple(path))[0]
        return self.fail(first.message, first.path[2:])

    def merge(self, item: MergeItem, x: Value) -> Value:
        outs = []
        if isinstance(item.branches, ForItem):
            for _ in self.iterate(item.branches, x):
                outs.append(self.body(item.branches.body, x))
            if len(outs) < 2:
                raise self.fail(f"{item.kind} needs at least two branches; the loop made {len(outs)}", item.path)
        for name, body in item.branches if isinstance(item.branches, tuple) else ():
            if isinstance(body, RefItem):
                outs.append(self.read(body.name, body.path, x))
                continue
            with self.located(body_path(item, name)), self.b.scope(name) if name else contextlib.nullcontext():
                outs.append(x if body is None else self.body(body, x))
            self.define(name, outs[-1])
        if item.kind == "residual":
            outs.append(x)
        kind = "add" if item.kind == "residual" else item.kind
        name = self.identifier(self.values(item.name, x, item.path), item.path) if item.name else self.b.free_name(kind)
        out = self.emit_op(lambda: self.b.op(kind, *outs, name=name), item.path)
        self.define(item.name and name, out)
        return out

    def nested(self, item: BlockItem, x: Value) -> Value:
        family = self.compiled.families[item.family]
        if family.inputs[0] > 1:
            raise self.fail(f"block type '{item.family}' reads {family.inputs[0]} values; a nested block reads one "
                            "(a block of several inputs is a part: under `necks:` or `heads:`)", item.path + ("block",))
        if item.source is not None:
            x = self.read(item.source, item.path + ("from",), x)
        params = self.values(item.params, x, item.path)
        stride = self.values(item.stride, x, item.path + ("stride",))
        repeat = self.values(item.repeat, x, item.path + ("repeat",))
        name = self.identifier(self.values(item.name, x, item.path + ("name",)), item.path + ("name",)) if item.name else None
        try:
            block = family.model_validate(params)
        except ValidationError as exc:
            raise self.invalid(exc, params, item.path) from None
        if not isinstance(stride, int) or stride < 1:
            raise self.fail(f"stride must be a positive integer, got {stride!r}", item.path + ("stride",))
        if stride != 1 and not family.strided:
            reason = f": {family.unstrided_because}" if family.unstrided_because else ""
            raise self.fail(f"block type '{item.family}' takes no stride{reason}", item.path + ("stride",))
        if repeat is not None and (not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1):
            raise self.fail(f"repeat must be a positive integer, got {repeat!r}", item.path + ("repeat",))
        ctx = self.ctx
        # a nested family's stochastic depth at the enclosing block's place (read only where it has one,
        # so that other blocks stay free of position and reusable)
        rate = block.drop_rate(ctx.global_index, ctx.total_blocks) if family.drop_schedule else 0.0
        with self.located(item.path + ("name",)), self.b.scope(name or self.b.free_name(item.family)), \
                self.b.nested_rate(rate):
            if repeat is None:  # once, in the enclosing block's place
                x = self.one(block.emit(self.b, x, replace(ctx, stride=stride)), item)
            else:  # as a stage repeats a block: the stride to the first, `index` counts the repeats
                for k in range(repeat):
                    self.b.step()
                    with self.b.scope(str(k)):
                        ctx_k = replace(ctx, stride=stride if k == 0 else 1, index=k, repeat=repeat)
                        x = self.one(block.emit(self.b, x, ctx_k), item)
        self.define(name, x)
        return x

    def one(self, out: Value | dict[str, Value], item: BlockItem) -> Value:
        """A nested block's output: one value (a block with several outputs is a part's alone)."""
        if isinstance(out, dict):
            raise self.fail(f"block type '{item.family}' has several outputs ({', '.join(out)}); a nested "
                            "block passes one value on", item.path + ("block",))
        return out

    @contextlib.contextmanager
    def located(self, path: SpecPath) -> Iterator[None]:
        """A name clash raised inside is reported where `path` is written (further ones keep theirs)."""
        try:
            yield
        except NodeShapeError:
            raise
        except ShapeError as exc:
            if " (at " in str(exc):
                raise
            where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
            raise ShapeError(f"{exc} (at {where})", exc.spatial_zero) from None

    def emit_op(self, emit: Callable[[], Value], path: SpecPath) -> Value:
        try:
            return emit()
        except NodeShapeError as exc:
            where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
            raise NodeShapeError(f"{exc} (at {where})", exc.name, exc.origin, exc.spatial_zero) from None
        except ShapeError as exc:  # a name taken twice: where the second one is written
            where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
            raise ShapeError(f"{exc} (at {where})", exc.spatial_zero) from None


_UNSET = object()


def body_path(item: MergeItem, name: str | None) -> SpecPath:
    """Where a merge's branch is written: its key for a named one."""
    return item.path + ((name,) if name else ())


# -- layers already made ------------------------------------------------------------------------

# A layer of a definition is a pure function of the values of the names its expressions read:
# (the item's id, the layer class, those values) -> the op. The entry keeps the item alive, so
# that its id stands for it. A block met again with other widths (a sweep) makes each layer
# once per distinct value instead of evaluating and validating it again.
_LAYERS: memo.Memo[Any] = memo.Memo("block_language.layers", 16384)
_NAMES: memo.Memo[tuple[str, ...] | None] = memo.Memo("block_language.names", 16384)
_SCALARS = (int, float, str, bool, type(None))


def _layer_key(item: LayerItem, lookup: Callable[[str], Any]) -> tuple | None:
    """The cache key of a layer for the current values, or None (a name not read as a plain
    scalar, or an expression that does not parse: the ordinary path reports it)."""
    names = _NAMES.get(id(item), item)
    if names is memo.MISS:
        names = _NAMES.put(id(item), _names_in(item.fields), item)
    if names is None:
        return None
    key: list[Any] = [id(item), OPS.get(item.kind)]
    for name in names:
        try:
            value = lookup(name)
        except Exception:
            return None
        if not isinstance(value, _SCALARS):
            return None
        key.append((type(value), repr(value) if isinstance(value, float) else value))
    return tuple(key)


def _names_in(raw: Any) -> tuple[str, ...] | None:
    """Every name the `${...}` expressions in `raw` read, or None when one does not parse."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and "${" in value:
            for expression in INTERPOLATION.findall(value):
                try:
                    found.update(expression_names(expression))
                except ExprError:
                    return None
    return tuple(sorted(found))
