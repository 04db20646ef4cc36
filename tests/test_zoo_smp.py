"""The segmentation_models_pytorch zoo specs equal smp 0.6's models (MIT; a test oracle only):
parameter counts, eval outputs after loading smp's weights with every norm's weight, bias and
statistics perturbed (and back: every weight handed to smp), and MACs equal to a conv + linear
count taken by forward hooks on smp's own modules (fvcore's convention, computed here)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import segmentation_models_pytorch as smp  # a dev dependency (pyproject's dev extras)
import torch
from torch import nn

import archspec
from archspec.interop import load_torchvision, to_torchvision

# zoo name -> (smp's model, its parameter count as smp 0.6 builds it)
MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "unet_resnet34": (lambda: smp.Unet(encoder_name="resnet34", encoder_weights=None, classes=1), 24_436_369),
    "deeplabv3plus_resnet50": (lambda: smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, classes=1),
                               26_677_585),
    "fpn_resnet34": (lambda: smp.FPN(encoder_name="resnet34", encoder_weights=None, classes=1), 23_155_393),
}


def reference(name: str) -> nn.Module:
    torch.manual_seed(0)
    ref = MODELS[name][0]().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # every norm away from the identity
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return ref


def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every Conv2d and Linear as fvcore counts them (one per weight per output
    position), taken by forward hooks while smp's model runs."""
    total = 0

    def hook(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        per_output = m.weight[0].numel()  # in / groups * kh * kw, or in for a linear layer
        total += out.numel() // out.shape[0] * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", sorted(MODELS))
def test_equals_segmentation_models_pytorch(name: str) -> None:
    ref = reference(name)
    ours = archspec.build(name).eval()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in ref.parameters()) == MODELS[name][1]
    load_torchvision(ours, ref)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    assert list(got) == ["mask"] and got["mask"].shape == want.shape == (2, 1, 64, 96)
    assert (got["mask"] - want).abs().max().item() <= 1e-4
    back = MODELS[name][0]().eval()  # every weight handed back: smp's fresh model computes the same
    to_torchvision(ours, back)
    with torch.no_grad():
        assert torch.allclose(back(x), want, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_macs_equal_a_conv_and_linear_count_of_smp(name: str) -> None:
    ref = MODELS[name][0]().eval()
    assert archspec.analyze(name).macs == conv_linear_macs(ref, torch.randn(1, 3, 224, 224))
