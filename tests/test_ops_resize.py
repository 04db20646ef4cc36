"""The resize op and frozen batch norm, against torch's own functions and torchvision's module."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
import torch
import torch.nn.functional as F

from archspec.analysis import analyze_network
from archspec.backends.torch_module import build_module
from archspec.spec.families import BlockContext, BlockFamily
from archspec.spec.load import to_network
from archspec.core.errors import SpecError
from archspec.ir.builder import GraphBuilder, Value
from archspec.ir.op import RF
from tests.analysis_helpers import measure_region, registered, spec


class ResizeBack(BlockFamily):
    """Test-only family: a strided conv, resampled back to the block input's size (two inputs)."""

    strided: ClassVar[bool] = False
    channel_fields: ClassVar[tuple[str, ...]] = ()
    mode: Literal["nearest", "bilinear"] = "nearest"

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        y = b.conv(x, name="down", out=x.channels, kernel=3, stride=2, padding=1)
        return b.op("resize", y, x, name="up", mode=self.mode)


@pytest.fixture(scope="module", autouse=True)
def _resize_back_family():
    """`test_resize_back`, registered while this module's tests run."""
    with registered(test_resize_back=ResizeBack):
        yield


def _run(s: dict, x: torch.Tensor) -> torch.Tensor:
    model = build_module(to_network(s), init=False).eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("layer, expect", [
    ({"resize": 2}, lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
    ({"resize": {"scale": 0.5, "mode": "bilinear"}},
     lambda x: F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)),
    ({"resize": {"size": [11, 7], "mode": "bilinear"}},
     lambda x: F.interpolate(x, size=(11, 7), mode="bilinear", align_corners=False)),
    ({"resize": {"scale": 1.5}}, lambda x: F.interpolate(x, scale_factor=1.5, mode="nearest")),
    ({"resize": {"scale": [2, 0.5], "mode": "nearest-exact"}},
     lambda x: F.interpolate(x, scale_factor=(2, 0.5), mode="nearest-exact")),
    ({"resize": {"scale": 2, "mode": "bilinear", "align_corners": True}},
     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)),
    ({"resize": {"size": [5, 20], "mode": "bicubic"}},
     lambda x: F.interpolate(x, size=(5, 20), mode="bicubic", align_corners=False)),
    ({"resize": {"scale": 3, "mode": "bicubic", "align_corners": True}},
     lambda x: F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=True)),
    ({"resize": {"size": [4, 6], "mode": "area"}}, lambda x: F.adaptive_avg_pool2d(x, (4, 6))),
    ({"resize": {"scale": 0.5, "mode": "area"}}, lambda x: F.interpolate(x, scale_factor=0.5, mode="area")),
])
def test_one_input_forms_equal_interpolate(layer: dict, expect) -> None:
    s = spec([], stem=[layer], size=(9, 13), channels=2)
    x = torch.randn(2, 2, 9, 13)
    out = _run(s, x)
    assert torch.equal(out, expect(x))
    assert analyze_network(to_network(s)).output_shape == tuple(out.shape[1:])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_two_input_form_resizes_to_the_second_input(mode: str) -> None:
    s = spec([{"block": "test_resize_back", "mode": mode}], size=(13, 10), channels=3)
    model = build_module(to_network(s), init=False).eval()
    x = torch.randn(1, 3, 13, 10)
    conv = model.stages[0].blocks[0].down
    with torch.no_grad():
        expect = F.interpolate(conv(x), size=(13, 10), mode=mode, align_corners=None if mode == "nearest" else False)
        assert torch.equal(model(x), expect)
    assert analyze_network(to_network(s)).output_shape == (3, 13, 10)


def test_nearest_upsampling_field_is_tight() -> None:
    """Upsampling by a whole factor s: unit i reads unit floor(i / s), so one (size, jump, padding)
    field covers s phases; over one period of s units the bound's first and last pixels are met."""
    s = spec([], stem=[{"conv": {"out": 2, "kernel": 3, "stride": 2, "padding": 1}},
                       {"conv": {"out": 2, "kernel": 3, "stride": 2, "padding": 1}},
                       {"resize": 4}], size=32)
    net = to_network(s)
    rf = analyze_network(net).layer("stem.2").rf
    assert rf.stride == (1, 1)
    below = analyze_network(net).layer("stem.1").rf
    meets_first, meets_last = [], []
    for unit in [(12, 12), (13, 13), (14, 14), (15, 15)]:
        measured = measure_region(net, "stem.2", unit)
        assert measured == below.region((unit[0] // 4, unit[1] // 4))
        (a0, a1), _ = rf.region(unit)
        assert a0 <= measured[0][0] and measured[0][1] <= a1
        meets_first.append(measured[0][0] == a0)
        meets_last.append(measured[0][1] == a1)
    assert any(meets_first) and any(meets_last)  # the bound is tight at both ends for some phase


@pytest.mark.parametrize("layer", [{"resize": {"scale": 2, "mode": "bilinear"}},
                                   {"resize": {"scale": 3, "mode": "bilinear"}},
                                   {"resize": {"size": [20, 20], "mode": "nearest"}},
                                   {"resize": {"scale": 0.5, "mode": "bilinear"}}])
def test_field_covers_every_pixel_read(layer: dict) -> None:
    """Every pixel that moves a resized unit lies inside its analysed field."""
    s = spec([], stem=[{"conv": {"out": 2, "kernel": 3, "stride": 2, "padding": 1}}, layer], size=24)
    net = to_network(s)
    info = analyze_network(net).layer("stem.1")
    _, h, w = info.output_shape
    for unit in [(h // 2, w // 2), (h // 2 + 1, w // 2 - 1), (h - 2, 1)]:
        (r0, r1), (c0, c1) = measure_region(net, "stem.1", unit)
        (a0, a1), (b0, b1) = info.rf.region(unit)
        assert a0 <= r0 and r1 <= a1 and b0 <= c0 and c1 <= b1, (unit, info.rf)


@pytest.mark.parametrize("bad, message", [
    ({"resize": {"scale": 2, "size": 4}}, "not both"),
    ({"resize": {"mode": "nearest"}}, "needs a scale or a size"),
    ({"resize": {"scale": 2, "mode": "trilinear"}}, "mode"),
    ({"resize": {"scale": 2, "align_corners": True}}, "align_corners is for the interpolating modes"),
])
def test_bad_resize_is_a_located_error(bad: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message) as err:
        to_network(spec([], stem=[{"conv": {"out": 2, "kernel": 1}}, bad]))
    assert "stem" in str(err.value)


def test_frozen_batch_norm_equals_torchvision() -> None:
    from torchvision.ops.misc import FrozenBatchNorm2d

    s = dict(spec([], stem=[{"norm": {"type": "frozen_batch", "eps": 1e-3}}], size=5, channels=6))
    net = to_network(s)
    info = analyze_network(net)
    assert (info.params, info.buffers) == (0, 24)
    ours = build_module(net).eval()
    theirs = FrozenBatchNorm2d(6, eps=1e-3)
    g = torch.Generator().manual_seed(0)
    for buf in theirs.buffers():
        buf.copy_(torch.rand(6, generator=g) + 0.5)
    ours.load_state_dict({"stem.0." + k: v for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == ["stem.0." + k for k in theirs.state_dict()]
    assert sum(p.numel() for p in ours.parameters()) == 0
    x = torch.randn(2, 6, 5, 5, generator=g)
    ours.train()  # frozen: training changes nothing
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_exported_source_resizes_and_freezes_as_the_compiled_module(tmp_path) -> None:
    from tests.generated import assert_ruff_clean, exported_model

    s = spec([{"block": "test_resize_back", "mode": "bilinear"}],
             stem=[{"conv": {"out": 3, "kernel": 3}}, {"norm": "frozen_batch"}, {"resize": {"scale": 2, "mode": "bilinear"}}],
             size=(13, 10), channels=3)
    ours = build_module(to_network(s)).eval()
    theirs = exported_model(s, "resize", tmp_path).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 13, 10)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert_ruff_clean(tmp_path)


def test_the_field_of_huge_resizes_is_found_in_closed_form() -> None:
    """Issue 23: two 1024x resizes (33.5M units per axis) hung past 60 s at 1.2 GB when the rule
    walked every unit. The rule evaluates a few runs per axis: well inside 20 s and 1 GiB.
    By hand for the first: unit i reads pixel floor(i / 1024) at the new stride 1/1024, which lies in
    [i/1024 - 1, i/1024]: padding 1, size 2."""
    import time
    import tracemalloc

    from fractions import Fraction

    stem = [{"resize": 1024}, {"resize": {"scale": 1024, "mode": "bilinear"}},
            {"resize": {"size": [1_000_003, 999_983], "mode": "bicubic"}}, {"resize": {"size": [7, 1 << 20], "mode": "area"}}]
    tracemalloc.start()
    start = time.process_time()  # CPU time: a loaded machine does not fail it
    try:
        layers = analyze_network(to_network(spec([], stem=stem, size=32))).layers
        fields = [layer.rf for layer in layers]
        seconds = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 20 and peak < 1 << 30, (seconds, peak)
    assert fields[0] == RF((2, 2), (1 / 1024, 1 / 1024), (1, 1))
    # bilinear x1024 again: unit i reads floor(c) and ceil(c), c = (i + 0.5) / 1024 - 0.5, each a
    # 2-pixel field of the first; covered at stride 1/1024**2 by padding 2 and size 4
    assert fields[1].size == (4, 4) and fields[1].padding == (2, 2)
    assert Fraction(fields[1].stride[0]) == Fraction(1, 1 << 20)
    assert layers[-1].output_shape == (1, 7, 1 << 20)
