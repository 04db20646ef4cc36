"""Ops that rearrange channels without weights: split and shuffle (ShuffleNet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import model_validator

from ..op import ModuleCall, Op, Shape, ShapeError, register_op
from ._types import NonNegInt, PosInt, spatial


@register_op
class Split(Op):
    """One of `parts` equal channel groups: `split: {parts: 2, index: 1}` is the second half,
    as `x.chunk(2, dim=1)[1]` (ShuffleNet-v2's channel split)."""

    kind: ClassVar[str] = "split"
    category: ClassVar[str] = "reshape"

    parts: PosInt = 2
    index: NonNegInt

    @model_validator(mode="after")
    def _index_in_range(self) -> Split:
        if self.index >= self.parts:
            raise ValueError(f"index {self.index} is out of range for {self.parts} parts (0 to {self.parts - 1})")
        return self

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c = ins[0][0]
        if c % self.parts:
            raise ShapeError(f"split into {self.parts} parts needs channels divisible by {self.parts}, got {c}")
        return (c // self.parts,) + tuple(ins[0][1:])

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.backends.torch_layers.ChannelSplit", (self.parts, self.index), names=("parts", "index"))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"split {self.index + 1}/{self.parts}"


@register_op
class ChannelShuffle(Op):
    """Interleave `groups` channel groups: `channel_shuffle: 2` (ShuffleNet). Channel c of
    group g moves to position c * groups + g; the values themselves are unchanged."""

    kind: ClassVar[str] = "channel_shuffle"
    category: ClassVar[str] = "reshape"
    shorthand: ClassVar[str] = "groups"

    groups: PosInt = 2

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, _, _ = spatial(ins[0], self.kind)
        if c % self.groups:
            raise ShapeError(f"channel_shuffle with {self.groups} groups needs channels divisible by {self.groups}, "
                             f"got {c}")
        return ins[0]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.backends.torch_layers.ChannelShuffle", (self.groups,), names=("groups",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"shuffle g{self.groups}"
