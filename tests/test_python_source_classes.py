"""Unit tests of the Python exporter's class merging (`python_source.classes.design_class`): which
graphs share one generated class, and what becomes its arguments, flags and constants. The
expected designs are worked out by hand from the rule in python_source's docstring: blocks whose
plans differ only in constructor values and left-out steps share a class; any other difference
in wiring, or a merge that would reorder a member's steps or state_dict keys, gives None."""

from __future__ import annotations

from archspec.backends.plan import plan_graph
from archspec.backends.python_source.classes import ABSENT, Member, design_class
from archspec.ir.builder import GraphBuilder
from archspec.ir.graph import Graph
from archspec.ir.op import OpDefaults

DEFAULTS = OpDefaults(norm="batch", activation="relu")


def unit(cin: int, cout: int, stride: int = 1, proj: bool = False, merge: str = "add") -> Graph:
    """conv 3x3 -> relu, plus the input (through a 1x1 projection when `proj`)."""
    b = GraphBuilder((cin, 16, 16), DEFAULTS)
    y = b.act(b.conv(b.input, name="conv", out=cout, kernel=3, stride=stride, padding=1), name="relu")
    skip = b.conv(b.input, name="proj", out=cout, kernel=1, stride=stride) if proj else b.input
    return b.finish(b.op(merge, y, skip, name="merge"))


def members(*graphs: Graph) -> list[Member]:
    return [Member(plan_graph(g), g.in_shape[0], g.out_shape[0]) for g in graphs]


def arguments(design) -> dict[str, tuple]:
    return {a.name: (a.flag, a.values, a.slots) for a in design.arguments}


def test_blocks_differing_in_widths_share_a_class_whose_widths_are_arguments() -> None:
    design = design_class("Unit", members(*(unit(c, 2 * c, merge="concat") for c in (8, 16, 32))))
    assert design is not None
    assert design.order == ["conv", "relu", "merge"] and design.optional == set()
    assert design.inputs == {"conv": [None], "relu": ["conv"], "merge": ["relu", None]}
    # the conv's input width is the block's; its output width (not the block's: the concat adds the
    # input's) is an argument named after the layer that produces it
    assert arguments(design) == {
        "in_channels": (None, [8, 16, 32], [("conv", "", "in_channels")]),
        "conv_channels": (None, [16, 32, 64], [("conv", "", "out_channels")]),
    }
    # where the two are equal in every block, one argument holds both
    same = design_class("Unit", members(unit(8, 8), unit(16, 16)))
    assert same is not None and arguments(same) == {
        "in_channels": (None, [8, 16], [("conv", "", "in_channels"), ("conv", "", "out_channels")])}
    assert design.constants[("conv", "", "kernel_size")] == 3
    assert design.constants[("conv", "", "stride")] == 1


def test_a_step_some_blocks_leave_out_becomes_a_flag() -> None:
    design = design_class("Unit", members(unit(8, 8), unit(8, 16, stride=2, proj=True)))
    assert design is not None
    assert design.order == ["conv", "relu", "proj", "merge"] and design.optional == {"proj"}
    # the merge reads the projection, which passes its input through where it is left out
    assert design.inputs["merge"] == ["relu", "proj"] and design.inputs["proj"] == [None]
    assert arguments(design) == {
        "out_channels": (None, [8, 16], [("conv", "", "out_channels")]),
        "stride": (None, [1, 2], [("conv", "", "stride")]),
        "proj": ("proj", [False, True], []),
    }
    # a value only the projection holds is a constant of the class (one member defines it)
    assert design.constants[("proj", "", "out_channels")] == 16
    assert not any(a.optional for a in design.arguments)


def test_a_value_of_a_left_out_step_that_varies_is_an_optional_argument() -> None:
    design = design_class("Unit", members(unit(8, 8), unit(8, 16, stride=2, proj=True),
                                          unit(8, 32, stride=2, proj=True)))
    assert design is not None
    width = next(a for a in design.arguments if ("proj", "", "out_channels") in a.slots)
    assert width.name == "out_channels"  # the same value as the block's output wherever it exists
    assert width.values == [8, 16, 32]
    assert [a.name for a in design.arguments if a.optional] == []
    kernel_free = design_class("Unit", members(unit(8, 8), unit(8, 16, 2, proj=True), unit(8, 16, 1, proj=True)))
    assert kernel_free is not None
    stride = {a.name: a for a in kernel_free.arguments}["stride"]
    assert stride.values == [1, 2, 1] and ("proj", "", "stride") in stride.slots


def test_a_different_merge_is_another_class() -> None:
    assert design_class("Unit", members(unit(8, 8, merge="add"), unit(8, 8, merge="mul"))) is None


def test_a_merge_that_would_reorder_a_members_steps_is_refused() -> None:
    def two(first: str, second: str) -> Graph:
        b = GraphBuilder((8, 8, 8), DEFAULTS)
        y = b.conv(b.input, name=first, out=8, kernel=1)
        return b.finish(b.conv(y, name=second, out=8, kernel=3, padding=1))

    # the same names in another order: one class would run (and register) them in one order
    assert design_class("Pair", members(two("a", "b"), two("b", "a"))) is None
    assert design_class("Pair", members(two("a", "b"), two("a", "b"))) is not None


def test_absent_is_only_for_members_without_the_step() -> None:
    design = design_class("Unit", members(unit(8, 8), unit(8, 16, stride=2, proj=True)))
    assert design is not None
    flag = {a.name: a for a in design.arguments}["proj"]
    assert ABSENT not in flag.values
