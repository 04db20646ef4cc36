"""The intermediate representation: small DAGs of typed op nodes, grouped as a network.

A `Graph` is one block's (or the stem's, or the head's) computation: a DAG with one
input and one output whose nodes hold a resolved `Op` and their inferred output
shape. A `Network` groups graphs as stem / stages of blocks / head (plus auxiliary
heads that branch off after a stage). Each node's full module path, such as
`stages.2.blocks.0.conv1`, is the name it gets in the compiled torch module.

The IR knows nothing of YAML or of torch modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

from ..core.errors import SpecPath
from .op import Op, Shape

INPUT = -1  # the graph's input, as a node index


def input_index(k: int) -> int:
    """The node index of a graph's input k (a neck reads several): INPUT, INPUT - 1, ..."""
    return INPUT - k


@dataclass(frozen=True)
class Node:
    name: str  # local to its graph; may be dotted ("downsample.0")
    op: Op
    inputs: tuple[int, ...]  # indices of earlier nodes, or INPUT
    shape: Shape
    origin: SpecPath = ()  # where in the spec the node comes from


@dataclass
class Graph:
    """A DAG in topological order: one input and one output for a block, the stem or the head;
    a neck or a dense head (a `Part`) reads several inputs and may name several outputs."""

    in_shape: Shape
    nodes: list[Node]
    output: int  # node index, or INPUT for an empty graph
    more_inputs: tuple[Shape, ...] = ()  # inputs 1, 2, ...: node indices input_index(k)
    # Named outputs of a part, in order ({"0": node, ..., "pool": node}); empty: `output` alone.
    outputs: dict[str, int] = field(default_factory=dict)
    # What named scopes are, for diagrams: {"se": "squeeze-excitation"} (GraphBuilder.scope's title).
    titles: dict[str, str] = field(default_factory=dict)

    def title_of(self, node: Node) -> tuple[str, str] | None:
        """(scope, title) of the innermost titled scope holding `node`, or None."""
        parts = node.name.split(".")[:-1]
        for k in range(len(parts), 0, -1):
            scope = ".".join(parts[:k])
            if scope in self.titles:
                return scope, self.titles[scope]
        return None

    @property
    def out_shape(self) -> Shape:
        return self.shape_of(self.output)

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return (self.in_shape, *self.more_inputs)

    def shape_of(self, index: int) -> Shape:
        if index >= 0:
            return self.nodes[index].shape
        return self.in_shape if index == INPUT else self.more_inputs[INPUT - index - 1]

    def in_shapes(self, node: Node) -> list[Shape]:
        return [self.shape_of(i) for i in node.inputs]

    def is_chain(self) -> bool:
        """True when node i reads only node i-1 (the first reads the input) and the last is the output."""
        return self.output == len(self.nodes) - 1 and all(
            n.inputs == (i - 1,) for i, n in enumerate(self.nodes)
        )

    def consumers(self) -> dict[int, int]:
        """How many nodes read each value (INPUT included); the output counts as one reader."""
        counts: dict[int, int] = {}
        for n in self.nodes:
            for i in n.inputs:
                counts[i] = counts.get(i, 0) + 1
        for out in {self.output, *self.outputs.values()}:
            counts[out] = counts.get(out, 0) + 1
        return counts


@dataclass
class Block:
    """One block instance: its family, its parameters and its graph."""

    family: str
    graph: Graph
    params: Any = None  # the family's validated parameter model
    origin: SpecPath = ()


@dataclass
class Stage:
    name: str  # display name (the spec's `name`, or "stage{i}")
    blocks: list[Block]
    origin: SpecPath = ()

    @property
    def out_shape(self) -> Shape:
        return self.blocks[-1].graph.out_shape


@dataclass
class AuxHead:
    """A classifier that branches off after a stage and is evaluated in training only."""

    name: str
    after: int  # stage index
    graph: Graph
    origin: SpecPath = ()


@dataclass(frozen=True)
class NodeRef:
    """A node with its place in the network: what analysis and diagrams iterate over."""

    path: str  # full module path, e.g. "stages.2.blocks.0.conv1"
    node: Node
    graph: Graph
    group: str  # "stem", "stages", "head" or "aux"
    stage: int | None = None
    block: int | None = None


@dataclass
class Network:
    name: str
    input_shape: Shape
    stem: Graph
    stages: list[Stage]
    head: Graph
    aux_heads: list[AuxHead] = field(default_factory=list)
    description: str = ""
    # The resolved spec as plain data: enough to rebuild this network anywhere.
    spec_data: dict[str, Any] = field(default_factory=dict)
    init: Any = None
    # Named outputs (`features:`, ir/taps.py): when set, the module returns them as an ordered
    # dict, and the network holds only what they need.
    taps: list[Any] = field(default_factory=list)

    @property
    def output_shape(self) -> Shape:
        return self.head.out_shape

    def graphs(self) -> Iterator[tuple[str, Graph, str, int | None, int | None]]:
        """(module prefix, graph, group, stage, block) for every graph, in module order."""
        yield "stem", self.stem, "stem", None, None
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage.blocks):
                yield f"stages.{s}.blocks.{b}", block.graph, "stages", s, b
        for a, aux in enumerate(self.aux_heads):
            yield f"aux_heads.{a}", aux.graph, "aux", aux.after, None
        yield "head", self.head, "head", None, None

    def nodes(self) -> Iterator[NodeRef]:
        for prefix, graph, group, s, b in self.graphs():
            for node in graph.nodes:
                yield NodeRef(f"{prefix}.{node.name}", node, graph, group, s, b)
