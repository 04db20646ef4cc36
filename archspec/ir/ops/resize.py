"""Resampling a feature map with any of torch's 2-d modes, by a scale factor, to a fixed size, or
to the size of a second input (an FPN's lateral, a segmentation head's network input)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated, ClassVar, Literal
from collections.abc import Sequence

from pydantic import Field, StrictBool, model_validator

from ..op import RF, ModuleCall, Op, Shape, ShapeError, pair, register_op
from ._resample import Floor, Reads, area_reads, resampled
from ._types import hw, spatial

ResizeMode = Literal["nearest", "nearest-exact", "bilinear", "bicubic", "area"]
INTERPOLATING = ("bilinear", "bicubic")  # the modes that take align_corners
_Scale = Annotated[float, Field(gt=0, le=1024)]
_Target = Annotated[int, Field(ge=1, le=1 << 20)]


@register_op
class Resize(Op):
    """Resample: `resize: {scale: 2}`, `resize: {size: [56, 56], mode: bilinear}`, or with two
    inputs, to the spatial size of the second (`F.interpolate(x, size=y.shape[-2:])`).

    `scale` is one factor or [h, w]; the output size is `floor(in * scale)`, as `nn.Upsample`
    computes it. `mode` is one of torch's 2-d modes: nearest (the source pixel `floor(i * r)`,
    r being input over output size, or one over `scale` when a scale is given, as PyTorch
    computes it), nearest-exact (`floor((i + 0.5) * r)`), bilinear and bicubic (centres
    aligned, or `align_corners: true` to align the corner pixels; torchvision's segmentation heads
    and FPN use bilinear without), and area (adaptive average pooling). No MACs are counted
    (docs/analysis.md's convention: convolution and linear only).
    """

    kind: ClassVar[str] = "resize"
    category: ClassVar[str] = "resize"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"scale": 2, "mode": "bilinear"}, [(4, 6, 6)])
    arity: ClassVar[int | None] = None  # one input, or two: resize the first to the second's size
    shorthand: ClassVar[str] = "scale"

    scale: _Scale | tuple[_Scale, _Scale] | None = None
    size: _Target | tuple[_Target, _Target] | None = None
    mode: ResizeMode = "nearest"
    align_corners: StrictBool | None = None

    @model_validator(mode="after")
    def _one_target(self) -> "Resize":
        if self.scale is not None and self.size is not None:
            raise ValueError("give resize a scale or a size, not both")
        if self.align_corners is not None and self.mode not in INTERPOLATING:
            raise ValueError(f"align_corners is for the interpolating modes ({', '.join(INTERPOLATING)}), "
                             f"not '{self.mode}' (as torch's F.interpolate)")
        return self

    @property
    def scales(self) -> tuple[float, float] | None:
        if self.scale is None:
            return None
        return (self.scale, self.scale) if isinstance(self.scale, (int, float)) else self.scale

    @property
    def corners(self) -> bool:
        """align_corners as torch applies it (False where not stated)."""
        return bool(self.align_corners)

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
        elif self.scales is not None:
            th, tw = (math.floor(n * f) for n, f in zip((h, w), self.scales))
        else:
            raise ShapeError("resize with one input needs a scale or a size")
        if min(th, tw) < 1:
            raise ShapeError(f"resize of {c}x{h}x{w} by {self.scale} leaves no pixel", spatial_zero=True)
        return (c, th, tw)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """The tightest field, at the output's stride, that covers every input unit each output
        unit reads (see `_resample`); the stride is the second input's (the grid resized to) or
        r times the input's."""
        out = self.out_shape(ins)
        reads = tuple(self._reads(ins[0][1 + a], out[1 + a], a) for a in range(2))
        like = fields[1].stride if len(fields) == 2 else None
        return resampled(fields[0], reads, like)

    def _reads(self, n_in: int, n_out: int, axis: int) -> Reads:
        """Which input units output unit i reads along one axis, as PyTorch's kernels index them
        (aten/src/ATen/native/UpSample.h): the source coordinate `x` is `i * r` (nearest),
        `(i + 0.5) * r` (nearest-exact), `(i + 0.5) * r - 0.5` (bilinear, bicubic) or `i * r`
        with `r = (in - 1) / (out - 1)` (align_corners); bilinear reads floor(x) and ceil(x),
        bicubic floor(x) - 1 to floor(x) + 2, area [floor(i * r), ceil((i + 1) * r) - 1]."""
        if self.mode == "area":  # the rule an adaptive pool reads by too (no corners, no scales)
            return area_reads(n_in, n_out)
        scales = self.scales
        if self.corners:
            r = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        elif scales is not None:
            r = 1 / Fraction(scales[axis]).limit_denominator(1 << 16)
        else:
            r = Fraction(n_in, n_out)
        p, q = r.numerator, r.denominator
        mode = self.mode
        if mode == "nearest":
            lo = hi = Floor(p, 0, q)
        elif mode == "nearest-exact":
            lo = hi = Floor(2 * p, p, 2 * q)
        else:  # x = (a*i + b) / d
            a, b, d = (p, 0, q) if self.corners else (2 * p, p - q, 2 * q)
            if mode == "bilinear":
                lo, hi = Floor(a, b, d), Floor(a, b + d - 1, d)
            else:
                lo, hi = Floor(a, b, d, -1), Floor(a, b, d, 2)
        return Reads(lo, hi, n_in, n_out, clamp=True)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs: dict = {"mode": self.mode}
        if self.mode in INTERPOLATING:
            kwargs["align_corners"] = self.corners
        if len(ins) == 2:
            return ModuleCall("archspec.ir.ops.torch_modules.ResizeLike", (), kwargs)
        target = {"size": pair(self.size)} if self.size is not None else {"scale_factor": self.scale}
        return ModuleCall("torch.nn.Upsample", (), target | kwargs)

    def label(self, ins: Sequence[Shape]) -> str:
        if len(ins) == 2:
            to = "like input 2"
        elif self.size is not None:
            to = f"to {hw(pair(self.size))}"
        elif self.scales is not None and self.scales[0] != self.scales[1]:
            to = f"x{self.scales[0]:g}x{self.scales[1]:g}"
        else:
            to = f"x{(self.scales or (0.0,))[0]:g}"
        return f"resize {to} {self.mode}" + (", align corners" if self.corners else "")
