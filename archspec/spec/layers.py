"""The layer notation shared by stem, head, auxiliary heads and layer-list blocks.

A layer is written as a one-key mapping `kind: params`, where params is a mapping,
a scalar for the op's shorthand field (`act: relu`, `dropout: 0.5`,
`linear: 1000`) or nothing (`flatten:`); a bare string (`- flatten`) is the kind
with its defaults. Validation goes through the op's own pydantic model, looked up
in the op registry at validation time, so ops registered by users work too and
errors keep their full location (`stem[0].conv.kernel`).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, create_model
from pydantic_core import PydanticCustomError, core_schema

from ..core import memo
from ..core.errors import did_you_mean
from ..ir.keys import frozen
from ..ir.op import Op
from ..ir.ops import OPS, op_class


@cache
def _wrapper(cls: type[Op]) -> type[BaseModel]:
    """`{conv: Conv}`: validating through it puts the kind into error locations."""
    return create_model(  # type: ignore[call-overload]  # create_model's overloads do not take fields built at run time
        f"{cls.__name__}Layer", __config__=ConfigDict(extra="forbid"), **{cls.kind: (cls, ...)}
    )


_KINDS: tuple[int, list[str]] = (0, [])


def layer_kinds() -> list[str]:
    return list(_kinds())


def _kinds() -> list[str]:
    global _KINDS
    op_class("conv")  # make sure the built-in ops are registered
    if _KINDS[0] != len(OPS):  # ops are only ever added
        _KINDS = (len(OPS), sorted(k for k, c in OPS.items() if c.in_layer_lists))
    return _KINDS[1]


def parse_layer(value: Any) -> Op:
    if isinstance(value, Op):
        return value
    if isinstance(value, str):
        value = {value: None}
    if not isinstance(value, dict) or len(value) != 1:
        if isinstance(value, dict) and not value:
            raise PydanticCustomError("layer", "empty layer; write it as `kind: params`, e.g. `conv: {out: 64, kernel: 3}`")
        if isinstance(value, dict):
            keys = ", ".join(map(str, value))
            # located at the key that is no layer kind where the others are (`out` beside `linear`:
            # a parameter left at the layer's level, often by a --set), else at the layer
            known = set(_kinds())
            strays = [k for k in value if k not in known]
            at_key = strays[0] if len(strays) == len(value) - 1 else None
            raise PydanticCustomError(
                "layer_keys", "a layer has exactly one key, its kind (found {keys}); indent its parameters under the kind",
                {"keys": keys, "at_key": at_key},
            )
        raise PydanticCustomError("layer", "a layer is written `kind: params`, e.g. `conv: {out: 64, kernel: 3}`")
    (kind, params), = value.items()
    try:
        key: tuple | None = (OPS.get(kind), kind, frozen(params))  # the class too: ops can be re-registered
        hit = _PARSED.get(key)
    except TypeError:  # an unhashable value: validation will say what is wrong with it
        key, hit = None, memo.MISS
    if hit is not memo.MISS:
        return hit
    kinds = _kinds()
    if kind not in kinds:
        if kind in OPS:
            raise PydanticCustomError(
                "layer", "'{kind}' merges paths and is only available inside a block definition", {"kind": kind}
            )
        raise PydanticCustomError(
            "unknown_layer",
            "unknown layer type '{kind}'{hint}; known: {known}",
            {"kind": str(kind), "hint": did_you_mean(str(kind), kinds), "known": ", ".join(kinds)},
        )
    op = getattr(_wrapper(OPS[kind]).model_validate({kind: params}), kind)
    if key is not None:
        _PARSED.put(key, op)
    return op


# Layers already validated, by kind and written values: ops are immutable, and a block
# defined in YAML asks for the same layers for every block of every stage (and sample).
_PARSED: memo.Memo[Op] = memo.Memo("spec.layers", 4096)


class _LayerType:
    """Pydantic type hook: a layer validated through the op registry."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(parse_layer)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"$ref": "#/$defs/Layer"}


Layer = Annotated[Op, _LayerType]
LayerList = list[Layer]

