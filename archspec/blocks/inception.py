"""The Inception family: parallel branches of conv units (and pools), concatenated.

One family covers GoogLeNet's module, Inception-v3's InceptionA..E (with the
asymmetric 1x7 / 7x1 factorisation and the split 1x3 / 3x1 tops) and the grid
reductions, because they differ only in what each branch holds. A branch is a
short list of items that read like the labels in the papers' figures:

    "1x1 64"        a conv unit: conv 1x1 to 64 channels (no bias), norm, activation
    "1x7 128"       an asymmetric conv unit (kernel height x width, as torchvision's (1, 7))
    "3x3/2 384"     a strided conv unit
    "maxpool 3x3"   a pool ("avgpool 3x3", "maxpool 3x3/2")
    "3x3 96 valid"  any of these unpadded at stride 1 (Inception-v4's stem)
    {concat: [1x3 384, 3x1 384]}   sub-branches from the same input, concatenated (Inception-v3's E)

Stride-1 windows keep the size (`padding: same`) unless marked `valid`; strided windows
use no padding ("valid"), as the grid reductions of Inception-v3 do. Average pools count
the padding (torchvision's Inception-v3) unless the block says `count_include_pad: false`
(timm's Inception-v4 and -ResNet). Norm and activation are the
stage's defaults, so `defaults: {norm_eps: 0.001}` gives torchvision's BasicConv2d.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from ..core.numbers import SpecNumbers
from ..ir.builder import GraphBuilder, Value
from ..spec.families import BlockContext, BlockFamily, register_block

_CONV = re.compile(r"^\s*(\d+)x(\d+)(?:/(\d+))?\s+(\d+)(\s+valid)?\s*$")
_POOL = re.compile(r"^\s*(max|avg)pool\s+(\d+)x(\d+)(?:/(\d+))?(\s+valid)?\s*$")
ITEM_HELP = ("'KxK[/S] OUT' (a conv unit, e.g. '1x7 128' or '3x3/2 384'), 'maxpool KxK[/S]' or 'avgpool KxK[/S]', "
             "each optionally followed by 'valid' (unpadded)")


@dataclass(frozen=True)
class Window:
    """A parsed branch item: a conv unit (`pool` None) or a pool."""

    kernel: tuple[int, int]
    stride: int
    out: int | None = None
    pool: Literal["max", "avg"] | None = None
    valid: bool = False  # unpadded even at stride 1

    @property
    def padding(self) -> tuple[int, int] | int:
        """`same` at stride 1 (odd kernels), none when strided or marked `valid`."""
        if self.stride > 1 or self.valid:
            return 0
        return (self.kernel[0] // 2, self.kernel[1] // 2)


def parse_item(text: str) -> Window:
    conv = _CONV.match(text)
    if conv:
        kh, kw, stride, out, valid = conv.groups()
        window = Window((int(kh), int(kw)), int(stride or 1), out=int(out), valid=bool(valid))
    else:
        pool = _POOL.match(text)
        if not pool:
            raise ValueError(f"'{text}' is not a branch item; write {ITEM_HELP}")
        kind, kh, kw, stride, valid = pool.groups()
        window = Window((int(kh), int(kw)), int(stride or 1), pool=kind, valid=bool(valid))
    if min(window.kernel) < 1 or window.stride < 1 or (window.out is not None and window.out < 1):
        raise ValueError(f"'{text}': kernel, stride and channels must be positive")
    if window.stride == 1 and not window.valid and any(k % 2 == 0 for k in window.kernel):
        raise ValueError(f"'{text}': a stride-1 window keeps the size only with an odd kernel "
                         f"(write '{text.strip()} valid' for an unpadded one)")
    return window


def _check_item(text: str) -> str:
    parse_item(text)
    return text


# The pattern is for editors (JSON schema); validation goes through `parse_item`, which explains itself.
_ITEM_PATTERN = r"^\s*(\d+x\d+(/\d+)?\s+\d+|(max|avg)pool\s+\d+x\d+(/\d+)?)(\s+valid)?\s*$"
Item = Annotated[str, AfterValidator(_check_item),
                 Field(description=f"a branch item: {ITEM_HELP}", json_schema_extra={"pattern": _ITEM_PATTERN})]


class Fork(SpecNumbers, BaseModel):
    """`{concat: [1x3 384, 3x1 384]}`: sub-branches that read the same value, concatenated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concat: list[Branch] = Field(min_length=2)


def _as_steps(value: object) -> object:
    """A branch written as one item (`1x1 64`) is the list of that item."""
    return [value] if isinstance(value, str) else value


Step = Item | Fork
# A branch: a list of steps applied in order, or a single item.
Branch = Annotated[
    list[Step], BeforeValidator(_as_steps, json_schema_input_type=Item | list[Step]), Field(min_length=1)
]
Fork.model_rebuild()


@register_block("inception")
class Inception(BlockFamily):
    """`{block: inception, branches: [1x1 64, [1x1 96, 3x3 128], [1x1 16, 5x5 32], [maxpool 3x3, 1x1 32]]}`.

    The branches run on the block's input and their outputs are concatenated along
    channels, in the order written. Names follow the branches and their steps: `branch2.conv1`, `branch4.pool0`.
    """

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ()  # the widths live inside the branch items

    branches: list[Branch] = Field(min_length=1)
    count_include_pad: StrictBool = Field(True, description="whether average pools count the padding in their "
                                                            "mean (torchvision's Inception-v3: yes; timm's "
                                                            "Inception-v4: no)")

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        return _parallel(b, x, self.branches, [f"branch{i + 1}" for i in range(len(self.branches))],
                         self.count_include_pad)


def _parallel(b: GraphBuilder, x: Value, branches: list, names: list[str], count_pad: bool) -> Value:
    outs = []
    for branch, name in zip(branches, names):
        with b.scope(name):
            outs.append(_branch(b, x, branch, "", count_pad))
    return b.concat(*outs, name="concat") if len(outs) > 1 else outs[0]


def _branch(b: GraphBuilder, x: Value, steps: list, suffix: str, count_pad: bool) -> Value:
    """Steps are numbered within their branch (`conv0`, `bn0`, `act0`, `conv1`, ...), so that a
    plain branch compiles to one `nn.Sequential` like torchvision's."""
    if len(steps) == 1:
        return _step(b, x, steps[0], suffix, count_pad)
    for j, step in enumerate(steps):
        x = _step(b, x, step, f"{suffix}{j}", count_pad)
    return x


def _step(b: GraphBuilder, x: Value, step: str | Fork, suffix: str, count_pad: bool) -> Value:
    if isinstance(step, Fork):
        letters = [chr(ord("a") + k) if k < 26 else f"_{k}_" for k in range(len(step.concat))]
        outs = [_branch(b, x, sub, suffix + letter, count_pad) for sub, letter in zip(step.concat, letters)]
        return b.concat(*outs, name=f"concat{suffix}")
    w = parse_item(step)
    if w.pool == "avg" and not count_pad:
        return b.op("avgpool", x, name=f"pool{suffix}", kernel=w.kernel, stride=w.stride, padding=w.padding,
                    count_include_pad=False)
    if w.pool is not None:
        return b.op(f"{w.pool}pool", x, name=f"pool{suffix}", kernel=w.kernel, stride=w.stride, padding=w.padding)
    return b.conv_norm_act(x, out=w.out, kernel=w.kernel, stride=w.stride, padding=w.padding,
                           names=(f"conv{suffix}", f"bn{suffix}", f"act{suffix}"))
