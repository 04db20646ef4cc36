"""Necks and detection backbones: resnet50_fpn equals torchvision's resnet_fpn_backbone and drops
into torchvision's FasterRCNN."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

import archspec
from archspec.spec.load import to_network
from archspec.core.errors import SpecError
from archspec.interop import load_torchvision


def perturb_buffers(model: torch.nn.Module, seed: int = 0) -> None:
    """Frozen batch norms away from the identity: weight, bias, mean and variance all random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if type(m).__name__ == "FrozenBatchNorm2d":
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=5).eval()
    perturb_buffers(ref)
    return ref


def test_resnet50_fpn_equals_resnet_fpn_backbone(reference: torch.nn.Module) -> None:
    model = archspec.build("resnet50_fpn")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters()) == 26_799_296
    assert model.out_channels == reference.out_channels == 256
    load_torchvision(model, reference)
    model.eval()
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert list(ours) == list(theirs) == ["0", "1", "2", "3", "pool"]
    for name in theirs:
        assert ours[name].shape == theirs[name].shape
        assert torch.allclose(ours[name], theirs[name], atol=1e-4), name
    info = archspec.analyze("resnet50_fpn", input=(3, 96, 80)).features
    # The strides of the pyramid's levels: 4, 8, 16, 32 and 64 (Lin et al.: P2..P6).
    assert [(f.name, f.channels, f.reduction, f.shape) for f in info] == [
        (k, 256, stride, tuple(v.shape[1:])) for (k, v), stride in zip(theirs.items(), [4, 8, 16, 32, 64])]


IMAGES = [torch.rand(3, 128, 160, generator=torch.Generator().manual_seed(1)),
          torch.rand(3, 120, 150, generator=torch.Generator().manual_seed(2))]
TARGETS = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([1])},
           {"boxes": torch.tensor([[5.0, 5.0, 50.0, 40.0], [60.0, 30.0, 120.0, 100.0]]),
            "labels": torch.tensor([2, 1])}]


def assert_trains_and_detects(detector: torch.nn.Module, losses: set[str], learners: list[torch.Tensor]) -> None:
    """One SGD step of torchvision's detector (finite losses named `losses`, gradients reaching every
    tensor of `learners`, the first of them changed), then detections in eval."""
    detector.train()
    found = detector(IMAGES, TARGETS)
    assert set(found) == losses
    assert all(torch.isfinite(v) for v in found.values())
    optimiser = torch.optim.SGD(detector.parameters(), lr=1e-3)
    optimiser.zero_grad()
    sum(found.values()).backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in learners)
    before = learners[0].detach().clone()
    optimiser.step()
    assert not torch.equal(before, learners[0])
    detector.eval()
    with torch.no_grad():
        out = detector(IMAGES)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}


@pytest.mark.slow
def test_resnet50_fpn_trains_and_detects_inside_faster_rcnn() -> None:
    torch.manual_seed(0)
    backbone = archspec.build("resnet50_fpn")
    detector = FasterRCNN(backbone, num_classes=3, min_size=128, max_size=160)
    assert_trains_and_detects(detector, {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
                              [detector.backbone.stem.conv1.weight])  # gradients reach the stem


def test_necks_read_parts_and_report_a_row_each() -> None:
    report = archspec.analyze("resnet50_fpn")
    assert [name for name, _ in report.rows("stage")][-1] == "necks.fpn"
    assert report.params == 26_799_296


@pytest.mark.parametrize("necks, message", [
    ({"a": {"block": "fpn", "in": ["stages.1", "necks.b"]}, "b": {"block": "fpn", "in": ["necks.a.0"]}},
     r"a cycle between parts: necks.a reads necks.b reads necks.a"),
    ({"a": {"block": "fpn", "in": ["stages.1", "stages.7"]}}, r"necks.a.in\[1\]: no stage '7'"),
    ({"a": {"block": "fpn", "in": ["stages.1", "necks.fnp"]}}, r"no neck 'fnp' \(did you mean 'fpn'\?\)"),
    ({"a": {"block": "fpn", "in": ["stages.1", "stem"]}},
     r"necks.a: fpn: an FPN reads its inputs from fine to coarse, but input 1 is larger than input 0; "
     r"it reads input 0: stages.1 \(512x28x28\), input 1: stem \(64x56x56\)"),
    ({"a": {"block": "fcn_head", "in": ["stages.1", "stages.2", "stages.3"], "classes": 3}},
     r"block type 'fcn_head' reads 1 to 2 inputs \(`in:`\), got 3"),
])
def test_bad_parts_are_located_errors(necks: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        to_network("resnet50_fpn", necks={"fpn": {"block": "fpn", "in": ["stages.0"]}, **necks},
                   features=[f"necks.{n}" for n in necks])


@pytest.mark.parametrize("level", ["stage", "block", "layer"])
def test_diagrams_draw_heads_reading_folded_stages(level: str) -> None:
    """Heads read stages whose identical blocks are folded into one drawn block: the edge comes from
    that run's box, and each returned tap is noted on the box holding it."""
    source = archspec.diagram("deeplabv3_resnet50", level=level).source
    assert "→ out" in source and "→ aux" in source
    assert source.count("heads.classifier") >= 1 and source.count("heads.aux_classifier") >= 1


class OfficialFuse(torch.nn.Module):
    """HRNet's exchange unit as the official code writes it (HighResolutionModule._make_fuse_layers
    and its forward, multi_scale_output=True), transcribed."""

    def __init__(self, channels: list[int]):
        super().__init__()
        nn = torch.nn
        self.fuse_layers = nn.ModuleList()
        for i in range(len(channels)):
            layer = []
            for j in range(len(channels)):
                if j > i:
                    layer.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                                               nn.BatchNorm2d(channels[i]),
                                               nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    layer.append(None)
                else:
                    convs = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            convs.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 3, 2, 1, bias=False),
                                                       nn.BatchNorm2d(channels[i])))
                        else:
                            convs.append(nn.Sequential(nn.Conv2d(channels[j], channels[j], 3, 2, 1, bias=False),
                                                       nn.BatchNorm2d(channels[j]), nn.ReLU(False)))
                    layer.append(nn.Sequential(*convs))
            self.fuse_layers.append(nn.ModuleList(layer))
        self.relu = nn.ReLU(False)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i in range(len(self.fuse_layers)):
            y = x[0] if i == 0 else self.fuse_layers[i][0](x[0])
            for j in range(1, len(x)):
                y = y + x[j] if i == j else y + self.fuse_layers[i][j](x[j])
            out.append(self.relu(y))
        return out


def _three_streams() -> dict:
    def down(c: int) -> dict:
        return {"block": "layers", "layers": [{"conv": {"out": c, "kernel": 3, "stride": 2, "padding": 1, "bias": False}},
                                              "norm", "act"]}
    return {"name": "hr", "input": {"channels": 3, "size": [32, 32]}, "defaults": {"norm": "batch", "activation": "relu"},
            "stem": [{"conv": {"out": 8, "kernel": 3, "stride": 2, "padding": 1}}],
            "stages": [{"block": "basic", "out": 8}, down(16), down(32)],
            "necks": {"s0": {"block": "stream", "in": "stages.0", "unit": "basic", "params": {"out": 8}, "repeat": 2},
                      "s1": {"block": "stream", "in": "stages.1", "unit": "basic", "params": {"out": 16}, "repeat": 2},
                      "s2": {"block": "stream", "in": "stages.2", "unit": "basic", "params": {"out": 32}},
                      "fuse": {"block": "hr_fuse", "in": ["necks.s0", "necks.s1", "necks.s2"]}},
            "features": {"s0": "necks.s0", "s1": "necks.s1", "s2": "necks.s2", "out": "necks.fuse"}}


def test_parallel_streams_exchange_as_hrnet_does() -> None:
    """Three streams keep their resolutions (16, 8, 4) and the exchange unit equals HRNet's own."""
    from tests.test_output_stride import perturb_norms

    torch.manual_seed(0)
    model = archspec.build(_three_streams()).eval()
    perturb_norms(model)
    reference = OfficialFuse([8, 16, 32]).eval()
    perturb_norms(reference, seed=1)
    ours = model.necks.fuse.state_dict()
    theirs = reference.state_dict()
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    model.necks.fuse.load_state_dict(dict(zip(ours, theirs.values())))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
        want = reference([out["s0"], out["s1"], out["s2"]])
    assert [tuple(out[k].shape[1:]) for k in ("s0", "s1", "s2")] == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]
    assert list(out)[3:] == ["out.0", "out.1", "out.2"]
    for k, w in zip(("out.0", "out.1", "out.2"), want):
        assert torch.allclose(out[k], w, atol=1e-5), k
    report = archspec.analyze(_three_streams())
    assert report.params == sum(p.numel() for p in model.parameters())
    assert [f.reduction for f in report.features] == [2, 4, 8, 2, 4, 8]


def test_streams_must_halve_in_size() -> None:
    spec = _three_streams()
    spec["necks"]["fuse"]["in"] = ["necks.s0", "necks.s2"]
    with pytest.raises(SpecError, match=r"necks.fuse: hr_fuse: hr_fuse needs each stream at half the previous one's "
                                        r"size, but stream 1 is 4x4 after 16x16; it reads input 0: necks.s0"):
        to_network(spec)


def test_streams_export_and_draw(tmp_path) -> None:
    """Exported source computes the same and is formatted as ruff would write it (a call on a getattr
    chain longer than a line, `fuse_layers.1.0.0.0`, splits the chain as black does)."""
    from tests.generated import assert_ruff_clean, compiled_and_exported

    spec = archspec.load_spec(_three_streams())
    a, b = compiled_and_exported(spec, "streams", tmp_path, torch.randn(1, 3, 32, 32))
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert_ruff_clean(tmp_path)
    assert "→ out.2" in archspec.diagram(spec, level="layer").source
