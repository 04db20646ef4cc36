"""RegNet's design space (Radosavovic et al., "Designing Network Design Spaces", 2020):
six numbers give every stage's width, depth and group width.

Block j of d gets the width u_j = w_0 + w_a * j, quantised in log space with base w_m
(u_j = w_0 * w_m^s_j, s_j rounded) and then to a multiple of 8; blocks of equal width form
a stage. Each stage's bottleneck width (width * bottleneck ratio) is then made a multiple of
its group width. This is torchvision's `BlockParams.from_init_params` (the zoo's RegNets are
checked against it) computed in float64 like pycls's `generate_regnet`.

The sampler draws the six numbers as pycls's `regnet_sampler` does: depth uniform, w_0, w_a
and w_m log-uniform (quanta 8, 0.1, 0.001), the group width a power of two below 8 or a
log-uniform multiple of 8 above, the bottleneck ratio a power of two.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from ..core.errors import ArchspecError

from ..spec.expr import make_divisible
from ..spec.lower import MAX_NODES
from .samplers import (Drawer, StrictModel, drawer_of, is_multiple, is_power2, log_uniform_drawer, power2_or_log_uniform_drawer,
                       power2_uniform_drawer, uniform_drawer)

QUANT = 8
# The largest value of any of the six parameters: widths are channel counts (an input has at most
# 65,536 channels), and within it the width rule's arithmetic stays in floats (w_a: 1e308 overflowed).
MAX_PARAM = 1 << 16


class RegNetError(ArchspecError, ValueError):
    """Parameters outside RegNet's rule (w_0 not a multiple of 8, w_m <= 1, ...)."""


def regnet_stages(depth: int, w_0: float, w_a: float, w_m: float, group_width: int,
                  bottleneck: float = 1.0) -> dict[str, list]:
    """Per-stage `widths`, `depths` and `group_widths` of a RegNet."""
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % QUANT != 0 or depth < 1:
        raise RegNetError(f"RegNet needs w_a >= 0, w_0 > 0 a multiple of {QUANT}, w_m > 1 and depth >= 1; "
                          f"got w_0={w_0}, w_a={w_a}, w_m={w_m}, depth={depth}")
    log_m = math.log(w_m)
    widths: list[int] = []
    depths: list[int] = []
    last_s = None
    for j in range(depth):
        s = round(math.log((j * w_a + w_0) / w_0) / log_m)
        if s == last_s:  # the same width as the block before (s never falls: w_a >= 0)
            depths[-1] += 1
            continue
        last_s, w = s, int(round(w_0 * w_m ** s / QUANT)) * QUANT
        if widths and widths[-1] == w:  # torchvision starts a stage wherever the width changes
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    bottlenecks = [int(w * bottleneck) for w in widths]
    group_widths = [min(group_width, b) for b in bottlenecks]
    widths = [int(make_divisible(b, g) / bottleneck) for b, g in zip(bottlenecks, group_widths)]
    return {"widths": widths, "depths": depths, "group_widths": group_widths}


_Bound = float | tuple[float, float]


class RegNetParams(StrictModel):
    """`{regnet: {depth: [12, 28], w_0: [8, 256], w_a: [8, 256], w_m: [2, 3], group_width: [1, 32],
    bottleneck: 1, stages: 4}}`: a number fixes a parameter, `[low, high]` draws it."""

    depth: int | tuple[int, int] = Field(description="blocks in all; uniform")
    w_0: int | tuple[int, int] = Field(description="initial width, a multiple of 8; log-uniform, quantum 8")
    w_a: float | tuple[float, float] = Field(description="width slope, >= 0; log-uniform, quantum 0.1")
    w_m: float | tuple[float, float] = Field(description="width multiplier per stage, > 1; log-uniform, quantum 0.001")
    group_width: int | tuple[int, int] = Field(description="powers of two below 8, multiples of 8 above")
    bottleneck: float | tuple[float, float] = Field(default=1.0, description="bottleneck ratio b: a power of two")
    stages: int | None = Field(default=None, ge=1, description="keep only networks with this many stages "
                                                                "(the base spec's stage count)")

    @model_validator(mode="after")
    def _check(self) -> "RegNetParams":
        # regnet_stages's rule, checked on what the space says (a fixed value or both ends of a range),
        # so that no draw can break it
        lowest = {"depth": (1, "at least 1"), "w_0": (1, "at least 1"), "w_a": (0, "at least 0"),
                  "w_m": (1, "above 1"), "group_width": (1, "at least 1"), "bottleneck": (0, "above 0")}
        for name, (least, words) in lowest.items():
            value = getattr(self, name)
            ends = value if isinstance(value, tuple) else (value, value)
            shown = list(value) if isinstance(value, tuple) else value
            if not all(isinstance(v, int) or math.isfinite(v) for v in ends):  # an int is finite (and may not fit a float)
                raise ValueError(f"{name}: must be finite, got {shown}")
            if ends[0] < least or (words.startswith("above") and ends[0] == least):
                raise ValueError(f"{name}: must be {words}, got {shown}")

        most = self.depth[1] if isinstance(self.depth, tuple) else self.depth
        if most > MAX_NODES:
            raise ValueError(f"depth: at most {MAX_NODES:,} blocks (no network of more layers is lowered), got {most:,}")
        if not isinstance(self.w_0, tuple) and self.w_0 % QUANT:
            raise ValueError(f"w_0: must be a multiple of {QUANT}, got {self.w_0}")
        quanta = {"depth": 1, "w_0": 8, "w_a": 0.1, "w_m": 0.001}
        for name, q in quanta.items():
            value = getattr(self, name)
            if isinstance(value, tuple):
                low, high = value
                if not 0 < low <= high:
                    raise ValueError(f"{name}: [{low}, {high}] must be a positive, non-empty range")
                if not (is_multiple(low, q) and is_multiple(high, q)):
                    raise ValueError(f"{name}: the range's ends must be multiples of {q}, got [{low}, {high}]")
        for name in ("group_width", "bottleneck"):
            value = getattr(self, name)
            if isinstance(value, tuple) and not (value[0] <= value[1] and all(map(is_power2, value))):
                raise ValueError(f"{name}: a range of powers of two, such as [1, 32], got [{value[0]}, {value[1]}]")
        for name in ("w_0", "w_a", "w_m", "group_width", "bottleneck"):  # depth has its bound above
            value = getattr(self, name)
            shown = list(value) if isinstance(value, tuple) else value
            if (max(value) if isinstance(value, tuple) else value) > MAX_PARAM:
                raise ValueError(f"{name}: must be at most {MAX_PARAM:,}, got {shown}")
        return self

    def drawers(self) -> tuple[tuple[str, Callable[[random.Random], Any], type], ...]:
        """(name, drawer, type) of the six parameters, in the order they are drawn (a fixed order: the
        same seed, the same draws); a fixed parameter's drawer gives its value and draws nothing.
        Made on the first draw and kept (`drawer_of`)."""
        return drawer_of(self, self._drawers)

    def _drawers(self) -> tuple[tuple[str, Callable[[random.Random], Any], type], ...]:

        def drawer(name: str, make: Callable[[float, float, float], Drawer], q: float) -> Callable[[random.Random], Any]:
            value = getattr(self, name)
            if isinstance(value, tuple):
                return make(value[0], value[1], q)
            return lambda rng: value

        return (("depth", drawer("depth", uniform_drawer, 1), int), ("w_0", drawer("w_0", log_uniform_drawer, 8), int),
                ("w_a", drawer("w_a", log_uniform_drawer, 0.1), float),
                ("w_m", drawer("w_m", log_uniform_drawer, 0.001), float),
                ("group_width", drawer("group_width", power2_or_log_uniform_drawer, 8), int),
                ("bottleneck", drawer("bottleneck", power2_uniform_drawer, 1 / 128), float))

    def draw_params(self, rng: random.Random) -> dict[str, Any]:
        """The six numbers, drawn where a range is given."""
        return {name: int(draw(rng)) if kind is int else draw(rng) for name, draw, kind in self.drawers()}


class RegNet(StrictModel):
    """`{regnet: {...}}`: a mapping with the six parameters, the per-stage `widths`, `depths` and
    `group_widths`, and `num_stages`. Set at `vars` it becomes vars of those names, the names the
    zoo's RegNet specs use (specs/regnet_x_400mf.yaml), so their stages read `${widths[0]}`."""

    regnet: RegNetParams

    @staticmethod
    def entries() -> tuple[str, ...]:
        """The names of the drawn mapping's entries."""
        return (*RegNetParams.model_fields.keys() - {"stages"}, "widths", "depths", "group_widths", "num_stages")

    def draw(self, rng: random.Random) -> dict[str, Any]:
        params = self.regnet.draw_params(rng)
        stages = regnet_stages(**params)
        return {**params, **stages, "num_stages": len(stages["widths"])}

    def reject(self, value: dict[str, Any]) -> str | None:
        """Why a drawn value is no member of the space (a stage count other than `stages`)."""
        want = self.regnet.stages
        if want is not None and value["num_stages"] != want:
            return f"regnet: not {want} stages"
        return None
