"""A new op from Python: ProGAN's pixel norm (Karras et al., 2018), x / sqrt(mean_c(x^2) + eps)."""

from collections.abc import Sequence
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from archspec.ir.op import ModuleCall, Op, Shape, register_op


class PixelNorm(nn.Module):
    """The torch module; self-contained, so that `archspec export --format python` can copy it."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


@register_op
class PixelNormOp(Op):
    """`pixel_norm` or `pixel_norm: {eps: 1e-8}` in a spec or a block."""

    kind: ClassVar[str] = "pixel_norm"  # the key written in specs
    category: ClassVar[str] = "norm"  # colour in diagrams, group in reports
    shorthand: ClassVar[str] = "eps"  # `pixel_norm: 1e-6` fills this field
    # The facts every op states (Op in archspec/ir/op.py says what each means; register_op
    # refuses an op that leaves one out, since a wrong default would go unnoticed):
    depth_layer: ClassVar[bool] = False  # not a conv or linear layer: depth does not count it
    ends_features: ClassVar[bool] = False  # not a classifier's global pool, flatten or linear
    output_overwritable: ClassVar[bool] = False  # a sum may not be written into its output
    init_kind: ClassVar[str | None] = None  # no `init:` rule applies: it has no weights
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True  # drawn in the row of the layer before it, as norms are
    fresh_output: ClassVar[bool] = True  # optional (default False): its output is new memory, not a
    # view of its input, so an activation after it may run in place

    eps: float = Field(1e-8, gt=0)  # the fields are what a spec may write; unknown keys are errors

    # The rules below default to: shape unchanged, no parameters, no buffers, 0 MACs, receptive
    # field unchanged. Override each one your op changes (see archspec/ir/ops/ for every built-in).
    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        return ins[0]

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        return 0  # as archspec counts the built-in norms

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall(f"{__name__}.PixelNorm", kwargs={"eps": self.eps})

    def label(self, ins: Sequence[Shape]) -> str:
        return "pixel norm"
