"""Transposed convolution (the gradient of a convolution; "up-convolution" in U-Net)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import StrictBool

from ..op import RF, ModuleCall, Op, Shape, ShapeError, omit_defaults, pair, register_op
from ._resample import Floor, Reads, resampled
from ._types import NonNegPair, PosInt, PosPair, hw, spatial

# nn.ConvTranspose2d's defaults
CONV_TRANSPOSE2D_DEFAULTS = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True, "dilation": 1}


@register_op
class ConvTranspose(Op):
    """2-d transposed convolution: `conv_transpose: {out: 64, kernel: 2, stride: 2}` (U-Net's
    up-convolution), with `padding`, `output_padding` (added to one side of the output, to pick
    among the sizes a strided convolution maps to one size), `dilation`, `groups` and `bias`.

    Output size `(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1`;
    MACs `in_c * (out_c / groups) * k_h * k_w` per input position, as fvcore counts them (every
    input value is multiplied into a kernel-sized patch of the output).
    """

    kind: ClassVar[str] = "conv_transpose"
    category: ClassVar[str] = "conv"
    depth_layer: ClassVar[bool] = True  # U-Net's 23 layers count its four up-convolutions
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    # PyTorch's own initialisation, as torchvision's `isinstance(m, nn.Conv2d)` loops leave it
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = (
        {"out": 6, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, [(4, 5, 6)])
    channel_fields: ClassVar[tuple[str, ...]] = ("out",)

    out: PosInt
    kernel: PosPair = 1
    stride: PosPair = 1
    padding: NonNegPair = 0
    output_padding: NonNegPair = 0
    dilation: PosPair = 1
    groups: PosInt = 1
    bias: StrictBool = True

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        if c % self.groups or self.out % self.groups:
            raise ShapeError(f"groups={self.groups} must divide both input channels ({c}) and output channels "
                             f"({self.out})")
        k, s, p, op, d = (pair(v) for v in (self.kernel, self.stride, self.padding, self.output_padding, self.dilation))
        if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
            raise ShapeError(f"output_padding {hw(op)} must be smaller than the stride {hw(s)} or the dilation "
                             f"{hw(d)} (as torch requires)")
        size = [(n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 for n, ki, si, pi, oi, di in zip((h, w), k, s, p, op, d)]
        if min(size) < 1:
            raise ShapeError(f"input {c}x{h}x{w} is too small for conv_transpose {hw(k)} with padding {hw(p)}",
                             spatial_zero=True)
        return (self.out, size[0], size[1])

    def params(self, ins: Sequence[Shape]) -> int:
        k = pair(self.kernel)
        return ins[0][0] * (self.out // self.groups) * k[0] * k[1] + (self.out if self.bias else 0)

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        c, h, w = ins[0]
        k = pair(self.kernel)
        return c * (self.out // self.groups) * k[0] * k[1] * h * w

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """Output unit o receives input unit i through kernel tap t where o = i*s - p + t*d, so it
        reads i from ceil((o + p - d(k - 1)) / s) to floor((o + p) / s); units past the edge are
        zeros, like a convolution's padding."""
        out = self.out_shape(ins)
        k, s, p, d = (pair(v) for v in (self.kernel, self.stride, self.padding, self.dilation))
        reads = tuple(Reads(Floor(1, p[a] - d[a] * (k[a] - 1) + s[a] - 1, s[a]), Floor(1, p[a], s[a]),
                            ins[0][1 + a], out[1 + a], clamp=False) for a in range(2))
        return resampled(fields[0], reads)

    def rf_key(self, ins: Sequence[Shape]) -> tuple:
        geometry = (self.kernel, self.stride, self.padding, self.output_padding, self.dilation)
        return (ConvTranspose, geometry, tuple(s[1:] for s in ins))  # not channels

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"kernel_size": _compact(self.kernel), "stride": _compact(self.stride),
                  "padding": _compact(self.padding), "output_padding": _compact(self.output_padding),
                  "groups": self.groups, "bias": self.bias, "dilation": _compact(self.dilation)}
        channels = {"in_channels": ins[0][0], "out_channels": self.out}
        return omit_defaults("torch.nn.ConvTranspose2d", channels, kwargs, CONV_TRANSPOSE2D_DEFAULTS)

    def label(self, ins: Sequence[Shape]) -> str:
        k, s = pair(self.kernel), pair(self.stride)
        text = f"conv_transpose {hw(k)}"
        if s != (1, 1):
            text += f"/{s[0]}" if s[0] == s[1] else f"/{hw(s)}"
        if self.groups != 1:
            text += f" g{self.groups}"
        return f"{text}, {ins[0][0]}->{self.out}"


def _compact(value: int | tuple[int, int]) -> int | tuple[int, int]:
    p = pair(value)
    return p[0] if p[0] == p[1] else p
