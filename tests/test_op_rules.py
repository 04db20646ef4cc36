"""Every registered op's rules against torch, on the op's own `example`: the output shape, the
parameter and buffer counts of its module, and its receptive field against autograd (the input
pixels whose gradient is non-zero for each output unit, over a batch of random inputs).

The field must cover what every unit reads and be tight: some unit reads the field's first pixel
and some unit its last, per axis (for a sliding window, every unit does). An op that leaves its
receptive field to the default while changing the spatial size is refused, not guessed.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import pytest
import torch

from archspec.backends.torch_module import instantiate, resolve_target
from archspec.core.errors import ArchspecError
from archspec.ir.op import RF, CATEGORIES, FunctionCall, ModuleCall, Op, OpDefaults, Shape, register_op
from archspec.ir.ops import OPS, op_class

WITH_EXAMPLE = sorted(kind for kind, cls in OPS.items() if cls.example is not None)
# The ops whose example maps feature maps; the rest map vectors, where no field is defined.
ON_MAPS = [kind for kind in WITH_EXAMPLE if len(OPS[kind].example[1][0]) == 3]  # type: ignore[index]


def _op(kind: str) -> tuple[Op, list[Shape]]:
    fields, ins = OPS[kind].example  # type: ignore[misc]
    return op_class(kind)(**fields).resolved(OpDefaults()), ins


def _runner(op: Op, ins: list[Shape]) -> tuple[Any, torch.nn.Module | None]:
    """The op as a function of its input tensors, with its module (None for a function)."""
    call = op.torch(ins)
    if isinstance(call, ModuleCall):
        module = instantiate(call).double().eval()
        return (lambda xs: module(*xs)), module
    assert isinstance(call, FunctionCall)
    fn = resolve_target(call.target)
    if call.style == "list":
        return (lambda xs: fn(list(xs), **call.kwargs)), None
    return (lambda xs: functools.reduce(lambda a, b: fn(a, b, **call.kwargs), xs)), None


@pytest.mark.parametrize("kind", WITH_EXAMPLE)
def test_shape_params_and_buffers_equal_the_module(kind: str) -> None:
    op, ins = _op(kind)
    run, module = _runner(op, ins)
    xs = [torch.randn((2, *s), dtype=torch.float64) for s in ins]
    out = run(xs)
    assert tuple(out.shape[1:]) == op.out_shape(ins), kind
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    buffers = sum(b.numel() for b in module.buffers()) if module is not None else 0
    assert (op.params(ins), op.buffers(ins)) == (params, buffers), kind


def measured(run, ins: list[Shape], unit: tuple[int, int], xs: list[torch.Tensor]) -> tuple | None:
    """((first row, last row), (first col, last col)) of input pixels whose gradient is non-zero
    for output unit `unit` (any channel, any of 32 random samples, any input of the map's grid)."""
    out = run(xs)
    value = out[:, :, unit[0], unit[1]] if out.dim() == 4 else out  # a vector: its one unit
    grads = torch.autograd.grad(value.sum(), xs, allow_unused=True)
    support = None
    for g, s in zip(grads, ins):
        if g is None or len(s) != 3 or s[1:] != ins[0][1:]:
            continue
        here = g.abs().sum((0, 1)) > 0
        support = here if support is None else support | here
    if support is None or not support.any():
        return None
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def analysed(rf: RF, unit: tuple[int, int]) -> tuple:
    """The field's whole pixels for `unit` (a fractional stride after an upsampling puts a
    field's ends between pixels); negative or past the map where it reaches into the padding."""
    return tuple((math.ceil(a), math.floor(b)) for a, b in rf.region(unit))


# Ops over a token sequence (L x D): `measured` reads a map's rows and columns, which a sequence
# lacks; their fields are the tokens' fields (`tokens` sets them, `to_map` hands them back).
ON_TOKENS = ["attention", "class_token", "pos_embed", "select_token", "to_map"]


def test_only_the_linear_layer_has_no_map_to_test_a_field_on() -> None:
    assert sorted(set(WITH_EXAMPLE) - set(ON_MAPS) - set(ON_TOKENS)) == ["linear"]


# More cases than the examples, for the ops with many forms: (kind, fields, input shapes).
MORE = {
    "group_norm": ("norm", {"type": "group", "groups": 2}, [(4, 5, 6)]),
    "conv_transpose_dilated": ("conv_transpose", {"out": 2, "kernel": [3, 2], "stride": [3, 2], "dilation": [2, 1],
                                                  "padding": [2, 0], "output_padding": [1, 0]}, [(2, 4, 5)]),
    "conv_transpose_gaps": ("conv_transpose", {"out": 2, "kernel": 1, "stride": 3}, [(2, 4, 4)]),
    "resize_like": ("resize", {"mode": "bilinear"}, [(2, 4, 5), (3, 9, 7)]),
    "pixel_shuffle_3": ("pixel_shuffle", {"factor": 3}, [(9, 3, 4)]),
    **{f"resize_{mode}_{how}{'_corners' if corners else ''}": (
        "resize", {"mode": mode, **target, **({"align_corners": True} if corners else {})}, [(2, 7, 6)])
       for mode in ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
       for corners in ((False, True) if mode in ("bilinear", "bicubic") else (False,))
       for how, target in (("x2", {"scale": 2}), ("x0.5", {"scale": 0.5}), ("x3x1.5", {"scale": [3, 1.5]}),
                           ("to_11x4", {"size": [11, 4]}))},
}
# Bicubic reads floor(x) - 1 to floor(x) + 2 but gives the outer three zero weight where x is a
# whole number: the rule keeps the four (a cover, not tight) at such points (7 -> 3 pixels with
# align_corners samples x = 0, 3, 6, each alone).
# Shifted window attention reads the whole map (the cyclic shift wraps the far side into the edge
# windows; the mask scales those pairs by e^-100, it does not cut them): the rule gives the map as
# context beside the windows' span, which also reaches past the map's edge, so it covers, not meets.
LOOSE = {"resize_bicubic_x0.5_corners", "window_attention"}
CASES = {kind: (kind, *OPS[kind].example) for kind in ON_MAPS} | MORE  # type: ignore[misc]


@pytest.mark.parametrize("case", sorted(CASES))
def test_receptive_field_covers_and_meets_the_gradient(case: str) -> None:
    kind, fields, ins = CASES[case]
    op = op_class(kind)(**fields).resolved(OpDefaults())
    out_shape = op.out_shape(ins)
    run, _ = _runner(op, ins)
    torch.manual_seed(0)
    xs = [torch.randn((32, *s), dtype=torch.float64, requires_grad=True) for s in ins]
    rf = op.rf([RF()] * len(ins), ins)
    units = [(h, w) for h in range(out_shape[1]) for w in range(out_shape[2])] if len(out_shape) == 3 else [(0, 0)]
    first, last = [False, False], [False, False]
    for unit in units:
        seen = measured(run, ins, unit, xs)
        if seen is None:  # a transposed convolution's unit between two strides' taps reads nothing
            continue
        bound = analysed(rf, unit)
        for a in range(2):
            assert bound[a][0] <= seen[a][0] and seen[a][1] <= bound[a][1], (case, unit, seen, bound, rf)
            first[a] |= seen[a][0] == bound[a][0]  # met inside the map, not merely clipped to it
            last[a] |= seen[a][1] == bound[a][1]
    assert case in LOOSE or first == last == [True, True], (case, rf)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_every_category_has_a_colour(kind: str) -> None:
    assert OPS[kind].category in CATEGORIES


def test_an_op_without_a_category_colour_is_refused() -> None:
    class Tinted(Op):
        kind: ClassVar[str] = "test_tinted"
        category: ClassVar[str] = "mauve"
        depth_layer: ClassVar[bool] = False
        ends_features: ClassVar[bool] = False
        output_overwritable: ClassVar[bool] = False
        init_kind: ClassVar[str | None] = None
        init_skippable: ClassVar[bool] = False
        fused: ClassVar[bool] = False

    with pytest.raises(TypeError, match="category 'mauve' has no diagram colour"):
        register_op(Tinted)
    assert "test_tinted" not in OPS


class Doubled(Op):
    """An upsampling op that forgets its receptive-field rule (not registered)."""

    kind: ClassVar[str] = "test_doubled"
    category: ClassVar[str] = "resize"

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, h, w = ins[0]
        return (c, 2 * h, 2 * w)


def test_an_op_that_changes_the_size_must_state_its_field() -> None:
    with pytest.raises(ArchspecError, match=r"'test_doubled' maps 4x6x6 to 4x12x12 but states no receptive-field"):
        Doubled().rf([RF()], [(4, 6, 6)])
    # a pointwise op (the same size) keeps the default, the union of its inputs' fields
    assert op_class("act")(type="relu").rf([RF((3, 3), (2, 2), (1, 1))], [(4, 6, 6)]) == RF((3, 3), (2, 2), (1, 1))


def test_a_field_made_by_the_walk_equals_and_hashes_as_one_written_out() -> None:
    """A 3x3 stride-2 window, padding 1, on the input's field: size 3, jump 2, padding 1 (hand), as
    `RF(...)` writes it; equal fields find each other as keys (analysis keeps fields by the field fed)."""
    made = RF().window((3, 3), (2, 2), (1, 1))
    written = RF((3, 3), (2, 2), (1, 1))
    assert made == written and hash(made) == hash(written) and {written: "found"}[made] == "found"
    merged = RF.union([made, RF((5, 5), (2, 2), (2, 2))], [(8, 4, 4), (8, 4, 4)])
    assert merged == RF((5, 5), (2, 2), (2, 2)) and hash(merged) == hash(RF((5, 5), (2, 2), (2, 2)))
    assert made != RF((3, 3), (2, 2), (0, 0)) and str(made) == repr(written)
    # a copy for another process carries the fields, not this process's hash (None hashes by address)
    import pickle

    sent = pickle.loads(pickle.dumps(made))
    assert sent == made and "_hash" not in vars(sent) and hash(sent) == hash(made)
