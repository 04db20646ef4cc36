"""The notation of YAML-defined blocks: the declarations, the body's items, and the
checks made when a spec is validated (see `family` for the notation itself)."""

from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from ...core.errors import Problem, SpecPath, bare_key_hint, did_you_mean
from ...core.numbers import SpecNumbers
from ...ir.ops import OPS
from ..expr import FUNCTIONS, INTERPOLATION, ExprError, free_names
from ..families import BlockContext
from ..models import StageFields

COMBINATORS = ("residual", "add", "concat", "mul")
# What a definition's expressions may read of the block's place: the current and the block's
# input channels, and every plain field of `BlockContext` (`defaults` is the builder's business).
CONTEXT_NAMES = ("channels", "in_channels",
                 *(f.name for f in dataclasses.fields(BlockContext) if f.name != "defaults"))
STAGE_KEYS = StageFields.STAGE_KEYS
IDENTITY = "identity"
INPUT = "input"  # `from: input` reads the block's input
NESTED_KEYS = ("block", "stride", "name", "repeat", "from")  # the keys of `{block: TYPE, ...}` that are not parameters
# A name, or a dotted path to one inside named scopes (`branch2.conv1`).
REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPES: dict[str, Any] = {"int": int, "float": float, "bool": StrictBool, "str": str, "list": list}


# -- the definition, as validated data -------------------------------------------------

class _Strict(SpecNumbers, BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamDecl(_Strict):
    """`out: {type: int, min: 1, channels: true}`; `out: int` is the short form of a required int."""

    type: Literal["int", "float", "bool", "str", "list"]
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    channels: StrictBool = False  # a channel count: scaled by width multipliers
    doc: str = ""

    def annotation(self) -> Any:
        if self.choices:
            return Literal[tuple(self.choices)]
        if self.type in ("int", "float"):
            return Annotated[TYPES[self.type], Field(ge=self.min, le=self.max)]
        return TYPES[self.type]


_ValueName = Annotated[str, Field(pattern=NAME.pattern)]


class Definition(_Strict):
    doc: str = ""
    # The values the block reads when it is a part (`in:` gives them in this order): the first
    # is also `input`; a stage or a nested block passes one. Empty: one, read as `input`.
    inputs: list[_ValueName] = []
    params: dict[str, Any] = {}  # each checked as a ParamDecl, for errors located at the parameter
    layers: list[Any] = Field(min_length=1)
    # Named values returned as the block's outputs (a part's several outputs); empty: the last value.
    outputs: list[_ValueName] = []
    # The dilation of a dilated stage's first block, for a block that reads ${dilation}
    # (`BlockFamily.first_block_dilation`): "previous" as torchvision's ResNet, "new" as its MobileNet-v3.
    first_block_dilation: Literal["previous", "new"] = "previous"


# -- the body, parsed ---------------------------------------------------------------------

@dataclass(frozen=True)
class LayerItem:
    kind: str
    fields: Any  # as written, without `from`: a mapping, a shorthand scalar or None; may hold ${}
    path: SpecPath
    sources: tuple[str, ...] = ()  # `from:` the named values it reads (else the current value)


@dataclass(frozen=True)
class RefItem:
    """`from: NAME` as an item (the body goes on from that value), or a branch written as a name."""

    name: str
    path: SpecPath


@dataclass(frozen=True)
class ForItem:
    """`for: VAR, in: LIST, do: BODY`: the body once per element, in sequence (or, as a merge's
    branches, one branch per element), with `${VAR}` the element."""

    var: str
    values: Any  # a list, or one expression giving a list
    body: tuple
    path: SpecPath


@dataclass(frozen=True)
class MergeItem:
    kind: str  # residual, add, concat or mul
    # (scope name, body; None for identity, a RefItem for a named value), or one ForItem
    branches: tuple[tuple[str | None, Any], ...] | ForItem
    path: SpecPath
    name: str | None = None  # the merge's own name (else add, add1, ...), readable later


@dataclass(frozen=True)
class BlockItem:
    family: str
    params: dict
    stride: Any
    name: str | None
    path: SpecPath
    repeat: Any = None  # None: once, as the enclosing block; N: N times, as a stage repeats
    source: str | None = None


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
    defined: set[str] = field(default_factory=set)  # names that name values (layers, branches, blocks)
    references: list[tuple[str, SpecPath]] = field(default_factory=list)  # `from:` names, where written
    templated_names: bool = False  # some name given is an expression: references are checked when built

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
            self.problem("an item is `kind: params` (a layer), a combinator, `block: TYPE`, `if:`, `for:` "
                         "or `from: NAME`", path)
            return None
        self.expressions(value, path)
        if "if" in value:
            return self.conditional(value, path)
        if "block" in value:
            return self.nested_block(value, path)
        if "for" in value:
            return self.loop(value, path)
        if set(value) == {"from"}:
            return self.reference(value["from"], path + ("from",))
        merge = [k for k in value if k in COMBINATORS]
        if merge and set(value) <= {merge[0], "name"}:
            return self.merge(merge[0], value[merge[0]], path + (merge[0],), self.value_name(value, path))
        if len(value) != 1:
            keys = ", ".join(map(str, value))
            self.problem(f"an item has exactly one key, its kind (found {keys}); indent its parameters under it", path)
            return None
        (kind, params), = value.items()
        return self.layer(str(kind), params, path)

    def value_name(self, value: dict, path: SpecPath) -> str | None:
        """The `name:` of an item, which names its output for later items (`from: NAME`)."""
        name = value.get("name")
        if name is None:
            return None
        if isinstance(name, str) and "${" in name:
            self.templated_names = True
            return name
        if not (isinstance(name, str) and NAME.match(name)):
            self.problem(f"name '{name}' must be a plain identifier (letters, digits, _; not starting with a digit)",
                         path + ("name",))
            return None
        self.defined.add(name)
        return name

    def reference(self, name: Any, path: SpecPath) -> RefItem | None:
        if isinstance(name, str) and INTERPOLATION.search(name):  # `from: "y${i}"`: checked when built
            return RefItem(name, path)
        if not isinstance(name, str) or not REFERENCE.match(name):
            self.problem(f"`from:` takes the name of an earlier layer, branch or block of this block "
                         f"(or `{INPUT}`), got {name!r}", path)
            return None
        self.references.append((name, path))
        return RefItem(name, path)

    def sources(self, value: Any, path: SpecPath) -> tuple[str, ...]:
        names = value if isinstance(value, list) else [value]
        refs = [self.reference(n, path) for n in names]
        return tuple(r.name for r in refs if r is not None)

    def loop(self, value: dict, path: SpecPath) -> ForItem | None:
        extra = [k for k in value if k not in ("for", "in", "do")]
        if extra:
            self.problem(f"unknown key '{extra[0]}'{did_you_mean(str(extra[0]), ('for', 'in', 'do'))} in a loop "
                         "(it takes for, in, do)", path + (extra[0],), key=True)
            return None
        var = value["for"]
        if not (isinstance(var, str) and NAME.match(var)) or keyword.iskeyword(var):
            self.problem("`for:` takes the name of the loop variable, e.g. `for: k, in: [3, 5, 7], do: ...`",
                         path + ("for",))
            return None
        if var in self.names:
            self.problem(f"loop variable '{var}' hides a parameter or a name the block knows; choose another",
                         path + ("for",))
            return None
        if "in" not in value or "do" not in value:
            self.problem("a loop needs `in:` (a list, or an expression giving one) and `do:` (the body)", path)
            return None
        values = value["in"]
        if not isinstance(values, list) and not (isinstance(values, str) and INTERPOLATION.fullmatch(values)):
            self.problem("`in:` takes a list such as [3, 5, 7] or one expression such as \"${kernels}\"",
                         path + ("in",))
        self.names.add(var)
        try:
            body = self.body(value["do"], path + ("do",))
        finally:
            self.names.discard(var)
        return ForItem(var, values, body, path)

    def layer(self, kind: str, params: Any, path: SpecPath) -> LayerItem | None:
        from ..layers import layer_kinds, parse_layer

        kinds = layer_kinds()
        if kind not in kinds:
            known = kinds + list(COMBINATORS) + ["block", "if", "for", "from"]
            self.problem(f"unknown layer type '{kind}'{did_you_mean(kind, known)}; known: {', '.join(known)}",
                         path + (kind,), key=True)
            return None
        sources: tuple[str, ...] = ()
        if isinstance(params, dict) and "from" in params:
            params = dict(params)
            sources = self.sources(params.pop("from"), path + (kind, "from"))
            arity = OPS[kind].arity
            if arity is not None and len(sources) != arity:
                self.problem(f"{kind} takes {arity} input(s); `from:` names {len(sources)}", path + (kind, "from"))
        if isinstance(params, dict):
            self.value_name(params, path + (kind,))
        if not _templated(params):
            try:
                parse_layer({kind: params})
            except ValidationError as exc:
                self.validation(exc, {kind: params}, path)
        elif isinstance(params, dict):
            allowed = set(OPS[kind].model_fields)
            for key in params:
                if key not in allowed:
                    hint = bare_key_hint(key, params[key], allowed)
                    self.problem(f"unknown key '{key}'{hint} for {kind}",
                                 path + (kind, key), key=True)
        return LayerItem(kind, params, path + (kind,), sources)

    def merge(self, kind: str, value: Any, path: SpecPath, name: str | None = None) -> MergeItem:
        if kind == "residual":
            return MergeItem(kind, ((None, self.body(value, path)),), path, name)
        if isinstance(value, dict) and "for" in value:
            self.expressions(value.get("in"), path + ("in",))
            loop = self.loop(value, path)
            return MergeItem(kind, loop if loop is not None else (), path, name)
        named: list[tuple[str | None, Any, SpecPath]] = []
        if isinstance(value, dict):
            for branch_name, branch in value.items():
                if not isinstance(branch_name, str) or not NAME.match(branch_name):
                    self.problem(f"branch name '{branch_name}' must be a plain identifier", path + (branch_name,),
                                 key=True)
                else:
                    self.defined.add(branch_name)
                named.append((str(branch_name), branch, path + (branch_name,)))
        elif isinstance(value, list):
            named = [(None, branch, path + (i,)) for i, branch in enumerate(value)]
        if len(named) < 2:
            self.problem(f"{kind} needs at least two branches: a list of bodies, or a mapping name -> body "
                         f"(`{IDENTITY}` is the input itself, a name an earlier value of the block)", path)
        return MergeItem(kind, tuple((n, self.branch(branch, at)) for n, branch, at in named), path, name)

    def branch(self, value: Any, path: SpecPath) -> Any:
        """A branch: `identity` (None), the name of an earlier value (a RefItem), or a body."""
        from ..layers import layer_kinds

        if value == IDENTITY:
            return None
        if isinstance(value, str) and value not in layer_kinds() and value not in COMBINATORS:
            return self.reference(value, path)
        return self.body(value, path)

    def nested_block(self, value: dict, path: SpecPath) -> BlockItem | None:
        family = value["block"]
        if isinstance(family, dict):
            inner = family.get("block", "TYPE")
            self.problem(f"`block:` takes a block type's name; its parameters go beside it, in one mapping: "
                         f"`{{block: {inner}, out: 64, ...}}` (or `- block: {inner}` with the parameters "
                         "indented under the dash)", path + ("block",))
            return None
        if not isinstance(family, str) or family not in self.families:
            known = sorted(self.families)
            self.problem(f"unknown block type '{family}'{did_you_mean(str(family), known)}; known: {', '.join(known)}",
                         path + ("block",))
            return None
        if family == self.block:
            self.problem(f"block '{family}' cannot contain itself", path + ("block",))
            return None
        self.nested.add(family)
        params = {k: v for k, v in value.items() if k not in NESTED_KEYS}
        name = self.value_name(value, path)
        source = self.sources(value["from"], path + ("from",)) if "from" in value else ()
        if len(source) > 1:
            self.problem("a nested block reads one value: `from: NAME`", path + ("from",))
        repeat = value.get("repeat")
        if repeat is not None and not (isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1) \
                and not (isinstance(repeat, str) and INTERPOLATION.fullmatch(repeat)):
            self.problem(f"repeat must be a positive integer, got {repeat!r}", path + ("repeat",))
        return BlockItem(family, params, value.get("stride", 1), name, path, repeat, source[0] if source else None)

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

    def check_references(self) -> None:
        """Every `from:` names a value the block defines somewhere (the order is checked when built)."""
        if self.templated_names:
            return
        known = sorted(self.defined | {INPUT})
        for name, path in self.references:
            short = name.rpartition(".")[2]
            if short not in self.defined and name != INPUT:
                from ..layers import layer_kinds

                hint = did_you_mean(short, known + layer_kinds())
                self.problem(f"'{name}' is neither a layer type nor a name given in this block{hint}; "
                             f"names: {', '.join(known)}", path)

    def expressions(self, value: Any, path: SpecPath) -> None:
        """Check every `${}` directly in this item (not in nested bodies): syntax and names."""
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("then", "else", "do") and k not in COMBINATORS:
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
        from ..problems import problems_from

        self.problems += problems_from(exc, data, self.locator, ("blocks", self.block) + tuple(path))


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


