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


@pytest.mark.parametrize("name, enum", [("resnet50", tvm.ResNet50_Weights.IMAGENET1K_V2),       # bilinear
                                        ("efficientnet_b3", tvm.EfficientNet_B3_Weights.IMAGENET1K_V1)])  # bicubic
def test_a_uint8_tensor_is_preprocessed_as_torchvision_does(name: str, enum) -> None:
    # torchvision resizes a uint8 image in whole levels 0..255 (bicubic overshoots them, and is clamped):
    # before, archspec kept the float result, 0.6 off after normalising (0.009 for bilinear)
    picture = torch.from_numpy(np.array(image(301, 457, seed=1))).permute(2, 0, 1).contiguous()
    assert torch.equal(archspec.transforms(name)(picture), enum.transforms()(picture))


def test_one_channel_weights_read_images_in_grayscale(tmp_path) -> None:
    # a digit classifier's normalisation has one channel: an image file (RGB or not) is read as
    # grayscale, as torchvision's preset takes a grayscale PIL image
    from torchvision.transforms._presets import ImageClassification

    from archspec.spec.weights import Transforms
    from archspec.weights.transforms import Preprocess

    path = tmp_path / "digit.png"
    image(40, 30, seed=2).save(path)
    ours = Preprocess(Transforms(resize=32, crop=28, mean=(0.1307,), std=(0.3081,)))
    theirs = ImageClassification(crop_size=28, resize_size=32, mean=(0.1307,), std=(0.3081,))
    expected = theirs(Image.open(path).convert("L"))
    assert expected.shape == (1, 28, 28) and torch.equal(ours(path), expected) and torch.equal(ours(Image.open(path)), expected)


def test_an_image_past_pils_size_limit_is_a_located_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 100 x 100 image is then a decompression bomb
    path = tmp_path / "big.png"
    image(100, 100).save(path)
    with pytest.raises(WeightsError, match="big.png: too large an image to read"):
        archspec.transforms("resnet50")(path)


@pytest.mark.slow  # four resnet18 builds: ~8 s on the shared 2-core machine
def test_predict_refuses_weights_that_leave_tensors_unloaded_and_reads_a_checkpoint(tmp_path) -> None:
    # A 10-class checkpoint under the 1,000-class spec, or the 1,000-class weights under --set
    # num_classes=10, left the head at its random init, and predict labelled noise (exit 0). A
    # deployed checkpoint as weights loaded 24 of 351 tensors of a RepVGG. Now: refused; and a
    # checkpoint, deployed or not, is predicted from as the network it holds.
    path = tmp_path / "picture.png"
    image(64, 80, seed=3).save(path)
    torch.manual_seed(0)
    model = archspec.build("resnet18").eval()
    randomise(model)
    ten = tmp_path / "ten.safetensors"
    archspec.save(archspec.build("resnet18", num_classes=10), ten)
    with pytest.raises(WeightsError, match="2 of 122 did not load from .*ten.safetensors"):
        archspec.predict("resnet18", str(path), weights=str(ten))
    whole, deployed = tmp_path / "whole.safetensors", tmp_path / "deployed.safetensors"
    archspec.save(model, whole)
    archspec.save(archspec.deploy(model), deployed)
    with pytest.raises(WeightsError, match="did not load"):
        archspec.predict("resnet18", str(path), weights=str(whole), num_classes=10)
    with pytest.raises(WeightsError, match="holds a deployed network"):
        archspec.predict("resnet18", str(path), weights=str(deployed))
    with torch.no_grad():
        expected = model(archspec.transforms("resnet18")(path)[None]).softmax(1)[0]
    for checkpoint in (whole, deployed):
        (category, probability), = archspec.predict(str(checkpoint), str(path), top=1)
        index = int(expected.argmax())
        assert category == tvm.ResNet18_Weights.DEFAULT.meta["categories"][index]
        assert abs(probability - float(expected[index])) < 1e-4


def test_predict_refuses_outputs_that_are_not_numbers(tmp_path) -> None:
    # NaN scores gave `nan%` (exit 0), and --json stopped halfway with an internal error
    spec = {"name": "tiny", "input": {"channels": 3, "size": 16}, "num_classes": 4,
            "stem": [{"conv": {"out": 4, "kernel": 3}}], "head": ["global_pool", "flatten", {"linear": 4}],
            "weights": [{"name": "W", "url": "https://example.org/tiny.pth", "categories": ["a", "b", "c", "d"],
                         "transforms": {"resize": 16, "crop": 16}, "layout": {"format": "archspec"}}]}
    model = archspec.build(spec, weights=None)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        linear.bias[2] = float("nan")
    model.archspec_weights_name = "W"
    path = tmp_path / "picture.png"
    image(20, 20).save(path)
    with pytest.raises(archspec.ArgumentError, match="not finite numbers .*picture.png"):
        archspec.predict(model, [str(path)])
