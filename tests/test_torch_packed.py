"""`PackedConv2d` (backends/torch_packed.py): a deployed conv whose weight oneDNN reorders once.

The oracle is PyTorch's own convolution (`F.conv2d`) on the module's current weight; each test
also checks which path ran (the kept reordered weight), so that a fast path never taken, or taken
where it must not be, fails.
"""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archspec
from archspec.backends.torch_packed import AVAILABLE, PackedConv2d, pack_convolutions, packable

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="this PyTorch build has no oneDNN")


def packed(conv: nn.Conv2d) -> PackedConv2d:
    assert pack_convolutions(conv) == 1
    assert type(conv) is PackedConv2d
    return conv  # type: ignore[return-value]


def reordered(conv: PackedConv2d) -> bool:
    """Whether the last call ran oneDNN's operator on a kept copy of the weight (the fast path)."""
    return conv._packed is not None and conv._packed[1] is not None


def reference(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return ((a - b).abs().max() / b.abs().max()).item() <= 1e-5


@pytest.mark.parametrize("options, shape", [
    (dict(in_channels=8, out_channels=16, kernel_size=3, padding=1), (2, 8, 13, 11)),
    (dict(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1, bias=False), (1, 8, 15, 15)),
    (dict(in_channels=12, out_channels=12, kernel_size=5, padding=2, groups=12), (3, 12, 9, 9)),  # depthwise
    (dict(in_channels=8, out_channels=12, kernel_size=3, padding=2, dilation=2, groups=4), (2, 8, 10, 12)),
    (dict(in_channels=6, out_channels=10, kernel_size=(1, 7), padding=(0, 3)), (2, 6, 8, 9)),
    (dict(in_channels=3, out_channels=4, kernel_size=1), (5, 3, 7, 7)),
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_outputs_equal_pytorchs_convolution(options, shape, channels_last):
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(**options))
    x = torch.randn(shape)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        y = conv(x)
        assert reordered(conv)  # the fast path ran
        assert close(y, reference(conv, x))
        # another input shape reorders for it, and is right too
        x2 = torch.randn(shape[0] + 1, *shape[1:])
        assert close(conv(x2), reference(conv, x2))
        assert conv._packed[0][0] == x2.shape


def test_a_weight_changed_in_place_or_replaced_is_reordered_again():
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        conv(x)
        conv.load_state_dict({"weight": torch.randn(6, 4, 3, 3), "bias": torch.randn(6)})  # copied in place
        assert close(conv(x), reference(conv, x))
        conv.weight.mul_(-2.0)
        assert close(conv(x), reference(conv, x))
        conv.weight.data = torch.randn(6, 4, 3, 3)  # a new tensor
        assert close(conv(x), reference(conv, x))
        conv.bias.add_(1.0)  # the bias is read on every call
        assert close(conv(x), reference(conv, x))


def test_the_plain_path_where_the_fast_one_does_not_apply():
    """Autograd, float64, a 1x1 map, tracing and a weight made in inference mode run `nn.Conv2d.forward`:
    nothing is reordered."""
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = torch.randn(2, 4, 8, 8)
    y = conv(x)  # the weight requires grad, grad mode is on
    y.sum().backward()
    assert conv.weight.grad is not None and not reordered(conv)
    with torch.no_grad():
        one = torch.randn(2, 4, 1, 1)
        assert close(conv(one), reference(conv, one)) and not reordered(conv)
        traced = torch.jit.trace(conv, x, check_trace=False)  # (its check would run the module untraced)
        assert not reordered(conv)
        assert "mkldnn" not in str(traced.graph)
    double = copy.deepcopy(conv).double()
    with torch.no_grad():
        assert close(double(x.double()), reference(double, x.double())) and not reordered(double)
    with torch.inference_mode():  # its weight has no version counter: an in-place change would go unseen
        made_here = packed(nn.Conv2d(4, 6, 3, padding=1))
        assert close(made_here(x), reference(made_here, x)) and not reordered(made_here)


def test_copies_pickles_and_moves_drop_the_reordered_weight():
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        expected = conv(x)
        assert reordered(conv)
        for other in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
            assert type(other) is PackedConv2d and other._packed is None
            assert torch.equal(other(x), expected)
        buffer = io.BytesIO()
        torch.save(conv, buffer)
        buffer.seek(0)
        assert torch.equal(torch.load(buffer, weights_only=False)(x), expected)
        assert set(conv.state_dict()) == {"weight", "bias"}
        conv.to(torch.float32)
        assert conv._packed is None


def test_only_plain_zero_padded_conv2d_is_packed():
    assert packable(nn.Conv2d(3, 4, 3, padding=1))
    assert not packable(nn.Conv2d(3, 4, 3, padding="same"))  # the operator takes numbers
    assert not packable(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"))
    assert not packable(nn.Conv1d(3, 4, 3))
    assert not packable(nn.Conv2d(3, 4, 3).double())
    assert not packable(nn.ConvTranspose2d(3, 4, 3))


def test_a_deployed_network_holds_packed_convs_and_exports_plain_ones(tmp_path):
    """`archspec.deploy` packs the convs; the .pt2 program of the deployed module holds aten's
    convolution, which any backend runs, and computes the same outputs."""
    model = archspec.build("resnet18", num_classes=7, **{"input.size": [64, 64]}).eval()  # 2x2 maps at the end
    deployed = archspec.deploy(model)
    convs = [m for m in deployed.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(type(m) is PackedConv2d for m in convs)
    assert not any(p.requires_grad for p in deployed.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():  # weights reordered in inference mode serve outside it too
        assert close(deployed(x), expected)
    assert all(reordered(m) for m in convs)
    assert close(deployed(x), expected)  # grad mode on: the parameters need none, so the fast path runs
    archspec.export(deployed, tmp_path / "r.pt2")
    program = torch.export.load(str(tmp_path / "r.pt2"))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not any("mkldnn" in t for t in targets) and any("conv" in t for t in targets)
    assert close(program.module()(x), expected)
