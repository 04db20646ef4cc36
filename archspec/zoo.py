"""The zoo: the specs in `specs/`, installed with the package as `archspec.specs`.

    archspec.zoo.names()                          # ['alexnet', 'lenet5', ...]
    archspec.zoo.names("resnet*")                 # shell-style patterns, as timm's list_models
    archspec.zoo.build("resnet50", num_classes=10)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def directory() -> Path:
    """`specs/` beside the package in a source checkout, else the installed `archspec.specs`."""
    checkout = Path(__file__).resolve().parent.parent / "specs"
    if (checkout / "__init__.py").is_file():
        return checkout
    from importlib.resources import files

    return Path(str(files("archspec.specs")))


def names(*patterns: str) -> list[str]:
    """The zoo's network names, sorted; with patterns, those matching any (`names("resnet*", "vgg1?")`)."""
    import fnmatch

    every = sorted(p.stem for p in directory().glob("*.yaml"))
    if not patterns:
        return every
    return [n for n in every if any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns)]


def path_of(name: str) -> Path | None:
    """The zoo file of `name` (with or without `.yaml`), or None."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", name or ""):  # a zoo name, never a path
        return None
    path = directory() / (name if name.endswith(".yaml") else f"{name}.yaml")
    return path if path.is_file() else None


def load_spec(name: str, **overrides: Any):
    from .spec.load import load_spec as _load

    path = path_of(name)
    if path is None:
        from .core.errors import ArchspecError, unknown_name

        raise ArchspecError(unknown_name("zoo network", name, names()))
    return _load(path, **overrides)


def build(name: str, **overrides: Any):
    """Compile the zoo network `name` into an `nn.Module` (imports torch)."""
    from .api import build as _build

    return _build(load_spec(name, **overrides))
