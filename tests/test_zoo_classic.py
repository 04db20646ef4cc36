"""The classic zoo equals its outside references: torchvision's models and the LeNet-5 seed."""

from __future__ import annotations

import pytest
import torch
import torchvision

import archspec
from tests.parity import assert_parity, count
from tests.zoo_tiers import tiered

# name -> (torchvision constructor, input shape for the output comparison). VGG and AlexNet
# end in adaptive pooling, so a smaller input checks the same weights at a fraction of the cost.
TORCHVISION = {
    "alexnet": (torchvision.models.alexnet, (3, 96, 96)),
    "vgg11": (torchvision.models.vgg11, (3, 64, 64)),
    "vgg13": (torchvision.models.vgg13, (3, 64, 64)),
    "vgg16": (torchvision.models.vgg16, (3, 64, 64)),
    "vgg19": (torchvision.models.vgg19, (3, 64, 64)),
    "vgg11_bn": (torchvision.models.vgg11_bn, (3, 64, 64)),
    "vgg13_bn": (torchvision.models.vgg13_bn, (3, 64, 64)),
    "vgg16_bn": (torchvision.models.vgg16_bn, (3, 64, 64)),
    "vgg19_bn": (torchvision.models.vgg19_bn, (3, 64, 64)),
    "resnet18": (torchvision.models.resnet18, (3, 224, 224)),
    "resnet34": (torchvision.models.resnet34, (3, 128, 128)),
    "resnet50": (torchvision.models.resnet50, (3, 224, 224)),
    "resnet101": (torchvision.models.resnet101, (3, 96, 96)),
    "resnet152": (torchvision.models.resnet152, (3, 96, 96)),
    "resnext50_32x4d": (torchvision.models.resnext50_32x4d, (3, 128, 128)),
    "wide_resnet50_2": (torchvision.models.wide_resnet50_2, (3, 96, 96)),
}


@pytest.mark.parametrize("name", tiered(sorted(TORCHVISION)))
def test_matches_torchvision(name: str) -> None:
    make, shape = TORCHVISION[name]
    reference = make(weights=None)
    model = assert_parity(name, reference, shape, **{"input.size": list(shape[1:])})
    # The documented parameter count of the pretrained weights' metadata, an independent source.
    documented = torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"]
    assert count(model) == documented


class LeNet5(torch.nn.Module):
    """The seed's LeNet-5 (Code Fragment 1 of the LeNet chapter), copied verbatim in structure."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, kernel_size=5), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, kernel_size=5), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(16 * 5 * 5, 120), torch.nn.ReLU(inplace=True),
            torch.nn.Linear(120, 84), torch.nn.ReLU(inplace=True), torch.nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def test_lenet5_matches_the_seed() -> None:
    model = assert_parity("lenet5", LeNet5(), (1, 32, 32), batch=4)
    assert count(model) == 61_706  # the seed's printed count
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_vgg19_has_the_documented_parameter_count() -> None:
    # The acceptance number, independent of torchvision.
    assert archspec.analyze("vgg19").params == 143_667_240


def test_load_torchvision_refuses_a_different_architecture() -> None:
    from archspec.interop import InteropError, load_torchvision

    model = archspec.build("resnet18")
    first_difference = r"tensor #\d+ disagrees: archspec 'stages\.1\.blocks\.0\.conv1\.weight' has shape \[128, 64, 3, 3\]"
    with pytest.raises(InteropError, match=first_difference):
        load_torchvision(model, torchvision.models.resnet34(weights=None))
    with pytest.raises(InteropError, match="tensors"):
        load_torchvision(model, {k: v for k, v in torchvision.models.resnet18().state_dict().items()
                                 if not k.startswith("fc.")})
