"""SqueezeNet's fire module (Iandola et al., 2016)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("fire")
class Fire(BlockFamily):
    """`{block: fire, squeeze: 16, expand1x1: 64, expand3x3: 64}`, the paper's s1x1, e1x1, e3x3.

    A 1x1 squeeze conv, then 1x1 and 3x3 expand convs side by side whose outputs are
    concatenated; each conv has a bias and is followed by the default activation.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ("squeeze", "expand1x1", "expand3x3")

    squeeze: int = Field(ge=1)
    expand1x1: int = Field(ge=1)
    expand3x3: int = Field(ge=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        s = b.act(b.conv(x, name="squeeze", out=self.squeeze), name="squeeze_activation")
        e1 = b.act(b.conv(s, name="expand1x1", out=self.expand1x1), name="expand1x1_activation")
        e3 = b.conv(s, name="expand3x3", out=self.expand3x3, kernel=3, padding=1)
        e3 = b.act(e3, name="expand3x3_activation")
        return b.concat(e1, e3, name="concat")
