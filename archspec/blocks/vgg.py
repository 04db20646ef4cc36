"""VGG's block: n 3x3 convolutions (each with optional norm and an activation), then a pool."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("vgg")
class VGGBlock(BlockFamily):
    """`{block: vgg, out: 128, convs: 2}`: convs x (conv 3x3, [norm], act), then a 2x2/2 max pool.

    The norm follows the stage's defaults (`defaults: {norm: batch}` gives vgg*_bn).
    As in the paper and torchvision, the convolutions keep their bias even with a norm.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    depth_fields: ClassVar[tuple[str, ...]] = ("convs",)

    out: int = Field(ge=1)
    convs: int = Field(default=2, ge=1, le=64)
    kernel: int = Field(default=3, ge=1)
    pool: Literal["max", "avg", "none"] = "max"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        for i in range(1, self.convs + 1):
            x = b.conv(x, name=f"conv{i}", out=self.out, kernel=self.kernel, padding="same", bias=True)
            if b.defaults.norm is not None:
                x = b.norm(x, name=f"bn{i}")
            x = b.act(x, name=f"relu{i}")
        if self.pool != "none":
            x = b.op(f"{self.pool}pool", x, name="pool", kernel=2, stride=2)
        return x
