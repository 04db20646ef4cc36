"""Ops that merge paths inside a block: residual add, channel concat, gating multiply."""

from __future__ import annotations

from typing import ClassVar
from collections.abc import Sequence

from ...core.formatting import shape_text
from ..op import FunctionCall, Op, Shape, ShapeError, register_op


def _show(shape: Shape) -> str:
    return shape_text(shape)


@register_op
class Add(Op):
    """Element-wise sum of equal shapes (residual connections)."""

    kind: ClassVar[str] = "add"
    category: ClassVar[str] = "merge"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6), (4, 6, 6)])
    arity: ClassVar[int | None] = None
    in_layer_lists: ClassVar[bool] = False

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins) < 2:
            raise ShapeError("add needs at least two inputs")
        if any(s != ins[0] for s in ins):
            raise ShapeError(f"add needs equal shapes, got {', '.join(_show(s) for s in ins)}")
        return ins[0]

    def torch(self, ins: Sequence[Shape]) -> FunctionCall:
        return FunctionCall("operator.add", "binary")

    def deploy_role(self) -> str:
        return "sum"

    def label(self, ins: Sequence[Shape]) -> str:
        return "add"


@register_op
class Concat(Op):
    """Concatenation along channels (inception branches, dense connectivity)."""

    kind: ClassVar[str] = "concat"
    category: ClassVar[str] = "merge"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6), (4, 6, 6)])
    arity: ClassVar[int | None] = None
    in_layer_lists: ClassVar[bool] = False

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins) < 2:
            raise ShapeError("concat needs at least two inputs")
        if any(len(s) != len(ins[0]) or s[1:] != ins[0][1:] for s in ins):
            raise ShapeError(f"concat needs equal spatial sizes, got {', '.join(_show(s) for s in ins)}")
        return (sum(s[0] for s in ins),) + tuple(ins[0][1:])

    def torch(self, ins: Sequence[Shape]) -> FunctionCall:
        return FunctionCall("torch.cat", "list", {"dim": 1})

    def label(self, ins: Sequence[Shape]) -> str:
        return "concat"


@register_op
class Mul(Op):
    """Element-wise product with broadcasting: gates such as squeeze-and-excitation (C x H x W times C x 1 x 1)."""

    kind: ClassVar[str] = "mul"
    category: ClassVar[str] = "merge"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6), (4, 6, 6)])
    arity: ClassVar[int | None] = None
    in_layer_lists: ClassVar[bool] = False

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins) < 2:
            raise ShapeError("mul needs at least two inputs")
        out = list(ins[0])
        for s in ins[1:]:
            if len(s) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(out, s)):
                raise ShapeError(f"mul needs broadcastable shapes, got {', '.join(_show(s) for s in ins)}")
            out = [max(a, b) for a, b in zip(out, s)]
        return tuple(out)

    def torch(self, ins: Sequence[Shape]) -> FunctionCall:
        return FunctionCall("operator.mul", "binary")

    def label(self, ins: Sequence[Shape]) -> str:
        return "mul"
