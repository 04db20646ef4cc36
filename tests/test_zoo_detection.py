"""The detection backbones of the zoo added by issue 20 against torchvision 0.29.1's detectors, each
built with `weights=None` and its `.backbone` taken: parameter counts; eval output dicts (names,
shapes, values) after `load_torchvision`, norm weights and biases perturbed first and running
statistics measured on random images (tests/parity.py); MACs against torch's own flop counter on
torchvision's backbone (convolutions and linear layers, a multiply-add counted as two flops, as fvcore
counts them); the feature info; SSDlite's ReLU6 where it clips. The RetinaNet backbone trains and
detects inside torchvision's RetinaNet."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision.models.detection as det
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.interop import load_torchvision
from tests.test_backbones import assert_trains_and_detects
from tests.parity import assert_close_outputs, assert_depends_on_input, calibrate_norms, randomise
from tests.zoo_tiers import tiered

# zoo name -> (torchvision's backbone, its parameter count as torchvision 0.29.1 builds it,
#              (output name, channels, stride) per output, the side of the image the test runs at).
# SSD300's last two levels are 3x3 and 1x1 maps made by unpadded 3x3 convs: still at stride 64.
BACKBONES: dict[str, tuple[Callable[[], torch.nn.Module], int, list[tuple[str, int, int]], int]] = {
    "retinanet_resnet50_fpn_backbone": (
        lambda: det.retinanet_resnet50_fpn(weights=None, weights_backbone=None).backbone, 27_376_704,
        [("0", 256, 8), ("1", 256, 16), ("2", 256, 32), ("p6", 256, 64), ("p7", 256, 128)], 128),
    "retinanet_resnet50_fpn_v2_backbone": (
        lambda: det.retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None).backbone, 31_505_472,
        [("0", 256, 8), ("1", 256, 16), ("2", 256, 32), ("p6", 256, 64), ("p7", 256, 128)], 128),
    "fasterrcnn_mobilenet_v3_large_fpn_backbone": (
        lambda: det.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).backbone, 4_439_344,
        [("0", 256, 32), ("1", 256, 32), ("pool", 256, 64)], 128),
    "fasterrcnn_mobilenet_v3_large_320_fpn_backbone": (
        lambda: det.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None).backbone, 4_439_344,
        [("0", 256, 32), ("1", 256, 32), ("pool", 256, 64)], 128),
    "ssd300_vgg16_backbone": (
        lambda: det.ssd300_vgg16(weights=None, weights_backbone=None).backbone, 22_943_936,
        [("0", 512, 8), ("1", 1024, 16), ("2", 512, 32), ("3", 256, 64), ("4", 256, 64), ("5", 256, 64)], 300),
    "ssdlite320_mobilenet_v3_large_backbone": (
        lambda: det.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).backbone, 2_072_672,
        [("0", 672, 16), ("1", 480, 32), ("2", 512, 64), ("3", 256, 128), ("4", 256, 256), ("5", 128, 512)], 320),
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", tiered(sorted(BACKBONES)))
def test_backbone_equals_torchvision(name: str) -> None:
    make, params, outputs, side = BACKBONES[name]
    torch.manual_seed(0)
    ref = make().eval()
    randomise(ref)
    calibrate_norms(ref, torch.randn(8, 3, side, side))
    ours = archspec.build(name)
    assert count(ours) == count(ref) == params
    load_torchvision(ours, ref)
    ours.eval()
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    assert list(got) == list(want) == [n for n, _, _ in outputs]
    for key, value in want.items():  # 1e-5: the same ops on the same tensors agree bit for bit here
        assert got[key].shape == value.shape
        assert_depends_on_input(value, f"{name}[{key}]", atol=1e-5)
        assert_close_outputs(got[key], value, f"{name}[{key}]", atol=1e-5)
    if hasattr(ref, "out_channels"):  # an FPN's levels share one channel count, which detectors read
        assert ours.out_channels == ref.out_channels == 256
    # MACs at the spec's input size, counted on torchvision's module on the meta device
    report = archspec.analyze(name)
    with torch.device("meta"):
        shell = make().eval()
    with FlopCounterMode(display=False) as flops:
        shell(torch.empty(2, *report.input_shape, device="meta"))
    assert report.macs == flops.get_total_flops() // 4  # two images
    assert [(f.name, f.channels, f.reduction) for f in report.features] == outputs


def test_ssdlite_extra_blocks_clip_at_six() -> None:
    """SSDlite's extra blocks end each conv in ReLU6 (torchvision's _extra_block). Calibrated batch norm
    keeps activations under 6, where ReLU6 is ReLU; with the extra blocks' norm weights ten times larger,
    every ReLU6 there gets inputs over 6 (checked), so a ReLU in their place gives other outputs."""
    name = "ssdlite320_mobilenet_v3_large_backbone"
    make, _, outputs, _ = BACKBONES[name]
    side = 128  # the extra blocks' last maps are still 1x1 (stride 2, padding 1)
    torch.manual_seed(0)
    ref = make().eval()
    randomise(ref)
    calibrate_norms(ref, torch.randn(8, 3, side, side))
    relu6 = [m for n, m in ref.named_modules() if n.startswith("extra.") and isinstance(m, torch.nn.ReLU6)]
    with torch.no_grad():
        for n, m in ref.named_modules():
            if n.startswith("extra.") and isinstance(m, torch.nn.BatchNorm2d):
                m.weight.mul_(10)
    ours = archspec.build(name)
    load_torchvision(ours, ref)
    ours.eval()
    peaks: list[float] = []  # a pre-hook: torchvision's ReLU6 works in place
    hooks = [m.register_forward_pre_hook(lambda m, args: peaks.append(float(args[0].max()))) for m in relu6]
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    for hook in hooks:
        hook.remove()
    assert len(peaks) == len(relu6) == 12 and min(peaks) > 6, peaks
    assert list(got) == list(want) == [n for n, _, _ in outputs]
    for key in want:
        assert_depends_on_input(want[key], f"{name}[{key}]", atol=1e-5)
        assert_close_outputs(got[key], want[key], f"{name}[{key}]", atol=1e-5)


@pytest.mark.slow  # a few seconds of detection losses on the shared 2-core machine
def test_retinanet_trains_and_detects_around_the_compiled_backbone() -> None:
    from torchvision.models.detection import RetinaNet

    torch.manual_seed(0)
    backbone = archspec.build("retinanet_resnet50_fpn_backbone")
    detector = RetinaNet(backbone, num_classes=3, min_size=128, max_size=160)
    fpn = detector.backbone.necks.fpn
    # every level learns: the stem, and p7 (the last level, two convs past C5)
    assert_trains_and_detects(detector, {"classification", "bbox_regression"},
                              [detector.backbone.stem.conv1.weight, fpn.extra_blocks.p7.weight])


@pytest.mark.parametrize("last", [256, 128])
def test_p6p7_reads_c5_or_p5_as_torchvision_decides_by_channels(last: int) -> None:
    """LastLevelP6P7(in, out) convolves P5 when in == out, else C5; `extra_from` unset does the same
    with the last input's channels. Against torchvision's FeaturePyramidNetwork, weights loaded."""
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

    spec = {"name": "p6p7", "input": {"channels": 3, "size": [64, 48]}, "defaults": {"norm": "none"},
            "stem": [{"conv": {"out": 64, "kernel": 3, "stride": 2, "padding": 1}}],
            "stages": [{"block": "layers", "layers": [{"conv": {"out": last, "kernel": 3, "stride": 2, "padding": 1}}]}],
            "head": [], "necks": {"fpn": {"block": "fpn", "in": ["stem", "stages.0"], "out": 256, "extra": "p6p7"}},
            "features": "necks.fpn"}
    torch.manual_seed(0)
    ours = archspec.build(spec).eval()
    fpn = FeaturePyramidNetwork([64, last], 256, extra_blocks=LastLevelP6P7(last, 256)).eval()
    mine = [k for k in ours.state_dict() if k.startswith("necks.")]
    assert len(mine) == len(fpn.state_dict())
    ours.load_state_dict({**ours.state_dict(), **dict(zip(mine, fpn.state_dict().values()))})
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        got = ours(x)
        c = {"0": ours.stem(x)}
        c["1"] = ours.stages(c["0"])
        want = fpn(c)
    assert list(got) == list(want) == ["0", "1", "p6", "p7"]
    for key in want:
        assert torch.allclose(got[key], want[key], atol=1e-5), key


def test_extra_from_without_p6p7_is_a_located_error() -> None:
    from archspec.core.errors import SpecError

    with pytest.raises(SpecError, match=r"necks.fpn.*extra_from chooses the input of the p6p7 levels"):
        archspec.analyze("resnet50_fpn", necks={"fpn": {"extra_from": "c5"}})
