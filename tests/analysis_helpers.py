"""Helpers for the analysis tests: a branchy test block and the empirical receptive-field probe.

The probe is the outside truth for receptive fields: build the module (max-pool
swapped for avg-pool in the IR, positive weights, neutral BN in eval), take the
gradient of one output unit with respect to the input in float64 and read off the
rows and columns where it is non-zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from archspec.spec.families import BLOCKS, BlockContext, BlockFamily, register_block
from archspec.ir.builder import GraphBuilder, Value
from archspec.ir.graph import Network
from archspec.ir.ops import op_class
from archspec.spec.layers import LayerList


class Paths(BlockFamily):
    """Test-only family: `paths` of layers from the block input, merged by concat, add or mul.

    Path k's layers are named `path{k}.0`, `path{k}.1`, ...; the merge is `merge`.
    """

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ()

    paths: list[LayerList]
    merge: Literal["concat", "add", "mul"] = "concat"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        outs = []
        for k, ops in enumerate(self.paths):
            with b.scope(f"path{k}"):
                outs.append(b.sequence(x, ops))
        return b.op(self.merge, *outs, name="merge")


@contextlib.contextmanager
def registered(**families: type[BlockFamily]) -> Iterator[None]:
    """Test-only block families, registered for a fixture's duration (`test_paths=Paths`) and
    removed after, so that no test sees them unless it asks (conftest.py's fixtures)."""
    for name, cls in families.items():
        register_block(name)(cls)
    try:
        yield
    finally:
        for name in families:
            BLOCKS.pop(name, None)


def spec(stages: list, stem: list | None = None, size: int | tuple[int, int] = 16, channels: int = 1,
         head: list | None = None) -> dict[str, Any]:
    """A small spec without norms, ReLU as the default activation."""
    hw = [size, size] if isinstance(size, int) else list(size)
    return {"name": "probe", "input": {"channels": channels, "size": hw},
            "defaults": {"norm": "none", "activation": "relu"},
            "stem": stem or [], "stages": stages, "head": head or []}


def paths(*layer_lists: list, merge: str = "concat") -> dict[str, Any]:
    return {"block": "test_paths", "paths": [list(p) for p in layer_lists], "merge": merge}


def with_avg_pools(net: Network) -> Network:
    """The same network with every max-pool an average pool of the same window (its
    gradient is positive over the whole window, where max-pool's picks one pixel)."""
    avg, adaptive, global_ = op_class("avgpool"), op_class("adaptive_pool"), op_class("global_pool")

    def swap(node):
        op = node.op
        if op.kind == "maxpool":
            new = avg(kernel=op.kernel, stride=op.stride, padding=op.padding, ceil_mode=op.ceil_mode, name=op.name)
        elif op.kind in ("adaptive_pool", "global_pool") and op.type == "max":
            new = (adaptive if op.kind == "adaptive_pool" else global_)(**{**op.model_dump(), "type": "avg"})
        else:
            return node
        return node._replace(op=new)  # a Node is a named tuple

    return net.map_graphs(lambda graph: dataclasses.replace(graph, nodes=tuple(map(swap, graph.nodes))))


def module_path(net: Network, layer: str) -> str:
    """The module whose output is `layer`: the layer itself, or its block when the layer
    is the block's output and has no module of its own (a merge)."""
    for prefix, graph in ((part.path, part.graph) for part in net.parts()):
        if layer.startswith(prefix + "."):
            local = layer[len(prefix) + 1:]
            out = graph.nodes[graph.output]
            if out.name == local and out.op.kind in ("add", "concat", "mul"):
                return prefix
    return layer


def measure_region(net: Network, layer: str, unit: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((first row, last row), (first col, last col)) of input pixels that change the
    output unit `unit` of `layer` (summed over channels), measured by autograd."""
    import torch

    from archspec.backends.torch_module import build_module

    model = build_module(with_avg_pools(net), init=False).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.fill_(1.0 / fan_in)  # positive, averaging: values stay near 1
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.weight.fill_(1.0)
                m.bias.zero_()
    captured = {}
    target = model.get_submodule(module_path(net, layer))
    handle = target.register_forward_hook(lambda mod, args, out: captured.__setitem__("out", out))
    # Small positive input: residual sums double values per block, and ReLU6 / hard sigmoid
    # would saturate (zero gradient) on large ones.
    x = torch.full((1,) + tuple(net.input_shape), 1e-4, dtype=torch.float64, requires_grad=True)
    try:
        model(x)
    finally:
        handle.remove()
    out = captured["out"]
    (grad,) = torch.autograd.grad(out[0, :, unit[0], unit[1]].sum(), x)
    support = grad[0].abs().sum(0) > 0
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


@register_block("test_grows")
class Grows(BlockFamily):
    """Test-only family whose conv width depends on the block's position in its stage."""

    channel_fields: ClassVar[tuple[str, ...]] = ()
    strided: ClassVar[bool] = False

    base: int = 4

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        return b.conv(x, name="conv", out=self.base * (ctx.index + 1), kernel=3, padding=1)


@register_block("test_spreads")
class Spreads(BlockFamily):
    """Test-only family that keeps its input's shape and dilates its conv by the block's position:
    in its stage (`by: index`) or in the network (`by: global_index`)."""

    channel_fields: ClassVar[tuple[str, ...]] = ()
    strided: ClassVar[bool] = False

    by: str = "index"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        step = getattr(ctx, self.by) + 1
        return b.conv(x, name="conv", out=x.channels, kernel=3, padding=step, dilation=step)
