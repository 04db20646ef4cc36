"""The figures a sweep records for every sample, all read from the analysis `Report` (the one
source of every number; see docs/analysis.md for the conventions), and the bounds on them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator, model_validator

from ..analysis.report import Report, Totals
from .samplers import StrictModel

# The figures that only grow as graphs are added to a network, read from its `Totals` (which a
# `Report` is): a network is over a max bound of one of them as soon as the graphs lowered so far are.
GROWING: dict[str, Callable[[Totals], int]] = {
    "params": lambda t: t.params,
    "buffers": lambda t: t.buffers,
    "macs": lambda t: t.macs,
    "flops": lambda t: t.flops,
    "activation_bytes": lambda t: t.activation_bytes,
    "peak_activation_bytes": lambda t: t.peak_activation_bytes,
    "depth": lambda t: t.depth,
}

# The growing figures that `Totals.add_counts` keeps: a sweep bound on these alone counts each graph's
# parameters, buffers and MACs, not the rest of its facts.
COUNTED = frozenset({"params", "buffers", "macs", "flops"})

# name -> (what it is, how to read it from a report)
FIGURES: dict[str, tuple[str, Callable[[Report], int]]] = {
    "params": ("parameters", GROWING["params"]),
    "buffers": ("buffer elements (batch-norm statistics)", GROWING["buffers"]),
    "macs": ("multiply-accumulates on the inference path (torchvision's GFLOPS convention)", GROWING["macs"]),
    "flops": ("2 x macs", GROWING["flops"]),
    "activation_bytes": ("bytes of every layer's output, summed, batch 1, float32", GROWING["activation_bytes"]),
    "peak_activation_bytes": ("most output bytes alive at once in a forward pass, batch 1, float32",
                              GROWING["peak_activation_bytes"]),
    "depth": ("most conv and linear layers on an input-to-output path", GROWING["depth"]),
    "receptive_field": ("receptive field size at the end of the feature extractor, the smaller of height "
                        "and width", lambda r: min(r.receptive_field.size)),
    "output_stride": ("effective stride (jump) at the end of the feature extractor, the larger of height "
                      "and width", lambda r: max(r.receptive_field.stride)),
}

_SUFFIXES = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKMGT]?)\s*$")


def figures_of(report: Report) -> dict[str, int]:
    return {name: read(report) for name, (_, read) in FIGURES.items()}


def amount(value: Any) -> float:
    """A number, or text such as `400M`, `4e8`, `1.5G` (YAML reads `4e8` as text)."""
    if isinstance(value, bool):
        raise ValueError(f"a bound is a number such as 4e8 or '400M', got {value}")
    if isinstance(value, (int, float)):
        if value != value:  # NaN: every comparison with it is false, so it would bound nothing
            raise ValueError("a bound is a number such as 4e8 or '400M', got NaN")
        return value
    match = _AMOUNT.match(str(value))
    if not match:
        raise ValueError(f"a bound is a number such as 4e8 or '400M', got {value!r}")
    number = float(match.group(1)) * _SUFFIXES[match.group(2)]
    return int(number) if number.is_integer() else number


class Bounds(StrictModel):
    """`{min: 1e6, max: 400M}` (either or both, inclusive)."""

    min: float | None = None
    max: float | None = None

    @field_validator("min", "max", mode="before", json_schema_input_type=float | str | None)
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return None if value is None else amount(value)

    @model_validator(mode="after")
    def _some(self) -> "Bounds":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, such as {max: 400M}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): no network can meet it")
        return self

    def broken(self, name: str, value: float) -> str | None:
        """The reason `value` is out of bounds (a short, countable text), or None."""
        if self.min is not None and value < self.min:
            return f"{name} < {_short(self.min)}"
        if self.max is not None and value > self.max:
            return f"{name} > {_short(self.max)}"
        return None


def _short(value: float) -> str:
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= scale and (value / scale) == round(value / scale, 3):
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


Constraints = dict[str, Bounds]
ConstraintField = Field(default_factory=dict, description="figure: {min, max}; figures: " + ", ".join(FIGURES))
