"""JSON Schema of the spec language, generated from the pydantic models and the registries.

Editors use it to complete and check specs (`# yaml-language-server: $schema=...`). It is
generated, never written by hand: `SpecModel` gives the top level, every registered op
gives a layer form and every registered block family gives a stage form, so ops and
families added later appear without touching this module.

The schema describes what a file may contain, before resolving. So, unlike the models:

* any value may instead be a `${...}` expression (substituted before validation);
* a spec with `extends` needs no `name` (its parent has one);
* stages of a spec that defines its own `blocks:`, or extends one that may, can name
  block types that are not registered.

A field whose `mode="before"` validator accepts more forms than its type declares (an
int for a square size) states them with `json_schema_input_type`, as pydantic intends.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from .list_edits import EDITABLE_LISTS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
INTERPOLATION = {
    "type": "string",
    "pattern": r"\$\{[^{}]*\}",
    "description": "A ${...} expression, replaced by its value before validation, e.g. ${num_classes}.",
}
_HOISTED = ("title", "description", "default")


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file."""
    from .families import load_builtin_blocks
    from ..ir.ops import OPS
    from .layers import layer_kinds
    from .models import SpecModel, part_model, stage_model

    kinds = layer_kinds()
    families = dict(sorted(load_builtin_blocks().items()))
    inputs: list[tuple[Any, str, Any]] = [("spec", "validation", SpecModel.__pydantic_core_schema__)]
    inputs += [(("op", k), "validation", OPS[k].__pydantic_core_schema__) for k in kinds]
    parts = families  # any block type can be a part
    families = {f: c for f, c in families.items() if c.inputs[0] == 1}  # a stage passes one value
    inputs += [(("block", f), "validation", stage_model(c).__pydantic_core_schema__) for f, c in families.items()]
    inputs += [(("part", f), "validation", part_model(c).__pydantic_core_schema__) for f, c in parts.items()]
    refs, defs = GenerateJsonSchema(ref_template="#/$defs/{model}").generate_definitions(inputs)

    spec = defs.pop("SpecModel")
    for definition in [spec, *defs.values()]:  # before the hand-made definitions below: their `if`s stay exact
        _allow_interpolation(definition)
    for family, cls in families.items():
        stage_def = defs[_name(refs[(("block", family), "validation")])]
        if cls.__doc__:
            stage_def["description"] = inspect.cleandoc(cls.__doc__)
    defs["LayerMapping"] = _layer_mapping(kinds, refs, defs)
    defs["Layer"] = {
        "description": "A layer: `kind: params` (a mapping, the kind's shorthand value, or nothing), "
                       "or the bare kind as a string (`- flatten`).",
        "anyOf": [{"$ref": "#/$defs/LayerMapping"}, {"type": "string", "enum": kinds}],
    }
    defs["Stage"] = _stage(families, refs)
    defs["StageOrUserBlock"] = {
        "description": "A stage, or a stage of a block type the spec (or its parent) defines under `blocks:`.",
        "anyOf": [
            {"$ref": "#/$defs/Stage"},
            {"type": "object", "required": ["block"],
             "properties": {"block": {"type": "string", "not": {"enum": list(families)}}}},
        ],
    }
    defs["Part"] = _part(parts, refs)
    defs["Interpolation"] = dict(INTERPOLATION)
    return _top_level(spec, defs)


def _part(parts: dict[str, Any], refs: dict) -> dict[str, Any]:
    """A neck or head: `block: TYPE` selects the part family's model."""
    return {
        "description": "A neck, decoder or head: `{block: TYPE, in: [SOURCES], ...the block's parameters}`.",
        "type": "object", "required": ["block", "in"],
        "properties": {"block": {"type": "string", "description": "The block type (built-in, or the spec's own)."}},
        "allOf": [{"if": {"properties": {"block": {"const": f}}, "required": ["block"]},
                   "then": refs[(("part", f), "validation")]} for f in parts],
    }


def _name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def _layer_mapping(kinds: list[str], refs: dict, defs: dict) -> dict[str, Any]:
    """`{conv: {...}}`, `{act: relu}`, `{flatten: null}`: one key, a layer kind."""
    from ..ir.ops import OPS

    properties: dict[str, Any] = {}
    for kind in kinds:
        cls = OPS[kind]
        ref = refs[(("op", kind), "validation")]
        forms: list[dict[str, Any]] = [ref]
        if cls.shorthand is not None:
            field = dict(defs[_name(ref)]["properties"][cls.shorthand])
            for key in _HOISTED:
                field.pop(key, None)
            forms.append(field)
        forms.append({"type": "null"})
        doc = inspect.cleandoc(cls.__doc__) if cls.__doc__ else kind
        if cls.shorthand is not None:
            doc += f"\n\nShorthand: `{kind}: VALUE` sets `{cls.shorthand}`."
        properties[kind] = {"description": doc, "anyOf": [*forms, {"$ref": "#/$defs/Interpolation"}]}
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


def _stage(families: dict[str, Any], refs: dict) -> dict[str, Any]:
    """A stage: `block: TYPE` selects the family's stage model; a single layer is a stage too."""
    dispatch = [
        {"if": {"properties": {"block": {"const": family}}, "required": ["block"]},
         "then": refs[(("block", family), "validation")]}
        for family in families
    ]
    return {
        "description": "A stage: `{block: TYPE, repeat: N, stride: S, ...the family's parameters}`, "
                       "or a single layer such as `maxpool: {kernel: 3, stride: 2}`.",
        "if": {"type": "object", "required": ["block"]},
        "then": {
            "properties": {"block": {"anyOf": [{"enum": list(families)}, {"$ref": "#/$defs/Interpolation"}],
                                     "description": "The block type: " + ", ".join(families) + "."}},
            "allOf": dispatch,
        },
        "else": {"$ref": "#/$defs/LayerMapping"},
    }


def _wrap(schema: Any) -> Any:
    """`schema`, or a `${...}` expression standing for a value of it."""
    if not isinstance(schema, dict) or schema.get("$ref") == "#/$defs/Interpolation":
        return schema
    inner = {k: v for k, v in schema.items() if k not in _HOISTED}
    if not inner:  # no constraint at all: anything goes already
        return schema
    outer = {k: schema[k] for k in _HOISTED if k in schema}
    outer["anyOf"] = [inner, {"$ref": "#/$defs/Interpolation"}]
    return outer


def _allow_interpolation(schema: Any) -> None:
    """Let every value position (properties, items, additionalProperties) take a `${...}` expression."""
    if isinstance(schema, list):
        for item in schema:
            _allow_interpolation(item)
        return
    if not isinstance(schema, dict):
        return
    for value in schema.values():
        _allow_interpolation(value)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: _wrap(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        schema["items"] = _wrap(schema["items"])
    if isinstance(schema.get("prefixItems"), list):
        schema["prefixItems"] = [_wrap(v) for v in schema["prefixItems"]]
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _wrap(schema["additionalProperties"])


def _top_level(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    required = [k for k in spec.pop("required", []) if k != "name"]
    out: dict[str, Any] = {"$schema": DIALECT}
    out.update(spec)
    out["title"] = "archspec spec"
    out["description"] = ("An archspec architecture spec (YAML). Generated from archspec's models by "
                          "tools/gen_schema.py; do not edit by hand.")
    if required:
        out["required"] = required
    # `name` may come from the parent spec.
    out["anyOf"] = [{"required": ["name"]}, {"required": ["extends"]}]
    # Stages may name user-defined block types only where `blocks:` may define them.
    out["if"] = {"anyOf": [{"required": ["blocks"]}, {"required": ["extends"]}]}
    out["then"] = {"properties": {"stages": {"items": {"$ref": "#/$defs/StageOrUserBlock"}}}}
    out["else"] = {"properties": {"stages": {"items": {"$ref": "#/$defs/Stage"}}}}
    out["properties"]["stages"] = {
        k: v for k, v in out["properties"]["stages"].items() if k in _HOISTED
    } | {"anyOf": [{"type": "array"}, {"$ref": "#/$defs/Interpolation"}]}
    _allow_list_edits(out)
    out["$defs"] = dict(sorted(defs.items()))
    return out


def _allow_list_edits(out: dict[str, Any]) -> None:
    """With `extends`, a mapping where the parent has a list edits items of it (`stages: {2: {repeat: 27}}`)."""
    edits = {"type": "object", "description": "with `extends`: changes to items of the parent's list, each "
             "selected by index or by name (`stages: {denseblock3: {repeat: 32}}`)"}
    for key in EDITABLE_LISTS:
        out["properties"][key] = {"anyOf": [out["properties"][key], edits]}
    out["allOf"] = [{"if": {"not": {"required": ["extends"]}},
                     "then": {"properties": {key: {"not": {"type": "object"}} for key in EDITABLE_LISTS}}}]


def schema_text() -> str:
    """The schema as the file `schemas/archspec.schema.json` holds it."""
    import json

    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"
