"""RepVGG and MobileOne against timm (test oracle: timm's RepVggBlock and MobileOneBlock, byobnet.py):
parameter counts, MACs (timm's module under torch's FlopCounterMode), eval outputs after loading
timm's weights with randomised norms, and the deployed form against timm's own reparameterize()."""

from __future__ import annotations

import pytest
import torch

import archspec
from archspec.interop import load_torchvision
from tests.test_deploy import perturb_norms

import timm  # a dev dependency (pyproject): the suite installs it

NETWORKS = ["repvgg_a0", "mobileone_s0", pytest.param("repvgg_a2", marks=pytest.mark.slow),
            pytest.param("repvgg_b0", marks=pytest.mark.slow), pytest.param("mobileone_s1", marks=pytest.mark.slow)]


def macs(model: torch.nn.Module, size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, size, size))
    return counter.get_total_flops() // 2


def reparameterized(model: torch.nn.Module) -> torch.nn.Module:
    for m in list(model.modules()):
        if hasattr(m, "reparameterize"):
            m.reparameterize()
    return model


@pytest.mark.parametrize("name", NETWORKS)
def test_parity_with_timm(name):
    reference = perturb_norms(timm.create_model(name), seed=3).eval()
    ours = archspec.build(name)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    load_torchvision(ours, reference)
    ours.eval()
    size = 96
    assert archspec.analyze(name, input=size).macs == macs(reference, size)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(ours(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
        deployed = archspec.deploy(ours)
        timm_deployed = reparameterized(reference)
        assert sum(p.numel() for p in deployed.parameters()) == sum(p.numel() for p in timm_deployed.parameters())
        assert archspec.analyze(deployed).macs == macs(timm_deployed, 224)
        a, b = deployed(x), timm_deployed(x)
    assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-5
