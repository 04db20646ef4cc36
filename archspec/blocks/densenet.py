"""DenseNet's dense layer and transition (Huang et al., 2017; DenseNet-BC as torchvision builds it)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("dense_layer")
class DenseLayer(BlockFamily):
    """`{block: dense_layer, growth: 32, repeat: 6}`: a stage of these is a dense block.

    Each layer is norm, act, 1x1 conv to `bottleneck * growth`, norm, act, 3x3 conv to
    `growth` (pre-activation, "BC" variant), and its output is its input with the `growth`
    new channels concatenated: layer i of a block sees the block input and every earlier
    layer's features, as in the paper. `dropout` follows the 3x3 conv (training only).
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ("growth",)

    growth: int = Field(ge=1)
    bottleneck: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.0, ge=0, le=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.act(b.norm(x, name="norm1"), name="relu1")
        y = b.conv(y, name="conv1", out=self.bottleneck * self.growth, kernel=1, bias=False)
        y = b.act(b.norm(y, name="norm2"), name="relu2")
        y = b.conv(y, name="conv2", out=self.growth, kernel=3, padding=1, bias=False)
        if self.dropout > 0:
            y = b.op("dropout", y, name="dropout", p=self.dropout)
        return b.concat(x, y, name="concat")


@register_block("transition")
class Transition(BlockFamily):
    """`{block: transition, compression: 0.5}`: norm, act, 1x1 conv to `floor(compression * C)`
    channels (or `out`), then 2x2 average pooling with stride 2, between dense blocks."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False

    out: int | None = Field(default=None, ge=1)
    compression: float = Field(default=0.5, gt=0, le=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        out = self.out if self.out is not None else max(1, int(x.channels * self.compression))
        y = b.act(b.norm(x, name="norm"), name="relu")
        y = b.conv(y, name="conv", out=out, kernel=1, bias=False)
        return b.op("avgpool", y, name="pool", kernel=2, stride=2)
