"""The zoo: the specs in `specs/`, installed with the package as `archspec.specs`.

    archspec.zoo.names()                          # ['alexnet', 'lenet5', ...]
    archspec.zoo.names("resnet*")                 # shell-style patterns, as timm's list_models
    archspec.zoo.build("resnet50", num_classes=10)
"""

from __future__ import annotations

from typing import Any

from .spec.catalog import directory, names, path_of  # light: the CLI's parser lists the zoo

__all__ = ["build", "directory", "load_spec", "names", "path_of"]


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
