"""Checkpoints: safetensors weights with the resolved spec in the metadata, no pickle.

Loading trusts nothing in the file: the embedded spec is checked like any spec (it may not
read other files), and the header's tensor names, shapes and dtypes are compared with the
network the spec describes, on torch's `meta` device, before any weight is allocated.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Callable
from typing import Any

from .core.atomic import write_with
from .core.errors import ArchspecError, ArgumentError
from .core.reading import InputFileError, check_regular

SPEC_KEY = "archspec.spec"
FORMAT_KEY = "archspec.format"
FORMAT = "1"
DEPLOYED_KEY = "archspec.deployed"  # "1": the weights are the inference form's (`archspec.deploy`)
FROZEN_KEY = "archspec.frozen"  # the frozen parts (`freeze`, given to build or in the spec), a JSON list
WEIGHTS_KEY = "archspec.weights"  # the weights entry the model started from (`predict` reads its preprocessing)
MAX_SPEC_CHARS = 1 << 20  # the same bound as a spec file


class CheckpointError(ArchspecError):
    pass


def is_checkpoint(spec: Any) -> bool:
    """Whether `spec`, as given to the API or the CLI, names a checkpoint rather than a spec."""
    return isinstance(spec, (str, Path)) and str(spec).endswith(".safetensors")


def save(model: Any, path: str | Path, spec_data: dict | None = None) -> None:
    """Write `model`'s weights and spec. The files the model was made from (its spec, or the
    checkpoint it was loaded from) are never overwritten."""
    from .core.deps import require

    require("torch", "safetensors", feature="saving a checkpoint")
    from safetensors.torch import save_file

    data = spec_data if spec_data is not None else getattr(model, "archspec_spec", None)
    if not data:
        raise CheckpointError("the model carries no spec; pass spec_data=")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {SPEC_KEY: json.dumps(data, sort_keys=True), FORMAT_KEY: FORMAT}
    if getattr(model, "archspec_deployed", False):
        metadata[DEPLOYED_KEY] = "1"
    elif getattr(model, "archspec_frozen", None):  # a fine-tune resumed from the file freezes the same parts
        metadata[FROZEN_KEY] = json.dumps(list(model.archspec_frozen))
    if isinstance(getattr(model, "archspec_weights_name", None), str):
        metadata[WEIGHTS_KEY] = model.archspec_weights_name
    write_with(path, lambda tmp: save_file(state, str(tmp), metadata=metadata),
               protect=getattr(model, "archspec_inputs", ()))


def _header(path: str | Path) -> tuple[dict[str, str], dict[str, tuple[tuple[int, ...], str]]]:
    """The metadata and, per tensor, (shape, dtype) from the file's header; no tensor data is read."""
    from .core.deps import require

    require("safetensors", feature="reading a checkpoint")
    from safetensors import safe_open

    try:
        check_regular(path)
    except InputFileError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {}
            for key in f.keys():
                piece = f.get_slice(key)
                tensors[key] = (tuple(piece.get_shape()), str(piece.get_dtype()))
    except Exception as exc:  # safetensors raises its own error types for broken files
        raise CheckpointError(f"{path}: not a safetensors file ({str(exc)[:200]})") from None
    return metadata, tensors


def read_spec(path: str | Path) -> dict:
    """The spec stored in the checkpoint `path`, as plain data (not yet checked)."""
    metadata, _ = _header(path)
    return _spec_data(path, metadata)


def read_deployed(path: str | Path) -> bool:
    """Whether the checkpoint holds a deployed module's weights (`archspec build --deploy -o`)."""
    return _header(path)[0].get(DEPLOYED_KEY) == "1"


def _spec_data(path: str | Path, metadata: dict[str, str]) -> dict:
    if SPEC_KEY not in metadata:
        raise CheckpointError(f"{path}: no archspec spec in the metadata (not written by `archspec build -o`?)")
    text = metadata[SPEC_KEY]
    if len(text) > MAX_SPEC_CHARS:
        raise CheckpointError(f"{path}: the archspec spec in the metadata is larger than {MAX_SPEC_CHARS:,} characters")
    try:
        data = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{path}: the archspec spec in the metadata is nested too deeply") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: the archspec spec in the metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the archspec spec in the metadata is not a mapping")
    return data


def load_spec(path: str | Path, metadata: dict[str, str] | None = None):
    """The checkpoint's spec as a `Spec`, checked like a spec file, with errors naming `path`.
    It may not `extends` or `include` other files."""
    from .spec.load import load_embedded

    metadata = metadata if metadata is not None else _header(path)[0]
    return load_embedded(_spec_data(path, metadata), str(path))


def _kind(dtype: str) -> str:
    """The kind of a safetensors dtype name (F32, BF16, F8_E4M3, I64, U8, BOOL): a float weight
    must be stored as floats, an integer buffer (`num_batches_tracked`) as integers."""
    if dtype.startswith(("F", "BF")):
        return "floating-point"
    if dtype.startswith(("I", "U")):
        return "integer"
    return dtype


def _device(torch: Any, device: Any) -> Any:
    """`device` as a torch.device that can hold the weights; ArgumentError for a malformed name, a
    device this machine lacks (`cuda` without a GPU) and `meta` (which holds shapes, not values)."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ArgumentError(f"device: {str(exc).splitlines()[0][:160]}") from None
    if target.type == "meta":
        raise ArgumentError("device 'meta' holds no values; load onto cpu or an accelerator")
    try:
        torch.empty(0, device=target)  # what the weights will need, tried on nothing
    except (RuntimeError, AssertionError, ImportError, NotImplementedError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ArgumentError(f"device '{target}' is not available here ({reason})") from None
    return target


def load(path: str | Path, device: str = "cpu", *, build: Callable[..., Any]) -> Any:
    """Rebuild the module from the spec in the checkpoint and load its weights (strictly).
    `build` is `archspec.build` (passed in: the API imports this module, not the other way).

    Names, shapes and dtype kinds are checked against the header before anything is allocated."""
    from .core.deps import require

    require("torch", "safetensors", feature="loading a checkpoint")
    import torch
    from safetensors.torch import load_file

    target = _device(torch, device)
    metadata, stored = _header(path)
    spec = load_spec(path, metadata)
    deployed = metadata.get(DEPLOYED_KEY) == "1"
    frozen = _frozen(path, metadata) if not deployed else []
    with torch.device("meta"):
        model = build(spec, init_weights=False, deploy=deployed, freeze=frozen or None)
    expected = model.state_dict()
    missing = [k for k in expected if k not in stored]
    extra = [k for k in stored if k not in expected]
    if missing or extra:
        raise CheckpointError(
            f"{path}: the weights do not match the spec (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, tensor in expected.items():
        shape, dtype = stored[key]
        if shape != tuple(tensor.shape):
            raise CheckpointError(f"{path}: tensor '{key}' has shape {shape}, the spec needs {tuple(tensor.shape)}")
        need = "floating-point" if tensor.is_floating_point() else "integer"
        if _kind(dtype) != need:
            raise CheckpointError(f"{path}: tensor '{key}' is stored as {dtype}, the model needs {need} values "
                                  f"({str(tensor.dtype).removeprefix('torch.')})")
    model = model.to_empty(device=target)
    model.load_state_dict(load_file(str(path), device=str(target)))
    if deployed:
        from .backends.torch_deploy import apply_layout

        model = apply_layout(model, spec.network()).eval()
    if WEIGHTS_KEY in metadata:
        model.archspec_weights_name = metadata[WEIGHTS_KEY]
    model.archspec_inputs = (Path(path),)
    return model


def _frozen(path: str | Path, metadata: dict[str, str]) -> list[str]:
    """The frozen parts the file names (none where it names none), checked: a list of module paths."""
    text = metadata.get(FROZEN_KEY)
    if text is None:
        return []
    try:
        parts = json.loads(text)
    except ValueError:
        parts = None
    if not (isinstance(parts, list) and len(parts) <= 1024
            and all(isinstance(p, str) and 0 < len(p) <= 256 for p in parts)):
        raise CheckpointError(f"{path}: '{FROZEN_KEY}' is not a list of module paths")
    return parts
