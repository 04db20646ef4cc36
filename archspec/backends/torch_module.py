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

from ..core.frozen import thaw
from ..core.naming import class_name, join, value_name
from ..ir.graph import INPUT, PART_GROUPS, Graph, Network
from ..ir.op import ModuleCall
from . import torch_layers
from .plan import INPLACE_FORM, ModuleStep, head_runs, plan_graph, tap_runs
from .torch_init import initialise, overwrites


@cache
def resolve_target(path: str) -> Callable[..., Any]:
    """`torch.nn.Conv2d` -> the class; `operator.add` -> the function."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# Whether the module built from a call at a path will be fully initialised afterwards.
SkipInit = Callable[[str, ModuleCall], bool]


def instantiate(call: ModuleCall, skip_init: bool = False) -> nn.Module:
    """Construct the module; `skip_init` leaves its parameters uninitialised (they are set later).

    skip_init builds on the meta device and then allocates on `device`, so it is given the
    current default device (a `with torch.device(...)` block, `torch.set_default_device`).
    """
    cls = resolve_target(call.target)
    if skip_init:
        return nn.utils.skip_init(cls, *call.args, device=torch.get_default_device(), **call.kwargs)
    return cls(*call.args, **call.kwargs)


def _module(step: ModuleStep, prefix: str, skip: SkipInit | None) -> nn.Module:
    path = join(prefix, step.name)
    if step.call is not None:
        return instantiate(step.call, skip is not None and skip(path, step.call))
    return nn.Sequential(OrderedDict(
        (name, instantiate(call, skip is not None and skip(join(path, name), call))) for name, call in step.children))


def graph_module(graph: Graph, class_name: str = "Block", prefix: str = "", skip: SkipInit | None = None) -> nn.Module:
    """The graph as a module, following its plan (see `plan.py`). `prefix` is the module's path in
    the network, for `skip`, which says which modules need no initialisation of their own."""
    plan = plan_graph(graph)
    if plan.sequential:
        return nn.Sequential(OrderedDict(
            (step.name, _module(step, prefix, skip)) for step in plan.steps))
    root: dict[str, nn.Module] = {}
    g = fx.Graph()
    values: dict[int, fx.Node] = {INPUT - k: g.placeholder("x" if k == 0 else f"x{k}")
                                  for k in range(len(graph.input_shapes))}
    for k, step in enumerate(plan.steps):
        args = [values[j] for j in step.inputs]
        local = value_name(step.name)
        if isinstance(step, ModuleStep):
            root[step.name] = _module(step, prefix, skip)
            values[k] = g.create_node("call_module", step.name, tuple(args), name=local)
            continue
        call = step.call
        if call.style == "list":
            values[k] = g.create_node("call_function", resolve_target(call.target), (args,), dict(call.kwargs), name=local)
            continue
        fn = resolve_target(INPLACE_FORM[call.target] if step.inplace else call.target)
        value = args[0]
        for i, other in enumerate(args[1:]):
            name = local if i == len(args) - 2 else f"{local}_{i}"
            value = g.create_node("call_function", fn, (value, other), dict(call.kwargs), name=name)
        values[k] = value
    g.output(tuple(values[i] for i in plan.outputs) if plan.outputs else values[plan.output])
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


def _loaded_later(path: str, call: ModuleCall) -> bool:
    """Every parameter will be loaded: any layer without buffers may skip its initialisation."""
    return call.skippable_init is not None


def _initialised_by(tables: Any) -> SkipInit:
    """Skip the layers whose every parameter the spec's initialisation (`tables`) sets."""
    def skip(path: str, call: ModuleCall) -> bool:
        return overwrites(tables, path, call.skippable_init, bool(call.arguments().get("bias", True)))
    return skip


def build_module(net: Network, init: bool = True, fill: bool = True) -> nn.Module:
    """Compile the IR into a module; `init` applies the spec's weight initialisation. `fill=False`
    is for a caller that loads every parameter next (deploy): the layers that hold parameters and
    no buffers (convs, linears) are made without their constructors' random draws."""
    skip: SkipInit | None = None
    if not fill:
        skip = _loaded_later
    elif init and net.init is not None:
        skip = _initialised_by(net.init.tables())  # the tables once, not once per layer
    built: dict[str, list[nn.Module]] = {}  # group -> its parts' modules, in module order
    blocks: list[list[nn.Module]] = [[] for _ in net.stages]
    attached: dict[str, dict[str, nn.Module]] = {group: {} for group in PART_GROUPS}  # group -> name -> module
    for part in net.parts():
        module = graph_module(part.graph, class_name(part.family), part.path, skip)
        if part.group == "stages":
            blocks[part.stage].append(module)  # type: ignore[index]  # a block's part always has its stage index
        elif part.attached:
            attached[part.group][part.path.partition(".")[2]] = module
        else:
            built.setdefault(part.group, []).append(module)
    stem, head, stages = built["stem"][0], built["head"][0], [torch_layers.Stage(*modules) for modules in blocks]
    if net.taps:
        model = torch_layers.Features(stem, stages, head if head_runs(net) else None, attached, tap_runs(net),
                                      [(t.name, t.path) for t in net.taps])
        graphs = {part.path: part.graph for part in net.parts()}
        channels = {graphs[t.graph_path].shape_of(t.node)[0] for t in net.taps}
        if len(channels) == 1:  # torchvision's detection models read `backbone.out_channels`
            model.out_channels = channels.pop()
    elif net.aux_heads:
        model = torch_layers.AuxNetwork(stem, stages, head, built["aux"], tuple(a.after for a in net.aux_heads))
    else:
        model = torch_layers.Network(stem, stages, head)
    if init and net.init is not None:
        initialise(model, net.init)
    model.archspec_spec = thaw(net.spec_data)  # the resolved spec, for checkpoints; not in the state_dict
    return model


def to_meta(net: Network) -> nn.Module:
    """The module on the meta device: shapes and counts without allocating weights."""
    with torch.device("meta"):
        return build_module(net, init=False)
