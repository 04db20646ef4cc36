"""The primitive-op protocol: everything about one kind of layer, in one place.

An op is a frozen pydantic model whose fields are its hyperparameters, exactly as
a user writes them in a spec (`conv: {out: 64, kernel: 3}`). The same class knows
its shape rule, parameter and buffer counts, multiply-adds, receptive-field
transform, torch constructor and diagram label. Analysis, diagrams, the torch
backend and code export all read these methods; none of them re-derives a number.

Shapes exclude the batch dimension: `(C, H, W)` for feature maps, `(F,)` for flat
vectors.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from ..core.errors import ArchspecError
from ..core.numbers import SpecNumbers

# The largest spatial size anywhere: an input's side, a kernel, a stride, a padding, a dilation, a
# resize's size (torch computes with them in int64; a dilation of 1e19 or 64**12 would overflow there).
MAX_SIZE = 1 << 16

Shape = tuple[int, ...]


class ShapeError(ArchspecError):
    """An op cannot accept its input shapes. `spatial_zero` marks a too-small input."""

    def __init__(self, message: str, spatial_zero: bool = False):
        super().__init__(message)
        self.spatial_zero = spatial_zero


Interval = tuple[int, int]  # first and last input pixel, inclusive


_NO_BOUND = 1 << 62  # larger than any field's size, padding or stride


def _hull(a: Interval | None, b: Interval | None) -> Interval | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), max(a[1], b[1]))


@dataclass(frozen=True)
class RF:
    """Receptive field of one unit, per spatial axis (h, w), in input pixels
    (Araujo et al., "Computing receptive fields of convolutional neural networks", 2019).

    size: extent of the field; stride: distance between neighbouring units' fields
    (the effective stride, which Araujo et al. call the jump);
    padding: how far the first unit's field reaches before pixel 0. Unit i sees pixels
    `[-padding + i*stride, -padding + i*stride + size - 1]` and its centre lies at `-padding + i * stride + (size - 1) / 2`.

    context: per axis, pixels that *every* unit sees whatever its position, or None.
    A globally pooled value broadcast back over the map (a squeeze-and-excitation
    gate) gives each unit the whole map's field on top of its own local field, which
    no (size, stride, padding) can express; size/stride/padding stay the local,
    translation-equivariant part and `region` adds the context.
    """

    size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    context: tuple[Interval | None, Interval | None] = (None, None)

    def window(self, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], dilation=(1, 1)) -> RF:
        """The field after a sliding window (conv or pool): r + (k_eff - 1) * j, j * s, P + p * j."""
        (r0, r1), (j0, j1), (p0, p1) = self.size, self.stride, self.padding
        return _field(
            (r0 + dilation[0] * (kernel[0] - 1) * j0, r1 + dilation[1] * (kernel[1] - 1) * j1),
            (j0 * stride[0], j1 * stride[1]),
            (p0 + padding[0] * j0, p1 + padding[1] * j1),
            self.context,
        )

    def whole(self, spatial: Sequence[int]) -> RF:
        """The field of a unit that sees every position of a (H, W) map (global pooling, flatten):
        a window as large as the map."""
        return self.window(spatial, spatial, (0, 0))

    def with_map(self, spatial: Sequence[int]) -> RF:
        """This field, where every unit also sees the whole (H, W) map of such units (a statistic
        taken over the map and applied to each unit, as group norm's): the map's pixels join the
        context, and the local field stays."""
        reach = [(-p, -p + (n - 1) * j + r - 1) for p, n, j, r in zip(self.padding, spatial, self.stride, self.size)]
        context = [_hull(c, m) for c, m in zip(self.context, reach)]
        return _field(self.size, self.stride, self.padding, (context[0], context[1]))

    @staticmethod
    def union(fields: Sequence[RF], ins: Sequence[Shape] = ()) -> RF:
        """The field of a merge (add, concat, mul): the union of every path's field.

        A unit of the merge sees what each path's unit sees, so the field starts where
        the earliest path starts (largest padding) and ends where the latest ends
        (Araujo et al., "multi-path networks"). An input broadcast along an axis (an SE
        gate of C x 1 x 1 against C x H x W) shows every output unit the same pixels:
        they join the context and set neither the size nor the stride.
        """
        if len(fields) == 1:
            return fields[0]
        spatial = len(ins) == len(fields) and all(len(s) == 3 for s in ins)
        size, jump, padding, context = [], [], [], []
        for a in range(2):  # one pass over the fields per axis, no generators: a sweep walks many merges
            n = max([s[1 + a] for s in ins]) if spatial else 0
            p = end = stride = -_NO_BOUND  # below any padding, end (size - padding) and stride
            ctx: Interval | None = None
            for k, f in enumerate(fields):
                fp, fs = f.padding[a], f.size[a]
                if spatial and ins[k][1 + a] != n:  # its one unit's whole field, seen by every output unit
                    ctx = _hull(ctx, _hull(f.context[a], (-fp, fs - fp - 1)))
                    continue
                if fp > p:
                    p = fp
                if fs - fp > end:
                    end = fs - fp
                if f.stride[a] > stride:
                    stride = f.stride[a]
                ctx = _hull(ctx, f.context[a])
            size.append(end + p)
            padding.append(p)
            jump.append(stride)
            context.append(ctx)
        return _field(tuple(size), tuple(jump), tuple(padding), tuple(context))  # type: ignore[arg-type]  # two axes, two items each

    # -- where a unit looks ----------------------------------------------------------
    def start(self, index: Sequence[int]) -> tuple[int, int]:
        """First pixel (h, w) of unit `index`'s local field (negative: in the padding)."""
        return tuple(-p + i * j for p, i, j in zip(self.padding, index, self.stride))  # type: ignore[return-value]  # one item per axis, two here

    def region(self, index: Sequence[int]) -> tuple[Interval, Interval]:
        """((first row, last row), (first column, last column)) that unit `index` sees, inclusive."""
        local = [(f, f + s - 1) for f, s in zip(self.start(index), self.size)]
        return tuple(_hull(loc, ctx) for loc, ctx in zip(local, self.context))  # type: ignore[return-value]  # one item per axis, two here

    def centre(self, index: Sequence[int]) -> tuple[float, float]:
        """Centre (h, w) of unit `index` in input coordinates: `-padding + i * stride + (size - 1) / 2`."""
        return tuple(f + (s - 1) / 2 for f, s in zip(self.start(index), self.size))  # type: ignore[return-value]  # one item per axis, two here

    @property
    def has_context(self) -> bool:
        return any(c is not None for c in self.context)

    def __hash__(self) -> int:
        """The fields' hash, made once: analysis keys its memo of fields by the field fed to a graph."""
        state = self.__dict__
        known = state.get("_hash")
        if known is None:
            known = state["_hash"] = hash((self.size, self.stride, self.padding, self.context))
        return known

    def __getstate__(self) -> dict[str, Any]:
        """The fields alone: the kept hash is this process's (Python 3.11 hashes None by its address,
        and a context holds None), so a copy in another process makes its own."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}


def _field(size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           context: tuple[Interval | None, Interval | None]) -> RF:
    """`RF(size, stride, padding, context)` without the frozen dataclass's `__init__` and its four
    `object.__setattr__` calls, in half its time: the receptive-field walk makes one a window and a merge."""
    field = object.__new__(RF)
    state = field.__dict__
    state["size"], state["stride"], state["padding"], state["context"] = size, stride, padding, context
    return field


@dataclass(frozen=True)
class Window:
    """A sliding window's geometry, per axis (h, w); `groups` is 1 for pooling."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


@dataclass(frozen=True)
class ModuleCall:
    """How to construct the torch module of an op: `target(*args, **kwargs)`.

    `target` is an import path such as `torch.nn.Conv2d`; export writes it as source.
    `names` are the constructor's names for `args` (`in_channels`, `out_channels`): code
    export names a class argument after the value it carries (`conv1_channels`).
    """

    target: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Keyword arguments left out of `kwargs` because they equal the constructor's default.
    # Code export reads them when blocks of one class differ there (stride 1 in one, 2 in another).
    defaults: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # the keywords' order in `arguments()`
    names: tuple[str, ...] = ()
    # The `init:` rule that, when it sets every parameter, makes the constructor's own random
    # initialisation redundant (the op's `init_kind` where it is `init_skippable`); set by the plan.
    skippable_init: str | None = None

    def __post_init__(self) -> None:
        if self.names and len(self.names) != len(self.args):
            raise ValueError(f"{self.target}: {len(self.args)} positional arguments but names {self.names}")

    def positional(self) -> dict[str, Any]:
        """`args` by name; `arg0`, `arg1`, ... where the op named none."""
        return {(self.names[i] if self.names else f"arg{i}"): value for i, value in enumerate(self.args)}

    def arguments(self) -> dict[str, Any]:
        """Every keyword this call states or leaves at its default, in the constructor's order."""
        merged = {**self.defaults, **self.kwargs}
        return {k: merged[k] for k in self.order if k in merged} | merged


def omit_defaults(target: str, args: dict[str, Any], kwargs: dict[str, Any], defaults: dict[str, Any]) -> ModuleCall:
    """A ModuleCall passing `args` (by their names) positionally and stating only the keywords
    that differ from the constructor's `defaults`."""
    stated = {k: v for k, v in kwargs.items() if k not in defaults or v != defaults[k]}
    left = {k: v for k, v in defaults.items() if k not in stated}
    order = tuple(kwargs) + tuple(k for k in defaults if k not in kwargs)
    return ModuleCall(target, tuple(args.values()), stated, left, order, tuple(args))


@dataclass(frozen=True)
class FunctionCall:
    """A parameter-free op applied as a function in forward, e.g. `torch.cat(inputs, dim=1)`.

    `style` is how inputs are passed: "binary" folds them with the operator
    (`a + b + c`), "list" passes them as one list argument.
    """

    target: str
    style: str = "binary"
    kwargs: dict[str, Any] = field(default_factory=dict)


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def union_fits(ins: Sequence[Shape], out: Shape) -> bool:
    """Whether the base receptive-field rule (`RF.union` of the inputs' fields, `Op.rf`) holds for
    an op that maps `ins` to `out`: a map the size of its largest input map, or no map from none."""
    spatial = [s[1:] for s in ins if len(s) == 3]
    return (len(out) == 3) == (len(spatial) == len(ins)) and (len(out) != 3 or out[1:] == max(spatial))


def window_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's output length of a sliding window (conv or pool) along one axis."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = math.ceil(span / stride) + 1
        # PyTorch: the last window must start inside the input or its left padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


class Op(SpecNumbers, BaseModel):
    """Base of every primitive op. Subclasses set `kind`, `category` and override the rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    kind: ClassVar[str]
    # Colour group in diagrams and grouping in reports: a key of CATEGORIES (stated by every op).
    category: ClassVar[str]
    # Number of inputs; None for variadic merges.
    arity: ClassVar[int | None] = 1
    # Field a scalar fills when the spec writes `op: value` (e.g. `act: relu`).
    shorthand: ClassVar[str | None] = None
    # Whether the op may appear directly in stem/head/user layer lists.
    in_layer_lists: ClassVar[bool] = True
    # Optional layer name in the compiled module (`head.fc`).
    name: str | None = None

    # -- facts every op states (`register_op` refuses an op that leaves one out; see FACTS) ----
    # Counts towards the network's depth, as papers count layers (ResNet-50: 50 conv and linear).
    depth_layer: ClassVar[bool]
    # Ends the feature extractor where the head meets it (global pooling, flatten, a classifier):
    # the network's receptive field is taken before it.
    ends_features: ClassVar[bool]
    # Its backward pass does not read its own output, so a sum of it and another value may be
    # written into that output in place (`out += identity`, as torchvision's ResNet does).
    output_overwritable: ClassVar[bool]
    # The spec's `init:` rule that sets its weights ("conv", "linear", "norm"), or None.
    init_kind: ClassVar[str | None]
    # Its output is new memory: never a view of an input (split, flatten) nor an input itself
    # (dropout in eval mode, drop_path at rate 0), so an activation after it may write into it in
    # place when nothing else reads it. Not one of FACTS: False, the safe answer, unless stated
    # (an in-place ReLU after a view would also change the value the view was taken from).
    fresh_output: ClassVar[bool] = False
    # Its module draws random weights and holds no buffer, so the constructor's initialisation may
    # be skipped when the spec's rule sets every parameter anyway (building ResNet-50 draws once).
    init_skippable: ClassVar[bool]
    # In a diagram's fused rows it joins the row of the layer before it (`conv · bn · relu`).
    fused: ClassVar[bool]
    # An instance's fields and input shapes, with which tests/test_op_facts.py checks the facts
    # above against torch (required of built-in ops; a plugin's op may leave it out).
    example: ClassVar[tuple[dict, list[Shape]] | None] = None

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        """`act: relu` means `act: {type: relu}`; a bare `flatten` means `flatten: {}`."""
        if data is None:
            return {}
        if not isinstance(data, dict) and cls.shorthand is not None:
            return {cls.shorthand: data}
        return data

    # -- the rules ---------------------------------------------------------------
    def out_shape(self, ins: Sequence[Shape]) -> Shape:
        return ins[0]

    def params(self, ins: Sequence[Shape]) -> int:
        return 0

    def buffers(self, ins: Sequence[Shape]) -> int:
        return 0

    def macs(self, ins: Sequence[Shape], out: Shape) -> int:
        return 0

    def rf(self, fields: Sequence[RF], ins: Sequence[Shape]) -> RF:
        """The receptive field of the output given the inputs' fields. By default a pointwise
        op's (the union of the inputs' fields, an input smaller than the output broadcast); an op
        whose output's spatial size is not its inputs' must state its own rule (`RF.window` for a
        sliding window, `_resample.resampled` for an upsampling), and this default refuses it."""
        out = self.out_shape(ins)
        if not union_fits(ins, out):
            raise ShapeError(f"op '{self.kind}' maps {' and '.join(map(_shape_text, ins))} to {_shape_text(out)} "
                             f"but states no receptive-field rule: an op that changes the spatial size must "
                             f"define `rf` (see 'Adding an op' in docs/architecture.md)")
        return RF.union(fields, ins)

    def rf_key(self, ins: Sequence[Shape]) -> Hashable:
        """Everything `rf` reads besides the input fields: equal keys, equal rules. By default
        the op itself and the spatial sizes of its inputs (no rule reads channels); an op whose
        fields include channel counts its rule ignores returns less, so that the analysis can
        reuse one block's fields for another block of the same geometry (RegNet widths)."""
        return (self, tuple(s[1:] for s in ins))

    def torch(self, ins: Sequence[Shape]) -> ModuleCall | FunctionCall:
        """The torch form: a module to construct (name its positional arguments, as
        `ModuleCall("torch.nn.Linear", (c, n), names=("in_features", "out_features"))`, so that
        code export can name class arguments after them) or a function applied in forward."""
        raise NotImplementedError(f"op '{self.kind}' has no torch form")

    def label(self, ins: Sequence[Shape]) -> str:
        """A short human label: `conv 3x3/2, 64->128`."""
        return self.kind

    def window(self, ins: Sequence[Shape]) -> Window | None:
        """The sliding window of a conv or pool (kernel, stride, padding, dilation, groups), for
        reports; None for ops that have none."""
        return None

    def inplace_capable(self) -> bool:
        """Whether its torch module takes `inplace=True` (the backend decides when that is safe)."""
        return False

    def output_is_fresh(self) -> bool:
        """Whether this op's output is new memory (`fresh_output`; an op whose settings decide says so here)."""
        return self.fresh_output

    def deploy_role(self) -> str | None:
        """What the deploy pass (ir/deploy.py) may do with it in eval mode: "drop" (the identity:
        removed), "affine" (a per-channel scale and shift: folded into the conv or linear layer
        before it), "linear" (a conv or linear layer that takes such a fold, or a merge of
        parallel branches), "sum" (branches summed: merged into one conv when they are linear
        in one value). None, the default: kept as it is, which is always correct."""
        return None

    def resolved(self, defaults: OpDefaults) -> Op:
        """This op with spec defaults filled in (default norm, default activation)."""
        return self

    # Fields that are channel counts, scaled by a width multiplier.
    channel_fields: ClassVar[tuple[str, ...]] = ()
    # Fields a spec sets to a different value in each block by design (stochastic depth's linear
    # schedule); blocks differing only there are still "the same block" when a diagram folds a stage.
    per_block_fields: ClassVar[tuple[str, ...]] = ()

    def same_layer(self, other: Op) -> bool:
        """The same layer up to its name and per-block fields: what folding repeated blocks compares."""
        skip = {"name", *self.per_block_fields}
        return type(self) is type(other) and self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


@dataclass(frozen=True)
class OpDefaults:
    """What a `norm` or `act` without a kind becomes, from the spec's `defaults`."""

    norm: str | None = "batch"
    activation: str | None = "relu"
    norm_eps: float = 1e-5
    norm_momentum: float = 0.1


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


OPS: dict[str, type[Op]] = {}

# Diagram fill colour of each op category, in the legend's order. An op's `category` must be one of
# these (`register_op` refuses another); an op of a new kind of layer adds its category first.
CATEGORIES: dict[str, str] = {
    "conv": "#c6dbef",
    "norm": "#fff0a8",
    "act": "#fcc5c0",
    "pool": "#c7e9c0",
    "linear": "#dadaeb",
    "attention": "#f2c6f0",
    "merge": "#fdd0a2",
    "dropout": "#e0e0e0",
    "reshape": "#ccebe6",
    "resize": "#e5d8bd",
    "other": "#ffffff",
}


def register_category(name: str, colour: str) -> None:
    """A new op category with its diagram colour (`#rrggbb`); registering one twice is an error
    unless the colour is the same."""
    if not (len(colour) == 7 and colour[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in colour[1:])):
        raise ValueError(f"category '{name}': colour must be '#rrggbb', got {colour!r}")
    if CATEGORIES.get(name, colour) != colour:
        raise ValueError(f"category '{name}' already has the colour {CATEGORIES[name]}")
    CATEGORIES[name] = colour


# The facts each op class states (class attributes declared on `Op`, without defaults).
FACTS = ("depth_layer", "ends_features", "output_overwritable", "init_kind", "init_skippable", "fused")


def missing_facts(cls: type[Op]) -> list[str]:
    """The facts of FACTS that `cls` (or a base below `Op`) does not state."""
    return [f for f in FACTS if not any(f in vars(c) for c in cls.__mro__ if c is not Op and issubclass(c, Op))]


def register_op(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op usable in specs and blocks under `cls.kind`.

    The op must state every fact in FACTS: a forgotten one would make depth, initialisation or
    in-place sums silently wrong."""
    missing = missing_facts(cls)
    if missing:
        raise TypeError(f"op '{cls.kind}' ({cls.__qualname__}) must state {', '.join(missing)} "
                        "(class attributes: see Op in archspec/ir/op.py)")
    category = getattr(cls, "category", None)
    if category not in CATEGORIES:
        raise TypeError(f"op '{cls.kind}' ({cls.__qualname__}): category {category!r} has no diagram colour; "
                        f"use one of {', '.join(CATEGORIES)} or add it with register_category(name, '#rrggbb')")
    if cls.kind in OPS and OPS[cls.kind] is not cls:
        raise ValueError(f"op kind '{cls.kind}' is already registered by {OPS[cls.kind].__qualname__}")
    OPS[cls.kind] = cls
    return cls
