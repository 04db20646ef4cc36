"""The containers of a compiled network: the stages and the network itself.

The modules of single ops that PyTorch lacks live beside their ops, in
`archspec/ir/ops/torch_modules.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class Stage(nn.Module):
    """A stage: its blocks, run in order (`stages.2.blocks.0`)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Network(nn.Module):
    """stem -> stages -> head. Auxiliary heads (if any) run in training only, each right
    after the stage given in `aux_after`; then forward returns `(logits, *aux_logits)`
    with the auxiliary logits in the order the heads are listed (which need not be the
    order they run in: torchvision's GoogLeNet returns `(logits, aux2, aux1)`)."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], head: nn.Module,
                 aux_heads: list[nn.Module] | None = None, aux_after: tuple[int, ...] = ()):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        if aux_heads:
            self.aux_heads = nn.ModuleList(aux_heads)
        self.head = head
        self.aux_after = tuple(aux_after)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        if not self.aux_after or not self.training:
            return self.head(self.stages(x))
        aux: list[torch.Tensor | None] = [None] * len(self.aux_after)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            for k, (head, after) in enumerate(zip(self.aux_heads, self.aux_after)):
                if after == i:
                    aux[k] = head(x)
        return (self.head(x), *aux)


class Features(nn.Module):
    """stem -> stages -> head, as far as the taps need; forward returns the taps as an
    ordered dict (torchvision's IntermediateLayerGetter convention), in `names` order.

    `runs` lists the module paths to run, in order, with the taps taken after each: a
    part runs whole unless a tap lies inside it, and then layer by layer.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: list[nn.Module],
        head: nn.Module | None,
        runs: list[tuple[str, tuple[str, ...]]],
        names: tuple[str, ...],
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        if head is not None:
            self.head = head
        self.runs = [(path, tuple(taken)) for path, taken in runs]
        self.names = tuple(names)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for path, taken in self.runs:
            x = self.get_submodule(path)(x)
            for name in taken:
                out[name] = x
        return OrderedDict((name, out[name]) for name in self.names)
