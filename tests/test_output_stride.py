"""`output_stride` and `dilate`: later strides become dilation exactly as torchvision's
`replace_stride_with_dilation` (ResNet) and `dilated=True` (MobileNet-v3) set them."""

from __future__ import annotations

import pytest
import torch
import torchvision

import archspec
from archspec.analysis import analyze_network
from archspec.spec.load import to_network
from archspec.core.errors import SpecError
from archspec.interop import load_torchvision
from tests.analysis_helpers import measure_region, spec


def perturb_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Norm weights, biases and running statistics away from the identity (batch norm is not a no-op)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def convs(model: torch.nn.Module) -> list[tuple]:
    """(in, out, kernel, stride, padding, dilation, groups) of every conv, in registration order."""
    return [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups)
            for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.fixture(scope="module")
def resnet50_os8() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True]).eval()
    perturb_norms(ref)
    return ref


def assert_same_network(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Every conv's geometry (strides, paddings and dilations, block by block), the parameter
    count, and the output for the reference's weights."""
    assert convs(ours) == convs(reference)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    load_torchvision(ours, reference)
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-4)


def test_resnet50_output_stride_8_equals_torchvision(resnet50_os8: torch.nn.Module) -> None:
    assert_same_network(archspec.build("resnet50", output_stride=8), resnet50_os8)


def test_analysed_shapes_follow_the_dilated_module(resnet50_os8: torch.nn.Module) -> None:
    """Each stage's analysed output shape is what torchvision's layer returns (224 input: 56, 28, 28, 28)."""
    report = archspec.analyze("resnet50", output_stride=8)
    seen = {}
    hooks = [getattr(resnet50_os8, f"layer{k}").register_forward_hook(
        lambda m, a, out, k=k: seen.__setitem__(k - 1, tuple(out.shape[1:]))) for k in range(1, 5)]
    with torch.device("meta"):
        resnet50_os8.to("meta")(torch.empty(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    net = to_network("resnet50", output_stride=8)
    assert [stage.out_shape for stage in net.stages] == [seen[k] for k in range(4)]
    assert [stage.out_shape for stage in net.stages] == [(256, 56, 56), (512, 28, 28), (1024, 28, 28), (2048, 28, 28)]
    assert report.receptive_field.stride == (8, 8)
    # The same field as the undilated network: dilation 2 at stride 16 spans what stride 32 did.
    assert report.receptive_field.size == archspec.analyze("resnet50").receptive_field.size


@pytest.mark.parametrize("output_stride, dilate", [(16, [False, False, True]), (8, [False, True, True])])
def test_output_stride_equals_the_per_stage_form_and_torchvision(output_stride: int, dilate: list[bool]) -> None:
    by_stride = archspec.build("resnet50", output_stride=output_stride, init_weights=False)
    per_stage = archspec.build("resnet50", init_weights=False,
                               **{f"stages.{i + 1}.dilate": flag for i, flag in enumerate(dilate)})
    with torch.device("meta"):
        ref = torchvision.models.resnet50(replace_stride_with_dilation=dilate)
    assert convs(by_stride) == convs(per_stage) == convs(ref)


def test_mobilenet_v3_output_stride_16_equals_torchvisions_dilated_backbone() -> None:
    ours = archspec.build("mobilenet_v3_large", output_stride=16, init_weights=False)
    with torch.device("meta"):
        ref = torchvision.models.mobilenet_v3_large(dilated=True)
    assert convs(ours) == convs(ref)
    assert to_network("mobilenet_v3_large", output_stride=16).stages[-1].out_shape == (160, 14, 14)


def test_dilated_field_equals_autograd() -> None:
    """A small dilated bottleneck network: the analysed field is the measured one."""
    s = dict(spec([{"block": "bottleneck", "out": 8, "expansion": 2, "stride": 2},
                   {"block": "bottleneck", "out": 8, "expansion": 2, "stride": 2, "repeat": 2}], size=40),
             output_stride=2, defaults={"norm": "batch", "activation": "relu"})
    net = to_network(s)
    assert net.stages[1].out_shape == (8, 20, 20)
    layer = "stages.1.blocks.1.relu"
    rf = analyze_network(net).layer(layer).rf
    # 1 + 2 (3x3/2) + 4 (3x3 at stride 2, the first block's previous dilation 1) + 8 (dilation 2 at stride 2)
    assert (rf.stride, rf.size) == ((2, 2), (15, 15))
    assert measure_region(net, layer, (10, 9)) == rf.region((10, 9))


@pytest.mark.parametrize("overrides, message, where", [
    ({"output_stride": 12}, "output_stride: 12 cannot be reached: .* at stride 8", "output_stride"),
    ({"output_stride": 64}, "output_stride: 64 cannot be reached: .* at stride 32", "output_stride"),
    ({"output_stride": 16, "extends": "resnet18.yaml"}, "stage 3's stride 2 .* block type 'basic' cannot dilate",
     "stages[3]"),
    ({"stages.2.dilate": True, "extends": "resnet18.yaml"}, "dilate: true would trade stage 2's stride", "stages[2]"),
])
def test_unreachable_output_stride_is_a_located_error(overrides: dict, message: str, where: str) -> None:
    """torchvision's BasicBlock refuses dilation too ("Dilation > 1 not supported in BasicBlock")."""
    overrides = dict(overrides)
    base = overrides.pop("extends", "resnet50")
    with pytest.raises(SpecError, match=message) as err:
        to_network(base.removesuffix(".yaml"), **overrides)
    assert where in str(err.value)


def test_googlenet_strides_inside_a_layer_cannot_become_dilation() -> None:
    with pytest.raises(SpecError, match="output_stride: 16 cannot be reached"):
        to_network("googlenet", output_stride=16)


YAML_RESNET50 = "docs/examples/resnet50_yaml_blocks.yaml"


def test_yaml_blocks_dilate_as_torchvision() -> None:
    """A ResNet-50 whose bottleneck is written in YAML (reading ${dilation}) at output stride 8 is
    torchvision's resnet50(replace_stride_with_dilation=[False, True, True]): every conv's geometry,
    the parameter count and the output for the same weights."""
    torch.manual_seed(1)
    resnet50_os8 = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True]).eval()
    perturb_norms(resnet50_os8, seed=1)  # the module's fixture is moved to the meta device by a test above
    assert_same_network(archspec.build(YAML_RESNET50, output_stride=8), resnet50_os8)
    net = to_network(YAML_RESNET50, output_stride=8)
    assert [stage.out_shape for stage in net.stages] == [(256, 56, 56), (512, 28, 28), (1024, 28, 28), (2048, 28, 28)]


def test_yaml_block_first_dilation_new_follows_the_stage() -> None:
    """`first_block_dilation: new` gives a dilated stage's first block the stage's own dilation."""
    previous = to_network(YAML_RESNET50, output_stride=8)
    new = to_network(YAML_RESNET50, output_stride=8, **{"blocks.bottleneck_yaml.first_block_dilation": "new"})

    def dilations(net):
        return [n.op.dilation for s in net.stages for b in s.blocks[:2] for n in b.graph.nodes if n.name == "main.conv2"]

    # torchvision's rule (previous): stage 2's first block at 1, stage 3's at 2; the rest at 2 and 4
    assert dilations(previous) == [1, 1, 1, 1, 1, 2, 2, 4]
    assert dilations(new) == [1, 1, 1, 1, 2, 2, 4, 4]


def test_a_yaml_block_that_never_reads_dilation_cannot_dilate() -> None:
    text = open(YAML_RESNET50).read().replace('padding: "${dilation}", dilation: "${dilation}"', "padding: 1")
    text = text.replace("    first_block_dilation: previous   # a dilated stage's first block keeps the dilation before it\n", "")
    with pytest.raises(SpecError, match="stage 2's stride 2 .* block type 'bottleneck_yaml' cannot dilate"):
        to_network(text, output_stride=8)
