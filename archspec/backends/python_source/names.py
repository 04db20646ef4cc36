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
    interpreter can import), -> its class, copied in (a user's with the imports of its file that
    it reads: `carried_imports`); a layer from an installed package -> `from package import Name`,
    aliased if the name is taken."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken  # class names of the generated file
        self.copied: dict[str, str] = {}  # target -> class name
        self.extra: dict[str, str] = {}  # target -> local name
        self.standard: set[str] = set()  # modules the copied code imports by their own names (`import math`)
        self.carried: dict[str, str] = {}  # name -> the import line a copied user class needs (`carried_imports`)
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
            if target not in self.copied and module.split(".")[0] != "archspec":  # a user's: its imports come along
                self._carry(attr, carried_imports(target))
            self.copied[target] = attr
            return attr
        if target not in self.extra:
            local = attr if attr not in self.taken and attr not in RESERVED_NAMES else unique(f"{attr}_", self.taken)
            self.extra[target] = local
            self.taken.add(local)
        return self.extra[target]

    def _carry(self, cls: str, lines: dict[str, str]) -> None:
        for local, line in lines.items():
            if line in _HEADER_IMPORTS or self.carried.get(local) == line:
                continue
            if line == f"import {local}":  # a module by its own name (`math`): as the file's own imports are
                self.standard.add(local)
                continue
            if local in self.carried or local in self.taken or local in RESERVED_NAMES:
                raise ArchspecError(f"cannot copy layer class {cls} into the file: its file's `{line}` binds "
                                    f"'{local}', a name the exported file uses otherwise; import it under another name")
            self.carried[local] = line

    def header(self) -> list[str]:
        lines = ["from __future__ import annotations", ""]
        standard = [f"import {m}" for m in sorted(self.standard)]
        if self.ordered_dict:
            standard.append("from collections import OrderedDict")
        if standard:
            lines += [*standard, ""]
        lines += ["import torch", "from torch import nn"]
        lines += sorted(set(self.carried.values()))
        for target, local in sorted(self.extra.items()):
            module, _, attr = target.rpartition(".")
            lines.append(f"from {module} import {attr}" + (f" as {local}" if local != attr else ""))
        return lines

    def copied_classes(self) -> list[str]:
        return [definition_source(target) for target in sorted(self.copied, key=lambda t: self.copied[t])]


# What every exported file imports: a copied class's own import of these adds nothing.
_HEADER_IMPORTS = frozenset({"import torch", "from torch import nn", "import torch.nn as nn"})


def carried_imports(target: str) -> dict[str, str]:
    """{name: its import line} for each module-level name of the class `target`'s file that the class
    reads: the imports a copied class needs in the exported file (`torch.nn.functional as F`,
    `math`). A name the file defines otherwise (a function, a constant) cannot come along, nor a
    relative import: ArchspecError, naming it, rather than a file that fails when it runs."""
    module, _, name = target.rpartition(".")
    text = _source_text(module, name)
    tree = ast.parse(text)
    cls = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name), None)
    if cls is None:
        raise ValueError(f"{module} defines no class {name}")
    imported: dict[str, tuple[str, bool]] = {}  # name -> (import line, relative)
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                line = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                imported[local] = (line, False)
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            for alias in node.names:
                local = alias.asname or alias.name
                line = f"from {'.' * node.level}{node.module or ''} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else "")
                imported[local] = (line, node.level > 0)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            for target_node in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                defined |= {n.id for n in ast.walk(target_node) if isinstance(n, ast.Name)}
    read = {n.id for n in ast.walk(cls) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound_inside = {n.id for n in ast.walk(cls) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound_inside |= {a.arg for n in ast.walk(cls) if isinstance(n, ast.arguments)
                     for a in (*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg) if a is not None}
    needed: dict[str, str] = {}
    for used in sorted(read - bound_inside - {name}):
        if used in imported:
            line, relative = imported[used]
            if relative:
                raise ArchspecError(f"cannot copy layer class {name} into the exported file: it reads '{used}', "
                                    f"which its file imports relatively (`{line}`); import it by its full name")
            needed[used] = line
        elif used in defined:
            raise ArchspecError(f"cannot copy layer class {name} into the exported file: it reads '{used}', which "
                                "its file defines outside the class; define it inside the class or import it")
    return needed


def _source_text(module: str, name: str) -> str:
    origin = _main_file(name) if module == "__main__" else getattr(importlib.util.find_spec(module), "origin", None)
    if origin is None:
        raise ValueError(f"cannot find the source of {module}.{name}")
    with open(origin, encoding="utf-8") as f:
        return f.read()


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
    text = _source_text(module, name)
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            if method is None:
                return ast.get_source_segment(text, node) or ""
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef) and inner.name == method:
                    return textwrap.dedent(" " * inner.col_offset + (ast.get_source_segment(text, inner) or ""))
    raise ValueError(f"{module} defines no class or function {name}" + (f" with a method {method}" if method else ""))


