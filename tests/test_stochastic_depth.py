"""Stochastic depth without position in the block graph.

A block's drop-path rate rises with its place in the network (torchvision: block g of n drops
with `rate * g / n` in MobileNet and EfficientNet, `rate * g / (n - 1)` in ConvNeXt, Swin and
MaxViT). Lowering works the rate out per block, so the blocks of a stage share one emitted graph,
each with its own rate. The schedules themselves are checked against torchvision's modules in
tests/test_zoo_mobile.py and tests/test_zoo_modern.py; here: that sharing the graph changes no
rate and no figure. Expected rates are the formula worked by hand.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import archspec
from archspec.analysis.report import _static
from archspec.ir.ops.torch_modules import StochasticDepth

# efficientnet_b0: 16 blocks, drop_path 0.2, block g drops with 0.2 * g / 16 (torchvision's
# efficientnet: `sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks`).
B0_BLOCKS, B0_RATE = 16, 0.2


def _rates(net) -> list[tuple[int, float]]:
    """(global block index, p) of every drop-path node, in block order."""
    out, g = [], 0
    for stage in net.stages:
        for block in stage.blocks:
            out += [(g, node.op.p) for node in block.graph.nodes if node.op.kind == "drop_path"]
            g += 1
    return out


def test_a_stage_shares_one_graph_at_each_blocks_own_rate() -> None:
    net = archspec.load_spec("efficientnet_b0").network()
    stage = net.stages[5]  # four blocks of 192 channels: the first changes the shape, three keep it
    templates = {id(b.graph.analysed_as) for b in stage.blocks[1:]}
    assert len(templates) == 1 and len({id(b.graph) for b in stage.blocks[1:]}) == 3
    assert _rates(net) == [(g, pytest.approx(B0_RATE * g / B0_BLOCKS)) for g, _ in _rates(net)]
    # blocks whose shape is kept have a skip connection and drop; block 0 (rate 0) and shape changers do not
    assert [g for g, _ in _rates(net)] == [2, 4, 6, 7, 9, 10, 12, 13, 14]


def test_a_rebound_graph_differs_from_its_template_only_in_the_rates() -> None:
    from archspec.core import memo

    # From empty block-graph tables: a graph an earlier test left there (efficientnet_b1's stage 5,
    # emitted at b1's rates) would be rebound for block 1 too, and the count below would be 3.
    memo.clear()
    net = archspec.load_spec("efficientnet_b0").network()
    rebound = [b for b in net.stages[5].blocks[1:] if b.graph.template is not None]
    assert len(rebound) == 2  # block 1's graph was emitted at its rate; blocks 2 and 3 rebind it
    for block in rebound:
        graph, template = block.graph, block.graph.analysed_as
        assert graph is not template and template is net.stages[5].blocks[1].graph
        assert graph.scheduled == template.scheduled
        assert dataclasses.replace(template, nodes=graph.nodes) == graph  # every other field the same
        changed = [i for i, (a, b) in enumerate(zip(graph.nodes, template.nodes)) if a != b]
        assert changed == list(template.scheduled)
        assert all(graph.nodes[i]._replace(op=template.nodes[i].op) == template.nodes[i] for i in changed)
        with pytest.raises(dataclasses.FrozenInstanceError):
            graph.output = 0  # type: ignore[misc]  # the copy is as frozen as the template


def test_a_shared_graph_analyses_as_its_own() -> None:
    """Every figure of a block that reuses another's graph equals a fresh walk of its own nodes."""
    net = archspec.load_spec("efficientnet_b0").network()
    for block in net.stages[5].blocks[1:]:
        own, shared = _static(block.graph), _static(block.graph.analysed_as)
        assert (own.params, own.macs, own.peak, own.depth, own.elements) == \
               (shared.params, shared.macs, shared.peak, shared.depth, shared.elements)
    report = archspec.analyze("efficientnet_b0")
    by_path = {layer.name: layer.node_op.p for layer in report.layers if layer.op == "drop_path"}
    assert by_path["stages.5.blocks.3.drop_path"] == pytest.approx(B0_RATE * 14 / B0_BLOCKS)  # stage 5 holds blocks 11 to 14
    assert by_path["stages.5.blocks.1.drop_path"] == pytest.approx(B0_RATE * 12 / B0_BLOCKS)


def test_compiled_modules_keep_each_blocks_rate() -> None:
    model = archspec.build("efficientnet_b0")
    rates = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    assert rates == pytest.approx([B0_RATE * g / B0_BLOCKS for g in [2, 4, 6, 7, 9, 10, 12, 13, 14]])


NESTED = """
name: nested_drop
input: {channels: 8, size: [16, 16]}
blocks:
  wrap:
    params: {out: int}
    layers:
      - {block: mbconv, out: "${out}", expand: 2, drop_path: 0.3}
stages:
  - {block: wrap, out: 8, repeat: 3}
head: [global_pool, flatten]
"""


def test_a_nested_block_drops_at_its_enclosing_blocks_place() -> None:
    """An mbconv inside a YAML block takes the schedule at the enclosing block's place: 0.3 * g / 3."""
    net = archspec.load_spec(NESTED).network()
    assert [p for _, p in _rates(net)] == pytest.approx([0.3 * 1 / 3, 0.3 * 2 / 3])
    model = archspec.build(NESTED).train()
    torch.manual_seed(0)
    assert model(torch.randn(2, 8, 16, 16)).shape == (2, 8)


def test_a_transformed_graph_keeps_neither_schedule_nor_shared_analysis() -> None:
    """`dataclasses.replace` of a block's graph (other nodes) drops `scheduled` and `template`: the
    new graph is analysed as itself, and no rate is rebound at indices that mean other nodes now."""
    import dataclasses

    net = archspec.load_spec("efficientnet_b0").network()
    graph = net.stages[5].blocks[2].graph
    assert graph.scheduled and graph.template is not None
    cut = dataclasses.replace(graph, nodes=graph.nodes[:3], output=2)
    assert cut.scheduled == () and cut.template is None and cut.analysed_as is cut
    assert _static(cut).params == sum(n.op.params([graph.shape_of(i) for i in n.inputs]) for n in cut.nodes)
