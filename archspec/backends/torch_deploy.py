"""A trained module's inference form: the deploy pass's network (ir/deploy.py) built, its folded
weights computed from the training form's modules (in float64, then cast back), every other
weight carried over by key; then laid out for the CPU: channels-last memory, and 2-d convolutions
whose weights oneDNN reorders once, not on every call (`torch_packed`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..ir.deploy import Deployed, Fold, deploy_network
from ..ir.graph import Network
from .torch_module import build_module
from .torch_packed import pack_convolutions

LAYOUTS = ("auto", "channels_last", "contiguous")


def _norm(model: nn.Module, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch norm's eval-mode map as (scale, shift), in float64."""
    m: Any = model.get_submodule(path)
    mean, var = m.running_mean.double(), m.running_var.double()
    weight = m.weight.double() if m.weight is not None else torch.ones_like(mean)
    bias = m.bias.double() if m.bias is not None else torch.zeros_like(mean)
    scale = weight / torch.sqrt(var + m.eps)
    return scale, bias - mean * scale


def _centred(w: torch.Tensor, kernel: tuple[int, ...]) -> torch.Tensor:
    """A conv kernel zero-padded to `kernel`, centred."""
    pad: list[int] = []
    for have, want in zip(reversed(w.shape[2:]), reversed(kernel)):
        pad += [(want - have) // 2, (want - have) // 2]
    return nn.functional.pad(w, pad) if any(pad) else w


def fold_weights(model: nn.Module, fold: Fold, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weight, bias) that `fold` makes from `model`'s modules, shaped like `like` (the
    deployed layer's weight), in float64."""
    if fold.terms:
        weight = torch.zeros(like.shape, dtype=torch.float64)
        bias = torch.zeros(like.shape[0], dtype=torch.float64)
        for term in fold.terms:
            w, b = fold_weights(model, term, like)
            weight += _centred(w, tuple(like.shape[2:]))
            bias += b
    elif fold.layer is not None:
        layer: Any = model.get_submodule(fold.layer)
        weight = layer.weight.detach().double().cpu()
        bias = (layer.bias.detach().double().cpu() if layer.bias is not None
                else torch.zeros(weight.shape[0], dtype=torch.float64))
    else:  # the identity, as a 1x1 (grouped) conv: input channel o feeds output o
        out, per_group = like.shape[0], like.shape[1]
        weight = torch.zeros((out, per_group) + (1,) * (like.dim() - 2), dtype=torch.float64)
        weight[torch.arange(out), torch.arange(out) % per_group] = 1.0
        bias = torch.zeros(out, dtype=torch.float64)
    for path in fold.norms:
        scale, shift = (t.detach().cpu() for t in _norm(model, path))
        weight = weight * scale.reshape((-1,) + (1,) * (weight.dim() - 1))
        bias = bias * scale + shift
    return weight, bias


def uses_channels_last(net: Network) -> bool:
    """Whether `layout="auto"` picks channels-last: for any network with 2-d convolutions, where
    oneDNN's channels-last kernels measured faster on CPU (docs/benchmarks.md)."""
    return any(len(ref.node.shape) == 3 and ref.node.op.kind == "conv" for ref in net.nodes())


def apply_layout(model: nn.Module, net: Network, layout: str = "auto") -> nn.Module:
    """`model` in the memory layout `layout` asks for (see `uses_channels_last`)."""
    if layout == "channels_last" or (layout == "auto" and uses_channels_last(net)):
        return model.to(memory_format=torch.channels_last)
    return model


def deploy_module(model: nn.Module, net: Network, layout: str = "auto", pack: bool = True) -> nn.Module:
    """The inference form of `model`, a module compiled from `net` (its weights carried over);
    `pack`: its 2-d convs keep their weights in oneDNN's layout (`torch_packed`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout is one of {', '.join(LAYOUTS)}, not {layout!r}")
    deployed: Deployed = deploy_network(net)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.device(device):  # every parameter is loaded below: none is drawn at random first
        out = build_module(deployed.network, init=False, fill=False)
    if param is not None and param.is_floating_point() and param.dtype != torch.get_default_dtype():
        out = out.to(dtype=param.dtype)  # a float64 or bfloat16 model deploys as one (before the weights are carried)
    if device.type != "meta":  # on meta (shapes only, as a checkpoint is loaded) there is nothing to fold
        _carry(model, out, deployed)
    out = apply_layout(out.eval(), deployed.network, layout)
    out.requires_grad_(False)  # it does not train (no norm statistics, no branches), so autograd need not track it
    if pack:
        pack_convolutions(out)
    out.archspec_spec = getattr(model, "archspec_spec", net.spec_data)
    out.archspec_deployed = True
    return out


def _carry(model: nn.Module, out: nn.Module, deployed: Deployed) -> None:
    """Fill every tensor of `out` (its state_dict: all its parameters and buffers) with the folded
    weights and, under the same keys, `model`'s others, in place: `copy_` casts to the tensor's
    dtype and device, with no intermediate copy."""
    source = model.state_dict()
    made: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with torch.no_grad():
        for key, tensor in out.state_dict().items():  # each shares its storage with `out`'s own tensor
            path, _, attr = key.rpartition(".")
            if path in deployed.folds and attr in ("weight", "bias"):
                if path not in made:
                    made[path] = fold_weights(model, deployed.folds[path], out.get_submodule(path).weight)
                value = made[path][0 if attr == "weight" else 1]
            else:
                value = source[key]
            if value.shape != tensor.shape:
                raise ValueError(f"deploy: '{key}' has shape {list(value.shape)}, the deployed module needs "
                                 f"{list(tensor.shape)}")
            tensor.copy_(value)
