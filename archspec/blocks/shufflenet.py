"""ShuffleNet-v2's unit (Ma et al., 2018, Fig. 3c and 3d), as torchvision builds it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..core.errors import BlockError
from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("shufflenet_v2")
class ShuffleNetV2Unit(BlockFamily):
    """`{block: shufflenet_v2, out: 116}`: two branches of `out / 2` channels each, concatenated,
    then the two groups of channels shuffled.

    At stride 1 the input is split in halves: the first passes unchanged, the second goes through
    1x1 conv, 3x3 depthwise conv, 1x1 conv (norm after each, activation after the 1x1s). At stride 2
    both branches see the whole input: `branch1` is a strided 3x3 depthwise conv and a 1x1 conv,
    `branch2` as above with the depthwise conv strided. A stage opens with a stride-2 unit.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=2, multiple_of=2)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        half = self.out // 2
        if ctx.stride == 1:
            if x.channels != self.out:
                raise BlockError(f"a stride-1 unit keeps its width: input {x.channels} channels, out {self.out}"
                                 " (open the stage with `stride: 2`)")
            left = b.op("split", x, parts=2, index=0, name="split1")
            right = b.op("split", x, parts=2, index=1, name="split2")
        else:
            with b.scope("branch1"):
                left = b.conv_norm_act(x, x.channels, kernel=3, stride=ctx.stride, groups="depthwise", act=False,
                                       names=None)
                left = b.conv_norm_act(left, half, names=None)
            right = x
        with b.scope("branch2"):
            y = b.conv_norm_act(right, half, names=None)
            y = b.conv_norm_act(y, half, kernel=3, stride=ctx.stride, groups="depthwise", act=False, names=None)
            y = b.conv_norm_act(y, half, names=None)
        return b.op("channel_shuffle", b.concat(left, y, name="concat"), groups=2, name="shuffle")
