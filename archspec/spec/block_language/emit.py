"""Building a YAML-defined block: the parsed body, evaluated for one stage and repeat."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ...core.errors import ArchspecError, SpecPath, format_path
from ...ir.builder import GraphBuilder, NodeShapeError, Value
from ..expr import ExprError, substitute
from .parse import BlockItem, LayerItem, MergeItem
from ..families import BlockContext


@dataclass(frozen=True)
class Compiled:
    """A parsed definition: what the family's `emit` walks."""

    name: str
    body: tuple
    params: tuple[str, ...]
    locator: Any
    families: dict  # block type -> family class, for nested blocks (filled once all are made)


class BlockBuildError(ArchspecError):
    """A YAML-defined block could not be built with the parameters a stage gave it."""


@dataclass
class Emitter:
    compiled: Compiled
    b: GraphBuilder
    ctx: BlockContext
    params: dict[str, Any]
    in_channels: int

    def fail(self, message: str, path: SpecPath) -> BlockBuildError:
        where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
        return BlockBuildError(f"{format_path(path)}: {message} (at {where})")

    def values(self, raw: Any, x: Value, path: SpecPath) -> Any:
        # The names of composite_parse.CONTEXT_NAMES, which definitions are checked against.
        context = {"channels": x.channels, "in_channels": self.in_channels, "stride": self.ctx.stride,
                   "index": self.ctx.index, "repeat": self.ctx.repeat, "stage": self.ctx.stage,
                   "global_index": self.ctx.global_index, "total_blocks": self.ctx.total_blocks}

        def lookup(name: str) -> Any:
            if name in self.params:
                return self.params[name]
            return context[name]  # names were checked when the spec was validated

        def walk(value: Any, at: SpecPath) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, at + (k,)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, at + (i,)) for i, v in enumerate(value)]
            if isinstance(value, str) and "${" in value:
                try:
                    return substitute(value, lookup)
                except ExprError as exc:
                    raise self.fail(f"in '{value}': {exc}", at) from None
            return value

        return walk(raw, path)

    def body(self, items: tuple, x: Value) -> Value:
        for item in items:
            x = self.item(item, x)
        return x

    def item(self, item: Any, x: Value) -> Value:
        if isinstance(item, LayerItem):
            return self.layer(item, x)
        if isinstance(item, MergeItem):
            return self.merge(item, x)
        if isinstance(item, BlockItem):
            return self.nested(item, x)
        condition = self.values(item.condition, x, item.path + ("if",))
        if not isinstance(condition, bool):
            raise self.fail(f"the condition gave {condition!r}, not true or false", item.path + ("if",))
        return self.body(item.then if condition else item.otherwise, x)

    def layer(self, item: LayerItem, x: Value) -> Value:
        from ..layers import parse_layer

        fields = self.values(item.fields, x, item.path)
        try:
            op = parse_layer({item.kind: fields})
        except ValidationError as exc:
            raise self.invalid(exc, {item.kind: fields}, item.path[:-1]) from None
        return self.emit_op(lambda: self.b.op(op, x), item.path)

    def invalid(self, exc: ValidationError, data: Any, path: SpecPath) -> BlockBuildError:
        """The first problem of a failed validation of `data`, written at `path` in the definition."""
        from ..validate import problems_from

        first = problems_from(exc, data, self.compiled.locator, ("blocks", self.compiled.name) + tuple(path))[0]
        return self.fail(first.message, first.path[2:])

    def merge(self, item: MergeItem, x: Value) -> Value:
        outs = []
        for name, body in item.branches:
            with self.b.scope(name) if name else contextlib.nullcontext():
                outs.append(x if body is None else self.body(body, x))
        if item.kind == "residual":
            outs.append(x)
        kind = "add" if item.kind == "residual" else item.kind
        return self.emit_op(lambda: self.b.op(kind, *outs, name=self.b.free_name(kind)), item.path)

    def nested(self, item: BlockItem, x: Value) -> Value:
        family = self.compiled.families[item.family]
        params = self.values(item.params, x, item.path)
        stride = self.values(item.stride, x, item.path + ("stride",))
        try:
            block = family.model_validate(params)
        except ValidationError as exc:
            raise self.invalid(exc, params, item.path) from None
        if not isinstance(stride, int) or stride < 1:
            raise self.fail(f"stride must be a positive integer, got {stride!r}", item.path + ("stride",))
        ctx = BlockContext(stride, self.ctx.index, self.ctx.repeat, self.ctx.stage, self.ctx.global_index,
                           self.ctx.total_blocks, self.ctx.defaults)
        with self.b.scope(item.name or self.b.free_name(item.family)):
            return block.emit(self.b, x, ctx)

    def emit_op(self, emit: Callable[[], Value], path: SpecPath) -> Value:
        try:
            return emit()
        except NodeShapeError as exc:
            where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
            raise NodeShapeError(f"{exc} (at {where})", exc.name, exc.origin, exc.spatial_zero) from None


