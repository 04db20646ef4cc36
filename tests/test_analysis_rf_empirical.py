"""Receptive fields equal an empirical measurement: the support of the input gradient of
one output unit (positive weights, max-pool swapped for avg-pool, neutral BN, float64)."""

from __future__ import annotations

import pytest

from archspec.analysis import analyze_network
from archspec.spec.load import to_network
from archspec.core.errors import SpecError
from tests.analysis_helpers import measure_region, paths, spec

pytestmark = pytest.mark.usefixtures("test_paths_family")  # the `test_paths` block these tests use


def clipped(region, shape):
    return tuple((max(a, 0), min(b, n - 1)) for (a, b), n in zip(region, shape[1:]))


def local(rf, unit) -> tuple:
    """The unit's own field, without the context every unit shares (an SE gate's whole map)."""
    return tuple((a, a + r - 1) for a, r in zip(rf.start(unit), rf.size))


def check(net, layer_name: str, unit: tuple[int, int], interior: bool = True) -> None:
    layer = analyze_network(net).layer(layer_name)
    if interior:  # the field must not be clipped, or the measurement could not see its size
        own = local(layer.rf, unit)
        assert clipped(own, net.input_shape) == own, f"pick a larger input: {own} is clipped"
    assert measure_region(net, layer_name, unit) == clipped(layer.rf.region(unit), net.input_shape)


SMALL = {
    "dilation": (spec([], stem=[{"conv": {"out": 4, "kernel": 3, "dilation": 2, "padding": 2}},
                                {"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}},
                                {"conv": {"out": 4, "kernel": 3, "dilation": 3, "padding": 3}}], size=32),
                 "stem.2", (8, 8)),
    "asymmetric": (spec([], stem=[{"conv": {"out": 2, "kernel": [3, 1], "stride": [2, 1], "padding": [1, 0]}},
                                  {"conv": {"out": 2, "kernel": [1, 7], "padding": [0, 3]}},
                                  {"conv": {"out": 2, "kernel": [7, 1], "padding": [3, 0]}}], size=17),
                   "stem.2", (4, 8)),
    "ceil_mode": (spec([], stem=[{"conv": {"out": 2, "kernel": 3, "padding": 1}},
                                 {"maxpool": {"kernel": 3, "stride": 2, "ceil_mode": True}},
                                 {"maxpool": {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True}}], size=9),
                  "stem.2", (1, 1)),
    "inception_concat": (spec([paths([{"conv": {"out": 2}}],
                                     [{"conv": {"out": 3}}, {"conv": {"out": 3, "kernel": 3, "padding": 1}}],
                                     [{"conv": {"out": 4}}, {"conv": {"out": 4, "kernel": 5, "padding": 2}}],
                                     [{"maxpool": {"kernel": 3, "stride": 1, "padding": 1}}, {"conv": {"out": 5}}])],
                              stem=[{"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}}], size=16),
                         "stages.0.blocks.0.merge", (4, 4)),
    "unaligned_paths": (spec([paths([{"conv": {"out": 2, "kernel": [3, 1], "padding": [1, 0]}}],
                                    [{"conv": {"out": 2, "kernel": [1, 5], "padding": [0, 2]}},
                                     {"conv": {"out": 2, "kernel": 3, "dilation": 2, "padding": 2}}],
                                    merge="add")], size=16),
                        "stages.0.blocks.0.merge", (7, 8)),
    "residual": (dict(spec([{"block": "basic", "out": 4, "stride": 2}], size=8),
                      defaults={"norm": "batch", "activation": "relu"}),
                 "stages.0.blocks.0.relu", (2, 2)),
}


@pytest.mark.parametrize("case", sorted(SMALL))
def test_small_networks(case: str) -> None:
    s, layer, unit = SMALL[case]
    check(to_network(s), layer, unit)


def test_squeeze_excitation_unit_sees_the_whole_input() -> None:
    s = spec([paths([], [{"global_pool": "avg"}, {"conv": {"out": 4}}, {"act": "sigmoid"}], merge="mul"),
              {"block": "layers", "layers": [{"conv": {"out": 4, "kernel": 3, "padding": 1}}]}],
             stem=[{"conv": {"out": 4, "kernel": 3, "padding": 1}}], size=12)
    net = to_network(s)
    check(net, "stages.1.blocks.0.0", (9, 2), interior=False)
    assert measure_region(net, "stages.1.blocks.0.0", (9, 2)) == ((0, 11), (0, 11))


@pytest.mark.parametrize("size", [12, 13])
def test_global_pooling(size: int) -> None:
    s = spec([{"block": "layers", "layers": [{"conv": {"out": 2, "kernel": 3}}, {"maxpool": 2}]}],
             head=[{"global_pool": "max"}], size=size)
    check(to_network(s), "head.0", (0, 0), interior=False)


def interior_size(name: str, overrides: dict) -> int:
    """The smallest input (multiple of 16) whose centre unit at the network's field is not clipped."""
    for n in range(32, 1024, 16):
        try:
            report = analyze_network(to_network(name, **overrides, **{"input.size": [n, n]}))
        except SpecError:  # too small for the network
            continue
        layer = report.layer(report.receptive_field_layer)
        centre = tuple((m - 1) // 2 for m in layer.output_shape[1:])
        if clipped(local(layer.rf, centre), report.input_shape) == local(layer.rf, centre):
            return n
    raise AssertionError(f"no input up to 1024 holds the field of {name}")


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "squeezenet1_1",
                                  "mobilenet_v2", "mobilenet_v3_small"])
def test_zoo_networks(name: str) -> None:
    # Narrow (the field does not depend on width) and headless, to keep float64 cheap. DenseNet-121
    # (2071 px) and the larger ones need inputs over 1000 px; ConvNeXt's LayerNorm over channels
    # cancels a channel-summed gradient, so neither is probed here.
    overrides = {"scale.width": 0.125, "head": []}
    n = interior_size(name, overrides)
    net = to_network(name, **overrides, **{"input.size": [n, n]})
    report = analyze_network(net)
    layer = report.layer(report.receptive_field_layer)
    check(net, layer.name, tuple((m - 1) // 2 for m in layer.output_shape[1:]))


@pytest.mark.parametrize("size, pooled", [(8, 5), (8, 7), (13, 3)])
def test_an_adaptive_pool_field_covers_what_each_unit_reads(size: int, pooled: int) -> None:
    # A 3x3/4 conv makes a 2x2 map (8) or a 4x4 one (13), adaptively pooled to 5x5 or 7x7 (up:
    # several units read one map unit) or to 3x3 (windows of uneven sizes). Each unit's field must hold
    # every pixel that moves it; before, pooling up took the stride as 1 and a unit's field missed them.
    s = spec([], stem=[{"conv": {"out": 2, "kernel": 3, "stride": 4, "padding": 1}},
                       {"adaptive_pool": {"type": "avg", "size": pooled}}], size=size)
    net = to_network(s)
    layer = analyze_network(net).layer("stem.1")
    for unit in [(0, 0), (pooled // 2, pooled - 1), (pooled - 1, pooled - 1)]:
        measured = measure_region(net, "stem.1", unit)
        field = clipped(layer.rf.region(unit), net.input_shape)
        assert all(f0 <= m0 and m1 <= f1 for (f0, f1), (m0, m1) in zip(field, measured)), (unit, field, measured)
