"""Normalisation layers."""

from __future__ import annotations

from typing import ClassVar, Literal
from collections.abc import Sequence

from pydantic import Field

from ..op import ModuleCall, Op, OpDefaults, Shape, ShapeError, omit_defaults, register_op
from ._types import PosInt

NormKind = Literal["batch", "layer", "frozen_batch"]


@register_op
class Norm(Op):
    """Normalisation: `norm: batch` (BatchNorm), `norm: layer` (LayerNorm over channels),
    `norm: frozen_batch` (batch norm whose statistics and affine terms are buffers, fixed in
    training: torchvision's FrozenBatchNorm2d, the norm of its detection backbones).

    A bare `norm` takes the spec's `defaults.norm`, eps and momentum.
    """

    kind: ClassVar[str] = "norm"
    category: ClassVar[str] = "norm"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "norm"
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"type": "batch"}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "type"

    type: NormKind | None = None
    eps: float | None = Field(default=None, gt=0)
    momentum: float | None = Field(default=None, ge=0, le=1)

    def resolved(self, defaults: OpDefaults) -> "Norm":
        kind = self.type or defaults.norm
        if kind is None:
            raise ShapeError("a bare 'norm' needs defaults.norm to be set")
        update: dict = {"type": kind}
        if self.eps is None:
            update["eps"] = defaults.norm_eps
        if self.momentum is None:
            update["momentum"] = defaults.norm_momentum
        return self.model_copy(update=update)

    def params(self, ins: Sequence[Shape]) -> int:
        return 0 if self.type == "frozen_batch" else 2 * ins[0][0]

    def buffers(self, ins: Sequence[Shape]) -> int:
        if self.type == "frozen_batch":  # weight, bias, running mean, running var
            return 4 * ins[0][0]
        # running mean, running var, num_batches_tracked
        return 2 * ins[0][0] + 1 if self.type == "batch" else 0

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        c = ins[0][0]
        if self.type == "batch":
            target = "torch.nn.BatchNorm2d" if len(ins[0]) == 3 else "torch.nn.BatchNorm1d"
            kwargs = {"eps": self.eps, "momentum": self.momentum}
            return omit_defaults(target, {"num_features": c}, kwargs, {"eps": 1e-5, "momentum": 0.1})
        if self.type == "frozen_batch":
            if len(ins[0]) != 3:
                raise ShapeError("frozen_batch norm needs a (C, H, W) feature map")
            kwargs = {} if self.eps == 1e-5 else {"eps": self.eps}
            return ModuleCall("archspec.ir.ops.torch_modules.FrozenBatchNorm2d", (c,), kwargs, names=("num_features",))
        if self.type == "layer":
            kwargs = {} if self.eps == 1e-5 else {"eps": self.eps}
            if len(ins[0]) == 3:
                return ModuleCall("archspec.ir.ops.torch_modules.LayerNorm2d", (c,), kwargs, names=("normalized_shape",))
            return ModuleCall("torch.nn.LayerNorm", (c,), kwargs, names=("normalized_shape",))
        raise ShapeError(f"norm type '{self.type}' has no torch form")

    def deploy_role(self) -> str | None:
        return "affine" if self.type in ("batch", "frozen_batch") else None  # layer norm reads each sample

    def label(self, ins: Sequence[Shape]) -> str:
        return {"batch": "bn", "layer": "ln", "frozen_batch": "frozen bn"}.get(self.type or "", "norm")


@register_op
class LocalResponseNorm(Op):
    """Local response normalisation across channels (AlexNet, GoogLeNet's paper)."""

    kind: ClassVar[str] = "lrn"
    category: ClassVar[str] = "norm"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "size"

    size: PosInt = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"alpha": self.alpha, "beta": self.beta, "k": self.k}
        return ModuleCall("torch.nn.LocalResponseNorm", (self.size,), kwargs, names=("size",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"lrn {self.size}"
