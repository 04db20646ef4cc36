"""Weight initialisation from the spec's `init` section (each family as its reference does it)."""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def _apply(scheme: str, tensor: torch.Tensor | None, module: nn.Module) -> None:
    if tensor is None or scheme == "default":
        return
    if scheme == "zeros":
        nn.init.zeros_(tensor)
    elif scheme == "ones":
        nn.init.ones_(tensor)
    elif scheme in ("kaiming_normal", "kaiming_normal_fan_in"):
        nn.init.kaiming_normal_(tensor)
    elif scheme == "kaiming_normal_fan_out":
        nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu")
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(tensor)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(tensor)
    elif scheme == "uniform_fan_out":
        bound = 1.0 / math.sqrt(tensor.shape[0])
        nn.init.uniform_(tensor, -bound, bound)
    else:
        match = re.fullmatch(r"(trunc_)?normal\(\s*([0-9.eE+-]+)\s*\)", scheme)
        if not match:
            raise ValueError(f"unknown init scheme '{scheme}'")
        std = float(match.group(2))
        if match.group(1):
            nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0, b=2.0)
        else:
            nn.init.normal_(tensor, 0.0, std)


def _rule(init: Any, name: str, kind: str) -> Any:
    """The rule for the module at `name` of kind conv, linear or norm: the kind's, unless a glob names it."""
    rule = getattr(init, kind)
    for pattern, override in init.by_name.items():
        if fnmatch.fnmatchcase(name, pattern):
            rule = override
    return rule


def initialise(model: nn.Module, init: Any) -> None:
    """Apply `init.conv`, `init.linear`, `init.norm`, then `init.by_name` globs, in module order."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, _CONV):
                rule = _rule(init, name, "conv")
            elif isinstance(module, nn.Linear):
                rule = _rule(init, name, "linear")
            elif isinstance(module, _NORM):
                rule = _rule(init, name, "norm")
            else:
                continue
            _apply(rule.weight, getattr(module, "weight", None), module)
            _apply(rule.bias, getattr(module, "bias", None), module)


# Modules whose constructor's own initialisation is worth skipping (a random draw per weight).
_SKIPPABLE = {"torch.nn.Conv2d": "conv", "torch.nn.Linear": "linear"}


def overwrites(init: Any, name: str, target: str, has_bias: bool) -> bool:
    """Whether `initialise` will set every parameter of the module at `name`, so that its
    constructor need not initialise them first (building resnet50 then costs one random
    draw per weight instead of two). Buffers are never skipped: no module here has any."""
    kind = _SKIPPABLE.get(target)
    if kind is None:
        return False
    rule = _rule(init, name, kind)
    return rule.weight != "default" and (not has_bias or rule.bias != "default")
