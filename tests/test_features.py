"""Taps (`features:`): the module returns named feature maps as torchvision's
IntermediateLayerGetter does, builds nothing no tap needs, and the analysis reports each tap's
channels, reduction, shape and receptive field without torch."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torchvision.models._utils import IntermediateLayerGetter

import archspec
from archspec.spec.load import to_network
from archspec.core.errors import SpecError
from archspec.interop import load_torchvision
from tests.analysis_helpers import measure_region, spec
from tests.clirun import run_cli
from tests.generated import compiled_and_exported
from tests.test_output_stride import perturb_norms

FPN_TAPS = {"0": "stages.0", "1": "stages.1", "2": "stages.2", "3": "stages.3"}


@pytest.fixture(scope="module")
def resnet50_layers() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = torchvision.models.resnet50()
    perturb_norms(ref)
    return IntermediateLayerGetter(ref, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}).eval()


def test_resnet50_taps_equal_intermediate_layer_getter(resnet50_layers: torch.nn.Module) -> None:
    ours = archspec.build("resnet50", features=FPN_TAPS)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in resnet50_layers.parameters())
    full = archspec.build("resnet50", init_weights=False)
    assert set(ours.state_dict()) == {k for k in full.state_dict() if k.startswith(("stem.", "stages."))}
    load_torchvision(ours, resnet50_layers)
    ours.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        got, want = ours(x), resnet50_layers(x)
    assert list(got) == list(want) == ["0", "1", "2", "3"]
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-4), name
    # Feature info without torch: channels, reduction and shape of each output, at this input.
    info = archspec.analyze("resnet50", features=FPN_TAPS, input=(3, 64, 96)).features
    assert [(f.name, f.channels, f.reduction, f.shape) for f in info] == [
        (name, t.shape[1], 64 // t.shape[2], tuple(t.shape[1:])) for name, t in got.items()]


def test_only_what_a_tap_needs_is_built() -> None:
    net = to_network("resnet50", features=["stages.1.blocks.1", "stem.maxpool"])
    assert [len(stage.blocks) for stage in net.stages] == [3, 2]
    assert net.head.nodes == () and net.aux_heads == ()
    model = archspec.build("resnet50", features=["stages.1.blocks.1", "stem.maxpool"], init_weights=False)
    assert not hasattr(model, "head")
    assert archspec.analyze("resnet50", features=["stages.1.blocks.1"]).params == sum(
        p.numel() for p in model.parameters())
    x = torch.randn(1, 3, 64, 64)
    out = model.eval()(x)
    assert list(out) == ["stages.1.blocks.1", "stem.maxpool"]  # the order written, not the order run
    assert [tuple(t.shape) for t in out.values()] == [(1, 512, 8, 8), (1, 64, 16, 16)]


def test_the_head_is_built_when_tapped() -> None:
    model = archspec.build("resnet18", features={"pooled": "head.avgpool", "logits": "head"}, init_weights=False).eval()
    full = archspec.build("resnet18", init_weights=False).eval()
    model.load_state_dict(full.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out["logits"], full(x))
    assert out["pooled"].shape == (1, 512, 1, 1)


@pytest.mark.parametrize("features, names", [
    ("stages", ["stages.0", "stages.1", "stages.2", "stages.3"]),
    ([1, 3], ["stages.1", "stages.3"]),  # timm's out_indices
    ("stages.2", ["stages.2"]),
])
def test_shorthands(features, names: list[str]) -> None:
    assert [t.name for t in to_network("resnet18", features=features).taps] == names


def test_stage_names_are_paths_too() -> None:
    s = spec([{"block": "layers", "name": "early", "layers": [{"conv": {"out": 2, "kernel": 3, "stride": 2}}]},
              {"block": "layers", "name": "late", "layers": [{"conv": {"out": 2, "kernel": 3, "stride": 2}}]}],
             size=32)
    assert [t.path for t in to_network({**s, "features": ["stages.early", "stages.late.blocks.0.0"]}).taps] == [
        "stages.0", "stages.1.blocks.0.0"]


@pytest.mark.parametrize("features, message", [
    (["stagse.1"], r"features\[0\]: no part 'stagse' \(did you mean 'stages'\?\); valid there: stem, stages, head"),
    (["stages.7"], r"no stage '7'; valid there: 0, 1, 2, 3"),
    ({"c5": "stages.3.blocks.3"}, r"features.c5: no block '3' in stages.3; valid there: 0, 1$"),
    (["stages.1.blcks.0"], r"no key 'blcks' in stages.1 \(did you mean 'blocks'\?\)"),
    (["stem.relu2"], r"no layer 'relu2' in stem \(did you mean 'relu'\?\); valid there: conv1, bn1, relu, maxpool"),
    (["stages.1.blocks.0.conv1"], r"'stages.1.blocks.0' is not a plain chain of layers"),
    ({"a": "stages.1", "b": "stages"}, r"'stages' names every stage"),
    ([], r"features is empty"),
])
def test_bad_taps_are_located_errors_with_suggestions(features, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        to_network("resnet18", features=features)


def test_feature_field_is_measured_by_autograd() -> None:
    s = {**spec([{"block": "layers", "layers": [{"conv": {"out": 2, "kernel": 3, "stride": 2, "padding": 1}},
                                                {"conv": {"out": 2, "kernel": 3, "padding": 1}}]},
                 {"block": "layers", "layers": [{"conv": {"out": 2, "kernel": 3, "stride": 2, "padding": 1}}]}],
                size=32), "features": {"a": "stages.0", "b": "stages.1"}}
    net = to_network(s)
    info = archspec.analyze(s).features
    assert [(f.reduction, f.rf.size) for f in info] == [(2, (7, 7)), (4, (11, 11))]  # 3, +4; then +4
    for f, unit in zip(info, [(8, 7), (4, 4)]):
        assert measure_region(net, f.layer, unit) == f.rf.region(unit)


def test_cli_features_table_and_json() -> None:
    code, out, err = run_cli("summary", "resnet50", "--features", "--set", "output_stride=16")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines() if line.startswith("stages.")]
    assert [(row[0], row[2], row[3], row[4]) for row in lines] == [
        ("stages.0", "256", "4", "256x56x56"), ("stages.1", "512", "8", "512x28x28"),
        ("stages.2", "1024", "16", "1024x14x14"), ("stages.3", "2048", "16", "2048x14x14")]
    code, out, err = run_cli("summary", "resnet50", "--json", "--set", "features={c2: stem.maxpool}")
    assert code == 0, err
    (c2,) = json.loads(out)["features"]
    assert (c2["name"], c2["layer"], c2["channels"], c2["reduction"], c2["shape"]) == (
        "c2", "stem.maxpool", 64, 4, [64, 56, 56])
    assert c2["receptive_field"] == {"size": [11, 11], "stride": [4, 4], "padding": [5, 5], "context": [None, None]}
    code, out, err = run_cli("summary", "resnet50", "--features", "--set", "features=[stages.9]")
    assert code == 2 and "no stage '9'" in err


@pytest.mark.parametrize("features", [{"c4": "stages.2", "c2": "stem.maxpool"}, ["stages.1.blocks.0", "head"]])
def test_exported_source_returns_the_same_taps(features, tmp_path) -> None:
    s = archspec.load_spec("resnet18", features=features, **{"input.size": [48, 48]})
    a, b = compiled_and_exported(s, "taps", tmp_path, torch.randn(1, 3, 48, 48))
    assert list(a) == list(b) == list(features)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_onnx_names_each_tap(tmp_path) -> None:
    import onnx

    path = archspec.export("resnet18", tmp_path / "taps.onnx", features={"c3": "stages.1", "c5": "stages.3"},
                           **{"input.size": [32, 32]})
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["c3", "c5"]


def test_an_override_of_a_tap_named_by_a_number_replaces_that_tap() -> None:
    # `features: {"0": ..., "1": ...}` (YAML's `"1":` is text): `--set features.1=...` means that key
    spec = {"extends": "resnet18", "features": {"0": "stages.0", "1": "stages.1"}}
    taps = archspec.load_spec(spec, **{"features.1": "stages.2"}).network().taps
    assert [(t.name, t.path) for t in taps] == [("0", "stages.0"), ("1", "stages.2")]
