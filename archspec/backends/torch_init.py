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


def initialise(model: nn.Module, init: Any) -> None:
    """Apply `init.conv`, `init.linear`, `init.norm`, then `init.by_name` globs, in module order."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, _CONV):
                rule = init.conv
            elif isinstance(module, nn.Linear):
                rule = init.linear
            elif isinstance(module, _NORM):
                rule = init.norm
            else:
                continue
            for pattern, override in init.by_name.items():
                if fnmatch.fnmatchcase(name, pattern):
                    rule = override
            _apply(rule.weight, getattr(module, "weight", None), module)
            _apply(rule.bias, getattr(module, "bias", None), module)
