"""ConvNeXt's block (Liu et al., 2022), as torchvision builds it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("convnext")
class ConvNeXtBlock(BlockFamily):
    """`{block: convnext, out: 96}`: 7x7 depthwise conv, norm, 1x1 conv to `expansion * out`,
    activation, 1x1 conv back to `out`, layer scale, stochastic depth, plus the input.

    The norm and activation are the stage's defaults (`norm: layer, activation: gelu`
    in ConvNeXt). When the stage's first block changes the resolution or the width
    (`stride: 2`), a separate downsampling layer comes first, as in the paper:
    norm, then a `stride x stride` conv with that stride (torchvision's features.2, .4, .6).

    `drop_path` is the network's stochastic depth rate: block i of n drops its branch with
    probability `drop_path * i / (n - 1)`, torchvision's linear schedule. The pointwise
    convs are torchvision's channels-last `nn.Linear` layers, the same weights.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    expansion: int = Field(default=4, ge=1)
    kernel: int = Field(default=7, ge=1)
    layer_scale: float = Field(default=1e-6, ge=0)
    drop_path: float = Field(default=0.0, ge=0, le=1)
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = "n-1"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        if ctx.stride != 1 or x.channels != self.out:
            with b.scope("downsample"):
                x = b.norm(x)
                x = b.conv(x, out=self.out, kernel=ctx.stride, stride=ctx.stride)
        y = b.conv(x, name="dwconv", out=self.out, kernel=self.kernel, padding="same", groups="depthwise")
        y = b.norm(y, name="norm")
        y = b.conv(y, name="pwconv1", out=self.expansion * self.out)
        y = b.act(y, name="act")
        y = b.conv(y, name="pwconv2", out=self.out)
        if self.layer_scale > 0:
            y = b.op("layer_scale", y, name="layer_scale", init=self.layer_scale)
        return b.add(b.stochastic_depth(y), x, name="add")
