"""Shared check: a zoo spec equals its torchvision reference (parameters and eval outputs)."""

from __future__ import annotations

import torch

import archspec
from archspec.interop import load_torchvision


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise(model: torch.nn.Module) -> None:
    """Make every state_dict tensor distinct and every layer matter: constant initialisations (norm
    weights and biases, zero biases, running statistics) get random values near their own, and layer
    scales (ConvNeXt's 1e-6, which hides its whole residual branch) values of order one.

    torchvision's own initialisation makes batch norm the identity and ConvNeXt's branches vanish;
    a comparison on that initialisation misses a wrong norm eps or an extra activation."""
    with torch.no_grad():
        for i, (key, t) in enumerate(model.state_dict().items()):  # views of the model's tensors
            if not t.is_floating_point():
                if key.endswith("num_batches_tracked"):
                    t.fill_(i + 1)  # a different count per layer
                # other integer buffers are indices (Swin's relative positions): kept
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif key.endswith("running_mean"):
                t.uniform_(-0.1, 0.1)
            elif "layer_scale" in key:
                t.uniform_(0.5, 1.5)
            else:
                lo, hi = t.aminmax()
                if lo == hi:
                    t.copy_(torch.empty_like(t).uniform_(-0.1, 0.1) if lo == 0 else lo * torch.empty_like(t).uniform_(0.5, 1.5))


def assert_close_outputs(ours: torch.Tensor, theirs: torch.Tensor, what: str, atol: float = 1e-4) -> None:
    """Within `atol`, relative to the outputs' size where they exceed 1 (deep random networks grow them)."""
    scale = max(1.0, float(theirs.abs().max()))
    diff = (ours - theirs).abs().max().item()
    assert diff <= atol * scale, f"{what}: max abs difference {diff} (outputs up to {scale:.3g})"


def assert_parity(spec: str, reference: torch.nn.Module, input_shape: tuple[int, ...], batch: int = 2,
                  atol: float = 1e-4, model: torch.nn.Module | None = None, **overrides) -> torch.nn.Module:
    """Build `spec` (or take `model`), compare its parameter count with `reference`, perturb the
    reference's weights (`randomise`), load them with `load_torchvision` and compare eval outputs on
    a random batch. Returns the built model."""
    torch.manual_seed(0)
    if model is None:
        model = archspec.build(spec, **overrides)
    assert count(model) == count(reference), (spec, count(model), count(reference))
    randomise(reference)
    load_torchvision(model, reference)
    model.eval()
    reference.eval()
    x = torch.randn(batch, *input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert_close_outputs(ours, theirs, spec, atol)
    return model


def assert_training_parity(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, what: str) -> None:
    """Training mode: the same seed draws the same dropout and stochastic-depth masks on both sides
    (equal outputs); another seed, other outputs (the randomness is on)."""
    ours.train()
    theirs.train()
    outs = []
    with torch.no_grad():
        for seed in (1, 2):
            torch.manual_seed(seed)
            a = ours(x)
            torch.manual_seed(seed)
            assert_close_outputs(a, theirs(x), f"{what} (training, seed {seed})")
            outs.append(a)
    assert not torch.allclose(outs[0], outs[1]), "dropout / stochastic depth inactive in training"
