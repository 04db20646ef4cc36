"""ConvNeXt-T, DenseNet-121 and SqueezeNet 1.1 against torchvision (random weights, no downloads).

Outside truth: torchvision's models (parameter counts, eval outputs, stochastic depth
probabilities, initialisation) and the `_ops` (GFLOPS, i.e. GMACs) documented in their
weights' metadata.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import torch
import torchvision

import archspec
from archspec.interop.torchvision import _pairs
from tests.parity import assert_parity

MODELS = {
    "convnext_tiny": (torchvision.models.convnext_tiny, torchvision.models.ConvNeXt_Tiny_Weights),
    "densenet121": (torchvision.models.densenet121, torchvision.models.DenseNet121_Weights),
    "squeezenet1_1": (torchvision.models.squeezenet1_1, torchvision.models.SqueezeNet1_1_Weights),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parity_with_torchvision(name: str) -> None:
    make, weights = MODELS[name]
    reference = make(weights=None)
    assert sum(p.numel() for p in reference.parameters()) == weights.DEFAULT.meta["num_params"]
    # 64x64 keeps the test fast; every layer still sees a spatial map larger than 1x1.
    assert_parity(name, reference, (3, 64, 64), batch=2)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_macs_match_documented_ops(name: str) -> None:
    """torchvision's `_ops` is GMACs of conv and linear layers at 224x224, printed to a few decimals."""
    documented = MODELS[name][1].DEFAULT.meta["_ops"]
    places = -Decimal(str(documented)).as_tuple().exponent
    assert round(archspec.analyze(name).macs / 1e9, places) == pytest.approx(documented)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_initialisation_follows_torchvision(name: str) -> None:
    """Each weight tensor has the mean and spread of torchvision's freshly initialised one."""
    torch.manual_seed(1)
    ours = archspec.build(name)
    theirs = MODELS[name][0](weights=None)
    mine, other = ours.state_dict(), theirs.state_dict()
    for a, b in _pairs(mine, other, type(theirs).__name__):
        x, y = mine[a].float(), other[b].float()
        if not a.endswith(("weight", "bias", "scale")) or x.numel() < 2000:
            continue
        assert abs(x.mean() - y.mean()) <= 0.1 * y.std() + 1e-7, (a, b)
        assert abs(x.std() - y.std()) <= 0.1 * y.std() + 1e-7, (a, b, x.std(), y.std())


def test_convnext_stochastic_depth_schedule() -> None:
    """Block i of 18 drops its branch with p = 0.1 * i / 17 in training, as torchvision's."""
    ours = archspec.build("convnext_tiny", **{"input.size": [32, 32]})
    theirs = torchvision.models.convnext_tiny(weights=None)
    expected = [m.p for m in theirs.modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    blocks = [blk for stage in ours.stages for blk in stage.blocks]
    got = [blk.drop_path.p if hasattr(blk, "drop_path") else 0.0 for blk in blocks]
    assert got == pytest.approx(expected)
    # Training draws a per-sample mask; eval is deterministic.
    x = torch.randn(8, 3, 32, 32)
    ours.train()
    torch.manual_seed(0)
    a = ours(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, ours(x))
    ours.eval()
    assert torch.equal(ours(x), ours(x))


def test_densenet_grows_by_concatenation() -> None:
    """The paper's widths: 64 + 6*32 = 256 after block 1, halved to 128 by transition 1, ..., 1024 at the end."""
    report = archspec.analyze("densenet121")
    out = {name: report.layers[[la.name for la in report.layers].index(name)].output_shape[0] for name in (
        "stages.0.blocks.5.concat", "stages.1.blocks.0.pool", "stages.2.blocks.11.concat",
        "stages.6.blocks.15.concat")}
    assert list(out.values()) == [256, 128, 512, 1024]
