"""The containers of a compiled network: the stages and the network itself.

The modules of single ops that PyTorch lacks live beside their ops, in
`archspec/ir/ops/torch_modules.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class Stage(nn.Module):
    """A stage: its blocks, run in order."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


# The classes above and the `forward` methods below are also the text of exported source
# (`python_source` copies them), so that the exported model and the compiled one run the same code.


class Network(nn.Module):
    """stem -> stages -> head."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class AuxNetwork(nn.Module):
    """stem -> stages -> head, with auxiliary heads that run in training only, each right after
    the stage given in `aux_after`; then forward returns `(logits, *aux_logits)` with the
    auxiliary logits in the order the heads are listed (which need not be the order they run
    in: torchvision's GoogLeNet returns `(logits, aux2, aux1)`)."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], head: nn.Module, aux_heads: list[nn.Module],
                 aux_after: tuple[int, ...]):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.aux_heads = nn.ModuleList(aux_heads)
        self.head = head
        self.aux_after = tuple(aux_after)

    def _get_name(self) -> str:
        return "Network"  # its repr, as before the two containers were split (they differ by forward alone)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        if not self.training:
            return self.head(self.stages(x))
        aux: list[torch.Tensor | None] = [None] * len(self.aux_after)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            for k, after in enumerate(self.aux_after):
                if after == i:
                    aux[k] = self.aux_heads[k](x)
        return (self.head(x), *aux)


class Features(nn.Module):
    """stem -> stages -> head as far as anything reads them, then the parts that read several
    values (`parts`: group -> name -> module, `ir.graph.PART_GROUPS`); forward returns the taps as an ordered dict
    (torchvision's IntermediateLayerGetter convention), named as `outputs` says.

    `runs` lists (module path, values read, values written) in order: the chain's running
    value is `x`, the network input `input`; a module with several outputs returns a tuple.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: list[nn.Module],
        head: nn.Module | None,
        parts: dict[str, dict[str, nn.Module]],
        runs: list[tuple[str, tuple[str, ...], tuple[str, ...]]],
        outputs: list[tuple[str, str]],
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        if head is not None:
            self.head = head
        for group, modules in parts.items():
            if modules:
                self.add_module(group, nn.ModuleDict(modules))
        self.runs = [(path, tuple(ins), tuple(outs)) for path, ins, outs in runs]
        self.outputs = [(name, key) for name, key in outputs]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {"x": x, "input": x}
        for path, ins, outs in self.runs:
            y = self.get_submodule(path)(*[values[k] for k in ins])
            if isinstance(y, tuple):
                values.update(zip(outs, y))
            else:
                for key in outs:
                    values[key] = y
        return OrderedDict((name, values[key]) for name, key in self.outputs)

