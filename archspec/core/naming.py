"""Every name archspec makes: module paths' parts, Python identifiers, class names.

One module, so that the compiled module, the exported source and the YAML block
language cannot drift apart on how `inverted_residual` becomes a class or how a
name that is taken gets a number.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Container

# Names that an fx graph's generated forward already uses.
_FX_TAKEN = ("self", "x")


def class_name(text: str) -> str:
    """The class a family's blocks become, compiled or exported: `inverted_residual` -> `InvertedResidual`."""
    name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", text) if part) or "Block"
    return name if name[0].isalpha() else "Block" + name


def identifier(text: str) -> str:
    """A Python identifier for `text`: `downsample.0` -> `downsample_0`, `2x` -> `_2x`, `if` -> `if_`."""
    name = re.sub(r"\W", "_", text).strip("_") or "value"
    if name[0].isdigit():
        name = "_" + name
    return name + "_" if keyword.iskeyword(name) else name


def unique(name: str, taken: Container[str]) -> str:
    """`name`, else `name2`, `name3`, ...: the first not in `taken` (and never `self`)."""
    k, out = 2, name
    while out in taken or out == "self":
        out, k = f"{name}{k}", k + 1
    return out


def value_name(step: str) -> str:
    """The fx value name of a step: `downsample.0` -> `downsample_0`; never `self`, `x` or a keyword."""
    name = step.replace(".", "_")
    return f"{name}_" if keyword.iskeyword(name) or name in _FX_TAKEN else name


def join(prefix: str, name: str) -> str:
    """A dotted path: `join("downsample", "0")` -> `downsample.0`; `join("", "conv1")` -> `conv1`."""
    return f"{prefix}.{name}" if prefix else str(name)


def free_name(base: str, taken: Callable[[str], bool]) -> str:
    """`base`, else `base1`, `base2`, ...: the first for which `taken` is false (layer names in a scope)."""
    n = 0
    while True:
        name = base if n == 0 else f"{base}{n}"
        if not taken(name):
            return name
        n += 1


def free_index(start: int, taken: Callable[[str], bool]) -> int:
    """The first index from `start` whose name (`str(index)`) is not taken: unnamed layers are numbered."""
    n = start
    while taken(str(n)):
        n += 1
    return n
