"""Freezing parts of a compiled model (`freeze:` in a spec, `freeze=` in `archspec.build`).

A pattern names module paths as the spec does (`stem`, `stages.0`, `stages.*.blocks.0`,
`heads.aux_classifier`; shell-style `*` and `?`); each module it matches is frozen with all it
contains: its parameters stop requiring grad, and its batch norms stay in eval mode (their running
statistics fixed) when the model trains. torchvision's `trainable_layers=k` of a ResNet backbone is
`freeze: [stem, stages.0, ...]` for the first 5 - k parts. Nothing changes the state dict.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from torch import nn

from ..core.errors import did_you_mean


class FreezeError(ValueError):
    """A pattern that names no part of the model; `index` is its place in the list."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


class _EvalBatchNorm1d(nn.BatchNorm1d):
    def train(self, mode: bool = True) -> "_EvalBatchNorm1d":
        return super().train(False)


class _EvalBatchNorm2d(nn.BatchNorm2d):
    def train(self, mode: bool = True) -> "_EvalBatchNorm2d":
        return super().train(False)


class _EvalBatchNorm3d(nn.BatchNorm3d):
    def train(self, mode: bool = True) -> "_EvalBatchNorm3d":
        return super().train(False)


# Each batch norm class -> the same class whose `train()` keeps eval mode (state dict and forward unchanged).
_EVAL = {nn.BatchNorm1d: _EvalBatchNorm1d, nn.BatchNorm2d: _EvalBatchNorm2d, nn.BatchNorm3d: _EvalBatchNorm3d}


def _parts(model: nn.Module) -> list[str]:
    """Module paths a pattern may name, for a did-you-mean: the model's containers (not single layers)."""
    return [name for name, m in model.named_modules() if name and any(True for _ in m.children())]


def freeze(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Freeze every module whose path matches a pattern (and what it contains); returns the frozen
    module paths, outermost first. FreezeError for a pattern that matches nothing."""
    patterns = list(patterns)
    modules = dict(model.named_modules())
    roots: list[str] = []
    for i, pattern in enumerate(patterns):
        hits = [name for name in modules if name and fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            known = _parts(model)
            shown = ", ".join(n for n in known if n.count(".") <= 1)
            raise FreezeError(f"freeze: '{pattern}' names no part of the model{did_you_mean(pattern, known)}; "
                              f"parts: {shown}", i)
        roots += [h for h in hits if h not in roots]
    roots = [r for r in roots if not any(r.startswith(other + ".") for other in roots)]  # outermost only
    for root in roots:
        module = modules[root]
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        for sub in module.modules():
            eval_class = _EVAL.get(type(sub))
            if eval_class is not None:
                sub.__class__ = eval_class
                sub.train(False)
    model.archspec_frozen = tuple(roots)  # type: ignore[assignment]  # an attribute of our own on the module, not a Module or Tensor
    return roots
