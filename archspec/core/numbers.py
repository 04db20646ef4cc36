"""Numbers as a spec writes them: `true` and `"3"` are not numbers.

pydantic's lax mode reads `repeat: true` as 1 and `out: "64"` as 64, where the JSON schema (and
any reader of the file) sees a boolean and a string. Its strict mode would refuse those, and also
`out: 64.0`, the value of an expression such as `${width / 2}`, which lax mode takes when it is
whole (and numpy's integers, from Python). `SpecNumbers` keeps those and refuses booleans and text
for every integer, float and literal number a model validates, wherever it sits (`kernel: int |
tuple[int, int]`, `int | None`, a nested model), as one rule for every model that takes it as a
base, so that a new field or a new op cannot forget it. Booleans are `StrictBool` where they are
declared.
"""

from __future__ import annotations

import numbers
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema


_MARK = "archspec.numbers"  # in the metadata of a guarded schema


def _integral(value: Any) -> Any:
    """A whole number of another type than int (numpy's int64), unless it is a boolean or text."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise PydanticCustomError("int_type", "Input should be a valid integer")


def _not_a_boolean(expected: str) -> Any:
    """The check before a literal of numbers (`expected`, as pydantic words them: "1 or 2"): True
    equals 1 in Python, not in a spec."""
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    return check


def _guard(schema: dict) -> core_schema.CoreSchema:
    """An int or float schema that refuses booleans and text in Python input, where it can in
    pydantic's own (compiled) validators. A float's strict form is just that (it takes ints). An
    int's strict form refuses whole floats too, so a float goes on to the lax int schema, with the
    field's constraints (an is-a-float check first, whose error reads as the int's); last, a
    number of another type (numpy's) is made an int in Python. The JSON schema is the plain one's."""
    strict = {**schema, "strict": True}
    if schema["type"] == "float":
        python: Any = strict
    elif schema["type"] == "literal":
        values = [repr(v) for v in schema["expected"]]
        words = " or ".join(values) if len(values) < 3 else f"{', '.join(values[:-1])} or {values[-1]}"
        python = core_schema.no_info_before_validator_function(_not_a_boolean(words), schema)
    else:
        a_float = core_schema.custom_error_schema(core_schema.is_instance_schema(float), custom_error_type="int_type")
        python = core_schema.union_schema(
            [strict, core_schema.chain_schema([a_float, schema]),
             core_schema.no_info_before_validator_function(_integral, schema)], mode="left_to_right")
    return core_schema.json_or_python_schema(json_schema=schema, python_schema=python,
                                             metadata={_MARK: True})


def _numeric_literal(schema: dict) -> bool:
    """A literal whose values include a number and no boolean (a block's `version: 1 | 2`)."""
    expected = schema.get("expected", ())
    return (any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in expected)
            and not any(isinstance(v, bool) for v in expected))


def guarded(schema: Any) -> Any:
    """`schema` (a pydantic core schema) with every int, float and numeric literal schema in it
    guarded (`_guard`). A before-validator's `json_schema_input_schema` only describes the JSON
    schema and is left as it is; a schema already guarded is not guarded twice."""
    if isinstance(schema, list):
        return [guarded(item) for item in schema]
    if not isinstance(schema, dict) or (schema.get("metadata") or {}).get(_MARK):
        return schema
    out = {key: value if key in ("json_schema_input_schema", "metadata") else guarded(value)
           for key, value in schema.items()}
    kind = out.get("type")  # a string in a schema; a model's map of fields may hold a field named "type"
    if isinstance(kind, str) and (kind in ("int", "float") or (kind == "literal" and _numeric_literal(out))):
        return _guard(out)
    return out


class SpecNumbers:
    """A base for pydantic models of what a spec (or a space file) writes: their integers and
    floats refuse booleans and text (see the module's docstring)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return guarded(handler(source))


__all__ = ["SpecNumbers", "guarded"]
