"""Folding repeated blocks in a diagram: a stage draws the first block of each run of identical
blocks and marks it "×N", as papers draw ResNet-152's 36 bottlenecks as one.

Two blocks are the same when their family, node names, wiring and ops agree, ops compared as the
spec wrote them (`Op.same_layer`; stochastic depth's per-block rate is ignored), and they read
inputs of one shape, unless the block concatenates its input to what it makes: DenseNet's
layers, each reading more channels, fold (a drawn run says how the channels grow), where a run
whose first block reads 16 channels and the rest 64 would hide a different first block.
"""

from __future__ import annotations

from ..ir.graph import INPUT, Block, Graph, Stage


def same_block(a: Block, b: Block) -> bool:
    if a.family != b.family or len(a.graph.nodes) != len(b.graph.nodes) or a.graph.output != b.graph.output:
        return False
    if a.graph.in_shape != b.graph.in_shape and not _dense(a.graph):
        return False
    return all(m.name == n.name and m.inputs == n.inputs and m.op.same_layer(n.op)
               for m, n in zip(a.graph.nodes, b.graph.nodes))


def _dense(graph: Graph) -> bool:
    """Whether the block concatenates its input to what it makes (DenseNet's layers)."""
    return any(node.op.kind == "concat" and INPUT in node.inputs for node in graph.nodes)


def runs(stage: Stage) -> list[tuple[int, int]]:
    """(first block, how many) for each run of consecutive identical blocks, in order."""
    out: list[tuple[int, int]] = []
    for b, block in enumerate(stage.blocks):
        if out and same_block(stage.blocks[out[-1][0]], block):
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out


def run_title(start: int, count: int, family: str) -> str:
    """"blocks 1–35 · bottleneck ×35"."""
    return f"blocks {start}–{start + count - 1} · {family} ×{count}"
