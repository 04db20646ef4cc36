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

from ..ir.op import Op
from .expr import make_divisible
from .models import ScaleSpec, SpecModel


def _scale_op(op: Op, scale: ScaleSpec) -> Op:
    fields = type(op).channel_fields
    if not fields:
        return op
    return op.model_copy(update={f: make_divisible(getattr(op, f) * scale.width, scale.divisor) for f in fields})


def _scale_stage(stage: Any, scale: ScaleSpec) -> Any:
    update: dict[str, Any] = {f: math.ceil(getattr(stage, f) * scale.depth) for f in type(stage).depth_fields}
    for f in type(stage).channel_fields:
        value = getattr(stage, f)
        if isinstance(value, int):
            update[f] = make_divisible(value * scale.width, scale.divisor)
    layers = stage.__dict__.get("layers")  # a field's value (hasattr on a model costs an exception when absent)
    if isinstance(layers, list):
        update["layers"] = [_scale_op(op, scale) if isinstance(op, Op) else op for op in layers]
    return stage.model_copy(update=update)


def apply_scaling(spec: SpecModel) -> SpecModel:
    scale = spec.scale
    if scale is None or (scale.width == 1.0 and scale.depth == 1.0):
        return spec
    return spec.model_copy(
        update={
            "stem": [_scale_op(op, scale) for op in spec.stem],
            "stages": [_scale_stage(s, scale) for s in spec.stages],
            "head": [_scale_op(op, scale) for op in spec.head],
        }
    )
