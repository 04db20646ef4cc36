"""The block-family protocol and registry (the built-in families are in `archspec.blocks`).

A family is a pydantic model of its parameters plus an `emit` method that writes
IR through a `GraphBuilder`. Registering one is all it takes to use it in specs:

    @register_block("fire")
    class Fire(BlockFamily):
        '''SqueezeNet's fire module.'''
        squeeze: int
        expand: int

        def emit(self, b, x, ctx):
            s = b.act(b.conv(x, out=self.squeeze, kernel=1, name="squeeze"), name="squeeze_act")
            e1 = b.act(b.conv(s, out=self.expand, kernel=1, name="expand1x1"), name="expand1x1_act")
            e3 = b.act(b.conv(s, out=self.expand, kernel=3, padding=1, name="expand3x3"), name="expand3x3_act")
            return b.concat(e1, e3)

The built-in families in `archspec/blocks/` are written exactly this way; the
compiler core never names a family.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from ..core.errors import ArchspecError, ArgumentError, unknown_name
from ..core.numbers import SpecNumbers
from ..ir.builder import GraphBuilder, Value
from ..ir.op import OpDefaults


@dataclass(frozen=True)
class BlockContext:
    """What a block may know beyond its own parameters."""

    stride: int  # the stage's stride for its first block, 1 for the others
    index: int  # position within the stage
    repeat: int  # blocks in the stage
    stage: int  # stage index
    global_index: int  # position among all blocks of the network
    total_blocks: int  # blocks in the network (for schedules such as stochastic depth)
    defaults: OpDefaults = OpDefaults()
    # The dilation of the block's spatial convolution where a stage trades its stride for
    # dilation (`output_stride`, `dilate`); 1 otherwise. See `BlockFamily.first_block_dilation`.
    dilation: int = 1


class BlockFamily(SpecNumbers, BaseModel):
    """Base of every block family: the fields are the family's spec parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    family: ClassVar[str] = ""
    # Whether the stage's `stride` means something to this family.
    strided: ClassVar[bool] = True
    # Why a family refuses a stride (shown in the error), where a reason can be given.
    unstrided_because: ClassVar[str] = ""
    # Parameters that are channel counts, scaled by a width multiplier.
    channel_fields: ClassVar[tuple[str, ...]] = ("out",)
    # Counts scaled (rounded up) by a depth multiplier: the stage's `repeat`, or a family's own
    # count of layers (VGG's `convs`); none for a stage that is one fixed layer (a pool).
    depth_fields: ClassVar[tuple[str, ...]] = ("repeat",)
    # Whether the family can trade a stage's stride for dilation, and the dilation of a dilated
    # stage's first block: "previous" (the dilation before the stage, as torchvision's ResNet
    # `_make_layer` sets it) or "new" (the stage's own, as torchvision's dilated MobileNet-v3).
    # None: the family cannot dilate (a located error asks for it).
    first_block_dilation: ClassVar[Literal["previous", "new"] | None] = None
    # How many values the block reads as a part (`in:` under necks or heads): (fewest, most),
    # None: no upper bound. The first is `x`; all of them are `b.inputs`. A stage gives one.
    inputs: ClassVar[tuple[int, int | None]] = (1, 1)
    # Stochastic depth, for a family with a `drop_path` field (the network's rate): block g of the
    # network's n drops its branch with probability drop_path * g / n ("n": torchvision's MobileNets
    # and EfficientNets) or drop_path * g / (n - 1) ("n-1": ConvNeXt, Swin, MaxViT, whose last block
    # gets the whole rate). None: no schedule. The family applies it with `b.stochastic_depth(y)`.
    drop_schedule: ClassVar[Literal["n", "n-1"] | None] = None
    # Whether `emit` reads its input's spatial size (height and width, a sequence's length) to
    # decide what to emit. False: the block's nodes depend on its channels alone, so lowering
    # reuses a graph emitted for another input size, every shape inferred again (a sweep over
    # input resolutions emits each block once; a shape rule that refuses the new size still
    # fails where it did). True, the default, is always right; the built-in families say False.
    reads_input_size: ClassVar[bool] = True

    def drop_rate(self, global_index: int, total_blocks: int) -> float:
        """This block's stochastic-depth rate at position `global_index` of `total_blocks` (the
        builder's `drop_rate`). Lowering works it out, not the family, so that a block's graph does
        not depend on where it stands and the blocks of a stage can share it."""
        if self.drop_schedule is None:
            return 0.0
        rate: float = getattr(self, "drop_path", 0.0)
        return rate * global_index / (total_blocks if self.drop_schedule == "n" else max(total_blocks - 1, 1))

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value | dict[str, Value]:
        """The block's nodes, from `x` (`b.inputs` holds every input of a part); the output, or
        a dict of named outputs (an FPN's levels), which only a part may have."""
        raise NotImplementedError


BLOCKS: dict[str, type[BlockFamily]] = {}
_F = TypeVar("_F", bound=type[BlockFamily])


def register_block(name: str, *, replace: bool = False) -> Callable[[_F], _F]:
    """Class decorator: make a `BlockFamily` subclass usable as `block: <name>`.

    A name another class has registered (a built-in family, another plugin's) is an error
    unless `replace=True` says the new class is meant to replace it."""

    def decorate(cls: _F) -> _F:
        if not (isinstance(cls, type) and issubclass(cls, BlockFamily)):
            raise TypeError("register_block decorates BlockFamily subclasses")
        return _register(BLOCKS, name, cls, "block type", replace)

    return decorate


def _register(registry: dict[str, Any], name: str, cls: Any, what: str, replace: bool = False) -> Any:
    """`registry[name] = cls` (and `cls.family = name`), unless another class has the name and
    `replace` is False. A plugin's class of the same `__qualname__` is taken for the same class
    imported again (one file loaded by `--plugin` and by an import); a built-in never is."""
    load_builtin_blocks()  # the built-ins first, so that a plugin meets them here, not they it
    old = registry.get(name)
    builtin = old is not None and old.__module__.startswith(BUILTIN_PACKAGE + ".")
    if old is not None and old is not cls and not replace and (builtin or old.__qualname__ != cls.__qualname__):
        raise ArgumentError(f"{what} '{name}' is already registered by {old.__module__}.{old.__qualname__}; "
                            f"register {cls.__module__}.{cls.__qualname__} with replace=True to replace it")
    cls.family = name
    registry[name] = cls
    return cls


def block_family(name: str) -> type[BlockFamily]:
    load_builtin_blocks()
    try:
        return BLOCKS[name]
    except KeyError:
        raise ArchspecError(unknown_name("block type", name, BLOCKS)) from None


# The built-in families live in the layer above (`archspec.blocks`) and register themselves
# when imported, as a plugin's do. This layer names their module rather than importing it,
# so that the spec language depends on the protocol above, never on the families.
BUILTIN_FAMILIES = "archspec.blocks.builtin"
BUILTIN_PACKAGE = BUILTIN_FAMILIES.rsplit(".", 1)[0]


_BUILTINS_LOADED = False  # set once their import has returned: asked for by every stage validated


def load_builtin_blocks() -> dict[str, type[BlockFamily]]:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        importlib.import_module(BUILTIN_FAMILIES)
        _BUILTINS_LOADED = True
    return BLOCKS
