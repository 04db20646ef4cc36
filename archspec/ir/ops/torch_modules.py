"""The torch modules of ops that PyTorch lacks; an op's `torch()` names them by import path.

Each class is self-contained (imports only torch), so that code export can copy
its source into a standalone file; for the same reason they are formatted as
`ruff format` would write them at its default line length of 88. Nothing in
archspec imports this module by name: the torch backend resolves the target
strings, so the IR stays free of torch.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W tensor (ConvNeXt)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)


class FrozenBatchNorm2d(nn.Module):
    """Batch norm whose statistics and affine terms are fixed buffers (torchvision's,
    for detection backbones): `x * scale + (bias - running_mean * scale)` with
    `scale = weight / sqrt(running_var + eps)`.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class ResizeLike(nn.Module):
    """Resample the first input to the spatial size of the second (FPN's top-down path,
    a segmentation head's upsampling to the input)."""

    def __init__(self, mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(
            x, size=like.shape[-2:], mode=self.mode, align_corners=self.align_corners
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, align_corners={self.align_corners}"


class L2Norm(nn.Module):
    """L2 normalisation over channels times a learned per-channel weight (SSD's
    conv4_3), initialised to `scale`."""

    def __init__(self, channels: int, scale: float = 20.0, eps: float = 1e-12):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.normalize(x, dim=1, eps=self.eps)
        return self.weight.view(1, -1, 1, 1) * x

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class StochasticDepth(nn.Module):
    """Drop a residual branch per sample in training.

    As torchvision's StochasticDepth in "row" mode.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1)
        noise = torch.empty(shape, dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    """Per-channel learned scale (ConvNeXt), initialised to a small constant."""

    def __init__(self, channels: int, init: float = 1e-6, ndim: int = 3):
        super().__init__()
        shape = (channels,) + (1,) * (ndim - 1)
        self.scale = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class ChannelSplit(nn.Module):
    """One channel group: of `parts` equal groups when `parts` is an int
    (`x.chunk(parts, dim=1)[index]`), else of groups of the sizes `parts` lists
    (`x.split(parts, dim=1)[index]`)."""

    def __init__(self, parts: int | tuple[int, ...], index: int):
        super().__init__()
        self.parts = parts
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.parts, int):
            return x.chunk(self.parts, dim=1)[self.index]
        return x.split(list(self.parts), dim=1)[self.index]

    def extra_repr(self) -> str:
        return f"parts={self.parts}, index={self.index}"


class ChannelShuffle(nn.Module):
    """Interleave channel groups (ShuffleNet).

    (N, g, C/g, H, W) -> transpose -> (N, C, H, W).
    """

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No shape reads, so that fx tracing and export see plain tensor ops.
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ChannelAffine(nn.Module):
    """`x[:, c] * scale[c] + shift[c]` with constant floats, channel by channel as
    torchvision's GoogLeNet / Inception-v3 `_transform_input` computes it."""

    def __init__(self, scale: tuple[float, ...], shift: tuple[float, ...]):
        super().__init__()
        self.scale = tuple(scale)
        self.shift = tuple(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = [
            torch.unsqueeze(x[:, c], 1) * s + t
            for c, (s, t) in enumerate(zip(self.scale, self.shift))
        ]
        return torch.cat(channels, 1)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, shift={self.shift}"
