"""archspec: a declarative architecture compiler for convolutional networks.

    import archspec
    model = archspec.build("specs/resnet50.yaml", num_classes=10)   # nn.Module
    report = archspec.analyze("resnet50")                           # no torch needed
    spec = archspec.load_spec("specs/vgg19.yaml")

Importing archspec does not import torch; only building modules does.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "build": "api",
    "deploy": "api",
    "analyze": "api",
    "load": "api",
    "save": "api",
    "load_spec": "spec.load",
    "Spec": "spec.load",
    "diagram": "api",
    "export": "api",
    "transforms": "api",
    "predict": "api",
    "sweep": "sweeps",
    "SpecError": "core.errors",
    "ArchspecError": "core.errors",
    "BlockError": "core.errors",
    "LimitError": "core.errors",
    "ArgumentError": "core.errors",
    "MissingDependency": "core.errors",
    "register_block": "blocks",
    "BlockFamily": "blocks",
    "register_op": "ir.op",
    "zoo": None,
    "interop": None,
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'archspec' has no attribute '{name}'")
    module = _LAZY[name]
    if module is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = sorted(_LAZY)
