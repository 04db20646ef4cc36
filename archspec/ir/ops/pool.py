"""Pooling: windowed, adaptive and global."""

from __future__ import annotations

from typing import ClassVar, Literal
from collections.abc import Hashable, Sequence

from pydantic import StrictBool

from ..op import RF, ModuleCall, Op, Shape, ShapeError, Window, omit_defaults, pair, register_op, window_out
from ._resample import area_reads, resampled
from ._types import NonNegPair, PosInt, PosPair, hw, spatial


class _WindowPool(Op):
    category: ClassVar[str] = "pool"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    shorthand: ClassVar[str] = "kernel"
    _torch: ClassVar[str]

    kernel: PosPair = 2
    stride: PosPair | None = None  # defaults to the kernel, as in PyTorch
    padding: NonNegPair = 0
    ceil_mode: StrictBool = False

    @property
    def k(self) -> tuple[int, int]:
        return pair(self.kernel)

    @property
    def s(self) -> tuple[int, int]:
        return pair(self.stride) if self.stride is not None else self.k

    @property
    def p(self) -> tuple[int, int]:
        return pair(self.padding)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        if any(2 * p > k for p, k in zip(self.p, self.k)):
            raise ShapeError(f"padding {self.padding} must be at most half the kernel {hw(self.k)}")
        size = [window_out(n, k, s, p, 1, self.ceil_mode) for n, k, s, p in zip((h, w), self.k, self.s, self.p)]
        if min(size) < 1:
            raise ShapeError(f"input {c}x{h}x{w} is too small for {self.kind} {hw(self.k)}/{self.s[0]}", spatial_zero=True)
        return (c, size[0], size[1])

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].window(self.k, self.s, self.p)

    def rf_key(self, ins: Sequence[Shape]) -> Hashable:
        return (_WindowPool, self.k, self.s, self.p)  # max and average pools read the same window

    def _kwargs(self) -> dict:
        return {"kernel_size": _compact(self.k), "stride": _compact(self.s), "padding": _compact(self.p),
                "ceil_mode": self.ceil_mode}

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return omit_defaults(self._torch, {}, self._kwargs(), {"padding": 0, "ceil_mode": False})

    def window(self, ins: Sequence[Shape]) -> Window:
        return Window(self.k, self.s, self.p)

    def label(self, ins: Sequence[Shape]) -> str:
        text = f"{self.kind} {hw(self.k)}"
        if self.s != (1, 1):
            text += f"/{self.s[0]}"
        return text + (" ceil" if self.ceil_mode else "")


@register_op
class MaxPool(_WindowPool):
    """Max pooling: `maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: false}`; `maxpool: 2` for 2x2/2."""

    kind: ClassVar[str] = "maxpool"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"kernel": 2}, [(4, 6, 6)])
    _torch: ClassVar[str] = "torch.nn.MaxPool2d"


@register_op
class AvgPool(_WindowPool):
    """Average pooling; `count_include_pad` as in PyTorch (true by default)."""

    kind: ClassVar[str] = "avgpool"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"kernel": 2}, [(4, 6, 6)])
    _torch: ClassVar[str] = "torch.nn.AvgPool2d"

    count_include_pad: StrictBool = True

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {**self._kwargs(), "count_include_pad": self.count_include_pad}
        return omit_defaults(self._torch, {}, kwargs, {"padding": 0, "ceil_mode": False, "count_include_pad": True})


@register_op
class AdaptivePool(Op):
    """Adaptive pooling to a fixed output size: `adaptive_pool: {size: [6, 6], type: avg}`."""

    kind: ClassVar[str] = "adaptive_pool"
    category: ClassVar[str] = "pool"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = True
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"size": 2}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "size"

    size: PosPair = 1
    type: Literal["avg", "max"] = "avg"

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, _, _ = spatial(ins[0], self.kind)
        h, w = pair(self.size)
        return (c, h, w)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        # Output i pools input rows [floor(i*n/m), ceil((i+1)*n/m) - 1], as an area resize reads
        # them: a sliding window where m divides n; otherwise (fewer rows, or more: pooled up, each
        # row read by several outputs) the tightest field at the output's stride covering them.
        _, h, w = ins[0]
        if all(n % m == 0 for n, m in zip((h, w), pair(self.size))):
            steps = [n // m for n, m in zip((h, w), pair(self.size))]
            return fields[0].window(steps, steps, (0, 0))
        return resampled(fields[0], [area_reads(n, m) for n, m in zip((h, w), pair(self.size))])

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        target = "torch.nn.AdaptiveAvgPool2d" if self.type == "avg" else "torch.nn.AdaptiveMaxPool2d"
        h, w = pair(self.size)
        return ModuleCall(target, ((h, w),), names=("output_size",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"adaptive {self.type}pool {hw(pair(self.size))}"


@register_op
class GlobalPool(Op):
    """Global pooling to 1x1 (kept as C x 1 x 1; add `flatten` for a vector): `global_pool: avg`."""

    kind: ClassVar[str] = "global_pool"
    category: ClassVar[str] = "pool"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = True
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "type"

    type: Literal["avg", "max"] = "avg"

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, _, _ = spatial(ins[0], self.kind)
        return (c, 1, 1)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].whole(ins[0][1:])

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        target = "torch.nn.AdaptiveAvgPool2d" if self.type == "avg" else "torch.nn.AdaptiveMaxPool2d"
        return ModuleCall(target, ((1, 1),), names=("output_size",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"global {self.type}pool"


def _compact(p: tuple[int, int]) -> int | tuple[int, int]:
    return p[0] if p[0] == p[1] else p


__all__ = ["MaxPool", "AvgPool", "AdaptivePool", "GlobalPool", "PosInt"]
