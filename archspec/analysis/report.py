"""One pass over the IR computes every per-layer number; `Report` holds them.

Conventions (also printed by the CLI):
* MACs: one fused multiply-add counted once, over conv and linear layers, on the
  inference path (auxiliary heads excluded): torchvision's documented GFLOPS.
* FLOPs: 2 x MACs.
* Activation memory: output elements x dtype bytes x batch, summed over the layers of
  the inference path; the forward peak is the most bytes alive at once when each
  value is freed after its last reader (inputs of a block stay alive until then).
* Depth: the most conv and linear layers on any input-to-output path (ResNet-50: 50).
* Receptive field: size, jump (effective stride) and padding per axis (h, w); the
  network's field is taken at the end of the feature extractor, before global
  pooling, flatten and the classifier, as published tables do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..ir.graph import INPUT, Graph, Network
from ..ir.op import RF, Op, Shape, Window
from ..ir.taps import every_stage
from .report_text import layer_record, report_dataframe, report_html, report_text, summary_table

_FEATURE_END = {"global_pool", "adaptive_pool", "flatten", "linear"}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
_WEIGHT_LAYERS = {"conv", "linear"}  # op categories that count towards depth

CONVENTIONS = {
    "macs": "one fused multiply-add counted once, over conv and linear layers on the inference (eval) path, "
            "auxiliary heads excluded: the convention of torchvision's documented GFLOPS",
    "flops": "2 x macs",
    "activation_bytes": "output elements x dtype bytes x batch, summed over the layers of the inference path",
    "peak_activation_bytes": "most output bytes alive at once in a forward pass, each freed after its last reader",
    "receptive_field": "size, stride (jump) and padding per axis [h, w]; unit i of a layer sees input pixels "
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
        return self.rf.jump[0] if self.rf.jump[0] == self.rf.jump[1] else self.rf.jump

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "layer": self.layer, "channels": self.channels,
                "reduction": self.reduction, "shape": list(self.shape),
                "receptive_field": {"size": list(self.rf.size), "stride": list(self.rf.jump),
                                    "padding": list(self.rf.padding), "context": _context(self.rf)}}


@dataclass(repr=False)  # the generated repr printed every layer: 52,000 characters for ResNet-50
class Report:
    """What `archspec.analyze` returns. `print(report)` shows the table `archspec summary` prints; in
    Jupyter it shows as an HTML table; `report.table("block")`, `to_dict()`, `to_dataframe()`."""

    name: str
    input_shape: Shape
    output_shape: Shape
    layers: list[LayerInfo]
    receptive_field: RF
    receptive_field_layer: str
    stage_names: list[str] = field(default_factory=list)
    dtype_bytes: int = 4
    peak_activation_elements: int = 0  # per sample
    depth: int = 0
    batch: int = 1
    # The spec's taps (`features:`); without any, the end of every stage.
    features: list[FeatureInfo] = field(default_factory=list)

    # -- totals ------------------------------------------------------------------------
    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return self.params  # every counted parameter is trainable; buffers are separate

    @property
    def buffers(self) -> int:
        return sum(layer.buffers for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers if layer.group != "aux")

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def layer_bytes(self, layer: LayerInfo) -> int:
        """Bytes of one layer's output for the report's batch and dtype."""
        return layer.activation_elements * self.dtype_bytes * self.batch

    @property
    def activation_bytes(self) -> int:
        return sum(self.layer_bytes(layer) for layer in self.layers if layer.group != "aux")

    @property
    def peak_activation_bytes(self) -> int:
        return self.peak_activation_elements * self.dtype_bytes * self.batch

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from ..core.errors import ArchspecError, did_you_mean, unknown_name

        names = [la.name for la in self.layers]
        if len(names) > 40:  # too many to list: suggest, and say where the names are
            raise ArchspecError(f"unknown layer '{name}'{did_you_mean(name, names)}; "
                                f"`archspec summary {self.name} --level layer` lists the {len(names)} layer names")
        raise ArchspecError(unknown_name("layer", name, names))

    def groups(self) -> list[tuple[str, list[LayerInfo]]]:
        """Rows for a compact table: stem, each stage, auxiliary heads, head."""
        return self.rows("stage")

    def rows(self, level: str = "stage", *, depth: str | None = None) -> list[tuple[str, list[LayerInfo]]]:
        """The layers grouped for a table: `stage` (stem, stages, aux heads, head),
        `block` (every block on its own) or `layer` (one row per layer). `depth=` is the old name of `level`."""
        level = depth if depth is not None else level
        if level not in ("stage", "block", "layer"):
            raise ValueError(f"level is 'stage', 'block' or 'layer', not {level!r}")
        rows: dict[str, list[LayerInfo]] = {}
        for layer in self.layers:
            if level == "layer":
                key = layer.name
            elif layer.group == "stages" and level == "block":
                key = f"stages.{layer.stage}.blocks.{layer.block}"
            elif layer.group == "stages":
                key = f"stages.{layer.stage}"
                if self.stage_names[layer.stage] != f"stage{layer.stage}":
                    key += f" ({self.stage_names[layer.stage]})"
            elif layer.group == "aux":
                key = ".".join(layer.name.split(".")[:2])  # aux_heads.0
            else:
                key = layer.group
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
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "batch": self.batch,
            "dtype_bytes": self.dtype_bytes,
            "depth": self.depth,
            "receptive_field": {
                "size": list(rf.size), "stride": list(rf.jump), "padding": list(rf.padding),
                "layer": self.receptive_field_layer, "context": _context(rf),
            },
            "features": [f.to_dict() for f in self.features],
            "conventions": CONVENTIONS,
            "layers": [layer_record(self, la) for la in self.layers],
        }

    # -- display -------------------------------------------------------------------
    def table(self, level: str = "stage") -> str:
        """The table `archspec summary --level LEVEL` prints: stage, block or layer rows."""
        return summary_table(self, level)

    def __str__(self) -> str:
        return report_text(self, "stage")

    def __repr__(self) -> str:
        return (f"<Report {self.name}: input {'x'.join(map(str, self.input_shape))}, {self.params:,} parameters, "
                f"{self.macs:,} MACs, {len(self.layers)} layers>")

    def _repr_html_(self) -> str:
        return report_html(self, "stage")

    def to_dataframe(self, level: str = "layer"):
        """A pandas DataFrame (pandas is optional): one row per layer, or per block / stage with sums."""
        return report_dataframe(self, level)


def _context(rf: RF) -> list[list[int] | None]:
    return [list(c) if c is not None else None for c in rf.context]


@dataclass(slots=True)
class _Static:
    """What one graph contributes whatever feeds it: per node (name, op, category, input
    indices, input shapes, output shape, params, buffers, MACs, origin, whether the op keeps
    its input's field); peak live elements; depth."""

    nodes: list[tuple]
    peak: int
    depth: int


def _static(graph: Graph) -> _Static:
    depth: dict[int, int] = {INPUT: 0}
    remaining = graph.consumers()
    live = {INPUT: math.prod(graph.in_shape)}
    total = peak = live[INPUT]
    nodes = []
    for i, node in enumerate(graph.nodes):
        ins = tuple([graph.in_shape if j == INPUT else graph.nodes[j].shape for j in node.inputs])
        op = node.op
        category = type(op).category
        depth[i] = max([depth[j] for j in node.inputs], default=0) + (category in _WEIGHT_LAYERS)
        same = len(node.inputs) == 1 and type(op).rf is Op.rf
        nodes.append((node.name, op, category, node.inputs, ins, node.shape, op.params(ins), op.buffers(ins),
                      op.macs(ins, node.shape), node.origin, same))
        live[i] = size = math.prod(node.shape)
        total += size
        peak = max(peak, total)
        for j in node.inputs:
            remaining[j] -= 1
            if remaining[j] == 0:
                total -= live.pop(j, 0)
    return _Static(nodes, peak, depth[graph.output])


_STATIC: dict[int, tuple[Graph, _Static]] = {}
MAX_STATIC = 4096


def _static_of(graph: Graph) -> _Static:
    """`_static(graph)`, kept by identity: lowering reuses one graph for identical blocks, in
    a network and across networks (ir.lower), and graphs are never modified. The entry keeps
    the graph alive, so that its id stands for it."""
    hit = _STATIC.get(id(graph))
    if hit is None or hit[0] is not graph:
        if len(_STATIC) >= MAX_STATIC:
            _STATIC.clear()
        hit = _STATIC[id(graph)] = (graph, _static(graph))
    return hit[1]


def _graph_layers(prefix: str, graph: Graph, rf_in: RF, group: str, stage, block,
                  out: list[LayerInfo]) -> tuple[RF, int, int]:
    """Append the graph's layers; return the output's field, the graph's peak live
    elements and its depth (most conv/linear layers on a path through it).

    The static part (shapes, counts, memory, depth) is computed once per graph; only the
    receptive fields, which depend on what feeds the graph, are walked again.
    """
    static = _static_of(graph)
    fields: list[RF] = []
    for name, op, category, inputs, ins, shape, params, buffers, macs, origin, same in static.nodes:
        if same:  # the base rule on one input: the union of one field is that field
            rf = rf_in if inputs[0] == INPUT else fields[inputs[0]]
        else:
            rf = op.rf([rf_in if j == INPUT else fields[j] for j in inputs], ins)
        fields.append(rf)
        out.append(LayerInfo(prefix + "." + name, op.kind, category, group, stage, block, ins, shape,
                             params, buffers, macs, rf, origin, op))
    return (rf_in if graph.output == INPUT else fields[graph.output]), static.peak, static.depth


def analyze_network(net: Network, dtype_bytes: int = 4, batch: int = 1) -> Report:
    """Every per-layer number of `net` and its totals, from the IR alone (no torch).

    `batch` and `dtype_bytes` only scale the activation memory.
    """
    layers: list[LayerInfo] = []
    stage_rf: dict[int, RF] = {}
    # Walk in execution order; auxiliary heads read the field of the stage they follow.
    rf, peak, depth = _graph_layers("stem", net.stem, RF(), "stem", None, None, layers)
    for s, stage in enumerate(net.stages):
        for b, block in enumerate(stage.blocks):
            rf, p, d = _graph_layers(f"stages.{s}.blocks.{b}", block.graph, rf, "stages", s, b, layers)
            peak, depth = max(peak, p), depth + d
        stage_rf[s] = rf
    aux_layers: list[LayerInfo] = []
    for a, aux in enumerate(net.aux_heads):
        _graph_layers(f"aux_heads.{a}", aux.graph, stage_rf.get(aux.after, RF()), "aux", aux.after, None,
                      aux_layers)
    head_layers: list[LayerInfo] = []
    _, p, d = _graph_layers("head", net.head, rf, "head", None, None, head_layers)
    peak, depth = max(peak, p), depth + d
    layers += aux_layers + head_layers

    # The network's field: the last spatial layer before the head's global pooling / flatten /
    # classifier (a global pool inside a block, as in squeeze-and-excitation, ends nothing).
    feature = None
    for la in layers:
        if la.group == "aux":
            continue
        if (la.group == "head" and la.op in _FEATURE_END) or len(la.output_shape) != 3:
            break
        feature = la
    return Report(
        name=net.name, input_shape=net.input_shape, output_shape=net.output_shape, layers=layers,
        receptive_field=feature.rf if feature else RF(), receptive_field_layer=feature.name if feature else "input",
        stage_names=[st.name for st in net.stages], dtype_bytes=dtype_bytes, peak_activation_elements=peak,
        depth=depth, batch=batch, features=_features(net, layers),
    )


def _features(net: Network, layers: list[LayerInfo]) -> list[FeatureInfo]:
    """Each tap's layer numbers (the spec's taps, else every stage's end)."""
    by_name = {la.name: la for la in layers}
    graphs = {prefix: graph for prefix, graph, *_ in net.graphs()}
    out = []
    for tap in net.taps or every_stage(net):
        graph = graphs[tap.graph]
        if tap.node == INPUT:  # an empty graph: its input, the network's input for an empty stem
            out.append(FeatureInfo(tap.name, tap.path, "input", graph.in_shape, RF()))
            continue
        layer = by_name[f"{tap.graph}.{graph.nodes[tap.node].name}"]
        out.append(FeatureInfo(tap.name, tap.path, layer.name, layer.output_shape, layer.rf))
    return out


def as_dict(rf: RF) -> dict[str, list[int]]:
    return {k: list(v) for k, v in asdict(rf).items()}
