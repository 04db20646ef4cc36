"""Transformer blocks: ViT's encoder layer (Dosovitskiy et al., 2020) and Swin's block (Liu et al.,
2021; v2, 2022), as torchvision builds them, from the token and attention ops."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ..core.errors import BlockError
from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


def _mlp(b: GraphBuilder, x: Value, hidden: int, dropout: float, linear: str) -> Value:
    """Two layers with the default activation between, each followed by dropout (torchvision's MLP)."""
    with b.scope("mlp"):
        width = x.shape[-1] if linear == "linear" else x.channels
        y = b.op(linear, x, out=hidden)
        y = b.act(y)
        if dropout:
            y = b.op("dropout", y, p=dropout)
        y = b.op(linear, y, out=width)
        if dropout:
            y = b.op("dropout", y, p=dropout)
    return y


@register_block("encoder_layer")
class EncoderLayer(BlockFamily):
    """`{block: encoder_layer, heads: 12, mlp: 3072}` on a token sequence: layer norm, multi-head
    self-attention, dropout, plus the input; layer norm, MLP (linear to `mlp`, the default
    activation, linear back), plus that. Pre-norm, as ViT and torchvision's EncoderBlock."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    unstrided_because: ClassVar[str] = "an encoder layer keeps its sequence"
    channel_fields: ClassVar[tuple[str, ...]] = ("mlp",)

    heads: int = Field(ge=1)
    mlp: int = Field(ge=1)
    dropout: float = Field(default=0.0, ge=0, le=1)
    attention_dropout: float = Field(default=0.0, ge=0, le=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.norm(x, name="ln_1")
        y = b.op("attention", y, name="self_attention", heads=self.heads, dropout=self.attention_dropout)
        if self.dropout:
            y = b.op("dropout", y, name="dropout", p=self.dropout)
        x = b.add(y, x, name="add_1")
        y = b.norm(x, name="ln_2")
        y = _mlp(b, y, self.mlp, self.dropout, "linear")
        return b.add(x, y, name="add_2")


@register_block("swin")
class SwinBlock(BlockFamily):
    """`{block: swin, out: 96, heads: 3, window: 7}` on a C x H x W map: window attention and an
    MLP (1x1 convs to `mlp_ratio * out` and back), each a residual branch with stochastic depth.

    Odd blocks of a stage shift their windows by half a window (`window // 2`). Version 1 normalises
    each branch's input (pre-norm); version 2 its output (post-norm, Swin v2), and uses cosine
    attention with the continuous position bias. A stage's first block with `stride: 2` merges
    patches first, as torchvision's PatchMerging between stages: 2x2 neighbourhoods to channels,
    norm and a 1x1 projection to `out` (v2: projection, then norm). `drop_path` is the network's
    rate, scheduled linearly over all blocks."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    heads: int = Field(ge=1)
    window: int = Field(default=7, ge=1)
    mlp_ratio: float = Field(default=4.0, gt=0)
    version: Literal[1, 2] = 1
    dropout: float = Field(default=0.0, ge=0, le=1)
    attention_dropout: float = Field(default=0.0, ge=0, le=1)
    drop_path: float = Field(default=0.0, ge=0, le=1)
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = "n-1"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        if ctx.stride == 2:
            with b.scope("downsample"):
                x = b.op("patch_merge", x)
                if self.version == 1:
                    x = b.norm(x, name="norm")
                x = b.conv(x, name="reduction", out=self.out, bias=False)
                if self.version == 2:
                    x = b.norm(x, name="norm")
        elif ctx.stride != 1:
            raise BlockError(f"a swin stage's stride is 1 or 2 (patch merging), not {ctx.stride}")
        shift = 0 if ctx.index % 2 == 0 else self.window // 2
        attention: dict[str, Any] = {"heads": self.heads, "window_size": self.window, "shift": shift, "version": self.version,
                     "dropout": self.attention_dropout, "proj_dropout": self.dropout}
        pre = self.version == 1
        y = b.norm(x, name="norm1") if pre else x
        y = b.op("window_attention", y, name="attn", **attention)
        y = y if pre else b.norm(y, name="norm1")
        x = b.add(x, b.stochastic_depth(y, "drop_path1"), name="add_1")
        y = b.norm(x, name="norm2") if pre else x
        y = _mlp(b, y, int(x.channels * self.mlp_ratio), self.dropout, "conv")
        y = y if pre else b.norm(y, name="norm2")
        return b.add(x, b.stochastic_depth(y, "drop_path2"), name="add_2")
