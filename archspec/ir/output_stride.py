"""Output stride as a rewrite before lowering: a stage whose stride would take the network past
`output_stride` (or that says `dilate: true`) keeps its resolution and dilates instead, exactly
as torchvision's `replace_stride_with_dilation` does: the dilation grows by the stride it
replaces, and a dilated stage's first block gets the previous dilation or the new one, as
the block family's `first_block_dilation` says (ResNet: previous; MobileNet-v3: new)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import LocatedError
from .graph import INPUT, Graph
from .op import MAX_SIZE, RF


class StrideError(LocatedError):
    """The output stride cannot be reached; `origin` is where in the spec."""


def out_jump(graph: Graph, jump: tuple[int, int]) -> tuple[int, int]:
    """The stride (jump) of the graph's output when its input has stride `jump`."""
    fields = {INPUT: RF(stride=jump)}
    for i, node in enumerate(graph.nodes):
        fields[i] = node.op.rf([fields[j] for j in node.inputs], graph.in_shapes(node))
    return fields[graph.output].stride


@dataclass
class StagePlan:
    stride: int  # the first block's stride after the rewrite
    first_dilation: int
    dilation: int  # the other blocks'

    def context(self, index: int) -> dict[str, int]:
        """The `BlockContext` fields of block `index` of the stage."""
        return {"stride": self.stride if index == 0 else 1,
                "dilation": self.first_dilation if index == 0 else self.dilation}


class Dilations:
    """Walks the stages in order; `jump` is the stride of the features so far (tracked only
    when an `output_stride` is asked for)."""

    def __init__(self, target: int | None, jump: tuple[int, int]):
        self.target = target
        self.jump = jump
        self.dilation = 1

    def stage(self, index: int, family: str, stride: int, dilate: bool | str, rule: str | None) -> StagePlan:
        """`dilate`: true, or the first block's rule (`previous` / `new`) in place of the family's `rule`."""
        if isinstance(dilate, str):
            rule = dilate if rule is not None else None
            dilate = True
        if self.target is not None and max(self.jump) * stride > self.target:
            dilate = True
        if not dilate or stride == 1:
            return StagePlan(stride, self.dilation, self.dilation)
        if rule is None:
            why = f"output_stride {self.target}" if self.target is not None else "dilate: true"
            raise StrideError(f"{why} would trade stage {index}'s stride {stride} for dilation, but block type "
                              f"'{family}' cannot dilate", ("stages", index))
        previous = self.dilation
        self.dilation *= stride
        if self.dilation > MAX_SIZE:
            raise StrideError(f"trading stage {index}'s stride {stride} for dilation makes the dilation "
                              f"{self.dilation:,}, more than {MAX_SIZE:,} (the largest size of any layer)", ("stages", index))
        return StagePlan(1, previous if rule == "previous" else self.dilation, self.dilation)

    def passed(self, graph: Graph) -> None:
        if self.target is not None:
            self.jump = out_jump(graph, self.jump)

    def check(self) -> None:
        """After the last stage: the features are at the stride asked for."""
        if self.target is not None and self.jump != (self.target, self.target):
            reached = self.jump[0] if self.jump[0] == self.jump[1] else f"{self.jump[0]}x{self.jump[1]}"
            raise StrideError(
                f"{self.target} cannot be reached: with every stage stride that would pass it "
                f"turned into dilation, the last stage's features are at stride {reached} (only a stage's "
                "`stride` can become dilation, not a stride inside the stem or a layer)", ("output_stride",))
