"""Interop the other way: `to_torchvision` hands a compiled model's weights to torchvision.

For every zoo network with a torchvision counterpart: give the archspec model random weights
(every tensor distinct, BatchNorm statistics measured on random images: tests/parity.py), copy them into torchvision's model with
`to_torchvision`, then check that every tensor of torchvision's state_dict holds exactly one of
archspec's tensors (a bijection by content, independent of how `to_torchvision` pairs names) and
that torchvision's forward computes what archspec's does.

Outside truth: torchvision's models (their state_dict layout and their forward). The reverse
direction, `load_torchvision`, is covered by the parity tests in tests/test_zoo_*.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
import torchvision

from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

import archspec
from archspec.interop import InteropError, to_torchvision
from tests.parity import assert_depends_on_input, calibrate_norms, randomise
from tests.zoo_tiers import REPRESENTATIVE, TIMM_VARIANTS, tiered

tv = torchvision.models

# case -> (archspec spec, overrides, torchvision constructor, input size). Compiled modules do not
# read the spec at forward time, so a small input checks the same weights for a fraction of the time
# (Inception-v3's smallest input is 75x75; the networks ending in adaptive pooling take any size).
CASES: dict[str, tuple[str, dict, Callable[[], torch.nn.Module], int]] = {
    name: (name, {}, lambda name=name: tv.get_model(name, weights=None), 64)
    for name in ["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
                 "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
                 "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "convnext_tiny", "densenet121",
                 "squeezenet1_1"] + [f"efficientnet_b{i}" for i in range(8)]
    # issue 14's families, one network each (tests/zoo_tiers.py); every network of theirs is loaded
    # the other way, with load_torchvision, in tests/test_zoo_torchvision.py
    + ["regnet_x_400mf", "regnet_y_400mf", "shufflenet_v2_x0_5", "mnasnet0_5", "efficientnet_v2_s"]
}
CASES["googlenet"] = ("googlenet", {"vars.aux_logits": False},
                      lambda: tv.googlenet(weights=None, aux_logits=False, init_weights=False), 64)
CASES["googlenet_aux"] = ("googlenet", {"vars.aux_logits": True},
                          lambda: tv.googlenet(weights=None, aux_logits=True, init_weights=False), 64)
CASES["inception_v3"] = ("inception_v3", {}, lambda: tv.inception_v3(weights=None, aux_logits=True, init_weights=False), 75)
# Dense prediction: the detection backbone and the segmentation models (with their auxiliary heads).
CASES["resnet50_fpn"] = ("resnet50_fpn", {}, lambda: resnet_fpn_backbone(backbone_name="resnet50", weights=None,
                                                                          trainable_layers=5), 64)
# issue 21: the transformers, one network per family (a ViT's position embedding follows its input)
CASES["vit_b_16"] = ("vit_b_16", {"input.size": [32, 32]}, lambda: tv.vit_b_16(weights=None, image_size=32), 32)
CASES["swin_t"] = ("swin_t", {}, lambda: tv.swin_t(weights=None), 224)
CASES["swin_v2_t"] = ("swin_v2_t", {}, lambda: tv.swin_v2_t(weights=None), 256)
CASES["maxvit_t"] = ("maxvit_t", {}, lambda: tv.maxvit_t(weights=None), 224)
for _name in ["fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]:
    _aux = {} if _name.startswith("lraspp") else {"aux_loss": True}
    CASES[_name] = (_name, {}, lambda name=_name, aux=_aux: tv.get_model(name, weights=None, weights_backbone=None,
                                                                        **aux), 64)


# The detection backbones (issue 20): torchvision's detectors' `.backbone`, at a size every level fits.
for _name, _size in (("retinanet_resnet50_fpn_backbone", 64), ("fasterrcnn_mobilenet_v3_large_fpn_backbone", 64),
                     ("ssd300_vgg16_backbone", 300), ("ssdlite320_mobilenet_v3_large_backbone", 320)):
    CASES[_name] = (_name, {}, lambda name=_name: tv.get_model(name.removesuffix("_backbone"), weights=None,
                                                               weights_backbone=None).backbone, _size)


def test_every_zoo_network_with_a_torchvision_counterpart_is_covered() -> None:
    from tests.test_zoo_smp import MODELS as SMP  # their reference is smp's, both ways, in test_zoo_smp.py

    covered = {spec for spec, *_ in CASES.values()} | set(REPRESENTATIVE) | set(SMP)
    timm = set(TIMM_VARIANTS.values())  # timm's networks: loaded from timm in tests/test_zoo_reparam.py
    assert set(archspec.zoo.names()) - covered == {"lenet5", "mobilenet_v1"} | timm
    assert {REPRESENTATIVE[n] for n in REPRESENTATIVE} <= covered | timm


def _fingerprint(t: torch.Tensor) -> tuple:
    """Dtype, size and the first values in memory order (a 1x1 convolution and a linear layer agree).
    Enough to tell random tensors apart; the full comparison follows."""
    return t.dtype, t.numel(), t.flatten()[:16].numpy().tobytes()


# Buffers computed from a window size alone (Swin's and MaxViT's relative positions): equal in every block
# of one window size, so not told apart by content; the forward comparison checks them.
CONSTANT_BUFFERS = ("relative_position_index", "relative_coords_table")


def assert_same_tensors(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    ours = {k: t for k, t in ours.items() if not k.endswith(CONSTANT_BUFFERS)}
    theirs = {k: t for k, t in theirs.items() if not k.endswith(CONSTANT_BUFFERS)}
    by_content = {_fingerprint(t): key for key, t in ours.items()}
    assert len(by_content) == len(ours), "archspec tensors are not all distinct: the check below would be blind"
    used: set[str] = set()
    for key, t in theirs.items():
        mine = by_content.get(_fingerprint(t))
        assert mine is not None, f"torchvision '{key}' holds none of archspec's tensors"
        assert torch.equal(t.flatten(), ours[mine].flatten()), key
        used.add(mine)
    assert len(theirs) == len(ours) == len(used)


@pytest.mark.parametrize("case", tiered(sorted(CASES)))
def test_to_torchvision_hands_every_weight_back(case: str) -> None:
    spec, overrides, make, size = CASES[case]
    torch.manual_seed(0)
    model = archspec.build(spec, **overrides)
    randomise(model)
    calibrate_norms(model.eval(), torch.randn(4, 3, size, size))
    target = _unwritten(make)
    assert to_torchvision(model, target) is target
    assert_same_tensors(model.state_dict(), target.state_dict())
    model.eval()
    target.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours, theirs = model(x), target(x)
    if isinstance(theirs, dict):  # dense prediction: the same named outputs
        assert list(ours) == list(theirs), case
        pairs = [(ours[k], theirs[k]) for k in theirs]
    else:
        assert ours.shape == theirs.shape == (2, 1000)
        pairs = [(ours, theirs)]
    for a, b in pairs:
        assert a.shape == b.shape
        assert_depends_on_input(b, case)
        diff = (a - b).abs().max().item()
        assert diff <= 1e-4, f"{case}: max abs difference {diff}"


def _unwritten(make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """torchvision's model with garbage in every tensor: whatever to_torchvision does not write stays garbage.
    Built on the meta device and left uninitialised, or (RegNet computes its widths with torch tensors,
    which the meta device cannot read back) built on the CPU and filled with NaN."""
    try:
        with torch.device("meta"):
            target = make()
        return target.to_empty(device="cpu")
    except NotImplementedError:
        target = make()
        with torch.no_grad():
            for t in target.state_dict().values():
                t.fill_(float("nan") if t.is_floating_point() else -1)
        return target


def _resnet_name(key: str) -> str:
    """torchvision's ResNet names -> archspec's, by hand from README's naming rules."""
    key = re.sub(r"^layer(\d)\.(\d+)\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.", key)
    key = re.sub(r"^(conv1|bn1)\.", r"stem.\1.", key)
    return re.sub(r"^fc\.", "head.fc.", key)


def test_to_torchvision_pairs_resnet_tensors_by_their_names() -> None:
    torch.manual_seed(0)
    model = archspec.build("resnet50")
    randomise(model)
    target = to_torchvision(model, tv.resnet50(weights=None))
    ours = model.state_dict()
    for key, t in target.state_dict().items():
        assert torch.equal(t, ours[_resnet_name(key)]), key


def test_to_torchvision_refuses_a_different_architecture_naming_the_first_tensor() -> None:
    model = archspec.build("resnet18")
    target = tv.resnet34(weights=None)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    # ResNet-18 has two blocks in layer1, ResNet-34 three: after layer1.1 the two part ways.
    first = (r"archspec 'stages\.1\.blocks\.0\.conv1\.weight' has shape \[128, 64, 3, 3\], "
             r"torchvision 'layer1\.2\.conv1\.weight' has \[64, 64, 3, 3\]")
    with pytest.raises(InteropError, match=first):
        to_torchvision(model, target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items()), "a refusal must not write"
    # VGG-11 into VGG-11-BN: torchvision's third tensor is already a BatchNorm weight, where VGG-11
    # has its second convolution. Shapes suffice to refuse, so both sides stay on the meta device.
    with torch.device("meta"):
        vgg11, vgg11_bn = archspec.build("vgg11"), tv.vgg11_bn(weights=None)
    with pytest.raises(InteropError, match=r"tensor #2 disagrees: archspec '[\w.]+' has shape \[128, 64, 3, 3\], "
                                           r"torchvision 'features\.1\.weight' has \[64\]"):
        to_torchvision(vgg11, vgg11_bn)
