"""Re-parameterisable blocks: parallel linear branches summed in training, one conv once deployed.

RepVGG (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", 2021) and MobileOne
(Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", 2023), as timm builds
them (`RepVggBlock`, `MobileOneBlock` in timm/models/byobnet.py): modules in timm's registration
order and under its names (`identity`, `conv_kxk.conv`, `conv_kxk.bn`, ...), so state_dicts pair
by key. Nothing here merges anything: the deploy pass (archspec/ir/deploy.py) merges any sum of
linear branches of one value, these blocks included.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, StrictBool

from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block


def _branch(b: GraphBuilder, x: Value, scope: str, out: int, kernel: int, stride: int, groups: int | str) -> Value:
    """conv (no bias) -> norm, in scope `scope` (`conv_kxk.conv`, `conv_kxk.bn`)."""
    with b.scope(scope):
        return b.conv_norm_act(x, out, kernel=kernel, stride=stride, groups=groups, act=False)


def _identity(b: GraphBuilder, x: Value, out: int, stride: int) -> Value | None:
    """The norm-only skip branch, where the shape is kept."""
    return b.norm(x, name="identity") if stride == 1 and x.channels == out else None


@register_block("repvgg")
class RepVGGBlock(BlockFamily):
    """`{block: repvgg, out: 96}`: a kxk conv + norm, a 1x1 conv + norm and (when the shape is kept)
    a norm of the input, summed, then ReLU. Deployed, one kxk conv with bias, then ReLU."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    kernel: int = Field(default=3, ge=1)
    groups: int = Field(default=1, ge=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        identity = _identity(b, x, self.out, ctx.stride)
        kxk = _branch(b, x, "conv_kxk", self.out, self.kernel, ctx.stride, self.groups)
        one = _branch(b, x, "conv_1x1", self.out, 1, ctx.stride, self.groups)
        y = b.add(one, kxk, *([identity] if identity is not None else []), name="add")
        return b.act(y, name="act")


def mobileone_unit(b: GraphBuilder, x: Value, out: int, kernel: int, stride: int, groups: int | str,
                   branches: int) -> Value:
    """timm's MobileOneBlock: `branches` kxk conv + norm branches, a 1x1 conv + norm ("scale",
    when kernel > 1) and a norm of the input (when the shape is kept), summed, then ReLU."""
    identity = _identity(b, x, out, stride)
    kxk = [_branch(b, x, f"conv_kxk.{i}", out, kernel, stride, groups) for i in range(branches)]
    scale = [_branch(b, x, "conv_scale", out, 1, stride, groups)] if kernel > 1 else []
    terms = [*scale, *kxk, *([identity] if identity is not None else [])]
    y = b.add(*terms, name="add") if len(terms) > 1 else terms[0]
    return b.act(y, name="act")


@register_block("mobileone")
class MobileOneBlock(BlockFamily):
    """`{block: mobileone, out: 128, branches: 4}`: MobileOne's block (paper, Fig. 3): a depthwise
    3x3 unit carrying the stride (`dw`), then a pointwise 1x1 unit to `out` channels (`pw`), each
    `branches` conv + norm branches plus a scale branch (1x1, depthwise unit only) and a norm skip
    where the shape is kept, summed, then ReLU. `separable: false` is one full 3x3 unit (the stem)."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    out: int = Field(ge=1)
    branches: int = Field(default=1, ge=1)
    kernel: int = Field(default=3, ge=1)
    separable: StrictBool = True

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        if not self.separable:
            return mobileone_unit(b, x, self.out, self.kernel, ctx.stride, 1, self.branches)
        with b.scope("dw"):
            x = mobileone_unit(b, x, x.channels, self.kernel, ctx.stride, "depthwise", self.branches)
        with b.scope("pw"):
            return mobileone_unit(b, x, self.out, 1, 1, 1, self.branches)
