"""The recipes of docs/blocks.md (docs/examples/recipes.yaml) equal the built-in families they copy:
the same parameter count and, with the same weights, the same outputs. The built-ins are themselves
checked against torchvision (tests/test_zoo_torchvision.py, tests/test_zoo_mobile.py)."""

from __future__ import annotations

from pathlib import Path

import torch

import archspec
from archspec.ir.builder import GraphBuilder
from archspec.blocks.squeeze_excite import squeeze_excitation

RECIPES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "recipes.yaml"


def _same(ours: torch.nn.Module, theirs: torch.nn.Module, shape: tuple[int, ...]) -> None:
    mine, other = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in other.values()]
    theirs.load_state_dict(dict(zip(other, mine.values())))
    ours.eval()
    theirs.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_fused_mbconv_recipe_is_the_builtin() -> None:
    torch.manual_seed(0)
    yaml = archspec.build(RECIPES, **{"stages.2.squeeze": 12})
    builtin = archspec.build(RECIPES, stages=[
        {"block": "fused_mbconv", "expand": 1, "out": 24, "repeat": 2},
        {"block": "fused_mbconv", "expand": 4, "out": 48, "repeat": 2, "stride": 2},
        {"block": "se_gate", "squeeze": 12}])
    assert sum(p.numel() for p in yaml.parameters()) == sum(p.numel() for p in builtin.parameters())
    # a residual where the shape is kept (stage 0, block 1; stage 1, block 1), none where it changes
    adds = [[n.name for n in blk.graph.nodes if n.op.kind == "add"]
            for stage in archspec.load_spec(RECIPES).network().stages for blk in stage.blocks]
    assert [bool(a) for a in adds] == [True, True, False, True, False]
    _same(yaml, builtin, (3, 64, 64))


def test_se_recipe_is_the_builtin_gate() -> None:
    net = archspec.load_spec(RECIPES).network()
    gate = net.stages[2].blocks[0].graph
    b = GraphBuilder(gate.in_shape)
    reference = b.finish(squeeze_excitation(b, b.input, 12, "relu", "sigmoid"))
    assert [n.op for n in gate.nodes] == [n.op for n in reference.nodes]
