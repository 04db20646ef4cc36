"""load_torchvision pairs the tensors of a model that creates its layers in another order than it
runs them, by tracing both once on the meta device (the reference is a hand-written module)."""

from __future__ import annotations

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
