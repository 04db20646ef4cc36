"""resnet50: standalone PyTorch source, exported by archspec 0.1.0.

ResNet-50 (He et al., 2015), bottleneck blocks, torchvision v1.5

Needs only torch:

    model = Resnet50()
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


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

    25,557,032 parameters, initialised by PyTorch's defaults; load trained weights with
    `load_state_dict`: the keys are those of `archspec.build`.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
