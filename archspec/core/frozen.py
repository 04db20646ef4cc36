"""Read-only containers for the IR: what is built once and then shared (by the memo tables,
between networks, across a sweep) must refuse to change, not merely be asked not to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A dict whose mutating methods raise `TypeError`. Still a dict for reading, `json.dumps`
    and `isinstance` checks; pickles and copies as itself."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only (the IR is immutable once built; "
                        "make a new one, e.g. with dataclasses.replace)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict[K, V]:
        return self

    def __hash__(self) -> int:  # type: ignore[override]  # dict is unhashable; a frozen one can be
        return hash(frozenset(self.items()))


_SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any) -> Any:
    """`value` with every nested dict made a `FrozenDict` and every list a tuple. (Type tests
    before isinstance: a spec's data is plain YAML, and networks are made by the thousand.)"""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or kind is FrozenDict or isinstance(value, Mapping):
        return FrozenDict({k: v if type(v) in _SCALARS else freeze(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return tuple([v if type(v) in _SCALARS else freeze(v) for v in value])
    return value


def thaw(value: Any) -> Any:
    """The plain, mutable copy of a frozen value: dicts and lists again."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
