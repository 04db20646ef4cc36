"""The IR refuses to change once built, and the memo tables it feeds can be emptied at once.

Graphs are shared between the blocks of a stage, between networks and across sweeps, and
analysis remembers what it derived from a graph by its identity (archspec/core/memo.py): an
edit in place used to corrupt every later analysis in the process (issue 22's notebook
reproduction: `graph.nodes.pop()` on one network, then `analyze("resnet50")` raised IndexError).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

import archspec
from archspec.core import memo
from archspec.core.frozen import FrozenDict, thaw

# resnet50's parameter count, from torchvision.models.resnet50() (the zoo test checks it there).
RESNET50_PARAMS = 25_557_032


def test_notebook_reproduction_raises_and_later_analysis_is_intact():
    net = archspec.load_spec("resnet50").network()
    graph = net.stages[1].blocks[2].graph
    before = len(graph.nodes)
    with pytest.raises(AttributeError):
        graph.nodes.pop()  # a tuple: no pop
    assert len(graph.nodes) == before
    assert archspec.analyze("resnet50").params == RESNET50_PARAMS


@pytest.mark.parametrize("edit", [
    lambda net: setattr(net, "name", "other"),
    lambda net: setattr(net.stages[0], "blocks", ()),
    lambda net: setattr(net.stages[0].blocks[0], "graph", net.stem),
    lambda net: setattr(net.stem, "output", 0),
    lambda net: setattr(net.stem.nodes[0], "name", "x"),
])
def test_assigning_a_field_raises(edit):
    """Frozen dataclasses raise FrozenInstanceError, named tuples (`Node`) AttributeError, its base."""
    net = archspec.load_spec("resnet18").network()
    with pytest.raises(AttributeError):
        edit(net)


@pytest.mark.parametrize("edit", [
    lambda net: net.stages.append(net.stages[0]),
    lambda net: net.stages[0].blocks.append(net.stages[0].blocks[0]),
    lambda net: net.stem.nodes.append(net.stem.nodes[0]),
    lambda net: net.aux_heads.append(None),
    lambda net: net.attached.append(None),
    lambda net: net.taps.append(None),
])
def test_sequences_are_tuples(edit):
    net = archspec.load_spec("resnet18").network()
    with pytest.raises(AttributeError):
        edit(net)


@pytest.mark.parametrize("edit", [
    lambda net: net.stem.titles.__setitem__("x", "y"),
    lambda net: net.stem.outputs.update(x=0),
    lambda net: net.spec_data.__setitem__("name", "other"),
    lambda net: net.spec_data["stages"][0].__setitem__("repeat", 1),
    lambda net: net.spec_data.pop("name"),
    lambda net: net.spec_data.clear(),
])
def test_mappings_are_read_only(edit):
    net = archspec.load_spec("resnet18").network()
    with pytest.raises(TypeError, match="read-only"):
        edit(net)
    assert net.spec_data["name"] == "resnet18"


def test_spec_data_reads_as_plain_data():
    net = archspec.load_spec("resnet18").network()
    data = thaw(net.spec_data)
    assert type(data) is dict and json.loads(json.dumps(net.spec_data)) == data
    assert pickle.loads(pickle.dumps(net.spec_data)) == net.spec_data
    assert thaw(copy.deepcopy(net.spec_data)) == data
    assert isinstance(pickle.loads(pickle.dumps(net.spec_data)), FrozenDict)


def test_a_built_module_carries_a_mutable_copy_of_the_spec():
    from archspec.backends.torch_module import build_module

    net = archspec.load_spec("resnet18").network()
    model = build_module(net, init=False)
    assert type(model.archspec_spec) is dict
    model.archspec_spec["name"] = "mine"  # the user's copy: the network's spec data is unchanged
    assert net.spec_data["name"] == "resnet18"


def test_map_graphs_makes_a_new_network_and_leaves_the_old_one():
    net = archspec.load_spec("resnet18").network()
    first = net.stages[0].blocks[0].graph
    edited = net.map_graphs(lambda g: dataclasses.replace(g, nodes=g.nodes[:1]) if g is first else g)
    assert len(edited.stages[0].blocks[0].graph.nodes) == 1
    assert net.stages[0].blocks[0].graph is first and len(first.nodes) > 1
    assert edited.stem is net.stem


def test_memo_clear_empties_every_table_and_answers_stay_the_same():
    first = archspec.analyze("resnet50")
    assert any(memo.tables().values())
    memo.clear()
    assert not any(memo.tables().values())
    again = archspec.analyze("resnet50")
    assert again.params == first.params == RESNET50_PARAMS and again.macs == first.macs
    assert again.receptive_field == first.receptive_field


def test_memo_identity_key_misses_for_another_object():
    table: memo.Memo[int] = memo.Memo("tests.identity", 4)
    a, b = object(), object()
    table.put(("k",), 1, a)
    assert table.get(("k",), a) == 1
    assert table.get(("k",), b) is memo.MISS
    table.put(("t",), 2, (a, b))
    assert table.get(("t",), (a, b)) == 2 and table.get(("t",), (a, a)) is memo.MISS
    for k in range(5):  # bounded: when full, the older half is dropped, then the new entry kept
        table.put(k, k)
        assert len(table) <= 4
    # ("k",), ("t",), 0, 1 filled it; 2 dropped the first two, 4 dropped 0 and 1
    assert table.get(("k",), a) is memo.MISS and table.get(("t",), (a, b)) is memo.MISS
    assert [table.get(k) for k in range(5)] == [memo.MISS, memo.MISS, 2, 3, 4]
    with pytest.raises(ValueError, match="exists already"):
        memo.Memo("tests.identity", 4)
