"""Field types shared by op definitions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..op import MAX_SIZE, ShapeError

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
# A spatial size (kernel, stride, padding, dilation): bounded like the input's sides.
PosSize = Annotated[int, Field(ge=1, le=MAX_SIZE)]
NonNegSize = Annotated[int, Field(ge=0, le=MAX_SIZE)]
# An int for both axes, or [h, w] for asymmetric kernels such as 1x7.
PosPair = PosSize | tuple[PosSize, PosSize]
NonNegPair = NonNegSize | tuple[NonNegSize, NonNegSize]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def rate_text(p: float) -> str:
    """A probability for a label, to three decimals at most: 0.00588 -> 0.006, 0.2 -> 0.2."""
    text = f"{p:.3f}".rstrip("0").rstrip(".")
    return text if text != "0" or p == 0 else f"{p:.1g}"


def hw(pair: tuple[int, int]) -> str:
    """(3, 3) -> "3x3"."""
    return f"{pair[0]}x{pair[1]}"


def spatial(shape: tuple[int, ...], kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{kind} needs a (C, H, W) feature map, got a flat vector of {shape[0]}; remove the flatten before it")
    return shape
