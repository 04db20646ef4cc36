"""Weight initialisation from the spec's `init` section (each family as its reference does it).

The rules are plain data (`InitSpec.tables()`), `{"conv": (weight, bias), ...}` plus module-path
globs with their own rule, and the three functions below `# -- copied into exported
source` work on that data alone: code export copies them into standalone files, so an
exported model initialises itself as the compiled one does. They are formatted as
`ruff format` would at its default line length, like `ir/ops/torch_modules.py`.
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any

import torch
from torch import nn

def initialise(model: nn.Module, init: Any) -> None:
    """Apply the spec's `InitSpec`: `init.conv`, `init.linear`, `init.norm`, then `init.by_name` globs."""
    init_weights(model, *init.tables())


def overwrites(
    tables: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]], name: str, kind: str | None, has_bias: bool
) -> bool:
    """Whether `initialise` will set every parameter of the module at `name` (by the rules
    `InitSpec.tables()`), so that its constructor need not initialise them first (building
    resnet50 then costs one random draw per weight instead of two). Buffers are never
    skipped: `kind` is the rule of an op whose module has none (`Op.init_skippable`)."""
    if kind is None:
        return False
    weight, bias = init_rule(name, kind, *tables)
    return weight != "default" and (not has_bias or bias != "default")


# -- copied into exported source ------------------------------------------------------------


def init_scheme(scheme: str, tensor: torch.Tensor | None) -> None:
    """Initialise `tensor` in place by `scheme` ("default" leaves PyTorch's own)."""
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
    elif scheme.startswith("kaiming_"):
        match = re.fullmatch(
            r"kaiming_(normal|uniform)\(\s*(fan_in|fan_out)\s*(?:,\s*(\w+)\s*)?\)",
            scheme,
        )
        if not match:
            raise ValueError(f"unknown init scheme '{scheme}'")
        mode, nonlinearity = match.group(2), match.group(3) or "leaky_relu"
        if match.group(1) == "normal":
            nn.init.kaiming_normal_(tensor, mode=mode, nonlinearity=nonlinearity)
        else:
            nn.init.kaiming_uniform_(tensor, mode=mode, nonlinearity=nonlinearity)
    else:
        match = re.fullmatch(r"(trunc_)?normal\(\s*([0-9.eE+-]+)\s*\)", scheme)
        if not match:
            raise ValueError(f"unknown init scheme '{scheme}'")
        std = float(match.group(2))
        if match.group(1):
            nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0, b=2.0)
        else:
            nn.init.normal_(tensor, 0.0, std)


def init_rule(
    name: str,
    kind: str,
    kinds: dict[str, tuple[str, str]],
    by_name: dict[str, tuple[str, str]],
) -> tuple[str, str]:
    """The rule for the module at `name`: its kind's, unless a glob matches it."""
    rule = kinds[kind]
    for pattern, override in by_name.items():
        if fnmatch.fnmatchcase(name, pattern):
            rule = override
    return rule


def init_weights(
    model: nn.Module,
    kinds: dict[str, tuple[str, str]],
    by_name: dict[str, tuple[str, str]],
) -> None:
    """Initialise convs, linears and norms by their rules, in module order."""
    types = {
        "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
        "linear": (nn.Linear,),
        "norm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm),
    }
    with torch.no_grad():
        for name, module in model.named_modules():
            kind = next((k for k, t in types.items() if isinstance(module, t)), None)
            if kind is None:
                continue
            weight, bias = init_rule(name, kind, kinds, by_name)
            init_scheme(weight, getattr(module, "weight", None))
            init_scheme(bias, getattr(module, "bias", None))
