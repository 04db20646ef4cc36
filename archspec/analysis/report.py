"""One pass over the IR computes every per-layer number; `Report` holds them.

Conventions (also printed by the CLI):
* MACs: one fused multiply-add counted once, over conv and linear layers, on the
  inference path (auxiliary heads excluded): torchvision's documented GFLOPS.
* FLOPs: 2 x MACs.
* Activation memory: output elements x dtype bytes, per sample.
* Receptive field: size, jump (effective stride) and padding per axis (h, w); the
  network's field is taken at the end of the feature extractor, before global
  pooling, flatten and the classifier, as published tables do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..ir.graph import INPUT, Graph, Network
from ..ir.op import RF, Shape

_FEATURE_END = {"global_pool", "adaptive_pool", "flatten", "linear"}


@dataclass(frozen=True)
class LayerInfo:
    name: str  # module path
    op: str  # op kind
    label: str
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

    @property
    def activation_elements(self) -> int:
        return math.prod(self.output_shape)


@dataclass
class Report:
    name: str
    input_shape: Shape
    output_shape: Shape
    layers: list[LayerInfo]
    receptive_field: RF
    receptive_field_layer: str
    stage_names: list[str] = field(default_factory=list)
    dtype_bytes: int = 4
    peak_activation_elements: int = 0

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

    @property
    def activation_bytes(self) -> int:
        return sum(layer.activation_elements for layer in self.layers if layer.group != "aux") * self.dtype_bytes

    @property
    def peak_activation_bytes(self) -> int:
        return self.peak_activation_elements * self.dtype_bytes

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from ..errors import ArchspecError, unknown_name

        raise ArchspecError(unknown_name("layer", name, [la.name for la in self.layers]))

    def groups(self) -> list[tuple[str, list[LayerInfo]]]:
        """Rows for a compact table: stem, each stage, auxiliary heads, head."""
        rows: dict[str, list[LayerInfo]] = {}
        for layer in self.layers:
            if layer.group == "stages":
                key = f"stages.{layer.stage} ({self.stage_names[layer.stage]})"
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
            "receptive_field": {
                "size": list(rf.size), "stride": list(rf.jump), "padding": list(rf.padding),
                "layer": self.receptive_field_layer,
            },
            "conventions": {
                "macs": "fused multiply-adds of conv and linear layers on the inference path",
                "flops": "2 x macs",
                "activation_bytes": f"output elements x {self.dtype_bytes} bytes, per sample",
            },
            "layers": [
                {
                    "name": la.name, "op": la.op, "output_shape": list(la.output_shape), "params": la.params,
                    "macs": la.macs, "rf_size": list(la.rf.size), "rf_stride": list(la.rf.jump),
                    "rf_padding": list(la.rf.padding),
                }
                for la in self.layers
            ],
        }


def _graph_layers(prefix: str, graph: Graph, rf_in: RF, group: str, stage, block, out: list[LayerInfo]) -> tuple[RF, int]:
    """Append the graph's layers; return the output's field and the graph's peak live elements."""
    fields: dict[int, RF] = {INPUT: rf_in}
    remaining = graph.consumers()
    live = {INPUT: math.prod(graph.in_shape)}
    peak = sum(live.values())
    for i, node in enumerate(graph.nodes):
        ins = graph.in_shapes(node)
        op = node.op
        rf = op.rf([fields[j] for j in node.inputs], ins)
        fields[i] = rf
        out.append(LayerInfo(
            name=f"{prefix}.{node.name}", op=op.kind, label=op.label(ins), category=type(op).category,
            group=group, stage=stage, block=block, input_shapes=tuple(ins), output_shape=node.shape,
            params=op.params(ins), buffers=op.buffers(ins), macs=op.macs(ins, node.shape), rf=rf, origin=node.origin,
        ))
        live[i] = math.prod(node.shape)
        peak = max(peak, sum(live.values()))
        for j in node.inputs:
            remaining[j] -= 1
            if remaining[j] == 0:
                live.pop(j, None)
    return fields[graph.output], peak


def analyze_network(net: Network, dtype_bytes: int = 4) -> Report:
    layers: list[LayerInfo] = []
    rf = RF()
    peak = 0
    stage_rf: dict[int, RF] = {}
    # Walk in execution order; auxiliary heads read the field of the stage they follow.
    rf, p = _graph_layers("stem", net.stem, rf, "stem", None, None, layers)
    peak = max(peak, p)
    for s, stage in enumerate(net.stages):
        for b, block in enumerate(stage.blocks):
            rf, p = _graph_layers(f"stages.{s}.blocks.{b}", block.graph, rf, "stages", s, b, layers)
            peak = max(peak, p)
        stage_rf[s] = rf
    aux_layers: list[LayerInfo] = []
    for a, aux in enumerate(net.aux_heads):
        _graph_layers(f"aux_heads.{a}", aux.graph, stage_rf.get(aux.after, RF()), "aux", aux.after, None, aux_layers)
    head_layers: list[LayerInfo] = []
    _, p = _graph_layers("head", net.head, rf, "head", None, None, head_layers)
    peak = max(peak, p)
    layers += aux_layers + head_layers

    # The network's field: the last spatial layer before the head's global pooling / flatten /
    # classifier (a global pool inside a block, as in squeeze-and-excitation, ends nothing).
    main = [la for la in layers if la.group != "aux"]
    feature = None
    for la in main:
        if (la.group == "head" and la.op in _FEATURE_END) or len(la.output_shape) != 3:
            break
        feature = la
    return Report(
        name=net.name, input_shape=net.input_shape, output_shape=net.output_shape, layers=layers,
        receptive_field=feature.rf if feature else RF(), receptive_field_layer=feature.name if feature else "input",
        stage_names=[st.name for st in net.stages], dtype_bytes=dtype_bytes, peak_activation_elements=peak,
    )


def as_dict(rf: RF) -> dict[str, list[int]]:
    return {k: list(v) for k, v in asdict(rf).items()}
