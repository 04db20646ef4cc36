"""Python export: one class for several graphs. Blocks of a family whose plans differ only in
constructor values and in left-out steps share a class (`design_class`); the values become its
arguments and the left-out steps `None` modules or flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.naming import identifier, unique
from ...ir.graph import INPUT
from ..plan import FunctionStep, GraphPlan, ModuleStep, Step

from .names import CHANNEL_ARGUMENTS, RESERVED_NAMES


# -- one class for several graphs --------------------------------------------------------------------------------
def step_key(step: Step) -> tuple:
    """What must agree for two steps to be written by the same line of code."""
    if isinstance(step, FunctionStep):
        return ("function", step.call.target, step.call.style, tuple(sorted(step.call.kwargs.items())), step.inplace,
                len(step.inputs))
    return ("module", step.call is None,
            tuple((n, c.target, len(c.args), tuple(sorted(c.arguments()))) for n, c in step.calls))


def _slots(step: ModuleStep) -> dict[tuple[str, str], Any]:
    """(child, argument) -> value, for every constructor argument of the step."""
    out: dict[tuple[str, str], Any] = {}
    for child, call in step.calls:
        for key, value in (call.positional() | call.arguments()).items():
            out[(child, key)] = value
    return out


@dataclass
class Member:
    """One graph that the class builds: its plan and its steps by name."""

    plan: GraphPlan
    in_channels: int
    out_channels: int
    by_name: dict[str, int] = field(default_factory=dict)
    inputs: int = 1  # a part reads several

    def __post_init__(self) -> None:
        self.by_name = {s.name: i for i, s in enumerate(self.plan.steps)}

    def input_names(self, step: Step) -> list[str | None]:
        return [_ref(self.plan, i) for i in step.inputs]

    @property
    def output_names(self) -> list[str | None]:
        """A part's named outputs (a neck's levels), in order; empty for a graph with one output."""
        return [_ref(self.plan, i) for i in self.plan.outputs]

    @property
    def output_name(self) -> str | None:
        return None if self.plan.output == INPUT else self.plan.steps[self.plan.output].name


def _ref(plan: GraphPlan, index: int) -> str | None:
    """A value by name: a step's, None for the class input, `<input1>`... for a part's further inputs."""
    if index >= 0:
        return plan.steps[index].name
    return None if index == INPUT else f"<input{INPUT - index}>"


def _is_input(ref: str | None) -> bool:
    return ref is None or ref.startswith("<input")


class _Absent:
    """A member without the step that holds a value (unlike None, which is a value)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass
class Argument:
    name: str
    slots: list[tuple[str, str, str]]  # (step, child, argument)
    values: list[Any]  # per member; ABSENT where the member lacks every slot of it
    flag: str | None = None  # the optional step this flag switches

    @property
    def optional(self) -> bool:
        """An argument of a step that some members leave out: it defaults to None."""
        return self.flag is None and any(v is ABSENT for v in self.values)


@dataclass
class ClassDesign:
    name: str
    members: list[Member]
    order: list[str]  # step names in execution order
    steps: dict[str, Step]  # a representative of each step (the first member that has it)
    inputs: dict[str, list[str | None]]  # each step's inputs, by name (None: the class input)
    output: str | None
    optional: set[str]
    arguments: list[Argument]
    constants: dict[tuple[str, str, str], Any]


def _union_order(members: Sequence[Member]) -> list[str]:
    order: list[str] = []
    for m in members:
        previous = None
        for step in m.plan.steps:
            if step.name not in order:
                order.insert(order.index(previous) + 1 if previous else 0, step.name)
            previous = step.name
    return order


def design_class(name: str, members: list[Member]) -> ClassDesign | None:
    """One class writing every member, or None when their wiring differs beyond left-out steps."""
    order = _union_order(members)
    position = {n: i for i, n in enumerate(order)}

    def latest(refs: set[str | None]) -> str | None:  # the most specific of the members' inputs
        return max(refs, key=lambda r: -1 if _is_input(r) else position[r])

    steps: dict[str, Step] = {}
    seen: dict[str, list[list[str | None]]] = {}
    for m in members:
        for step in m.plan.steps:
            if step.name not in steps:
                steps[step.name] = step
            elif step_key(step) != step_key(steps[step.name]):
                return None
            seen.setdefault(step.name, []).append(m.input_names(step))
    inputs = {n: [latest(set(refs)) for refs in zip(*seen[n])] for n in order}
    if any(not _is_input(i) and position[i] >= position[n] for n in order for i in inputs[n]):
        return None
    optional = {n for n in order if any(n not in m.by_name for m in members)}
    for n in optional:
        if isinstance(steps[n], ModuleStep) and len(inputs[n]) != 1:
            return None

    def resolve(m: Member, ref: str | None) -> str | None:
        while not _is_input(ref) and ref not in m.by_name:
            ref = inputs[ref][0]
        return ref

    output = latest({m.output_name for m in members})
    for m in members:
        if resolve(m, output) != m.output_name:
            return None
        for step in m.plan.steps:
            if [resolve(m, i) for i in inputs[step.name]] != m.input_names(step):
                return None
        # The class runs and registers steps in the merged order: each member's own order must
        # survive (dropout draws, state_dict keys), containers included (`se.fc1` under `se`).
        if [position[s.name] for s in m.plan.steps] != sorted(position[s.name] for s in m.plan.steps):
            return None
        if _registrations(order, steps, set(m.by_name)) != _registrations(
                [s.name for s in m.plan.steps], steps, set(m.by_name)):
            return None
    arguments, constants = _arguments(members, order, steps, optional)
    return ClassDesign(name, members, order, steps, inputs, output, optional, arguments, constants)


def _registrations(order: Sequence[str], steps: dict[str, Step], present: set[str]) -> list[str]:
    """Module paths in the order a class writing `order` registers them for a member with the
    steps `present`: a container when its first module step comes (present or not: a left-out
    step is still set to None inside it), a module when it is present."""
    out: list[str] = []
    for name in order:
        if not isinstance(steps[name], ModuleStep):
            continue
        parts = name.split(".")
        for k in range(1, len(parts)):
            if ".".join(parts[:k]) not in out:
                out.append(".".join(parts[:k]))
        if name in present:
            out.append(name)
    return out


def _arguments(members: list[Member], order: list[str], steps: dict[str, Step],
               optional: set[str]) -> tuple[list[Argument], dict[tuple[str, str, str], Any]]:
    """Constructor values: constant ones stay literals; varying ones become arguments,
    one per group of slots that hold equal values wherever they exist.

    The block's input and output widths are groups from the start, so that a slot
    holding them in some blocks only (the conv of an optional expansion) still joins
    `in_channels`; steps every member has are grouped before optional ones.
    """
    constants: dict[tuple[str, str, str], Any] = {}
    seeded = [Argument("in_channels", [], [m.in_channels for m in members]),
              Argument("out_channels", [], [m.out_channels for m in members])]
    groups: list[Argument] = list(seeded)
    for name in sorted((n for n in order if isinstance(steps[n], ModuleStep)), key=lambda n: n in optional):
        per_member: list[dict[tuple[str, str], Any] | None] = [
            _slots(m.plan.steps[m.by_name[name]]) if name in m.by_name else None for m in members]  # type: ignore[arg-type]  # a step in by_name is a ModuleStep here (filtered above)
        keys = next(s for s in per_member if s is not None)
        for child, arg in keys:
            values = [ABSENT if s is None else s[(child, arg)] for s in per_member]
            defined = [v for v in values if v is not ABSENT]
            if all(v == defined[0] and type(v) is type(defined[0]) for v in defined):
                constants[(name, child, arg)] = defined[0]
                continue
            for group in groups:
                if all(v is ABSENT or (g is not ABSENT and g == v and type(g) is type(v))
                       for v, g in zip(values, group.values)):
                    group.slots.append((name, child, arg))
                    break
            else:
                groups.append(Argument("", [(name, child, arg)], values))
    groups = [g for g in groups if g.slots]
    _name_arguments([g for g in groups if g not in seeded], {g.name for g in groups if g in seeded} | RESERVED_NAMES)
    position = {n: i for i, n in enumerate(order)}
    groups.sort(key=lambda g: (g not in seeded, min(position[slot[0]] for slot in g.slots)))
    flags = [Argument(identifier(n), [], [n in m.by_name for m in members], flag=n) for n in order if n in optional]
    taken = {a.name for a in groups} | RESERVED_NAMES
    attributes = {n.split(".")[0] for n in order}  # a function step's flag is an attribute too
    for f in flags:
        if isinstance(steps[f.flag], FunctionStep):
            f.name = unique(f"use_{f.name}", taken | attributes)
        elif f.name in taken:
            f.name = unique(f"use_{f.name}", taken)
        taken.add(f.name)
    always = [a for a in groups if not a.optional]
    return always + flags + [a for a in groups if a.optional], constants


# Arguments that keep their own name when only one group holds them.
PLAIN_ARGUMENTS = ("stride", "kernel_size", "padding", "dilation", "groups")


def _name_arguments(groups: list[Argument], taken: set[str]) -> None:
    """A width is named after the first layer that produces it (`conv1_channels`); a
    stride, kernel or padding keeps its name when it is the only one; else step_argument."""
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.slots[0][2]] = counts.get(g.slots[0][2], 0) + 1
    for g in groups:
        producer = next(((step, arg) for step, _, arg in g.slots if arg in CHANNEL_ARGUMENTS), None)
        step, child, arg = g.slots[0]
        if producer:
            name = f"{producer[0]}_{CHANNEL_ARGUMENTS[producer[1]]}"
        elif arg in PLAIN_ARGUMENTS and counts[arg] == 1:
            name = arg
        else:
            name = "_".join(p for p in (step, child, arg) if p)
        g.name = unique(identifier(name), taken)
        taken.add(g.name)


