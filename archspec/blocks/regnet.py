"""RegNet's residual bottleneck block (Radosavovic et al., "Designing Network Design Spaces", 2020)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..core.errors import BlockError
from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block
from .squeeze_excite import squeeze_excitation


@register_block("regnet")
class RegNetBlock(BlockFamily):
    """`{block: regnet, out: 152, group_width: 8, se: 0.25}`: the X block (Y with `se`), as torchvision builds it.

    1x1 conv to the bottleneck width `round(out * bottleneck)`, 3x3 grouped conv (groups of
    `group_width` channels, carrying the stride), optional squeeze-and-excitation, 1x1 conv to `out`
    (norm, no activation); plus the input, projected by a strided 1x1 conv and norm when the shape
    changes; then the activation. Unlike ResNet's, the projection is made first (torchvision's
    `proj` precedes `f`), so weights pair with torchvision's by position.

    `se` is RegNet-Y's squeeze ratio, relative to the block's *input* width: the squeeze has
    `round(se * in)` channels (ReLU inside, sigmoid gate). The spec computes each stage's `out`
    and `group_width` from the RegNet parameters (w_0, w_a, w_m, depth): see specs/regnet_x_400mf.yaml.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    group_width: int = Field(ge=1)
    bottleneck: float = Field(default=1.0, gt=0)
    se: float = Field(default=0.0, ge=0, le=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        shortcut = x
        if ctx.stride != 1 or x.channels != self.out:
            with b.scope("proj"):
                shortcut = b.conv_norm_act(x, self.out, stride=ctx.stride, act=False)
        width = int(round(self.out * self.bottleneck))
        if width % self.group_width:
            raise BlockError(f"the bottleneck width {width} is not a multiple of group_width {self.group_width}")
        with b.scope("a"):
            y = b.conv_norm_act(x, width)
        with b.scope("b"):
            y = b.conv_norm_act(y, width, kernel=3, stride=ctx.stride, groups=width // self.group_width)
        if self.se > 0:
            y = squeeze_excitation(b, y, int(round(self.se * x.channels)), "relu", "sigmoid")
        with b.scope("c"):
            y = b.conv_norm_act(y, self.out, act=False)
        return b.act(b.add(y, shortcut, name="add"), name="act")
