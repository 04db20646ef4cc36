"""The rest of torchvision's convolutional classifiers (36 specs added by issue 14) against torchvision.

Outside truth: torchvision 0.29.1's models built with `weights=None` (parameter counts, initialisation,
norm settings, dropout and stochastic-depth rates, eval and training outputs) and their weights'
documented `num_params`. (MACs against `_ops` for every zoo network: tests/test_analysis_zoo.py.)

One test per network builds torchvision's model and ours once and checks everything on that pair:
  1. parameter count, ours = torchvision's = the documented one;
  2. initialisation: each weight tensor has the mean and spread of torchvision's freshly initialised one;
  3. regularisation: batch norm eps/momentum, layer norm eps, dropout rates, stochastic-depth schedule;
  4. eval outputs after `load_torchvision`, with torchvision's norm weights, biases, layer scales and
     running statistics perturbed first (tests/parity.py: its own init makes batch norm the identity);
  5. training mode, where the reference has dropout or stochastic depth: the same seed draws the same masks.
Every network ends in global average pooling, so outputs are compared at 64x64 (every stage still sees a
map larger than 1x1): the same weights and layers at a small fraction of 224x224's cost. Networks whose
pair takes over ~5 s to build (about 40M parameters and up) are marked slow.
"""

from __future__ import annotations

import gc
import json

import pytest
import torch
import torchvision

import archspec
from archspec.ir.ops.torch_modules import StochasticDepth
from archspec.interop.torchvision import _pairs
from tests.clirun import run_cli
from tests.parity import assert_parity, assert_training_parity, count
from tests.test_zoo_attention import SWINS, VITS
from tests.zoo_tiers import DENSE_VARIANTS, EXPORTED, REPRESENTATIVE, TIMM_VARIANTS

SIZE = 64
FAST = ["densenet169", "densenet201", "densenet161", "squeezenet1_0", "convnext_small",
        "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
        "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
        "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf",
        "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "efficientnet_v2_s"]
SLOW = ["resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "convnext_base", "convnext_large",
        "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
        "regnet_y_128gf", "efficientnet_v2_m", "efficientnet_v2_l"]
NETWORKS = FAST + [pytest.param(name, marks=pytest.mark.slow) for name in SLOW]


def test_the_list_is_the_issue_list() -> None:
    """The 36 networks issue 14 names, each in the zoo: none is dropped from the parity test."""
    assert len(FAST + SLOW) == len(set(FAST + SLOW)) == 36
    assert set(FAST + SLOW) <= set(archspec.zoo.names())


def _initialisation(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    mine, other = ours.state_dict(), theirs.state_dict()
    checked = 0
    for a, b in _pairs(mine, other, type(theirs).__name__):
        x, y = mine[a].float(), other[b].float()
        if not a.endswith(("weight", "bias", "scale")) or x.numel() < 1000:
            continue
        assert abs(x.mean() - y.mean()) <= 0.1 * y.std() + 1e-7, (a, b, x.mean(), y.mean())
        assert abs(x.std() - y.std()) <= 0.1 * y.std() + 1e-7, (a, b, x.std(), y.std())
        checked += 1
    assert checked > 10


def _norms(model: torch.nn.Module) -> list[tuple]:
    return [(type(m).__bases__[0].__name__ if type(m).__name__ == "LayerNorm2d" else type(m).__name__, m.eps,
             getattr(m, "momentum", None)) for m in model.modules()
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm))]


def _drop_rates(model: torch.nn.Module) -> list[float]:
    """Stochastic-depth rates where a residual branch uses them (p > 0), in order. torchvision's
    EfficientNet blocks hold a StochasticDepth module even where they have no residual to drop."""
    unused = {id(m.stochastic_depth) for m in model.modules() if getattr(m, "use_res_connect", True) is False}
    kinds = (StochasticDepth, torchvision.ops.StochasticDepth)
    return [m.p for m in model.modules() if isinstance(m, kinds) and m.p > 0 and id(m) not in unused]


def _regularisation(ours: torch.nn.Module, theirs: torch.nn.Module) -> bool:
    """Norm settings, dropout and stochastic depth equal torchvision's; whether training is random."""
    assert [n[1:] for n in _norms(ours)] == [n[1:] for n in _norms(theirs)]
    dropout = [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout == [m.p for m in theirs.modules() if isinstance(m, torch.nn.Dropout)]
    assert _drop_rates(ours) == pytest.approx(_drop_rates(theirs), rel=1e-12, abs=0)
    return bool(dropout or _drop_rates(ours))


def _training(ours: torch.nn.Module, theirs: torch.nn.Module, name: str) -> None:
    assert_training_parity(ours, theirs, torch.randn(4, 3, SIZE, SIZE), name)


@pytest.mark.parametrize("name", NETWORKS)
def test_equals_torchvision(name: str) -> None:
    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, weights=None)
    ours = archspec.build(name, **{"input.size": [SIZE, SIZE]})
    documented = torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"]
    assert count(ours) == count(theirs) == documented
    _initialisation(ours, theirs)
    random_in_training = _regularisation(ours, theirs)
    assert_parity(name, theirs, (3, SIZE, SIZE), model=ours)
    if random_in_training:
        _training(ours, theirs, name)
    del ours, theirs
    gc.collect()


def _kinds(name: str) -> set[tuple[str, str]]:
    """(block family or part, op class) of every node: what an exporter has to translate."""
    net = archspec.load_spec(name).network()
    kinds = {("part", type(ref.node.op).__name__) for ref in net.nodes()}
    return kinds | {("family", block.family) for stage in net.stages for block in stage.blocks}


def test_variants_use_what_their_representative_uses() -> None:
    """The heavy per-network tests run on one network per new family (tests/zoo_tiers.py): each variant
    must use no op and no block family its representative does not, and be in the zoo."""
    from tests.test_zoo_classic import TORCHVISION as CLASSIC  # VGG and ResNet variants, checked there
    from tests.test_zoo_mobile import EFFICIENTNETS

    assert set(REPRESENTATIVE) <= (set(FAST + SLOW) | {"resnext50_32x4d"} | set(TIMM_VARIANTS) | set(DENSE_VARIANTS)
                                   | set(VITS + SWINS) | set(CLASSIC) | set(EFFICIENTNETS))
    for variant, representative in REPRESENTATIVE.items():
        assert representative in EXPORTED, representative
        extra = _kinds(variant) - _kinds(representative)
        assert not extra, (variant, representative, extra)


def test_compare_takes_the_whole_zoo(tmp_path) -> None:
    """`archspec compare` over every zoo network: one row each, torchvision's counts, a plot."""
    names = archspec.zoo.names()
    code, out, err = run_cli("compare", *names, "--json", "--plot", str(tmp_path / "zoo.png"))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert sorted(rows) == names
    assert rows["regnet_y_128gf"]["params"] == 644_812_894 and rows["regnet_y_128gf"]["family"] == "regnet"
    assert (tmp_path / "zoo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
