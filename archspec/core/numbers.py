"""Numbers as a spec writes them: `true` and `"3"` are not numbers.

pydantic's lax mode reads `repeat: true` as 1 and `out: "64"` as 64, where the JSON schema (and
any reader of the file) sees a boolean and a string. Its strict mode would refuse those, and also
`out: 64.0`, the value of an expression such as `${width * 2}`, which lax mode takes when it is
whole. `SpecNumbers` keeps lax mode's rules and refuses booleans and text for every integer and
float a model validates, wherever it sits (`kernel: int | tuple[int, int]`, `int | None`, a
nested model), as one rule for every model that takes it as a base, so that a new field or a
new op cannot forget it. Booleans are `StrictBool` where they are declared.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


_MARK = "archspec.numbers"  # in the metadata of a guarded schema


def _guard(schema: dict) -> core_schema.CoreSchema:
    """An int or float schema that refuses booleans and text in Python input, in pydantic's own
    (compiled) validators, no Python function called. A float's strict form is just that (it takes
    ints). An int's strict form refuses whole floats too, so a float goes on to the lax int schema,
    with the field's constraints (an is-a-float check first, whose error reads as the int's). The
    JSON schema is the plain one's."""
    strict = {**schema, "strict": True}
    if schema["type"] == "float":
        python: Any = strict
    else:
        a_float = core_schema.custom_error_schema(core_schema.is_instance_schema(float), custom_error_type="int_type")
        python = core_schema.union_schema([strict, core_schema.chain_schema([a_float, schema])],
                                          mode="left_to_right")
    return core_schema.json_or_python_schema(json_schema=schema, python_schema=python,
                                             metadata={_MARK: True})


def guarded(schema: Any) -> Any:
    """`schema` (a pydantic core schema) with every int and float schema in it guarded (`_guard`).
    A before-validator's `json_schema_input_schema` only describes the JSON schema and is left as
    it is; a schema already guarded is not guarded twice."""
    if isinstance(schema, list):
        return [guarded(item) for item in schema]
    if not isinstance(schema, dict) or (schema.get("metadata") or {}).get(_MARK):
        return schema
    out = {key: value if key in ("json_schema_input_schema", "metadata") else guarded(value)
           for key, value in schema.items()}
    kind = out.get("type")  # a string in a schema; a model's map of fields may hold a field named "type"
    return _guard(out) if isinstance(kind, str) and kind in ("int", "float") else out


class SpecNumbers:
    """A base for pydantic models of what a spec (or a space file) writes: their integers and
    floats refuse booleans and text (see the module's docstring)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return guarded(handler(source))


__all__ = ["SpecNumbers", "guarded"]
