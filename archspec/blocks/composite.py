"""Block types defined in YAML: a named, parameterised composition of layers.

A spec's `blocks:` section (or a file it includes) defines each block as
parameters plus a body; stages then use it like any built-in family:

    blocks:
      fire:
        doc: SqueezeNet's fire module.
        params:
          squeeze: {type: int, min: 1, channels: true}
          expand: {type: int, min: 1, channels: true}
        layers:
          - conv: {out: "${squeeze}", name: squeeze}
          - act: {name: squeeze_activation}
          - concat:
              expand1x1: [conv: {out: "${expand}"}, act]
              expand3x3: [conv: {out: "${expand}", kernel: 3, padding: 1}, act]
    stages:
      - {block: fire, squeeze: 16, expand: 64}

The body is a list (a sequence). An item is a layer (`kind: params`, as in stem and
head), a combinator or a conditional:

    residual: BODY            x + BODY(x)
    add | concat | mul: BRANCHES   the branches' outputs summed, concatenated along
                              channels, or multiplied (SE gating); BRANCHES is a list
                              of bodies or a mapping name -> body (the name scopes the
                              branch's layers); `identity` is the input itself
    block: TYPE, PARAMS...    another block type (built-in, Python or YAML) inside this one
    if: COND, then: BODY, else: BODY

Inside a definition, `${...}` names the block's parameters and what the block knows
of its place: `channels` (the current input's), `in_channels` (the block's input),
`stride` (the stage's stride for its first block, else 1), `index`, `repeat`,
`stage`, `global_index`, `total_blocks`. A block that uses `stride` accepts a stage
stride. Mistakes are reported where they are written (file:line:column), the static
ones when the spec is validated and the others when the block is built.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import ArchspecError, Problem, SpecError, SpecPath, did_you_mean, format_path
from ..ir.builder import GraphBuilder, NodeShapeError, Value
from ..ir.op import OPS
from ..spec.expr import FUNCTIONS, INTERPOLATION, ExprError, free_names, substitute
from ..spec.models import StageFields
from .registry import BlockContext, BlockFamily, load_builtin_blocks

COMBINATORS = ("residual", "add", "concat", "mul")
CONTEXT_NAMES = ("channels", "in_channels", "stride", "index", "repeat", "stage", "global_index", "total_blocks")
STAGE_KEYS = StageFields.STAGE_KEYS
IDENTITY = "identity"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPES: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "list": list}


class BlockBuildError(ArchspecError):
    """A YAML-defined block could not be built with the parameters a stage gave it."""


# -- the definition, as validated data -------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamDecl(_Strict):
    """`out: {type: int, min: 1, channels: true}`; `out: int` is the short form of a required int."""

    type: Literal["int", "float", "bool", "str", "list"]
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    channels: bool = False  # a channel count: scaled by width multipliers
    doc: str = ""

    def annotation(self) -> Any:
        if self.choices:
            return Literal[tuple(self.choices)]  # type: ignore[misc]
        if self.type in ("int", "float"):
            return Annotated[TYPES[self.type], Field(ge=self.min, le=self.max)]
        return TYPES[self.type]


class Definition(_Strict):
    doc: str = ""
    params: dict[str, Any] = {}  # each checked as a ParamDecl, for errors located at the parameter
    layers: list[Any] = Field(min_length=1)


# -- the body, parsed ---------------------------------------------------------------------

@dataclass(frozen=True)
class LayerItem:
    kind: str
    fields: Any  # as written: a mapping, a shorthand scalar or None; may hold ${}
    path: SpecPath


@dataclass(frozen=True)
class MergeItem:
    kind: str  # residual, add, concat or mul
    branches: tuple[tuple[str | None, tuple | None], ...]  # (scope name, body or None for identity)
    path: SpecPath


@dataclass(frozen=True)
class BlockItem:
    family: str
    params: dict
    stride: Any
    name: str | None
    path: SpecPath


@dataclass(frozen=True)
class IfItem:
    condition: Any
    then: tuple
    otherwise: tuple
    path: SpecPath


@dataclass
class _Parser:
    """Turns a body into items, collecting located problems instead of stopping at the first."""

    block: str
    locator: Any
    names: set[str]
    families: set[str]
    problems: list[Problem] = field(default_factory=list)
    uses: set[str] = field(default_factory=set)  # names referenced by expressions
    nested: set[str] = field(default_factory=set)  # user block types used inside

    def problem(self, message: str, path: SpecPath, key: bool = False) -> None:
        self.problems.append(self.locator.problem(message, ("blocks", self.block) + tuple(path), key=key))

    def body(self, value: Any, path: SpecPath) -> tuple:
        if isinstance(value, dict) or isinstance(value, str) and value != IDENTITY:
            value = [value]
        if not isinstance(value, list) or not value:
            self.problem("a body is a non-empty list of layers and combinators", path)
            return ()
        return tuple(item for i, v in enumerate(value) if (item := self.item(v, path + (i,))) is not None)

    def item(self, value: Any, path: SpecPath) -> Any:
        if isinstance(value, str):
            value = {value: None}
        if not isinstance(value, dict) or not value:
            self.problem("an item is `kind: params` (a layer), a combinator, `block: TYPE` or `if:`", path)
            return None
        self.expressions(value, path)
        if "if" in value:
            return self.conditional(value, path)
        if "block" in value:
            return self.nested_block(value, path)
        if len(value) != 1:
            keys = ", ".join(map(str, value))
            self.problem(f"an item has exactly one key, its kind (found {keys}); indent its parameters under it", path)
            return None
        (kind, params), = value.items()
        if kind in COMBINATORS:
            return self.merge(kind, params, path + (kind,))
        return self.layer(str(kind), params, path)

    def layer(self, kind: str, params: Any, path: SpecPath) -> LayerItem | None:
        from ..spec.layers import layer_kinds, parse_layer

        kinds = layer_kinds()
        if kind not in kinds:
            known = kinds + list(COMBINATORS) + ["block", "if"]
            self.problem(f"unknown layer type '{kind}'{did_you_mean(kind, known)}; known: {', '.join(known)}",
                         path + (kind,), key=True)
            return None
        if not _templated(params):
            try:
                parse_layer({kind: params})
            except ValidationError as exc:
                self.validation(exc, {kind: params}, path)
        elif isinstance(params, dict):
            allowed = set(OPS[kind].model_fields)
            for key in params:
                if key not in allowed:
                    self.problem(f"unknown key '{key}'{did_you_mean(str(key), allowed)} for {kind}",
                                 path + (kind, key), key=True)
        return LayerItem(kind, params, path + (kind,))

    def merge(self, kind: str, value: Any, path: SpecPath) -> MergeItem:
        if kind == "residual":
            return MergeItem(kind, ((None, self.body(value, path)),), path)
        named: list[tuple[str | None, Any, SpecPath]] = []
        if isinstance(value, dict):
            for name, branch in value.items():
                if not isinstance(name, str) or not NAME.match(name):
                    self.problem(f"branch name '{name}' must be a plain identifier", path + (name,), key=True)
                named.append((str(name), branch, path + (name,)))
        elif isinstance(value, list):
            named = [(None, branch, path + (i,)) for i, branch in enumerate(value)]
        if len(named) < 2:
            self.problem(f"{kind} needs at least two branches: a list of bodies, or a mapping name -> body "
                         f"(`{IDENTITY}` is the input itself)", path)
        branches = tuple((name, None if branch == IDENTITY else self.body(branch, at)) for name, branch, at in named)
        return MergeItem(kind, branches, path)

    def nested_block(self, value: dict, path: SpecPath) -> BlockItem | None:
        family = value["block"]
        if not isinstance(family, str) or family not in self.families:
            known = sorted(self.families)
            self.problem(f"unknown block type '{family}'{did_you_mean(str(family), known)}; known: {', '.join(known)}",
                         path + ("block",))
            return None
        if family == self.block:
            self.problem(f"block '{family}' cannot contain itself", path + ("block",))
            return None
        self.nested.add(family)
        params = {k: v for k, v in value.items() if k not in ("block", "stride", "name")}
        name = value.get("name")
        if name is not None and not (isinstance(name, str) and NAME.match(name)):
            self.problem("name must be a plain identifier", path + ("name",))
        return BlockItem(family, params, value.get("stride", 1), name, path)

    def conditional(self, value: dict, path: SpecPath) -> IfItem | None:
        extra = [k for k in value if k not in ("if", "then", "else")]
        if extra:
            hint = did_you_mean(str(extra[0]), ("if", "then", "else"))
            self.problem(f"unknown key '{extra[0]}'{hint} in a conditional (it takes if, then, else)",
                         path + (extra[0],), key=True)
        if "then" not in value:
            self.problem("a conditional needs `then:` (and optionally `else:`)", path)
            return None
        condition = value["if"]
        if not isinstance(condition, bool) and not (isinstance(condition, str) and INTERPOLATION.fullmatch(condition)):
            self.problem("`if:` takes true, false or one expression such as \"${stride == 1}\"", path + ("if",))
        otherwise = self.body(value["else"], path + ("else",)) if value.get("else") is not None else ()
        return IfItem(condition, self.body(value["then"], path + ("then",)), otherwise, path)

    def expressions(self, value: Any, path: SpecPath) -> None:
        """Check every `${}` directly in this item (not in nested bodies): syntax and names."""
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("then", "else") and k not in COMBINATORS:
                    self.expressions(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.expressions(v, path + (i,))
        elif isinstance(value, str):
            for expression in INTERPOLATION.findall(value):
                try:
                    names, functions = free_names(expression)
                except ExprError as exc:
                    self.problem(str(exc), path)
                    continue
                self.uses |= names
                for fn in sorted(functions - set(FUNCTIONS)):
                    self.problem(f"function '{fn}' is not available; use one of {', '.join(sorted(FUNCTIONS))}", path)
                for name in sorted(names - self.names):
                    known = sorted(self.names)
                    self.problem(f"unknown name '{name}' in '{value}'{did_you_mean(name, known)}; "
                                 f"known: {', '.join(known)}", path)

    def validation(self, exc: ValidationError, data: Any, path: SpecPath) -> None:
        from ..spec.validate import problems_from

        self.problems += problems_from(exc, data, self.locator, ("blocks", self.block) + tuple(path))


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


# -- the family -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Compiled:
    name: str
    body: tuple
    params: tuple[str, ...]
    locator: Any
    families: dict  # block type -> family class, for nested blocks (filled once all are made)


class CompositeFamily(BlockFamily):
    """Base of the families made from YAML definitions; `compiled` holds the parsed body."""

    compiled: ClassVar[_Compiled]

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        params = {name: getattr(self, name) for name in self.compiled.params}
        return _Emitter(self.compiled, b, ctx, params, x.channels).body(self.compiled.body, x)


@dataclass
class _Emitter:
    compiled: _Compiled
    b: GraphBuilder
    ctx: BlockContext
    params: dict[str, Any]
    in_channels: int

    def fail(self, message: str, path: SpecPath) -> BlockBuildError:
        where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
        return BlockBuildError(f"{format_path(path)}: {message} (at {where})")

    def values(self, raw: Any, x: Value, path: SpecPath) -> Any:
        context = {"channels": x.channels, "in_channels": self.in_channels, "stride": self.ctx.stride,
                   "index": self.ctx.index, "repeat": self.ctx.repeat, "stage": self.ctx.stage,
                   "global_index": self.ctx.global_index, "total_blocks": self.ctx.total_blocks}

        def lookup(name: str) -> Any:
            if name in self.params:
                return self.params[name]
            return context[name]  # names were checked when the spec was validated

        def walk(value: Any, at: SpecPath) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, at + (k,)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, at + (i,)) for i, v in enumerate(value)]
            if isinstance(value, str) and "${" in value:
                try:
                    return substitute(value, lookup)
                except ExprError as exc:
                    raise self.fail(f"in '{value}': {exc}", at) from None
            return value

        return walk(raw, path)

    def body(self, items: tuple, x: Value) -> Value:
        for item in items:
            x = self.item(item, x)
        return x

    def item(self, item: Any, x: Value) -> Value:
        if isinstance(item, LayerItem):
            return self.layer(item, x)
        if isinstance(item, MergeItem):
            return self.merge(item, x)
        if isinstance(item, BlockItem):
            return self.nested(item, x)
        condition = self.values(item.condition, x, item.path + ("if",))
        if not isinstance(condition, bool):
            raise self.fail(f"the condition gave {condition!r}, not true or false", item.path + ("if",))
        return self.body(item.then if condition else item.otherwise, x)

    def layer(self, item: LayerItem, x: Value) -> Value:
        from ..spec.layers import parse_layer

        fields = self.values(item.fields, x, item.path)
        try:
            op = parse_layer({item.kind: fields})
        except ValidationError as exc:
            raise self.invalid(exc, {item.kind: fields}, item.path[:-1]) from None
        return self.emit_op(lambda: self.b.op(op, x), item.path)

    def invalid(self, exc: ValidationError, data: Any, path: SpecPath) -> BlockBuildError:
        """The first problem of a failed validation of `data`, written at `path` in the definition."""
        from ..spec.validate import problems_from

        first = problems_from(exc, data, self.compiled.locator, ("blocks", self.compiled.name) + tuple(path))[0]
        return self.fail(first.message, first.path[2:])

    def merge(self, item: MergeItem, x: Value) -> Value:
        outs = []
        for name, body in item.branches:
            with self.b.scope(name) if name else contextlib.nullcontext():
                outs.append(x if body is None else self.body(body, x))
        if item.kind == "residual":
            outs.append(x)
        kind = "add" if item.kind == "residual" else item.kind
        return self.emit_op(lambda: self.b.op(kind, *outs, name=self.b.free_name(kind)), item.path)

    def nested(self, item: BlockItem, x: Value) -> Value:
        family = self.compiled.families[item.family]
        params = self.values(item.params, x, item.path)
        stride = self.values(item.stride, x, item.path + ("stride",))
        try:
            block = family.model_validate(params)
        except ValidationError as exc:
            raise self.invalid(exc, params, item.path) from None
        if not isinstance(stride, int) or stride < 1:
            raise self.fail(f"stride must be a positive integer, got {stride!r}", item.path + ("stride",))
        ctx = BlockContext(stride, self.ctx.index, self.ctx.repeat, self.ctx.stage, self.ctx.global_index,
                           self.ctx.total_blocks, self.ctx.defaults)
        with self.b.scope(item.name or self.b.free_name(item.family)):
            return block.emit(self.b, x, ctx)

    def emit_op(self, emit: Callable[[], Value], path: SpecPath) -> Value:
        try:
            return emit()
        except NodeShapeError as exc:
            where = self.compiled.locator.where(("blocks", self.compiled.name) + tuple(path))
            raise NodeShapeError(f"{exc} (at {where})", exc.name, exc.origin, exc.spatial_zero) from None


# -- building the families of a spec ----------------------------------------------------------

def families_from_spec(defined: Any, locator: Any) -> dict[str, type[BlockFamily]]:
    """The block families of a spec's `blocks:` section; a SpecError lists every problem found."""
    if not isinstance(defined, dict):
        raise SpecError(locator.problem("blocks must map block names to definitions", ("blocks",)))
    key = json.dumps(defined, sort_keys=True, default=str)
    where = tuple(str(locator.where(("blocks", name), key=True)) for name in defined)
    return dict(_families(key, where, _Frozen(defined, locator)))


@dataclass(frozen=True)
class _Frozen:
    """Carries the unhashable definitions and locator through the cache, which keys on text."""

    defined: dict = field(hash=False, compare=False)
    locator: Any = field(hash=False, compare=False)


@lru_cache(maxsize=64)
def _families(key: str, where: tuple[str, ...], frozen: _Frozen) -> tuple[tuple[str, type[BlockFamily]], ...]:
    # Cached on the definitions' text and places, so that validating the same spec again reuses
    # the classes (and the stage models built from them).
    defined, locator = frozen.defined, frozen.locator
    builtin = load_builtin_blocks()
    problems: list[Problem] = []
    families: dict[str, type[BlockFamily]] = {}
    uses: dict[str, set[str]] = {}
    for name, definition in defined.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(locator.problem(f"block name '{name}' must be a plain identifier such as 'my_block'",
                                            ("blocks", name), key=True))
            continue
        if name in builtin:
            problems.append(locator.problem(f"'{name}' is already a block type ({builtin[name].__qualname__}); "
                                            "choose another name", ("blocks", name), key=True))
            continue
        made = _family(name, definition, locator, set(builtin) | set(defined), problems)
        if made is not None:
            families[name], uses[name] = made
    problems += _cycles(uses, locator)
    if problems:
        raise SpecError(problems)
    every = {**builtin, **families}
    for family in families.values():
        family.compiled.families.update(every)
    return tuple(families.items())


def _family(name: str, definition: Any, locator: Any, known: set[str],
            problems: list[Problem]) -> tuple[type[BlockFamily], set[str]] | None:
    from ..spec.validate import problems_from

    at: SpecPath = ("blocks", name)
    before = len(problems)
    spec = _checked(Definition, definition, locator, at, problems)
    if spec is None:
        return None
    fields: dict[str, Any] = {}
    decls: dict[str, ParamDecl] = {}
    for pname, raw in spec.params.items():
        where = at + ("params", pname)
        if isinstance(raw, str) and raw not in TYPES:
            problems.append(locator.problem(f"a parameter is a type ({', '.join(TYPES)}) or a mapping such as "
                                            f"{{type: int, default: 4}}; got '{raw}'{did_you_mean(raw, TYPES)}", where))
            continue
        decl = _checked(ParamDecl, {"type": raw} if isinstance(raw, str) else raw, locator, where, problems)
        if decl is None:
            continue
        if not NAME.match(str(pname)) or keyword.iskeyword(pname):
            problems.append(locator.problem(f"parameter name '{pname}' must be a plain identifier", where, key=True))
            continue
        if pname in CONTEXT_NAMES or pname in STAGE_KEYS:
            problems.append(locator.problem(f"'{pname}' is reserved (stage keys: {', '.join(STAGE_KEYS)}; "
                                            f"names a block knows: {', '.join(CONTEXT_NAMES)})", where, key=True))
            continue
        if "default" in decl.model_fields_set:
            default = decl.default
            try:
                default = _adapter(decl).validate_python(default)
            except ValidationError as exc:
                problems += problems_from(exc, default, locator, where + ("default",))
            fields[pname] = (decl.annotation(), default)
        else:
            fields[pname] = (decl.annotation(), ...)
        decls[pname] = decl
    # Every declared name counts as known, so that a bad declaration is reported once, not at each use.
    parser = _Parser(name, locator, {str(p) for p in spec.params} | set(CONTEXT_NAMES), known)
    body = parser.body(spec.layers, ("layers",))
    problems += parser.problems
    for unused in sorted(set(decls) - parser.uses):
        problems.append(locator.problem(f"parameter '{unused}' is never used in the layers (write ${{{unused}}})",
                                        at + ("params", unused), key=True))
    if len(problems) > before:
        return None
    compiled = _Compiled(name, body, tuple(decls), locator, {})
    family = create_model(  # type: ignore[call-overload]
        "".join(part.capitalize() for part in name.split("_")) or "Block",
        __base__=CompositeFamily,
        __doc__=spec.doc or f"Block '{name}', defined in YAML.",
        **fields,
    )
    family.family = name
    family.compiled = compiled
    family.strided = "stride" in parser.uses
    family.channel_fields = tuple(p for p, d in decls.items() if d.channels)
    return family, parser.nested


def _checked(model: type[BaseModel], data: Any, locator: Any, at: SpecPath, problems: list[Problem]) -> Any:
    """`data` validated as `model`, or None with the problems recorded; unknown keys get
    suggestions from the model's own keys."""
    from ..spec.validate import problems_from

    if isinstance(data, dict):
        unknown = [k for k in data if k not in model.model_fields]
        for key in unknown:
            problems.append(locator.problem(f"unknown key '{key}'{did_you_mean(str(key), model.model_fields)}; "
                                            f"known: {', '.join(model.model_fields)}", at + (key,), key=True))
        if unknown:
            return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, data, locator, at)
        return None


def _adapter(decl: ParamDecl) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(decl.annotation())


def _cycles(uses: dict[str, set[str]], locator: Any) -> list[Problem]:
    """Blocks that contain each other, directly or not, can never be built."""
    problems = []
    for start in uses:
        stack, seen = [(start, (start,))], set()
        while stack:
            name, trail = stack.pop()
            for inner in uses.get(name, ()):
                if inner == start:
                    problems.append(locator.problem(f"blocks contain each other: {' -> '.join(trail + (start,))}",
                                                    ("blocks", start), key=True))
                    stack = []
                    break
                if inner not in seen:
                    seen.add(inner)
                    stack.append((inner, trail + (inner,)))
    return problems[:1]
