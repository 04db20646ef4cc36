"""Optional packages: which extra installs each, and one way to say that one is missing.

A plain `pip install archspec` gives specs, validation, analysis and Python export; the
extras add the rest (README, "Installing"). A feature that needs a missing package raises
`MissingDependency` (exit code 3 on the command line) with the command that installs it.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingDependency

# package -> the extra that installs it (None: not in an extra, install it by name)
EXTRAS: dict[str, str | None] = {
    "torch": "torch",
    "safetensors": "torch",
    "PIL": "torch",  # pillow: reading images (archspec predict, archspec.transforms)
    "torchvision": None,
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "export",
    "graphviz": "diagram",
    "matplotlib": "plot",
}


def install_command(*packages: str) -> str:
    extras = sorted({EXTRAS[p] for p in packages if EXTRAS.get(p)})
    loose = sorted(p for p in packages if p not in EXTRAS or EXTRAS[p] is None)
    parts = [f"pip install 'archspec[{','.join(extras)}]'"] if extras else []
    if loose:
        parts.append(f"pip install {' '.join(loose)}")
    return " and ".join(parts)


def missing(packages: list[str], feature: str) -> MissingDependency:
    names = ", ".join(packages)
    return MissingDependency(f"{feature} needs {names}, which is not installed: {install_command(*packages)}",
                             packages[0])


def require(*packages: str, feature: str) -> None:
    """Raise MissingDependency unless every package can be imported (without importing it)."""
    absent = []
    for name in packages:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            found = False
        if not found:
            absent.append(name)
    if absent:
        raise missing(absent, feature)


def as_missing(exc: ModuleNotFoundError, feature: str = "this command") -> MissingDependency | None:
    """MissingDependency for an ImportError of an optional package, else None (a real bug)."""
    top = (exc.name or "").split(".")[0]
    return missing([top], feature) if top in EXTRAS else None
