"""Python export: writing one class (its `__init__` and `forward`) from a `ClassDesign`."""

from __future__ import annotations

import keyword
import math
import textwrap
from typing import Any

from ...core.naming import identifier, unique
from ...ir.op import ModuleCall
from ..plan import FunctionStep, ModuleStep, Step
from ..source_format import INDENT, WIDTH, Call, Expr, flat, render

from .names import BINARY_OPERATORS, Imports, RESERVED_NAMES
from .classes import ABSENT, ClassDesign


# -- writing one class ------------------------------------------------------------------------------------------
def literal(value: Any) -> str:
    """Source for a constructor value, with strings in double quotes as formatters write them."""
    if isinstance(value, str):
        return '"' + escaped(value, quote='"') + '"'
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'  # repr gives inf or nan, names Python does not know
    return repr(value)


def escaped(text: str, quote: str = "") -> str:
    """`text` for inside a Python string literal, read back as `text`: backslashes, `quote` and
    every character that is not printable (a NUL, a line break, a terminal escape, a lone
    surrogate) written as escapes. The one escaping rule of the exporter's strings and docstrings."""
    out = []
    for ch in text:
        if ch == "\\" or (quote and ch == quote):
            out.append("\\" + ch)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])  # \n, \x1b, \u202e, \ud800
    return "".join(out)


def docstring_safe(text: str) -> str:
    """`text` as the inside of a triple-quoted docstring that reads back as `text` (see `escaped`), with
    no `\"\"\"` that would close it and no quote at the end that would merge with the closing quotes."""
    text = escaped(text).replace('"""', '\\"\\"\\"')
    if not text.endswith('"'):
        return text
    backslashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    return text if backslashes % 2 else text[:-1] + '\\"'  # an odd run escapes the quote already


class ClassWriter:
    def __init__(self, design: ClassDesign, imports: Imports, doc: str):
        self.d = design
        self.imports = imports
        self.doc = doc
        self.slot_argument = {slot: a.name for a in design.arguments for slot in a.slots}
        self.flag_of = {a.flag: a.name for a in design.arguments if a.flag}

    def value(self, step: str, child: str, arg: str) -> str:
        key = (step, child, arg)
        return self.slot_argument[key] if key in self.slot_argument else literal(self.d.constants[key])

    def constructor(self, step: str, child: str, call: ModuleCall) -> Call:
        args = [self.value(step, child, name) for name in call.positional()]
        kwargs = []
        for key in call.arguments():
            text = self.value(step, child, key)
            if key in call.defaults and (step, child, key) not in self.slot_argument and text == literal(call.defaults[key]):
                continue  # left at its default, in every member
            kwargs.append((key, text))
        return Call(self.imports.name(call.target), args, kwargs)

    def module_expr(self, step: ModuleStep) -> Expr:
        if step.call is not None:
            return self.constructor(step.name, "", step.call)
        return sequential([(n, self.constructor(step.name, n, c)) for n, c in step.children], self.imports)

    # -- __init__ ----------------------------------------------------------------------
    def init_lines(self) -> list[str]:
        params = ["self"] + [f"{a.name}: {_type(a.values)}" + (" = None" if a.optional else "")
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
                    out += assign_line(path, "nn.Module()", 2)
            expr = self.module_expr(step)
            if name in self.d.optional:
                out += assign_line(name, "None", 2)
                out.append(f"{INDENT * 2}if {self.flag_of[name]}:")
                out += assign_line(name, expr, 3)
            else:
                out += assign_line(name, expr, 2)
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
                f"{read_path(name)} is not None" if isinstance(step, ModuleStep) else f"self.{self.flag_of[name]}")
            expr = self.expression(step, args)
            inner = 3 if optional else 2
            if isinstance(step, FunctionStep) and step.inplace and reuse:
                operator = BINARY_OPERATORS[step.call.target]
                lines = [f"{INDENT * inner}{first} {operator}= {a}" for a in args[1:]]
            elif isinstance(step, FunctionStep) and step.call.target in BINARY_OPERATORS and not step.call.kwargs:
                lines = binary_lines(target, args, BINARY_OPERATORS[step.call.target], inner)
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
            kwargs = [(k, literal(v)) for k, v in call.kwargs.items()]
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
            children = [(s.name, self.module_expr(s)) for s in plan.steps]
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
    pairs: list[Expr] = [Call("", [literal(n), c]) for n, c in children]
    return Call(func, [Call("OrderedDict", [Call("", pairs, brackets="[]")])])


def _is_name(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def _callee(path: str) -> str | Call:
    """`read_path(path)` as an expression the layout can split: a getattr chain is a Call."""
    parent, _, leaf = path.rpartition(".")
    if _is_name(leaf):
        return read_path(path)
    return Call("getattr", [_callee(parent) if parent else "self", literal(leaf)])


def binary_lines(target: str, args: list[str], operator: str, depth: int) -> list[str]:
    """`target = a + b + c` as black writes it: on one line when it fits, else in parentheses, on
    one line inside them when that fits, else one operand a line (`+ b`)."""
    pad, inner = INDENT * depth, INDENT * (depth + 1)
    joined = f" {operator} ".join(args)
    if len(f"{pad}{target} = {joined}") <= WIDTH:
        return [f"{pad}{target} = {joined}"]
    if len(f"{inner}{joined}") <= WIDTH:
        return [f"{pad}{target} = (", f"{inner}{joined}", f"{pad})"]
    return [f"{pad}{target} = (", f"{inner}{args[0]}", *(f"{inner}{operator} {a}" for a in args[1:]), f"{pad})"]


def read_path(path: str) -> str:
    """`self.conv1`; a module named "0" is `getattr(self, '0')`."""
    expr = "self"
    for part in path.split("."):
        expr = f"{expr}.{part}" if _is_name(part) else f"getattr({expr}, {literal(part)})"
    return expr


def assign_line(path: str, expr: Expr, depth: int) -> list[str]:
    parent, _, leaf = path.rpartition(".")
    owner = read_path(parent) if parent else "self"
    if _is_name(leaf):
        return render(expr, depth, f"{owner}.{leaf} = ")
    return render(Call(f"{owner}.add_module", [literal(leaf), expr]), depth)


def docstring(text: str, depth: int) -> list[str]:
    """A docstring wrapped to the line length: one line if it fits, else closing on its own line.
    `text` is plain text (names from a spec among it): it is escaped here, never run."""
    pad = INDENT * depth
    text = docstring_safe(text)
    if len(pad) + len(text) + 6 <= WIDTH:
        return [f'{pad}"""{text}"""']
    # Narrow enough that a text too long for one line always wraps to two or more.
    lines = textwrap.wrap(text, WIDTH - len(pad) - 6, break_long_words=False, break_on_hyphens=False)
    return [f'{pad}"""{lines[0]}', *(pad + line for line in lines[1:]), f'{pad}"""']


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


