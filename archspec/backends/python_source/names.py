"""Python export: the names of the generated file (reserved names, imports of the targets a plan calls)."""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap

from ...core.errors import ArchspecError
from ...core.naming import unique



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
    an archspec layer, or one from a `--plugin` file or the running script (which no other
    interpreter can import), -> its class, copied in (it must be self-contained, as archspec's are); a layer from an
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
        if module.split(".")[0] == "archspec" or module.startswith("archspec_plugin_") or module == "__main__":
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


def _main_file(name: str) -> str:
    """The script that defines `name` in `__main__` (a layer class registered by the running script:
    no other interpreter can import it, so it is copied in, as a --plugin's is)."""
    origin = getattr(sys.modules.get("__main__"), "__file__", None)
    if origin is None:
        raise ArchspecError(f"layer class {name} is defined in an interactive session (a notebook or the REPL), whose "
                            "source cannot be copied into the exported file: define it in a module and import it, "
                            "or pass its file with --plugin")
    return str(origin)


def definition_source(target: str, method: str | None = None) -> str:
    """The source of a class or function, read from its file without importing it (nor torch);
    with `method`, the source of that method of the class, dedented."""
    module, _, name = target.rpartition(".")
    origin = _main_file(name) if module == "__main__" else getattr(importlib.util.find_spec(module), "origin", None)
    if origin is None:
        raise ValueError(f"cannot find the source of {target}")
    with open(origin, encoding="utf-8") as f:
        text = f.read()
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            if method is None:
                return ast.get_source_segment(text, node) or ""
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef) and inner.name == method:
                    return textwrap.dedent(" " * inner.col_offset + (ast.get_source_segment(text, inner) or ""))
    raise ValueError(f"{module} defines no class or function {name}" + (f" with a method {method}" if method else ""))


