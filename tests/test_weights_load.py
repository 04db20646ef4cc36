"""Published weights load exactly, offline: a temporary TORCH_HOME holds, under torchvision's file
name, the state dict of a torchvision model with random weights and perturbed norms; the archspec
model built with `weights=` must then equal that torchvision model loaded from the same file (as
torchvision's own builders load it: transform_input for GoogLeNet and Inception-v3, the auxiliary
heads dropped after loading). Nothing here touches the network (`no_network`)."""

from __future__ import annotations

import copy
import re

import pytest
import torch
import torchvision.models as tvm
import torchvision.models.detection as det
import torchvision.models.segmentation as seg
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

import archspec
from archspec.api import WeightsWarning
from archspec.interop import load_torchvision
from parity import assert_close_outputs, assert_depends_on_input, calibrate_norms, randomise

pytestmark = pytest.mark.usefixtures("no_network")

SLOW = {"inception_v3", "convnext_tiny", "efficientnet_v2_s", "fcn_resnet50", "deeplabv3_mobilenet_v3_large",
        "lraspp_mobilenet_v3_large", "densenet121", "vgg11_bn", "alexnet", "resnext50_32x4d", "regnet_y_400mf"}


def file_of(name: str, weights: str = "DEFAULT") -> str:
    spec = archspec.load_spec(name)
    entry = next(e for e in spec.model.weights if e.name == weights or (weights == "DEFAULT" and e.default))
    return entry.url.rsplit("/", 1)[-1]


def put(hub, name: str, state: dict, weights: str = "DEFAULT") -> None:
    torch.save(state, hub / file_of(name, weights))


# zoo name -> (the torchvision model its published file was saved from, the model torchvision's
# builder returns with those weights, given the first after loading; input size)
def _same(model):
    return model


def _drop_aux(model):
    model.aux1 = model.aux2 = None  # what googlenet(weights=..., aux_logits=False) does after loading
    return model


def _no_aux(model):
    model.AuxLogits = None
    model.aux_logits = False
    return model


CASES = {
    "alexnet": (lambda: tvm.alexnet(), _same, 64),
    "vgg11_bn": (lambda: tvm.vgg11_bn(), _same, 32),
    "resnet18": (lambda: tvm.resnet18(), _same, 64),
    "resnext50_32x4d": (lambda: tvm.resnext50_32x4d(), _same, 64),
    "googlenet": (lambda: tvm.googlenet(aux_logits=True, transform_input=True, init_weights=False), _drop_aux, 64),
    "inception_v3": (lambda: tvm.inception_v3(aux_logits=True, transform_input=True, init_weights=False), _same, 299),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(), _same, 64),
    "mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(), _same, 64),
    "mnasnet0_5": (lambda: tvm.mnasnet0_5(), _same, 64),
    "shufflenet_v2_x0_5": (lambda: tvm.shufflenet_v2_x0_5(), _same, 64),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(), _same, 64),
    "efficientnet_v2_s": (lambda: tvm.efficientnet_v2_s(), _same, 64),
    "regnet_x_400mf": (lambda: tvm.regnet_x_400mf(), _same, 64),
    "regnet_y_400mf": (lambda: tvm.regnet_y_400mf(), _same, 64),
    "convnext_tiny": (lambda: tvm.convnext_tiny(), _same, 64),
    "densenet121": (lambda: tvm.densenet121(), _same, 64),
    "squeezenet1_1": (lambda: tvm.squeezenet1_1(), _same, 64),
    "fcn_resnet50": (lambda: seg.fcn_resnet50(weights_backbone=None, aux_loss=True), _same, 64),
    "deeplabv3_mobilenet_v3_large": (
        lambda: seg.deeplabv3_mobilenet_v3_large(weights_backbone=None, aux_loss=True), _same, 64),
    "lraspp_mobilenet_v3_large": (lambda: seg.lraspp_mobilenet_v3_large(weights_backbone=None), _same, 64),
}


def _old_densenet_keys(state: dict) -> dict:
    """The key names of torchvision's published DenseNet files (saved before PyTorch 0.4: `norm.1`)."""
    return {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()}


def _outputs(model, x):
    with torch.no_grad():
        out = model.eval()(x)
    return out if isinstance(out, dict) else {"out": out}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_published_weights_load_exactly_offline(name: str, hub) -> None:
    make, finish, size = CASES[name]
    torch.manual_seed(0)
    reference = make()
    randomise(reference)
    calibrate_norms(reference.eval(), torch.randn(8, 3, size, size))
    state = reference.state_dict()
    put(hub, name, _old_densenet_keys(state) if name == "densenet121" else state)
    model = archspec.build(name, weights="DEFAULT")
    report = model.archspec_weights
    assert report.skipped == {} and report.file.parent == hub
    theirs = finish(reference)  # loaded from that file, as torchvision's builder leaves it
    x = torch.randn(2, 3, size, size)
    ours, want = _outputs(model, x), _outputs(theirs, x)
    assert list(ours) == list(want)
    for key in want:
        assert_depends_on_input(want[key], f"{name}[{key}]", atol=1e-5)
        assert_close_outputs(ours[key], want[key], f"{name}[{key}]", atol=1e-5)
    if name in ("googlenet", "inception_v3"):  # the auxiliary heads' tensors are in the file, not in the model
        assert report.unused and all(k.startswith(("aux1.", "aux2.")) for k in report.unused) if name == "googlenet" \
            else report.unused == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_weights_backbone_fill_the_backbone_of_the_segmentation_zoo(name: str, hub) -> None:
    """torchvision's weights_backbone: a ResNet-50 classifier's file fills the dilated backbone; the
    heads keep their initialisation, and the classifier's fc is unused."""
    torch.manual_seed(0)
    classifier = tvm.resnet50()
    randomise(classifier)
    calibrate_norms(classifier.eval(), torch.randn(8, 3, 64, 64))
    put(hub, "resnet50", classifier.state_dict(), "IMAGENET1K_V2")
    model = archspec.build(name, weights="IMAGENET1K_V2")
    report = model.archspec_weights
    assert report.skipped and all(k.startswith("heads.") for k in report.skipped)
    assert set(report.skipped.values()) == {"not in the weights"}
    assert report.unused == ["fc.weight", "fc.bias"]
    theirs = getattr(seg, name)(weights_backbone=None, aux_loss=True)
    theirs.backbone.load_state_dict({k: v for k, v in classifier.state_dict().items() if not k.startswith("fc.")})
    body = archspec.build(name, weights="IMAGENET1K_V2", features={"c5": "stages.3"})
    x = torch.randn(2, 3, 64, 64)
    want = _outputs(theirs.backbone, x)["out"]
    assert_depends_on_input(want, name, atol=1e-5)
    assert_close_outputs(_outputs(body, x)["c5"], want, name, atol=1e-5)


@pytest.mark.slow
def test_weights_backbone_of_the_detection_backbone(hub) -> None:
    torch.manual_seed(0)
    classifier = tvm.resnet50()
    randomise(classifier)
    calibrate_norms(classifier.eval(), torch.randn(8, 3, 64, 64))
    put(hub, "resnet50", classifier.state_dict(), "IMAGENET1K_V1")
    model = archspec.build("resnet50_fpn", weights="IMAGENET1K_V1")
    skipped = model.archspec_weights.skipped
    assert skipped and all(k.startswith("necks.fpn.") for k in skipped)
    theirs = resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=5)
    theirs.body.load_state_dict({k: v for k, v in classifier.state_dict().items()
                                 if not k.startswith("fc.") and not k.endswith("num_batches_tracked")})
    body = archspec.build("resnet50_fpn", weights="IMAGENET1K_V1", features={"c4": "stages.2", "c5": "stages.3"})
    x = torch.randn(2, 3, 64, 64)
    ours, want = _outputs(body, x), _outputs(theirs.body, x)
    for mine, theirs_key in (("c4", "2"), ("c5", "3")):
        assert_depends_on_input(want[theirs_key], f"resnet50_fpn {mine}", atol=1e-5)
        assert_close_outputs(ours[mine], want[theirs_key], f"resnet50_fpn {mine}", atol=1e-5)


def test_transfer_learning_loads_what_fits_and_says_what_did_not(hub) -> None:
    torch.manual_seed(0)
    reference = tvm.resnet18()
    randomise(reference)
    put(hub, "resnet18", reference.state_dict())
    torch.manual_seed(1)
    with pytest.warns(WeightsWarning, match="head.fc.weight: shape \\[10, 512\\] here, \\[1000, 512\\]"):
        model = archspec.build("resnet18", weights="IMAGENET1K_V1", num_classes=10)
    report = model.archspec_weights
    assert set(report.skipped) == {"head.fc.weight", "head.fc.bias"}
    assert len(report.loaded) == len(reference.state_dict()) - 2
    # The body is the published one; the new head keeps the spec's initialisation (PyTorch's for linear).
    assert torch.equal(model.stem.conv1.weight, reference.conv1.weight)
    bound = 1 / 512 ** 0.5
    assert model.head.fc.weight.abs().max() <= bound and not torch.equal(model.head.fc.bias, torch.zeros(10))
    # Taps load into the parts kept; the rest of the file is unused.
    body = archspec.build("resnet18", weights="IMAGENET1K_V1", features={"c4": "stages.2"})
    assert body.archspec_weights.skipped == {}
    assert {k.split(".")[0] for k in body.archspec_weights.unused} == {"layer4", "fc"}


def test_output_stride_does_not_change_which_weights_load(hub) -> None:
    torch.manual_seed(0)
    reference = tvm.mobilenet_v3_large()
    randomise(reference)
    put(hub, "mobilenet_v3_large", reference.state_dict(), "IMAGENET1K_V1")
    plain = archspec.build("mobilenet_v3_large", weights="IMAGENET1K_V1")
    dilated = archspec.build("mobilenet_v3_large", weights="IMAGENET1K_V1", output_stride=16)
    assert dilated.archspec_weights.skipped == {} and dilated.archspec_weights.unused == []
    assert dilated.archspec_weights.loaded == plain.archspec_weights.loaded
    assert len(plain.archspec_weights.loaded) == len(reference.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"])
def test_weights_backbone_fill_the_dilated_mobilenet(name: str, hub) -> None:
    torch.manual_seed(0)
    classifier = tvm.mobilenet_v3_large()
    randomise(classifier)
    calibrate_norms(classifier.eval(), torch.randn(8, 3, 64, 64))
    put(hub, "mobilenet_v3_large", classifier.state_dict(), "IMAGENET1K_V1")
    body = archspec.build(name, weights="IMAGENET1K_V1", features={"out": "head"})  # the backbone's last conv
    assert all(k.startswith("heads.") for k in body.archspec_weights.skipped)  # what the taps still build
    assert sorted(body.archspec_weights.unused) == ["classifier.0.bias", "classifier.0.weight", "classifier.3.bias",
                                                    "classifier.3.weight"]
    theirs = getattr(seg, name)(weights_backbone=None, **({"aux_loss": True} if name.startswith("deeplab") else {}))
    theirs.backbone.load_state_dict({k.removeprefix("features."): v for k, v in classifier.state_dict().items()
                                     if k.startswith("features.")})
    x = torch.randn(2, 3, 64, 64)
    want = _outputs(theirs.backbone, x)["out" if name.startswith("deeplab") else "high"]
    assert_depends_on_input(want, name, atol=1e-5)
    assert_close_outputs(_outputs(body, x)["out"], want, name, atol=1e-5)


def test_export_with_weights_refuses_python_source(hub, tmp_path) -> None:
    from archspec.backends.exporters import ExportError

    with pytest.raises(ExportError, match="python export writes no weights"):
        archspec.export("resnet18", tmp_path / "r.py", weights="IMAGENET1K_V1")


@pytest.mark.slow
def test_onnx_export_with_weights_computes_torchvisions_outputs(hub, tmp_path) -> None:
    import onnxruntime

    torch.manual_seed(0)
    reference = tvm.resnet18()
    randomise(reference)
    calibrate_norms(reference.eval(), torch.randn(8, 3, 64, 64))
    put(hub, "resnet18", reference.state_dict())
    path = archspec.export("resnet18", tmp_path / "r.onnx", weights="IMAGENET1K_V1")
    x = torch.randn(2, 3, 224, 224)  # the exported input size
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    want = _outputs(reference, x)["out"]
    assert_depends_on_input(want, "resnet18 onnx", atol=1e-4)
    assert_close_outputs(torch.from_numpy(ours), want, "resnet18 onnx", atol=1e-4)


# Detector backbone spec -> (torchvision's detector builder, the weights_backbone entry it is given, the
# side of the test image, which of the backbone's tensors torchvision takes from the classifier (the rest
# it initialises: FPN, extra blocks, SSD's fc6/fc7 and L2 scale), the classifier's tensors it leaves out).
# SSD300 runs at its own 300 pixels: its last maps come from unpadded 3x3 convs (1x1 at 300).
_RESNET_FC = ["fc.weight", "fc.bias"]
_MOBILENET_HEAD = ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]
DETECTION = {
    "retinanet_resnet50_fpn_backbone": (det.retinanet_resnet50_fpn, "IMAGENET1K_V1", 64, r"body\.", _RESNET_FC),
    "retinanet_resnet50_fpn_v2_backbone": (det.retinanet_resnet50_fpn_v2, "IMAGENET1K_V2", 64, r"body\.", _RESNET_FC),
    "fasterrcnn_mobilenet_v3_large_fpn_backbone": (
        det.fasterrcnn_mobilenet_v3_large_fpn, "IMAGENET1K_V1", 64, r"body\.", _MOBILENET_HEAD),
    "fasterrcnn_mobilenet_v3_large_320_fpn_backbone": (
        det.fasterrcnn_mobilenet_v3_large_320_fpn, "IMAGENET1K_V2", 64, r"body\.", _MOBILENET_HEAD),
    # torchvision's _vgg_extractor: features up to conv4_3, then extra[0] = conv5's layers (0-6) and a new fc (7)
    "ssd300_vgg16_backbone": (det.ssd300_vgg16, "IMAGENET1K_FEATURES", 300, r"features\.|extra\.0\.[0-6]\.",
                              [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]),
    # torchvision's _mobilenet_extractor: features.0 ends with block 13's expansion, features.1 has the rest
    "ssdlite320_mobilenet_v3_large_backbone": (
        det.ssdlite320_mobilenet_v3_large, "IMAGENET1K_V1", 128, r"features\.", _MOBILENET_HEAD),
}
SLOW_DETECTION = {"retinanet_resnet50_fpn_backbone", "retinanet_resnet50_fpn_v2_backbone", "ssd300_vgg16_backbone"}


def _thawed(module: torch.nn.Module) -> torch.nn.Module:
    """A copy with torchvision's FrozenBatchNorm2d (what its detectors use with weights_backbone) as
    BatchNorm2d of the same tensors and eps: a layout `load_torchvision` pairs."""
    module = copy.deepcopy(module)
    for name, frozen in list(module.named_modules()):
        if isinstance(frozen, FrozenBatchNorm2d):
            norm = torch.nn.BatchNorm2d(frozen.weight.numel(), eps=frozen.eps)
            norm.load_state_dict({**frozen.state_dict(), "num_batches_tracked": torch.tensor(0)})
            parent, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(parent), leaf, norm)
    return module


def _randomise_all_but(module: torch.nn.Module, kept: str) -> None:
    """`randomise` the tensors whose names do not match `kept` (the parts the builder initialised)."""
    saved = {k: v.clone() for k, v in module.state_dict().items() if re.match(kept, k)}
    randomise(module)
    module.load_state_dict(saved, strict=False)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_DETECTION else n
                                  for n in DETECTION])
def test_weights_backbone_fill_the_detection_backbones_as_torchvisions_builders(name: str, hub) -> None:
    """archspec.build(NAME, weights=<weights_backbone entry>) equals torchvision's detector built with
    that weights_backbone (the same classifier file, read from the hub cache by torchvision's builder:
    frozen batch norm, SSDlite's full tail), every output of the backbone, with perturbed norms."""
    detector, weights, side, from_classifier, head = DETECTION[name]
    entry = next(e for e in archspec.load_spec(name).model.weights if e.name == weights)
    torch.manual_seed(0)
    classifier = tvm.get_model(entry.arch)
    randomise(classifier)
    # Statistics measured at eps 1e-5: the builders that freeze a backbone give it FrozenBatchNorm2d at its
    # default 1e-5, MobileNet-v3 included (whose own eps is 1e-3). Measured at 1e-3, the depthwise convs'
    # variances (1e-6 to 1e-4, under that eps) would be normalised up to 10 times more in the detector at
    # each block, and Faster R-CNN's outputs grow to 1e4. (SSDlite keeps MobileNet-v3's 1e-3.)
    for norm in classifier.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.eps = 1e-5
    calibrate_norms(classifier.eval(), torch.randn(8, 3, 64, 64))
    put(hub, entry.arch, classifier.state_dict(), weights)
    theirs = detector(weights=None, weights_backbone=tvm.get_model_weights(entry.arch)[weights]).backbone.eval()
    _randomise_all_but(theirs, from_classifier)
    calibrate_norms(theirs, torch.randn(8, 3, side, side), f"(?!{from_classifier})")  # SSDlite's extra blocks
    with pytest.warns(WeightsWarning):  # the parts torchvision initialises are not in the file
        ours = archspec.build(name, weights=weights)
    report = ours.archspec_weights
    assert report.unused == head
    assert len(report.loaded) == len(classifier.state_dict()) - len(head)
    # Everything else from torchvision's backbone (its own initialisation): then the outputs must agree.
    donor = archspec.build(name, init_weights=False, **entry.set)
    load_torchvision(donor, _thawed(theirs))
    wanted = donor.state_dict()
    mine = ours.state_dict()
    for key in report.loaded:  # each classifier tensor where torchvision's builder put it
        if mine[key].is_floating_point():  # not num_batches_tracked (frozen batch norm keeps none)
            assert torch.equal(mine[key], wanted[key]), key
    ours.load_state_dict({k: wanted[k] for k in report.skipped}, strict=False)
    x = torch.randn(2, 3, side, side)
    got, want = _outputs(ours, x), _outputs(theirs, x)
    assert list(got) == list(want) and len(want) >= 3
    # 1e-4 where torchvision freezes batch norm: its own rounding (its rsqrt) is 1.8e-5 of RetinaNet's outputs,
    # as far from torchvision's module with BatchNorm2d of the same tensors as from archspec's; elsewhere the
    # outputs agree bit for bit (SSD300 has no batch norm, SSDlite keeps BatchNorm2d)
    frozen = any(isinstance(m, FrozenBatchNorm2d) for m in theirs.modules())
    atol = 1e-4 if frozen else 1e-5
    for key in want:
        assert_depends_on_input(want[key], f"{name}[{key}]", atol)
        assert_close_outputs(got[key], want[key], f"{name}[{key}]", atol)


def test_a_safetensors_file_of_a_deep_resnet_pairs_each_block_with_its_own(tmp_path) -> None:
    # safetensors keeps names sorted as text (layer3.10 before layer3.2); read back, numbers order
    # as numbers, so that pairing by module and kind gives ResNet-101's 23 third-stage blocks each
    # its own weights (checked on the meta device: shapes and names, no values)
    from safetensors.torch import save_file

    from archspec.interop.torchvision import pair_state
    from archspec.weights.files import natural_key, read

    path = tmp_path / "order.safetensors"
    save_file({name: torch.zeros(1) for name in ("layer3.10.w", "layer3.2.w", "fc.w", "layer3.1.w")}, str(path))
    assert list(read(path, "safetensors")[0]) == ["fc.w", "layer3.1.w", "layer3.2.w", "layer3.10.w"]
    with torch.device("meta"):
        ours, theirs = archspec.build("resnet101").state_dict(), tvm.resnet101().state_dict()
    as_read = {name: theirs[name] for name in sorted(theirs, key=natural_key)}
    pairs = pair_state(ours, as_read, "ResNet")
    blocks = [(mine, other) for mine, other in pairs if mine.startswith("stages.")]
    assert len(blocks) > 300
    for mine, other in blocks:  # stages.S.blocks.B.x is torchvision's layer{S+1}.B.x
        _, stage, _, block, rest = mine.split(".", 4)
        assert other.startswith(f"layer{int(stage) + 1}.{block}."), (mine, other)


def test_a_torchvision_file_fine_tuned_to_other_classes_loads_into_that_many(tmp_path) -> None:
    # torchvision's resnet18(num_classes=10), trained and saved: archspec's resnet18 with 10 classes
    # takes every tensor, head included, and computes what it computes
    torch.manual_seed(0)
    tuned = tvm.resnet18(num_classes=10).eval()
    randomise(tuned)
    path = tmp_path / "resnet18_ft10.pth"
    torch.save(tuned.state_dict(), path)
    model = archspec.build("resnet18", num_classes=10, weights=str(path)).eval()
    assert not model.archspec_weights.skipped and len(model.archspec_weights.loaded) == len(tuned.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_close_outputs(model(x), tuned(x), "resnet18, 10 classes")


def test_a_file_saved_before_batch_norm_counted_its_steps_loads(tmp_path) -> None:
    # PyTorch < 0.4.1 saved no `num_batches_tracked` (torchvision's first ResNet files): such a file did
    # not pair with the network at all ("tensor #5 disagrees"); torch loads it, the counts left at 0
    torch.manual_seed(0)
    reference = tvm.resnet18()
    randomise(reference)
    calibrate_norms(reference.eval(), torch.randn(4, 3, 64, 64))
    path = tmp_path / "resnet18-old.pth"
    torch.save({k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    model = archspec.build("resnet18", weights=str(path)).eval()
    assert model.archspec_weights.skipped == {}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_close_outputs(model(x), reference(x), "resnet18", atol=1e-5)
