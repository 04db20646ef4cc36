"""Deployed 2-d convolutions whose weights are laid out once for oneDNN, the CPU's convolution library.

On a CPU, `F.conv2d` hands oneDNN each weight in PyTorch's (out, in, kh, kw) layout, and oneDNN
reorders it into its own blocked layout on every call, a copy of every weight per forward. A
deployed module does not train, so its weights can be reordered once and kept: `PackedConv2d`
is an `nn.Conv2d` that does so, per input map size, and calls oneDNN's convolution on the kept
weight (`torch.ops.mkldnn._convolution_pointwise`, the kernel torch.compile's CPU backend uses
for frozen weights). Measured on this project's 2-core machine, one thread, against the same
deployed module with plain convs (docs/benchmarks.md): resnet50 1.26x to 1.31x at batch 1 and
1.11x to 1.17x at batch 8; mobilenet_v3_large and efficientnet_b0 1.07x to 1.11x at batch 8 and
about even at batch 1 (0.97x to 1.05x), where their small convs leave little to save.

Its state is an `nn.Conv2d`'s (the same parameters and keys; the reordered weight is a cache,
never saved). It runs `nn.Conv2d.forward` wherever the fast path does not apply, so that what
comes out is what a plain conv gives, strides and dtype included:

* anything but float32 maps in channels-last memory on the CPU (the operator returns channels-last
  maps), autocast, autograd, a 1x1 map (squeeze-and-excitation's convs: PyTorch's own path is
  faster there, 21-27 against 55-68 us a call in mobilenet_v3_large);
* tracing, torch.compile and export (ONNX, .pt2): exported and compiled graphs hold an ordinary
  convolution, and `torch.jit.script` compiles a plain `nn.Conv2d` (`__prepare_scriptable__`);
* forward-mode AD and torch.func's transforms (vmap, jvp, functional_call over stacked weights);
* a reparametrized weight or bias (weight norm, pruning), and a weight made under
  `torch.inference_mode`, which has no version counter;
* an input the conv cannot take (wrong channels, a map smaller than the kernel): PyTorch's error.

A weight changed in place (a loaded state dict, `copy_` under no_grad) or replaced (`.to()`, a new
tensor) is reordered again on the next call. Writes through `.data` or numpy bypass the version
counter that tells of a change: after one, call `forget_reordered(model)`. Tools that look for
`nn.Conv2d` by its exact type (eager-mode quantization, `fuse_modules`, torch.fx's leaf modules)
take `unpack_convolutions(model)` or `archspec.deploy(model, pack=False)`. The cost is memory: a
second copy of each conv weight, made on the first call.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.autograd import forward_ad as _forward_ad


def _available() -> bool:
    """Whether this PyTorch build has oneDNN and the two operators (a private API: checked, not assumed)."""
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_convolution_pointwise")
            and hasattr(ops, "_reorder_convolution_weight"))


AVAILABLE = _available()
_is_compiling, _is_tracing = torch.compiler.is_compiling, torch._C._is_tracing
_mkldnn_enabled, _grad_enabled, _autocast = torch._C._get_mkldnn_enabled, torch.is_grad_enabled, torch.is_autocast_enabled
_STRIDED, _CHANNELS_LAST = torch.strided, torch.channels_last
_functorch_level = torch._C._functorch.peek_interpreter_stack
_MISSING: Any = object()  # a bias neither present nor None: pruned or parametrized (computed per call)
_convolution_pointwise: Any = torch.ops.mkldnn._convolution_pointwise if AVAILABLE else None


class PackedConv2d(nn.Conv2d):
    """An `nn.Conv2d` that keeps its weight in oneDNN's layout for CPU inference (see the module
    docstring); made by `pack_convolutions`, which checks that its options allow it."""

    # (input map size and dtype, the weight's address, strides and version), oneDNN's copy of the
    # weight for it (None: the plain path), and the weight, held so that no other tensor can take
    # its address while the key names it.
    _packed: tuple[tuple, torch.Tensor | None, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Runs for every conv of every call: parameters read from their dict (a module's
        # __getattr__ is a Python function), and what depends on the input's size and the weight
        # decided once per key. Compiling is asked first: torch.compile and export stop there.
        params = self._parameters
        weight, bias = params.get("weight"), params.get("bias", _MISSING)
        # functorch transforms (vmap, jvp) and forward-mode AD are asked before the tensor is: their
        # wrapped tensors answer neither is_contiguous nor data_ptr. stride(1) != 1: a channels-first
        # map with one channel also counts as channels-last.
        if (weight is None or bias is _MISSING or _is_compiling() or type(x) is not torch.Tensor or _is_tracing()
                or _functorch_level() is not None or _forward_ad._current_level >= 0 or not x.is_cpu
                or x.layout is not _STRIDED or x.stride(1) != 1 or not x.is_contiguous(memory_format=_CHANNELS_LAST)
                or not _mkldnn_enabled() or _autocast("cpu") or weight.is_inference()
                or (_grad_enabled() and (x.requires_grad or weight.requires_grad
                                         or (bias is not None and bias.requires_grad)))):
            return super().forward(x)
        # The batch is not in the key: a weight reordered for one batch size serves the others
        # (oneDNN reorders again itself if a primitive wants another layout), so a server whose
        # batches vary does not reorder on every call.
        key = (x.shape[1:], x.dtype, weight.data_ptr(), weight.stride(), weight._version)
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
        padding: Any = self.padding  # numbers: `packable` refused "same" and "valid"
        if not (x.dtype is torch.float32 and x.ndim == 4 and x.shape[2] * x.shape[3] > 1 and weight.is_cpu
                and weight.dtype is torch.float32 and x.shape[1] == weight.shape[1] * self.groups
                and all(size + 2 * pad > dilation * (k - 1) for size, pad, dilation, k in
                        zip(x.shape[2:], padding, self.dilation, self.kernel_size))):
            return None  # (a wrong input, too: PyTorch's own path says what is wrong with it)
        return torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), padding, self.stride,
                                                            self.dilation, self.groups, list(x.shape))

    def forget(self) -> None:
        """Drop the reordered weight: the next call reorders the weight as it is then (needed only
        after a write the version counter does not see: through `.data`, or numpy)."""
        self._packed = None

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        self.forget()  # `.to()`, `.double()`: the next call reorders the new weight
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        """Without the cache: a oneDNN tensor can be neither copied nor pickled."""
        state = super().__getstate__()
        state.pop("_packed", None)
        return state

    def __prepare_scriptable__(self) -> nn.Conv2d:
        """What `torch.jit.script` compiles: a plain `nn.Conv2d` holding the same parameters."""
        return _unpacked(copy.copy(self))


def forget_reordered(model: nn.Module) -> None:
    """Drop every kept reordered weight of `model`'s packed convs: after writing weights through
    `.data` or numpy, which the version counter does not see (`load_state_dict` is seen)."""
    for module in model.modules():
        if isinstance(module, PackedConv2d):
            module.forget()


def packable(module: nn.Module) -> bool:
    """Whether `module` is a plain `nn.Conv2d` whose options oneDNN's operator takes: zero padding
    given as numbers (not "same"). Device and dtype are read on each call."""
    return type(module) is nn.Conv2d and module.padding_mode == "zeros" and isinstance(module.padding, tuple)


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


def unpack_convolutions(model: nn.Module) -> int:
    """Make every `PackedConv2d` of `model` a plain `nn.Conv2d` again, in place; how many. For tools
    that look for `nn.Conv2d` by its exact type (eager-mode quantization, `fuse_modules`, torch.fx)."""
    count = 0
    for module in model.modules():
        if type(module) is PackedConv2d:
            _unpacked(module)
            count += 1
    return count


def _unpacked(module: PackedConv2d) -> nn.Conv2d:
    """`module` made a plain `nn.Conv2d` in place, without its reordered weight; returned."""
    module.__dict__.pop("_packed", None)
    plain: Any = module
    plain.__class__ = nn.Conv2d
    return plain
