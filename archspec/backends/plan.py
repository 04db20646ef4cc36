"""How one IR graph runs as PyTorch code: the plan that the torch backend and code export share.

The torch backend turns a plan into modules and an fx graph; `python_source` turns the
same plan into class source. Every decision about the form of the code lives here,
once: which nodes become one `nn.Sequential` (a projection shortcut `downsample.0`,
`downsample.1`), which activations run in place, which residual sums write into
their first operand (`out += identity`, as torchvision's ResNet does), and whether
the whole graph is a plain chain (`nn.Sequential`).

Nothing here imports torch: `archspec export --format python` needs no weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..core.naming import join
from ..ir.graph import INPUT, PART_GROUPS, Graph, Network
from ..ir.taps import Tap
from ..ir.op import FunctionCall, ModuleCall

# The in-place form of each function a sum may use.
INPLACE_FORM = {"operator.add": "operator.iadd"}


@dataclass(frozen=True)
class ModuleStep:
    """A module call: `name` is its attribute path (`conv1`, `downsample`). A module is
    either one `call` or, when `children` is set, an `nn.Sequential` of named calls."""

    name: str
    inputs: tuple[int, ...]  # earlier step indices, or INPUT
    call: ModuleCall | None = None
    children: tuple[tuple[str, ModuleCall], ...] = ()

    @property
    def calls(self) -> tuple[tuple[str, ModuleCall], ...]:
        """(child name, call) for each module it constructs; the child name of a lone call is ""."""
        return (("", self.call),) if self.call is not None else self.children


@dataclass(frozen=True)
class FunctionStep:
    """A parameter-free function of earlier values (`a + b`, `torch.cat([a, b], dim=1)`).

    `inplace`: the first input is read by nothing else and may be overwritten (`a += b`).
    """

    name: str
    inputs: tuple[int, ...]
    call: FunctionCall
    inplace: bool = False


Step = ModuleStep | FunctionStep


@dataclass(frozen=True)
class GraphPlan:
    steps: tuple[Step, ...]
    output: int  # step index, or INPUT for an empty graph
    sequential: bool  # a chain of plainly named modules: compiled as `nn.Sequential`
    outputs: tuple[int, ...] = ()  # a part's named outputs, as step indices: forward returns them as a tuple


def plan_graph(graph: Graph) -> GraphPlan:
    readers = graph.consumers()
    calls: dict[int, ModuleCall | FunctionCall] = {}
    for i, node in enumerate(graph.nodes):
        call = node.op.torch(graph.in_shapes(node))
        if isinstance(call, ModuleCall) and node.op.inplace_capable():
            src = node.inputs[0]
            if src >= 0 and readers.get(src, 0) == 1 and graph.nodes[src].op.output_is_fresh():
                rest = {k: v for k, v in call.defaults.items() if k != "inplace"}
                call = replace(call, kwargs={**call.kwargs, "inplace": True}, defaults=rest)
        if isinstance(call, ModuleCall) and type(node.op).init_skippable:
            call = replace(call, skippable_init=type(node.op).init_kind)
        calls[i] = call
    is_module = {i for i, c in calls.items() if isinstance(c, ModuleCall)}
    plain = not graph.more_inputs and not graph.outputs
    if plain and graph.is_chain() and all("." not in n.name for n in graph.nodes) and len(is_module) == len(graph.nodes):
        steps = tuple(ModuleStep(n.name, (i - 1,) if i else (INPUT,), calls[i]) for i, n in enumerate(graph.nodes))
        return GraphPlan(steps, len(steps) - 1, True)

    groups = _sequential_groups(graph, is_module, readers)
    grouped = {i for idx in groups.values() for i in idx}
    step_of: dict[int, int] = {INPUT - k: INPUT - k for k in range(len(graph.input_shapes))}  # node -> step index
    steps: list[Step] = []
    for i, node in enumerate(graph.nodes):
        if i in grouped:
            if i in groups:  # the group's last node: emit the whole nn.Sequential here
                idx = groups[i]
                prefix = node.name.partition(".")[0]
                children = tuple((graph.nodes[k].name.partition(".")[2], calls[k]) for k in idx)
                steps.append(ModuleStep(prefix, (step_of[graph.nodes[idx[0]].inputs[0]],), children=children))
            else:
                continue
        elif i in is_module:
            steps.append(ModuleStep(node.name, tuple(step_of[j] for j in node.inputs), calls[i]))
        else:
            steps.append(FunctionStep(node.name, tuple(step_of[j] for j in node.inputs), calls[i]))
        step_of[i] = len(steps) - 1
    plan = GraphPlan(tuple(steps), step_of[graph.output], False, tuple(step_of[i] for i in graph.outputs.values()))
    return _inplace_sums(plan, graph, step_of, readers)


def _sequential_groups(graph: Graph, is_module: set[int], readers: dict[int, int]) -> dict[int, list[int]]:
    """Nodes named `prefix.k` that form a chain read only at its end -> {last node: member nodes}.

    Such a group becomes one `nn.Sequential` called once in forward, as hand-written
    code would have it.
    """
    members: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        prefix, dot, rest = node.name.partition(".")
        if dot and "." not in rest:
            members.setdefault(prefix, []).append(i)
    groups: dict[int, list[int]] = {}
    for prefix, idx in members.items():
        if len(idx) < 2 or idx != list(range(idx[0], idx[-1] + 1)) or not all(i in is_module for i in idx):
            continue
        chained = all(graph.nodes[i].inputs == (i - 1,) and readers.get(i - 1) == 1 for i in idx[1:])
        # The Sequential takes the attribute `prefix`: nothing else may live there, neither a node
        # of that name nor a deeper one (`prefix.inner.0`, a nested scope beside the chain).
        owned = all(i in idx for i, n in enumerate(graph.nodes) if n.name == prefix or n.name.startswith(prefix + "."))
        if chained and len(graph.nodes[idx[0]].inputs) == 1 and owned:
            groups[idx[-1]] = idx
    return groups


def _inplace_sums(plan: GraphPlan, graph: Graph, step_of: dict[int, int], readers: dict[int, int]) -> GraphPlan:
    """Mark residual sums whose first operand is a conv/norm output read only by the sum.

    `readers` counts the graph's nodes; a step is read as often as the node it ends with.
    """
    node_of = {s: n for n, s in step_of.items() if n >= 0}
    steps = list(plan.steps)
    for k, step in enumerate(steps):
        if not (isinstance(step, FunctionStep) and step.call.target in INPLACE_FORM and step.call.style == "binary"):
            continue
        first = step.inputs[0]
        if first < 0 or readers.get(node_of[first], 0) != 1 or first in step.inputs[1:]:
            continue
        if graph.nodes[node_of[first]].op.output_overwritable:
            steps[k] = replace(step, inplace=True)
    return replace(plan, steps=tuple(steps))


Run = tuple[str, tuple[str, ...], tuple[str, ...]]


def _chain_values(net: Network) -> list[Tap]:
    """The values taken along the stem-stages-head chain: by taps or by parts, once each."""
    return list({t.path: t for t in [*net.taps, *(s for p in net.attached for s in p.sources)]
                 if t.part != "input" and t.part not in PART_GROUPS}.values())


def head_runs(net: Network) -> bool:
    """Whether the `head:` layers run (and are built): always without taps; with taps, when a tap
    or a part reads them. The compiled module and exported source both ask here."""
    return not net.taps or any(t.part == "head" for t in _chain_values(net))


def tap_runs(net: Network) -> list[Run]:
    """How a network with taps runs: (module path, the values it reads, the values it writes), in
    order. Values are keyed by path: `x` is the running value of the stem/stages/head chain,
    `input` the network's input, a tap's canonical path its value (`stages.1`, `necks.fpn.0`).

    A stage runs whole unless a value is taken inside it, and then block by block; a graph with
    a value taken inside it runs layer by layer; the head only when something reads it; then
    the necks and heads, each after what it reads. The compiled `Features` module and exported
    source both follow this list.
    """
    values = _chain_values(net)
    taken: dict[str, list[str]] = {}
    for tap in values:
        taken.setdefault(tap.after, []).append(tap.path)
    split = {tap.graph_path for tap in values if tap.inside}
    head_tapped = head_runs(net)
    by_block = {t.stage for t in values if t.stage is not None
                and (t.inside or t.block != len(net.stages[t.stage].blocks) - 1)}
    runs: list[Run] = []
    for part in net.parts():
        prefix, graph, group, stage = part.path, part.graph, part.group, part.stage
        if not part.inference or part.attached or (group == "head" and not head_tapped):
            continue
        if group == "stages" and stage not in by_block:
            if part.block == len(net.stages[stage].blocks) - 1:  # type: ignore[index]  # the whole stage, once
                runs.append((part.section, ("x",), ("x", *taken.get(prefix, ()))))
            continue
        if prefix not in split:
            runs.append((prefix, ("x",), ("x", *taken.get(prefix, ()))))
            continue
        for i, node in enumerate(graph.nodes):  # a chain, layer by layer; the graph's own taps after its last
            path = join(prefix, node.name)
            runs.append((path, ("x",), ("x", *taken.get(path, ()), *(taken.get(prefix, ()) if i == graph.output else ()))))
    for attached in net.attached:
        runs.append((attached.path, tuple(s.path for s in attached.sources), tuple(attached.output_keys())))
    return runs
