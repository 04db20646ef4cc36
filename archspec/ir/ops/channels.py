"""Ops that rearrange channels without weights: split and shuffle (ShuffleNet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import model_validator

from ..op import ModuleCall, Op, Shape, ShapeError, register_op
from ._types import NonNegInt, PosInt, spatial


@register_op
class Split(Op):
    """One channel group of the input: `split: {parts: 2, index: 1}` is the second of two
    equal halves (`x.chunk(2, dim=1)[1]`, ShuffleNet-v2's channel split);
    `split: {sizes: [22, 21, 21], index: 0}` cuts unequal groups (`x.split(sizes, dim=1)[0]`),
    as mixed-kernel depthwise convolutions do. `${split_channels(channels, 3)}` gives the
    sizes of timm's `_split_channels` (equal parts, the remainder to the first)."""

    kind: ClassVar[str] = "split"
    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"parts": 2, "index": 1}, [(4, 6, 6)])

    parts: PosInt = 2
    sizes: list[PosInt] | None = None
    index: NonNegInt

    @model_validator(mode="after")
    def _index_in_range(self) -> Split:
        if self.sizes is not None:
            if "parts" in self.model_fields_set and self.parts != len(self.sizes):
                raise ValueError(f"give parts or sizes, not both ({self.parts} parts, {len(self.sizes)} sizes)")
            if self.index >= len(self.sizes):
                raise ValueError(f"index {self.index} is out of range for {len(self.sizes)} sizes "
                                 f"(0 to {len(self.sizes) - 1})")
        elif self.index >= self.parts:
            raise ValueError(f"index {self.index} is out of range for {self.parts} parts (0 to {self.parts - 1})")
        return self

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c = ins[0][0]
        if self.sizes is not None:
            if sum(self.sizes) != c:
                raise ShapeError(f"split sizes {self.sizes} add up to {sum(self.sizes)}, but the input has {c} channels")
            return (self.sizes[self.index],) + tuple(ins[0][1:])
        if c % self.parts:
            raise ShapeError(f"split into {self.parts} parts needs channels divisible by {self.parts}, got {c}; "
                             "for unequal parts give `sizes` (e.g. \"${split_channels(channels, "
                             f"{self.parts})}}\")")
        return (c // self.parts,) + tuple(ins[0][1:])

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        if self.sizes is not None:
            return ModuleCall("archspec.ir.ops.torch_modules.ChannelSplit", (tuple(self.sizes), self.index),
                              names=("parts", "index"))
        return ModuleCall("archspec.ir.ops.torch_modules.ChannelSplit", (self.parts, self.index), names=("parts", "index"))

    def label(self, ins: Sequence[Shape]) -> str:
        if self.sizes is not None:
            return f"split {self.index + 1}/{len(self.sizes)} ({self.sizes[self.index]} ch)"
        return f"split {self.index + 1}/{self.parts}"


@register_op
class ChannelShuffle(Op):
    """Interleave `groups` channel groups: `channel_shuffle: 2` (ShuffleNet). Channel c of
    group g moves to position c * groups + g; the values themselves are unchanged."""

    kind: ClassVar[str] = "channel_shuffle"
    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"groups": 2}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "groups"

    groups: PosInt = 2

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, _, _ = spatial(ins[0], self.kind)
        if c % self.groups:
            raise ShapeError(f"channel_shuffle with {self.groups} groups needs channels divisible by {self.groups}, "
                             f"got {c}")
        return ins[0]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.ChannelShuffle", (self.groups,), names=("groups",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"shuffle g{self.groups}"
