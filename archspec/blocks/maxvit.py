"""MaxViT's layer (Tu et al., "MaxViT: Multi-Axis Vision Transformer", 2022), as torchvision builds it:
an MBConv, then window attention, then grid attention, each attention with an MLP."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block
from .squeeze_excite import squeeze_excitation


def _partition_attention(b: GraphBuilder, x: Value, kind: Literal["window", "grid"], head_dim: int, size: int,
                         mlp_ratio: int) -> Value:
    """x + attention(layer_norm(x)), then x + mlp(layer_norm(x)), in window or grid partitions
    (torchvision's PartitionAttentionLayer; its LayerNorms keep nn.LayerNorm's eps, 1e-5)."""
    with b.scope(f"{kind}_attention"):
        y = b.norm(x, name="norm1", type="layer", eps=1e-5)
        y = b.op("partition_attention", y, name="attn", head_dim=head_dim, size=size, partition=kind)
        x = b.add(x, b.stochastic_depth(y, "drop_path1"), name="add_1")
        y = b.norm(x, name="norm2", type="layer", eps=1e-5)
        with b.scope("mlp"):
            y = b.conv(y, out=x.channels * mlp_ratio)
            y = b.act(y)
            y = b.conv(y, out=x.channels)
        return b.add(x, b.stochastic_depth(y, "drop_path2"), name="add_2")


@register_block("maxvit")
class MaxViTLayer(BlockFamily):
    """`{block: maxvit, out: 64, head_dim: 32, partition: 7}`: an MBConv (norm first; a 1x1
    expansion to `expansion * out`, a depthwise 3x3 carrying the stride, squeeze-and-excitation to
    `squeeze * out` with SiLU, a 1x1 projection, stochastic depth, plus the input, which an average
    pool and a 1x1 conv bring to the new shape), then attention in `partition` x `partition`
    windows and then in a `partition` x `partition` grid, each followed by an MLP.

    Norm and activation of the MBConv are the stage's defaults (batch norm, eps 1e-3, momentum
    0.01, GELU in MaxViT-T). `drop_path` is the network's rate, scheduled linearly over all layers."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    head_dim: int = Field(default=32, ge=1)
    partition: int = Field(default=7, ge=1)
    expansion: float = Field(default=4.0, gt=0)
    squeeze: float = Field(default=0.25, gt=0)
    mlp_ratio: int = Field(default=4, ge=1)
    drop_path: float = Field(default=0.0, ge=0, le=1)
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = "n-1"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        with b.scope("mbconv"):
            shortcut = x
            if ctx.stride != 1 or x.channels != self.out:
                with b.scope("proj"):
                    if ctx.stride == 2:
                        shortcut = b.op("avgpool", shortcut, kernel=3, stride=2, padding=1)
                    shortcut = b.conv(shortcut, out=self.out, bias=True)
            mid = int(self.out * self.expansion)
            y = b.norm(x, name="pre_norm")
            y = b.conv_norm_act(y, mid, kernel=1, names=("conv_a", "bn_a", "act_a"))
            y = b.conv_norm_act(y, mid, kernel=3, stride=ctx.stride, padding=1, groups="depthwise",
                                names=("conv_b", "bn_b", "act_b"))
            y = squeeze_excitation(b, y, int(self.out * self.squeeze), "silu", "sigmoid")
            y = b.conv(y, name="conv_c", out=self.out, bias=True)
            x = b.add(shortcut, b.stochastic_depth(y), name="add")
        x = _partition_attention(b, x, "window", self.head_dim, self.partition, self.mlp_ratio)
        return _partition_attention(b, x, "grid", self.head_dim, self.partition, self.mlp_ratio)
