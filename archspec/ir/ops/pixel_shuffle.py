"""Pixel shuffle and unshuffle: channels traded for resolution (Shi et al., 2016, ESPCN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..op import RF, ModuleCall, Op, Shape, ShapeError, register_op
from ._resample import Floor, Reads, resampled
from ._types import PosInt, spatial


@register_op
class PixelShuffle(Op):
    """`pixel_shuffle: 2`: (C * r^2, H, W) -> (C, H * r, W * r), each r x r patch of the output
    from the r^2 channels of one input unit (`nn.PixelShuffle`)."""

    kind: ClassVar[str] = "pixel_shuffle"
    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"factor": 2}, [(8, 5, 6)])
    shorthand: ClassVar[str] = "factor"

    factor: PosInt = 2

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        r = self.factor
        if c % (r * r):
            raise ShapeError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {c}")
        return (c // (r * r), h * r, w * r)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """Output unit i reads input unit floor(i / r), as a nearest upsampling by r does."""
        _, h, w = self.out_shape(ins)
        reads = tuple(Reads(Floor(1, 0, self.factor), Floor(1, 0, self.factor), n_in, n_out, clamp=False)
                      for n_in, n_out in zip(ins[0][1:], (h, w)))
        return resampled(fields[0], reads)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("torch.nn.PixelShuffle", (self.factor,), names=("upscale_factor",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"pixel shuffle x{self.factor}"


@register_op
class PixelUnshuffle(Op):
    """`pixel_unshuffle: 2`: (C, H, W) -> (C * r^2, H / r, W / r), the inverse of pixel_shuffle
    (`nn.PixelUnshuffle`); H and W must be multiples of r."""

    kind: ClassVar[str] = "pixel_unshuffle"
    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"factor": 2}, [(3, 6, 8)])
    shorthand: ClassVar[str] = "factor"

    factor: PosInt = 2

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        r = self.factor
        if h % r or w % r:
            raise ShapeError(f"pixel_unshuffle by {r} needs a height and width divisible by {r}, got {h}x{w}",
                             spatial_zero=h < r or w < r)
        return (c * r * r, h // r, w // r)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """Each output unit gathers one r x r patch: a window of r at stride r."""
        r = self.factor
        return fields[0].window((r, r), (r, r), (0, 0))

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("torch.nn.PixelUnshuffle", (self.factor,), names=("downscale_factor",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"pixel unshuffle /{self.factor}"
