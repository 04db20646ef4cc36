"""Addressing one item of a list by index or by name, for `extends` and `--set`.

A child spec changes one item of its parent's list without restating the list:

    extends: densenet121.yaml
    stages: {denseblock3: {repeat: 32}, 6: {repeat: 32}}    # by a stage's `name`, or by index

and on the command line `--set stages.denseblock3.repeat=32`. An item's name is its `name:`
key (a stage), or the `name:` of its one layer (`- linear: {out: 10, name: fc}`).

A child spec also deletes, inserts and appends items (`edit_key`):

    stages:
      12: null                          # delete item 12
      before 3: [{block: basic, out: 64}]
      after denseblock3: [...]          # insert after the item so named
      append: [...]                     # at the end
"""

from __future__ import annotations

from typing import Any

from ..core.errors import did_you_mean
from ..core.naming import parse_index

# Where a child spec may edit its parent's lists by item: the network's layer lists (at any depth
# inside them) and the free-form `vars`. Elsewhere (`input.size`) a mapping replaces the list and is
# checked like any other value, so the loader and the JSON Schema accept the same files.
EDITABLE_LISTS = ("stem", "stages", "head")
EDITABLE_ROOTS = EDITABLE_LISTS + ("vars",)


APPEND = "append"
PLACES = ("before", "after")


def edit_key(key: Any) -> tuple[str | None, Any]:
    """What a key of a list edit does: (None, KEY) edits or deletes the item KEY selects;
    ("before" / "after", KEY) inserts there; ("append", None) adds at the end."""
    if key == APPEND:
        return APPEND, None
    if isinstance(key, str):
        place, _, target = key.partition(" ")
        if place in PLACES and target.strip():
            return place, target.strip()
    return None, key


def item_name(item: Any) -> str | None:
    """The name an item of a list answers to: a stage's `name`, or the name of a one-layer item."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("name"), str):
        return item["name"]
    if len(item) == 1:
        (params,) = item.values()
        if isinstance(params, dict) and isinstance(params.get("name"), str):
            return params["name"]
    return None


def find_item(items: list, key: Any) -> int | None:
    """The index `key` selects in `items` (an int, negative from the end, or an item's name), else None."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key % len(items) if -len(items) <= key < len(items) else None
    if isinstance(key, str):
        index = parse_index(key, negative=True)
        if index is not None:
            return find_item(items, index)
        matches = [i for i, item in enumerate(items) if item_name(item) == key]
        return matches[0] if len(matches) == 1 else None
    return None


def valid_keys(items: list) -> str:
    """What `find_item` accepts, for an error message: `0..6 or a name: denseblock1, transition1, ...`."""
    indices = f"0..{len(items) - 1}" if items else "none (the list is empty)"
    names = [n for n in (item_name(i) for i in items) if n is not None]
    unique = [n for n in names if names.count(n) == 1]
    return f"indices {indices}" + (f" or a name: {', '.join(unique)}" if unique else "")


def no_item(key: Any, items: list) -> str:
    """`no item 'denseblok3' (did you mean 'denseblock3'?); valid: indices 0..6 or a name: ...`"""
    names = [n for n in (item_name(i) for i in items) if n is not None]
    return f"no item {key!r}{did_you_mean(str(key), names)}; valid: {valid_keys(items)}"
