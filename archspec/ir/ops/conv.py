"""Convolution."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import StrictBool

from ...core import memo
from ..op import RF, ModuleCall, Op, Shape, ShapeError, Window, omit_defaults, pair, register_op, window_out
from ._types import NonNegPair, PosInt, PosPair, hw, spatial

CONV2D_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}  # nn.Conv2d's


@register_op
class Conv(Op):
    """2-d convolution: `conv: {out: 64, kernel: 3, stride: 1, padding: same, groups: 1, bias: true}`.

    `padding: same` pads by `dilation * (kernel - 1) / 2` on each side (odd kernels only),
    which keeps the size at stride 1 and gives torchvision's padding at stride > 1.
    `groups: depthwise` sets groups to the input channels.
    """

    kind: ClassVar[str] = "conv"
    category: ClassVar[str] = "conv"
    depth_layer: ClassVar[bool] = True
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "conv"
    init_skippable: ClassVar[bool] = True
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"out": 8, "kernel": 3, "bias": True}, [(4, 6, 6)])
    channel_fields: ClassVar[tuple[str, ...]] = ("out",)

    out: PosInt
    kernel: PosPair = 1
    stride: PosPair = 1
    padding: NonNegPair | Literal["same"] = 0
    dilation: PosPair = 1
    groups: PosInt | Literal["depthwise"] = 1
    bias: StrictBool = True

    # -- normalised views ---------------------------------------------------------
    @property
    def k(self) -> tuple[int, int]:
        return _views(self.kernel, self.stride, self.padding, self.dilation)[0]

    @property
    def s(self) -> tuple[int, int]:
        return _views(self.kernel, self.stride, self.padding, self.dilation)[1]

    @property
    def p(self) -> tuple[int, int]:
        return _views(self.kernel, self.stride, self.padding, self.dilation)[2]

    @property
    def d(self) -> tuple[int, int]:
        return _views(self.kernel, self.stride, self.padding, self.dilation)[3]

    def g(self, ins: Sequence[Shape]) -> int:
        return ins[0][0] if self.groups == "depthwise" else self.groups

    # -- rules ---------------------------------------------------------------------
    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], "conv")
        g = self.g(ins)
        if c % g or self.out % g:
            raise ShapeError(f"groups={g} must divide both input channels ({c}) and output channels ({self.out})")
        # the views unpacked once: every new node of a sweep asks (see `_views`)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _views(self.kernel, self.stride, self.padding, self.dilation)
        size = (window_out(h, kh, sh, ph, dh), window_out(w, kw, sw, pw, dw))
        if size[0] < 1 or size[1] < 1:
            raise ShapeError(f"input {c}x{h}x{w} is too small for conv {hw(self.k)}/{self.s[0]}", spatial_zero=True)
        return (self.out, size[0], size[1])

    def params(self, ins: Sequence[Shape]) -> int:
        c, k = ins[0][0], self.k
        return self.out * (c // self.g(ins)) * k[0] * k[1] + (self.out if self.bias else 0)

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        c, k = ins[0][0], self.k
        return out[0] * out[1] * out[2] * (c // self.g(ins)) * k[0] * k[1]

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].window(*_views(self.kernel, self.stride, self.padding, self.dilation))

    def rf_key(self, ins: Sequence[Shape]) -> Hashable:
        return (Conv, _views(self.kernel, self.stride, self.padding, self.dilation))  # not channels, not groups

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"kernel_size": _compact(self.k), "stride": _compact(self.s), "padding": _compact(self.p),
                  "dilation": _compact(self.d), "groups": self.g(ins), "bias": self.bias}
        channels = {"in_channels": ins[0][0], "out_channels": self.out}
        return omit_defaults("torch.nn.Conv2d", channels, kwargs, CONV2D_DEFAULTS)

    def window(self, ins: Sequence[Shape]) -> Window:
        return Window(self.k, self.s, self.p, self.d, self.g(ins))

    def deploy_role(self) -> str:
        return "linear"

    def label(self, ins: Sequence[Shape]) -> str:
        text = f"conv {hw(self.k)}"
        if self.s != (1, 1):
            text += f"/{self.s[0]}" if self.s[0] == self.s[1] else f"/{hw(self.s)}"
        if self.d != (1, 1):
            text += f" d{self.d[0]}"
        g = self.g(ins)
        if g != 1:
            text += " dw" if g == ins[0][0] == self.out else f" g{g}"
        return f"{text}, {ins[0][0]}->{self.out}"


@memo.function("ops.conv_views", 1024)
def _views(kernel: Any, stride: Any, padding: Any, dilation: Any) -> tuple[tuple[int, int], ...]:
    """Kernel, stride, padding and dilation as (h, w) pairs, worked out once per distinct value
    (the analysis asks for them at every layer of every network). `padding: same` pads by
    dilation * (kernel - 1) / 2 on each side, for odd kernels only."""
    k, s, d = pair(kernel), pair(stride), pair(dilation)
    if padding == "same":
        if any(n % 2 == 0 for n in k):
            raise ShapeError(f"padding 'same' needs an odd kernel, got {hw(k)}")
        p = tuple(dn * (kn - 1) // 2 for kn, dn in zip(k, d))
    else:
        p = pair(padding)
    return k, s, p, d  # type: ignore[return-value]  # pair() gives two items per axis


def _compact(p: tuple[int, int]) -> int | tuple[int, int]:
    return p[0] if p[0] == p[1] else p
