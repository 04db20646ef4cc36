"""Attention and the token ops around it: a map as tokens, the class token, learned position
embeddings, multi-head self-attention (ViT), window attention and patch merging (Swin).

Token sequences have the shape `(L, D)`: L tokens of D features (the batch dimension excluded,
as everywhere), the layout of the tensor torch sees (N x L x D). `linear` and `norm: layer`
act on the last axis of a sequence, as `nn.Linear` and `nn.LayerNorm` do.

Receptive fields (docs/analysis.md, "Attention"): an op that lets every position see every other
keeps each unit's local field (size, stride, padding) and adds the whole map to its `context`,
the pixels every unit sees, as a squeeze-and-excitation gate does (`RF.with_map`). A token sequence
has no 2-d positions left to index, so `tokens` adds that context for every token (its local field
stays its patch's), and the ops on the sequence keep it. Window attention gives each unit every
pixel of any window that can hold it: a (2w - 1) x (2w - 1) window, stride 1, padding w - 1, a
bound (a unit sees its own window only); where one window covers the map, the whole map's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from ..op import RF, ModuleCall, Op, Shape, ShapeError, pair, register_op
from ._types import PosInt, PosPair, Probability, hw, spatial


def sequence(shape: Shape, kind: str) -> tuple[int, int]:
    """`(L, D)` of a token sequence, or a located hint at what to put before the op."""
    if len(shape) != 2:
        got = "x".join(map(str, shape))
        hint = "add 'tokens' before it" if len(shape) == 3 else "it needs the tokens, not a vector"
        raise ShapeError(f"{kind} needs a token sequence (L, D), got {got}; {hint}")
    return shape[0], shape[1]


def _heads(width: int, heads: int, kind: str) -> None:
    if width % heads:
        divisors = [h for h in range(1, width + 1) if width % h == 0 and abs(h - heads) <= max(heads, 4)]
        near = ", ".join(map(str, divisors[:6]))
        raise ShapeError(f"{kind}: {heads} heads do not divide the width {width} (each head takes width / heads "
                         f"features); heads that do: {near}")


class _Fixed(Op):
    """The facts shared by the parameter-free token reshapes."""

    category: ClassVar[str] = "reshape"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False


@register_op
class Tokens(_Fixed):
    """A C x H x W map as H*W tokens of C features, row by row: `tokens` (ViT's patch sequence)."""

    kind: ClassVar[str] = "tokens"
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 3, 5)])

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        return (h * w, c)

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].with_map(ins[0][1:])

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.Tokens")

    def label(self, ins: Sequence[Shape]) -> str:
        return "tokens"


@register_op
class ToMap(_Fixed):
    """L tokens of D features back to a D x H x W map, row by row: `to_map` (a square map) or
    `to_map: {height: 7}`. The inverse of `tokens`."""

    kind: ClassVar[str] = "to_map"
    shorthand: ClassVar[str] = "height"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"height": 3}, [(15, 4)])

    height: PosInt | None = None

    def _size(self, length: int) -> tuple[int, int]:
        grid = _grid(length)
        h = self.height or (grid[0] if grid else None)
        if not h or length % h:
            raise ShapeError(f"to_map: {length} tokens make no " + (f"map of height {h}" if h else "square map; give its height"))
        return h, length // h

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        length, d = sequence(ins[0], self.kind)
        return (d, *self._size(length))

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0]  # the tokens kept their fields (`tokens`); only the layout changes

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.ToMap", (self._size(ins[0][0])[0],), names=("height",))

    def label(self, ins: Sequence[Shape]) -> str:
        return "to map"


@register_op
class SelectToken(_Fixed):
    """One token of a sequence as a flat vector: `select_token: 0` (ViT's class token)."""

    kind: ClassVar[str] = "select_token"
    ends_features: ClassVar[bool] = True
    shorthand: ClassVar[str] = "index"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"index": 0}, [(5, 4)])

    index: int = Field(default=0, ge=0)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        length, d = sequence(ins[0], self.kind)
        if self.index >= length:
            raise ShapeError(f"select_token {self.index}: the sequence has {length} tokens")
        return (d,)

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.SelectToken", (self.index,), names=("index",))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"token {self.index}"


@register_op
class ClassToken(_Fixed):
    """Prepend one learned token (initialised to zeros) to the sequence: `class_token`."""

    kind: ClassVar[str] = "class_token"
    category: ClassVar[str] = "other"
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(5, 4)])

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        length, d = sequence(ins[0], self.kind)
        return (length + 1, d)

    def params(self, ins: Sequence[Shape]) -> int:
        return ins[0][-1]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.ClassToken", (ins[0][-1],), names=("dim",))

    def label(self, ins: Sequence[Shape]) -> str:
        return "class token"


@register_op
class PositionEmbedding(_Fixed):
    """Add a learned vector per position, N(0, std^2) at first: `pos_embed: {length: 197}`.

    `length` is the sequence it was made for (ViT-B/16 at 224x224: 14 x 14 patches and the class
    token); a sequence of another length is an error, since the embedding cannot follow it."""

    kind: ClassVar[str] = "pos_embed"
    category: ClassVar[str] = "other"
    shorthand: ClassVar[str] = "length"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"length": 5}, [(5, 4)])

    length: PosInt
    std: float = Field(default=0.02, ge=0)
    # Tokens that do not come from the map (the class token): the hint names the grid of the rest.
    extra: int = Field(default=1, ge=0)

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        length, d = sequence(ins[0], self.kind)
        if length != self.length:
            fits = _grid(self.length - self.extra)
            got = _grid(length - self.extra)
            scale = ""
            if fits and got:
                scale = (f" (a {hw(fits)} patch grid{self._plus()}, where the input gives {hw(got)}{self._plus()}:"
                         f" an input {fits[0] / got[0]:.4g}x as large fits)")
            raise ShapeError(f"pos_embed holds {self.length} positions but the sequence has {length} tokens{scale}; "
                             f"use the input size it was made for, or set length: {length}")
        return ins[0]

    def _plus(self) -> str:
        return f" plus {self.extra} class token" + ("s" if self.extra > 1 else "") if self.extra else ""

    def params(self, ins: Sequence[Shape]) -> int:
        return self.length * ins[0][-1]

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        args = (self.length, ins[0][-1], self.std)
        return ModuleCall("archspec.ir.ops.torch_modules.PositionEmbedding", args, names=("length", "dim", "std"))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"pos embed {self.length}"


def _grid(n: int) -> tuple[int, int] | None:
    """A square grid of n cells, if n is a square."""
    r = int(round(n ** 0.5))
    return (r, r) if n > 0 and r * r == n else None


@register_op
class SelfAttention(Op):
    """Multi-head self-attention over a token sequence: `attention: {heads: 12}`.

    torchvision's ViT layer: `nn.MultiheadAttention` (one `in_proj_weight` of 3D x D for the
    queries, keys and values, and `out_proj`), scaled dot products, softmax, `dropout` on the
    attention weights."""

    kind: ClassVar[str] = "attention"
    category: ClassVar[str] = "attention"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "linear"  # out_proj; in_proj keeps its xavier initialisation
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    shorthand: ClassVar[str] = "heads"
    example: ClassVar[tuple[dict, list[Shape]]] = ({"heads": 2}, [(5, 4)])

    heads: PosInt
    dropout: Probability = 0.0

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        _, d = sequence(ins[0], self.kind)
        _heads(d, self.heads, self.kind)
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        d = ins[0][-1]
        return 4 * d * d + 4 * d

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        length, d = ins[0]
        # projections (q, k, v and out: 4 L D^2), then Q K^T and the weighted sum of V (2 L^2 D)
        return 4 * length * d * d + 2 * length * length * d

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0]  # `tokens` already gave every token the whole map as context

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        args, kwargs = (ins[0][-1], self.heads), ({"dropout": self.dropout} if self.dropout else {})
        return ModuleCall("archspec.ir.ops.torch_modules.SelfAttention", args, kwargs,
                          names=("embed_dim", "num_heads"))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"attention {self.heads} heads, {ins[0][-1]}"


@register_op
class WindowAttention(Op):
    """Multi-head self-attention within non-overlapping windows of a C x H x W map, with a
    learned relative position bias: `window_attention: {heads: 3, window_size: 7, shift: 3}` (Swin).

    The map is padded to whole windows; `shift` rolls it by -shift first (and back after), with a
    mask that keeps apart pixels the roll brought together (Swin's shifted windows). `version: 2`
    is Swin v2: cosine attention with a learned logit scale per head, and the bias from a small
    MLP over log-spaced relative coordinates. Parameters as torchvision's ShiftedWindowAttention(V2):
    `qkv`, `proj`, `relative_position_bias_table` (v1) or `logit_scale` and `cpb_mlp` (v2)."""

    kind: ClassVar[str] = "window_attention"
    category: ClassVar[str] = "attention"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "linear"  # qkv, proj (and the v2 bias MLP)
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"heads": 2, "window_size": 2, "shift": 1}, [(4, 4, 4)])

    heads: PosInt
    window_size: PosPair = 7
    shift: int | tuple[int, int] = Field(default=0)
    version: Literal[1, 2] = 1
    dropout: Probability = 0.0  # on the attention weights
    proj_dropout: Probability = 0.0

    def _geometry(self, ins: Sequence[Shape]) -> tuple[int, int, int, tuple[int, int], tuple[int, int]]:
        c, h, w = spatial(ins[0], self.kind)
        win, shift = pair(self.window_size), pair(self.shift)
        if win[0] > h or win[1] > w:
            fit = (min(win[0], h), min(win[1], w))
            raise ShapeError(f"window_attention: the window {hw(win)} is larger than the {h}x{w} map; "
                             f"use a window of at most {hw(fit)} or a larger input")
        if not all(0 <= s < k for s, k in zip(shift, win)):
            raise ShapeError(f"window_attention: shift {list(shift)} must be at least 0 and less than the window {hw(win)}")
        _heads(c, self.heads, self.kind)
        return c, h, w, win, shift

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        self._geometry(ins)
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        c = ins[0][0]
        wh, ww = pair(self.window_size)
        table = (2 * wh - 1) * (2 * ww - 1) * self.heads
        bias = table if self.version == 1 else self.heads + 2 * 512 + 512 + 512 * self.heads
        return 3 * c * c + 3 * c + c * c + c + bias

    def buffers(self, ins: Sequence[Shape]) -> int:
        wh, ww = pair(self.window_size)
        coords = 0 if self.version == 1 else (2 * wh - 1) * (2 * ww - 1) * 2
        return (wh * ww) ** 2 + coords

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        c, h, w = ins[0]
        wh, ww = pair(self.window_size)
        tokens = -(-h // wh) * wh * -(-w // ww) * ww  # the map padded to whole windows
        # projections (q, k, v and out: 4 T C^2) on the padded map, then Q K^T and the weighted
        # sum of V within each window (2 T n C, n = the window's area); v2 adds the bias MLP
        cpb = 0 if self.version == 1 else (2 * wh - 1) * (2 * ww - 1) * (2 * 512 + 512 * self.heads)
        return 4 * tokens * c * c + 2 * tokens * wh * ww * c + cpb

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        _, h, w = ins[0]
        win = pair(self.window_size)
        if win[0] >= h and win[1] >= w:
            return fields[0].with_map((h, w))
        local = fields[0].window((2 * win[0] - 1, 2 * win[1] - 1), (1, 1), (win[0] - 1, win[1] - 1))
        shifted = (win[0] < h and pair(self.shift)[0]) or (win[1] < w and pair(self.shift)[1])
        # The cyclic shift brings the far side of the map into the edge windows; the mask adds -100 to
        # those pairs, which scales them by e^-100 but does not cut them: the whole map is context.
        return local.with_map((h, w)) if shifted else local

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        c, h, w = ins[0]
        win, shift = pair(self.window_size), pair(self.shift)
        # torchvision shifts no axis that one window covers
        shift = (0 if win[0] >= h else shift[0], 0 if win[1] >= w else shift[1])
        kwargs: dict = {"window": win, "shift": shift, "version": self.version}
        if self.dropout:
            kwargs["attention_dropout"] = self.dropout
        if self.proj_dropout:
            kwargs["dropout"] = self.proj_dropout
        return ModuleCall("archspec.ir.ops.torch_modules.WindowAttention", (c, self.heads), kwargs,
                          names=("dim", "num_heads"))

    def label(self, ins: Sequence[Shape]) -> str:
        shift = pair(self.shift)
        kind = "window attention" + (" v2" if self.version == 2 else "")
        return f"{kind} {self.heads} heads, {hw(pair(self.window_size))}" + (f", shift {shift[0]}" if any(shift) else "")


@register_op
class PatchMerge(_Fixed):
    """Each 2x2 neighbourhood's pixels as channels, C x H x W -> 4C x H/2 x W/2 (odd sizes padded
    with zeros): `patch_merge`. Swin's patch merging is this, a norm and a 1x1 projection to 2C."""

    kind: ClassVar[str] = "patch_merge"
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(4, 5, 6)])

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        return (4 * c, -(-h // 2), -(-w // 2))

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        return fields[0].window((2, 2), (2, 2), (0, 0))

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        return ModuleCall("archspec.ir.ops.torch_modules.PatchMerge")

    def label(self, ins: Sequence[Shape]) -> str:
        return "patch merge 2x2"


@register_op
class PartitionAttention(Op):
    """Multi-head self-attention within the partitions of a C x H x W map, with a learned relative
    position bias: `partition_attention: {head_dim: 32, size: 7, partition: grid}` (MaxViT).

    `window` partitions are size x size blocks of neighbouring pixels (local attention); `grid`
    partitions are size x size pixels spaced H / size apart (sparse global attention). The map must
    divide into them. Parameters as torchvision's RelativePositionalMultiHeadAttention: `to_qkv`,
    `merge`, `relative_position_bias_table`; the keys are scaled by C ** -0.5, as torchvision does."""

    kind: ClassVar[str] = "partition_attention"
    category: ClassVar[str] = "attention"
    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = True
    fresh_output: ClassVar[bool] = True
    init_kind: ClassVar[str | None] = "linear"  # to_qkv, merge
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    example: ClassVar[tuple[dict, list[Shape]]] = ({"head_dim": 2, "size": 2, "partition": "grid"}, [(4, 4, 4)])

    head_dim: PosInt
    size: PosInt = 7
    partition: Literal["window", "grid"] = "window"

    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        c, h, w = spatial(ins[0], self.kind)
        if h % self.size or w % self.size:
            fit = f"{h - h % self.size}x{w - w % self.size}" if h >= self.size and w >= self.size else "none"
            raise ShapeError(f"partition_attention: the {h}x{w} map does not divide into {self.size}x{self.size} "
                             f"{self.partition} partitions; maps that do near it: {fit}, or a size dividing {h}x{w}")
        if c % self.head_dim:
            raise ShapeError(f"partition_attention: head_dim {self.head_dim} does not divide the width {c}")
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        c = ins[0][0]
        return 4 * c * c + 4 * c + (2 * self.size - 1) ** 2 * (c // self.head_dim)

    def buffers(self, ins: Sequence[Shape]) -> int:
        return self.size ** 4

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        c, h, w = ins[0]
        # projections (4 T C^2 over the T pixels), Q K^T and the weighted sum of V in partitions of n
        return 4 * h * w * c * c + 2 * h * w * self.size * self.size * c

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        _, h, w = ins[0]
        if self.partition == "grid" or (self.size >= h and self.size >= w):
            # a grid partition spans the map: a bound, as every unit sees pixels across all of it
            return fields[0].with_map((h, w))
        k = 2 * self.size - 1
        return fields[0].window((k, k), (1, 1), (self.size - 1, self.size - 1))

    def torch(self, ins: Sequence[Shape]) -> ModuleCall:
        kwargs = {"size": self.size, "partition": self.partition}
        return ModuleCall("archspec.ir.ops.torch_modules.PartitionAttention", (ins[0][0], self.head_dim), kwargs,
                          names=("dim", "head_dim"))

    def label(self, ins: Sequence[Shape]) -> str:
        return f"{self.partition} attention {ins[0][0] // self.head_dim} heads, {self.size}x{self.size}"
