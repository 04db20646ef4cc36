"""Shared check: a zoo spec equals its torchvision reference (parameters and eval outputs).

A comparison of outputs is evidence only where the outputs depend on the input. torchvision's own
initialisation of a depthwise conv (fan-out: std sqrt(2 / (k * k * C)) for a C-channel depthwise conv)
shrinks the signal at every block, and with running statistics that do not follow it (`randomise`'s
variances of about 1) the last layers see little but their biases: with `randomise` alone, MobileNet-v2/v3,
EfficientNet, MNASNet, GoogLeNet and MaxViT gave outputs 1e-7 to 4e-7 of their size apart for two random
images, ShuffleNet-v2 and EfficientNet-v2 1e-5 to 1e-4: under the comparison's tolerance, so a wrong layer
in the image's path passed (a ReLU for a hardswish, a stem norm's eps). `calibrate_norms` measures the
running statistics on random images (as a trained network's are measured on its data: the same outputs
are then 0.15 to 1 of their size apart), and `assert_depends_on_input` holds every comparison to outputs
the images set apart.
"""

from __future__ import annotations

import re

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


def calibrate_norms(model: torch.nn.Module, x: torch.Tensor, parts: str = "") -> None:
    """Batch norms (those whose names match the regular expression `parts`) with running statistics
    measured on `x`, as a trained network's: each channel normalised, so the input reaches the last
    outputs. Their weights and biases are kept (`randomise`d first: not the identity), and so are their
    momentum and `num_batches_tracked` (distinct per layer after `randomise`), and the statistics of the
    norms the eval forward does not reach (auxiliary heads). The model must be in eval mode (no dropout).

    A variance under 1% of its layer's mean is raised to that: a dead channel's ~0 would make float
    rounding (frozen batch norm's rsqrt) grow a hundredfold. The floor is relative because a depthwise
    conv's outputs are small (variance ~3e-3 in EfficientNet's later stages): a fixed floor of 0.01 left
    them unnormalised, and EfficientNet-B0's outputs 2e-4 apart for two images."""
    assert not model.training, "calibrate_norms runs the model in eval mode (its dropout off)"
    norms = [m for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats and re.match(parts, n + ".")]
    if not norms:
        return
    kept = [(norm.momentum, {k: t.clone() for k, t in norm.named_buffers()}, norm.training) for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # the plain average over the batch
        norm.train()
    with torch.no_grad():
        model(x)
        for norm, (momentum, buffers, training) in zip(norms, kept):
            if norm.num_batches_tracked == 0:  # not on the eval path (an auxiliary head): as it was
                norm.running_mean.copy_(buffers["running_mean"])
                norm.running_var.copy_(buffers["running_var"])
            norm.running_var.clamp_(min=1e-2 * float(norm.running_var.mean()) + 1e-12)
            norm.num_batches_tracked.copy_(buffers["num_batches_tracked"])
            norm.momentum = momentum
            norm.train(training)


def assert_depends_on_input(out: torch.Tensor, what: str, atol: float = 1e-4) -> None:
    """The batch's outputs (the reference's) differ from the first image's by more than ten times what
    the comparison forgives (`assert_close_outputs`'s bound) and by more than 0.1% of their size. A wrong
    layer changes the outputs by about as much as another image does (its effect reaches the outputs the
    same way), so a comparison is evidence only where that is well over its tolerance."""
    assert out.shape[0] >= 2, f"{what}: one image cannot show that the outputs depend on it"
    flat = out.detach().flatten(1).float()
    scale = float(flat.abs().max())
    spread = float((flat[1:] - flat[0]).abs().max())
    need = max(1e-3 * scale, 10 * atol * max(1.0, scale))
    assert spread > need, (f"{what}: the batch's outputs differ by {spread:.3g} (outputs up to {scale:.3g}): "
                           f"nearly constant, a comparison within {atol} would not see the input")


def assert_close_outputs(ours: torch.Tensor, theirs: torch.Tensor, what: str, atol: float = 1e-4) -> None:
    """Within `atol`, relative to the outputs' size where they exceed 1 (deep random networks grow them)."""
    scale = max(1.0, float(theirs.abs().max()))
    diff = (ours - theirs).abs().max().item()
    assert diff <= atol * scale, f"{what}: max abs difference {diff} (outputs up to {scale:.3g})"


def assert_parity(spec: str, reference: torch.nn.Module, input_shape: tuple[int, ...], batch: int = 2,
                  atol: float = 1e-5, model: torch.nn.Module | None = None, **overrides) -> torch.nn.Module:
    """Build `spec` (or take `model`), compare its parameter count with `reference`, perturb the
    reference's weights (`randomise`), measure its batch norms' statistics on random images
    (`calibrate_norms`), load them with `load_torchvision` and compare eval outputs on another random
    batch, whose outputs must differ (`assert_depends_on_input`). Returns the built model.

    1e-5 (relative to outputs over 1): both sides run the same torch ops on the same tensors, and the
    outputs agree bit for bit in all but the layer-norm networks (ConvNeXt, Swin, MaxViT: up to 7e-7)."""
    torch.manual_seed(0)
    if model is None:
        model = archspec.build(spec, **overrides)
    assert count(model) == count(reference), (spec, count(model), count(reference))
    randomise(reference)
    reference.eval()
    calibrate_norms(reference, torch.randn(max(batch, 8), *input_shape))
    load_torchvision(model, reference)
    model.eval()
    x = torch.randn(batch, *input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert_depends_on_input(theirs, spec, atol)
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
