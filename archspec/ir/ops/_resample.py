"""The receptive field of a resampling op (resize, pixel shuffle, transposed convolution), in
closed form.

Along one axis, output unit i of such an op reads the input units from
`floor((a*i + b_lo) / d) + o_lo` to `floor((a*i + b_hi) / d) + o_hi` (clamped to the map for
resize, whose border units repeat the edge; unclamped for a transposed convolution, whose units
past the edge are the zero padding). Upsampling makes several neighbours read one source, so the
result is not a sliding window: the field is the tightest (size, stride, padding) at the output's
stride that covers what every unit reads.

Walking every output unit is what a direct reading of that definition does, and it took minutes
for a 1024x upsampling. Two facts make it cheap: the first and last input unit read are step
functions of i, so within a run of equal values only the run's last unit (for the padding) or
first unit (for the size) can be extreme; and the runs repeat every `a / gcd(a, d)` input units,
shifted by a constant, so only the first and last period of runs can be extreme. What is left is
at most a few thousand runs per axis whatever the map's size; past that, a linear bound of the
same form covers the middle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..op import RF

# Runs evaluated one by one per axis and side, at most; the middle of a longer range is bounded.
RUN_LIMIT = 1 << 12


@dataclass(frozen=True)
class Floor:
    """`floor((a*i + b) / d) + o`, clamped to [0, n_in - 1] when `clamp`: the first or last input
    unit that output unit i reads."""

    a: int
    b: int
    d: int
    o: int = 0

    def at(self, i: int, n_in: int, clamp: bool) -> int:
        v = (self.a * i + self.b) // self.d + self.o
        return min(max(v, 0), n_in - 1) if clamp else v

    def first(self, k: int) -> int:
        """The first i whose unclamped value is at least k (a > 0)."""
        return -((self.b - (k - self.o) * self.d) // self.a)  # ceil(((k - o) * d - b) / a)


@dataclass(frozen=True)
class Reads:
    """What each of the `n_out` output units reads of the `n_in` input units along one axis."""

    lo: Floor
    hi: Floor
    n_in: int
    n_out: int
    clamp: bool

    @property
    def ratio(self) -> Fraction:
        """Input units per output unit: the factor by which the stride grows."""
        return Fraction(self.lo.a, self.lo.d)


def area_reads(n_in: int, n_out: int) -> Reads:
    """An area resize's (and an adaptive pool's) reads along one axis: output i reads input units
    floor(i * n_in / n_out) to ceil((i + 1) * n_in / n_out) - 1."""
    r = Fraction(n_in, n_out)
    p, q = r.numerator, r.denominator
    return Reads(Floor(p, 0, q), Floor(p, p - 1, q), n_in, n_out, clamp=True)


def resampled(field: RF, reads: Sequence[Reads], stride: Sequence[float] | None = None) -> RF:
    """The field after a resampling op that reads `reads` per axis (h, w) of a map whose units have
    `field`. `stride` is the output's stride when it is known otherwise (resizing to a second
    input's grid); by default the input's stride times `ratio`."""
    size: list[int] = []
    jump: list[int | float] = []
    padding: list[int] = []
    for axis, m in enumerate(reads):
        big = _fraction(field.stride[axis])
        j = _fraction(stride[axis]) if stride is not None else big * m.ratio
        # padding: how far before pixel 0 the first unit's field must reach to cover every unit's
        # first pixel, -P + lo(i) * J; size: enough to reach every unit's last pixel.
        p = math.ceil(field.padding[axis] + _max_behind(m.lo, m, j, big))
        last = -field.padding[axis] + field.size[axis] - 1 + _max_ahead(m.hi, m, j, big)
        size.append(math.ceil(last + p) + 1)
        padding.append(p)
        jump.append(int(j) if j.denominator == 1 else float(j))
    # a stride is fractional after an upsampling, as RF's window rule already makes it
    return RF((size[0], size[1]), (jump[0], jump[1]), (padding[0], padding[1]), field.context)  # type: ignore[arg-type]  # float stride


def _fraction(x: float) -> Fraction:
    """A stride as an exact fraction (a fractional stride after upsampling is a float)."""
    return Fraction(x).limit_denominator(1 << 20)


def _runs(f: Floor, m: Reads) -> tuple[int, int]:
    """The first and last value f takes over the output units."""
    return f.at(0, m.n_in, m.clamp), f.at(m.n_out - 1, m.n_in, m.clamp)


def _candidates(f: Floor, lo: int, hi: int) -> tuple[list[int], tuple[int, int] | None]:
    """The values k of f whose runs must be evaluated one by one, and the range between them
    (if any) that a linear bound covers."""
    if hi - lo + 1 <= RUN_LIMIT:
        return list(range(lo, hi + 1)), None
    period = f.a // math.gcd(f.a, f.d)  # runs repeat every `period` values, shifted by d / gcd
    reach = min(period + 1, RUN_LIMIT // 2)
    edge = list(range(lo, lo + reach + 1)) + list(range(hi - reach, hi + 1))
    return edge, (None if period + 1 <= reach else (lo + reach + 1, hi - reach - 1))


def _max_behind(f: Floor, m: Reads, j: Fraction, big: Fraction) -> Fraction:
    """max over output units i of i*j - lo(i)*J: attained at the last unit of a run of lo."""
    k0, k1 = _runs(f, m)
    if f.a == 0 or k0 == k1:
        return (m.n_out - 1) * j - k0 * big
    ks, middle = _candidates(f, k0, k1)
    best = None
    for k in ks:
        last = m.n_out - 1 if k == k1 else min(f.first(k + 1), m.n_out) - 1
        first = 0 if k == k0 else f.first(k)
        if last >= first:
            value = last * j - k * big
            best = value if best is None or value > best else best
    if middle is not None:  # last(k) = first(k + 1) - 1 <= ((k + 1 - o) d - b + a - 1) / a - 1
        for k in middle:
            value = (Fraction((k + 1 - f.o) * f.d - f.b + f.a - 1, f.a) - 1) * j - k * big
            best = value if best is None or value > best else best
    assert best is not None
    return best


def _max_ahead(f: Floor, m: Reads, j: Fraction, big: Fraction) -> Fraction:
    """max over output units i of hi(i)*J - i*j: attained at the first unit of a run of hi."""
    k0, k1 = _runs(f, m)
    if f.a == 0 or k0 == k1:
        return k1 * big
    ks, middle = _candidates(f, k0, k1)
    best = None
    for k in ks:
        first = 0 if k == k0 else f.first(k)
        last = m.n_out - 1 if k == k1 else min(f.first(k + 1), m.n_out) - 1
        if last >= first:
            value = k * big - first * j
            best = value if best is None or value > best else best
    if middle is not None:  # first(k) >= ((k - o) d - b) / a
        for k in middle:
            value = k * big - Fraction((k - f.o) * f.d - f.b, f.a) * j
            best = value if best is None or value > best else best
    assert best is not None
    return best
