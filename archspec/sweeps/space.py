"""The space file: a base spec, samplers over its keys, constraints on analysed figures.

    extends: regnet_y_400mf         # the base spec: a zoo name or a file (relative to this one)
    samples: 2000                   # networks to keep (that build and meet the constraints)
    seed: 0                         # the same seed gives the same population
    set: {input.size: 160}          # fixed overrides, as --set writes them
    sample:                         # KEY: SAMPLER, KEY as --set writes it (vars.width, stages.0.repeat)
      vars: {regnet: {depth: [12, 28], w_0: [8, 256], w_a: [8, 256], w_m: [2, 3], group_width: [1, 32], stages: 4}}
      vars.se: {choice: [0, 0.25]}
    constraints:                    # FIGURE: {min, max}
      macs: {max: 400M}

It is read with the spec's YAML loader (line:column for every value, the same refusals of
unsafe or malformed YAML) and validated by pydantic, so its mistakes are reported like a
spec's: `space.yaml:7:12: sample.vars.w.int: ...`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from ..core.errors import OVERRIDE_NAME, ArgumentError, Location, Problem, SpecError, did_you_mean
from ..spec.load import from_document
from ..spec.models import NAME_PATTERN
from ..spec.resolve import Locator, apply_overrides, load_document, resolve_loaded
from ..spec.source import Source, parse_text, read_file
from ..spec.problems import problems_from, sort_problems
from .figures import FIGURES, Bounds
from .regnet import RegNet, RegNetParams
from .samplers import Choice, FloatRange, IntRange, StrictModel

SAMPLERS: dict[str, type[StrictModel]] = {"choice": Choice, "int": IntRange, "float": FloatRange, "regnet": RegNet}
MAX_SAMPLES = 1_000_000
DRAWS_PER_SAMPLE = 10  # the default max_draws: samples x this


def parse_sampler(value: Any) -> Any:
    """A sampler mapping, validated by the model its one kind key names."""
    if isinstance(value, tuple(SAMPLERS.values())):
        return value
    kinds = [k for k in SAMPLERS if isinstance(value, dict) and k in value]
    if not isinstance(value, dict) or len(kinds) != 1:
        found = f" (found {', '.join(map(str, value))})" if isinstance(value, dict) and value else ""
        raise PydanticCustomError(
            "sampler", "a sampler is one of {choice: [a, b]}, {int: [low, high]}, {float: [low, high]} or "
                       "{regnet: {...}}{found}", {"found": found})  # pydantic fills {found} only: no escaping
    return SAMPLERS[kinds[0]].model_validate(value)


class _SamplerType:
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(parse_sampler)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"anyOf": [handler(model.__pydantic_core_schema__) for model in SAMPLERS.values()]}


Sampler = Annotated[Any, _SamplerType]


class SpaceModel(StrictModel):
    """A design space: networks drawn from one base spec."""

    extends: str = Field(description="the base spec: a file relative to the space file, or a zoo name")
    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=100,
                             description="prefix of the sampled networks' names (default: the base spec's name)")
    description: str = ""
    samples: int = Field(ge=1, le=MAX_SAMPLES, description="networks to keep: they build and meet the constraints")
    seed: int = Field(default=0, description="the same seed gives the same population")
    max_draws: int | None = Field(default=None, ge=1, description=f"give up after this many draws (default: "
                                                                  f"{DRAWS_PER_SAMPLE} x samples)")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of the base spec, as --set")
    sample: dict[str, Sampler] = Field(min_length=1, description="KEY: SAMPLER, KEY a spec path as --set writes it")
    constraints: dict[str, Bounds] = Field(default_factory=dict,
                                           description="FIGURE: {min, max}; figures: " + ", ".join(FIGURES))


@dataclass
class Space:
    """A loaded space: the model, and the base document (extends merged, `set` applied) that
    every sample starts from, with the locations of its values."""

    model: SpaceModel
    source: str
    base: dict
    locator: Locator

    @property
    def name(self) -> str:
        return self.model.name or str(self.base.get("name", "sample"))

    @property
    def max_draws(self) -> int:
        return self.model.max_draws or DRAWS_PER_SAMPLE * self.model.samples


def load_space(space: str | Path | dict, **changes: Any) -> Space:
    """Read, validate and prepare a space (a path, YAML text or a dict). `changes` replace
    top-level keys (`samples=100`, `seed=3`), as the CLI's options do."""
    source = _source(space)
    data = dict(source.data)
    data.update({k: v for k, v in changes.items() if v is not None})
    locator = Locator.of(source, (source.name,))
    for key, value in changes.items():  # a value given on the command line is blamed on its option
        if value is not None:
            locator.values[(key,)] = Location(f"--{key.replace('_', '-')}")
    constraints = data.get("constraints")
    problems = [locator.problem(f"unknown figure '{name}'{did_you_mean(str(name), FIGURES)}; known: {', '.join(FIGURES)}",
                                ("constraints", name), key=True)
                for name in (constraints if isinstance(constraints, dict) else ()) if name not in FIGURES]
    try:
        model = SpaceModel.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, data, locator, vocabulary=_space_words())
    if not problems:
        problems += _overlaps(model, locator)
    if problems:
        raise SpecError(sort_problems(problems))
    base_source = Source({"extends": model.extends}, source.name, {(): locator.where(()),
                         ("extends",): locator.where(("extends",))}, {("extends",): locator.where(("extends",), key=True)})
    base, base_locator = load_document(base_source)
    _check_vars(model, base, locator)
    if model.set:
        named = OVERRIDE_NAME.set(f"{source.name}: set")  # a bad key is the space file's, not a --set
        try:
            places = {key: locator.where(("set", key), key=True) for key in model.set}  # in the space file
            base = apply_overrides(base, model.set, base_locator, places)
            _check_set(model, base, base_locator)
        finally:
            OVERRIDE_NAME.reset(named)
    _check_sampled_keys(model, base, base_locator, locator)
    return Space(model, source.name, base, base_locator)


def _source(space: str | Path | dict) -> Source:
    if isinstance(space, dict):
        return Source(space, "<space>", {(): Location("<space>")})
    if isinstance(space, Path) or (isinstance(space, str) and "\n" not in space):
        return read_file(space)
    if not isinstance(space, str):
        raise ArgumentError(f"a space is a file name, YAML text or a dict, not {type(space).__name__}")
    return parse_text(space, "<space>")


def _sets(sampler: Any, rest: str) -> bool:
    """Whether the value `sampler` draws at a key K can set K.`rest` (a RegNet mapping sets its own
    entries only; any other value may replace or contain anything below K)."""
    return not isinstance(sampler, RegNet) or rest.split(".")[0] in RegNet.entries()


def _overlaps(model: SpaceModel, locator: Locator) -> list[Problem]:
    """Keys that set the same value: whichever is applied last wins, and the table's column of
    the other says what the network is not. `vars` drawn by RegNet and `vars.se` are fine."""
    problems = []
    keys = list(model.sample)
    if "name" in keys:  # its column would hide the kept network's name
        problems.append(locator.problem("the sweep names each network (NAME_00042); the space's `name:` sets the "
                                        "prefix", ("sample", "name"), key=True))
    for i, key in enumerate(keys):
        for other in keys[:i] + keys[i + 1:]:
            if key.startswith(other + ".") and _sets(model.sample[other], key[len(other) + 1:]):
                problems.append(locator.problem(f"overlaps sample.{other}: both would set {key}", ("sample", key),
                                                key=True))
    for key in model.set:
        for other in keys:
            if key == other or key.startswith(other + "."):  # the sample would overwrite it
                problems.append(locator.problem(f"overlaps sample.{other}: a key is either set or sampled",
                                                ("set", key), key=True))
    return problems


def _check_vars(model: SpaceModel, base: dict, locator: Locator) -> None:
    """A sampled or set `vars.NAME` that the base spec does not have is a typo: nothing would read it
    (nor a RegNet drawn at `vars` when the base spec has none of its vars)."""
    known = base.get("vars") if isinstance(base.get("vars"), dict) else {}
    problems: list[Problem] = []
    for key in model.set:
        parts = key.split(".")
        if parts[0] == "vars" and len(parts) >= 2 and parts[1] not in known:
            problems.append(locator.problem(
                f"the base spec has no var '{parts[1]}'{did_you_mean(parts[1], known)}"
                f"{'; its vars: ' + ', '.join(known) if known else ''}", ("set", key), key=True))
    for key, sampler in model.sample.items():
        if key == "vars" and isinstance(sampler, RegNet) and not set(RegNet.entries()) & set(known):
            problems.append(locator.problem(
                f"the base spec has none of the vars a RegNet draw sets ({', '.join(RegNet.entries())}), so every "
                f"draw would be the same network{'; its vars: ' + ', '.join(known) if known else ''}",
                ("sample", key), key=True))
        parts = key.split(".")
        if parts[0] == "vars" and len(parts) >= 2 and parts[1] not in known:
            problems.append(locator.problem(
                f"the base spec has no var '{parts[1]}'{did_you_mean(parts[1], known)}"
                f"{'; its vars: ' + ', '.join(known) if known else ''}", ("sample", key), key=True))
    if problems:
        raise SpecError(problems)


def _check_set(model: SpaceModel, base: dict, base_locator: Locator) -> None:
    """The base spec with `set` applied, validated once: a key of `set` that no spec has (`input.sise`)
    or a value it refuses is the space file's mistake, said where it is written, not as the reason
    every sample is rejected. Problems elsewhere are left to the samples (which may fix them)."""
    problems = [p for p in _problems(base, base_locator, None) if any(_related(p.path, key) for key in model.set)]
    if problems:
        raise SpecError(problems)


PROBES = 8  # draws tried at load time for sampled keys that no spec has (`_check_sampled_keys`)


def _check_sampled_keys(model: SpaceModel, base: dict, base_locator: Locator, locator: Locator) -> None:
    """A sampled key that no spec has (`stages.0.repet`, `foo.bar`), or that names no item (`stages.9`),
    makes every sample invalid: refused at load time, where it is written. Tried on `PROBES` draws of
    their own (the sweep's sequence is not touched); a key counts only where it fails in every one, so
    a key that one value of another sampler makes known (a block type's parameter, under a sampled
    `block:`) is not refused."""
    rng = random.Random(model.seed)
    unknown: dict[str, str] | None = None
    for _ in range(PROBES):
        values = {key: sampler.draw(rng) for key, sampler in model.sample.items()}
        named = OVERRIDE_NAME.set("sample")
        try:
            found = {key: p.message for p in _problems(base, base_locator, values)
                     if p.message.startswith(("unknown key", "cannot set"))
                     for key in model.sample if _related(p.path, key)}
        finally:
            OVERRIDE_NAME.reset(named)
        unknown = found if unknown is None else {k: m for k, m in unknown.items() if k in found}
        if not unknown:
            return
    if unknown:
        raise SpecError(sort_problems([locator.problem(f"every trial draw fails at this key: {message}", ("sample", key),
                                                       key=True) for key, message in unknown.items()]))


def _problems(base: dict, base_locator: Locator, values: dict[str, Any] | None) -> list[Problem]:
    """The problems of the base spec with `values` applied (none where it validates)."""
    try:
        from_document(resolve_loaded(base, base_locator, values))
    except SpecError as exc:
        return list(exc.problems)
    return []


def _related(path: tuple, key: str) -> bool:
    """Whether a problem at `path` is about what the override `key` (dotted, as --set writes it)
    wrote: the key itself, a key above it that no spec has, or a value inside it."""
    parts, written = [str(p) for p in path], key.split(".")
    n = min(len(parts), len(written))
    return n > 0 and parts[:n] == written[:n]


@lru_cache(maxsize=1)
def _space_words() -> tuple[str, ...]:
    """The keys a space file may hold: the pool for "did you mean" on its unknown keys."""
    words = set(SAMPLERS) | set(Bounds.model_fields) | set(RegNetParams.model_fields)
    models: list[type[StrictModel]] = [SpaceModel, *SAMPLERS.values()]
    for model in models:
        words.update(model.model_fields)
    return tuple(sorted(words))


def space_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a space file, generated from `SpaceModel`."""
    from ..spec.schema import DIALECT

    schema = SpaceModel.model_json_schema()
    return {"$schema": DIALECT, **schema, "title": "archspec design space",
            "description": "A design space for `archspec sweep` (docs/sweeps.md). Generated from archspec's models "
                           "by tools/gen_schema.py; do not edit by hand."}


def space_schema_text() -> str:
    """The schema as the file `schemas/archspec-space.schema.json` holds it."""
    import json

    return json.dumps(space_schema(), indent=2) + "\n"
