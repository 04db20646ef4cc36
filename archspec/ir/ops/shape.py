"""Ops that move or drop values without weights: flatten, dropout."""

from __future__ import annotations

import math
from typing import ClassVar
from collections.abc import Sequence

from pydantic import StrictBool

from ..op import RF, ModuleCall, Op, Shape, register_op
from ._types import Probability, rate_text


@register_op
class Flatten(Op):
    """Flatten C x H x W to one vector (the batch dimension stays)."""

    kind: ClassVar[str] = "flatten"
    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = True
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6)])

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        return (math.prod(ins[0]),)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].whole(ins[0][1:]) if len(ins[0]) == 3 else fields[0]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("torch.nn.Flatten", (1,), names=("start_dim",))


@register_op
class Dropout(Op):
    """Dropout, active in training only: `dropout: 0.5`; `dropout: {p: 0.2, spatial: true}` drops
    whole channels (spatial dropout, Tompson et al., 2015: `nn.Dropout2d`)."""

    kind: ClassVar[str] = "dropout"
    category: ClassVar[str] = "dropout"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"p": 0.5}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "p"

    p: Probability = 0.5
    spatial: StrictBool = False

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("torch.nn.Dropout2d" if self.spatial else "torch.nn.Dropout", (), {"p": self.p})

    def deploy_role(self) -> str:
        return "drop"

    def label(self, ins: Sequence[Shape]) -> str:
        return f"dropout {rate_text(self.p)}"
