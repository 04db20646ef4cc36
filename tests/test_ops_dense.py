"""The ops of dense prediction (group norm, transposed convolution, L2 normalisation, pixel shuffle
and unshuffle, resize in every torch mode) in one network, against the same network written by
hand in torch: parameters, MACs (torch's own flop counter), outputs; then the exported Python
source and ONNX file against the compiled module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.core.errors import SpecError
from tests.generated import assert_ruff_clean, exported_model

SPEC = {
    "name": "dense_ops", "input": {"channels": 3, "size": [20, 24]}, "defaults": {"norm": "group"},
    "stem": [{"conv": {"out": 32, "kernel": 3, "padding": 1}}, {"norm": {"type": "group", "groups": 8}}, "act",
             {"l2norm": 20}, {"pixel_unshuffle": 2},
             {"conv_transpose": {"out": 16, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1, "groups": 4}},
             {"norm": {"groups": 4, "eps": 1e-3}}, {"pixel_shuffle": 2},
             {"resize": {"scale": 0.5, "mode": "bicubic", "align_corners": True}},
             {"resize": {"size": [13, 9], "mode": "area"}}, {"resize": {"scale": [2, 1.5], "mode": "nearest-exact"}},
             {"resize": {"size": [20, 24], "mode": "bilinear"}}],
    "head": [],
}


class ByHand(nn.Module):
    """SPEC, written directly in torch (SSD's L2Norm as torchvision's SSD300 applies it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.gn1 = nn.GroupNorm(8, 32)
        self.scale_weight = nn.Parameter(torch.full((32,), 20.0))
        self.up = nn.ConvTranspose2d(128, 16, 3, stride=2, padding=1, output_padding=1, groups=4)
        self.gn2 = nn.GroupNorm(4, 16, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.gn1(self.conv(x)))
        x = self.scale_weight.view(1, -1, 1, 1) * F.normalize(x)
        x = self.gn2(self.up(F.pixel_unshuffle(x, 2)))
        x = F.pixel_shuffle(x, 2)
        x = F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=True)
        x = F.adaptive_avg_pool2d(x, (13, 9))
        x = F.interpolate(x, scale_factor=(2, 1.5), mode="nearest-exact")
        return F.interpolate(x, size=(20, 24), mode="bilinear", align_corners=False)


def _paired() -> tuple[nn.Module, nn.Module]:
    ours, theirs = archspec.build(SPEC).eval(), ByHand().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    mine = dict(ours.named_parameters())
    keys = ["stem.0.weight", "stem.0.bias", "stem.1.weight", "stem.1.bias", "stem.3.weight", "stem.5.weight",
            "stem.5.bias", "stem.6.weight", "stem.6.bias"]
    assert sorted(mine) == sorted(keys)
    order = ["conv.weight", "conv.bias", "gn1.weight", "gn1.bias", "scale_weight", "up.weight", "up.bias",
             "gn2.weight", "gn2.bias"]
    ours.load_state_dict({k: theirs.state_dict()[o] for k, o in zip(keys, order)})
    return ours, theirs


def test_the_network_equals_torch_written_by_hand() -> None:
    ours, theirs = _paired()
    report = archspec.analyze(SPEC)
    assert report.params == sum(p.numel() for p in theirs.parameters()) == 5_648
    assert report.output_shape == (4, 20, 24)
    x = torch.randn(2, 3, 20, 24)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    with FlopCounterMode(display=False) as flops:
        theirs(x[:1])
    # torch counts a multiply-add as 2 flops, over convolutions and transposed convolutions only
    assert report.macs == flops.get_total_flops() // 2 == 967_680


def test_exported_source_and_onnx_equal_the_compiled_module(tmp_path: Path) -> None:
    import onnx
    import onnxruntime

    ours, _ = _paired()
    exported = exported_model(SPEC, "dense_ops", tmp_path).eval()
    exported.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 20, 24)
    with torch.no_grad():
        want = ours(x)
        assert torch.equal(exported(x), want)
    assert_ruff_clean(tmp_path)
    path = tmp_path / "dense_ops.onnx"
    archspec.export(SPEC, path, model=ours)
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    assert abs(got - want.numpy()).max() < 1e-4


@pytest.mark.parametrize("layer, message", [
    ({"norm": {"type": "group", "groups": 5}}, r"group norm's groups \(5\) must divide its channels \(8\)"),
    ({"norm": {"type": "batch", "groups": 2}}, "'groups' is a group norm's field"),
    ({"pixel_shuffle": 3}, "pixel_shuffle by 3 needs channels divisible by 9, got 8"),
    ({"pixel_unshuffle": 3}, "pixel_unshuffle by 3 needs a height and width divisible by 3, got 8x8"),
    ({"conv_transpose": {"out": 4, "kernel": 2, "stride": 2, "output_padding": 2}},
     r"output_padding 2x2 must be smaller than the stride 2x2 or the dilation 1x1"),
    ({"conv_transpose": {"out": 4, "groups": 3}}, "groups=3 must divide both input channels"),
])
def test_bad_dense_ops_are_located_errors(layer: dict, message: str) -> None:
    spec = {"name": "bad", "input": {"channels": 3, "size": [8, 8]}, "stem": [{"conv": {"out": 8, "kernel": 1}}, layer],
            "head": []}
    with pytest.raises(SpecError, match=message) as err:
        archspec.analyze(spec)
    assert "stem[1]" in str(err.value)
