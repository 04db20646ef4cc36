"""Shared check: a zoo spec equals its torchvision reference (parameters and eval outputs)."""

from __future__ import annotations

import torch

import archspec
from archspec.interop import load_torchvision


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_parity(spec: str, reference: torch.nn.Module, input_shape: tuple[int, ...], batch: int = 2,
                  atol: float = 1e-4, **overrides) -> torch.nn.Module:
    """Build `spec`, compare its parameter count with `reference`, load the reference's
    (random) weights and compare eval outputs on a random batch. Returns the built model."""
    torch.manual_seed(0)
    model = archspec.build(spec, **overrides)
    assert count(model) == count(reference), (spec, count(model), count(reference))
    # Randomise BN statistics so that the comparison exercises them too.
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    load_torchvision(model, reference)
    model.eval()
    reference.eval()
    x = torch.randn(batch, *input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    diff = (ours - theirs).abs().max().item()
    assert diff <= atol, f"{spec}: max abs difference {diff}"
    return model
