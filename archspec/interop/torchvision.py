"""Weights to and from torchvision models, and other PyTorch models of the same architecture.

archspec names modules after the spec (`stages.0.blocks.0.conv1`), torchvision
after its own classes (`layer1.0.conv1`). The two state_dicts hold the same
tensors in the same order (modules are created in execution order on both
sides), so tensors are paired by position and every pair must agree in shape.
A model that creates its layers in another order than it runs them is paired by
position in execution order: each model is traced once on the meta device (a copy,
with the compiled model's input shape), its keys ordered by when their module first runs.
A model that registers its modules in another order (all convs, then all norms)
is paired by module and kind instead: the modules of each kind (the names of
their tensors, and the rank of the weight) are paired in order, and their tensors
by name; every shape must still agree.
Where torchvision registers a module out of execution order (Inception-v3's
auxiliary head sits between Mixed_6e and Mixed_7a; ConvNeXt's `layer_scale` is a
parameter of the block, saved before the layers it scales; SSD's conv4_3 scale is the feature
extractor's, saved before every layer), `ORDER_HINTS` moves its
keys to where archspec has them. A 1x1 convolution and a linear layer (N x C vs
N x C x 1 x 1) are treated as the same tensor.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from collections.abc import Callable, Mapping

from ..core.errors import ArchspecError


class InteropError(ArchspecError):
    pass


class InteropTypeError(InteropError, TypeError):
    """A model or source that is neither a module nor a state_dict (still a TypeError, as it was)."""


def _move_before(prefix: str, before: str) -> Callable[[list[str]], list[str]]:
    """Move the keys under `prefix` to just before the first key under `before` (to the end when
    no key is under `before`)."""

    def reorder(keys: list[str]) -> list[str]:
        moved = [k for k in keys if k.startswith(prefix)]
        rest = [k for k in keys if not k.startswith(prefix)]
        at = next((i for i, k in enumerate(rest) if k.startswith(before)), len(rest))
        return rest[:at] + moved + rest[at:]

    return reorder


def _own_after_children(name: str) -> Callable[[list[str]], list[str]]:
    """Move each parameter `P.<name>` registered directly on module P to after P's submodules' keys.

    PyTorch saves a module's own parameters before its children's, whatever the order
    of execution; archspec makes such a parameter a node of its own, after the layers
    it follows (ConvNeXt's `layer_scale` multiplies the output of `block`).
    """
    suffix = "." + name

    def reorder(keys: list[str]) -> list[str]:
        out = list(keys)
        for key in [k for k in keys if k.endswith(suffix)]:
            parent = key[: -len(suffix)] + "."
            at = out.index(key)
            last = max((i for i, k in enumerate(out) if k.startswith(parent) and k != key), default=at)
            if last > at:
                out.insert(last, out.pop(at))  # after the pop, `last` is just past P's last child
        return out

    return reorder


# torchvision model class name -> reordering of its state_dict keys into archspec's order.
ORDER_HINTS: dict[str, Callable[[list[str]], list[str]]] = {
    "Inception3": _move_before("AuxLogits.", "fc."),
    # The zoo's googlenet lists aux2 before aux1 (torchvision's output order); torchvision registers aux1 first.
    "GoogLeNet": _move_before("aux2.", "aux1."),
    "ConvNeXt": _own_after_children("layer_scale"),
    # SSD's conv4_3 scale is a parameter of the feature extractor (saved first); archspec's is the
    # weight of an l2norm neck, after the stages.
    "SSDFeatureExtractorVGG": _move_before("scale_weight", "\0"),
}


def _state(source: Any) -> tuple[dict[str, Any], str | None]:
    if hasattr(source, "state_dict") and callable(source.state_dict):
        return dict(source.state_dict()), type(source).__name__
    if isinstance(source, Mapping):
        return dict(source), None
    raise InteropTypeError(f"expected a PyTorch model or its state_dict, not {type(source).__name__}")


def _own(model: Any) -> dict[str, Any]:
    """The state_dict of the compiled model."""
    if not (hasattr(model, "state_dict") and callable(model.state_dict)):
        raise InteropTypeError(f"expected a model built by archspec, not {type(model).__name__}")
    return model.state_dict()


def _strip(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A conv weight without its trailing 1x1 kernel: (N, C, 1, 1) -> (N, C), a linear weight's shape."""
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _same(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a == b or _strip(a) == _strip(b)


def _pairs(ours: dict[str, Any], theirs: dict[str, Any], arch: str | None,
           modules: tuple[Any, Any] | None = None) -> list[tuple[str, str]]:
    """Tensors paired by position; failing that, by position in execution order when both models
    are modules (`modules`: ours, theirs); then by module and kind (see the module's docstring).
    When all fail, the error is the positional one, with why the last way failed."""
    try:
        return _by_position(ours, theirs, arch)
    except InteropError as exc:
        if modules is not None:
            ran = _in_execution_order(ours, theirs, *modules)
            if ran is not None:
                try:
                    return _by_position(*ran, None)
                except InteropError:
                    pass
        try:
            return _by_kind(ours, theirs)
        except InteropError as other:
            raise InteropError(f"{exc}; paired by module and kind instead: {other}") from None


def _in_execution_order(ours: dict[str, Any], theirs: dict[str, Any], model: Any,
                        source: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Both state_dicts with their keys in the order their modules first run, traced once on the
    meta device with the compiled model's input shape; None when either model cannot run so."""
    shape = _input_shape(model)
    mine, other = _run_order(model, shape), _run_order(source, shape)
    if mine is None or other is None:
        return None
    return _ordered(ours, mine), _ordered(theirs, other)


def _input_shape(model: Any) -> tuple[int, ...]:
    spec = getattr(model, "archspec_spec", None) or {}
    given = spec.get("input", {}) if isinstance(spec, dict) else {}
    size = given.get("size", 224)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (1, int(given.get("channels", 3)), h, w)


def _meta_copy(model: Any) -> Any:
    """A copy of `model` on the meta device. Its parameters and buffers are made on the meta device
    directly rather than copied and then moved: a deep copy of ViT-H/14 first copies 2.5 GB."""
    import copy

    import torch

    memo: dict[int, Any] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if type(tensor) in (torch.Tensor, torch.nn.Parameter) and id(tensor) not in memo:  # others as before
            meta = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = (torch.nn.Parameter(meta, requires_grad=tensor.requires_grad)
                                if isinstance(tensor, torch.nn.Parameter) else meta)
    return copy.deepcopy(model, memo).to("meta")


def _run_order(model: Any, shape: tuple[int, ...]) -> list[str] | None:
    """Module paths in the order they first run (only modules that hold tensors of their own)."""
    import torch

    try:
        meta = _meta_copy(model).eval()
    except Exception:
        return None
    order: list[str] = []

    def note(name: str) -> Callable[..., None]:
        def hook(module: Any, args: Any) -> None:
            if name not in order:
                order.append(name)
        return hook

    handles = [m.register_forward_pre_hook(note(name)) for name, m in meta.named_modules()
               if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))]
    try:
        with torch.no_grad():
            meta(torch.zeros(shape, device="meta"))
    except Exception:
        return None
    finally:
        for h in handles:
            h.remove()
    return order


def _ordered(state: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """`state` with its keys sorted by when their module first ran (those that never ran last, as they were)."""
    rank = {name: i for i, name in enumerate(order)}
    keys = sorted(state, key=lambda k: rank.get(k.rpartition(".")[0], len(rank)))
    return {k: state[k] for k in keys}


def _modules(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Module path -> {tensor name: tensor}, modules in the order of their first tensor."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        out.setdefault(module, {})[name] = value
    return out


def _kind(tensors: dict[str, Any]) -> tuple:
    """What a module is, as its tensors tell: their names, and the rank of its weight
    (a 1x1 conv counts as a linear layer, as in positional pairing)."""
    weight = tensors.get("weight")
    rank = len(_strip(tuple(weight.shape))) if weight is not None else 0
    return tuple(sorted(tensors)), rank


def _describe(kind: tuple) -> str:
    names, rank = kind
    return f"{'/'.join(names)}" + (f" ({rank}-d weight)" if rank else "")


def _by_kind(ours: dict[str, Any], theirs: dict[str, Any]) -> list[tuple[str, str]]:
    mine, other = _modules(ours), _modules(theirs)
    groups: dict[tuple, tuple[list[str], list[str]]] = {}
    for side, modules in ((0, mine), (1, other)):
        for path, tensors in modules.items():
            groups.setdefault(_kind(tensors), ([], []))[side].append(path)
    for kind, (a, b) in groups.items():
        if len(a) != len(b):
            raise InteropError(f"archspec has {len(a)} modules with {_describe(kind)}, the other model {len(b)}")
    partner = {m: o for a, b in groups.values() for m, o in zip(a, b)}
    pairs = []
    for path, tensors in mine.items():
        for name in tensors:
            key, theirs_key = f"{path}.{name}".lstrip("."), f"{partner[path]}.{name}".lstrip(".")
            x, y = tuple(ours[key].shape), tuple(theirs[theirs_key].shape)
            if not _same(x, y):
                raise InteropError(f"archspec '{key}' has shape {list(x)}, its partner '{theirs_key}' has {list(y)}")
            pairs.append((key, theirs_key))
    return pairs


def _by_position(ours: dict[str, Any], theirs: dict[str, Any], arch: str | None) -> list[tuple[str, str]]:
    keys = list(theirs)
    if arch in ORDER_HINTS:
        keys = ORDER_HINTS[arch](keys)
    our_keys = list(ours)
    for i, (mine, other) in enumerate(zip(our_keys, keys)):
        a, b = tuple(ours[mine].shape), tuple(theirs[other].shape)
        if not _same(a, b):
            raise InteropError(
                f"tensor #{i} disagrees: archspec '{mine}' has shape {list(a)}, torchvision '{other}' has {list(b)}")
    if len(our_keys) != len(keys):
        n = min(len(our_keys), len(keys))
        extra = our_keys[n] if len(our_keys) > n else keys[n]
        side = "archspec" if len(our_keys) > n else "torchvision"
        raise InteropError(
            f"archspec has {len(our_keys)} tensors, torchvision {len(keys)}; the first unmatched is {side} '{extra}'")
    return list(zip(our_keys, keys))


def load_torchvision(model: Any, source: Any, arch: str | None = None) -> Any:
    """Copy the weights of a torchvision model (or another PyTorch model of the same
    architecture, or a state_dict) into a compiled model.

    Tensors are paired by position, else by position in execution order (traced once on the
    meta device), else by module and kind (module docstring).
    `arch` names the torchvision class (e.g. "Inception3") when `source` is a state_dict.
    Refuses, naming the first tensor that disagrees, when the architectures differ.
    """
    theirs, found = _state(source)
    ours = _own(model)
    modules = (model, source) if not isinstance(source, Mapping) else None
    pairs = _pairs(ours, theirs, arch or found, modules)
    model.load_state_dict({mine: theirs[other].reshape(ours[mine].shape) for mine, other in pairs})
    return model


# The general name: the source need not come from torchvision.
load_state_dict_from = load_torchvision


def to_torchvision(model: Any, target: Any) -> Any:
    """Copy a compiled model's weights into a torchvision model (the inverse of `load_torchvision`)."""
    if isinstance(target, Mapping):  # the weights go into a module, not a dict
        raise InteropTypeError("expected a PyTorch model to copy the weights into, not a state_dict")
    theirs, arch = _state(target)
    state = target.state_dict()
    ours = _own(model)
    pairs = _pairs(ours, theirs, arch, (model, target))
    new = OrderedDict((other, ours[mine].reshape(theirs[other].shape)) for mine, other in pairs)
    # The target's own metadata (module versions): MNASNet refuses a state_dict without its version.
    new._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]  # torch's state_dict carries _metadata as an untyped attribute
    target.load_state_dict(new)
    return target


def pair_state(ours: Mapping[str, Any], theirs: Mapping[str, Any], arch: str | None = None) -> list[tuple[str, str]]:
    """(archspec name, their name) for every tensor of two state dicts (meta tensors will do: only
    shapes are read), paired as `load_torchvision` pairs them; InteropError when they disagree."""
    return _pairs(dict(ours), dict(theirs), arch)


def disagreements(ours: Mapping[str, Any], theirs: Mapping[str, Any], arch: str | None = None,
                  most: int = 12) -> list[tuple[int, str, tuple, str, tuple]]:
    """The positions where two state dicts disagree, as rows (index, archspec name, shape, their
    name, shape); a name is '-' where one side has no tensor there. At most `most` rows."""
    keys = list(theirs)
    if arch in ORDER_HINTS:
        keys = ORDER_HINTS[arch](keys)
    mine = list(ours)
    rows = []
    for i in range(max(len(mine), len(keys))):
        a = mine[i] if i < len(mine) else "-"
        b = keys[i] if i < len(keys) else "-"
        sa = tuple(ours[a].shape) if a != "-" else ()
        sb = tuple(theirs[b].shape) if b != "-" else ()
        if a == "-" or b == "-" or not _same(sa, sb):
            rows.append((i, a, sa, b, sb))
            if len(rows) >= most:
                break
    return rows
