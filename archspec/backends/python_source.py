"""Code export: a network as standalone, readable PyTorch source that needs only torch.

The source follows the same plans as the torch backend (`plan.py`), so the module it
defines has the compiled module's state_dict keys, in the same order, and computes
the same function. Its shape:

* one class per block type used. The blocks of a family share a class when their
  plans differ only in constructor values (channels, strides, kernels: these become
  the class's arguments) and in steps that some blocks leave out (a projection
  shortcut, an expansion conv, a residual sum: these become `None` modules or
  boolean flags, and a left-out step passes its first input through). Blocks of one
  family whose wiring differs in any other way, or whose own order of steps or of
  module registration a merged class would change, get classes of their own;
* a `Stem`, a `Head` (and an `AuxHead` when there are auxiliary classifiers), a
  `Stage` holding its blocks, and the model class that puts them together;
* the few archspec layers PyTorch lacks (`LayerNorm2d`, `StochasticDepth`, ...),
  copied from `ir/ops/torch_modules.py` when used, and the spec's initialisation (`init_weights`,
  copied from `torch_init.py`, with the rules as two tables).

Nothing here imports torch: writing source needs no weights.
"""

from __future__ import annotations

import ast
import json
import importlib.util
import keyword
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..core.errors import ArchspecError
from ..core.naming import class_name, identifier, unique
from ..ir.graph import INPUT, Graph, Network
from ..ir.op import ModuleCall
from .plan import FunctionStep, GraphPlan, ModuleStep, Step, plan_graph, tap_runs
from .source_format import INDENT, WIDTH, Call, Expr, flat, render

# A width named after the layer that produces it: `conv1_channels`, `fc1_features`.
CHANNEL_ARGUMENTS = {"out_channels": "channels", "num_features": "channels", "out_features": "features"}
BINARY_OPERATORS = {"operator.add": "+", "operator.mul": "*", "operator.sub": "-", "operator.truediv": "/"}
# Names the generated file defines or imports, which no argument, flag or variable may shadow.
RESERVED_NAMES = frozenset({"self", "super", "nn", "torch", "getattr", "OrderedDict", "annotations", "x", "out",
                            "fnmatch", "math", "re", "init_weights", "init_rule", "init_scheme", "INIT_KINDS",
                            "INIT_BY_NAME"})
# The spec's `init` section travels as data plus these functions, copied from torch_init.py.
INIT_FUNCTIONS = ("init_scheme", "init_rule", "init_weights")
# The module of the torch layers that ops name and that are copied in when used.
OP_MODULES = "archspec.ir.ops.torch_modules"


def _class_names(module: str) -> set[str]:
    """The classes a module defines, read from its file without importing it (nor torch)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of {module}")
    with open(spec.origin, encoding="utf-8") as f:
        return {node.name for node in ast.parse(f.read()).body if isinstance(node, ast.ClassDef)}


# Class names taken before any block's: the fixed classes and every layer that may be copied in.
RESERVED_CLASSES = {"Stage", "OrderedDict", "Tensor"} | _class_names(OP_MODULES)


# -- naming the targets ----------------------------------------------------------------------------------------
class Imports:
    """Where each target comes from in the generated file: `torch.nn.Conv2d` -> `nn.Conv2d`;
    an archspec layer, or one from a `--plugin` file (which no other interpreter can import),
    -> its class, copied in (it must be self-contained, as archspec's are); a layer from an
    installed package -> `from package import Name`, aliased if the name is taken."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken  # class names of the generated file
        self.copied: dict[str, str] = {}  # target -> class name
        self.extra: dict[str, str] = {}  # target -> local name
        self.standard: set[str] = set()  # standard-library modules the copied code imports
        self.ordered_dict = False

    def name(self, target: str) -> str:
        module, _, attr = target.rpartition(".")
        if module == "torch.nn":
            return f"nn.{attr}"
        if module in ("torch", "torch.nn.functional"):
            return target
        if module.split(".")[0] == "archspec" or module.startswith("archspec_plugin_"):
            if target not in self.copied and (attr in self.taken - set(RESERVED_CLASSES) or attr in RESERVED_NAMES):
                raise ArchspecError(f"cannot copy layer class {attr} into the file: a generated class has its name")
            self.copied[target] = attr
            return attr
        if target not in self.extra:
            local = attr if attr not in self.taken and attr not in RESERVED_NAMES else unique(f"{attr}_", self.taken)
            self.extra[target] = local
            self.taken.add(local)
        return self.extra[target]

    def header(self) -> list[str]:
        lines = ["from __future__ import annotations", ""]
        standard = [f"import {m}" for m in sorted(self.standard)]
        if self.ordered_dict:
            standard.append("from collections import OrderedDict")
        if standard:
            lines += [*standard, ""]
        lines += ["import torch", "from torch import nn"]
        for target, local in sorted(self.extra.items()):
            module, _, attr = target.rpartition(".")
            lines.append(f"from {module} import {attr}" + (f" as {local}" if local != attr else ""))
        return lines

    def copied_classes(self) -> list[str]:
        return [definition_source(target) for target in sorted(self.copied, key=lambda t: self.copied[t])]


def definition_source(target: str) -> str:
    """The source of a class or function, read from its file without importing it (nor torch)."""
    module, _, name = target.rpartition(".")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of {target}")
    with open(spec.origin, encoding="utf-8") as f:
        text = f.read()
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node) or ""
    raise ValueError(f"{module} defines no class or function {name}")


# -- one class for several graphs --------------------------------------------------------------------------------
def _step_key(step: Step) -> tuple:
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
            elif _step_key(step) != _step_key(steps[step.name]):
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
            _slots(m.plan.steps[m.by_name[name]]) if name in m.by_name else None for m in members]  # type: ignore[arg-type]
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
        if isinstance(steps[f.flag], FunctionStep):  # type: ignore[index]
            f.name = unique(f"use_{f.name}", taken | attributes)
        elif f.name in taken:
            f.name = unique(f"use_{f.name}", taken)
        taken.add(f.name)
    always = [a for a in groups if not _sometimes(a)]
    return always + flags + [a for a in groups if _sometimes(a)], constants


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


# -- writing one class ------------------------------------------------------------------------------------------
def _literal(value: Any) -> str:
    """Source for a constructor value, with strings in double quotes as formatters write them."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


class ClassWriter:
    def __init__(self, design: ClassDesign, imports: Imports, doc: str):
        self.d = design
        self.imports = imports
        self.doc = doc
        self.slot_argument = {slot: a.name for a in design.arguments for slot in a.slots}
        self.flag_of = {a.flag: a.name for a in design.arguments if a.flag}

    def value(self, step: str, child: str, arg: str) -> str:
        key = (step, child, arg)
        return self.slot_argument[key] if key in self.slot_argument else _literal(self.d.constants[key])

    def constructor(self, step: str, child: str, call: ModuleCall) -> Call:
        args = [self.value(step, child, name) for name in call.positional()]
        kwargs = []
        for key in call.arguments():
            text = self.value(step, child, key)
            if key in call.defaults and (step, child, key) not in self.slot_argument and text == _literal(call.defaults[key]):
                continue  # left at its default, in every member
            kwargs.append((key, text))
        return Call(self.imports.name(call.target), args, kwargs)

    def module_expr(self, step: ModuleStep) -> Expr:
        if step.call is not None:
            return self.constructor(step.name, "", step.call)
        return sequential([(n, self.constructor(step.name, n, c)) for n, c in step.children], self.imports)

    # -- __init__ ----------------------------------------------------------------------
    def init_lines(self) -> list[str]:
        params = ["self"] + [f"{a.name}: {_type(a.values)}" + (" = None" if _sometimes(a) else "")
                             for a in self.d.arguments]
        lines = render(Call("def __init__", params), 1, "", " -> None:")
        containers: set[str] = set()
        out = [f"{INDENT * 2}super().__init__()"]
        for name in self.d.order:
            step = self.d.steps[name]
            if isinstance(step, FunctionStep):
                if name in self.d.optional:
                    flag = self.flag_of[name]
                    out.append(f"{INDENT * 2}self.{flag} = {flag}")
                continue
            parents = name.split(".")[:-1]
            for k in range(1, len(parents) + 1):
                path = ".".join(parents[:k])
                if path not in containers:
                    containers.add(path)
                    out += _assign(path, "nn.Module()", 2)
            expr = self.module_expr(step)
            if name in self.d.optional:
                out += _assign(name, "None", 2)
                out.append(f"{INDENT * 2}if {self.flag_of[name]}:")
                out += _assign(name, expr, 3)
            else:
                out += _assign(name, expr, 2)
        return lines + out

    # -- forward -----------------------------------------------------------------------
    def forward_lines(self) -> list[str]:
        d = self.d
        readers: dict[str | None, list[int]] = {}
        for k, name in enumerate(d.order):
            for i in d.inputs[name]:
                readers.setdefault(i, []).append(k)
        last_read = {ref: max(ks) for ref, ks in readers.items()}
        outputs = self.d.members[0].output_names  # a part's several outputs, each kept to the end
        inputs = ["x", *(f"x{k}" for k in range(1, self.d.members[0].inputs))]
        variable: dict[str | None, str] = {None: "x", **{f"<input{k}>": inputs[k] for k in range(1, len(inputs))}}
        live: set[str] = set(inputs)
        body: list[str] = []
        for k, name in enumerate(d.order):
            step = d.steps[name]
            args = [variable[i] for i in d.inputs[name]]
            for ref in set(d.inputs[name]):  # values read for the last time here
                if last_read.get(ref) == k and ref != d.output and ref not in outputs:
                    live.discard(variable[ref])
            # Variables: a chain keeps writing its variable (`out = self.bn1(out)`); the main path
            # out of a fork is `out`; the branches of a wider fork (inception) and values that
            # must stay live are named after their step; a merge writes `out`.
            first = args[0]
            branches = len(readers.get(d.inputs[name][0], ())) >= 3
            reuse = first not in live and not branches and (isinstance(step, ModuleStep) or first in ("x", "out"))
            if reuse:
                target = first
            elif "out" not in live and not (branches and isinstance(step, ModuleStep)):
                target = "out"
            else:
                target = unique(identifier(name), live | RESERVED_NAMES)
            variable[name] = target
            live.add(target)
            optional = name in d.optional
            condition = "" if not optional else (
                f"{_read(name)} is not None" if isinstance(step, ModuleStep) else f"self.{self.flag_of[name]}")
            expr = self.expression(step, args)
            inner = 3 if optional else 2
            if isinstance(step, FunctionStep) and step.inplace and reuse:
                operator = BINARY_OPERATORS[step.call.target]
                lines = [f"{INDENT * inner}{first} {operator}= {a}" for a in args[1:]]
            else:
                lines = render(expr, inner, f"{target} = ")
            one_line = f"{INDENT * 2}{target} = {flat(expr)} if {condition} else {first}"
            if not optional:
                body += lines
            elif reuse:
                body += [f"{INDENT * 2}if {condition}:", *lines]
            elif len(one_line) <= WIDTH:
                body.append(one_line)
            else:
                body += [f"{INDENT * 2}if {condition}:", *lines, f"{INDENT * 2}else:", f"{INDENT * 3}{target} = {first}"]
        if outputs:
            body.append(f"{INDENT * 2}return {', '.join(variable[o] for o in outputs)}")
            returns = "tuple[torch.Tensor, ...]"
        else:
            body.append(f"{INDENT * 2}return {variable[d.output]}")
            returns = "torch.Tensor"
        signature = render(Call("def forward", ["self", *(f"{name}: torch.Tensor" for name in inputs)]), 1, "",
                           f" -> {returns}:")
        return [*signature, *body]

    def expression(self, step: Step, args: list[str]) -> Expr:
        if isinstance(step, ModuleStep):
            return Call(_callee(step.name), list(args))
        call = step.call
        if call.style == "list":
            kwargs = [(k, _literal(v)) for k, v in call.kwargs.items()]
            return Call(self.imports.name(call.target), [Call("", list(args), brackets="[]")], kwargs)
        if call.target in BINARY_OPERATORS and not call.kwargs:
            return f" {BINARY_OPERATORS[call.target]} ".join(args)
        fn = self.imports.name(call.target)
        value = args[0]
        for other in args[1:]:
            value = f"{fn}({value}, {other})"
        return value

    def source(self) -> str:
        plan = self.d.members[0].plan
        if len(self.d.members) == 1 and plan.sequential and not all(_is_name(s.name) for s in plan.steps):
            # A chain of unnamed layers (`stem.0`, `stem.1`): an nn.Sequential, as one would write it.
            children = [(s.name, self.module_expr(s)) for s in plan.steps]  # type: ignore[arg-type]
            lines = [f"class {self.d.name}(nn.Sequential):", *docstring(self.doc, 1), "",
                     f"{INDENT}def __init__(self) -> None:",
                     *render(sequential(children, self.imports, "super().__init__"), 2)]
            return "\n".join(lines)
        lines = [f"class {self.d.name}(nn.Module):", *docstring(self.doc, 1), ""]
        lines += self.init_lines() + [""] + self.forward_lines()
        return "\n".join(lines)


def sequential(children: list[tuple[str, Expr]], imports: Imports, func: str = "nn.Sequential") -> Call:
    """`nn.Sequential(a, b)` when the children are named 0, 1, ...; else with an OrderedDict of their names."""
    if [n for n, _ in children] == [str(i) for i in range(len(children))]:
        return Call(func, [c for _, c in children])
    imports.ordered_dict = True
    if all(_is_name(n) for n, _ in children):
        return Call(func, [Call("OrderedDict", [], list(children))])
    pairs: list[Expr] = [Call("", [_literal(n), c]) for n, c in children]
    return Call(func, [Call("OrderedDict", [Call("", pairs, brackets="[]")])])


def _is_name(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def _callee(path: str) -> str | Call:
    """`_read(path)` as an expression the layout can split: a getattr chain is a Call."""
    parent, _, leaf = path.rpartition(".")
    if _is_name(leaf):
        return _read(path)
    return Call("getattr", [_callee(parent) if parent else "self", _literal(leaf)])


def _read(path: str) -> str:
    """`self.conv1`; a module named "0" is `getattr(self, '0')`."""
    expr = "self"
    for part in path.split("."):
        expr = f"{expr}.{part}" if _is_name(part) else f"getattr({expr}, {_literal(part)})"
    return expr


def _assign(path: str, expr: Expr, depth: int) -> list[str]:
    parent, _, leaf = path.rpartition(".")
    owner = _read(parent) if parent else "self"
    if _is_name(leaf):
        return render(expr, depth, f"{owner}.{leaf} = ")
    return render(Call(f"{owner}.add_module", [_literal(leaf), expr]), depth)


def docstring(text: str, depth: int) -> list[str]:
    """A docstring wrapped to the line length: one line if it fits, else closing on its own line."""
    pad = INDENT * depth
    if len(pad) + len(text) + 6 <= WIDTH:
        return [f'{pad}"""{text}"""']
    # Narrow enough that a text too long for one line always wraps to two or more.
    lines = textwrap.wrap(text, WIDTH - len(pad) - 6, break_long_words=False, break_on_hyphens=False)
    return [f'{pad}"""{lines[0]}', *(pad + line for line in lines[1:]), f'{pad}"""']


def _sometimes(argument: Argument) -> bool:
    """An argument of a step that some members leave out: it defaults to None."""
    return argument.flag is None and any(v is ABSENT for v in argument.values)


def _type(values: list[Any]) -> str:
    hints = {"bool": "bool", "int": "int", "float": "float", "str": "str", "NoneType": "None"}
    tuples = {len(v) for v in values if isinstance(v, tuple)}
    # (h, w) pairs are the common case; channel group sizes (a split's) have any length
    hints["tuple"] = "tuple[int, int]" if tuples == {2} else "tuple[int, ...]"
    kinds = {type(v).__name__ for v in values if v is not ABSENT}
    if kinds >= {"int", "float"}:
        kinds -= {"int"}
    if any(v is ABSENT for v in values):
        kinds.add("NoneType")
    named = sorted(hints.get(k, "object") for k in kinds)
    return " | ".join(sorted(named, key=lambda h: h == "None")) or "object"


# -- the model ------------------------------------------------------------------------------------------------
def _model_class_name(name: str) -> str:
    return class_name(name) if name else "Network"


@dataclass
class _Family:
    designs: list[ClassDesign]
    instance: dict[int, tuple[ClassDesign, int]]  # graph id -> (design, member index)


def _signature(m: Member) -> str:
    """What `design_class` compares: step names, their keys and wiring, the output; not the
    constructor values (those become arguments). Members with equal signatures can always share
    a class, and whether a set of members can depends only on its set of signatures."""
    steps = tuple((s.name, _step_key(s), tuple(m.input_names(s))) for s in m.plan.steps)
    return repr((steps, m.output_name))


def _designs(name: str, graphs: list[Graph], taken: set[str]) -> _Family:
    """Classes for graphs of one kind: as few as the rule in the module docstring allows.

    The greedy grouping runs over distinct signatures (a few per family), not over blocks, so a
    spec of thousands of blocks costs one plan per distinct graph and one pass to write."""
    distinct: dict[int, Graph] = {id(g): g for g in graphs}  # a stage repeats one Graph object
    members = {k: Member(plan_graph(g), g.in_shape[0], g.out_shape[0], inputs=len(g.input_shapes))
               for k, g in distinct.items()}
    by_signature: dict[str, list[int]] = {}
    for k, m in members.items():
        by_signature.setdefault(_signature(m), []).append(k)
    position = {k: i for i, k in enumerate(members)}
    pending = list(by_signature)  # in block order of first appearance
    family = _Family([], {})
    while pending:
        # The largest prefix-free set that one class can write, grown greedily in block order.
        chosen = [pending[0]]
        for sig in pending[1:]:
            if design_class("", [members[by_signature[s][0]] for s in chosen + [sig]]) is not None:
                chosen.append(sig)
        keys = sorted((k for s in chosen for k in by_signature[s]), key=position.__getitem__)
        design_name = unique(name, taken)
        taken.add(design_name)
        design = design_class(design_name, [members[k] for k in keys])
        assert design is not None
        family.designs.append(design)
        for index, k in enumerate(keys):
            family.instance[k] = (design, index)
        pending = [s for s in pending if s not in chosen]
    return family


def _instantiate(design: ClassDesign, member: int) -> Call:
    kwargs = [(a.name, _literal(a.values[member])) for a in design.arguments if a.values[member] is not ABSENT]
    return Call(design.name, [], kwargs)


STAGE_CLASS = '''class Stage(nn.Module):
    """A stage: its blocks, run in order."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)'''


def python_source(net: Network, params: int | None = None) -> str:
    """The network as the text of a standalone Python module (see the module docstring).

    `params` (the parameter count, for the docstring) is computed when not given.
    """
    if params is None:
        from ..analysis import analyze_network

        params = analyze_network(net).params
    taken: set[str] = set(RESERVED_CLASSES)
    imports = Imports(taken)
    graphs: dict[str, dict[str, list[Graph]]] = {}  # group -> kind -> graphs, in module order
    stage_graphs: list[list[Graph]] = [[] for _ in net.stages]
    for part in net.parts():
        graphs.setdefault(part.group, {}).setdefault(part.kind, []).append(part.graph)
        if part.group == "stages":
            stage_graphs[part.stage].append(part.graph)  # type: ignore[index]
    stem, head = (_designs(class_name(k), g, taken) for group in ("stem", "head") for k, g in graphs[group].items())
    aux = next((_designs(class_name(k), g, taken) for k, g in graphs.get("aux", {}).items()), None)
    families = {f: _designs(class_name(f), g, taken) for f, g in graphs.get("stages", {}).items()}
    family_of = {id(g): f for f, gs in graphs.get("stages", {}).items() for g in gs}
    kinds: dict[str, list[Graph]] = {}  # necks and heads, by part type (two FCN heads: one class)
    for group in ("necks", "heads"):
        for k, g in graphs.get(group, {}).items():
            kinds.setdefault(k, []).extend(g)
    attached = {k: _designs(class_name(k), g, taken) for k, g in kinds.items()}
    docs = {design.name: _family_doc(f) for f, fam in families.items() for design in fam.designs}
    classes: list[str] = []
    for fam, doc in [(stem, "The stem."), *((families[f], None) for f in families), (head, "The head."),
                     *([(aux, "An auxiliary classifier (run in training only).")] if aux else []),
                     *((attached[k], _family_doc(k)) for k in attached)]:
        for design in fam.designs:
            classes.append(ClassWriter(design, imports, doc or docs[design.name]).source())

    def make(fam: _Family, graph: Graph) -> Call:
        design, member = fam.instance[id(graph)]
        return _instantiate(design, member)

    stage_calls: list[Expr] = [
        Call("Stage", [make(families[family_of[id(g)]], g) for g in stage]) for stage in stage_graphs]
    model_name = unique(_model_class_name(net.name), taken)
    init = [f"{INDENT * 2}super().__init__()"]
    init += render(make(stem, graphs["stem"]["stem"][0]), 2, "self.stem = ")
    init += render(Call("nn.Sequential", stage_calls), 2, "self.stages = ")
    if aux:
        init += render(Call("nn.ModuleList", [Call("", [make(aux, g) for g in graphs["aux"]["aux_head"]], brackets="[]")]),
                       2, "self.aux_heads = ")
    if not net.taps or any(path == "head" or path.startswith("head.") for path, _, _ in tap_runs(net)):
        init += render(make(head, graphs["head"]["head"][0]), 2, "self.head = ")
    for group in ("necks", "heads"):
        if any(p.group == group for p in net.attached):
            init += _assign(group, "nn.Module()", 2)
        for part in (p for p in net.attached if p.group == group):
            init += _assign(part.path, make(attached[part.family], part.graph), 2)
    if aux:
        init.append(f"{INDENT * 2}self.aux_after = {tuple(a.after for a in net.aux_heads)!r}")
    initialised = _init_section(net, imports)
    if initialised:
        init.append(f"{INDENT * 2}init_weights(self, INIT_KINDS, INIT_BY_NAME)")
    forward = _taps_forward(net, imports) if net.taps else _model_forward(bool(aux))
    doc = _model_doc(net, params, bool(initialised))
    model = "\n".join([f"class {model_name}(nn.Module):", *doc, "",
                       f"{INDENT}def __init__(self) -> None:", *init, "", *forward])

    copied = imports.copied_classes()  # after every class is written: they register what they use
    header = imports.header()
    parts = ["\n".join(_module_doc(net, model_name)) + "\n\n" + "\n".join(header), *copied, *initialised, *classes,
             STAGE_CLASS, model]
    return "\n\n\n".join(parts) + "\n"


def _family_doc(family: str) -> str:
    """The first paragraph of the family's docstring (it shows the spec form), or a plain description."""
    from ..spec.families import BLOCKS, load_builtin_blocks

    load_builtin_blocks()
    doc = (BLOCKS[family].__doc__ or "").strip() if family in BLOCKS else ""
    first = " ".join(doc.split("\n\n")[0].split())
    return _docstring_safe(first) if first else f"A `{family}` block."


def _docstring_safe(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return text[:-1] + '\\"' if text.endswith('"') else text


def _model_forward(aux: bool) -> list[str]:
    if not aux:
        return [f"{INDENT}def forward(self, x: torch.Tensor) -> torch.Tensor:",
                f"{INDENT * 2}return self.head(self.stages(self.stem(x)))"]
    return [line and INDENT + line for line in """def forward(self, x: torch.Tensor):
    x = self.stem(x)
    if not self.training:
        return self.head(self.stages(x))
    aux: list[torch.Tensor | None] = [None] * len(self.aux_after)
    for i, stage in enumerate(self.stages):
        x = stage(x)
        for k, after in enumerate(self.aux_after):
            if after == i:
                aux[k] = self.aux_heads[k](x)
    return (self.head(x), *aux)""".splitlines()]


def _taps_forward(net: Network, imports: Imports) -> list[str]:
    """A forward that runs what the taps need (`plan.tap_runs`): the chain, keeping the values that
    taps and parts read in `values`, then the necks and heads; it returns the taps by name."""
    imports.ordered_dict = True
    body = [f"{INDENT * 2}values: dict[str, torch.Tensor] = {{\"input\": x}}"]
    for path, ins, outs in tap_runs(net):
        if ins == ("x",):
            body.append(f"{INDENT * 2}x = {_read(path)}(x)")
            body += [f"{INDENT * 2}values[{_literal(key)}] = x" for key in outs[1:]]
            continue
        call = Call(_read(path), [f"values[{_literal(key)}]" for key in ins])
        if len(outs) == 1:
            body += render(call, 2, f"values[{_literal(outs[0])}] = ")
        else:
            keys = Call("", [_literal(k) for k in outs])
            body += render(Call("values.update", [Call("zip", [keys, call], [("strict", "True")])]), 2)
    pairs = [Call("", [_literal(t.name), f"values[{_literal(t.path)}]"]) for t in net.taps]
    body += render(Call("OrderedDict", [Call("", pairs, brackets="[]")]), 2, "return ")
    return [f"{INDENT}def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:", *body]


def _shape(shape: Iterable[int]) -> str:
    return "x".join(map(str, shape))


def _init_section(net: Network, imports: Imports) -> list[str]:
    """The spec's `init` rules as constants and the functions that apply them; none if all default."""
    if net.init is None or net.init.is_default:
        return []
    imports.standard |= {"fnmatch", "math", "re"}
    kinds, by_name = net.init.tables()

    def table(rules: dict[str, tuple[str, str]]) -> Call:
        return Call("", [f"{_literal(k)}: {_literal(v)}" for k, v in rules.items()], brackets="{}")

    constants = ["# The spec's `init` section: (weight, bias) schemes per kind of layer, then by",
                 "# module path (glob patterns; the last match wins). See init_scheme for the schemes.",
                 *render(table(kinds), 0, "INIT_KINDS: dict[str, tuple[str, str]] = "),
                 *render(table(by_name), 0, "INIT_BY_NAME: dict[str, tuple[str, str]] = ")]
    functions = [definition_source(f"archspec.backends.torch_init.{name}") for name in INIT_FUNCTIONS]
    return ["\n".join(constants), *functions]


def _model_doc(net: Network, params: int, initialised: bool) -> list[str]:
    lines = [f"{net.name}: input N x {_shape(net.input_shape)}, output N x {_shape(net.output_shape)}.", ""]
    how = "as the spec says (init_weights)" if initialised else "by PyTorch's defaults"
    lines.append(f"{params:,} parameters, initialised {how}.")
    lines.append("Load trained weights with `load_state_dict`: the keys are those of `archspec.build`.")
    if net.aux_heads:
        lines += ["", "In training, forward returns (logits, *aux_logits); in eval, the logits."]
    if net.taps:
        lines[0] = f"{net.name}: input N x {_shape(net.input_shape)}."
        names = ", ".join(t.name for t in net.taps)
        lines += ["", *textwrap.wrap(f"forward returns an ordered dict: {names}.", WIDTH - 4, break_long_words=False)]
    return [f'{INDENT}"""{lines[0]}'] + [INDENT + line if line else "" for line in lines[1:]] + [f'{INDENT}"""']


def _module_doc(net: Network, model_name: str) -> list[str]:

    text = [f'"""{net.name}: standalone PyTorch source, exported by archspec {__version__}.', ""]
    for paragraph in net.description.strip().split("\n") if net.description else []:
        text += textwrap.wrap(_docstring_safe(paragraph), WIDTH - 2, break_long_words=False) or [""]
    if net.description:
        text.append("")
    text += ["Needs only torch:", "", f"    model = {model_name}()", '"""']
    return text
