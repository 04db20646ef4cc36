"""resnet50: standalone PyTorch source, exported by archspec 0.1.0.

ResNet-50 (He et al., 2015), bottleneck blocks, torchvision v1.5

Needs only torch:

    model = Resnet50()
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import OrderedDict

import torch
from torch import nn


# The spec's `init` section: (weight, bias) schemes per kind of layer, then by
# module path (glob patterns; the last match wins). See init_scheme for the schemes.
INIT_KINDS: dict[str, tuple[str, str]] = {
    "conv": ("kaiming_normal_fan_out", "default"),
    "linear": ("default", "default"),
    "norm": ("default", "default"),
}
INIT_BY_NAME: dict[str, tuple[str, str]] = {}


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


class Stem(nn.Module):
    """The stem."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        return x


class Bottleneck(nn.Module):
    """`{block: bottleneck, out: 256}`: 1x1 reduce, 3x3 (strided, grouped), 1x1
    expand, plus a skip.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv1_channels: int,
        stride: int,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, conv1_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(conv1_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(
            conv1_channels,
            conv1_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(conv1_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(conv1_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu2(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.downsample is not None:
            x = self.downsample(x)
        out += x
        out = self.relu(out)
        return out


class Head(nn.Sequential):
    """The head."""

    def __init__(self) -> None:
        super().__init__(
            OrderedDict(
                [
                    ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
                    ("0", nn.Flatten(1)),
                    ("fc", nn.Linear(2048, 1000)),
                ]
            )
        )


class Stage(nn.Module):
    """A stage: its blocks, run in order."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Resnet50(nn.Module):
    """resnet50: input N x 3x224x224, output N x 1000.

    25,557,032 parameters, initialised as the spec says (init_weights).
    Load trained weights with `load_state_dict`: the keys are those of `archspec.build`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        self.stages = nn.Sequential(
            Stage(
                Bottleneck(
                    in_channels=64,
                    out_channels=256,
                    conv1_channels=64,
                    stride=1,
                    downsample=True,
                ),
                Bottleneck(
                    in_channels=256,
                    out_channels=256,
                    conv1_channels=64,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=256,
                    out_channels=256,
                    conv1_channels=64,
                    stride=1,
                    downsample=False,
                ),
            ),
            Stage(
                Bottleneck(
                    in_channels=256,
                    out_channels=512,
                    conv1_channels=128,
                    stride=2,
                    downsample=True,
                ),
                Bottleneck(
                    in_channels=512,
                    out_channels=512,
                    conv1_channels=128,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=512,
                    out_channels=512,
                    conv1_channels=128,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=512,
                    out_channels=512,
                    conv1_channels=128,
                    stride=1,
                    downsample=False,
                ),
            ),
            Stage(
                Bottleneck(
                    in_channels=512,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=2,
                    downsample=True,
                ),
                Bottleneck(
                    in_channels=1024,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=1024,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=1024,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=1024,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=1024,
                    out_channels=1024,
                    conv1_channels=256,
                    stride=1,
                    downsample=False,
                ),
            ),
            Stage(
                Bottleneck(
                    in_channels=1024,
                    out_channels=2048,
                    conv1_channels=512,
                    stride=2,
                    downsample=True,
                ),
                Bottleneck(
                    in_channels=2048,
                    out_channels=2048,
                    conv1_channels=512,
                    stride=1,
                    downsample=False,
                ),
                Bottleneck(
                    in_channels=2048,
                    out_channels=2048,
                    conv1_channels=512,
                    stride=1,
                    downsample=False,
                ),
            ),
        )
        self.head = Head()
        init_weights(self, INIT_KINDS, INIT_BY_NAME)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
