"""A block's graph reused for an input of another size (spec/lower.py, `ir.builder.at_input`).

A family that does not read its input's spatial size (`reads_input_size = False`: every built-in
family, every YAML block) emits the same nodes for any size with the same channels, so lowering
takes a graph emitted at one size for another, every shape inferred again. The truth each check
holds it to: the same spec lowered with empty caches (a fresh emission of every block), and, for
the generated YAML blocks of tests/test_block_properties.py, the shapes PyTorch itself computes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import archspec
from archspec.analysis.report import analyze_network
from archspec.core import memo
from archspec.core.errors import SpecError
from archspec.ir import builder
from archspec.ir.builder import GraphBuilder, Value
from archspec.ir.op import ShapeError
from archspec.spec.families import BlockContext, BlockFamily
from tests.analysis_helpers import registered

# Each has blocks whose rules care about the size: strided windows on odd sizes, attention windows,
# global pools, patch merging, token sequences, concatenated branches.
NETWORKS = ["efficientnet_b0", "resnet50", "regnet_y_400mf", "mobilenet_v3_small", "inception_v3", "densenet121",
            "convnext_tiny", "swin_t", "maxvit_t", "vit_b_16", "shufflenet_v2_x1_0", "deeplabv3_resnet50"]


def _lowered(name: str, size: int) -> tuple[Any, Any]:
    """(every node with its module path, the analysed figures) of `name` at `size` x `size`, or the error text."""
    try:
        net = archspec.load_spec(name, **{"input.size": [size, size]}).network(hints=False)
    except SpecError as exc:
        return str(exc), None
    report = analyze_network(net)
    nodes = [(part.path, node) for part in net.parts() for node in part.graph.nodes]
    return nodes, (report.params, report.buffers, report.macs, report.activation_bytes, report.peak_activation_bytes,
                   report.depth, report.receptive_field, report.features)


class _Emissions:
    """Counts the graphs emitted (builders made) while it is active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        init = GraphBuilder.__init__

        def counting(builder_self: GraphBuilder, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            init(builder_self, *args, **kwargs)

        monkeypatch.setattr(GraphBuilder, "__init__", counting)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_network_lowered_after_another_size_equals_its_fresh_lowering(name: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    side = archspec.load_spec(name).input.shape[1]
    # odd sizes: strided windows round differently (MaxViT's 7x7 partitions need multiples of 224)
    sizes = [side, 2 * side, 3 * side] if name == "maxvit_t" else [side, side - 33, side + 17, side // 2 + 1]
    memo.clear()
    emissions = _Emissions(monkeypatch)
    after_other_sizes = [_lowered(name, s) for s in sizes]
    reused = emissions.count
    fresh = []
    for s in sizes:
        memo.clear()
        fresh.append(_lowered(name, s))
    for size, warm, cold in zip(sizes, after_other_sizes, fresh):
        assert warm == cold, f"{name} at {size}x{size}"
    # the reuse happened: emitting every size from empty caches made more graphs
    assert reused < emissions.count - reused, (reused, emissions.count - reused)


def test_a_size_that_a_rule_refuses_is_refused_as_when_emitted() -> None:
    """swin_t's 7x7 windows need a map of 7x7 at least; after a 224 lowering, a 64 input (4x4 at the
    third stage, 64 / 16) is refused with the same located message a fresh lowering gives."""
    memo.clear()
    assert isinstance(_lowered("swin_t", 224)[0], list)
    warm = _lowered("swin_t", 64)[0]
    memo.clear()
    assert warm == _lowered("swin_t", 64)[0]
    assert isinstance(warm, str) and "stages[2]" in warm and "4x4 map" in warm and "window" in warm


class _PoolsLargeMaps(BlockFamily):
    """Test-only family that reads its input's size: a 2x2 max pool on maps of 16 or more, none below."""

    channel_fields: ClassVar[tuple[str, ...]] = ()
    strided: ClassVar[bool] = False

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.conv(x, name="conv", out=4, kernel=3, padding=1)
        return b.op("maxpool", y, name="pool", kernel=2, stride=2) if x.spatial[0] >= 16 else y


class _DeclaredSizeFree(_PoolsLargeMaps):
    """The same family wrongly declaring that it does not read the size: its graph is reused (what
    the declaration means), which the test shows, so that the first test's reuse is not vacuous."""

    reads_input_size: ClassVar[bool] = False


def _spec(block: str, size: int) -> str:
    return (f"name: probe\ninput: {{channels: 3, size: [{size}, {size}]}}\nstem: []\n"
            f"stages: [{{block: {block}}}]\nhead: [global_pool, flatten, linear: 2]\n")


def test_a_family_that_reads_the_size_is_emitted_again_for_each_size() -> None:
    with registered(test_pools_large_maps=_PoolsLargeMaps, test_declared_size_free=_DeclaredSizeFree):
        memo.clear()
        kinds = {}
        for block in ("test_pools_large_maps", "test_declared_size_free"):
            for size in (32, 8):
                net = archspec.load_spec(_spec(block, size)).network()
                kinds[block, size] = [n.op.kind for n in net.stages[0].blocks[0].graph.nodes]
    assert kinds["test_pools_large_maps", 32] == ["conv", "maxpool"]
    assert kinds["test_pools_large_maps", 8] == ["conv"]  # emitted again: the family reads the size
    assert kinds["test_declared_size_free", 8] == ["conv", "maxpool"]  # reused, as declared


def test_built_in_and_yaml_families_declare_that_they_do_not_read_the_size() -> None:
    """The built-in stage families are written from their channels alone (a family that reads
    `x.spatial` keeps the default, True; the parts of blocks/parts.py, necks that compare their
    inputs' sizes, do); a YAML block's expressions have no name for the size (parse.CONTEXT_NAMES)."""
    from archspec.spec.block_language.parse import CONTEXT_NAMES
    from archspec.spec.families import load_builtin_blocks

    stages = {name: cls for name, cls in load_builtin_blocks().items()
              if cls.__module__.startswith("archspec.blocks.") and cls.__module__ != "archspec.blocks.parts"}
    assert stages and not [name for name, cls in stages.items() if cls.reads_input_size]
    assert BlockFamily.reads_input_size is True
    assert not {"height", "width", "size", "spatial", "shape", "tokens"} & set(CONTEXT_NAMES)


def test_at_input_infers_every_shape_by_the_ops_rules() -> None:
    """A 3x3 stride-2 conv, padding 1: 9 -> 5 (hand: floor((9 + 2 - 3) / 2) + 1), 224 -> 112."""
    b = GraphBuilder((3, 224, 224))
    y = b.conv(b.input, out=8, kernel=3, stride=2, padding=1)
    graph = b.finish(b.op("global_pool", y))
    small = builder.at_input(graph, (3, 9, 9))
    assert [n.shape for n in graph.nodes] == [(8, 112, 112), (8, 1, 1)]
    assert [n.shape for n in small.nodes] == [(8, 5, 5), (8, 1, 1)]
    assert [n.op for n in small.nodes] == [n.op for n in graph.nodes] and small.in_shape == (3, 9, 9)


def test_a_builder_names_nodes_and_scopes_as_torch_names_modules() -> None:
    # names are text, whatever a family passes; unnamed nodes are numbered within their scope
    b = GraphBuilder((3, 8, 8))
    y = b.conv(b.input, name=3, out=4)  # type: ignore[arg-type]  # a family passing a number
    with b.scope("branch"):
        y = b.act(y)
        y = b.conv(y, name="conv", out=4)
        with pytest.raises(ShapeError, match="two layers are named 'branch.conv'"):
            b.conv(y, name="conv", out=4)
    with pytest.raises(ShapeError, match="'branch' names both a layer and a scope"):
        b.conv(y, name="branch", out=4)
    graph = b.finish(y)
    assert [n.name for n in graph.nodes] == ["3", "branch.0", "branch.conv"]
    assert b.scope_path == ()


def test_a_resized_graph_counts_the_readers_of_each_value_as_its_nodes_read_them() -> None:
    """`consumers` by hand for x -> conv -> act, with a shortcut add(act, x): the input is read by
    conv and add, conv by act, act by add, add once as the output. Each call gives a dict of its own,
    and the graph resized to another input (`at_input`) counts the same."""
    b = GraphBuilder((4, 16, 16))
    y = b.act(b.conv(b.input, out=4, kernel=3, padding=1))
    graph = b.finish(b.add(y, b.input))
    small = builder.at_input(graph, (4, 6, 6))
    for g in (graph, small, graph):
        counts = g.consumers()
        assert counts == {-1: 2, 0: 1, 1: 1, 2: 1}
        counts[-1] = 0  # the caller's to change, as analysis does
    assert [n.shape for n in small.nodes][-1] == (4, 6, 6)


def test_a_dotted_layer_name_under_a_layer_of_that_name_is_refused() -> None:
    b = GraphBuilder((3, 8, 8))
    y = b.conv(b.input, name="stem", out=4)
    with pytest.raises(ShapeError, match="'stem' names both a layer and a scope"):
        b.conv(y, name="stem.conv", out=4)
    z = b.conv(y, name="proj.0", out=4)  # a dotted name opens its scope: `proj` is taken as one
    with pytest.raises(ShapeError, match="'proj' names both a layer and a scope"):
        b.conv(z, name="proj", out=4)


@pytest.mark.parametrize("norm", ["batch", None])
def test_a_conv_norm_act_made_again_names_and_counts_its_nodes_as_the_first(norm: str | None) -> None:
    """The second builder takes the chains the first made (`conv_norm_act` keeps them): the same
    names, ops and counts; with no default norm, the act is named by the third name, not the second.
    Counts by hand, 8 -> 8 channels, 3x3 conv on 16x16: 8 * 8 * 9 = 576 weights, + 8 bias without a
    norm; a batch norm adds 16 parameters and 16 statistics (+1 step count) per chain."""
    from archspec.ir.builder import NodeLimitError
    from archspec.ir.op import OpDefaults

    defaults = OpDefaults(norm=norm)
    graphs = []
    for _ in range(2):
        b = GraphBuilder((8, 16, 16), defaults)
        y = b.conv_norm_act(b.input, 8, kernel=3, padding=1, names=("c", "n", "a"))
        y = b.conv_norm_act(y, 8, kernel=3, padding=1, act=False, names=("c2", "n2", "a2"))
        graphs.append(b.finish(y))
    first, again = graphs
    expected = ["c", "n", "a", "c2", "n2"] if norm else ["c", "a", "c2"]
    assert [n.name for n in again.nodes] == [n.name for n in first.nodes] == expected
    assert [n.op for n in again.nodes] == [n.op for n in first.nodes]
    assert again.counts == first.counts == ((2 * (576 + 16), 2 * 17, 2 * 576 * 256) if norm
                                            else (2 * (576 + 8), 0, 2 * 576 * 256))
    tight = GraphBuilder((8, 16, 16), defaults, max_nodes=2 if norm else 1)
    with pytest.raises(NodeLimitError, match="more than"):
        tight.conv_norm_act(tight.input, 8, kernel=3, padding=1, names=("c", "n", "a"))


def test_a_conv_norm_act_made_again_keeps_what_its_arguments_say() -> None:
    """A chain made again (`conv_norm_act` keeps them) still gives the conv the origin it is passed,
    takes its names from any iterable, and refuses too few names as the first call does."""
    from archspec.ir.op import OpDefaults

    defaults = OpDefaults()
    for _ in range(2):
        b = GraphBuilder((4, 8, 8), defaults, origin=("stages", 0))
        y = b.conv_norm_act(b.input, 4, kernel=3, padding=1, origin=("layers", 5))
        y = b.conv_norm_act(y, 4, names=(n for n in ("c", "n", "a")))
        graph = b.finish(y)
        assert [n.origin for n in graph.nodes][:3] == [("layers", 5), ("stages", 0), ("stages", 0)]
        assert [n.name for n in graph.nodes][3:] == ["c", "n", "a"]
        with pytest.raises(IndexError):
            b.conv_norm_act(y, 4, names=("c2", "n2"))  # three nodes, two names


def test_a_refused_name_leaves_no_scope_behind() -> None:
    b = GraphBuilder((3, 8, 8))
    y = b.conv(b.input, name="a", out=4)
    with pytest.raises(ShapeError, match="'a' names both a layer and a scope"):
        b.conv(y, name="a.m.n", out=4)
    # `a.m` was never taken as a scope: the clash is still the layer `a`
    with pytest.raises(ShapeError, match="'a' names both a layer and a scope"):
        b.conv(y, name="a.m", out=4)
