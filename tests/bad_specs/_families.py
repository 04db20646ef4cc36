"""Two block families with a wiring mistake, written as a user would write a family.

`tests/test_bad_specs.py` registers them only while the corpus runs: the merge checks
(residual add of mismatched shapes, concat of mismatched spatial sizes) need a family
whose paths can disagree, and the built-in families always agree.
"""

from __future__ import annotations

from archspec.spec.families import BlockContext, BlockFamily
from archspec.ir.builder import GraphBuilder, Value


class SkipAdd(BlockFamily):
    """A residual block that forgets to project its shortcut when the stage is strided."""

    out: int

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.conv(x, name="conv", out=self.out, kernel=3, stride=ctx.stride, padding=1)
        return b.add(y, x, name="add")


class TwoBranches(BlockFamily):
    """Concatenates a 3x3 conv branch (with the given padding) and a 1x1 conv branch."""

    strided = False
    out: int
    padding: int = 1

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        left = b.conv(x, name="branch3x3", out=self.out, kernel=3, padding=self.padding)
        right = b.conv(x, name="branch1x1", out=self.out, kernel=1)
        return b.concat(left, right, name="cat")


FAMILIES = {"skip_add": SkipAdd, "two_branches": TwoBranches}
