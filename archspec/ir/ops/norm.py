"""Normalisation layers."""

from __future__ import annotations

from typing import ClassVar, Literal
from collections.abc import Sequence

from pydantic import Field, model_validator

from ..op import RF, ModuleCall, Op, OpDefaults, Shape, ShapeError, omit_defaults, register_op
from ._types import PosInt, spatial

NormKind = Literal["batch", "layer", "frozen_batch", "group"]
GROUPS = 32  # group norm's groups unless stated: Wu & He's (2018) default, torchvision's and smp's choice


@register_op
class Norm(Op):
    """Normalisation: `norm: batch` (BatchNorm), `norm: layer` (LayerNorm over channels),
    `norm: frozen_batch` (batch norm whose statistics and affine terms are buffers, fixed in
    training: torchvision's FrozenBatchNorm2d, the norm of its detection backbones),
    `norm: {type: group, groups: 32}` (GroupNorm: statistics over each of `groups` channel groups,
    per sample; `groups` defaults to 32 and must divide the channels).

    A bare `norm` takes the spec's `defaults.norm`, eps and momentum (momentum is ignored by the
    norms that keep no running statistics).
    """

    kind: ClassVar[str] = "norm"
    category: ClassVar[str] = "norm"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "norm"
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"type": "batch"}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "type"

    type: NormKind | None = None
    eps: float | None = Field(default=None, gt=0)
    momentum: float | None = Field(default=None, ge=0, le=1)
    groups: PosInt | None = None

    @model_validator(mode="after")
    def _groups_for_group_norm(self) -> "Norm":
        if self.groups is not None and self.type not in (None, "group"):
            raise ValueError(f"'groups' is a group norm's field; norm type '{self.type}' takes none")
        return self

    def resolved(self, defaults: OpDefaults) -> "Norm":
        kind = self.type or defaults.norm
        if kind is None:
            raise ShapeError("a bare 'norm' needs defaults.norm to be set")
        update: dict = {"type": kind}
        if self.eps is None:
            update["eps"] = defaults.norm_eps
        if self.momentum is None:
            update["momentum"] = defaults.norm_momentum
        if kind == "group" and self.groups is None:
            update["groups"] = GROUPS
        elif kind != "group" and self.groups is not None:
            raise ShapeError(f"'groups' is a group norm's field; this norm is '{kind}' (defaults.norm)")
        return self.model_copy(update=update)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins[0]) == 2 and self.type != "layer":
            raise ShapeError(f"norm: {self.type} needs a map or a vector; a token sequence takes norm: layer")
        if self.type == "group":
            c, _, _ = spatial(ins[0], "group norm")
            if c % (self.groups or GROUPS):
                raise ShapeError(f"group norm's groups ({self.groups or GROUPS}) must divide its channels ({c})")
        return ins[0]

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """Pointwise, but group norm's statistics are taken over the whole map: every unit of
        its output sees every unit of its input."""
        if self.type == "group":
            return fields[0].with_map(ins[0][1:])
        return fields[0]

    def params(self, ins: Sequence[Shape]) -> int:
        return 0 if self.type == "frozen_batch" else 2 * ins[0][-1 if len(ins[0]) == 2 else 0]

    def buffers(self, ins: Sequence[Shape]) -> int:
        if self.type == "frozen_batch":  # weight, bias, running mean, running var
            return 4 * ins[0][0]
        # running mean, running var, num_batches_tracked
        return 2 * ins[0][0] + 1 if self.type == "batch" else 0

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        c = ins[0][-1 if len(ins[0]) == 2 else 0]  # a token sequence (L, D) is normalised over D
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
        if self.type == "group":
            kwargs = {"eps": self.eps, "affine": True}
            return omit_defaults("torch.nn.GroupNorm", {"num_groups": self.groups or GROUPS, "num_channels": c},
                                 kwargs, {"eps": 1e-5, "affine": True})
        raise ShapeError(f"norm type '{self.type}' has no torch form")

    def deploy_role(self) -> str | None:
        return "affine" if self.type in ("batch", "frozen_batch") else None  # layer norm reads each sample

    def label(self, ins: Sequence[Shape]) -> str:
        if self.type == "group":
            return f"gn {self.groups or GROUPS}"
        return {"batch": "bn", "layer": "ln", "frozen_batch": "frozen bn"}.get(self.type or "", "norm")


@register_op
class LocalResponseNorm(Op):
    """Local response normalisation across channels (AlexNet, GoogLeNet's paper)."""

    kind: ClassVar[str] = "lrn"
    category: ClassVar[str] = "norm"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
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


@register_op
class L2Norm(Op):
    """L2 normalisation over channels with a learned per-channel scale (Liu et al., 2016, SSD's
    `L2Norm` on conv4_3): `l2norm: {scale: 20}` gives `weight * x / max(||x||_2, eps)` at each
    position (torch's `F.normalize`), the weight a parameter of `channels` values initialised to
    `scale` (20 in SSD and torchvision's `ssd300_vgg16`)."""

    kind: ClassVar[str] = "l2norm"
    category: ClassVar[str] = "norm"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None  # its own constant: `scale`
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"scale": 20}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "scale"

    scale: float = 20.0
    eps: float = Field(default=1e-12, gt=0)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        spatial(ins[0], self.kind)
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        return ins[0][0]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"scale": self.scale} | ({} if self.eps == 1e-12 else {"eps": self.eps})
        return ModuleCall("archspec.ir.ops.torch_modules.L2Norm", (ins[0][0],), kwargs, names=("channels",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"l2norm x{self.scale:g}"
