"""Deployed 2-d convolutions whose weights are laid out once for oneDNN, the CPU's convolution library.

On a CPU, `F.conv2d` hands oneDNN each weight in PyTorch's (out, in, kh, kw) layout, and oneDNN
reorders it into its own blocked layout on every call, a copy of every weight per forward. A
deployed module does not train, so its weights can be reordered once and kept: `PackedConv2d`
is an `nn.Conv2d` that does so, by input shape, and calls oneDNN's convolution on the kept
weight (`torch.ops.mkldnn._convolution_pointwise`, the kernel torch.compile's CPU backend uses
for frozen weights). Measured on this project's 2-core machine, one thread (docs/benchmarks.md):
a third faster on resnet50 at batch 1, about a tenth at batch 8.

Its state is an `nn.Conv2d`'s (the same parameters and keys; the reordered weight is a cache,
never saved), and it takes the plain path, `nn.Conv2d.forward`, wherever the fast one does not
apply: another device or dtype, autograd, tracing, torch.compile and export (ONNX, .pt2), so
exports and compiled graphs hold an ordinary convolution; and a weight made under
`torch.inference_mode`, which has no version counter to tell of an in-place change. A 1x1 input map (squeeze-and-excitation's
convs, a head's) takes it too: PyTorch's own path is faster there (measured: 21-27 against 55-68 us
a call in mobilenet_v3_large). A weight changed in place (a loaded
state dict) or replaced (`.to()`) is reordered again on the next call. The cost is memory: a
second copy of each conv weight, made on the first call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _available() -> bool:
    """Whether this PyTorch build has oneDNN and the two operators (a private API: checked, not assumed)."""
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_convolution_pointwise")
            and hasattr(ops, "_reorder_convolution_weight"))


AVAILABLE = _available()
_is_compiling, _is_tracing = torch.compiler.is_compiling, torch._C._is_tracing
_mkldnn_enabled, _grad_enabled = torch._C._get_mkldnn_enabled, torch.is_grad_enabled
_convolution_pointwise: Any = torch.ops.mkldnn._convolution_pointwise if AVAILABLE else None


class PackedConv2d(nn.Conv2d):
    """An `nn.Conv2d` that keeps its weight in oneDNN's layout for CPU inference (see the module
    docstring); made by `pack_convolutions`, which checks that its options allow it."""

    # (input shape and dtype, the weight's address and version), oneDNN's copy of the weight for it
    # (None: the plain path), and the weight, held so that no other tensor can take its address.
    _packed: tuple[tuple, torch.Tensor | None, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Runs for every conv of every call: parameters read from their dict (a module's
        # __getattr__ is a Python function), and what depends on the input's shape and the weight
        # decided once per key. Compiling is asked first: torch.compile and export stop there.
        params = self._parameters
        weight: torch.Tensor = params["weight"]  # type: ignore[assignment]  # a conv always has one
        bias = params["bias"]
        if (_is_compiling() or type(x) is not torch.Tensor or _is_tracing() or not x.is_cpu
                or not _mkldnn_enabled() or weight.is_inference()
                or (_grad_enabled() and (x.requires_grad or weight.requires_grad
                                         or (bias is not None and bias.requires_grad)))):
            return self._conv_forward(x, weight, bias)
        key = (x.shape, x.dtype, weight.data_ptr(), weight._version)
        packed = self._packed
        if packed is None or packed[0] != key:
            packed = self._packed = (key, self._reordered(x, weight), weight.detach())
        if packed[1] is None:
            return self._conv_forward(x, weight, bias)
        return _convolution_pointwise(x, packed[1], bias, self.padding, self.stride, self.dilation, self.groups,
                                      "none", [], "")

    def _reordered(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
        """oneDNN's copy of `weight` for inputs like `x`; None where the plain path runs: anything
        but a float32 batch of maps and float32 CPU weights, or a 1x1 map (squeeze-and-excitation),
        where PyTorch's own path is faster."""
        if not (x.dtype is torch.float32 and x.ndim == 4 and x.shape[2] * x.shape[3] > 1 and weight.is_cpu
                and weight.dtype is torch.float32):
            return None
        return torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), self.padding, self.stride,
                                                            self.dilation, self.groups, list(x.shape))

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        self._packed = None  # `.to()`, `.double()`: the next call reorders the new weight
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        """Without the cache: a oneDNN tensor can be neither copied nor pickled."""
        state = super().__getstate__()
        state.pop("_packed", None)
        return state


def packable(module: nn.Module) -> bool:
    """Whether `module` is a plain `nn.Conv2d` that oneDNN's operator can run as it is: zero padding
    given as numbers (not "same"), on float32 CPU weights."""
    return (type(module) is nn.Conv2d and module.padding_mode == "zeros" and isinstance(module.padding, tuple)
            and module.weight.dtype == torch.float32 and module.weight.device.type == "cpu")


def pack_convolutions(model: nn.Module) -> int:
    """Make every packable `nn.Conv2d` of `model` a `PackedConv2d`, in place (the same object, its
    class changed: parameters, hooks and names stay); how many. Nothing where oneDNN is missing."""
    if not AVAILABLE:
        return 0
    count = 0
    for module in model.modules():
        if packable(module):
            module.__class__ = PackedConv2d
            count += 1
    return count
