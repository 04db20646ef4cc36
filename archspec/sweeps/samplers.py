"""Samplers: how a value of the space is drawn. Each is a pydantic model of what the space
file says (`{int: [8, 256], draw: log, quantize: 8}`) with a `draw(rng)` method.

The distributions are pycls's (`pycls/sweep/random.py`), so a space written for pycls means
the same here: `uniform` draws f in [low, high + q) and rounds down to a multiple of q;
`log` draws f log-uniformly in (low - min(q, low/2), high] and rounds up to a multiple of q,
so that every multiple of q in [low, high] can come out, with log-uniform odds.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core import memo
from ..core.numbers import SpecNumbers

Draw = Literal["uniform", "log"]


class StrictModel(SpecNumbers, BaseModel):
    """A model of a space file: unknown keys are errors, values are frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def quantize(value: float, q: float, rounding: Callable[[float], int], digits: int) -> float:
    """`value` rounded (`math.floor` or `math.ceil`) to a multiple of `q`, written with q's `digits`
    decimals (`_decimals(q)`), so that 3 x 0.1 is 0.3 and not 0.30000000000000004."""
    return round(rounding(value / q) * q, digits)


@lru_cache(maxsize=64)
def _decimals(q: float) -> int:
    """The digits after the point of q as written (0.001 -> 3, 8 -> 0, 1/128 -> 7)."""
    return max(0, -int(Decimal(str(q)).as_tuple().exponent))


# Each distribution is a drawer: a function of the generator alone, made once for a range, with what
# does not change from draw to draw (the logarithms of the range's ends, q's decimals) worked out
# there. A RegNet sweep draws 3 to 4 times for each network it keeps or rejects, in the sweeping
# process, while its workers wait for the samples. `Random.uniform(a, b)` is `a + (b - a) * random()`,
# written out below with `b - a` made once: the same floats, so a seed gives the draws it gave.
Drawer = Callable[[random.Random], float]


def uniform_drawer(low: float, high: float, q: float) -> Drawer:
    """A multiple of q in [low, high], each equally likely (low and high multiples of q)."""
    span, digits = high + q - low, _decimals(q)
    return lambda rng: quantize(low + span * rng.random(), q, math.floor, digits)


def log_uniform_drawer(low: float, high: float, q: float) -> Drawer:
    """A multiple of q in [low, high] with log-uniform odds (pycls's `log_uniform`)."""
    a = -math.log(high)
    span, digits = -math.log(low - min(q, low / 2)) - a, _decimals(q)
    return lambda rng: quantize(math.exp(-(a + span * rng.random())), q, math.ceil, digits)


def power2_uniform_drawer(low: float, high: float, q: float) -> Drawer:
    """A power of two in [low, high], each equally likely (then a multiple of q)."""
    a = math.log2(low)
    span, digits = math.log2(high) + 1 - a, _decimals(q)
    return lambda rng: quantize(2.0 ** math.floor(a + span * rng.random()), q, math.floor, digits)


def power2_or_log_uniform_drawer(low: float, high: float, q: float) -> Drawer:
    """Powers of two below q, multiples of q above, log-uniform overall (pycls's group widths)."""
    power2 = power2_uniform_drawer(low, high, low)
    above = log_uniform_drawer(max(low, q), high, min(high, q))

    def draw(rng: random.Random) -> float:
        f = power2(rng)
        return above(rng) if f >= q else f

    return draw


# Each sampler's drawers, by the sampler's identity (samplers are frozen), made on its first draw:
# kept here rather than on the model, so that a space pickled for a worker process (spawned, not
# forked: macOS, Windows) holds no function, and a copy with other fields gets drawers of its own.
_DRAWERS: memo.Memo[Any] = memo.Memo("sweeps.drawers", 256)


def drawer_of(sampler: BaseModel, make: Callable[[], Any]) -> Any:
    """`make()`, the drawers of `sampler`, made once for it."""
    found = _DRAWERS.get(id(sampler), sampler)
    return _DRAWERS.put(id(sampler), make(), sampler) if found is memo.MISS else found


def is_multiple(value: float, q: float) -> bool:
    try:
        return Decimal(str(value)) % Decimal(str(q)) == 0
    except InvalidOperation:  # the quotient has more digits than decimal's 28
        raise ValueError(f"{value} is too many steps of {q} from 0: use a coarser quantize or a smaller range") \
            from None


def _check_range(low: float, high: float, draw: Draw) -> None:
    """The checks every range takes, quantised or not."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"the range's ends must be finite numbers, got [{low}, {high}]")
    if low > high:
        raise ValueError(f"the range [{low}, {high}] is empty: the first value must not exceed the second")
    if draw == "log" and low <= 0:
        raise ValueError(f"a log draw needs a positive range, got [{low}, {high}]")


def is_power2(value: float) -> bool:
    return value > 0 and math.log2(value).is_integer()


class Choice(StrictModel):
    """`{choice: [a, b, c]}`: one of the values, each equally likely (any YAML value)."""

    choice: list[Any] = Field(min_length=1)

    @field_validator("choice")
    @classmethod
    def _finite(cls, values: list[Any]) -> list[Any]:
        """No infinity or NaN, at any depth: a drawn value goes into a spec, the table and JSON (which has neither)."""
        stack = list(values)
        while stack:
            value = stack.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"the choices must be finite numbers, got {value}")
            if isinstance(value, (list, dict)):
                stack.extend(value.values() if isinstance(value, dict) else value)
        return values

    def draw(self, rng: random.Random) -> Any:
        return self.choice[rng.randrange(len(self.choice))]

    def order(self, value: Any) -> int:
        """Where a drawn `value` stands among the choices (a sweep sends samples that stand near each
        other to the same worker process: sweeps/engine.py)."""
        for i, choice in enumerate(self.choice):  # a drawn value is one of the list's own objects
            if choice is value:
                return i
        return next((i for i, choice in enumerate(self.choice) if type(choice) is type(value) and choice == value),
                    len(self.choice))


class _Range(StrictModel):
    draw_: Draw = Field(default="uniform", alias="draw",
                        description="uniform: every step equally likely; log: log-uniform odds (for widths)")

    def _bounds(self) -> tuple[float, float]:
        raise NotImplementedError

    def _step(self) -> float:
        raise NotImplementedError

    @model_validator(mode="after")
    def _check(self) -> "_Range":
        low, high = self._bounds()
        q = self._step()
        _check_range(low, high, self.draw_)
        for bound in (low, high):
            if not is_multiple(bound, q):
                raise ValueError(f"{bound} is not a multiple of quantize ({q}): the range's ends must be values "
                                 "it can give")
        return self

    def order(self, value: float) -> float:
        """A drawn value's place in the range: the value itself (see `Choice.order`)."""
        return value

    def quantized(self, rng: random.Random) -> float:
        """A multiple of the step in the range, by the range's drawer (made once: see `uniform_drawer`)."""
        draw = drawer_of(self, self._quantized)
        return draw(rng)

    def _quantized(self) -> Drawer:
        low, high = self._bounds()
        return (log_uniform_drawer if self.draw_ == "log" else uniform_drawer)(low, high, self._step())


class IntRange(_Range):
    """`{int: [low, high], draw: uniform|log, quantize: q}`: an integer in [low, high], a multiple of q."""

    int_: tuple[int, int] = Field(alias="int")
    quantize: int = Field(default=1, ge=1)

    def _bounds(self) -> tuple[float, float]:
        return self.int_

    def _step(self) -> float:
        return self.quantize

    def draw(self, rng: random.Random) -> int:
        return int(round(self.quantized(rng)))


class FloatRange(_Range):
    """`{float: [low, high], draw: uniform|log, quantize: q}`: a number in [low, high]; with
    `quantize`, a multiple of it (each equally likely, or log-uniform odds)."""

    float_: tuple[float, float] = Field(alias="float")
    quantize: float | None = Field(default=None, gt=0)

    def _bounds(self) -> tuple[float, float]:
        return self.float_

    def _step(self) -> float:
        return self.quantize if self.quantize is not None else 1e-300

    @model_validator(mode="after")
    def _check(self) -> "FloatRange":
        if self.quantize is not None:
            return super()._check()
        _check_range(*self.float_, self.draw_)
        return self

    def draw(self, rng: random.Random) -> float:
        low, high = self.float_
        if self.quantize is not None:
            return self.quantized(rng)
        if self.draw_ == "log":
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.uniform(low, high)
