"""Hashable stand-ins for parameter values, for the caches that let lowering and layer
parsing reuse their results (the same block or layer asked for again)."""

from __future__ import annotations

from typing import Any


def frozen(value: Any) -> Any:
    """A hashable, type-aware stand-in for `value` (True == 1 == 1.0 in Python, not for
    validation); lists and mappings become tuples. Hashing the result may still raise
    TypeError for an unhashable leaf: callers then skip their cache."""
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(frozen(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, frozen(v)) for k, v in value.items()))
    return (type(value), value)
