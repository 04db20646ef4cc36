"""The torch backend: IR `Network` -> a plain `nn.Module`.

Chains become `nn.Sequential`; blocks with branches become `torch.fx.GraphModule`s
whose forward is generated Python code (`model.stages[0].blocks[0].code`), so
nothing interprets the spec at forward time and every module has the readable
path the IR gave it (`stages.2.blocks.0.conv1`).
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from functools import cache
from typing import Any
from collections.abc import Callable

import torch
from torch import fx, nn

from ..ir.graph import INPUT, Graph, Network
from ..ir.op import FunctionCall, ModuleCall
from ..ir.ops.activation import INPLACE_CAPABLE
from . import torch_layers
from .torch_init import initialise


@cache
def resolve_target(path: str) -> Callable[..., Any]:
    """`torch.nn.Conv2d` -> the class; `operator.add` -> the function."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def instantiate(call: ModuleCall) -> nn.Module:
    return resolve_target(call.target)(*call.args, **call.kwargs)


def _modules(graph: Graph) -> dict[int, nn.Module]:
    """One module per node that has a module form; activations go in place when safe."""
    readers = graph.consumers()
    out: dict[int, nn.Module] = {}
    for i, node in enumerate(graph.nodes):
        call = node.op.torch(graph.in_shapes(node))
        if isinstance(call, ModuleCall):
            if node.op.kind == "act" and getattr(node.op, "type", None) in INPLACE_CAPABLE:
                src = node.inputs[0]
                if src != INPUT and readers.get(src, 0) == 1:
                    call = ModuleCall(call.target, call.args, {**call.kwargs, "inplace": True})
            out[i] = instantiate(call)
    return out


def _sequential_groups(graph: Graph, modules: dict[int, nn.Module]) -> dict[int, str]:
    """Nodes named `prefix.k` that form a chain read only at its end -> {last node: prefix}.

    Such a group (a projection shortcut `downsample.0`, `downsample.1`) becomes one
    `nn.Sequential` called once in forward, as hand-written code would have it.
    """
    members: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        prefix, dot, rest = node.name.partition(".")
        if dot and "." not in rest:
            members.setdefault(prefix, []).append(i)
    readers = graph.consumers()
    groups: dict[int, str] = {}
    for prefix, idx in members.items():
        if len(idx) < 2 or idx != list(range(idx[0], idx[-1] + 1)) or not all(i in modules for i in idx):
            continue
        chained = all(graph.nodes[i].inputs == (i - 1,) and readers.get(i - 1) == 1 for i in idx[1:])
        if chained and len(graph.nodes[idx[0]].inputs) == 1 and not any(
            n.name == prefix for n in graph.nodes
        ):
            groups[idx[-1]] = prefix
    return groups


def graph_module(graph: Graph, class_name: str = "Block") -> nn.Module:
    modules = _modules(graph)
    if graph.is_chain() and all("." not in n.name for n in graph.nodes) and len(modules) == len(graph.nodes):
        return nn.Sequential(OrderedDict((graph.nodes[i].name, m) for i, m in modules.items()))
    groups = _sequential_groups(graph, modules)
    grouped = {i for last, prefix in groups.items() for i in range(len(graph.nodes))
               if graph.nodes[i].name.startswith(prefix + ".")}
    root: dict[str, nn.Module] = {}
    g = fx.Graph()
    values: dict[int, fx.Node] = {INPUT: g.placeholder("x")}
    for i, node in enumerate(graph.nodes):
        local = node.name.replace(".", "_")
        if i in grouped:
            if i in groups:
                prefix = groups[i]
                idx = [k for k in sorted(grouped) if graph.nodes[k].name.startswith(prefix + ".")]
                root[prefix] = nn.Sequential(OrderedDict(
                    (graph.nodes[k].name.partition(".")[2], modules[k]) for k in idx))
                first = graph.nodes[idx[0]]
                values[i] = g.create_node("call_module", prefix, (values[first.inputs[0]],), name=prefix)
            continue
        args = [values[j] for j in node.inputs]
        if i in modules:
            root[node.name] = modules[i]
            values[i] = g.create_node("call_module", node.name, tuple(args), name=local)
            continue
        call = node.op.torch(graph.in_shapes(node))
        assert isinstance(call, FunctionCall)
        fn = resolve_target(call.target)
        if call.style == "list":
            values[i] = g.create_node("call_function", fn, (args,), dict(call.kwargs), name=local)
        else:
            value = args[0]
            for k, other in enumerate(args[1:]):
                name = local if k == len(args) - 2 else f"{local}_{k}"
                value = g.create_node("call_function", fn, (value, other), dict(call.kwargs), name=name)
            values[i] = value
    g.output(values[graph.output])
    return fx.GraphModule(_module_tree(root), g, class_name=class_name)


def _module_tree(modules: dict[str, nn.Module]) -> nn.Module:
    """The modules under their dotted names, registered in the order given (execution order).

    GraphModule copies from a module in node order; from a dict it would sort the names by
    depth, putting `branch4` before `branch2.conv0` and breaking the state_dict order that
    positional interop (`load_torchvision`) relies on.
    """
    tree = nn.Module()
    for name, module in modules.items():
        *parents, leaf = name.split(".")
        parent = tree
        for part in parents:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, module)
    return tree


def _class_name(family: str) -> str:
    return "".join(part.capitalize() for part in family.replace("-", "_").split("_")) or "Block"


def build_module(net: Network, init: bool = True) -> nn.Module:
    """Compile the IR into a module; `init` applies the spec's weight initialisation."""
    stem = graph_module(net.stem, "Stem")
    stages = [
        torch_layers.Stage([graph_module(block.graph, _class_name(block.family)) for block in stage.blocks])
        for stage in net.stages
    ]
    aux = [graph_module(a.graph, "AuxHead") for a in net.aux_heads]
    head = graph_module(net.head, "Head")
    model = torch_layers.Network(stem, stages, head, aux, tuple(a.after for a in net.aux_heads))
    if init and net.init is not None:
        initialise(model, net.init)
    model.archspec_spec = net.spec_data  # the resolved spec, for checkpoints; not in the state_dict
    return model


def to_meta(net: Network) -> nn.Module:
    """The module on the meta device: shapes and counts without allocating weights."""
    with torch.device("meta"):
        return build_module(net, init=False)
