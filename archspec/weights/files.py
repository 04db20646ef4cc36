"""Reading a weights file into a flat {name: tensor} dict, never running code from it.

A torchvision `.pth` is read with `torch.load(weights_only=True)`: tensors and plain containers
only, so a pickle that names a function or class to call is refused, not unpickled.
Safetensors files hold no code at all.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from ..core.reading import InputFileError, check_regular
from .fetch import WeightsError


def read(path: Path, format: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors of the file and (safetensors only) its metadata."""
    try:
        check_regular(path)
    except InputFileError as exc:
        raise WeightsError(str(exc)) from None
    if format in ("safetensors", "archspec") or path.suffix == ".safetensors":
        return _safetensors(path)
    return _torch(path), {}


def _safetensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in sorted(f.keys(), key=natural_key)}, dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for broken files
        raise WeightsError(f"{path}: not a readable safetensors file, truncated or damaged ({str(exc)[:160]})") from None


def natural_key(name: str) -> tuple:
    """A tensor name's sort key, its numbers compared as numbers: `layer3.2` before `layer3.10`.
    A safetensors file keeps its names sorted as text, not in the order the network made them, and
    pairing a file's tensors with archspec's by module and kind reads a stage's repeated blocks in
    this order (ResNet-101's third stage has 23)."""
    return tuple((0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part)
                 for part in name.split("."))


def _torch(path: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise WeightsError(f"{path}: refused: the file is a pickle that carries code or objects other than "
                           f"tensors, and archspec never unpickles code (weights_only=True: {first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise WeightsError(f"{path}: not a readable weights file, truncated or damaged ({first})") from None
    if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in ("state_dict", "model"):
        data = next(iter(data.values()))  # a training checkpoint's {"state_dict": {...}}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise WeightsError(f"{path}: not a state dict (a mapping of tensor names to tensors), "
                           f"but {type(data).__name__}")
    return dict(data)
