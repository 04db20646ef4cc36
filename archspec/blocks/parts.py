"""Block families made to be parts: necks and dense heads that read several earlier values.

Any block family can be a part (written under `necks:` or `heads:` by name, with `block:` its
family and `in:` the values it reads, in order: taps such as `stages.1` or `stem.maxpool`, other
parts' outputs such as `necks.fpn` or `necks.fpn.0`, or `input`, the image):

    necks:
      fpn: {block: fpn, in: [stages.0, stages.1, stages.2, stages.3], out: 256}
    heads:
      classifier: {block: fcn_head, in: [stages.3, input], classes: 21}

These are ordinary block families (`BlockFamily`) that read more than one value: `emit` gets
the first as `x` and every input as `b.inputs`, and returns the output, or a dict of named
outputs (an FPN's levels). `inputs` says how many each reads. Each family below is the
torchvision module it is named after, with torchvision's layer names, so that state_dicts line up.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ..core.formatting import shape_text
from ..core.errors import BlockError, did_you_mean
from ..ir.builder import GraphBuilder, Value
from ..ir.op import MAX_SIZE
from ..spec.families import BlockContext, BlockFamily, load_builtin_blocks, register_block


class _Part(BlockFamily):
    """A family made to be a part: it takes no stage stride."""

    strided: ClassVar[bool] = False
    unstrided_because: ClassVar[str] = "it is a neck or head, read at its inputs' resolution"
    channel_fields: ClassVar[tuple[str, ...]] = ()

def _resize_to(b: GraphBuilder, y: Value, xs: list[Value], index: int) -> Value:
    """Resize `y` bilinearly to the size of input `index` when the part reads one (`in: [..., input]`)."""
    return b.op("resize", y, xs[index], name="upsample", mode="bilinear") if len(xs) > index else y


@register_block("fpn")
class FPN(_Part):
    """`{block: fpn, in: [C2, C3, C4, C5], out: 256, extra: maxpool}`: a feature pyramid (Lin et al.,
    2017) as torchvision's FeaturePyramidNetwork + LastLevelMaxPool: a 1x1 lateral conv per
    input, a top-down path (nearest upsampling to the lateral's size, then a sum), a 3x3 conv
    per level, and the extra level `pool` (max-pool 1x1/2 of the last). Outputs are named
    `0`, `1`, ... (or `names`), then `pool`, all with `out` channels.

    `extra: p6p7` is LastLevelP6P7 (RetinaNet's) instead: `p6`, a 3x3/2 conv, and `p7`, a 3x3/2
    conv of ReLU(p6). `extra_from` says what p6 convolves: `c5`, the last input (Lin et al.'s
    RetinaNet, torchvision's v2), or `p5`, the last level; by default it is chosen as torchvision's
    LastLevelP6P7(in_channels, out) chooses when given the last input's channels: `p5` when they
    equal `out`, else `c5`. `extra: none` adds no level.
    """

    inputs: ClassVar[tuple[int, int | None]] = (1, None)

    out: int = Field(default=256, ge=1)
    extra: Literal["maxpool", "p6p7", "none"] = "maxpool"
    extra_from: Literal["c5", "p5"] | None = None
    names: list[str] | None = None

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> dict[str, Value]:
        xs = b.inputs
        names = self.names or [str(i) for i in range(len(xs))]
        if len(names) != len(xs):
            raise BlockError(f"fpn reads {len(xs)} inputs but names {len(names)} outputs")
        extra = {"maxpool": ("pool",), "p6p7": ("p6", "p7"), "none": ()}[self.extra]
        taken = [n for i, n in enumerate(names) if n in names[:i] or n in extra]
        if taken:  # a level under a name another level has would be lost
            raise BlockError(f"the output name '{taken[0]}' is given twice (its levels' names, then "
                             f"{', '.join(extra)} of extra: {self.extra}); each level needs a name of its own")
        for i in range(1, len(xs)):
            if any(c > f for c, f in zip(xs[i].spatial, xs[i - 1].spatial)):
                raise BlockError(f"an FPN reads its inputs from fine to coarse, but input {i} is larger than input {i - 1}")
        laterals = [b.conv(x, name=f"inner_blocks.{i}.0", out=self.out, kernel=1) for i, x in enumerate(xs)]
        merged = laterals[:]
        for i in range(len(xs) - 2, -1, -1):
            up = b.op("resize", merged[i + 1], laterals[i], name=f"top_down.{i}", mode="nearest")
            merged[i] = b.add(laterals[i], up, name=f"merge.{i}")
        outs = {names[i]: b.conv(m, name=f"layer_blocks.{i}.0", out=self.out, kernel=3, padding=1)
                for i, m in enumerate(merged)}
        if self.extra_from is not None and self.extra != "p6p7":
            raise BlockError(f"extra_from chooses the input of the p6p7 levels; this FPN's extra is '{self.extra}'")
        if self.extra == "maxpool":
            outs["pool"] = b.op("maxpool", outs[names[-1]], name="pool", kernel=1, stride=2)
        elif self.extra == "p6p7":
            source = self.extra_from or ("p5" if xs[-1].channels == self.out else "c5")
            below = outs[names[-1]] if source == "p5" else xs[-1]
            p6 = b.conv(below, name="extra_blocks.p6", out=self.out, kernel=3, stride=2, padding=1)
            relu = b.op("act", p6, name="extra_blocks.relu", type="relu")
            outs["p6"] = p6
            outs["p7"] = b.conv(relu, name="extra_blocks.p7", out=self.out, kernel=3, stride=2, padding=1)
        return outs


@register_block("fcn_head")
class FCNHead(_Part):
    """`{block: fcn_head, in: [stages.3, input], classes: 21}`: torchvision's FCNHead (3x3 conv to a
    quarter of the channels, norm, ReLU, dropout, 1x1 conv to the classes), resized bilinearly to
    the second input's size when there is one (the image, as torchvision's segmentation models do)."""

    inputs: ClassVar[tuple[int, int | None]] = (1, 2)

    classes: int = Field(ge=1)
    dropout: float = Field(default=0.1, ge=0, le=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        xs = b.inputs
        y = b.conv(x, name="0", out=x.channels // 4, kernel=3, padding=1, bias=False)
        y = b.op("dropout", b.act(b.norm(y, name="1"), name="2", type="relu"), name="3", p=self.dropout)
        return _resize_to(b, b.conv(y, name="4", out=self.classes, kernel=1), xs, 1)


@register_block("deeplab_head")
class DeepLabHead(_Part):
    """`{block: deeplab_head, in: [stages.3, input], classes: 21}`: DeepLabv3 (Chen et al., 2017) as
    torchvision's DeepLabHead: ASPP (a 1x1 branch, three 3x3 branches dilated by `rates`, and an
    image-pooling branch resized back bilinearly; concatenated, projected to `channels`, dropout
    0.5), then 3x3 conv, norm, ReLU and a 1x1 conv to the classes."""

    inputs: ClassVar[tuple[int, int | None]] = (1, 2)

    classes: int = Field(ge=1)
    rates: list[Annotated[int, Field(ge=1, le=MAX_SIZE)]] = [12, 24, 36]  # dilations: sizes, bounded like any
    channels: int = Field(default=256, ge=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        xs, c = b.inputs, self.channels
        with b.scope("0"):
            branches = []
            with b.scope("convs"):
                with b.scope("0"):
                    y = b.conv(x, name="0", out=c, kernel=1, bias=False)
                    branches.append(b.act(b.norm(y, name="1"), name="2", type="relu"))
                for k, rate in enumerate(self.rates):
                    with b.scope(str(k + 1)):
                        y = b.conv(x, name="0", out=c, kernel=3, padding=rate, dilation=rate, bias=False)
                        branches.append(b.act(b.norm(y, name="1"), name="2", type="relu"))
                with b.scope(str(len(self.rates) + 1)):
                    y = b.conv(b.op("global_pool", x, name="0"), name="1", out=c, kernel=1, bias=False)
                    y = b.act(b.norm(y, name="2"), name="3", type="relu")
                    branches.append(b.op("resize", y, x, name="upsample", mode="bilinear"))
            y = b.concat(*branches, name="cat")
            with b.scope("project"):
                y = b.act(b.norm(b.conv(y, name="0", out=c, kernel=1, bias=False), name="1"), name="2", type="relu")
                y = b.op("dropout", y, name="3", p=0.5)
        y = b.conv(y, name="1", out=c, kernel=3, padding=1, bias=False)
        y = b.act(b.norm(y, name="2"), name="3", type="relu")
        return _resize_to(b, b.conv(y, name="4", out=self.classes, kernel=1), xs, 1)


@register_block("lraspp_head")
class LRASPPHead(_Part):
    """`{block: lraspp_head, in: [low, high, input], classes: 21}`: Lite R-ASPP (Howard et al., 2019)
    as torchvision's LRASPPHead: the high-level features through 1x1 conv, norm, ReLU, gated by a
    pooled 1x1 conv and sigmoid, resized to the low-level features' size; a 1x1 classifier on each,
    summed; resized to the third input's size when there is one."""

    inputs: ClassVar[tuple[int, int | None]] = (2, 3)

    classes: int = Field(ge=1)
    channels: int = Field(default=128, ge=1)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        xs = b.inputs
        low, high = xs[0], xs[1]
        with b.scope("cbr"):
            y = b.act(b.norm(b.conv(high, name="0", out=self.channels, kernel=1, bias=False), name="1"), name="2",
                      type="relu")
        with b.scope("scale"):
            s = b.conv(b.op("global_pool", high, name="0"), name="1", out=self.channels, kernel=1, bias=False)
            s = b.act(s, name="2", type="sigmoid")
        y = b.op("resize", b.mul(y, s, name="gate"), low, name="to_low", mode="bilinear")
        out = b.add(b.conv(low, name="low_classifier", out=self.classes, kernel=1),
                    b.conv(y, name="high_classifier", out=self.classes, kernel=1), name="sum")
        return _resize_to(b, out, xs, 2)


@register_block("stream")
class Stream(_Part):
    """`{block: stream, in: stages.1, unit: basic, params: {out: 32}, repeat: 4}`: one resolution's
    stream of a high-resolution network (HRNet's branch): `repeat` blocks of the block type `unit`
    with `params`, stride 1, so the stream keeps its input's resolution. Blocks are named `0`, `1`, ..."""

    inputs: ClassVar[tuple[int, int | None]] = (1, 1)

    unit: str
    params: dict[str, Any] = {}
    repeat: int = Field(default=1, ge=1, le=1024)
    _block: BlockFamily | None = PrivateAttr(default=None)  # `unit` with `params`, validated

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str, info: ValidationInfo) -> str:
        families = _families(info)
        if unit not in families:
            raise PydanticCustomError("unknown_block", "unknown block type '{unit}'{hint}; known: {known}",
                                      {"unit": unit, "hint": did_you_mean(unit, list(families)),
                                       "known": ", ".join(sorted(families))})
        if families[unit].inputs[0] > 1:
            raise PydanticCustomError("unit", "block type '{unit}' reads several values; a stream's unit reads one",
                                      {"unit": unit})
        return unit

    @field_validator("params")
    @classmethod
    def _unit_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "unit" in info.data:  # else the unit was refused: its error is enough
            _families(info)[info.data["unit"]].model_validate(params, context=info.context)
        return params

    def model_post_init(self, context: Any) -> None:
        families = dict(load_builtin_blocks())
        families.update((context or {}).get("families", {}))
        self._block = families[self.unit].model_validate(self.params, context=context)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        assert self._block is not None
        for r in range(self.repeat):
            ctx = BlockContext(stride=1, index=r, repeat=self.repeat, stage=0, global_index=r,
                               total_blocks=self.repeat, defaults=b.defaults)
            with b.scope(str(r)), b.nested_rate(self._block.drop_rate(r, self.repeat)):
                y = self._block.emit(b, x, ctx)
            if isinstance(y, dict):
                raise BlockError(f"block type '{self.unit}' has several outputs; a stream's unit has one")
            x = y
        return x


def _families(info: ValidationInfo) -> dict[str, type[BlockFamily]]:
    """The block types a spec may name: the built-in ones and its own (`blocks:`)."""
    families = dict(load_builtin_blocks())
    families.update((info.context or {}).get("families", {}))
    return families


@register_block("hr_fuse")
class HRFuse(_Part):
    """`{block: hr_fuse, in: [necks.s0, necks.s1, necks.s2]}`: HRNet's exchange unit (Sun et al., 2019;
    the official `_make_fuse_layers`) over streams from fine to coarse, each at half the previous
    resolution. Output i (named `0`, `1`, ...) keeps stream i's resolution and channels: the sum
    over every stream j of stream j resampled to it (itself for j = i; a 1x1 conv, norm and nearest
    upsampling by 2^(j-i) for a coarser j; i - j strided 3x3 conv-norm units for a finer j, ReLU
    between them, the last one to stream i's channels), then ReLU. Layers are `fuse_layers.i.j...`."""

    inputs: ClassVar[tuple[int, int | None]] = (2, None)

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> dict[str, Value]:
        xs = b.inputs
        for j in range(1, len(xs)):
            if any(2 * c != f for c, f in zip(xs[j].spatial, xs[j - 1].spatial)):
                raise BlockError(f"hr_fuse needs each stream at half the previous one's size, but stream {j} is "
                                 f"{shape_text(xs[j].spatial)} after {shape_text(xs[j - 1].spatial)}")
        outs = {}
        for i, xi in enumerate(xs):
            terms = []
            for j, xj in enumerate(xs):
                if j == i:
                    terms.append(xj)
                    continue
                with b.scope(f"fuse_layers.{i}.{j}"):
                    if j > i:
                        y = b.norm(b.conv(xj, name="0", out=xi.channels, kernel=1, bias=False), name="1")
                        terms.append(b.op("resize", y, name="2", scale=2 ** (j - i), mode="nearest"))
                        continue
                    y = xj
                    for k in range(i - j):
                        last = k == i - j - 1
                        with b.scope(str(k)):
                            y = b.conv(y, name="0", out=xi.channels if last else xj.channels, kernel=3, stride=2,
                                       padding=1, bias=False)
                            y = b.norm(y, name="1")
                            if not last:
                                y = b.act(y, name="2", type="relu")
                    terms.append(y)
            outs[str(i)] = b.act(b.add(*terms, name=f"sum.{i}"), name=f"relu.{i}", type="relu")
        return outs
