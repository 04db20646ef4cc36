"""The deploy pass: a network's inference form, with the same outputs in eval mode and fewer layers.

It rewrites the IR of any network, not a model at a time, by what each op says of itself
(`Op.deploy_role`):

* a layer that is the identity in eval mode (dropout, stochastic depth) is removed;
* a batch norm (or frozen batch norm) after a conv or linear layer that nothing else reads is
  folded into that layer, which gains a bias;
* a sum of parallel linear branches of one value (kxk convs, 1x1 convs, the value itself, each with
  its norm) becomes one conv, the kernels centred in the largest (RepVGG, ACNet, MobileOne);
  the merged conv takes the name of the conv branch of the largest kernel (the first of them);
* auxiliary heads, which run in training only, are dropped.

Repeated until nothing changes, so a norm after a merged sum folds too. Every other node keeps its
name, so the deployed module's other weights have the training form's keys. How each new layer's
weight and bias come from the training form's modules is a `Fold`, keyed by module path; the torch
backend (`backends/torch_deploy.py`) computes them. Values a tap or a part reads are never folded
away (a tap may read a conv's output before its norm).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ..core.naming import join
from .graph import INPUT, Graph, Network, Node
from .op import Op, Shape
from .taps import Tap
from .ops.conv import Conv


@dataclass(frozen=True)
class Fold:
    """How a deployed layer's weight and bias are made from the training form's modules (by path).

    A leaf is a conv or linear `layer`, or the identity map (`layer` None, no `terms`); an inner
    fold is the sum of its `terms`, kernels centred in the largest. Then `norms` apply in order
    (`y = (x - mean) / sqrt(var + eps) * weight + bias`, folded into the weight and bias).
    """

    layer: str | None = None
    terms: tuple[Fold, ...] = ()
    norms: tuple[str, ...] = ()

    def prefixed(self, prefix: str) -> Fold:
        return Fold(None if self.layer is None else join(prefix, self.layer),
                    tuple(t.prefixed(prefix) for t in self.terms), tuple(join(prefix, n) for n in self.norms))

    def sources(self) -> list[str]:
        """Every training-form module path it reads."""
        own = [] if self.layer is None else [self.layer]
        return own + [p for t in self.terms for p in t.sources()] + list(self.norms)

    def describe(self) -> str:
        """`conv_kxk.conv + conv_1x1.conv + identity, then bn` style, for summaries."""
        if self.terms:
            text = " + ".join(t.describe() for t in self.terms)
            text = f"({text})" if self.norms else text
        else:
            text = self.layer or "identity"
        return text + "".join(f" · {n}" for n in self.norms)


@dataclass
class Deployed:
    """The deployed network and, per deployed module path, how its weights are made."""

    network: Network
    folds: dict[str, Fold] = field(default_factory=dict)
    removed: int = 0  # training-form nodes no longer in the network


@dataclass
class _Entry:
    name: str
    op: Op
    inputs: list[int]
    shape: Shape
    origin: tuple
    fold: Fold | None = None
    alive: bool = True


def _role(op: Op) -> str | None:
    return op.deploy_role()


def _leaf(e: _Entry) -> Fold:
    return e.fold if e.fold is not None else Fold(e.name)


def deploy_graph(graph: Graph, pinned: Iterable[int] = ()) -> tuple[Graph, dict[str, Fold], dict[int, int]]:
    """The graph's inference form, its folds keyed by local node name, and old -> new node index
    (removed nodes map to the node that now computes their value)."""
    keep = set(pinned)
    entries = [_Entry(n.name, n.op, list(n.inputs), n.shape, n.origin) for n in graph.nodes]
    alias: dict[int, int] = {}

    def res(i: int) -> int:
        while i in alias:
            i = alias[i]
        return i

    for i, e in enumerate(entries):
        e.inputs = [res(j) for j in e.inputs]
        if _role(e.op) == "drop" and i not in keep:
            alias[i], e.alive = e.inputs[0], False
    changed = True
    while changed:
        changed = False
        readers: dict[int, int] = {}
        for e in entries:
            if e.alive:
                e.inputs = [res(j) for j in e.inputs]
                for j in e.inputs:
                    readers[j] = readers.get(j, 0) + 1
        for j in [graph.output, *graph.outputs.values(), *keep]:
            readers[res(j)] = readers.get(res(j), 0) + 1
        for i, e in enumerate(entries):
            if not e.alive:
                continue
            e.inputs = [res(j) for j in e.inputs]
            role = _role(e.op)
            if role == "affine" and i not in keep:
                src = e.inputs[0]
                if src >= 0 and _role(entries[src].op) == "linear" and readers.get(src) == 1:
                    s = entries[src]
                    s.fold = replace(_leaf(s), norms=(*_leaf(s).norms, e.name))
                    s.op = s.op.model_copy(update={"bias": True})
                    readers[src] = readers.get(i, 0)
                    alias[i], e.alive, changed = src, False, True
            elif role == "sum" and _merge_sum(entries, i, readers, keep, alias, graph.input_shapes):
                changed = True
    index: dict[int, int] = {INPUT - k: INPUT - k for k in range(len(graph.input_shapes))}
    nodes: list[Node] = []
    folds: dict[str, Fold] = {}
    for i, e in enumerate(entries):
        if e.alive:
            index[i] = len(nodes)
            nodes.append(Node(e.name, e.op, tuple(index[j] for j in e.inputs), e.shape, e.origin))
            if e.fold is not None:
                folds[e.name] = e.fold
    mapping = {i: index[res(i)] for i in range(len(entries)) if res(i) in index}  # merged branches: gone
    out = Graph(graph.in_shape, nodes, index[res(graph.output)], graph.more_inputs,
                {k: index[res(v)] for k, v in graph.outputs.items()}, dict(graph.titles))
    return out, folds, mapping


def _merge_sum(entries: list[_Entry], i: int, readers: dict[int, int], keep: set[int], alias: dict[int, int],
               inputs: tuple[Shape, ...]) -> bool:
    """Merge the linear branches of one value among the inputs of sum `i` into one conv."""
    add = entries[i]
    if len(add.shape) != 3:
        return False
    # source value -> its branches: (position in the sum, entry or None for the value itself, fold, conv or None)
    branches: dict[int, list[tuple[int, int | None, Fold, Op | None]]] = {}
    for pos, j in enumerate(add.inputs):
        e = entries[j] if j >= 0 else None
        if e is not None and readers.get(j) == 1 and j not in keep and len(e.shape) == 3:
            role = _role(e.op)
            if role == "linear":
                branches.setdefault(e.inputs[0], []).append((pos, j, _leaf(e), e.op))
                continue
            if role == "affine":
                branches.setdefault(e.inputs[0], []).append((pos, j, Fold(norms=(e.name,)), None))
                continue
        branches.setdefault(j, []).append((pos, None, Fold(), None))
    for source, terms in branches.items():
        convs = [op for _, _, _, op in terms if op is not None]
        if len(terms) < 2 or not convs:
            continue
        in_shape = entries[source].shape if source >= 0 else inputs[INPUT - source]
        merged = _merged_conv(convs, any(op is None for _, _, _, op in terms), in_shape, add.shape)
        if merged is None:
            continue
        # it takes the place and name of the widest conv branch (its geometry): `conv_kxk.conv`
        first = max((j for _, j, _, op in terms if op is not None),
                    key=lambda j: (entries[j].op.k[0] * entries[j].op.k[1], -j))  # type: ignore[attr-defined]  # a term with an op is a conv branch: its op is a Conv
        for _, j, _, _ in terms:
            if j is not None and j != first:
                entries[j].alive = False
        target = entries[first]
        target.op, target.inputs, target.fold = merged, [source], Fold(terms=tuple(f for _, _, f, _ in terms))
        used = {pos for pos, _, _, _ in terms}
        rest = [j for pos, j in enumerate(add.inputs) if pos not in used]
        if rest:
            add.inputs = [first, *rest]  # type: ignore[list-item]  # first is a conv branch's index, never None
        else:  # the merged conv is the sum now: whatever read the sum reads it
            alias[i], add.alive = first, False
            readers[first] = readers.get(i, 0)
        return True
    return False


def _merged_conv(convs: list[Op], identity: bool, in_shape: Shape, out: Shape) -> Op | None:
    """One conv computing the sum of `convs` (and the identity too, when `identity`), or None
    when they cannot be merged: equal stride, dilation, groups and output; odd kernels padded to
    stay centred ("same" padding at stride 1)."""
    if not all(isinstance(c, Conv) for c in convs):
        return None
    ins = [in_shape]
    first = convs[0]
    g = first.g(ins)  # type: ignore[attr-defined]  # every item is a Conv (checked above): k, s, p, d and g are its fields
    for c in convs:
        if c.s != first.s or c.d != first.d or c.g(ins) != g or c.out != out[0]:  # type: ignore[attr-defined]  # conv ops, as above
            return None
        if any(k % 2 == 0 or p * 2 != d * (k - 1) for k, p, d in zip(c.k, c.p, c.d)):  # type: ignore[attr-defined]  # conv ops, as above
            return None
    if identity and (first.s != (1, 1) or tuple(in_shape) != tuple(out)):  # type: ignore[attr-defined]  # conv ops, as above
        return None
    kernel = tuple(max(c.k[a] for c in convs) for a in range(2))  # type: ignore[attr-defined]  # conv ops, as above
    padding = tuple(first.d[a] * (kernel[a] - 1) // 2 for a in range(2))  # type: ignore[attr-defined]  # conv ops, as above
    merged = first.model_copy(update={"kernel": kernel, "padding": padding, "groups": g, "bias": True})
    return merged if merged.out_shape(ins) == tuple(out) else None


def deploy_network(net: Network) -> Deployed:
    """The network's inference form (see the module docstring); aux heads dropped."""
    pinned: dict[str, set[int]] = {}
    for tap in [*net.taps, *(s for p in net.attached for s in p.sources)]:
        if tap.node >= 0:
            pinned.setdefault(tap.graph_path, set()).add(tap.node)
    done: dict[tuple[int, frozenset[int]], tuple[Graph, dict[str, Fold], dict[int, int]]] = {}
    graphs: dict[str, Graph] = {}
    mappings: dict[str, dict[int, int]] = {}
    deployed = Deployed(net)
    for part in net.parts():
        if not part.inference:
            continue
        key = (id(part.graph), frozenset(pinned.get(part.path, ())))
        if key not in done:  # blocks share graphs: rewrite each once
            done[key] = deploy_graph(part.graph, key[1])
        graph, folds, mapping = done[key]
        graphs[part.path], mappings[part.path] = graph, mapping
        deployed.folds.update({join(part.path, name): fold.prefixed(part.path) for name, fold in folds.items()})
        deployed.removed += len(part.graph.nodes) - len(graph.nodes)

    def tap(t: Tap) -> Tap:
        return t if t.node < 0 or t.graph_path not in mappings else replace(t, node=mappings[t.graph_path][t.node])

    stages = [replace(stage, blocks=[replace(block, graph=graphs[f"stages.{s}.blocks.{b}"])
                                     for b, block in enumerate(stage.blocks)]) for s, stage in enumerate(net.stages)]
    attached = [replace(a, graph=graphs[a.path], sources=[tap(t) for t in a.sources]) for a in net.attached]
    deployed.network = replace(net, stem=graphs["stem"], stages=stages, head=graphs["head"], aux_heads=[],
                               attached=attached, taps=[tap(t) for t in net.taps])
    return deployed
