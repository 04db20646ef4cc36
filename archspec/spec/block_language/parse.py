"""The notation of YAML-defined blocks: the declarations, the body's items, and the
checks made when a spec is validated (see `composite` for the notation itself)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.errors import Problem, SpecPath, did_you_mean
from ...ir.op import OPS
from ..expr import FUNCTIONS, INTERPOLATION, ExprError, free_names
from ..models import StageFields

COMBINATORS = ("residual", "add", "concat", "mul")
CONTEXT_NAMES = ("channels", "in_channels", "stride", "index", "repeat", "stage", "global_index", "total_blocks")
STAGE_KEYS = StageFields.STAGE_KEYS
IDENTITY = "identity"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPES: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "list": list}


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
class Parser:
    """Turns a body into items, collecting located problems instead of stopping at the first."""

    block: str
    locator: Any
    names: set[str]
    families: set[str]
    problems: list[Problem] = field(default_factory=list)
    uses: set[str] = field(default_factory=set)  # names referenced by expressions
    nested: set[str] = field(default_factory=set)  # user block types used inside
    misspelled: bool = False  # an expression named something unknown

    def problem(self, message: str, path: SpecPath, key: bool = False) -> None:
        self.problems.append(self.locator.problem(message, ("blocks", self.block) + tuple(path), key=key))

    def body(self, value: Any, path: SpecPath) -> tuple:
        if value == IDENTITY:
            return ()
        if isinstance(value, (dict, str)):
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
        from ..layers import layer_kinds, parse_layer

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
                    self.misspelled = True
                    known = sorted(self.names)
                    self.problem(f"unknown name '{name}' in '{value}'{did_you_mean(name, known)}; "
                                 f"known: {', '.join(known)}", path)

    def validation(self, exc: ValidationError, data: Any, path: SpecPath) -> None:
        from ..validate import problems_from

        self.problems += problems_from(exc, data, self.locator, ("blocks", self.block) + tuple(path))


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


