"""googlenet and inception_v3 against torchvision: parameters, outputs (eval and train), MACs,
minimum input size, receptive field and initialisation.

Outside truth: torchvision's models (built with random weights) and the metadata documented in
`torchvision/models/googlenet.py` and `inception.py` (`num_params`, `_ops` in GFLOPS, `min_size`);
the receptive field of Inception-v3 from Araujo et al., "Computing Receptive Fields of
Convolutional Neural Networks" (Distill, 2019), Table 1.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from tests.parity import assert_parity, count

import archspec
from archspec.spec.load import load_spec, smallest_input

AUX_ON = {"vars.aux_logits": True}
AUX_OFF = {"vars.aux_logits": False}


def _googlenet(aux: bool) -> torch.nn.Module:
    return torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True)


def _inception_v3(aux: bool = True) -> torch.nn.Module:
    return torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=True)


def _train_outputs(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Train-mode outputs with the RNG seeded, so that both models draw the same dropout masks."""
    model.train()
    torch.manual_seed(123)
    with torch.no_grad():
        return tuple(model(x))


def _assert_same_train_outputs(ours: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor, n: int) -> None:
    theirs = _train_outputs(reference, x)
    mine = _train_outputs(ours, x)
    assert len(theirs) == len(mine) == n
    for a, b in zip(mine, theirs):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= 1e-4


def test_googlenet_matches_torchvision_without_aux_heads():
    model = assert_parity("googlenet", _googlenet(aux=False), (3, 64, 64), batch=2)
    assert count(model) == torchvision.models.GoogLeNet_Weights.DEFAULT.meta["num_params"] == 6_624_904
    assert not hasattr(model, "aux_heads")


def test_googlenet_aux_heads_through_one_option_match_torchvision_in_train_and_eval():
    reference = _googlenet(aux=True)
    model = assert_parity("googlenet", reference, (3, 64, 64), batch=2, **AUX_ON)
    assert count(model) == 13_004_888
    # In training torchvision returns (logits, aux2, aux1); dropout masks included, ours must agree.
    _assert_same_train_outputs(model, reference, torch.randn(2, 3, 64, 64), n=3)


def test_inception_v3_matches_torchvision_with_aux_head():
    reference = _inception_v3()
    # The aux head needs 299x299 in training; eval skips it, so a 75x75 input (torchvision's min_size) is enough.
    model = assert_parity("inception_v3", reference, (3, 75, 75), batch=2)
    assert count(model) == torchvision.models.Inception_V3_Weights.DEFAULT.meta["num_params"] == 27_161_264
    # Train mode: (logits, aux), computed from Mixed_6e; this also checks ORDER_HINTS["Inception3"].
    _assert_same_train_outputs(model, reference, torch.randn(2, 3, 299, 299), n=2)


def test_inception_v3_without_aux_head_matches_torchvision():
    with torch.device("meta"):
        reference = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert archspec.analyze("inception_v3", **AUX_OFF).params == count(reference)


@pytest.mark.parametrize("name, weights", [
    ("googlenet", torchvision.models.GoogLeNet_Weights.DEFAULT),
    ("inception_v3", torchvision.models.Inception_V3_Weights.DEFAULT),
])
def test_macs_params_and_min_size_match_torchvision_metadata(name, weights):
    report = archspec.analyze(name)
    assert round(report.macs / 1e9, 3) == weights.meta["_ops"]
    # The aux heads are counted in the parameters (as torchvision does for inception) but not in the MACs.
    assert report.params == weights.meta["num_params"]
    # torchvision's min_size is for inference, without the auxiliary heads.
    assert smallest_input(load_spec(name, **AUX_OFF).model) == weights.meta["min_size"][0]


def test_inception_v3_receptive_field_at_mixed_7c():
    report = archspec.analyze("inception_v3")
    rf = report.receptive_field
    assert (rf.size, rf.stride, rf.padding) == ((1311, 1311), (32, 32), (618, 618))
    mixed_7c = report.stage_names.index("Mixed_7c")
    assert report.receptive_field_layer == f"stages.{mixed_7c}.blocks.0.concat"


def test_inception_v3_init_follows_torchvision_per_module_stddev():
    """torchvision draws trunc_normal(0.1) except for AuxLogits.fc (0.001); the 0.01 it sets on
    AuxLogits.conv1 lands on the BasicConv2d wrapper and never reaches the conv, so 0.1 there too."""
    torch.manual_seed(0)
    ours = dict(archspec.build("inception_v3").named_parameters())
    theirs = dict(_inception_v3().named_parameters())
    pairs = {
        "stem.Conv2d_2a_3x3.weight": "Conv2d_2a_3x3.conv.weight",
        "stages.0.blocks.0.branch1.conv.weight": "Mixed_5b.branch1x1.conv.weight",
        "aux_heads.0.conv0.weight": "AuxLogits.conv0.conv.weight",
        "aux_heads.0.conv1.weight": "AuxLogits.conv1.conv.weight",
        "aux_heads.0.fc.weight": "AuxLogits.fc.weight",
        "head.fc.weight": "fc.weight",
    }
    for mine, other in pairs.items():
        a, b = ours[mine].detach(), theirs[other].detach()
        assert a.shape == b.shape, mine
        assert 0.9 < a.std().item() / b.std().item() < 1.1, (mine, a.std().item(), b.std().item())
    bn = ours["stages.0.blocks.0.branch1.bn.weight"]
    assert torch.all(bn == 1)


def test_googlenet_init_is_trunc_normal_001():
    torch.manual_seed(0)
    ours = dict(archspec.build("googlenet").named_parameters())
    theirs = dict(_googlenet(aux=False).named_parameters())
    for mine, other in {"stem.conv1.weight": "conv1.conv.weight", "head.fc.weight": "fc.weight",
                        "stages.0.blocks.0.branch2.conv1.weight": "inception3a.branch2.1.conv.weight"}.items():
        a, b = ours[mine].detach(), theirs[other].detach()
        assert a.shape == b.shape, mine
        assert 0.9 < a.std().item() / b.std().item() < 1.1, (mine, a.std().item(), b.std().item())
