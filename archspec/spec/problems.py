"""Pydantic validation errors as located problems: one per place, in reading order, with suggestions."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.errors import Problem, SpecPath, bare_key_hint, did_you_mean
from .models import INIT_SCHEME_PATTERN, INIT_SCHEMES, NAME_PATTERN, PART_NAME_PATTERN, SpecModel
from .resolve import Locator

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


# Custom errors raised for a whole stage that are about one of its keys: point at that key.
_ERROR_KEYS = {"unknown_block": "block", "stride": "stride"}
MAX_SHOWN_PER_PATH = 3
MAX_PROBLEMS = 200  # problem locations worked out in full; the rest are only counted


def _count(n: object, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    """Every key any model accepts: the pool for "did you mean" on unknown keys."""
    from .families import load_builtin_blocks
    from ..ir.ops import OPS, op_class
    from .models import AuxHeadSpec, Defaults, InitRule, InitSpec, InputSpec, ScaleSpec, StageFields

    op_class("conv")
    models: list[type[BaseModel]] = [SpecModel, InputSpec, Defaults, ScaleSpec, InitRule, InitSpec, AuxHeadSpec,
                                     StageFields]
    models += list(OPS.values()) + list(load_builtin_blocks().values())
    words = set(OPS)
    for model in models:
        words.update(model.model_fields)
    return tuple(sorted(words))


def _clean_path(loc: tuple, data: Any) -> SpecPath:
    """Drop the parts of a pydantic location that are not in the data (union member tags)."""
    path: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif i == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key
        elif part == "layers" and isinstance(node, dict) and "layers" not in node:
            # a stage written as one layer: stages[i].layers[0].maxpool -> stages[i].maxpool
            node = [node]
        else:
            continue
    return tuple(path)


def _message(err: dict, path: SpecPath, words: tuple[str, ...] = (), vocabulary: tuple[str, ...] | None = None) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {}) or {}
    got = err.get("input")
    shown = repr(got) if isinstance(got, str) else str(got).lower() if isinstance(got, bool) else got
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        pool = _vocabulary() if vocabulary is None else vocabulary
        return f"unknown key '{key}'{bare_key_hint(key, got, pool + words)}"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}, got {shown}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}, got {shown}"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}, got {shown}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}, got {shown}"
    if kind == "less_than":
        return f"must be < {ctx.get('lt')}, got {shown}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        # words are quoted ("'same'"), numbers are not ("1 or 2")
        options = re.findall(r"'([^']*)'", expected) or [o for o in re.split(r", | or ", expected) if o]
        hint = did_you_mean(str(got), options) if isinstance(got, str) else ""
        return f"must be one of {', '.join(options)}; got {shown}{hint}"
    if kind in ("too_short", "too_long"):
        if kind == "too_short" and ctx.get("min_length") == 1:
            return "must not be empty"
        items = "character" if ctx.get("field_type") == "Value" else "item"
        if kind == "too_short":
            return f"must have at least {_count(ctx.get('min_length'), items)}, got {ctx.get('actual_length')}"
        return f"must have at most {_count(ctx.get('max_length'), items)}, got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        if pattern == NAME_PATTERN:
            return f"{shown} is not a valid name: use letters, digits and _ . + - (such as 'resnet50')"
        if pattern == PART_NAME_PATTERN:
            return f"{shown} is not a valid part name: use letters, digits and _, not starting with a digit (such as 'fpn')"
        if pattern == INIT_SCHEME_PATTERN:
            return f"unknown init scheme {shown}{did_you_mean(str(got), INIT_SCHEMES)}; known: {', '.join(INIT_SCHEMES)}"
        return f"{shown} does not have the form {pattern}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    for prefix, word in _TYPE_WORDS.items():
        if kind.startswith(prefix + "_"):
            # `sha256: 1234e567` and `name: 2e5` are numbers in YAML: text is quoted
            quote = " (a number in YAML: put it in quotes)" if prefix == "string" and type(got) in (int, float) else ""
            return f"must be {word}, got {shown}{quote}"
    return err["msg"]


def problems_from(exc: ValidationError, data: Any, locator: Locator, prefix: SpecPath = (),
                  words: tuple[str, ...] = (), vocabulary: tuple[str, ...] | None = None) -> list[Problem]:
    """One problem per distinct location; several union-branch messages are joined with "or".
    `words` adds keys (of user-defined blocks) to the suggestions for unknown keys; `vocabulary`
    replaces the spec's keys as their pool (a file of another kind: a space file).

    At most MAX_PROBLEMS locations are worked out (suggestions cost time); see `count_omitted`.
    """
    grouped: dict[SpecPath, list[tuple[str, str]]] = {}
    for err in exc.errors(include_url=False):
        path = _clean_path(tuple(err["loc"]), data)
        if len(grouped) >= MAX_PROBLEMS and prefix + path not in grouped:
            continue
        # the key the problem is about: fixed for some types, named by the error for others (a layer's stray key)
        key = _ERROR_KEYS.get(err["type"]) or (err.get("ctx") or {}).get("at_key")
        if key is not None and isinstance(_at(data, path), dict) and key in _at(data, path):
            path += (key,)
        path = prefix + path
        kind = err["type"]
        if kind in ("int_type", "float_type") and isinstance(err.get("input"), bool):
            kind = "bool_input"  # `padding: true`: that a number is wanted is worth saying beside the words
        grouped.setdefault(path, []).append((kind, _message(err, path, words, vocabulary)))
    problems = []
    for path, items in grouped.items():
        # Prefer a constraint message ("must be >= 1") over the other union branches' type errors;
        # true/false is a choice, as a literal's words are (`dilate: true | false | previous | new`).
        specific = [m for t, m in items if t == "bool_type" or not t.endswith(("_type", "_parsing"))]
        messages = list(dict.fromkeys(specific or [m for _, m in items]))
        key = any(t in ("extra_forbidden", "layer_keys") for t, _ in items)
        problems.append(locator.problem(" or ".join(messages[:MAX_SHOWN_PER_PATH]), path, key=key))
    return sort_problems(problems)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """In reading order: by file, line and column (problems without a line keep their place at the end)."""
    def order(p: Problem) -> tuple:
        loc = p.location
        return (0, loc.file, loc.line, loc.column) if loc and loc.line > 0 else (1, "", 0, 0)

    return sorted(problems, key=order)


def _at(data: Any, path: SpecPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def count_omitted(exc: ValidationError, data: Any, shown: int) -> int:
    """How many distinct problem locations `problems_from` left out."""
    if shown < MAX_PROBLEMS:
        return 0
    return max(0, len({_clean_path(tuple(e["loc"]), data) for e in exc.errors(include_url=False)}) - shown)
