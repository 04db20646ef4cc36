"""Where the zoo's spec files are: `specs/` in a source checkout, else the installed `archspec.specs`.

The spec language finds `extends: resnet50.yaml` and bare zoo names here; `archspec.zoo`
(the API over the zoo) re-exports these functions.
"""

from __future__ import annotations

import re
from pathlib import Path


def directory() -> Path:
    """`specs/` beside the package in a source checkout, else the installed `archspec.specs`."""
    checkout = Path(__file__).resolve().parent.parent.parent / "specs"
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


def bare_name(ref: str) -> Path | None:
    """The zoo file when REF is a bare zoo name (`resnet50`: no `.yaml`/`.yml`, no directory), else None.

    The name-versus-file rule: a bare zoo name always means the zoo network, even when a file of that
    name is in the directory (`d.render("resnet50")` leaves a DOT file called `resnet50`); a file is
    named with its spec extension or a directory (`resnet50.yaml`, `./resnet50`)."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref:
        return None
    return path_of(ref)

