"""One pass over the IR computes every per-layer number; `Report` holds them.

Conventions (also printed by the CLI):
* MACs: one fused multiply-add counted once, over conv and linear layers, on the
  inference path (auxiliary heads excluded): torchvision's documented GFLOPS.
* FLOPs: 2 x MACs.
* Activation memory: output elements x dtype bytes x batch, summed over the layers of
  the inference path; the forward peak is the most bytes alive at once when each
  value is freed after its last reader (inputs of a block stay alive until then).
* Depth: the most conv and linear layers on any input-to-output path (ResNet-50: 50).
* Receptive field: size, stride (the effective stride, Araujo et al.'s jump) and padding per axis (h, w); the
  network's field is taken at the end of the feature extractor, before global
  pooling, flatten and the classifier, as published tables do.
"""

from __future__ import annotations

import fnmatch

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..core.formatting import shape_text
from ..core import memo
from ..core.errors import SpecPath
from ..core.naming import join
from ..ir.graph import INPUT, Graph, Network, named_tuple
from ..ir.op import RF, Op, Shape, Window, union_fits
from ..ir.taps import every_stage
from .report_text import heading, layer_record, outputs_text, report_dataframe, report_html, report_text, summary_table

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}

CONVENTIONS = {
    "macs": "one fused multiply-add counted once, over conv and linear layers on the inference (eval) path, "
            "auxiliary heads excluded: the convention of torchvision's documented GFLOPS",
    "flops": "2 x macs",
    "activation_bytes": "output elements x dtype bytes x batch, summed over the layers of the inference path",
    "peak_activation_bytes": "most output bytes alive at once in a forward pass, each freed after its last reader",
    "receptive_field": "size, stride and padding per axis [h, w]; unit i of a layer sees input pixels "
                       "[-padding + i*stride, -padding + i*stride + size - 1], plus the context [first, last] per "
                       "axis that every unit sees through a broadcast global value (squeeze-and-excitation); the "
                       "network's field is taken at the end of the feature extractor, before global pooling and "
                       "the classifier",
    "depth": "most conv and linear layers on any path from input to output",
}


@dataclass(slots=True)  # not frozen: a frozen dataclass is 5x slower to create, and reports make thousands
class LayerInfo:
    """One layer of the report: the IR node's numbers, under its module path."""

    name: str  # module path
    op: str  # op kind
    category: str
    group: str  # stem / stages / aux / head
    stage: int | None
    block: int | None
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int
    buffers: int
    macs: int
    rf: RF
    origin: tuple = ()
    node_op: Op | None = field(default=None, repr=False, compare=False)  # the IR op, for its label
    part: str = ""  # the module path of its graph ("stages.2.blocks.0"): its row at block level
    section: str = ""  # its row at stage level ("stages.2")

    @property
    def label(self) -> str:
        """A short human label such as `conv 3x3/2, 64->128` (computed on demand)."""
        return self.node_op.label(list(self.input_shapes)) if self.node_op is not None else self.op

    @property
    def window(self) -> Window | None:
        """Kernel, stride, padding, dilation and groups of a conv or pool (from its op); None otherwise."""
        return self.node_op.window(list(self.input_shapes)) if self.node_op is not None else None

    @property
    def kernel(self) -> tuple[int, int] | None:
        return self.window.kernel if self.window else None

    @property
    def stride(self) -> tuple[int, int] | None:
        return self.window.stride if self.window else None

    @property
    def dilation(self) -> tuple[int, int] | None:
        return self.window.dilation if self.window else None

    @property
    def groups(self) -> int | None:
        return self.window.groups if self.window else None

    @property
    def input_shape(self) -> Shape | None:
        """The first input's shape (a merge has several: `input_shapes`)."""
        return self.input_shapes[0] if self.input_shapes else None

    @property
    def activation_elements(self) -> int:
        return math.prod(self.output_shape)


@dataclass(frozen=True)
class FeatureInfo:
    """One tap's numbers: what a detector or segmentation head needs to know of it, without torch."""

    name: str  # the key in the returned dict
    path: str  # the tap as written, canonical ("stages.1", "stem.maxpool")
    layer: str  # the layer whose output it is
    shape: Shape  # (C, H, W) at the spec's input size
    rf: RF

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def reduction(self) -> int | tuple:
        """The input pixels between neighbouring units (timm's `reduction`): the field's stride."""
        return self.rf.stride[0] if self.rf.stride[0] == self.rf.stride[1] else self.rf.stride

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "layer": self.layer, "channels": self.channels,
                "reduction": self.reduction, "shape": list(self.shape),
                "receptive_field": {"size": list(self.rf.size), "stride": list(self.rf.stride),
                                    "padding": list(self.rf.padding), "context": _context(self.rf)}}


@dataclass(slots=True)
class _Part:
    """One graph of the network in execution order, with its module prefix and input field."""

    prefix: str
    graph: Graph
    rf_in: RF | tuple[RF, ...]  # one per input for a neck or head that reads several
    group: str  # stem / stages / aux / head
    stage: int | None
    block: int | None
    section: str = ""  # the row it folds into above block level (`Part.section`)
    attached: bool = False  # `Part.attached`: beside the chain, reading several values


@dataclass(kw_only=True)
class Totals:
    """The sums analysis makes over a network's graphs (`add`, one graph at a time, in the order
    they run). Each only grows as graphs are added, so the totals of the graphs lowered so far
    bound the network's from below: a sweep stops building a network as soon as they pass a
    bound (sweeps/engine.py)."""

    params: int = 0  # every layer's (auxiliary heads included)
    buffers: int = 0
    macs: int = 0  # on the inference path: auxiliary heads excluded
    activation_elements: int = 0  # per sample, inference path
    peak_activation_elements: int = 0  # per sample
    depth: int = 0
    dtype_bytes: int = 4
    batch: int = 1

    def add(self, graph: Graph, aux: bool = False, beside: bool = False) -> _Static:
        """Count `graph`, a part of the network (`aux`: an auxiliary head, off the inference path;
        `beside`: a neck or head beside the chain, off the depth); its facts (`_static_of`)."""
        static = _static_of(graph)
        self.params += static.params
        self.buffers += static.buffers
        if not aux:
            self.macs += static.macs
            self.activation_elements += static.elements
            if static.peak > self.peak_activation_elements:
                self.peak_activation_elements = static.peak
            if not beside:
                self.depth += static.depth
        return static

    def add_counts(self, graph: Graph) -> None:
        """Count `graph`'s parameters, buffers and MACs alone (`counts_of`), on the inference path;
        the other totals stay as they are. For a reader of those three (and flops) only."""
        params, buffers, macs = counts_of(graph)
        self.params += params
        self.buffers += buffers
        self.macs += macs

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return self.activation_elements * self.dtype_bytes * self.batch

    @property
    def peak_activation_bytes(self) -> int:
        return self.peak_activation_elements * self.dtype_bytes * self.batch


@dataclass(repr=False)  # the generated repr printed every layer: 52,000 characters for ResNet-50
class Report(Totals):
    """What `archspec.analyze` returns. `print(report)` shows the table `archspec summary` prints; in
    Jupyter it shows as an HTML table; `report.table("block")`, `to_dict()`, `to_dataframe()`.

    Totals are sums over the network's graphs, each graph's computed once (lowering shares
    graphs between blocks, specs and sweep samples); the rows of `layers` are made when first
    asked for."""

    name: str
    input_shape: Shape
    output_shape: Shape
    receptive_field: RF
    receptive_field_layer: str
    stage_names: list[str] = field(default_factory=list)
    returns_features: bool = False  # the module returns `features` (an ordered dict), not `output_shape`
    parts: list[_Part] = field(default_factory=list, repr=False)
    # The spec's `freeze:` patterns (module paths, `stages.0`, `stages.*.blocks.0`).
    freeze: tuple[str, ...] = ()
    _layers: list[LayerInfo] | None = field(default=None, repr=False)
    network: Network | None = field(default=None, repr=False)  # what was analysed
    _features: list[FeatureInfo] | None = field(default=None, repr=False)

    @property
    def layers(self) -> list[LayerInfo]:
        """One row per layer, in execution order (auxiliary heads before the head)."""
        if self._layers is None:
            self._layers = _layers_of(self.parts)
        return self._layers

    @property
    def features(self) -> list[FeatureInfo]:
        """The spec's taps (`features:`); without any, the end of every stage. Made when first
        asked for, as `layers` (a sweep reads neither)."""
        if self._features is None:
            self._features = _features(self.network, self.parts) if self.network is not None else []
        return self._features

    # -- totals ------------------------------------------------------------------------
    @property
    def trainable_params(self) -> int:
        return self.params - self.frozen_params  # buffers are counted apart

    @property
    def frozen_params(self) -> int:
        """Parameters of the parts the spec's `freeze:` names (the layers under a matching module path)."""
        if not self.freeze:
            return 0
        return sum(layer.params for layer in self.layers if frozen_path(layer.name, self.freeze))

    def layer_bytes(self, layer: LayerInfo) -> int:
        """Bytes of one layer's output for the report's batch and dtype."""
        return layer.activation_elements * self.dtype_bytes * self.batch

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from ..core.errors import ArchspecError, did_you_mean, unknown_name

        names = [la.name for la in self.layers]
        if len(names) > 40:  # too many to list: suggest, and say where the names are
            raise ArchspecError(f"unknown layer '{name}'{did_you_mean(name, names)}; the {len(names)} layer names are "
                                f"in report.table('layer') (`archspec summary {self.name} --level layer`)")
        raise ArchspecError(unknown_name("layer", name, names))

    def groups(self) -> list[tuple[str, list[LayerInfo]]]:
        """Rows for a compact table: stem, each stage, auxiliary heads, head."""
        return self.rows("stage")

    def rows(self, level: str = "stage") -> list[tuple[str, list[LayerInfo]]]:
        """The layers grouped for a table: `stage` (stem, stages, aux heads, head),
        `block` (every block on its own) or `layer` (one row per layer)."""
        if level not in ("stage", "block", "layer"):
            raise ValueError(f"level is 'stage', 'block' or 'layer', not {level!r}")
        rows: dict[str, list[LayerInfo]] = {}
        for layer in self.layers:
            if level == "layer":
                key = layer.name
            elif level == "block":
                key = layer.part
            elif layer.group == "stages":
                key = stage_title(layer.section, self.stage_names[layer.stage], layer.stage)
            else:
                key = layer.section
            rows.setdefault(key, []).append(layer)
        return list(rows.items())

    def to_dict(self) -> dict[str, Any]:
        rf = self.receptive_field
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "batch": self.batch,
            "dtype_bytes": self.dtype_bytes,
            "depth": self.depth,
            "receptive_field": {
                "size": list(rf.size), "stride": list(rf.stride), "padding": list(rf.padding),
                "layer": self.receptive_field_layer, "context": _context(rf),
            },
            "features": [f.to_dict() for f in self.features],
            "returns_features": self.returns_features,
            "conventions": CONVENTIONS,
            "layers": [layer_record(self, la) for la in self.layers],
        }

    # -- display -------------------------------------------------------------------
    def table(self, level: str = "stage") -> str:
        """The table `archspec summary --level LEVEL` prints: stage, block or layer rows."""
        return summary_table(self, level)

    def __str__(self) -> str:
        return report_text(self, "stage")

    def text(self, level: str = "stage", conventions: bool = False) -> str:
        """The heading, the table at `level` and the totals; `conventions` adds how they are counted."""
        return report_text(self, level, conventions=conventions)

    def outputs_text(self) -> str:
        """What the module returns: `output 1000`, or `{out 21x520x520, aux 21x520x520}` for its taps."""
        return outputs_text(self)

    def heading(self) -> str:
        """`resnet50: input 3x224x224 -> output 1000`."""
        return heading(self)

    def __repr__(self) -> str:
        return (f"<Report {self.name}: input {shape_text(self.input_shape)}, {self.params:,} parameters, "
                f"{self.macs:,} MACs, {len(self.layers)} layers>")

    def _repr_html_(self) -> str:
        return report_html(self, "stage")

    def to_dataframe(self, level: str = "layer"):
        """A pandas DataFrame (pandas is optional): one row per layer, or per block / stage with sums."""
        return report_dataframe(self, level)


def stage_title(section: str, name: str, index: int) -> str:
    """`stages.2` (the stage's section in the walk), or `stages.2 (conv4_x)` when the spec names
    the stage (stage `index` is otherwise `stage{index}`): how tables and diagrams call it."""
    return section if name == f"stage{index}" else f"{section} ({name})"


def _context(rf: RF) -> list[list[int] | None]:
    return [list(c) if c is not None else None for c in rf.context]


class NodeFacts(NamedTuple):
    """What analysis needs of one node, worked out once per graph (`_static`)."""

    name: str
    op: Op
    category: str
    inputs: tuple[int, ...]  # node indices, or INPUT - k
    ins: tuple[Shape, ...]  # input shapes
    shape: Shape  # output shape
    params: int
    buffers: int
    macs: int
    origin: SpecPath
    walk: int  # how the receptive-field walk takes it: KEEP, UNION or OWN


# How the receptive-field walk (`_fields`) takes a node, worked out once per graph by `_static`:
# KEEP its one input's field (the base rule on a map that keeps its size), the UNION of its inputs'
# fields (the base rule, `Op.rf`, whose check of the shapes `_static` has made), or the op's OWN rule.
KEEP, UNION, OWN = 0, 1, 2


@dataclass(slots=True)
class _Static:
    """What one graph contributes whatever feeds it: each node's facts; their sums; peak live
    elements; depth; and where the feature extractor ends in it (the first node that is not a
    map, or, in a head, the first pool, flatten or classifier), or None."""

    nodes: list[NodeFacts]
    peak: int
    depth: int
    params: int
    buffers: int
    macs: int
    elements: int
    flat_at: int | None
    head_end_at: int | None
    rf_rule: int | None  # equal numbers: equal receptive-field rules (see `_rule_number`); None: unknown


def _static(graph: Graph) -> _Static:
    inputs_at = {INPUT - k: s for k, s in enumerate(graph.input_shapes)}  # an input's shape by its index
    depths: list[int] = []  # each node's depth (an input's is 0)
    remaining = graph.consumers()
    live = {j: math.prod(s) for j, s in inputs_at.items()}
    total = peak = sum(live.values())
    nodes = []
    shapes: list[Shape] = []
    params = buffers = macs = elements = 0
    flat_at = head_end_at = None
    rule: list[tuple] = []  # what the receptive-field walk reads (`_rule_number`)
    known_facts = _NODE_FACTS.entry
    # Nodes unpacked by position, and what each op's class says read once per class (`_facts_of`):
    # this loop runs for every node of every new graph.
    for i, (name, op, inputs, shape, origin) in enumerate(graph.nodes):
        cls = type(op)
        layer, base_rule, category, ends, count_params, count_buffers, count_macs = (
            _CLASS_FACTS.get(cls) or _facts_of(cls))
        if len(inputs) == 1:  # most nodes: no list, no max
            j = inputs[0]
            if j >= 0:
                ins: tuple[Shape, ...] = (shapes[j],)
                depths.append(depths[j] + layer)
            else:
                ins = (inputs_at[j],)
                depths.append(layer)
        else:
            ins = tuple([shapes[j] if j >= 0 else inputs_at[j] for j in inputs])
            depths.append(max([depths[j] if j >= 0 else 0 for j in inputs], default=0) + layer)
        # What the op makes of its inputs, the same in every graph that holds it on inputs of these
        # shapes: a sweep's new block graphs are mostly nodes met in other graphs (9 in 10 of a
        # RegNet's, 3 in 4 of a compound-scaled EfficientNet's).
        found = known_facts((id(op), ins))
        if found is not None and found[0] is op:
            facts = found[1]
        else:
            # the base rule on one input whose map keeps its size (it refuses any other: see Op.rf)
            keep = base_rule and len(ins) == 1 and len(shape) == len(ins[0]) and (
                len(shape) != 3 or shape[1:] == ins[0][1:])
            facts = _NODE_FACTS.put((id(op), ins), (
                KEEP if keep else UNION if base_rule and union_fits(ins, shape) else OWN,
                None if keep else op.rf_key(ins),
                count_params(op, ins) if count_params else 0,
                count_buffers(op, ins) if count_buffers else 0,
                count_macs(op, ins, shape) if count_macs else 0), op)
        walk, rf_key, p, b, m = facts
        rule.append((inputs, rf_key))
        nodes.append(named_tuple(NodeFacts, (name, op, category, inputs, ins, shape, p, b, m, origin, walk)))
        shapes.append(shape)
        params += p
        buffers += b
        macs += m
        # a flat vector ends the features; a token sequence (L, D) still carries its fields
        if len(shape) == 1:
            if flat_at is None:
                flat_at = i
            if head_end_at is None:
                head_end_at = i
        elif head_end_at is None and ends:
            head_end_at = i
        live[i] = size = math.prod(shape)
        elements += size
        total += size
        if total > peak:
            peak = total
        for j in inputs:
            remaining[j] -= 1
            if remaining[j] == 0:
                total -= live.pop(j, 0)
    output = graph.output
    return _Static(nodes, peak, depths[output] if output >= 0 else 0, params, buffers, macs, elements, flat_at,
                   head_end_at, _rule_number(tuple(rule)))


def counts_of(graph: Graph) -> tuple[int, int, int]:
    """(params, buffers, macs) of `graph`: the builder's sums (`Graph.counts`), else `_static_of`'s.

    A sweep with a max bound on one of these asks for each graph as it is lowered (sweeps/engine.py),
    and most of those graphs belong to networks the bound then rejects, whose other facts (depths,
    live memory, receptive-field rules) no one reads: about 3 in 5 of a RegNet space's new graphs."""
    graph = graph.analysed_as
    if graph.counts is not None:  # summed by the builder
        return graph.counts
    static = _static_of(graph)  # a graph resized or transformed after it was built
    return static.params, static.buffers, static.macs


# What `_static` reads of an op class, once per class: whether it is a layer of the depth, whether it
# keeps the base receptive-field rule, its category, whether it ends the features, and its params,
# buffers and macs rules, None for each it inherits from Op (which counts 0): most nodes of a block
# (activations, merges, pools) count nothing, and are not asked.
_CLASS_FACTS: dict[type[Op], tuple[Any, ...]] = {}


def _facts_of(cls: type[Op]) -> tuple[Any, ...]:
    counts = (None if getattr(cls, name) is getattr(Op, name) else getattr(cls, name)
              for name in ("params", "buffers", "macs"))
    facts = _CLASS_FACTS[cls] = (int(cls.depth_layer), cls.rf is Op.rf, cls.category, cls.ends_features, *counts)
    return facts


def _rule_number(rule: tuple) -> int | None:
    """A number for what the graph's receptive-field walk reads (each node's inputs and, unless the
    node keeps its input's field, its op's `rf_key`): two graphs with the same number map every input
    field to the same fields, whatever their channels (the blocks of one stage of a RegNet and of its
    sibling samples). None when a key cannot be hashed."""
    try:
        number = _RULES.get(rule)
    except TypeError:
        return None
    if number is memo.MISS:  # numbers are never given twice, so older ones stay valid where kept
        number = _RULES.put(rule, next(_NUMBERS))
    return number


_NUMBERS = itertools.count()


MAX_CACHED = 8192
_RULES: memo.Memo[int] = memo.Memo("analysis.rf_rules", MAX_CACHED)
_STATIC: memo.Memo[_Static] = memo.Memo("analysis.graphs", MAX_CACHED)
# (walk, rf_key, params, buffers, macs) of an op (by identity) on inputs of given shapes (`_static`)
_NODE_FACTS: memo.Memo[tuple[int, Any, int, int, int]] = memo.Memo("analysis.node_facts", 65536)
_FIELDS: memo.Memo[list[RF]] = memo.Memo("analysis.fields", MAX_CACHED)
_STATIC_ENTRY, _FIELDS_ENTRY = _STATIC.entry, _FIELDS.entry


def _static_of(graph: Graph) -> _Static:
    """`_static(graph)`, kept by identity: lowering reuses one graph for identical blocks, in
    a network and across networks (spec.lower), and graphs are immutable (ir/graph.py)."""
    graph = graph.analysed_as  # a stage's blocks at other stochastic-depth rates share it
    found = _STATIC_ENTRY(id(graph))  # asked for every part of every network
    if found is not None and found[0] is graph:
        return found[1]
    return _STATIC.put(id(graph), _static(graph), graph)


def _fields(graph: Graph, rf_in: RF | tuple[RF, ...], static: _Static | None = None) -> list[RF]:
    """The receptive field of every node of `graph` fed a field `rf_in` (one per input for a neck
    or head that reads several), kept by the graph's receptive-field rule (or identity) and
    `rf_in`: the same block geometry at the same place in sibling networks gets the same fields,
    without walking them again. `static`: `_static_of(graph)`, where the caller has it."""
    if static is None:
        static = _static_of(graph)
    ruled = static.rf_rule is not None
    key: tuple = ("rule", static.rf_rule, rf_in) if ruled else (id(graph.analysed_as), rf_in)
    keep = None if ruled else graph.analysed_as
    found = _FIELDS_ENTRY(key)  # asked for every part of every network
    if found is not None and found[0] is keep:
        return found[1]
    fields: list[RF] = []
    given = {INPUT - k: f for k, f in enumerate(rf_in if isinstance(rf_in, tuple) else (rf_in,))}
    # NodeFacts unpacked (a tuple's fields by position): attribute access costs more in this hot loop.
    for _, op, _, inputs, ins, _, _, _, _, _, walk in static.nodes:  # no starred name: it would make a list a node
        if walk == KEEP:  # the base rule on one input: the union of one field is that field
            fields.append(fields[inputs[0]] if inputs[0] >= 0 else given[inputs[0]])
        else:
            read = [fields[j] if j >= 0 else given[j] for j in inputs]
            fields.append(RF.union(read, ins) if walk == UNION else op.rf(read, ins))
    return _FIELDS.put(key, fields, keep)


def _node_field(graph: Graph, rf_in: RF | tuple[RF, ...], node: int) -> RF:
    """The field of one node's output (or of an input, for a negative index)."""
    if node >= 0:
        return _fields(graph, rf_in)[node]
    return (rf_in if isinstance(rf_in, tuple) else (rf_in,))[INPUT - node]


def _layers_of(parts: list[_Part]) -> list[LayerInfo]:
    out: list[LayerInfo] = []
    for part in parts:
        static, fields = _static_of(part.graph), _fields(part.graph, part.rf_in)
        prefix, group, stage, block = part.prefix, part.group, part.stage, part.block
        # each node's own op: a block shares its template's facts but not its stochastic-depth rate
        for (name, _, category, _, ins, shape, params, buffers, macs, origin, _), node, rf in zip(
                static.nodes, part.graph.nodes, fields):
            op = node.op
            out.append(LayerInfo(join(prefix, name), op.kind, category, group, stage, block, ins, shape,
                                 params, buffers, macs, rf, origin, op, prefix, part.section))
    return out


def frozen_path(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether module `path` is frozen by a pattern: the pattern matches it or a module it is in
    (as backends/torch_freeze.py freezes a matched module with all it contains)."""
    parts = path.split(".")
    return any(fnmatch.fnmatchcase(".".join(parts[:i]), p) for i in range(1, len(parts) + 1) for p in patterns)


def _freeze_patterns(value: object) -> tuple[str, ...]:
    """The spec's `freeze:` as written (one pattern, or a list of them), as a tuple."""
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def analyze_network(net: Network, dtype_bytes: int = 4, batch: int = 1) -> Report:
    """Every per-layer number of `net` and its totals, from the IR alone (no torch).

    `batch` and `dtype_bytes` only scale the activation memory.
    """
    # Each part reads the field of the part it follows (an aux head: the stage it branches off).
    parts: list[_Part] = []
    field_of: dict[str, RF] = {"": RF()}
    by_path: dict[str, _Part] = {}
    attached = {a.path: a for a in net.attached}
    totals = Totals(dtype_bytes=dtype_bytes, batch=batch)
    # The network's field: the last spatial layer before the head's global pooling / flatten /
    # classifier (a global pool inside a block, as in squeeze-and-excitation, ends nothing).
    feature: tuple[_Part, int] | None = None
    ended = False
    source_of: dict[str, str] = {}
    for p in net.parts():  # one pass: a sweep analyses every part of every sample
        graph, group = p.graph, p.group
        source_of[p.path] = p.source
        rf_in: RF | tuple[RF, ...] = field_of[p.source]
        if p.path in attached:  # a neck or head: the field of each value it reads
            rf_in = tuple(RF() if s.part == "input"
                          else _node_field(by_path[s.graph_path].graph, by_path[s.graph_path].rf_in, s.node)
                          for s in attached[p.path].sources)
        beside = p.attached
        part = by_path[p.path] = _Part(p.path, graph, rf_in, group, p.stage, p.block, p.section, beside)
        parts.append(part)
        aux = group == "aux"
        static = totals.add(graph, aux, beside)
        out = graph.output
        field_of[p.path] = _fields(graph, rf_in, static)[out] if out >= 0 else _node_field(graph, rf_in, out)
        if aux or beside:  # beside the chain: not the network's field
            continue
        if not ended:
            end = static.head_end_at if group == "head" else static.flat_at
            last = (end if end is not None else len(static.nodes)) - 1
            if last >= 0:
                feature = (part, last)
            ended = end is not None

    if net.attached or net.taps:  # values read again later are alive in between (`_held_peak`)
        totals.peak_activation_elements = max(totals.peak_activation_elements,
                                              _held_peak(net, parts, by_path, source_of))
    report = Report(name=net.name, input_shape=net.input_shape, output_shape=net.output_shape,
                    receptive_field=RF(), receptive_field_layer="input",
                    stage_names=[st.name for st in net.stages], dtype_bytes=dtype_bytes, batch=batch, parts=parts,
                    freeze=_freeze_patterns(net.spec_data.get("freeze")), network=net, params=totals.params,
                    buffers=totals.buffers, macs=totals.macs, activation_elements=totals.activation_elements,
                    peak_activation_elements=totals.peak_activation_elements, depth=totals.depth)
    if feature is not None:
        part, index = feature
        report.receptive_field = _fields(part.graph, part.rf_in)[index]
        report.receptive_field_layer = join(part.prefix, _static_of(part.graph).nodes[index][0])
    report.returns_features = bool(net.taps)
    return report


def _held_peak(net: Network, parts: list[_Part], by_path: dict[str, _Part], source_of: dict[str, str]) -> int:
    """The forward peak where values are read again by a later part: a stage's output that a neck or
    head reads, a tap the forward returns. Each stays alive from the part that makes it to its last
    reader (the end, for a returned tap), on top of what each part between holds: a part that reads
    it as its own input holds it throughout (`_pinned_peak`), the others beside their own peak."""
    position = {part.prefix: k for k, part in enumerate(parts)}
    last: dict[tuple[str, int], int] = {}  # (graph path, node) -> the position of its last reader
    for attached in net.attached:
        for tap in attached.sources:
            if tap.part != "input":
                key = (tap.graph_path, tap.node)
                last[key] = max(last.get(key, -1), position[attached.path])
    for tap in net.taps:
        last[(tap.graph_path, tap.node)] = len(parts)
    held = [(position[g], end, g, node, math.prod(_value_shape(by_path[g].graph, node))) for (g, node), end in last.items()]
    sources = {a.path: [(t.graph_path, t.node) for t in a.sources] for a in net.attached}
    peak = 0
    for k, part in enumerate(parts):
        if part.group == "aux":  # off the inference path
            continue
        pinned: set[int] = set()
        beside = 0
        for made, end, g, node, size in held:
            if not made < k < end:
                continue
            if part.prefix in sources:  # a neck or head: its inputs are the values it reads
                index = next((m for m, read in enumerate(sources[part.prefix]) if read == (g, node)), None)
            else:  # a chain part reads the output of the part before it
                source = by_path.get(source_of[part.prefix])
                index = 0 if source is not None and g == source.prefix and node == source.graph.output else None
            if index is None:
                beside += size
            else:
                pinned.add(INPUT - index)
        if pinned or beside:
            peak = max(peak, _pinned_peak(part.graph, pinned) + beside)
    return peak


def _value_shape(graph: Graph, node: int) -> Shape:
    return graph.analysed_as.nodes[node].shape if node >= 0 else graph.input_shapes[INPUT - node]


def _pinned_peak(graph: Graph, pinned: set[int]) -> int:
    """The graph's forward peak as `_static` counts it, with the inputs `pinned` alive throughout.
    `_static` keeps its own count in its one pass over a graph (a sweep's hot loop); with nothing
    pinned the two agree (tests/test_parts.py)."""
    graph = graph.analysed_as
    live = {INPUT - k: math.prod(s) for k, s in enumerate(graph.input_shapes)}
    remaining = graph.consumers()
    total = peak = sum(live.values())
    for i, node in enumerate(graph.nodes):
        live[i] = math.prod(node.shape)
        total += live[i]
        peak = max(peak, total)
        for j in node.inputs:
            remaining[j] -= 1
            if remaining[j] == 0 and j not in pinned:
                total -= live.pop(j, 0)
    return peak


def _features(net: Network, parts: list[_Part]) -> list[FeatureInfo]:
    """Each tap's layer numbers (the spec's taps, else every stage's end)."""
    by_prefix = {part.prefix: part for part in parts}
    out = []
    for tap in net.taps or every_stage(net):
        part = by_prefix[tap.graph_path]
        graph = part.graph
        if tap.node == INPUT:  # an empty graph: its input, the network's input for an empty stem
            out.append(FeatureInfo(tap.name, tap.path, "input", graph.in_shape, RF()))
            continue
        node = graph.analysed_as.nodes[tap.node]  # its name and shape, as in the graph (ops aside)
        out.append(FeatureInfo(tap.name, tap.path, join(tap.graph_path, node.name), node.shape,
                               _node_field(graph, part.rf_in, tap.node)))
    return out

