"""`load_state_dict_from` (`load_torchvision`) on a model that does not register its modules in
execution order: a hand-written ResNet basic block whose `__init__` creates every conv, then
every norm (as some libraries do). Position pairing fails on it; pairing by module and kind
maps it, and the outputs, with perturbed norm statistics, equal the hand-written model's.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archspec
from archspec.interop import InteropError, load_state_dict_from, load_torchvision, to_torchvision

SPEC = """
name: convs_first
input: {channels: 4, size: [10, 10]}
stages: [{block: basic, out: 8, stride: 2}]
head: [global_pool, flatten, linear: 5]
"""


class ConvsFirst(nn.Module):
    """torchvision's BasicBlock with a projection, then a classifier; every conv registered first."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.proj = nn.Conv2d(4, 8, 1, stride=2, bias=False)
        self.norm_a, self.norm_b, self.proj_norm = nn.BatchNorm2d(8), nn.BatchNorm2d(8), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm_a(self.conv_a(x)))
        y = self.norm_b(self.conv_b(y))
        y = torch.relu(y + self.proj_norm(self.proj(x)))
        return self.fc(y.mean((2, 3)))


def _perturbed() -> ConvsFirst:
    torch.manual_seed(0)
    model = ConvsFirst()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.normal_(), m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_a_model_that_registers_convs_first_maps_by_kind() -> None:
    reference = _perturbed()
    model = archspec.build(SPEC).eval()
    assert load_state_dict_from is load_torchvision
    load_state_dict_from(model, reference)
    x = torch.randn(2, 4, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)
    # and back: the inverse pairs the same way
    fresh = ConvsFirst().eval()
    to_torchvision(model, fresh)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), reference(x), rtol=0, atol=0)


def test_a_model_that_differs_is_refused_both_ways() -> None:
    reference = ConvsFirst()
    reference.extra = nn.Conv2d(8, 8, 3, bias=False)
    with pytest.raises(InteropError) as info:
        load_torchvision(archspec.build(SPEC), reference)
    message = str(info.value)
    assert message.startswith("tensor #1 disagrees: archspec 'stages.0.blocks.0.bn1.weight' has shape [8], "
                              "torchvision 'conv_b.weight' has [8, 8, 3, 3]")
    assert message.endswith("paired by module and kind instead: archspec has 2 modules with weight (4-d weight), "
                            "the other model 3")


@pytest.mark.parametrize("model, source", [("compiled", 42), ("compiled", [1, 2]), (42, "reference")])
def test_what_is_not_a_model_or_a_state_dict_is_an_archspec_error(model, source) -> None:
    """Bad input to the Python API is an ArchspecError (docs/errors.md); still a TypeError, as it was."""
    model = archspec.build(SPEC) if model == "compiled" else model
    source = ConvsFirst() if source == "reference" else source
    for copy in (load_state_dict_from, to_torchvision):
        with pytest.raises(InteropError) as caught:
            copy(model, source)
        assert isinstance(caught.value, TypeError), caught.value
    with pytest.raises(InteropError, match="not a state_dict"):  # to_torchvision writes into a module
        to_torchvision(archspec.build(SPEC), ConvsFirst().state_dict())
