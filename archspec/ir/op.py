"""The primitive-op protocol: everything about one kind of layer, in one place.

An op is a frozen pydantic model whose fields are its hyperparameters, exactly as
a user writes them in a spec (`conv: {out: 64, kernel: 3}`). The same class knows
its shape rule, parameter and buffer counts, multiply-adds, receptive-field
transform, torch constructor and diagram label. Analysis, diagrams, the torch
backend and code export all read these methods; none of them re-derives a number.

Shapes exclude the batch dimension: `(C, H, W)` for feature maps, `(F,)` for flat
vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, model_validator

from ..errors import ArchspecError, unknown_name

Shape = tuple[int, ...]


class ShapeError(ArchspecError):
    """An op cannot accept its input shapes. `spatial_zero` marks a too-small input."""

    def __init__(self, message: str, spatial_zero: bool = False):
        super().__init__(message)
        self.spatial_zero = spatial_zero


@dataclass(frozen=True)
class RF:
    """Receptive field of one unit, per spatial axis (h, w), in input pixels.

    size: extent of the field; jump: distance between neighbouring units' fields
    (the effective stride); padding: how far the first unit's field reaches before
    pixel 0 (its field starts at `-padding`). The centre of unit i lies at
    `-padding + i * jump + (size - 1) / 2`.
    """

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def window(self, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], dilation=(1, 1)) -> "RF":
        """The field after a sliding window (conv or pool)."""
        eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        return RF(
            size=tuple(r + (e - 1) * j for r, e, j in zip(self.size, eff, self.jump)),
            jump=tuple(j * s for j, s in zip(self.jump, stride)),
            padding=tuple(p0 + p * j for p0, p, j in zip(self.padding, padding, self.jump)),
        )

    def whole(self, spatial: Sequence[int]) -> "RF":
        """The field of a unit that sees every position of a (H, W) map (global pooling, flatten)."""
        return RF(
            size=tuple(r + (n - 1) * j for r, n, j in zip(self.size, spatial, self.jump)),
            jump=tuple(j * n for j, n in zip(self.jump, spatial)),
            padding=self.padding,
        )

    @staticmethod
    def union(fields: Sequence["RF"]) -> "RF":
        """The field of a merge (add, concat, mul): every path's field together, so the largest wins."""
        if len(fields) == 1:
            return fields[0]
        padding = tuple(max(f.padding[a] for f in fields) for a in range(2))
        end = tuple(max(f.size[a] - f.padding[a] for f in fields) for a in range(2))
        return RF(
            size=tuple(e + p for e, p in zip(end, padding)),
            jump=tuple(max(f.jump[a] for f in fields) for a in range(2)),
            padding=padding,
        )


@dataclass(frozen=True)
class ModuleCall:
    """How to construct the torch module of an op: `target(*args, **kwargs)`.

    `target` is an import path such as `torch.nn.Conv2d`; export writes it as source.
    """

    target: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionCall:
    """A parameter-free op applied as a function in forward, e.g. `torch.cat(inputs, dim=1)`.

    `style` is how inputs are passed: "binary" folds them with the operator
    (`a + b + c`), "list" passes them as one list argument.
    """

    target: str
    style: str = "binary"
    kwargs: dict[str, Any] = field(default_factory=dict)


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def window_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's output length of a sliding window (conv or pool) along one axis."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = math.ceil(span / stride) + 1
        # PyTorch: the last window must start inside the input or its left padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


class Op(BaseModel):
    """Base of every primitive op. Subclasses set `kind`, `category` and override the rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    kind: ClassVar[str]
    # Colour group in diagrams and grouping in reports.
    category: ClassVar[str] = "other"
    # Number of inputs; None for variadic merges.
    arity: ClassVar[int | None] = 1
    # Field a scalar fills when the spec writes `op: value` (e.g. `act: relu`).
    shorthand: ClassVar[str | None] = None
    # Whether the op may appear directly in stem/head/user layer lists.
    in_layer_lists: ClassVar[bool] = True
    # Optional layer name in the compiled module (`head.fc`).
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        """`act: relu` means `act: {type: relu}`; a bare `flatten` means `flatten: {}`."""
        if data is None:
            return {}
        if not isinstance(data, dict) and cls.shorthand is not None:
            return {cls.shorthand: data}
        return data

    # -- the rules ---------------------------------------------------------------
    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        return 0

    def buffers(self, ins: Sequence[Shape]) -> int:
        return 0

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        return 0

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return RF.union(fields)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall | FunctionCall:
        raise NotImplementedError(f"op '{self.kind}' has no torch form")

    def label(self, ins: Sequence[Shape]) -> str:
        """A short human label: `conv 3x3/2, 64->128`."""
        return self.kind

    def resolved(self, defaults: "OpDefaults") -> "Op":
        """This op with spec defaults filled in (default norm, default activation)."""
        return self

    # Fields that are channel counts, scaled by a width multiplier.
    channel_fields: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class OpDefaults:
    """What a `norm` or `act` without a kind becomes, from the spec's `defaults`."""

    norm: str | None = "batch"
    activation: str | None = "relu"
    norm_eps: float = 1e-5
    norm_momentum: float = 0.1


OPS: dict[str, type[Op]] = {}


def register_op(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op usable in specs and blocks under `cls.kind`."""
    if cls.kind in OPS and OPS[cls.kind] is not cls:
        raise ValueError(f"op kind '{cls.kind}' is already registered by {OPS[cls.kind].__qualname__}")
    OPS[cls.kind] = cls
    return cls


def op_class(kind: str) -> type[Op]:
    from . import ops  # noqa: F401  (registers the built-in ops)

    try:
        return OPS[kind]
    except KeyError:
        raise ArchspecError(unknown_name("layer type", kind, OPS)) from None
