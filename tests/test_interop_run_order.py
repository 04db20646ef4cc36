"""load_torchvision pairs the tensors of a model that creates its layers in another order than it
runs them, by tracing both once on the meta device (the reference is a hand-written module)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archspec
from archspec.interop import load_torchvision, to_torchvision

SPEC = {"name": "two_convs", "input": {"channels": 3, "size": 16},
        "stem": [{"conv": {"out": 8, "kernel": 3, "padding": 1}}, "act",
                 {"conv": {"out": 16, "kernel": 3, "padding": 1}}, "act"],
        "head": ["global_pool", "flatten", {"linear": 5}]}


class CreatedBackwards(nn.Module):
    """The same network, its layers created last first: neither creation order nor module kinds
    (two convs of different shapes) pair it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 5)
        self.second = nn.Conv2d(8, 16, 3, padding=1)
        self.first = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.second(torch.relu(self.first(x))))
        return self.fc(x.mean((2, 3)))


def test_pairs_by_execution_order() -> None:
    torch.manual_seed(0)
    ours, theirs = archspec.build(SPEC).eval(), CreatedBackwards().eval()
    load_torchvision(ours, theirs)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    back = CreatedBackwards()
    to_torchvision(ours, back)
    with torch.no_grad():
        assert torch.allclose(back(x), theirs(x), atol=1e-6)


def test_the_meta_copy_that_finds_the_order_copies_no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order is found on a copy on the meta device, made without copying a byte of the weights
    (ViT-H/14's are 2.5 GB): the source keeps its tensors, a tied weight stays tied in the copy,
    and the copy's parameters are parameters, with the source's shapes, dtypes and requires_grad."""
    from archspec.interop.torchvision import _meta_copy

    source = CreatedBackwards()
    source.tied = nn.Linear(16, 5)
    source.tied.weight = source.fc.weight  # one tensor, two modules
    source.fc.bias.requires_grad_(False)
    source.register_buffer("steps", torch.tensor(3))
    before = {k: v.clone() for k, v in source.state_dict().items()}

    def refuse(*args: object) -> None:
        raise AssertionError("a weight was deep-copied")

    monkeypatch.setattr(nn.Parameter, "__deepcopy__", refuse)
    monkeypatch.setattr(torch.Tensor, "__deepcopy__", refuse)
    copy = _meta_copy(source)
    monkeypatch.undo()
    assert all(t.device.type == "cpu" for t in source.state_dict().values())
    assert all(torch.equal(v, before[k]) for k, v in source.state_dict().items())
    assert copy.tied.weight is copy.fc.weight and isinstance(copy.fc.weight, nn.Parameter)
    for (name, ours), (_, theirs) in zip(copy.named_parameters(), source.named_parameters()):
        assert ours.device.type == "meta" and ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
        assert ours.requires_grad == theirs.requires_grad, name
    assert copy.steps.device.type == "meta" and copy.steps.dtype == torch.int64
    assert copy.first.weight is not source.first.weight
