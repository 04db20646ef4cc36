"""Process-wide memo tables: what a pure step computed, kept for the next identical request.

A network asks for the same few ops hundreds of times, the blocks of a stage share a graph,
the samples of a sweep share blocks, layers and receptive fields with their siblings. Each
step that profits keeps a `Memo` here instead of a dict of its own, so that:

* every table is bounded (`limit` keys; when full, its older half is dropped, and what was
  dropped is recomputed on demand: only time is lost, never an answer). A sweep keeps making
  new entries; what it made last is what its next samples share, so that half stays;
* `clear()` empties them all: tests, a benchmark that wants a cold start, a notebook that
  wants its memory back. `tables()` lists them with their sizes;
* a key may stand for an object by its identity (`Memo.get(key, keep=obj)`), which is cheap
  where hashing a pydantic model or a graph is not. That is sound only for objects that
  cannot change once made (frozen dataclasses holding tuples, frozen ops): the IR enforces it
  (ir/graph.py). The entry keeps those objects alive, so that their ids cannot be reused by
  another object while the entry stands; a hit is checked with `is` against them.

Usage:

    _SHAPES = memo.Memo("ir.shapes", 8192)

    def out_shape(op, ins):
        key = (id(op), ins)
        hit = _SHAPES.get(key, op)
        if hit is not memo.MISS:
            return hit
        return _SHAPES.put(key, compute(op, ins), op)

A key that cannot be hashed raises `TypeError` from `get` (callers that accept unhashable
input catch it and compute without the memo). A pure function of hashable arguments can use
`@memo.function(name, size)` instead: `functools.lru_cache`, registered here.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Any = _Miss()  # what `Memo.get` returns for an absent key (None may be a stored value)

_TABLES: dict[str, Memo[Any]] = {}
_FUNCTIONS: dict[str, Any] = {}  # name -> an lru_cache wrapper


class Memo(Generic[V]):
    """One bounded table of results by key, registered under `name` (unique)."""

    __slots__ = ("name", "limit", "_entries")

    def __init__(self, name: str, limit: int):
        if name in _TABLES:
            raise ValueError(f"a memo table named {name!r} exists already")
        self.name = name
        self.limit = limit
        self._entries: dict[Any, tuple[Any, V]] = {}
        _TABLES[name] = self

    @property
    def entry(self) -> Callable[[Any], tuple[Any, V] | None]:
        """The table's own lookup, for code that asks for thousands of keys (a graph's nodes): the
        `(keep, value)` stored for a key, or None. A hit counts only if `keep` is the caller's object
        (`is`); `get` checks that for the caller, at the cost of a call. It may be kept (bound once):
        the table's dict is never replaced, only emptied."""
        return self._entries.get

    def get(self, key: Any, keep: Any = None) -> V:
        """The value stored for `key`, or `MISS`. `keep`: the object (or tuple of objects) whose
        identity the key holds, as given to `put`; the hit counts only if it is the same."""
        hit = self._entries.get(key)
        if hit is None:
            return MISS
        kept = hit[0]
        if kept is keep:
            return hit[1]
        if type(keep) is not tuple or type(kept) is not tuple or len(kept) != len(keep):
            return MISS
        for a, b in zip(kept, keep):  # a loop, not all(...) over a generator: lowering asks this per node
            if a is not b:
                return MISS
        return hit[1]

    def put(self, key: Any, value: V, keep: Any = None) -> V:
        """Store `value` for `key` (keeping `keep` alive with it) and return it."""
        entries = self._entries
        if len(entries) >= self.limit:  # drop the older half (dicts keep insertion order)
            for old in list(itertools.islice(entries, len(entries) - self.limit // 2)):
                del entries[old]
        entries[key] = (keep, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Memo({self.name!r}, {len(self)}/{self.limit})"


def function(name: str, size: int) -> Callable[[F], F]:
    """`functools.lru_cache(size)` for a pure function of hashable arguments, registered under
    `name` so that `clear()` empties it with the tables."""
    if name in _TABLES or name in _FUNCTIONS:
        raise ValueError(f"a memo table named {name!r} exists already")

    def decorate(fn: F) -> F:
        wrapped = functools.lru_cache(maxsize=size)(fn)
        _FUNCTIONS[name] = wrapped
        return wrapped  # type: ignore[return-value]  # lru_cache keeps the signature, not the type

    return decorate


def clear() -> None:
    """Empty every memo table of the process (results are recomputed as asked for)."""
    for table in _TABLES.values():
        table.clear()
    for fn in _FUNCTIONS.values():
        fn.cache_clear()


def tables() -> dict[str, int]:
    """Each table's name and how many entries it holds now."""
    sizes = {name: len(table) for name, table in _TABLES.items()}
    sizes.update((name, fn.cache_info().currsize) for name, fn in _FUNCTIONS.items())
    return sizes
