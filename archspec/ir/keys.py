"""Hashable stand-ins for parameter values, for the caches that let lowering and layer
parsing reuse their results (the same block or layer asked for again)."""

from __future__ import annotations

from typing import Any


def frozen(value: Any) -> Any:
    """A hashable, type-aware stand-in for `value` (True == 1 == 1.0 in Python, not for
    validation); lists and mappings become tuples. Hashing the result may still raise
    TypeError for an unhashable leaf: callers then skip their cache."""
    kind = type(value)
    if kind in _SCALARS:  # most values: asked first (every parameter of every stage of every sample)
        return (kind, value)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(frozen(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, frozen(v)) for k, v in value.items()))
    return (type(value), value)


_SCALARS = frozenset({int, float, str, bool, type(None)})


class HashedKey:
    """A key that is hashed once: the part of a memo key that stays the same for many lookups
    (a block family's parameters, for every block of a stage), which a tuple would hash anew
    each time. Equal to another HashedKey of equal items."""

    __slots__ = ("items", "_hash")

    def __init__(self, items: tuple):
        self.items = items
        self._hash = hash(items)  # TypeError for an unhashable item, as the tuple's own hash

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is HashedKey and self._hash == other._hash and self.items == other.items)

    def __repr__(self) -> str:
        return f"HashedKey({self.items!r})"
