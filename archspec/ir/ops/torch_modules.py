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


class Tokens(nn.Module):
    """An N x C x H x W map as N x (H*W) x C tokens, row by row (ViT's patches)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).permute(0, 2, 1)


class ToMap(nn.Module):
    """N x L x C tokens back to an N x C x H x W map of the given height, row by row."""

    def __init__(self, height: int):
        super().__init__()
        self.height = height

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).unflatten(2, (self.height, -1))

    def extra_repr(self) -> str:
        return f"height={self.height}"


class ClassToken(nn.Module):
    """Prepend a learned token to the sequence (ViT's class token, zeros at first)."""

    def __init__(self, dim: int):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)


class PositionEmbedding(nn.Module):
    """Add a learned embedding per position of the sequence (ViT's, N(0, 0.02^2))."""

    def __init__(self, length: int, dim: int, std: float = 0.02):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


class SelfAttention(nn.MultiheadAttention):
    """Multi-head self-attention over N x L x C tokens (nn.MultiheadAttention's)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__(embed_dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]  # self-attention: one input, where the base takes query, key and value
        return super().forward(x, x, x, need_weights=False)[0]


class SelectToken(nn.Module):
    """One token of the sequence as a flat vector (ViT's class token, index 0)."""

    def __init__(self, index: int = 0):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return f"index={self.index}"


class PatchMerge(nn.Module):
    """Swin's patch merging rearrangement on N x C x H x W: each 2x2 neighbourhood's
    pixels become channels in the order (0,0), (1,0), (0,1), (1,1); odd sizes are
    padded with zeros at the bottom and right first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        parts = [x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2]]
        return torch.cat(parts + [x[..., 1::2, 1::2]], 1)


class WindowAttention(nn.Module):
    """Multi-head self-attention within non-overlapping windows of an N x C x H x W map,
    with a relative position bias (Swin; torchvision's ShiftedWindowAttention and its
    parameters). The map is padded to whole windows; with `shift`, it is rolled by
    -shift first and a mask keeps apart the pixels that the roll brought together.
    `version` 2 is Swin v2: cosine attention with a learned logit scale per head, and
    the bias from a small MLP over log-spaced relative coordinates.
    `grid` partitions the map into a window-sized grid of dilated windows instead
    (MaxViT's grid attention)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: tuple[int, int] = (7, 7),
        shift: tuple[int, int] = (0, 0),
        version: int = 1,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.window_size = list(window)
        self.shift_size = list(shift)
        self.num_heads = num_heads
        self.version = version
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        wh, ww = window
        if version == 1:
            table = torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads)
            self.relative_position_bias_table = nn.Parameter(table)
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        else:
            h = torch.arange(-(wh - 1), wh, dtype=torch.float32) / max(wh - 1, 1)
            w = torch.arange(-(ww - 1), ww, dtype=torch.float32) / max(ww - 1, 1)
            coords = torch.stack(torch.meshgrid([h, w], indexing="ij"))
            coords = coords.permute(1, 2, 0).contiguous().unsqueeze(0) * 8
            coords = torch.sign(coords) * torch.log2(torch.abs(coords) + 1.0) / 3.0
            self.register_buffer("relative_coords_table", coords)
        grid = torch.stack(
            torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        ).flatten(1)
        rel = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)
        index = (rel[:, :, 0] + wh - 1) * (2 * ww - 1) + rel[:, :, 1] + ww - 1
        self.register_buffer("relative_position_index", index.flatten())
        if version == 2:
            scale = torch.log(10 * torch.ones((num_heads, 1, 1)))
            self.logit_scale = nn.Parameter(scale)
            self.cpb_mlp = nn.Sequential(
                nn.Linear(2, 512, bias=True),
                nn.ReLU(inplace=True),
                nn.Linear(512, num_heads, bias=False),
            )
            with torch.no_grad():
                self.qkv.bias[dim : 2 * dim].zero_()

    def position_bias(self) -> torch.Tensor:
        """The bias added to each head's logits: heads x N x N, N = window area."""
        if self.version == 1:
            table = self.relative_position_bias_table
        else:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        n = self.window_size[0] * self.window_size[1]
        bias = table[self.relative_position_index].view(n, n, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        return bias if self.version == 1 else 16 * torch.sigmoid(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        (wh, ww), (sh, sw) = self.window_size, self.shift_size
        x = nn.functional.pad(x, (0, 0, 0, (ww - W % ww) % ww, 0, (wh - H % wh) % wh))
        _, pH, pW, _ = x.shape
        sh, sw = (0 if wh >= pH else sh), (0 if ww >= pW else sw)
        if sh + sw > 0:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        nw, n = (pH // wh) * (pW // ww), wh * ww
        x = x.view(B, pH // wh, wh, pW // ww, ww, C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * nw, n, C)
        bias: torch.Tensor = self.qkv.bias
        if self.version == 2:
            bias = torch.cat(
                [bias[:C], torch.zeros_like(bias[C : 2 * C]), bias[2 * C :]]
            )
        qkv = nn.functional.linear(x, self.qkv.weight, bias)
        qkv = qkv.reshape(B * nw, n, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if self.version == 2:
            q, k = (
                nn.functional.normalize(q, dim=-1),
                nn.functional.normalize(k, dim=-1),
            )
            scale = torch.clamp(
                self.logit_scale, max=4.605170185988092
            ).exp()  # log 100
            attn = q @ k.transpose(-2, -1) * scale
        else:
            attn = (q * (C // self.num_heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + self.position_bias()
        if sh + sw > 0:
            mask = x.new_zeros((pH, pW))
            count = 0
            for h in ((0, -wh), (-wh, -sh), (-sh, None)):
                for w in ((0, -ww), (-ww, -sw), (-sw, None)):
                    mask[h[0] : h[1], w[0] : w[1]] = count
                    count += 1
            mask = mask.view(pH // wh, wh, pW // ww, ww).permute(0, 2, 1, 3)
            mask = mask.reshape(nw, n)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = attn.view(B, nw, self.num_heads, n, n) + mask.unsqueeze(1)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = nn.functional.softmax(attn, dim=-1)
        attn = nn.functional.dropout(attn, self.attention_dropout, self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(B * nw, n, C)
        x = nn.functional.linear(x, self.proj.weight, self.proj.bias)
        x = nn.functional.dropout(x, self.dropout, self.training)
        x = x.view(B, pH // wh, pW // ww, wh, ww, C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pH, pW, C)
        if sh + sw > 0:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        # N x C x H x W over channels-last memory, as LayerNorm2d returns it: no
        # copy, and the residual sum adds two maps of one layout (swin_t forward:
        # 1.07 -> 1.04 of torchvision's time)
        return x[:, :H, :W, :].permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"heads={self.num_heads}, window={tuple(self.window_size)}, "
            f"shift={tuple(self.shift_size)}, version={self.version}"
        )


class PartitionAttention(nn.Module):
    """Multi-head self-attention within the partitions of an N x C x H x W map, with a
    relative position bias (MaxViT; the parameters of torchvision's
    RelativePositionalMultiHeadAttention). "window": size x size blocks of neighbouring
    pixels; "grid": size x size pixels spaced H / size apart. Keys are scaled by
    C ** -0.5, as torchvision does."""

    def __init__(
        self, dim: int, head_dim: int, size: int = 7, partition: str = "window"
    ):
        super().__init__()
        self.n_heads = dim // head_dim
        self.head_dim = head_dim
        self.size = size
        self.partition = partition
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.scale_factor = dim**-0.5
        self.merge = nn.Linear(dim, dim)
        table = torch.empty((2 * size - 1) ** 2, self.n_heads)
        self.relative_position_bias_table = nn.Parameter(table)
        grid = torch.stack(
            torch.meshgrid([torch.arange(size), torch.arange(size)], indexing="ij")
        ).flatten(1)
        rel = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)
        index = (rel[:, :, 0] + size - 1) * (2 * size - 1) + rel[:, :, 1] + size - 1
        self.register_buffer("relative_position_index", index)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        # window: p pixels per side of a partition; grid: p partitions per side
        p = self.size if self.partition == "window" else H // self.size
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(B, (H // p) * (W // p), p * p, C)
        if self.partition == "grid":
            x = x.swapaxes(-2, -3)
        G, P, n = x.shape[1], x.shape[2], self.size * self.size
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q = q.reshape(B, G, P, self.n_heads, self.head_dim).permute(0, 1, 3, 2, 4)
        k = k.reshape(B, G, P, self.n_heads, self.head_dim).permute(0, 1, 3, 2, 4)
        v = v.reshape(B, G, P, self.n_heads, self.head_dim).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        attn = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        attn = nn.functional.softmax(attn + bias, dim=-1)
        x = torch.einsum("B G H I J, B G H J D -> B G H I D", attn, v)
        x = self.merge(x.permute(0, 1, 3, 2, 4).reshape(B, G, P, C))
        if self.partition == "grid":
            x = x.swapaxes(-2, -3)
        x = x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)

    def extra_repr(self) -> str:
        return f"heads={self.n_heads}, size={self.size}, partition={self.partition!r}"
