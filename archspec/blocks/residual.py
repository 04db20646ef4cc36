"""ResNet's residual blocks, with torchvision's v1.5 stride placement (on the 3x3 conv)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


def shortcut(b: GraphBuilder, x: Value, out: int, stride: int) -> Value:
    """Identity when the shape is kept, else a 1x1 projection (conv, norm) named `downsample`."""
    if stride == 1 and x.channels == out:
        return x
    with b.scope("downsample"):
        y = b.conv(x, out=out, kernel=1, stride=stride, bias=False)
        return b.norm(y)


@register_block("basic")
class BasicBlock(BlockFamily):
    """`{block: basic, out: 64}`: two 3x3 convs and a skip connection (ResNet-18/34)."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.conv(x, name="conv1", out=self.out, kernel=3, stride=ctx.stride, padding=1, bias=False)
        y = b.act(b.norm(y, name="bn1"), name="relu1")
        y = b.conv(y, name="conv2", out=self.out, kernel=3, padding=1, bias=False)
        y = b.norm(y, name="bn2")
        return b.act(b.add(y, shortcut(b, x, self.out, ctx.stride), name="add"), name="relu")


@register_block("bottleneck")
class Bottleneck(BlockFamily):
    """`{block: bottleneck, out: 256}`: 1x1 reduce, 3x3 (strided, grouped), 1x1 expand, plus a skip.

    The inner width is `out / expansion * width_per_group / 64 * groups`, which gives
    ResNet-50 (defaults), ResNeXt-50 32x4d (`groups: 32, width_per_group: 4`) and
    Wide ResNet-50-2 (`width_per_group: 128`), as torchvision computes it. In a dilated stage
    the 3x3 conv is dilated; the first block keeps the previous dilation (torchvision's
    `replace_stride_with_dilation`).
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    first_block_dilation: ClassVar[Literal["previous", "new"] | None] = "previous"

    out: int = Field(ge=1)
    expansion: int = Field(default=4, ge=1)
    groups: int = Field(default=1, ge=1)
    width_per_group: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> "Bottleneck":
        if self.out % self.expansion:
            raise ValueError(f"out ({self.out}) must be divisible by expansion ({self.expansion})")
        return self

    @property
    def width(self) -> int:
        return int(self.out // self.expansion * (self.width_per_group / 64.0)) * self.groups

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        w = self.width
        y = b.act(b.norm(b.conv(x, name="conv1", out=w, kernel=1, bias=False), name="bn1"), name="relu1")
        d = ctx.dilation
        y = b.conv(y, name="conv2", out=w, kernel=3, stride=ctx.stride, padding=d, dilation=d, groups=self.groups,
                   bias=False)
        y = b.act(b.norm(y, name="bn2"), name="relu2")
        y = b.norm(b.conv(y, name="conv3", out=self.out, kernel=1, bias=False), name="bn3")
        return b.act(b.add(y, shortcut(b, x, self.out, ctx.stride), name="add"), name="relu")
