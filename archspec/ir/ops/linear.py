"""Fully connected layers."""

from __future__ import annotations

import math
from typing import ClassVar
from collections.abc import Sequence

from pydantic import StrictBool

from ...core.formatting import shape_text
from ..op import ModuleCall, Op, Shape, ShapeError, omit_defaults, register_op
from ._types import PosInt


@register_op
class Linear(Op):
    """A fully connected layer on a flat vector, or on each token of a sequence (L, D):
    `linear: {out: 1000}` or `linear: 1000`."""

    kind: ClassVar[str] = "linear"
    category: ClassVar[str] = "linear"
    depth_layer: ClassVar[bool] = True
    ends_features: ClassVar[bool] = True
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "linear"
    init_skippable: ClassVar[bool] = True
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"out": 3}, [(5,)])
    shorthand: ClassVar[str] = "out"

    out: PosInt
    bias: StrictBool = True

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins[0]) not in (1, 2):
            shape = shape_text(ins[0])
            raise ShapeError(f"linear needs a flat input, got {shape}; add 'flatten' (after 'global_pool') before it")
        return (*ins[0][:-1], self.out)

    def params(self, ins: Sequence[Shape]) -> int:
        return ins[0][-1] * self.out + (self.out if self.bias else 0)

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        return math.prod(ins[0]) * self.out

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        features = {"in_features": ins[0][-1], "out_features": self.out}
        return omit_defaults("torch.nn.Linear", features, {"bias": self.bias}, {"bias": True})

    def deploy_role(self) -> str:
        return "linear"

    def label(self, ins: Sequence[Shape]) -> str:
        return f"linear {ins[0][-1]}->{self.out}"
