"""`layers`: a plain sequence of layers used as a block (pools between stages, transitions)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.layers import LayerList
from ..spec.families import BlockContext, BlockFamily, register_block


@register_block("layers")
class Layers(BlockFamily):
    """`{block: layers, layers: [{maxpool: {kernel: 3, stride: 2}}]}`.

    A stage item written as one layer (`- maxpool: {kernel: 3, stride: 2}`) is this
    block holding that layer.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ()
    depth_fields: ClassVar[tuple[str, ...]] = ()

    layers: LayerList = Field(min_length=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        return b.sequence(x, self.layers)
