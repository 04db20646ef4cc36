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
dilation, kernels of 3 to 16 with padding under them: where its Winograd and FFT transforms apply),
the conv runs NNPACK where NNPACK is at least `NNPACK_MARGIN` faster than oneDNN and no more than
`NNPACK_ERROR` times further from a float64 convolution, its output put back in channels-last
memory. Speed is a property of the conv's geometry and input size: like cuDNN's benchmark mode,
the first call of each in the process times both libraries on its input (a run of each, then the
best of two), so a network's repeated blocks are timed once. Accuracy depends on the weights too:
each conv checks its own first input against a float64 convolution of its first item (again after
a weight changes; an input both libraries convolve exactly, such as zeros, decides nothing). A
batch of one and larger batches are decided apart (NNPACK runs them on different paths), and NNPACK
runs only at the thread count its pool was made with (PyTorch sizes it once, at NNPACK's first
call). Measured on this project's machine, one thread, batch 8: NNPACK runs RepVGG-A2's 96-channel
56x56 and 192-channel 28x28 convs 1.23x to 1.26x faster and more accurately, its 384-channel 14x14
ones 0.91x (they stay on oneDNN): the deployed network 1.03x faster, its first call about 1.5 s
rather than 0.8 s (docs/benchmarks.md). Which library runs can differ between processes when the
two are close, and with it the last bits of the outputs; `pack=False` runs PyTorch's own choice
every time, and `torch.backends.nnpack.flags(enabled=False)` keeps packed convs on oneDNN.

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
# (conv geometry, input shape, thread count) -> whether NNPACK runs it faster: equal convs are timed once
_NNPACK_FASTER: dict[tuple, bool] = {}
_NNPACK_POOL: int | None = None  # the thread count NNPACK's pool was made with (`_pool_fits`)


class PackedConv2d(nn.Conv2d):
    """An `nn.Conv2d` that keeps its weight in oneDNN's layout for CPU inference (see the module
    docstring); made by `pack_convolutions`, which checks that its options allow it."""

    # (input map size and dtype, the weight's address, strides and version), oneDNN's copy of the
    # weight for it (None: the plain path), the weight, held so that no other tensor can take its
    # address while the key names it, and, where NNPACK can take the conv, (batch of more than one,
    # thread count) -> whether NNPACK runs it (None: oneDNN always).
    _packed: tuple[tuple, torch.Tensor | None, torch.Tensor, dict[tuple[bool, int], bool] | None] | None = None

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
            at = (x.shape[0] > 1, _threads())  # NNPACK runs one image and a batch on different paths
            nnpack = choices.get(at)
            if nnpack is None:
                nnpack = self._nnpack_chosen(x, packed[1], weight, bias)
                if nnpack is not None:  # (None: this input decides nothing; the next call asks again)
                    choices[at] = nnpack
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

    def _nnpack_chosen(self, x: torch.Tensor, reordered: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None) -> bool | None:
        """Whether NNPACK runs this conv on inputs like `x`: where it is at least `NNPACK_MARGIN`
        faster than oneDNN (timed once per process for convs of this geometry and input shape:
        `_NNPACK_FASTER`) and as accurate on this conv's weights (`_as_accurate`). None where `x`
        cannot tell (an input both libraries convolve exactly, such as zeros)."""
        if not _pool_fits():
            return False

        def onednn() -> torch.Tensor:
            return _convolution_pointwise(x, reordered, bias, self.padding, self.stride, self.dilation,
                                          self.groups, "none", [], "")

        def nnpack() -> torch.Tensor:
            return _nnpack(x, weight, bias, self.padding)

        key = (self.in_channels, self.out_channels, self.kernel_size, self.padding, bias is None, tuple(x.shape),
               _threads())
        faster = _NNPACK_FASTER.get(key)
        if faster is False:
            return False
        try:
            theirs = nnpack()  # (the first run: NNPACK makes its workspace)
        except RuntimeError:  # NNPACK refused the shape: "NNPACK SpatialConvolution_updateOutput failed"
            _NNPACK_FASTER[key] = False
            return False
        ours = None
        if faster is None:
            best = [math.inf, math.inf]
            for _ in range(2):
                for i, run in enumerate((onednn, nnpack)):
                    start = _clock()
                    y = run()
                    best[i] = min(best[i], _clock() - start)
                    if run is onednn:  # its output is what the accuracy check compares with
                        ours = y
            faster = _NNPACK_FASTER[key] = best[1] * NNPACK_MARGIN <= best[0]
        if not faster:
            return False
        return self._as_accurate(x, weight, bias, theirs, onednn() if ours is None else ours)

    def _as_accurate(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, theirs: torch.Tensor,
                     ours: torch.Tensor) -> bool | None:
        """Whether NNPACK's output `theirs` is no further from the exact convolution than
        `NNPACK_ERROR` times oneDNN's `ours`, on the batch's first item computed in float64; None
        where oneDNN's is exact (nothing to compare with). NNPACK's Winograd transforms are more
        accurate than oneDNN on large maps (0.2x to 0.3x its error on RepVGG-A2's 28x28 and 56x56
        maps at batch 8) and less on maps of a few tiles (2x to 8x on 2x2 to 16x16) and on its
        one-image path (2x to 4x on resnet50's maps at batch 1)."""
        exact = torch.nn.functional.conv2d(x[:1].double(), weight.double(), None if bias is None else bias.double(),
                                           self.stride, self.padding)
        error = float((ours[:1] - exact).abs().max())
        if not error > 0:  # exact, or not a number: this input cannot tell
            return None if error == 0 else False
        return float((theirs[:1] - exact).abs().max()) <= NNPACK_ERROR * error

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
    """NNPACK's convolution (stride 1) of channels-last maps, given back in channels-last memory
    with the strides oneDNN and `nn.Conv2d` give (NNPACK reads and writes channels-first maps;
    `.contiguous(memory_format=...)` would keep a one-channel or 1x1 output's channels-first strides)."""
    y = torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, padding)
    out = torch.empty(y.shape, dtype=y.dtype, memory_format=_CHANNELS_LAST)
    return out.copy_(y)


def _pool_fits() -> bool:
    """Whether NNPACK would run on as many threads as torch is set to: PyTorch sizes NNPACK's thread
    pool by the thread count at its first call and never again, so NNPACK runs only at that count
    (the first call is this module's, unless PyTorch's own conv ran NNPACK before)."""
    global _NNPACK_POOL
    if _NNPACK_POOL is None:
        _NNPACK_POOL = _threads()
    return _threads() == _NNPACK_POOL


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
