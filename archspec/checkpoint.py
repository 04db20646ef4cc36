"""Checkpoints: safetensors weights with the resolved spec in the metadata, no pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .core.errors import ArchspecError
from .core.atomic import write_with

SPEC_KEY = "archspec.spec"
FORMAT_KEY = "archspec.format"
FORMAT = "1"


class CheckpointError(ArchspecError):
    pass


def is_checkpoint(spec: Any) -> bool:
    """Whether `spec`, as given to the API or the CLI, names a checkpoint rather than a spec."""
    return isinstance(spec, (str, Path)) and str(spec).endswith(".safetensors")


def save(model: Any, path: str | Path, spec_data: dict | None = None) -> None:
    from safetensors.torch import save_file

    data = spec_data if spec_data is not None else getattr(model, "archspec_spec", None)
    if not data:
        raise CheckpointError("the model carries no spec; pass spec_data=")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {SPEC_KEY: json.dumps(data, sort_keys=True), FORMAT_KEY: FORMAT}
    write_with(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def read_spec(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # safetensors raises its own error types for broken files
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
    if SPEC_KEY not in metadata:
        raise CheckpointError(f"{path}: no archspec spec in the metadata (not written by `archspec build -o`?)")
    try:
        data = json.loads(metadata[SPEC_KEY])
    except ValueError as exc:
        raise CheckpointError(f"{path}: the archspec spec in the metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the archspec spec in the metadata is not a mapping")
    return data


def load(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the module from the spec in the checkpoint and load its weights (strictly)."""
    from safetensors.torch import load_file

    from .api import build

    data = read_spec(path)
    model = build(data, _init=False)
    state = load_file(str(path), device=device)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise CheckpointError(
            f"{path}: the weights do not match the spec (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: tensor '{key}' has shape {tuple(state[key].shape)}, the spec needs {tuple(tensor.shape)}")
    model.load_state_dict(state)
    return model.to(device)
