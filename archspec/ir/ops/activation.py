"""Activations: parameter-free, shape-preserving."""

from __future__ import annotations

from typing import ClassVar, Literal
from collections.abc import Sequence

from ..op import ModuleCall, Op, OpDefaults, Shape, ShapeError, omit_defaults, register_op

ActKind = Literal["relu", "relu6", "leaky_relu", "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "identity"]

_TORCH = {
    "relu": "torch.nn.ReLU",
    "relu6": "torch.nn.ReLU6",
    "leaky_relu": "torch.nn.LeakyReLU",
    "gelu": "torch.nn.GELU",
    "silu": "torch.nn.SiLU",
    "hardswish": "torch.nn.Hardswish",
    "hardsigmoid": "torch.nn.Hardsigmoid",
    "sigmoid": "torch.nn.Sigmoid",
    "tanh": "torch.nn.Tanh",
    "identity": "torch.nn.Identity",
}
# Activations whose torch module takes `inplace=`; the backend decides when it is safe.
INPLACE_CAPABLE = {"relu", "relu6", "leaky_relu", "silu", "hardswish", "hardsigmoid"}


@register_op
class Act(Op):
    """An activation: `act: relu`. A bare `act` takes the spec's `defaults.activation`."""

    kind: ClassVar[str] = "act"
    category: ClassVar[str] = "act"
    shorthand: ClassVar[str] = "type"

    type: ActKind | None = None
    negative_slope: float = 0.01

    def resolved(self, defaults: OpDefaults) -> "Act":
        if self.type is not None:
            return self
        if defaults.activation is None:
            raise ShapeError("a bare 'act' needs defaults.activation to be set")
        return self.model_copy(update={"type": defaults.activation})

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs: dict = {"negative_slope": self.negative_slope} if self.type == "leaky_relu" else {}
        defaults = {"inplace": False} if self.type in INPLACE_CAPABLE else {}
        return omit_defaults(_TORCH[self.type or "relu"], {}, {**kwargs, **defaults}, defaults)

    def label(self, ins: Sequence[Shape]) -> str:
        return self.type or "act"
