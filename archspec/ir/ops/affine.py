"""A fixed per-channel affine map: `channel_affine: {scale: [...], shift: [...]}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from ..op import ModuleCall, Op, Shape, ShapeError, register_op

_Float = Annotated[float, Field(allow_inf_nan=False)]


@register_op
class ChannelAffine(Op):
    """`x[:, c] * scale[c] + shift[c]` with constants (no parameters): torchvision's GoogLeNet and
    Inception-v3 `transform_input`, which turns ImageNet-normalised input into the [-1, 1] input their
    published weights were trained on. All ones and zeros is the identity, and lowering leaves it out,
    so a spec can switch it with an expression (`scale: "${[...] if transform_input else [1, 1, 1]}"`)."""

    kind: ClassVar[str] = "channel_affine"
    category: ClassVar[str] = "other"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"scale": [0.5, 2.0], "shift": [0.1, -0.1]}, [(2, 5, 5)])

    scale: tuple[_Float, ...] = Field(min_length=1, max_length=1 << 16)
    shift: tuple[_Float, ...] = Field(min_length=1, max_length=1 << 16)

    @model_validator(mode="after")
    def _same_length(self) -> "ChannelAffine":
        if len(self.scale) != len(self.shift):
            raise ValueError(f"scale has {len(self.scale)} values and shift {len(self.shift)}; one of each per channel")
        return self

    @property
    def is_identity(self) -> bool:
        return all(s == 1 for s in self.scale) and all(t == 0 for t in self.shift)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if ins[0][0] != len(self.scale):
            raise ShapeError(f"channel_affine has {len(self.scale)} scales for {ins[0][0]} channels")
        return ins[0]

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        return 0  # an elementwise map, like a norm's affine terms (not counted in torchvision's _ops)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.ChannelAffine", (self.scale, self.shift),
                          names=("scale", "shift"))

    def label(self, ins: Sequence[Shape]) -> str:
        return "channel affine"
