"""Taps: named outputs taken anywhere along the network (torchvision's IntermediateLayerGetter,
timm's `features_only` / `out_indices`).

A spec writes them under `features:`

    features: stages                          # the end of every stage, named by path
    features: [1, 2, 3]                       # stage indices (timm's out_indices)
    features: [stages.1, stages.3.blocks.2, stem.maxpool]
    features: {c3: stages.1, c5: stages.3}    # names of your own, in this order

A path is `stem`, `stages.I` (index or stage name), `stages.I.blocks.J`, `head`, or one of
those followed by a layer name inside a part that runs as a plain chain (`stem.maxpool`,
`head.fc`). Resolving a tap says which module's output it is (`after`), and which IR node
holds its numbers (`graph`, `node`), so that the torch backend and the analysis agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.errors import LocatedError, SpecPath, did_you_mean
from ..core.naming import parse_index
from .graph import INPUT, PART_GROUPS, Attached, Graph, Network, Part, Stage


class TapError(LocatedError):
    """A tap that names nothing; `origin` is where in the spec it is written."""


@dataclass(frozen=True)
class Tap:
    name: str  # the key in the returned dict
    path: str  # canonical: "stages.1", "stages.3.blocks.2", "stem.maxpool", "head"
    after: str  # the module whose output this is: the last one run to compute it
    graph_path: str  # the module path of the graph whose node holds the value (a part's path)
    node: int  # that node's index in its graph, or INPUT for an empty graph's input
    stage: int | None = None  # the stage it ends in (for truncation)
    block: int | None = None
    inside: bool = False  # a layer inside a chain: the chain is run layer by layer
    origin: SpecPath = ()

    @property
    def part(self) -> str:
        return self.path.split(".")[0]


def _valid(what: str, name: str, choices: list[str], origin: SpecPath, where: str = "") -> TapError:
    shown = ", ".join(choices) if len(choices) <= 40 else ", ".join(choices[:40]) + ", ..."
    place = f" in {where}" if where else ""
    return TapError(f"no {what} '{name}'{place}{did_you_mean(name, choices)}; valid there: {shown}", origin)


def _layer(prefix: str, graph: Graph, rest: list[str], origin: SpecPath) -> tuple[int, bool]:
    """The node that `rest` names in `graph` (its output when `rest` is empty)."""
    if not rest:
        return graph.output, False
    name = ".".join(rest)
    names = [n.name for n in graph.nodes]
    if name not in names:
        raise _valid("layer", name, names, origin, prefix)
    if not (graph.is_chain() and all("." not in n for n in names)):
        raise TapError(f"'{prefix}' is not a plain chain of layers (it branches), so no layer inside it can be "
                       f"tapped; tap '{prefix}' itself", origin)
    return names.index(name), True


def _stage_parts(net: Network) -> list[list[Part]]:
    """Each stage's blocks as the network's walk (`Network.parts`) names them."""
    stages: list[list[Part]] = [[] for _ in net.stages]
    for part in net.parts():
        if part.group == "stages":
            stages[part.stage].append(part)  # type: ignore[index]  # a block's part always has its stage index
    return stages


def _resolve(name: str, path: str, net: Network, origin: SpecPath, walked: list[list[Part]] | None = None) -> Tap:
    walked = _stage_parts(net) if walked is None else walked
    sections = [blocks[0].section for blocks in walked]
    parts = path.split(".")
    top = parts[0]
    if top in ("stem", "head"):
        graph = net.stem if top == "stem" else net.head
        node, inside = _layer(top, graph, parts[1:], origin)
        full = ".".join(parts)
        return Tap(name, full, full if inside else top, top, node, inside=inside, origin=origin)
    if top != "stages":
        raise _valid("part", top, ["stem", "stages", "head"], origin)
    if len(parts) < 2:
        raise TapError("'stages' names every stage: write it alone as `features: stages`, or pick one "
                       f"({sections[0]} .. {sections[-1]})" if sections else "the network has no stages", origin)
    names = [stage.name for stage in net.stages]
    key = parts[1]
    index = parse_index(key)
    if index is not None and index < len(net.stages):
        s = index
    elif key in names:
        s = names.index(key)
    else:
        raise _valid("stage", key, [str(i) for i in range(len(net.stages))] + [n for n in names if not n.startswith("stage")],
                     origin)
    stage, blocks, section = net.stages[s], walked[s], sections[s]
    if len(parts) == 2:
        b = len(stage.blocks) - 1
        return Tap(name, section, blocks[b].path, blocks[b].path, stage.blocks[b].graph.output, s, b, origin=origin)
    if parts[2] != "blocks":
        raise _valid("key", parts[2], ["blocks"], origin, section)
    found = parse_index(parts[3]) if len(parts) > 3 else None
    if found is None or found >= len(stage.blocks):
        got = parts[3] if len(parts) > 3 else ""
        raise _valid("block", got, [str(i) for i in range(len(stage.blocks))], origin, section)
    b = found
    prefix = blocks[b].path
    node, inside = _layer(prefix, stage.blocks[b].graph, parts[4:], origin)
    full = ".".join([prefix, *parts[4:]])
    return Tap(name, full, full if inside else prefix, prefix, node, s, b, inside, origin)


def resolve(name: str | None, path: str, net: Network, origin: SpecPath,
            parts: dict[str, Attached] | None = None) -> list[Tap]:
    """The values `path` names: one, or every output of a part with several (named by their
    output names, or `name.output` under a name of your own). `input` is the network's input."""
    if path == "input":
        return [Tap(name or "input", "input", "", "", INPUT, origin=origin)]
    bits = path.split(".")
    if bits[0] not in PART_GROUPS:
        return [_resolve(name or path, path, net, origin)]
    parts = parts if parts is not None else {p.path: p for p in net.attached}
    names = [p.split(".", 1)[1] for p in parts if p.startswith(bits[0] + ".")]
    if len(bits) < 2 or f"{bits[0]}.{bits[1]}" not in parts:
        raise _valid(bits[0][:-1], bits[1] if len(bits) > 1 else "", names, origin)
    part = parts[f"{bits[0]}.{bits[1]}"]
    outs = part.graph.outputs
    if len(bits) > 2:
        out = ".".join(bits[2:])
        if out not in outs:
            raise _valid("output", out, list(outs), origin, part.path)
        return [Tap(name or f"{part.path}.{out}", f"{part.path}.{out}", part.path, part.path, outs[out], origin=origin)]
    if not outs:
        return [Tap(name or part.path, part.path, part.path, part.path, part.graph.output, origin=origin)]
    return [Tap(out if name is None else f"{name}.{out}", f"{part.path}.{out}", part.path, part.path, node,
                origin=origin) for out, node in outs.items()]


def every_stage(net: Network) -> list[Tap]:
    """The end of every stage, each named by its path (`features: stages`)."""
    walked = _stage_parts(net)
    return [_resolve(blocks[0].section, blocks[0].section, net, ("features",), walked) for blocks in walked]


def default_outputs(net: Network) -> list[Tap]:
    """What a network with parts returns when the spec names no taps: the outputs of every part of
    the last group that has any (every head's, else every neck's)."""
    group = next(g for g in reversed(PART_GROUPS) if any(p.group == g for p in net.attached))
    return [tap for p in net.attached if p.group == group
            for tap in resolve(p.name if not p.graph.outputs else None, p.path, net, ("features",))]


def resolve_taps(features: Any, net: Network) -> list[Tap]:
    """The taps a spec's `features:` value names, in order, checked against the network."""
    if features is None:
        return default_outputs(net) if net.attached else []
    if features == "stages":
        return every_stage(net)
    if isinstance(features, str):
        features = [features]
    items: list[tuple[str | None, Any, SpecPath]]
    if isinstance(features, dict):
        items = [(str(k), v, ("features", k)) for k, v in features.items() if v is not None]  # null: removed
    else:
        items = [(None, v, ("features", i)) for i, v in enumerate(features)]
    if not items:
        raise TapError("features is empty: name at least one tap, or leave the key out", ("features",))
    taps: list[Tap] = []
    for name, value, origin in items:
        path = f"stages.{value}" if isinstance(value, int) else str(value)
        for tap in resolve(name, path, net, origin):
            if tap.part == "input":
                raise TapError("the network's input is not a feature: tap a part of the network", origin)
            if any(t.name == tap.name for t in taps):
                raise TapError(f"two taps are named '{tap.name}'", origin)
            taps.append(tap)
    return taps


def truncate(net: Network, taps: list[Tap]) -> Network:
    """The network without what no tap needs: parts no tap reads (directly or through another
    part), later stages and blocks, auxiliary heads, and the head unless something reads it."""
    by_path = {p.path: p for p in net.attached}
    needed: set[str] = set()
    stack = [t.graph_path for t in taps if t.part in PART_GROUPS]
    while stack:
        path = stack.pop()
        if path not in needed:
            needed.add(path)
            stack += [s.graph_path for s in by_path[path].sources if s.part in PART_GROUPS]
    parts = [p for p in net.attached if p.path in needed]
    values = [*taps, *(s for p in parts for s in p.sources)]
    if any(t.part == "head" for t in values):
        return replace(net, aux_heads=(), taps=taps, attached=parts)
    last = max(((t.stage, t.block) for t in values if t.stage is not None), default=None)
    stages: tuple[Stage, ...] = ()
    if last is not None:
        s, b = last
        stages = (*net.stages[:s], replace(net.stages[s], blocks=net.stages[s].blocks[:b + 1]))
    shape = stages[-1].out_shape if stages else net.stem.out_shape
    return replace(net, stages=stages, head=Graph(shape, (), INPUT), aux_heads=(), taps=taps, attached=parts)
