"""Preprocessing and prediction with published weights, offline: `archspec.transforms` equals
torchvision's `weights.transforms()` to the bit, and `predict` ranks categories as torchvision's
model (given the same file) does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

import archspec
from archspec.weights import WeightsError
from clirun import run_cli
from parity import randomise

pytestmark = pytest.mark.usefixtures("no_network")


def image(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("name, weights, enum", [
    ("resnet50", "IMAGENET1K_V2", tvm.ResNet50_Weights.IMAGENET1K_V2),        # resize 232, crop 224
    ("efficientnet_b3", "IMAGENET1K_V1", tvm.EfficientNet_B3_Weights.IMAGENET1K_V1),  # bicubic 320 / 300
    ("vgg16", "IMAGENET1K_FEATURES", tvm.VGG16_Weights.IMAGENET1K_FEATURES),  # another mean and std
    ("fcn_resnet50", "COCO_WITH_VOC_LABELS_V1", None),                        # no crop
])
def test_transforms_equal_torchvisions_presets(name: str, weights: str, enum) -> None:
    if enum is None:
        from torchvision.models.segmentation import FCN_ResNet50_Weights

        enum = FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1
    ours, theirs = archspec.transforms(name, weights), enum.transforms()
    for h, w in ((300, 451), (517, 240)):
        picture = image(h, w)
        assert torch.equal(ours(picture), theirs(picture)), (name, h, w)
    tensor = torch.rand(3, 301, 405)
    assert torch.allclose(ours(tensor), theirs(tensor), atol=1e-5)


def test_transforms_of_a_spec_without_weights_is_an_error() -> None:
    with pytest.raises(WeightsError, match="lenet5 has no default weights"):
        archspec.transforms("lenet5")


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_predict_ranks_as_torchvision_does(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)
    reference = tvm.mobilenet_v3_small().eval()
    randomise(reference)
    with torch.no_grad():  # distinct, confident scores: no ties for the ranking to break either way
        reference.classifier[-1].weight.mul_(300)
    torch.save(reference.state_dict(), hub / "mobilenet_v3_small-047dcff4.pth")
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"picture{i}.png")
        image(240, 320, seed=i).save(paths[-1])
    found = archspec.predict("mobilenet_v3_small", [str(p) for p in paths], top=3)
    preprocess = tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        probs = reference(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])).softmax(1)
    categories = tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"]
    for row, mine in zip(probs, found):
        values, indices = row.topk(3)
        assert [c for c, _ in mine] == [categories[i] for i in indices]
        assert [p for _, p in mine] == pytest.approx(values.tolist(), abs=1e-6)
    built = archspec.build("mobilenet_v3_small", weights="DEFAULT")  # built once, one image: one list
    assert [c for c, _ in archspec.predict(built, paths[0], top=3)] == [c for c, _ in found[0]]
    code, out, err = run_cli("predict", "mobilenet_v3_small", str(paths[0]), "--top", "2", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["top"][0]["category"] == found[0][0][0]
    code, out, err = run_cli("predict", "mobilenet_v3_small", str(paths[0]))
    assert code == 0 and out.splitlines()[0] == str(paths[0]) and len(out.splitlines()) == 6
    assert out.splitlines()[1].startswith(f"  1. {found[0][0][0]}")
    code, out, err = run_cli("predict", "mobilenet_v3_small", str(tmp_path / "missing.png"))
    assert code == 2 and "missing.png: no such file" in err


def test_a_head_fine_tuned_to_other_classes_is_not_labelled_with_the_published_names(tmp_path) -> None:
    # a 3-class head on ImageNet weights: its outputs are classes 0 to 2, not 'tench', 'goldfish', ...
    torch.manual_seed(0)
    model = archspec.build("mobilenet_v3_small", num_classes=3)
    model.archspec_weights_name = "DEFAULT"  # as after build(..., weights="DEFAULT"): its preprocessing, its names
    path = tmp_path / "picture.png"
    image(64, 64, seed=0).save(path)
    found = archspec.predict(model, str(path), top=3)
    assert sorted(c for c, _ in found) == ["class 0", "class 1", "class 2"]
