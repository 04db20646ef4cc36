"""Compound scaling: one width and one depth multiplier applied to any spec.

Channel counts (the fields each op or family lists in `channel_fields`) become
`make_divisible(c * width, divisor)` and depths (the fields a family lists in
`depth_fields`: the stage's `repeat` unless it says otherwise) become `ceil(d * depth)`,
exactly as torchvision's EfficientNet builder rounds them. Widths a family derives
inside a block (an expansion, a squeeze) follow from the scaled channels it receives.
Linear layers (the classifier) are not scaled. The multipliers live outside the
network definition, so `efficientnet_b3.yaml` is b0 plus three numbers.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from ..core import memo
from ..ir.op import Op
from .expr import make_divisible
from .models import ScaleSpec, SpecModel


def _scale_op(op: Op, scale: ScaleSpec) -> Op:
    fields = type(op).channel_fields
    if not fields:
        return op
    return op.model_copy(update={f: make_divisible(getattr(op, f) * scale.width, scale.divisor) for f in fields})


class ScaledStageError(Exception):
    """A stage whose scaled values its block type refuses (`out: 21` where it needs an even number):
    the stage's index and pydantic's error, located by the caller (`spec.load.from_document`)."""

    def __init__(self, index: int, error: ValidationError):
        super().__init__(str(error))
        self.index, self.error = index, error


def _scale_stage(stage: Any, scale: ScaleSpec, index: int) -> Any:
    update: dict[str, Any] = {f: math.ceil(getattr(stage, f) * scale.depth) for f in type(stage).depth_fields}
    for f in type(stage).channel_fields:
        value = getattr(stage, f)
        if isinstance(value, int):
            update[f] = make_divisible(value * scale.width, scale.divisor)
    layers = stage.__dict__.get("layers")  # a field's value (hasattr on a model costs an exception when absent)
    if isinstance(layers, list):
        update["layers"] = [_scale_op(op, scale) if isinstance(op, Op) else op for op in layers]
        key = None
    else:  # whole numbers alone: the same stage scaled to the same numbers is the same model (it is frozen)
        key = (id(stage), *update.items())
        hit = _SCALED.get(key, stage)
        if hit is not memo.MISS:
            return hit
    # validated again, not copied: the scaled values meet the block type's own rules (a multiple of 2,
    # a width its expansion divides) as written ones do
    try:  # a model's __dict__ holds its fields' values
        scaled = type(stage).model_validate({**stage.__dict__, **update})
    except ValidationError as exc:
        raise ScaledStageError(index, exc) from None
    return scaled if key is None else _SCALED.put(key, scaled, stage)


# Scaled stages by the stage (its identity: validated stages are shared, spec.models._STAGES) and the
# numbers scaling gave it: a compound-scaling sweep meets each stage at a few dozen (depth, width)
# roundings, not at each sample's multipliers.
_SCALED: memo.Memo[Any] = memo.Memo("spec.scaled_stages", 4096)


def apply_scaling(spec: SpecModel) -> SpecModel:
    scale = spec.scale
    if scale is None or (scale.width == 1.0 and scale.depth == 1.0):
        return spec
    return spec.model_copy(
        update={
            "stem": [_scale_op(op, scale) for op in spec.stem],
            "stages": [_scale_stage(s, scale, i) for i, s in enumerate(spec.stages)],
            "head": [_scale_op(op, scale) for op in spec.head],
        }
    )
