"""The pydantic models of a spec. Unknown keys are errors everywhere.

Layers are validated through the op registry (`spec.layers`) and stages through
the block registry (`Stage` below), both at validation time, so families and ops
that users register take part exactly like the built-in ones.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from .families import BLOCKS, BlockFamily, load_builtin_blocks
from ..core import memo
from ..core.errors import did_you_mean
from ..core.numbers import SpecNumbers
from ..ir.op import MAX_SIZE, OpDefaults
from ..ir.ops.activation import ActKind
from ..ir.ops.norm import NormKind
from .layers import LayerList
from .weights import WeightsList, check_entries

MAX_REPEAT = 1024
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"


def _fresh(factory: Callable[[], Any], **constraints: Any) -> Any:
    """A field's default made new for each model by `factory` (an empty list or mapping, a model that
    holds one): pydantic deep-copies a default it cannot hash (`= []`) at every validation, a few
    microseconds each, and a sweep validates a spec a sample. The JSON schema still shows it."""
    made = factory()
    shown = made.model_dump(mode="json") if isinstance(made, BaseModel) else made
    return Field(default_factory=factory, json_schema_extra={"default": shown}, **constraints)


class StrictModel(SpecNumbers, BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _none_word(value: Any) -> Any:
    return None if isinstance(value, str) and value.lower() == "none" else value


_Size = Annotated[int, Field(ge=1, le=MAX_SIZE)]
_TapRef = Annotated[str, Field(min_length=1, max_length=256)] | Annotated[int, Field(ge=0)]
_NoneWord = Literal["none", "None"]


class InputSpec(StrictModel):
    """`input: {channels: 3, size: [224, 224]}`; `size: 224` means square."""

    channels: int = Field(default=3, ge=1, le=65536)
    size: tuple[_Size, _Size] = (224, 224)

    @field_validator("size", mode="before", json_schema_input_type=_Size | tuple[_Size, _Size])
    @classmethod
    def _square(cls, value: Any) -> Any:
        # one number is a square (a whole float too: `${base / 2}`, which every other size takes)
        one = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
        return (value, value) if one else value

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size[0], self.size[1])


@memo.function("spec.op_defaults", 256)
def _op_defaults(written: str, values: tuple[Any, ...]) -> OpDefaults:
    """One OpDefaults for equal `values` that are also written alike (`written`, their repr): the
    values alone would take `-0.0` for `0.0` and `1` for `1.0`."""
    return OpDefaults(*values)


_OP_DEFAULTS_OF: memo.Memo[OpDefaults] = memo.Memo("spec.op_defaults_of", 1024)  # Defaults.op_defaults, by identity


class Defaults(StrictModel):
    """What bare `norm` and `act` layers, and blocks, use unless told otherwise."""

    norm: NormKind | None = "batch"
    activation: ActKind | None = "relu"
    norm_eps: float = Field(default=1e-5, gt=0)
    norm_momentum: float = Field(default=0.1, ge=0, le=1)

    @field_validator("norm", mode="before", json_schema_input_type=NormKind | _NoneWord | None)
    @classmethod
    def _no_norm(cls, value: Any) -> Any:
        return _none_word(value)

    @field_validator("activation", mode="before", json_schema_input_type=ActKind | _NoneWord | None)
    @classmethod
    def _no_activation(cls, value: Any) -> Any:
        return _none_word(value)

    def op_defaults(self) -> OpDefaults:
        """The IR's defaults: one object for the same values written alike, so that the memo tables
        that key on the defaults' identity (ir/builder.py) are shared by every spec, stage and sweep
        sample that has them, where a new object per spec made each sample's new blocks miss."""
        hit = _OP_DEFAULTS_OF.get(id(self), self)  # asked again for each stage: by identity (models are frozen)
        if hit is not memo.MISS:
            return hit
        values = (self.norm, self.activation, self.norm_eps, self.norm_momentum)
        return _OP_DEFAULTS_OF.put(id(self), _op_defaults(repr(values), values), self)

    def updated(self, override: "DefaultsOverride | None") -> "Defaults":
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


class DefaultsOverride(Defaults):
    """A stage's partial override of the spec defaults: only the keys written apply."""


class ScaleSpec(StrictModel):
    """Compound scaling (EfficientNet): channels times `width` rounded to a multiple of
    `divisor`, repeats times `depth` rounded up."""

    width: float = Field(default=1.0, gt=0, le=64)
    depth: float = Field(default=1.0, gt=0, le=64)
    divisor: int = Field(default=8, ge=1)


# The schemes `InitScheme` accepts, as a reader would write them (error messages list these), beside
# the pattern that accepts them; `backends/torch_init.init_scheme` applies each (tests/test_op_facts.py).
INIT_SCHEMES = ("default", "zeros", "ones", "kaiming_normal", "kaiming_normal_fan_in", "kaiming_normal_fan_out",
                "kaiming_uniform", "kaiming_normal(MODE, NONLINEARITY)", "kaiming_uniform(MODE, NONLINEARITY)",
                "xavier_uniform", "uniform_fan_out", "normal(STD)", "trunc_normal(STD)")
INIT_SCHEME_PATTERN = (r"^(default|zeros|ones|kaiming_normal(_fan_in|_fan_out)?|kaiming_uniform|"
                       r"kaiming_(normal|uniform)\(\s*fan_(in|out)\s*(,\s*(relu|leaky_relu|linear|"
                       r"sigmoid|tanh|selu|conv2d)\s*)?\)|"
                       r"xavier_uniform|uniform_fan_out|(trunc_)?normal\(\s*[0-9.eE+-]+\s*\))$")
InitScheme = Annotated[str, Field(pattern=INIT_SCHEME_PATTERN)]


class InitRule(StrictModel):
    """How to initialise the weight and bias of one kind of layer.

    Schemes (formulas in docs/spec-language.md, "Initialisation"): default (PyTorch's), zeros,
    ones, kaiming_normal (= kaiming_normal_fan_in), kaiming_normal_fan_out, kaiming_uniform,
    kaiming_normal(MODE, NONLINEARITY), kaiming_uniform(MODE, NONLINEARITY), xavier_uniform,
    uniform_fan_out (U(-1/sqrt(out), 1/sqrt(out))), normal(STD), trunc_normal(STD) (truncated at +-2).
    """

    weight: InitScheme = "default"
    bias: InitScheme = "default"

    @field_validator("weight", "bias")
    @classmethod
    def _std(cls, scheme: str) -> str:
        if scheme.endswith(")") and "normal(" in scheme and not scheme.startswith("kaiming"):
            text = scheme[scheme.index("(") + 1:-1].strip()
            try:
                std = float(text)
            except ValueError:
                std = float("nan")
            if not (0 <= std < float("inf")):  # also refuses nan (a text that is no number)
                raise ValueError(f"{scheme}: the standard deviation must be a finite number >= 0, got {text!r}")
        return scheme

    @field_validator("bias")
    @classmethod
    def _bias(cls, scheme: str) -> str:
        if fan_based(scheme):
            raise ValueError(f"{scheme} needs a tensor with a fan in and a fan out (a weight); a bias has one "
                             "dimension: use zeros, ones, normal(STD), trunc_normal(STD) or uniform_fan_out")
        return scheme


def fan_based(scheme: str) -> bool:
    """Whether `scheme` reads a tensor's fan in and fan out, which a one-dimensional tensor (a bias,
    a norm's weight) has not (torch raises)."""
    return scheme.startswith(("kaiming_", "xavier_"))


class InitSpec(StrictModel):
    """Weight initialisation, as the reference implementation of a family does it."""

    conv: InitRule = InitRule()
    linear: InitRule = InitRule()
    norm: InitRule = InitRule()
    # Module-path globs (`aux_heads.*.1`) with their own rule; the last match wins.
    by_name: dict[str, InitRule] = _fresh(dict)

    @field_validator("norm")
    @classmethod
    def _norm(cls, rule: InitRule) -> InitRule:
        if fan_based(rule.weight):
            raise ValueError(f"weight: {rule.weight} needs a tensor with a fan in and a fan out; a norm's weight has "
                             "one dimension: use ones, zeros, normal(STD) or trunc_normal(STD)")
        return rule

    def tables(self) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        """The rules as plain data: {kind: (weight, bias)} and {glob: (weight, bias)}, in order
        (what `backends/torch_init.init_weights` applies, here and in exported source)."""
        kinds = {kind: (getattr(self, kind).weight, getattr(self, kind).bias) for kind in ("conv", "linear", "norm")}
        return kinds, {pattern: (rule.weight, rule.bias) for pattern, rule in self.by_name.items()}

    @property
    def is_default(self) -> bool:
        kinds, by_name = self.tables()
        return not by_name and all(rule == ("default", "default") for rule in kinds.values())


class AuxHeadSpec(StrictModel):
    """An auxiliary classifier, fed by the output of stage `after`, used in training only."""

    after: str | int
    name: str | None = None
    enabled: StrictBool = True
    layers: LayerList = Field(min_length=1)


class StageFields(SpecNumbers, BaseModel):
    """Keys every stage has, whatever its block type."""

    model_config = ConfigDict(defer_build=True)

    block: str
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    stride: int = Field(default=1, ge=1, le=64)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    defaults: DefaultsOverride | None = None
    # Trade this stage's stride for dilation (torchvision's `replace_stride_with_dilation`).
    # `previous` / `new` also say which dilation the first block gets, overriding the family's
    # rule (`new`: every block at the new dilation, as DeepLab's and smp's `make_dilated` do).
    dilate: StrictBool | Literal["previous", "new"] = False

    STAGE_KEYS: ClassVar[tuple[str, ...]] = ("block", "repeat", "stride", "name", "defaults", "dilate")


@cache
def stage_model(family: type[BlockFamily]) -> type[BlockFamily]:
    """The stage model of a family: its parameters plus the common stage keys."""
    return create_model(
        f"{family.__name__}Stage",
        __base__=(family, StageFields),
        block=(Literal[family.family], ...),
    )


def _layer_stage(value: dict) -> dict | None:
    """A stage item written as a single layer (`- maxpool: {kernel: 3}`) -> a `layers` stage."""
    if "block" in value or len(value) != 1:  # a stage (every stage of every sweep sample): no import
        return None
    from ..ir.ops import OPS

    if next(iter(value)) in OPS:
        return {"block": "layers", "layers": [value]}
    return None


class _BlockName(SpecNumbers, BaseModel):
    """Checks `block:` alone, so that an unknown type is reported at `stages[i].block`."""

    block: str

    @field_validator("block")
    @classmethod
    def _known(cls, kind: str, info: ValidationInfo) -> str:
        context = info.context or {}
        known = sorted(context.get("listed", context["families"]))
        if kind not in context["families"]:
            raise PydanticCustomError(
                "unknown_block",
                "unknown block type '{kind}'{hint}; known: {known}",
                {"kind": kind, "hint": did_you_mean(kind, known), "known": ", ".join(known)},
            )
        return kind


def parse_stage(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, BlockFamily):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("stage", "a stage is a mapping such as `{block: bottleneck, out: 256, repeat: 3}`")
    value = _layer_stage(value) or value
    given = (info.context or {}).get("families", {})  # the spec's own, over the registered ones
    kind = value.get("block")
    family = (given.get(kind) or load_builtin_blocks().get(kind)) if type(kind) is str else None
    if family is None:  # no such block: say so, and list the known ones
        _check_block_name(value, given)
    model = stage_model(family)
    if model.inputs[0] > 1:
        raise PydanticCustomError("block_inputs", "block type '{kind}' reads {n} or more values, and a stage passes "
                                  "one: write it as a part, under `necks:` or `heads:` with `in: [...]`",
                                  {"kind": kind, "n": model.inputs[0]})
    key = _stage_key(model, value, given, info.context)
    hit = _STAGES.get(key) if key is not None else memo.MISS
    if hit is not memo.MISS:
        return hit
    stage = model.model_validate(value, context=info.context)
    if stage.stride != 1 and not model.strided:
        reason = f": {model.unstrided_because}" if model.unstrided_because else ""
        raise PydanticCustomError("stride", "block type '{kind}' takes no stride{reason}", {"kind": kind, "reason": reason})
    if key is not None:
        _STAGES.put(key, stage)
    return stage


# Stages already validated, by model, the spec's own block types and the written values: stage models
# are frozen, and a sweep's samples repeat most stages of the base spec (all of them where only
# `scale:` and `input:` are sampled: scaling applies after validation).
_STAGES: memo.Memo[BlockFamily] = memo.Memo("spec.stages", 4096)
_WEIGHTS: memo.Memo[tuple] = memo.Memo("spec.weights", 1024)  # SpecModel.weights, by written value


def _stage_key(model: type, value: dict, given: dict[str, type[BlockFamily]], context: Any) -> tuple | None:
    """The memo key of a stage: None where the context holds more than the spec's block types, or a
    value marshal cannot write (it keeps every type: `1`, `1.0` and `true` give different keys)."""
    if context and set(context) != {"families"}:
        return None
    try:
        return model, tuple(given.items()), marshal.dumps(value)
    except ValueError:
        return None


def _check_block_name(value: dict, given: dict[str, type[BlockFamily]]) -> None:
    """Raise the error of a stage whose `block:` is missing, malformed or names no known block type."""
    families = dict(load_builtin_blocks())
    families.update(given)
    if "block" not in value:
        raise PydanticCustomError(
            "missing_block", "a stage needs `block: TYPE` (known types: {known})", {"known": ", ".join(sorted(families))}
        )
    if isinstance(value["block"], dict):
        inner = value["block"].get("block", "TYPE")
        raise PydanticCustomError(
            "block_form", "`block:` takes a block type's name; the parameters go beside it, in the stage's own "
            "mapping: `{block: {inner}, out: 64, repeat: 2}`", {"inner": str(inner)})
    stages = [f for f, c in families.items() if c.inputs[0] == 1]  # the ones a stage can be: listed when unknown
    _BlockName.model_validate({"block": value["block"]}, context={"families": families, "listed": stages})
    raise AssertionError(f"block {value['block']!r} is known, yet was not found")  # pragma: no cover


class _ParsedBy:
    """Annotated metadata: values validated by `parse` (which picks the family's model), shown in
    the JSON Schema as the hand-made definition `ref` (spec/schema.py)."""

    def __init__(self, parse: Any, ref: str):
        self.parse, self.ref = parse, ref

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self.parse)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"$ref": f"#/$defs/{self.ref}"}


Stage = Annotated[BlockFamily, _ParsedBy(parse_stage, "Stage")]


_SourceRef = Annotated[str, Field(min_length=1, max_length=256)]


class PartFields(SpecNumbers, BaseModel):
    """Keys every neck or head has, whatever its block type."""

    model_config = ConfigDict(defer_build=True)

    block: str
    # What the part reads, in order: taps (`stages.1`), other parts (`necks.fpn`), or `input`.
    sources: list[_SourceRef] = Field(alias="in", min_length=1)
    defaults: DefaultsOverride | None = None

    @field_validator("sources", mode="before", json_schema_input_type=_SourceRef | list[_SourceRef])
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@cache
def part_model(family: type[BlockFamily]) -> type[BlockFamily]:
    """The spec model of a block family used as a part: its parameters plus the common part keys."""
    return create_model(
        f"{family.__name__}Part",
        __base__=(family, PartFields),
        block=(Literal[family.family], ...),
    )


def parse_part(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, PartFields):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("part", "a neck or head is a mapping such as `{block: fpn, in: [stages.0, stages.1]}`")
    parts = dict(load_builtin_blocks())  # any block type: built-in, a plugin's or the spec's own
    parts.update((info.context or {}).get("families", {}))
    if "block" not in value:
        raise PydanticCustomError("missing_block", "a neck or head needs `block: TYPE` (known types: {known})",
                                  {"known": ", ".join(sorted(parts))})
    kind = _BlockName.model_validate({"block": value["block"]}, context={"families": parts}).block
    part = part_model(parts[kind]).model_validate(value, context=info.context)
    low, high = part.inputs
    n = len(part.sources)
    if n < low or (high is not None and n > high):
        count = str(low) if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise PydanticCustomError("inputs", "block type '{kind}' reads {count} input{s} (`in:`), got {n}",
                                  {"kind": kind, "count": count, "s": "" if count == "1" else "s", "n": n})
    return part


Part = Annotated[BlockFamily, _ParsedBy(parse_part, "Part")]
PART_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PartName = Annotated[str, Field(pattern=PART_NAME_PATTERN, max_length=64)]


class SpecModel(StrictModel):
    """A whole network. `extends`, `include` and `vars` are consumed while resolving."""

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    description: str = ""
    extends: str | None = None
    include: str | list[str] | None = None  # files whose `blocks:` join this spec's (consumed while resolving)
    vars: dict[str, Any] = _fresh(dict)
    input: InputSpec = InputSpec()
    num_classes: int = Field(default=1000, ge=1, le=1 << 24)
    defaults: Defaults = Defaults()
    init: InitSpec = _fresh(InitSpec)
    scale: ScaleSpec | None = None
    # The stride of the last stage's output: later stage strides become dilation (see docs/spec-language.md).
    output_stride: int | None = Field(default=None, ge=1, le=1024)
    # Named outputs: `stages`, a list of paths or stage indices, or {name: path} (ir/taps.py).
    features: _TapRef | list[_TapRef] | dict[str, _TapRef | None] | None = None
    blocks: dict[str, Any] = _fresh(dict)
    stem: LayerList = []
    stages: list[Stage] = []
    head: LayerList = []
    aux_heads: list[AuxHeadSpec] = _fresh(list)
    # Parts that read several earlier values (blocks/parts.py): necks, then dense heads.
    # `null` removes a part a parent spec defines (`heads: {aux_classifier: null}`).
    necks: dict[PartName, Part | None] = _fresh(dict)
    heads: dict[PartName, Part | None] = _fresh(dict)
    # Published weights (spec/weights.py); `archspec.build(spec, weights=NAME)` loads one.
    weights: WeightsList = []
    # Parts whose parameters do not train (`stem`, `stages.0`, `stages.*.blocks.0`): no gradient, and
    # their norms keep their running statistics (eval mode) while the rest of the model trains.
    freeze: list[Annotated[str, Field(min_length=1, max_length=256)]] = _fresh(list, max_length=1024)

    @field_validator("weights", mode="wrap")
    @classmethod
    def _weights(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list:
        """The entries validated once per written value (they are frozen; a sweep's samples all
        carry their base spec's)."""
        try:
            key: bytes | None = marshal.dumps(value)  # every type kept: `1`, `1.0` and `true` differ
        except ValueError:
            key = None
        hit = _WEIGHTS.get(key) if key is not None else memo.MISS
        if hit is memo.MISS:
            hit = tuple(check_entries(handler(value)))
            if key is not None:
                _WEIGHTS.put(key, hit)
        return list(hit)

    @field_validator("freeze", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _freeze_one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def stage_defaults(self, stage: Any) -> Defaults:
        return self.defaults.updated(getattr(stage, "defaults", None))

    def stage_name(self, index: int) -> str:
        return getattr(self.stages[index], "name", None) or f"stage{index}"


def known_blocks() -> list[str]:
    return sorted(load_builtin_blocks())


__all__ = ["SpecModel", "StageFields", "stage_model", "known_blocks", "BLOCKS"]
