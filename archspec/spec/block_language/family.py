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
`stage`, `global_index`, `total_blocks`, `dilation` (every field of `BlockContext`). A block
that uses `stride` accepts a stage stride; one that uses `dilation` can trade a stage's stride
for dilation (`output_stride`, `dilate`), its first block taking the dilation its
`first_block_dilation` names. Mistakes are reported where they are written (file:line:column), the static
ones when the spec is validated and the others when the block is built.

A spec's own block may take the name of a registered block type (a built-in family, a
plugin's): inside that spec the name means the spec's definition, as a local name shadows a
global one, so a family added to archspec later cannot break a spec that already used its
name. `archspec validate` notes each such block (`shadowing_notes`).

This module makes the families; `parse` reads and checks a definition, `emit` builds a
block from it.
"""

from __future__ import annotations

import json
import keyword
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError, create_model

from ...core import memo
from ...core.naming import class_name
from ...core.errors import Problem, bare_key_hint, SpecError, SpecPath, did_you_mean, format_path
from ...core.numbers import guarded
from ...ir.builder import GraphBuilder, Value
from .emit import Compiled, Emitter
from .parse import CONTEXT_NAMES, INPUT, NAME, STAGE_KEYS, TYPES, Definition, ParamDecl, Parser
from ..families import BlockContext, BlockFamily, load_builtin_blocks


class CompositeFamily(BlockFamily):
    """Base of the families made from YAML definitions; `compiled` holds the parsed body."""

    reads_input_size: ClassVar[bool] = False  # emits from its channels alone

    compiled: ClassVar[Compiled]

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value | dict[str, Value]:
        compiled = self.compiled
        params = {name: getattr(self, name) for name in compiled.params}
        emitter = Emitter(compiled, b, ctx, params, x.channels)
        # Only a part gives a block several inputs (`inputs` > 1 keeps it out of stages and other
        # blocks), so they are the builder's: the first is `x`.
        for name, value in zip(compiled.inputs, [x, *b.inputs[1:]]):
            emitter.define(name, value)
        out = emitter.body(compiled.body, x)
        if not compiled.outputs:
            return out
        return {name: emitter.read(name, ("outputs", k)) for k, name in enumerate(compiled.outputs)}


# -- building the families of a spec ----------------------------------------------------------

def families_from_spec(defined: Any, locator: Any) -> dict[str, type[BlockFamily]]:
    """The block families of a spec's `blocks:` section; a SpecError lists every problem found."""
    if not isinstance(defined, dict):
        raise SpecError(locator.problem("blocks must map block names to definitions", ("blocks",)))
    same = _SAME.get(id(defined), defined)
    if same is not memo.MISS:
        # The very mapping read before: a sweep resolves one base document again and again and
        # shares its `blocks:` (nothing modifies a document; an override of a block copies it),
        # and a mapping comes from one parse, so its locations are the ones seen then too.
        return dict(same)
    key = json.dumps(defined, sort_keys=True, default=str)
    where = tuple(sorted((format_path(p), str(loc)) for table in (locator.values, locator.keys)
                         for p, loc in table.items() if p[:1] == ("blocks",)))
    families = _families(key, where, _Frozen(defined, locator))
    _SAME.put(id(defined), families, defined)  # keeps `defined` alive, so that its id stands for it
    return dict(families)


_SAME: memo.Memo[Any] = memo.Memo("block_language.families", 16)


def shadowing_notes(defined: Any, locator: Any) -> list[str]:
    """One located line for each block of `defined` (a spec's `blocks:`) named like a registered
    block type, which the spec's definition shadows."""
    if not isinstance(defined, dict):
        return []
    registered = load_builtin_blocks()
    return [str(locator.problem(f"note: this block shadows the block type '{name}' of {cls.__module__}.{cls.__qualname__}; "
                                "the stages of this spec that name it use this definition", ("blocks", name), key=True))
            for name in defined if (cls := registered.get(name)) is not None]


@dataclass(frozen=True)
class _Frozen:
    """Carries the unhashable definitions and locator through the cache, which keys on text."""

    defined: dict = field(hash=False, compare=False)
    locator: Any = field(hash=False, compare=False)


@memo.function("block_language.definitions", 64)
def _families(key: str, where: tuple, frozen: _Frozen) -> tuple[tuple[str, type[BlockFamily]], ...]:
    # Cached on the definitions' text and every location in them, so that validating the same
    # spec again reuses the classes (and the stage models built from them).
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
    from ..problems import problems_from

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
    parser = Parser(name, locator, {str(p) for p in spec.params} | set(CONTEXT_NAMES), known)
    for k, value in enumerate(spec.inputs):
        if value in spec.inputs[:k] or value == INPUT:
            problems.append(locator.problem(f"input '{value}' is named twice" if value != INPUT else
                                            f"'{INPUT}' is the first input's name already; name the inputs others",
                                            at + ("inputs", k)))
    parser.defined.update(spec.inputs)
    body = parser.body(spec.layers, ("layers",))
    parser.references += [(value, ("outputs", k)) for k, value in enumerate(spec.outputs)]
    parser.check_references()
    problems += parser.problems
    # A misspelled use is already reported; "never used" would only repeat it.
    for unused in sorted(set(decls) - parser.uses) if not parser.misspelled else ():
        problems.append(locator.problem(f"parameter '{unused}' is never used in the layers (write ${{{unused}}})",
                                        at + ("params", unused), key=True))
    if "first_block_dilation" in spec.model_fields_set and "dilation" not in parser.uses:
        problems.append(locator.problem("first_block_dilation is for a block that reads ${dilation}; "
                                        "its layers never do", at + ("first_block_dilation",), key=True))
    if len(problems) > before:
        return None
    compiled = Compiled(name, body, tuple(decls), locator, {}, tuple(spec.inputs), tuple(spec.outputs))
    family = create_model(
        class_name(name),
        __base__=CompositeFamily,
        __doc__=spec.doc or f"Block '{name}', defined in YAML.",
        **fields,
    )
    family.family = name
    family.compiled = compiled
    family.strided = "stride" in parser.uses
    family.unstrided_because = ("its layers never use ${stride}; write `stride: \"${stride}\"` on the layer that "
                                "should stride (a stage gives its stride to its first block, 1 to the others)")
    family.channel_fields = tuple(p for p, d in decls.items() if d.channels)
    family.inputs = (max(1, len(spec.inputs)),) * 2
    family.first_block_dilation = spec.first_block_dilation if "dilation" in parser.uses else None
    return family, parser.nested


def _checked(model: type[BaseModel], data: Any, locator: Any, at: SpecPath, problems: list[Problem]) -> Any:
    """`data` validated as `model`, or None with the problems recorded; unknown keys get
    suggestions from the model's own keys."""
    from ..problems import problems_from

    if isinstance(data, dict):
        unknown = [k for k in data if k not in model.model_fields]
        for key in unknown:
            hint = bare_key_hint(key, data[key], model.model_fields)
            problems.append(locator.problem(f"unknown key '{key}'{hint}; "
                                            f"known: {', '.join(model.model_fields)}", at + (key,), key=True))
        if unknown:
            return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, data, locator, at)
        return None


def _adapter(decl: ParamDecl) -> Any:
    """A validator of the parameter's type, numbers as strict as a family's fields (core/numbers.py)."""
    from pydantic import TypeAdapter
    from pydantic_core import SchemaValidator

    return SchemaValidator(guarded(TypeAdapter(decl.annotation()).core_schema))


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
