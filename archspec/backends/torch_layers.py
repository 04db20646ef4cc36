"""Small torch modules that PyTorch lacks, used by compiled networks.

Each class is self-contained (imports only torch), so that code export can copy
its source into a standalone file; for the same reason they are formatted as
`ruff format` would write them at its default line length of 88.
"""

from __future__ import annotations

from collections import OrderedDict

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


class Stage(nn.Module):
    """A stage: its blocks, run in order (`stages.2.blocks.0`)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Network(nn.Module):
    """stem -> stages -> head. Auxiliary heads (if any) run in training only, each right
    after the stage given in `aux_after`; then forward returns `(logits, *aux_logits)`
    with the auxiliary logits in the order the heads are listed (which need not be the
    order they run in: torchvision's GoogLeNet returns `(logits, aux2, aux1)`)."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], head: nn.Module,
                 aux_heads: list[nn.Module] | None = None, aux_after: tuple[int, ...] = ()):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        if aux_heads:
            self.aux_heads = nn.ModuleList(aux_heads)
        self.head = head
        self.aux_after = tuple(aux_after)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        if not self.aux_after or not self.training:
            return self.head(self.stages(x))
        aux: list[torch.Tensor | None] = [None] * len(self.aux_after)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            for k, (head, after) in enumerate(zip(self.aux_heads, self.aux_after)):
                if after == i:
                    aux[k] = head(x)
        return (self.head(x), *aux)


class Features(nn.Module):
    """stem -> stages -> head, as far as the taps need; forward returns the taps as an
    ordered dict (torchvision's IntermediateLayerGetter convention), in `names` order.

    `runs` lists the module paths to run, in order, with the taps taken after each: a
    part runs whole unless a tap lies inside it, and then layer by layer.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: list[nn.Module],
        head: nn.Module | None,
        runs: list[tuple[str, tuple[str, ...]]],
        names: tuple[str, ...],
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        if head is not None:
            self.head = head
        self.runs = [(path, tuple(taken)) for path, taken in runs]
        self.names = tuple(names)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for path, taken in self.runs:
            x = self.get_submodule(path)(x)
            for name in taken:
                out[name] = x
        return OrderedDict((name, out[name]) for name in self.names)


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
