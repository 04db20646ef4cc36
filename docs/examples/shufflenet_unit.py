"""The ShuffleNet-v2 unit (Ma et al., 2018, Fig. 3c and 3d) as a Python block family."""

from pydantic import Field

from archspec import BlockError
from archspec.blocks import BlockContext, BlockFamily, register_block
from archspec.ir.builder import GraphBuilder, Value


@register_block("shuffle_v2")
class ShuffleV2Unit(BlockFamily):
    """`{block: shuffle_v2, out: 116}`: split (stride 1) or duplicate (stride 2) the input,
    transform one half, concatenate, shuffle the two groups of channels."""

    out: int = Field(ge=2, description="output channels; each branch gives half")

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        half = self.out // 2
        if ctx.stride == 1:
            if x.channels != self.out:
                raise BlockError(f"at stride 1 the input must have out={self.out} channels, not {x.channels}")
            left = b.op("split", x, parts=2, index=0, name="split1")
            right = b.op("split", x, parts=2, index=1, name="split2")
        else:
            with b.scope("branch1"):  # layers named branch1.0, branch1.1, ...: one nn.Sequential
                left = b.conv_norm_act(x, x.channels, kernel=3, stride=ctx.stride, groups="depthwise",
                                       act=False, names=None)
                left = b.conv_norm_act(left, half, names=None)
            right = x
        with b.scope("branch2"):
            y = b.conv_norm_act(right, half, names=None)
            y = b.conv_norm_act(y, half, kernel=3, stride=ctx.stride, groups="depthwise", act=False, names=None)
            y = b.conv_norm_act(y, half, names=None)
        return b.op("channel_shuffle", b.concat(left, y, name="concat"), groups=2, name="shuffle")
