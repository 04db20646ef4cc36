"""`PackedConv2d` (backends/torch_packed.py): a deployed conv whose weight oneDNN reorders once,
and which runs NNPACK instead where NNPACK times faster.

The oracle is PyTorch's own convolution (`F.conv2d`, or a plain `nn.Conv2d` for what it returns
beyond values: strides, dtype) on the module's current weight; each test also checks which path
ran (the kept reordered weight), so that a fast path never taken, or taken where it must not be,
fails.
"""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archspec
from archspec.backends import torch_packed
from archspec.backends.torch_packed import (AVAILABLE, NNPACK, PackedConv2d, forget_reordered, pack_convolutions,
                                            packable, unpack_convolutions)

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="this PyTorch build has no oneDNN")


@pytest.fixture(autouse=True)
def onednn_alone(monkeypatch):
    """Each test starts with NNPACK switched off (the tests of oneDNN's path mean that path) and
    nothing timed; the tests of the choice switch it on (`Timed`)."""
    monkeypatch.setattr(torch_packed, "_NNPACK_FASTER", {})
    monkeypatch.setattr(torch_packed, "_NNPACK_POOL", None)
    with torch.backends.nnpack.flags(enabled=False):
        yield


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


def maps(*shape: int) -> torch.Tensor:
    """A random batch of maps in channels-last memory, as a deployed network's convs receive them."""
    return torch.randn(shape).to(memory_format=torch.channels_last)


@pytest.mark.parametrize("options, shape", [
    (dict(in_channels=8, out_channels=16, kernel_size=3, padding=1), (2, 8, 13, 11)),
    (dict(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1, bias=False), (1, 8, 15, 15)),
    (dict(in_channels=12, out_channels=12, kernel_size=5, padding=2, groups=12), (3, 12, 9, 9)),  # depthwise
    (dict(in_channels=8, out_channels=12, kernel_size=3, padding=2, dilation=2, groups=4), (2, 8, 10, 12)),
    (dict(in_channels=6, out_channels=10, kernel_size=(1, 7), padding=(0, 3)), (2, 6, 8, 9)),
    (dict(in_channels=3, out_channels=4, kernel_size=1), (5, 3, 7, 7)),
])
def test_outputs_equal_pytorchs_convolution(options, shape):
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(**options))
    x = maps(*shape)
    with torch.no_grad():
        y = conv(x)
        assert reordered(conv)  # the fast path ran
        assert close(y, reference(conv, x))
        kept = conv._packed
        # another batch size uses the same reordered weight, and is right too
        x2 = maps(shape[0] + 2, *shape[1:])
        assert close(conv(x2), reference(conv, x2)) and conv._packed is kept
        # another map size is reordered for
        x3 = maps(shape[0], shape[1], shape[2] + 3, shape[3] + 1)
        assert close(conv(x3), reference(conv, x3)) and conv._packed is not kept and reordered(conv)


def test_what_comes_out_is_what_a_plain_conv_gives():
    """Strides and dtype as nn.Conv2d's: channels-first maps, autocast, oneDNN's own tensors and
    unbatched input take its path."""
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, padding=1)
    conv = packed(copy.deepcopy(plain))
    with torch.no_grad():
        for x in (torch.randn(2, 4, 8, 8), maps(2, 4, 8, 8), torch.randn(4, 8, 8)):
            ours, theirs = conv(x), plain(x)
            assert close(ours, theirs) and ours.stride() == theirs.stride()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x = maps(2, 4, 8, 8)
            assert conv(x).dtype == plain(x).dtype == torch.bfloat16
        x = torch.randn(2, 4, 8, 8)
        assert torch.equal(conv(x.to_mkldnn()).to_dense(), plain(x.to_mkldnn()).to_dense())
        with pytest.raises(RuntimeError, match="expected input"):  # PyTorch's message, not oneDNN's
            conv(maps(2, 5, 8, 8))
        gray_plain = nn.Conv2d(1, 6, 3, padding=1)
        gray = packed(copy.deepcopy(gray_plain))
        x = torch.randn(2, 1, 8, 8)  # one channel: channels-first and channels-last at once
        assert gray(x).stride() == gray_plain(x).stride()


def test_transforms_and_a_computed_bias_run_the_plain_conv():
    """Forward-mode AD, torch.func's vmap and jvp, and a pruned bias (computed on each call)."""
    from torch.autograd import forward_ad
    from torch.nn.utils import prune

    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, padding=1).requires_grad_(False)
    conv = packed(copy.deepcopy(plain))
    x, t = maps(2, 4, 8, 8), maps(2, 4, 8, 8)
    with torch.no_grad():
        with forward_ad.dual_level():
            ours = forward_ad.unpack_dual(conv(forward_ad.make_dual(x, t))).tangent
            theirs = forward_ad.unpack_dual(plain(forward_ad.make_dual(x, t))).tangent
        assert ours is not None and close(ours, theirs)
        assert close(torch.func.jvp(conv, (x,), (t,))[1], torch.func.jvp(plain, (x,), (t,))[1])
        xs = torch.randn(3, 2, 4, 8, 8)
        assert close(torch.func.vmap(conv)(xs), torch.func.vmap(plain)(xs))
        prune.l1_unstructured(conv, "bias", 0.5)
        prune.l1_unstructured(plain, "bias", 0.5)
        assert close(conv(x), plain(x))


def test_a_weight_changed_in_place_or_replaced_is_reordered_again():
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = maps(2, 4, 8, 8)
    with torch.no_grad():
        conv(x)
        conv.load_state_dict({"weight": torch.randn(6, 4, 3, 3), "bias": torch.randn(6)})  # copied in place
        assert close(conv(x), reference(conv, x))
        conv.weight.mul_(-2.0)
        assert close(conv(x), reference(conv, x))
        conv.weight.data = torch.randn(6, 4, 3, 3)  # a new tensor
        assert close(conv(x), reference(conv, x))
        conv.weight.data = conv.weight.data.transpose(0, 1).contiguous().transpose(0, 1)  # other strides
        assert close(conv(x), reference(conv, x))
        conv.bias.add_(1.0)  # the bias is read on every call
        assert close(conv(x), reference(conv, x))
        conv.weight.data.mul_(3.0)  # a write the version counter does not see: forget_reordered() is the way
        forget_reordered(conv)
        assert close(conv(x), reference(conv, x)) and reordered(conv)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated, still what users call
def test_the_plain_path_where_the_fast_one_does_not_apply():
    """Autograd, float64, a 1x1 map, tracing, a reparametrized weight and a weight made in inference
    mode run `nn.Conv2d.forward`: nothing is reordered."""
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = maps(2, 4, 8, 8)
    y = conv(x)  # the weight requires grad, grad mode is on
    y.sum().backward()
    assert conv.weight.grad is not None and not reordered(conv)
    with torch.no_grad():
        one = maps(2, 4, 1, 1)
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
    normed = torch.nn.utils.parametrizations.weight_norm(packed(nn.Conv2d(4, 6, 3, padding=1)))
    with torch.no_grad():
        assert close(normed(x), reference(normed, x))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated, still what users call
def test_copies_pickles_scripts_and_moves_drop_the_reordered_weight():
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(4, 6, 3, padding=1))
    x = maps(2, 4, 8, 8)
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
        assert close(torch.jit.script(conv)(x), expected)  # a plain nn.Conv2d on the same parameters
        assert type(conv) is PackedConv2d and reordered(conv)
        conv.to(torch.float32)
        assert conv._packed is None


def test_only_zero_padded_conv2d_given_as_numbers_is_packed_and_unpacks():
    assert packable(nn.Conv2d(3, 4, 3, padding=1)) and packable(nn.Conv2d(3, 4, 3).double())  # dtype: per call
    assert not packable(nn.Conv2d(3, 4, 3, padding="same"))  # the operator takes numbers
    assert not packable(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"))
    assert not packable(nn.Conv1d(3, 4, 3))
    assert not packable(nn.ConvTranspose2d(3, 4, 3))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, padding="same"))
    assert pack_convolutions(model) == 1 and type(model[0]) is PackedConv2d
    with torch.no_grad():
        model(maps(1, 3, 9, 9))
    assert unpack_convolutions(model) == 1 and type(model[0]) is nn.Conv2d and "_packed" not in vars(model[0])


def test_a_deployed_network_holds_packed_convs_and_exports_plain_ones(tmp_path):
    """`archspec.deploy` packs the convs (not with pack=False); the .pt2 program of the deployed
    module holds aten's convolution, which any backend runs, and computes the same outputs; a
    deployed checkpoint loads packed."""
    model = archspec.build("resnet18", num_classes=7, **{"input.size": [64, 64]}).eval()  # 2x2 maps at the end
    deployed = archspec.deploy(model)
    convs = [m for m in deployed.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(type(m) is PackedConv2d for m in convs)
    assert not any(p.requires_grad for p in deployed.parameters())
    assert all(type(m) is nn.Conv2d for m in archspec.deploy(model, pack=False).modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():  # weights reordered in inference mode serve outside it too
        assert close(deployed(x), expected)
    assert all(reordered(m) for m in convs[1:])  # the first reads the caller's channels-first image
    assert close(deployed(x), expected)  # grad mode on: the parameters need none, so the fast path runs
    archspec.export(deployed, tmp_path / "r.pt2")
    program = torch.export.load(str(tmp_path / "r.pt2"))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not any("mkldnn" in t for t in targets) and any("conv" in t for t in targets)
    assert close(program.module()(x), expected)
    archspec.save(deployed, tmp_path / "d.safetensors")
    loaded = archspec.load(tmp_path / "d.safetensors")
    loaded_convs = [m for m in loaded.modules() if isinstance(m, nn.Conv2d)]
    assert loaded_convs and all(type(m) is PackedConv2d for m in loaded_convs)
    with torch.no_grad():
        assert close(loaded(x), expected) and all(reordered(m) for m in loaded_convs[1:])


# -- the choice between oneDNN and NNPACK ------------------------------------------------------------

needs_nnpack = pytest.mark.skipif(not NNPACK, reason="this PyTorch build has no NNPACK")


class Timed:
    """A fake `_clock` under which each oneDNN run takes 1 s and each NNPACK run `nnpack` s, and a
    count of NNPACK's runs (the real operator runs). NNPACK's accuracy is not asked (its own
    test below): on these small maps of a few Winograd tiles it is less accurate than oneDNN."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, nnpack: float) -> None:
        self.now, self.nnpack_runs, self.timed = 0.0, 0, 0
        self.running_nnpack = False
        real = torch_packed._nnpack

        def counted(*args):
            self.nnpack_runs += 1
            self.running_nnpack = True
            return real(*args)

        def clock() -> float:
            self.timed += 1
            if self.timed % 2 == 0:  # the end of a timed run: it took what its library takes
                self.now += nnpack if self.running_nnpack else 1.0
            self.running_nnpack = False
            return self.now

        monkeypatch.setattr(torch_packed, "_nnpack", counted)
        monkeypatch.setattr(torch_packed, "_clock", clock)
        monkeypatch.setattr(torch_packed, "_NNPACK_FASTER", {})
        monkeypatch.setattr(torch_packed, "NNPACK_ERROR", math.inf)
        torch.backends.nnpack.set_flags(True)  # (`onednn_alone` puts the switch back)


@needs_nnpack
@pytest.mark.parametrize("options", [
    dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=1, bias=False),
    dict(kernel_size=(3, 5), padding=(1, 2)), dict(kernel_size=(5, 3), padding=(2, 0)),  # (height, width) kept apart
])
def test_nnpack_runs_where_it_times_faster_and_gives_pytorchs_convolution(monkeypatch, options):
    timed = Timed(monkeypatch, nnpack=0.5)
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 16, **options)
    conv = packed(copy.deepcopy(plain))
    x = maps(2, 8, 12, 10)
    with torch.no_grad():
        y = conv(x)
        assert timed.timed == 8 and conv._packed[3] == {(True, torch.get_num_threads()): True}
        runs = timed.nnpack_runs  # the check, two timed runs and the call itself
        assert runs == 4
        assert close(y, reference(conv, x)) and y.stride() == plain(x).stride()  # channels-last, as oneDNN gives
        y = conv(x)
        assert timed.nnpack_runs == runs + 1 and timed.timed == 8  # chosen once
        assert close(y, reference(conv, x))
        with torch.backends.nnpack.flags(enabled=False):  # PyTorch's switch is heeded
            assert close(conv(x), reference(conv, x)) and timed.nnpack_runs == runs + 1 and reordered(conv)


@needs_nnpack
def test_oneDNN_stays_where_nnpack_is_slower_or_not_faster_by_the_margin(monkeypatch):
    torch.manual_seed(0)
    x = maps(2, 8, 12, 10)
    for nnpack_time in (2.0, 1.0 / torch_packed.NNPACK_MARGIN + 0.01):
        timed = Timed(monkeypatch, nnpack=nnpack_time)
        conv = packed(nn.Conv2d(8, 16, 3, padding=1))
        with torch.no_grad():
            y = conv(x)
            assert timed.timed == 8 and conv._packed[3] == {(True, torch.get_num_threads()): False}
            runs = timed.nnpack_runs
            assert close(conv(x), reference(conv, x)) and close(y, reference(conv, x))
            assert timed.nnpack_runs == runs


@needs_nnpack
def test_equal_convs_are_timed_once_a_batch_of_one_apart_and_other_thread_counts_on_onednn(monkeypatch):
    timed = Timed(monkeypatch, nnpack=0.5)
    torch.manual_seed(0)
    first, second = packed(nn.Conv2d(8, 16, 3, padding=1)), packed(nn.Conv2d(8, 16, 3, padding=1))
    other = packed(nn.Conv2d(8, 16, 5, padding=2))  # another geometry: timed on its own
    x = maps(2, 8, 12, 10)
    threads = torch.get_num_threads()
    with torch.no_grad():
        first(x)
        assert timed.timed == 8
        assert close(second(x), reference(second, x)) and timed.timed == 8 and second._packed[3][(True, threads)]
        other(x)
        assert timed.timed == 16
        first(maps(3, 8, 12, 10))  # another batch of more than one: decided
        assert timed.timed == 16
        first(maps(1, 8, 12, 10))  # one image: NNPACK's other path, timed apart
        assert timed.timed == 24 and set(first._packed[3]) == {(True, threads), (False, threads)}
        try:  # NNPACK's pool was made for `threads`: at another count the conv stays on oneDNN, untimed
            torch.set_num_threads(threads + 1)
            runs = timed.nnpack_runs
            assert close(first(x), reference(first, x))
            assert timed.timed == 24 and timed.nnpack_runs == runs and first._packed[3][(True, threads + 1)] is False
        finally:
            torch.set_num_threads(threads)


@needs_nnpack
@pytest.mark.parametrize("options, shape", [
    (dict(in_channels=8, out_channels=1, kernel_size=3, padding=1), (2, 8, 12, 10)),  # one channel out
    (dict(in_channels=8, out_channels=16, kernel_size=3), (2, 8, 3, 3)),  # a 1x1 map out
])
def test_nnpack_gives_the_strides_a_plain_conv_gives(monkeypatch, options, shape):
    timed = Timed(monkeypatch, nnpack=0.5)
    torch.manual_seed(0)
    plain = nn.Conv2d(**options)
    conv = packed(copy.deepcopy(plain))
    x = maps(*shape)
    with torch.no_grad():
        y = conv(x)
        assert timed.nnpack_runs == 4 and close(y, reference(conv, x)) and y.stride() == plain(x).stride()


@needs_nnpack
def test_each_conv_checks_nnpacks_accuracy_on_its_own_weights_and_an_exact_input_decides_nothing(monkeypatch):
    """Speed is timed once for equal convs, accuracy checked per conv and again after its weight
    changes; an input of zeros (both libraries exact) leaves the choice to the next call."""
    Timed(monkeypatch, nnpack=0.5)
    monkeypatch.setattr(torch_packed, "NNPACK_ERROR", 2.0)
    checked = []
    real = PackedConv2d._as_accurate

    def spy(self, *args):
        verdict = real(self, *args)
        checked.append((self, verdict))
        return verdict

    monkeypatch.setattr(PackedConv2d, "_as_accurate", spy)
    torch.manual_seed(0)
    first, second = packed(nn.Conv2d(8, 16, 3, padding=1)), packed(nn.Conv2d(8, 16, 3, padding=1))
    x = maps(2, 8, 40, 36)  # maps of many Winograd tiles: NNPACK as accurate as oneDNN
    with torch.no_grad():
        zeros = torch.zeros_like(x)
        assert close(first(zeros), reference(first, zeros)) and checked == [(first, None)] and first._packed[3] == {}
        first(x)
        second(x)
        assert checked[1:] == [(first, True), (second, True)]
        first.weight.mul_(2)  # a new weight version: checked again
        first(x)
        assert checked[3:] == [(first, True)] and len(checked) == 4


@needs_nnpack
@pytest.mark.parametrize("options", [
    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, padding=1, groups=2),
    dict(kernel_size=3, padding=2, dilation=2), dict(kernel_size=1), dict(kernel_size=(1, 7), padding=(0, 3)),
])
def test_convs_nnpack_cannot_take_are_never_timed(monkeypatch, options):
    timed = Timed(monkeypatch, nnpack=0.01)
    torch.manual_seed(0)
    conv = packed(nn.Conv2d(8, 16, **options))
    x = maps(2, 8, 12, 10)
    with torch.no_grad():
        assert close(conv(x), reference(conv, x))
    assert reordered(conv) and conv._packed[3] is None and timed.timed == 0 and timed.nnpack_runs == 0


@needs_nnpack
def test_an_nnpack_that_fails_or_disagrees_is_never_chosen(monkeypatch):
    torch.manual_seed(0)
    x = maps(2, 8, 12, 10)
    for broken in (lambda *args: (_ for _ in ()).throw(RuntimeError("NNPACK SpatialConvolution_updateOutput failed")),
                   lambda x, weight, bias, padding: torch.zeros(2, 16, 12, 10).to(memory_format=torch.channels_last)):
        Timed(monkeypatch, nnpack=0.01)
        monkeypatch.setattr(torch_packed, "_nnpack", broken)
        conv = packed(nn.Conv2d(8, 16, 3, padding=1))
        with torch.no_grad():
            assert close(conv(x), reference(conv, x)) and close(conv(x), reference(conv, x))
        assert conv._packed[3] == {(True, torch.get_num_threads()): False}


@needs_nnpack
def test_a_faster_nnpack_that_is_less_accurate_is_not_chosen(monkeypatch):
    """Off by a relative 1e-5 (a float32 conv is off by about 1e-7): faster, but further from the
    float64 convolution than `NNPACK_ERROR` times oneDNN; allowed any error, it is chosen."""
    torch.manual_seed(0)
    x = maps(2, 8, 12, 10)
    real = torch_packed._nnpack
    for allowed, chosen in ((2.0, False), (math.inf, True)):
        monkeypatch.setattr(torch_packed, "_nnpack", lambda *args: (lambda y: y + 1e-5 * y.abs().max())(real(*args)))
        Timed(monkeypatch, nnpack=0.5)  # (times the operator above)
        monkeypatch.setattr(torch_packed, "NNPACK_ERROR", allowed)
        conv = packed(nn.Conv2d(8, 16, 3, padding=1))
        with torch.no_grad():
            conv(x)
        assert conv._packed[3] == {(True, torch.get_num_threads()): chosen}


@needs_nnpack
def test_a_deployed_network_on_nnpack_equals_its_training_form(monkeypatch):
    """Every conv NNPACK can take on it (stride 1, groups 1): the deployed RepVGG's outputs are its
    training form's, as on oneDNN alone."""
    timed = Timed(monkeypatch, nnpack=0.01)
    model = archspec.build("repvgg_a0", num_classes=10, **{"input.size": [64, 64]}).eval()
    deployed = archspec.deploy(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert close(deployed(x), expected)
    chosen = [m for m in deployed.modules() if type(m) is PackedConv2d and m._packed and m._packed[3]]
    assert len(chosen) >= 10 and all(all(m._packed[3].values()) for m in chosen) and timed.nnpack_runs > len(chosen)
