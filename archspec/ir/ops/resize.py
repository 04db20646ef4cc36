"""Resampling a feature map: nearest or bilinear, by a scale factor, to a fixed size, or to the
size of a second input (an FPN's lateral, a segmentation head's network input)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import ClassVar, Literal
from collections.abc import Sequence

from pydantic import Field, model_validator

from ..op import RF, ModuleCall, Op, Shape, ShapeError, pair, register_op
from ._types import PosPair, hw, spatial

ResizeMode = Literal["nearest", "bilinear"]
_Scale = Field(default=None, gt=0, le=1024)


@register_op
class Resize(Op):
    """Resample: `resize: {scale: 2}`, `resize: {size: [56, 56], mode: bilinear}`, or with two
    inputs, to the spatial size of the second (`F.interpolate(x, size=y.shape[-2:])`).

    `mode`: nearest (PyTorch's, the source pixel `floor(i * in / out)`) or bilinear with
    `align_corners=False` (torchvision's segmentation heads and FPN). The output size is
    `floor(in * scale)`, as `nn.Upsample` computes it.
    """

    kind: ClassVar[str] = "resize"
    category: ClassVar[str] = "resize"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"scale": 2}, [(4, 6, 6)])
    arity: ClassVar[int | None] = None  # one input, or two: resize the first to the second's size
    shorthand: ClassVar[str] = "scale"

    scale: float | None = _Scale
    size: PosPair | None = None
    mode: ResizeMode = "nearest"

    @model_validator(mode="after")
    def _one_target(self) -> "Resize":
        if self.scale is not None and self.size is not None:
            raise ValueError("give resize a scale or a size, not both")
        return self

    # -- rules ---------------------------------------------------------------------
    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        if len(ins) not in (1, 2):
            raise ShapeError(f"resize takes one input (with scale or size) or two (to the second's size), got {len(ins)}")
        c, h, w = spatial(ins[0], "resize")
        if len(ins) == 2:
            if self.scale is not None or self.size is not None:
                raise ShapeError("resize to a second input's size takes no scale or size")
            _, th, tw = spatial(ins[1], "resize")
            return (c, th, tw)
        if self.size is not None:
            th, tw = pair(self.size)
        elif self.scale is not None:
            th, tw = math.floor(h * self.scale), math.floor(w * self.scale)
        else:
            raise ShapeError("resize with one input needs a scale or a size")
        if min(th, tw) < 1:
            raise ShapeError(f"resize of {c}x{h}x{w} by {self.scale:g} leaves no pixel", spatial_zero=True)
        return (c, th, tw)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """The tightest field, at the output's stride, that covers every input unit output unit i reads.

        Nearest reads unit `floor(i * r)` and bilinear (align_corners=False) units `floor(c)` and
        `floor(c) + 1` with `c = max((i + 0.5) * r - 0.5, 0)`, where r is the input size over the
        output size (one over `scale` when a scale is given, as PyTorch computes it). Such a field
        is not one (size, jump, padding): upsampling by s makes s neighbours share a source. So
        the stride is the second input's (the grid resized to) or r times the input's, and the
        padding and size are the smallest that cover every unit of the map, found by walking it.
        """
        f = fields[0]
        out = self.out_shape(ins)
        size, jump, padding = [], [], []
        for a in range(2):
            n_in, n_out = ins[0][1 + a], out[1 + a]
            r = 1 / Fraction(self.scale).limit_denominator(1 << 16) if self.scale else Fraction(n_in, n_out)
            big = Fraction(f.stride[a]).limit_denominator(1 << 20)  # a fractional jump after an upsampling
            j = Fraction(fields[1].stride[a]).limit_denominator(1 << 20) if len(fields) == 2 else big * r
            spans = []  # (first, last) input pixel that output unit i reads
            for i in range(n_out):
                lo, hi = self._sources(i, r, n_in)
                spans.append((-f.padding[a] + lo * big, -f.padding[a] + hi * big + f.size[a] - 1))
            p = math.ceil(max(i * j - first for i, (first, _) in enumerate(spans)))
            padding.append(p)
            size.append(math.ceil(max(last - (i * j - p) for i, (_, last) in enumerate(spans))) + 1)
            jump.append(int(j) if j.denominator == 1 else float(j))
        return RF(tuple(size), tuple(jump), tuple(padding), f.context)  # type: ignore[arg-type]  # tuple(zip over two axes) has two items

    def _sources(self, i: int, r: Fraction, n_in: int) -> tuple[int, int]:
        """The first and last input unit output unit i reads along one axis."""
        if self.mode == "nearest":
            lo = min(math.floor(i * r), n_in - 1)
            return lo, lo
        lo = min(math.floor(max((i + Fraction(1, 2)) * r - Fraction(1, 2), 0)), n_in - 1)
        return lo, min(lo + 1, n_in - 1)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"mode": self.mode} | ({"align_corners": False} if self.mode == "bilinear" else {})
        if len(ins) == 2:
            return ModuleCall("archspec.ir.ops.torch_modules.ResizeLike", (), kwargs)
        target = {"size": pair(self.size)} if self.size is not None else {"scale_factor": self.scale}
        return ModuleCall("torch.nn.Upsample", (), target | kwargs)

    def label(self, ins: Sequence[Shape]) -> str:
        if len(ins) == 2:
            to = "like input 2"
        elif self.size is not None:
            to = f"to {hw(pair(self.size))}"
        else:
            to = f"x{self.scale:g}"
        return f"resize {to} {self.mode}"
