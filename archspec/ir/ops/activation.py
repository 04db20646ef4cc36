"""Activations: parameter-free, shape-preserving."""

from __future__ import annotations

from typing import ClassVar, Literal
from collections.abc import Sequence

from ..op import ModuleCall, Op, OpDefaults, Shape, ShapeError, omit_defaults, register_op

# Every activation, once: its torch module, and whether that module takes `inplace=` (the backend
# decides when running in place is safe). `ActKind`, the spec's choices, is made from it.
ACTIVATIONS: dict[str, tuple[str, bool]] = {
    "relu": ("torch.nn.ReLU", True),
    "relu6": ("torch.nn.ReLU6", True),
    "leaky_relu": ("torch.nn.LeakyReLU", True),
    "gelu": ("torch.nn.GELU", False),
    "silu": ("torch.nn.SiLU", True),
    "hardswish": ("torch.nn.Hardswish", True),
    "hardsigmoid": ("torch.nn.Hardsigmoid", True),
    "sigmoid": ("torch.nn.Sigmoid", False),
    "tanh": ("torch.nn.Tanh", False),
    "identity": ("torch.nn.Identity", False),
}
ActKind = Literal[tuple(ACTIVATIONS)]


@register_op
class Act(Op):
    """An activation: `act: relu`. A bare `act` takes the spec's `defaults.activation`."""

    kind: ClassVar[str] = "act"
    category: ClassVar[str] = "act"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
    example: ClassVar[tuple[dict, list[Shape]]] = ({"type": "relu"}, [(4, 6, 6)])
    shorthand: ClassVar[str] = "type"

    type: ActKind | None = None
    negative_slope: float = 0.01

    def resolved(self, defaults: OpDefaults) -> "Act":
        if self.type is not None:
            return self
        if defaults.activation is None:
            raise ShapeError("a bare 'act' needs defaults.activation to be set")
        return self.model_copy(update={"type": defaults.activation})

    def inplace_capable(self) -> bool:
        return ACTIVATIONS[self.type or "relu"][1]

    def output_is_fresh(self) -> bool:
        return self.type != "identity"  # nn.Identity returns its input itself

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs: dict = {"negative_slope": self.negative_slope} if self.type == "leaky_relu" else {}
        defaults = {"inplace": False} if self.inplace_capable() else {}
        return omit_defaults(ACTIVATIONS[self.type or "relu"][0], {}, {**kwargs, **defaults}, defaults)

    def label(self, ins: Sequence[Shape]) -> str:
        return self.type or "act"
