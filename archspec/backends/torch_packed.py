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

Where NNPACK, PyTorch's other CPU convolution library, takes the conv (groups 1, stride 1, no
dilation, a kernel of 3 to 16 with padding under it: where its Winograd and FFT transforms apply),
the first call times both libraries on the call's own input (a run of each, then the best of two)
and keeps NNPACK where it is at least `NNPACK_MARGIN` faster and its output no more than
`NNPACK_ERROR` times further from a float64 convolution than oneDNN's (its Winograd transforms are
more accurate than oneDNN on large maps, less on maps of a few tiles), its output put back in
channels-last memory. Like cuDNN's benchmark mode, the choice is made once
per process for each conv geometry, input size and thread count, so that a network's repeated
blocks are timed once: RepVGG-A2's first call at batch 8 takes about 1.5 s rather than 0.8 s.
Measured on this project's machine, one thread, batch 8: NNPACK runs RepVGG-A2's 96-channel 56x56
and 192-channel 28x28 convs 1.23x to 1.26x faster, its 384-channel 14x14 ones 0.91x (they stay on
oneDNN), the deployed network 1.03x (docs/benchmarks.md). At batch 1 NNPACK takes another path
(one image at a time), 2x to 4x further from the exact convolution than oneDNN on resnet50's
convs: not chosen. Which library runs can differ between
processes when the two are close, and with it the last bits of the outputs (both within float32
rounding of the exact convolution, tested); `pack=False` runs PyTorch's own choice every
time, and `torch.backends.nnpack.flags(enabled=False)` keeps packed convs on oneDNN.

A weight changed in place (a loaded state dict, `copy_` under no_grad) or replaced (`.to()`, a new
tensor) is reordered again on the next call. Writes through `.data` or numpy bypass the version
counter that tells of a change: after one, call `forget_reordered(model)`. Tools that look for
`nn.Conv2d` by its exact type (eager-mode quantization, `fuse_modules`, torch.fx's leaf modules)
take `unpack_convolutions(model)` or `archspec.deploy(model, pack=False)`. The cost is memory: a
second copy of each conv weight, made on the first call.
"""

from __future__ import annotations

import copy
import math
import time
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


def _nnpack_available() -> bool:
    """Whether NNPACK runs here (asking also initialises it: its operator fails until then)."""
    return hasattr(torch, "_nnpack_spatial_convolution") and torch.backends.nnpack.is_available()


NNPACK = AVAILABLE and _nnpack_available()
NNPACK_MARGIN = 1.10  # NNPACK is kept only where it is this much faster: a close call stays on oneDNN
NNPACK_ERROR = 2.0  # ... and no more than this many times further from the exact convolution than oneDNN
_clock = time.perf_counter  # what the choice times with (a test gives it a fake clock)
_threads, _nnpack_enabled = torch.get_num_threads, torch._C._get_nnpack_enabled
# (conv geometry, input shape, thread count) -> whether NNPACK runs it: equal convs are timed once
_NNPACK_FASTER: dict[tuple, bool] = {}


class PackedConv2d(nn.Conv2d):
    """An `nn.Conv2d` that keeps its weight in oneDNN's layout for CPU inference (see the module
    docstring); made by `pack_convolutions`, which checks that its options allow it."""

    # (input map size and dtype, the weight's address, strides and version), oneDNN's copy of the
    # weight for it (None: the plain path), the weight, held so that no other tensor can take its
    # address while the key names it, and, where NNPACK can take the conv, (batch size, thread
    # count) -> whether NNPACK runs it (None: oneDNN always).
    _packed: tuple[tuple, torch.Tensor | None, torch.Tensor, dict[tuple[int, int], bool] | None] | None = None

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
            reordered = self._reordered(x, weight)
            packed = self._packed = (key, reordered, weight.detach(),
                                     {} if reordered is not None and self._nnpack_takes() else None)
        if packed[1] is None:
            return self._conv_forward(x, weight, bias)
        choices = packed[3]
        if choices is not None and _nnpack_enabled():
            at = (x.shape[0], _threads())
            nnpack = choices.get(at)
            if nnpack is None:
                nnpack = choices[at] = self._nnpack_faster(x, packed[1], weight, bias)
            if nnpack:
                return _nnpack(x, weight, bias, self.padding)
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

    def _nnpack_takes(self) -> bool:
        """Whether NNPACK's operator can run this conv and its transforms apply (see the module
        docstring); the input was checked by `_reordered`."""
        padding: Any = self.padding
        return (NNPACK and self.groups == 1 and self.stride == (1, 1) and self.dilation == (1, 1)
                and all(3 <= k <= 16 and p < k for k, p in zip(self.kernel_size, padding)))

    def _nnpack_faster(self, x: torch.Tensor, reordered: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None) -> bool:
        """Whether NNPACK runs convs like this one on inputs like `x` at least `NNPACK_MARGIN`
        faster than oneDNN, on this many threads, and as accurately (`_as_accurate`): both timed
        on `x` itself, after a run of each whose outputs are checked (a library that fails or is
        less accurate is never chosen). Kept for the process (`_NNPACK_FASTER`)."""
        key = (self.in_channels, self.out_channels, self.kernel_size, self.padding, bias is None, tuple(x.shape),
               _threads())
        known = _NNPACK_FASTER.get(key)
        if known is not None:
            return known

        def onednn() -> torch.Tensor:
            return _convolution_pointwise(x, reordered, bias, self.padding, self.stride, self.dilation,
                                          self.groups, "none", [], "")

        def nnpack() -> torch.Tensor:
            return _nnpack(x, weight, bias, self.padding)

        try:
            theirs = nnpack()
        except RuntimeError:  # NNPACK refused the shape: "NNPACK SpatialConvolution_updateOutput failed"
            theirs = None
        if theirs is None or not self._as_accurate(x, weight, bias, theirs, onednn()):
            faster = False
        else:
            best = [math.inf, math.inf]
            for _ in range(2):
                for i, run in enumerate((onednn, nnpack)):
                    start = _clock()
                    run()
                    best[i] = min(best[i], _clock() - start)
            faster = best[1] * NNPACK_MARGIN <= best[0]
        _NNPACK_FASTER[key] = faster
        return faster

    def _as_accurate(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, theirs: torch.Tensor,
                     ours: torch.Tensor) -> bool:
        """Whether NNPACK's output `theirs` is no further from the exact convolution than
        `NNPACK_ERROR` times oneDNN's `ours`, on the batch's first item computed in float64. Its
        Winograd transforms are more accurate than oneDNN on large maps (0.2x to 0.3x its error on
        RepVGG-A2's 14x14 to 56x56 ones) and less on small ones (2x to 8x on 2x2 to 16x16)."""
        exact = torch.nn.functional.conv2d(x[:1].double(), weight.double(), None if bias is None else bias.double(),
                                           self.stride, self.padding)
        return float((theirs[:1] - exact).abs().max()) <= NNPACK_ERROR * float((ours[:1] - exact).abs().max())

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


def _nnpack(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: Any) -> torch.Tensor:
    """NNPACK's convolution (stride 1) of channels-last maps, given back in channels-last memory:
    NNPACK reads and writes channels-first ones."""
    y = torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, padding)
    return y.contiguous(memory_format=_CHANNELS_LAST)


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
