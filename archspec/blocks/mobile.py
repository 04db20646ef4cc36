"""Depthwise families: MobileNet-v1's separable block and the inverted residual of
MobileNet-v2, MobileNet-v3 and EfficientNet.

One implementation, `InvertedResidual`, covers the three later networks (and MNASNet); `bneck` and
`mbconv` are the same block with the defaults of their papers, so a spec row reads
like a row of the paper's table:

    - {block: inverted_residual, expand: 6, out: 24, repeat: 2, stride: 2}        # MobileNet-v2 (t, c, n, s)
    - {block: bneck, kernel: 5, expanded: 72, out: 40, se: true, act: relu, stride: 2}  # MobileNet-v3
    - {block: mbconv, expand: 6, kernel: 5, out: 40, repeat: 2, stride: 2}          # EfficientNet
    - {block: fused_mbconv, expand: 4, kernel: 3, out: 48, repeat: 4, stride: 2}    # EfficientNet-V2
    - {block: mnasnet, expand: 3, kernel: 5, out: 40, repeat: 3, stride: 2}         # MNASNet

Channel rounding is torchvision's `_make_divisible`, so compound scaling (which
rescales `out` and `expanded`) gives torchvision's widths for the inner layers too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from ..ir.builder import GraphBuilder, Value
from ..ir.ops.activation import ActKind
from ..spec.expr import make_divisible
from ..spec.families import BlockContext, BlockFamily, register_block
from .squeeze_excite import squeeze_excitation

# Expanded widths are rounded to a multiple of this, as torchvision's MBConv does.
CHANNEL_DIVISOR = 8


@register_block("depthwise_separable")
class DepthwiseSeparable(BlockFamily):
    """`{block: depthwise_separable, out: 128, stride: 2}`: MobileNet-v1's unit.

    A depthwise kxk convolution (carrying the stride), then a pointwise 1x1 to `out`
    channels, each followed by norm and activation (Figure 3 of the paper).
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    kernel: int = Field(default=3, ge=1)
    act: ActKind | None = None  # None: the stage's default activation

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        act = self.act or True
        with b.scope("depthwise"):
            x = b.conv_norm_act(x, out=x.channels, kernel=self.kernel, stride=ctx.stride, groups=x.channels, act=act)
        with b.scope("pointwise"):
            return b.conv_norm_act(x, out=self.out, kernel=1, act=act)


@register_block("inverted_residual")
class InvertedResidual(BlockFamily):
    """`{block: inverted_residual, expand: 6, out: 24}`: the inverted residual with a linear bottleneck.

    1x1 expansion (skipped when it would not change the width), depthwise kxk
    (strided), optional squeeze-and-excitation, linear 1x1 projection (norm, no
    activation), and a skip connection when stride is 1 and the width is kept.

    * Width: `expanded` channels if given (MobileNet-v3's "exp size"), else
      `make_divisible(in * expand, 8)`.
    * `se`: squeeze ratio (`true` means 1/4). The squeeze width is
      `make_divisible(int(base * se), se_divisor)` where base is the block's input
      (`se_of: input`, EfficientNet) or its expanded width (MobileNet-v3).
    * `drop_path`: the network's stochastic-depth rate; block i of n drops its
      residual branch with probability `drop_path * i / n` in training
      (torchvision's linear schedule over the global block index).
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    channel_fields: ClassVar[tuple[str, ...]] = ("out", "expanded")
    # torchvision's dilated MobileNet-v3 (segmentation backbones) dilates the stage's first block too.
    first_block_dilation: ClassVar[Literal["previous", "new"] | None] = "new"

    out: int = Field(ge=1)
    expand: float = Field(default=1.0, gt=0, le=64)
    expanded: int | None = Field(default=None, ge=1)
    kernel: int = Field(default=3, ge=1)
    act: ActKind | None = None  # None: the stage's default activation
    se: float = Field(default=0.0, ge=0, le=1)
    se_of: Literal["input", "expanded"] = "expanded"
    se_divisor: int = Field(default=CHANNEL_DIVISOR, ge=1)
    se_act: ActKind = "relu"
    se_gate: ActKind = "sigmoid"
    drop_path: float = Field(default=0.0, ge=0, lt=1)
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = "n"

    @field_validator("se", mode="before", json_schema_input_type=float | bool)
    @classmethod
    def _se_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return 0.25 if value else 0.0
        return value

    def expanded_width(self, channels: int) -> int:
        if self.expanded is not None:
            return self.expanded
        return make_divisible(channels * self.expand, CHANNEL_DIVISOR)

    def squeeze_width(self, channels: int, expanded: int) -> int:
        base = channels if self.se_of == "input" else expanded
        return make_divisible(int(base * self.se), self.se_divisor)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        act = self.act or True
        width = self.expanded_width(x.channels)
        y = x
        if width != x.channels:
            with b.scope("expand"):
                y = b.conv_norm_act(y, out=width, kernel=1, act=act)
        with b.scope("depthwise"):
            y = b.conv_norm_act(y, out=width, kernel=self.kernel, stride=ctx.stride, groups=width, act=act,
                                dilation=ctx.dilation)
        if self.se > 0:
            y = squeeze_excitation(b, y, self.squeeze_width(x.channels, width), self.se_act, self.se_gate)
        with b.scope("project"):
            y = b.conv_norm_act(y, out=self.out, kernel=1, act=False)
        return residual_when_shape_kept(b, x, y, ctx)


def residual_when_shape_kept(b: GraphBuilder, x: Value, y: Value, ctx: BlockContext) -> Value:
    """`y + x` when the block keeps the shape (stride 1, same width), with the block's stochastic
    depth on `y`; else `y` alone (MobileNet-v2, EfficientNet, MNASNet)."""
    if ctx.stride != 1 or x.channels != y.channels:
        return y
    return b.add(b.stochastic_depth(y), x, name="add")


@register_block("bneck")
class Bneck(InvertedResidual):
    """`{block: bneck, kernel: 5, expanded: 72, out: 40, se: true, act: relu}`: MobileNet-v3's block.

    The columns of the paper's Table 1 (exp size, #out, SE, NL, s); squeeze-and-
    excitation squeezes the expanded width by 4 (rounded to 8) and gates with a
    hard sigmoid.
    """

    se_gate: ActKind = "hardsigmoid"


@register_block("mbconv")
class MBConv(InvertedResidual):
    """`{block: mbconv, expand: 6, kernel: 5, out: 40}`: EfficientNet's MBConv.

    Squeeze-and-excitation on by default, squeezing the block's input width by 4
    (`max(1, in // 4)`), with SiLU inside and a sigmoid gate.
    """

    se: float = Field(default=0.25, ge=0, le=1)
    se_of: Literal["input", "expanded"] = "input"
    se_divisor: int = Field(default=1, ge=1)
    se_act: ActKind = "silu"
    se_gate: ActKind = "sigmoid"


@register_block("fused_mbconv")
class FusedMBConv(BlockFamily):
    """`{block: fused_mbconv, expand: 4, kernel: 3, out: 48}`: EfficientNet-V2's Fused-MBConv (Tan & Le, 2021).

    MBConv's 1x1 expansion and kxk depthwise conv fused into one full kxk conv (strided) to the
    expanded width `make_divisible(in * expand, 8)`, then a linear 1x1 projection (norm, no
    activation); with `expand: 1`, the kxk conv goes straight to `out` (norm and activation) and
    there is no projection. No squeeze-and-excitation. A skip connection when stride is 1 and the
    width is kept, with stochastic depth on the branch as in `mbconv`: block i of n drops it with
    probability `drop_path * i / n` (n counts every block of the network, fused or not).
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    channel_fields: ClassVar[tuple[str, ...]] = ("out",)

    out: int = Field(ge=1)
    expand: float = Field(default=4.0, gt=0, le=64)
    kernel: int = Field(default=3, ge=1)
    act: ActKind | None = None  # None: the stage's default activation
    drop_path: float = Field(default=0.0, ge=0, lt=1)
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = "n"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        act = self.act or True
        width = make_divisible(x.channels * self.expand, CHANNEL_DIVISOR)
        if width != x.channels:
            with b.scope("expand"):
                y = b.conv_norm_act(x, out=width, kernel=self.kernel, stride=ctx.stride, act=act)
            with b.scope("project"):
                y = b.conv_norm_act(y, out=self.out, kernel=1, act=False)
        else:
            with b.scope("fused"):
                y = b.conv_norm_act(x, out=self.out, kernel=self.kernel, stride=ctx.stride, act=act)
        return residual_when_shape_kept(b, x, y, ctx)


@register_block("mnasnet")
class MNASNetBlock(InvertedResidual):
    """`{block: mnasnet, expand: 3, kernel: 5, out: 40}`: MNASNet-B1's inverted residual (Tan et al., 2019).

    The inverted residual of MobileNet-v2 with the paper's kernel per stage, always expanded to
    exactly `in * expand` channels (no rounding: torchvision's `_InvertedResidual`), no
    squeeze-and-excitation and no stochastic depth.
    """

    expand: float = Field(default=6.0, gt=0, le=64)

    def expanded_width(self, channels: int) -> int:
        return int(channels * self.expand) if self.expanded is None else self.expanded
