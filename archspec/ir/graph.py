"""The intermediate representation: small DAGs of typed op nodes, grouped as a network.

A `Graph` is one block's (or the stem's, or the head's) computation: a DAG with one
input and one output whose nodes hold a resolved `Op` and their inferred output
shape. A `Network` groups graphs as stem / stages of blocks / head (plus auxiliary
heads that branch off after a stage). Each node's full module path, such as
`stages.2.blocks.0.conv1`, is the name it gets in the compiled torch module.

The IR knows nothing of YAML or of torch modules.

Everything here is immutable once built (a `Node` is a named tuple: `node._replace(op=...)`
makes a changed copy): frozen dataclasses whose sequences are tuples and
whose mappings are read-only (`FrozenDict`); lists and dicts given to a constructor are
converted (the fields are typed `Sequence` and `Mapping`, the read-only views). Graphs are
shared between the blocks of a stage, between networks and across a sweep, and analysis
remembers what it derived from a graph by its identity (core/memo.py), so an edit in place
would corrupt every later answer: it raises instead. To change a network, make a new one
(`Network.map_graphs`, `dataclasses.replace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..core import memo
from ..core.errors import SpecPath
from ..core.frozen import FrozenDict, freeze
from ..core.naming import join
from .op import Op, Shape

INPUT = -1  # the graph's input, as a node index

# The groups of parts that read several values (`necks.fpn`, `heads.classifier`), in the order
# they run. The spec holds each under the key of the same name (spec.models.SpecModel); a new
# group is an entry here and a field there, and every walk of the network follows.
PART_GROUPS: tuple[str, ...] = ("necks", "heads")


def input_index(k: int) -> int:
    """The node index of a graph's input k (a neck reads several): INPUT, INPUT - 1, ..."""
    return INPUT - k


# `named_tuple(Cls, (field, ...))` makes a named tuple from a plain one, every field given: the
# class's own __new__ is a Python function, and the IR and its analysis make one for every node
# and part of every network a sweep lowers.
named_tuple: Any = tuple.__new__


class Node(NamedTuple):
    """One op applied to earlier values. A named tuple (immutable, and made in a fraction of a
    frozen dataclass's time: a sweep makes millions)."""

    name: str  # local to its graph; may be dotted ("downsample.0")
    op: Op
    inputs: tuple[int, ...]  # indices of earlier nodes, or INPUT
    shape: Shape
    origin: SpecPath = ()  # where in the spec the node comes from


def _set(obj: object, **values: Any) -> None:
    """Assign fields of a frozen dataclass in its __post_init__ (the one place it is allowed)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Graph:
    """A DAG in topological order: one input and one output for a block, the stem or the head;
    a neck or a dense head (a `Part`) reads several inputs and may name several outputs."""

    in_shape: Shape
    nodes: Sequence[Node]  # a tuple once built
    output: int  # node index, or INPUT for an empty graph
    more_inputs: Sequence[Shape] = ()  # inputs 1, 2, ...: node indices input_index(k)
    # Named outputs of a part, in order ({"0": node, ..., "pool": node}); empty: `output` alone.
    outputs: Mapping[str, int] = field(default_factory=FrozenDict)
    # What named scopes are, for diagrams: {"se": "squeeze-excitation"} (GraphBuilder.scope's title).
    titles: Mapping[str, str] = field(default_factory=FrozenDict)
    # Nodes that take their block's stochastic-depth rate in their per-block fields
    # (`GraphBuilder.stochastic_depth`): the blocks of a stage share one emitted graph and differ
    # only there (`with_rate`).
    scheduled: tuple[int, ...] = field(default=(), init=False, compare=False, repr=False)
    # The graph this one was made from by `with_rate`. No rate changes a shape, a count or a
    # receptive field, so analysis keeps what it derives by the template's identity (`analysed_as`).
    template: Graph | None = field(default=None, init=False, compare=False, repr=False)
    # The nodes' (params, buffers, macs), summed by the builder as it emitted them (`counting`), or
    # None: analysis counts them itself (a sweep's bound asks for them of every new graph).
    counts: tuple[int, int, int] | None = field(default=None, init=False, compare=False, repr=False)
    # Both are set where the graph is made (`scheduling`) and are not constructor arguments, so
    # that `dataclasses.replace` (a transformed graph: other nodes) drops them: a changed graph
    # neither rebinds rates at stale indices nor shares an analysis that is no longer its own.

    def __post_init__(self) -> None:
        _set(self, nodes=tuple(self.nodes), more_inputs=tuple(self.more_inputs),
             outputs=_frozen(self.outputs), titles=_frozen(self.titles))

    def scheduling(self, scheduled: Sequence[int], template: Graph | None = None) -> Graph:
        """This new graph, its scheduled nodes and template set (by the builder, by `with_rate`)
        before anyone reads it; returns it."""
        _set(self, scheduled=tuple(scheduled), template=template)
        return self

    def reading_as(self, other: Graph) -> Graph:
        """This new graph, whose nodes read what `other`'s nodes read (the same nodes at other shapes:
        `at_input`), with `other`'s count of readers (`consumers`, counted once for both); returns it."""
        other.consumers()
        self.__dict__["_consumers"] = other.__dict__["_consumers"]
        return self

    def counting(self, counts: tuple[int, int, int]) -> Graph:
        """This new graph with its nodes' (params, buffers, macs) set (by the builder) before anyone
        reads it; returns it."""
        _set(self, counts=counts)
        return self

    @property
    def analysed_as(self) -> Graph:
        """The graph whose analysis this one shares: its template, or itself."""
        return self.template if self.template is not None else self

    @property
    def rate(self) -> float | None:
        """The stochastic-depth rate of the scheduled nodes (None: the graph has none)."""
        if not self.scheduled:
            return None
        state = self.__dict__
        if "_rate" in state:  # rebound by `with_rate`: known without making its nodes
            return state["_rate"]
        if "_emitted_rate" not in state:  # read once: lowering asks for every block of every sample
            op = self.nodes[self.scheduled[0]].op
            state["_emitted_rate"] = getattr(op, type(op).per_block_fields[0])
        return state["_emitted_rate"]

    def with_rate(self, rate: float) -> Graph:
        """This graph with stochastic-depth rate `rate` in its scheduled nodes (the same graph when
        it has none, or has that rate): how a stage's later blocks reuse its first block's graph.

        The new graph's nodes are made when first read. A sweep rebinds most blocks of every sample
        (each depth gives each block another rate) and analyses their template alone; the names and
        shapes of a rebound graph are its template's (`shape_of` reads them there)."""
        if not self.scheduled or self.rate == rate:
            return self
        template = self.analysed_as
        hit = _REBOUND.get((id(template), rate), template)  # a schedule's rates recur from network to network
        if hit is memo.MISS:
            rebound = object.__new__(Graph)  # `dataclasses.replace` without the constructor's conversions
            state = rebound.__dict__
            state.update(template.__dict__)
            del state["nodes"]
            state.pop("_emitted_rate", None)
            state["template"], state["_rate"] = template, rate  # `scheduling`'s, the schedule being the template's
            hit = _REBOUND.put((id(template), rate), rebound, template)
        return hit

    if not TYPE_CHECKING:  # the checker keeps refusing unknown attributes of a Graph

        def __getattr__(self, name: str) -> Any:
            """Called for an attribute that is not set: the nodes of a graph rebound by `with_rate`,
            made on their first read from the template's, each scheduled op at the graph's rate."""
            state = self.__dict__
            if name != "nodes" or "_rate" not in state:
                raise AttributeError(f"'Graph' object has no attribute '{name}'")
            template, rate = state["template"], state["_rate"]
            nodes = list(template.nodes)
            for i in template.scheduled:
                nodes[i] = nodes[i]._replace(op=_at_rate(nodes[i].op, rate))
            _set(self, nodes=tuple(nodes))
            return state["nodes"]

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
            return self.analysed_as.nodes[index].shape  # a rebound graph's shapes are its template's
        return self.in_shape if index == INPUT else self.more_inputs[INPUT - index - 1]

    def in_shapes(self, node: Node) -> list[Shape]:
        return [self.shape_of(i) for i in node.inputs]

    def is_chain(self) -> bool:
        """True when node i reads only node i-1 (the first reads the input) and the last is the output."""
        return self.output == len(self.nodes) - 1 and all(
            n.inputs == (i - 1,) for i, n in enumerate(self.nodes)
        )

    def consumers(self) -> dict[int, int]:
        """How many nodes read each value (INPUT included); the output counts as one reader. A new
        dict each time (the caller's to change), counted once per graph and shared with the graphs
        made from it with the same nodes (`at_input`, `with_rate`): analysis asks for every new graph."""
        state = self.__dict__
        counts = state.get("_consumers")
        if counts is None:
            counts = state["_consumers"] = {}
            for n in self.nodes:
                for i in n.inputs:
                    counts[i] = counts.get(i, 0) + 1
            for out in {self.output, *self.outputs.values()}:
                counts[out] = counts.get(out, 0) + 1
        return dict(counts)


_RATED: memo.Memo[Op] = memo.Memo("ir.rated_ops", 16384)
_REBOUND: memo.Memo[Graph] = memo.Memo("ir.rated_graphs", 8192)


def _at_rate(op: Op, rate: float) -> Op:
    """`op` with `rate` in its per-block fields, one op per (op, rate): the rates of a schedule
    repeat from network to network."""
    hit = _RATED.get((id(op), rate), op)
    if hit is memo.MISS:
        hit = _RATED.put((id(op), rate), op.model_copy(update=dict.fromkeys(type(op).per_block_fields, rate)), op)
    return hit


def _frozen(mapping: Any) -> FrozenDict:
    return mapping if type(mapping) is FrozenDict else FrozenDict(mapping)


@dataclass(frozen=True)
class Block:
    """One block instance: its family, its parameters and its graph."""

    family: str
    graph: Graph
    params: Any = None  # the family's validated parameter model
    origin: SpecPath = ()

    @classmethod
    def of(cls, family: str, graph: Graph, params: Any, origin: SpecPath) -> Block:
        """`Block(family, graph, params, origin)`, made without the frozen dataclass's constructor
        (which sets each field through `object.__setattr__`): lowering makes one for every block of
        every sample."""
        block = object.__new__(cls)
        block.__dict__.update(family=family, graph=graph, params=params, origin=origin)
        return block


@dataclass(frozen=True)
class Stage:
    name: str  # display name (the spec's `name`, or "stage{i}")
    blocks: Sequence[Block]
    origin: SpecPath = ()

    def __post_init__(self) -> None:
        _set(self, blocks=tuple(self.blocks))

    @property
    def out_shape(self) -> Shape:
        return self.blocks[-1].graph.out_shape


@dataclass(frozen=True)
class AuxHead:
    """A classifier that branches off after a stage and is evaluated in training only."""

    name: str
    after: int  # stage index
    graph: Graph
    origin: SpecPath = ()


@dataclass(frozen=True)
class Attached:
    """A neck or a dense head: a graph reading several earlier values (`sources`, one per graph
    input, each an `ir.taps.Tap`), with one output or several named ones (`graph.outputs`)."""

    group: str  # one of PART_GROUPS
    name: str
    family: str
    sources: Sequence[Any]  # ir.taps.Tap, one per graph input
    graph: Graph
    origin: SpecPath = ()

    def __post_init__(self) -> None:
        _set(self, sources=tuple(self.sources))

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}"

    def output_keys(self) -> list[str]:
        """The value key of each output: `necks.fpn.0`, ... or the part's path for a single one."""
        return [f"{self.path}.{n}" for n in self.graph.outputs] if self.graph.outputs else [self.path]


class Part(NamedTuple):
    """One graph of the network with its place in it (a named tuple: a sweep walks every sample's
    network, tens of parts each, and a tuple is made in a fraction of a frozen dataclass's time).
    `Network.parts()` yields these; the torch backend, analysis, diagrams and Python export all
    walk them, so no module path is spelled anywhere else.

    path: the graph's module path in the compiled network ("stem", "stages.2.blocks.0",
          "aux_heads.1", "head"); a node's path is `naming.join(part.path, node.name)`.
    section: the row the part folds into above block level ("stem", "stages.2",
          "aux_heads.1", "head"); the blocks of a stage share one.
    group: what kind of part it is: "stem", "stages", "aux", "head", or one of PART_GROUPS
          ("necks", "heads": parts that read several values) (reports print it).
    family: what builds it, which names its class: the block family ("bottleneck", as
          `Block.family`), or "stem", "head", "aux_head" for the fixed parts.
    source: the path of the part whose output this part reads; "" for the network input.
    inference: whether it runs in eval mode; aux heads do not (nor count in MACs or memory).
    title: the section's display name ("stem", a stage's name, an aux head's name).
    stage, block: the stage and block index of a block; `stage` of an aux head is the stage
          it follows.
    """

    path: str
    section: str
    group: str
    family: str
    graph: Graph
    source: str
    inference: bool = True
    title: str = ""
    stage: int | None = None
    block: int | None = None

    @property
    def attached(self) -> bool:
        """A part of `Network.attached` (a neck or head), beside the stem-stages-head chain."""
        return self.group in PART_GROUPS


@dataclass(frozen=True)
class NodeRef:
    """A node with its place in the network: what analysis and diagrams iterate over."""

    path: str  # full module path, e.g. "stages.2.blocks.0.conv1"
    node: Node
    graph: Graph
    group: str  # "stem", "stages", "head" or "aux"
    stage: int | None = None
    block: int | None = None


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: Shape
    stem: Graph
    stages: Sequence[Stage]
    head: Graph
    aux_heads: Sequence[AuxHead] = ()
    description: str = ""
    # The resolved spec as plain data (read-only; `core.frozen.thaw` makes a plain copy):
    # enough to rebuild this network anywhere.
    spec_data: Mapping[str, Any] = field(default_factory=FrozenDict)
    init: Any = None
    # Named outputs (`features:`, ir/taps.py): when set, the module returns them as an ordered
    # dict, and the network holds only what they need.
    taps: Sequence[Any] = ()
    # Necks and dense heads, in the order they run (each after everything it reads).
    attached: Sequence[Attached] = ()

    def __post_init__(self) -> None:
        _set(self, input_shape=tuple(self.input_shape), stages=tuple(self.stages),
             aux_heads=tuple(self.aux_heads), taps=tuple(self.taps), attached=tuple(self.attached),
             spec_data=self.spec_data if type(self.spec_data) is FrozenDict else freeze(self.spec_data))

    @property
    def output_shape(self) -> Shape:
        return self.head.out_shape

    def parts(self) -> Iterator[Part]:
        """Every graph of the network, in the order the compiled module registers them
        (stem, the stages' blocks, aux heads, head, then the necks and heads), each with its
        module path. A neck or head reads several values: its `source` is the first one's part
        (`Network.attached` holds them all).

        This is the one place that knows the network's skeleton. To add a kind of part
        (a neck, several heads, taps reading several stages): give `Network` a field for
        it, yield its Parts here, in module order, with a `source` naming the part each
        reads. Analysis, diagrams and the node paths then follow without change; the
        torch backend (`torch_layers.Network`) and Python export (`python_source`) hold
        the container that runs the parts and must learn to call the new one.
        """
        walked = self.__dict__.get("_parts")
        if walked is None:  # walked once: the network cannot change, and analysis walks it several times
            walked = self.__dict__["_parts"] = tuple(self._walk())
        return iter(walked)

    def _walk(self) -> Iterator[Part]:
        yield Part("stem", "stem", "stem", "stem", self.stem, "", title="stem")
        source = "stem"
        ends: dict[int, str] = {}  # stage index -> path of its last block
        for s, stage in enumerate(self.stages):
            section = f"stages.{s}"
            for b, block in enumerate(stage.blocks):
                path = f"{section}.blocks.{b}"
                # every field given (see `named_tuple`): most parts are blocks
                yield named_tuple(Part, (path, section, "stages", block.family, block.graph, source, True, stage.name, s, b))
                source = path
            ends[s] = source
        for a, aux in enumerate(self.aux_heads):
            path = f"aux_heads.{a}"
            yield Part(path, path, "aux", "aux_head", aux.graph, ends.get(aux.after, source), inference=False,
                       title=aux.name, stage=aux.after)
        yield Part("head", "head", "head", "head", self.head, source, title="head")
        for part in self.attached:  # necks and heads, each after what it reads
            yield Part(part.path, part.path, part.group, part.family, part.graph,
                       part.sources[0].graph_path if part.sources else "", title=part.path)

    def map_graphs(self, change: Callable[[Graph], Graph]) -> Network:
        """A new network with every graph (stem, blocks, aux heads, head, necks and heads)
        replaced by `change(graph)`; this one is left as it is. Each distinct graph is changed
        once (blocks share graphs), so `change` may return the graph itself to keep it."""
        done: dict[int, Graph] = {}

        def new(graph: Graph) -> Graph:
            if id(graph) not in done:
                done[id(graph)] = change(graph)
            return done[id(graph)]

        return replace(
            self, stem=new(self.stem), head=new(self.head),
            stages=tuple(replace(s, blocks=tuple(replace(b, graph=new(b.graph)) for b in s.blocks))
                         for s in self.stages),
            aux_heads=tuple(replace(a, graph=new(a.graph)) for a in self.aux_heads),
            attached=tuple(replace(a, graph=new(a.graph)) for a in self.attached))

    def nodes(self) -> Iterator[NodeRef]:
        for part in self.parts():
            for node in part.graph.nodes:
                yield NodeRef(join(part.path, node.name), node, part.graph, part.group, part.stage, part.block)
