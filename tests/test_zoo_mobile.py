"""MobileNet v1/v2/v3 and EfficientNet B0-B7 against outside truth.

* torchvision's models (random weights): equal parameter counts, equal eval outputs
  after `load_torchvision`, and equal training-mode outputs under the same seed
  (dropout and stochastic depth drawn in the same order with the same rates);
* torchvision's documented `num_params` and `_ops` (GMACs at the weights' crop size);
* the MobileNet-v1 paper (Howard et al., 2017): Table 1 (4,231,976 parameters,
  569M mult-adds), Table 6 (width multipliers) and Table 7 (resolutions).
"""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

import archspec
from archspec.ir.ops.torch_modules import StochasticDepth
from archspec.cli.main import main
from archspec.interop import load_torchvision
from tests.parity import assert_parity
from tests.zoo_tiers import tiered

EFFICIENTNETS = [f"efficientnet_b{i}" for i in range(8)]
TORCHVISION = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"] + EFFICIENTNETS
SMALL = {"input.size": [64, 64]}  # fully convolutional with global pooling: any size works on both sides


def reference(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None)


def documented(name: str) -> dict:
    return torchvision.models.get_model_weights(name).DEFAULT.meta


def decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


# -- torchvision's documented numbers ---------------------------------------------

@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_macs_match_torchvision_metadata(name):
    meta = documented(name)
    report = archspec.analyze(name)
    assert report.params == meta["num_params"]
    gmacs = meta["_ops"]
    assert round(report.macs / 1e9, decimals(gmacs)) == gmacs, (report.macs, gmacs)


def test_efficientnet_input_sizes_are_torchvision_crop_sizes():
    for name in EFFICIENTNETS:
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0]
        assert archspec.load_spec(name).model.input.size == (crop, crop), name


# -- module parity ----------------------------------------------------------------

def _bn_settings(model: torch.nn.Module) -> list[tuple[float, float]]:
    return [(m.eps, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def _drop_rates(model: torch.nn.Module) -> list[float]:
    """Stochastic-depth rates of the blocks that use them (a residual branch, p > 0), in order."""
    if isinstance(model, torchvision.models.EfficientNet):
        return [blk.stochastic_depth.p for blk in model.modules()
                if isinstance(blk, torchvision.models.efficientnet.MBConv) and blk.use_res_connect
                and blk.stochastic_depth.p > 0]
    return [m.p for m in model.modules() if isinstance(m, StochasticDepth) and m.p > 0]


def assert_same_regularisation(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """BatchNorm eps/momentum, dropout rates and the stochastic-depth schedule equal torchvision's."""
    assert _bn_settings(ours) == _bn_settings(theirs)
    dropout = [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout == [m.p for m in theirs.modules() if isinstance(m, torch.nn.Dropout)]
    assert _drop_rates(ours) == _drop_rates(theirs)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0"])
def test_parity_at_224(name):
    theirs = reference(name)
    assert_same_regularisation(assert_parity(name, theirs, (3, 224, 224), batch=2), theirs)


@pytest.mark.parametrize("name", tiered(EFFICIENTNETS[1:]))
def test_scaled_efficientnet_parity(name):
    """Parameter counts at full size are equal (the module's count does not depend on
    the input); outputs are compared at 64x64 to keep B5-B7 affordable."""
    theirs = reference(name)
    ours = assert_parity(name, theirs, (3, 64, 64), batch=2, **SMALL)
    assert_same_regularisation(ours, theirs)
    assert len(_drop_rates(ours)) > 9  # the schedule runs over the scaled depth


# -- training-only behaviour --------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_train_mode_draws_like_torchvision_and_eval_is_deterministic(name):
    ours = archspec.build(name, **SMALL)
    theirs = reference(name)
    load_torchvision(ours, theirs)
    x = torch.randn(8, 3, 64, 64)
    ours.train()
    theirs.train()
    outs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        a = ours(x)
        torch.manual_seed(seed)
        b = theirs(x)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        outs.append(a)
    assert not torch.allclose(outs[0], outs[1]), "dropout / stochastic depth inactive in training"
    ours.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        first = ours(x)
        torch.manual_seed(2)
        assert torch.equal(first, ours(x))


def test_efficientnet_drop_path_is_what_makes_blocks_random_in_training():
    spec = archspec.load_spec("efficientnet_b0", **SMALL)
    model = archspec.build(spec)
    block = model.stages[5].blocks[3]  # a residual block late in the network: p = 0.2 * 14 / 16
    assert isinstance(block.drop_path, StochasticDepth) and block.drop_path.p == pytest.approx(0.175)
    x = torch.randn(64, *spec.network().stages[5].blocks[3].graph.in_shape)
    block.train()
    with torch.no_grad():
        outs = [block(x) for _ in range(3)]
    assert not torch.equal(outs[0], outs[1]) or not torch.equal(outs[1], outs[2])
    block.eval()
    with torch.no_grad():
        assert torch.equal(block(x), block(x))


# -- MobileNet-v1 against the paper -----------------------------------------------

def test_mobilenet_v1_matches_table_1():
    report = archspec.analyze("mobilenet_v1")
    assert report.params == 4_231_976
    assert round(report.macs / 1e6) == 569
    model = archspec.build("mobilenet_v1")
    assert sum(p.numel() for p in model.parameters()) == 4_231_976
    assert model.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("width, mult_adds, params", [(0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)])
def test_mobilenet_v1_width_multiplier_matches_table_6(width, mult_adds, params):
    report = archspec.analyze("mobilenet_v1", scale={"width": width})
    assert round(report.macs / 1e6) == mult_adds
    assert round(report.params / 1e6, 1) == params


@pytest.mark.parametrize("size, mult_adds", [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_matches_table_7(size, mult_adds):
    """Within the last printed digit. The paper is not consistent in how it rounds: its
    224 entry (569) is 568.74M rounded up, its 160 entry (290) is 290.68M cut down;
    the count itself is exact (every size here is a multiple of 32, so the conv
    MACs scale exactly with the area: 567.72M * (s/224)^2, plus 1.024M for the classifier)."""
    report = archspec.analyze("mobilenet_v1", input=size)
    assert abs(report.macs / 1e6 - mult_adds) < 1
    assert round(report.params / 1e6, 1) == 4.2


# -- compound scaling of any spec ---------------------------------------------------

def test_scaling_b0_from_the_api_gives_torchvision_b3():
    report = archspec.analyze("efficientnet_b0", scale={"width": 1.2, "depth": 1.4})
    assert report.params == documented("efficientnet_b3")["num_params"]


def test_scaling_from_the_cli(capsys):
    code = main(["build", "mobilenet_v1", "--set", "scale.width=0.5", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["params"] / 1e6, 1) == 1.3  # Table 6: 0.5 MobileNet-224
    assert round(out["macs"] / 1e6) == 149


def test_depth_scaling_rounds_repeats_up():
    spec = archspec.load_spec("efficientnet_b0", scale={"depth": 1.1})
    # torchvision's efficientnet_b1: ceil(n * 1.1) blocks per stage
    theirs = reference("efficientnet_b1")
    tv_repeats = [len(stage) for stage in theirs.features[1:-1]]
    assert [s.repeat for s in spec.model.stages] == tv_repeats


# -- receptive field ----------------------------------------------------------------

def test_mobilenet_v1_receptive_field_matches_published_table():
    """google-research/receptive_field lists TF-slim's mobilenet_v1 (and _075) with a
    315-pixel field and stride 32 (its effective padding differs: TF pads asymmetrically)."""
    for width in (1.0, 0.75):
        rf = archspec.analyze("mobilenet_v1", scale={"width": width}).receptive_field
        assert rf.size == (315, 315) and rf.stride == (32, 32)


def test_squeeze_excitation_gate_leaves_the_spatial_field_alone():
    """The field follows the convolutional path: an SE gate (global context) neither ends
    the feature extractor nor changes the field (see docs/mobile.md)."""
    with_se = archspec.analyze("efficientnet_b0")
    without = archspec.analyze("efficientnet_b0", **{f"stages.{i}.se": 0 for i in range(7)})
    a, b = with_se.receptive_field, without.receptive_field
    assert (a.size, a.stride, a.padding) == (b.size, b.stride, b.padding)
    assert with_se.receptive_field_layer == without.receptive_field_layer
    assert with_se.receptive_field.stride == (32, 32)
    # what the gate adds is the context every unit sees: the whole map (docs/analysis.md)
    assert a.has_context and not b.has_context


def test_depth_scaling_repeats_blocks_not_fixed_layers():
    """A pool written as a stage is one layer, not a depth; VGG's depth is its `convs`."""
    spec = {
        "name": "tiny", "input": {"size": 32}, "num_classes": 10,
        "stages": [
            {"block": "vgg", "out": 16, "convs": 2},
            {"block": "basic", "out": 32, "repeat": 3, "stride": 2},
            {"maxpool": {"kernel": 2}},
        ],
        "head": ["flatten", {"linear": 10}],
        "scale": {"depth": 1.5},
    }
    stages = archspec.load_spec(spec).model.stages
    assert (stages[0].convs, stages[0].repeat) == (3, 1)  # ceil(2 * 1.5), the stage itself once
    assert stages[1].repeat == 5  # ceil(3 * 1.5)
    assert stages[2].repeat == 1
