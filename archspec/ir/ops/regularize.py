"""Ops that act on a residual branch: stochastic depth and layer scale."""

from __future__ import annotations

from typing import ClassVar
from collections.abc import Sequence

from pydantic import Field

from ..op import ModuleCall, Op, Shape, register_op
from ._types import Probability, rate_text


@register_op
class DropPath(Op):
    """Stochastic depth: in training, drop the whole branch for a sample with probability `p`
    (and scale the survivors by 1/(1-p)); the identity in eval. Same as torchvision's
    `StochasticDepth(p, "row")`."""

    kind: ClassVar[str] = "drop_path"
    category: ClassVar[str] = "dropout"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"p": 0.1}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "p"
    per_block_fields: ClassVar[tuple[str, ...]] = ("p",)  # rises linearly from block to block

    p: Probability = 0.0

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.StochasticDepth", (self.p,), names=("p",))

    def deploy_role(self) -> str:
        return "drop"

    def label(self, ins: Sequence[Shape]) -> str:
        return f"drop path {rate_text(self.p)}"


@register_op
class LayerScale(Op):
    """Multiply each channel by a learned scale, initialised to `init` (ConvNeXt)."""

    kind: ClassVar[str] = "layer_scale"
    category: ClassVar[str] = "other"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "init"

    init: float = Field(default=1e-6)

    def params(self, ins: Sequence[Shape]) -> int:
        return ins[0][0]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        args = (ins[0][0], self.init, len(ins[0]))
        return ModuleCall("archspec.ir.ops.torch_modules.LayerScale", args, names=("channels", "init", "ndim"))

    def label(self, ins: Sequence[Shape]) -> str:
        return "layer scale"
