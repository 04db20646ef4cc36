"""Which zoo networks the heavy per-network tests (ONNX and .pt2 round trips, exported-source forward
passes, torchvision round trips) run on.

The zoo doubled with issue 14. Each of the 36 networks it added is checked against torchvision in
full (tests/test_zoo_torchvision.py) and by every cheap per-network test (analysis against the meta
module, diagrams, schema, exported-source keys). The heavy tests exporters run on one representative
per new family: a variant differs from its representative only in widths, depths and rates (its spec
is `extends` plus `vars`), so it builds from the same block families and ops, and an exporter that
handles the representative emits the same code for it with other numbers (the test
`test_variants_use_what_their_representative_uses` holds each variant to that). The five
representatives' ONNX and .pt2 round trips took 10 to 25 s each on the shared 2-core machine; the 31
variants are mostly larger (up to 645M parameters), so exporting them all would add well over 10
worker-minutes, and more scratch space than the README promises (regnet_y_128gf's ONNX file alone is
2.6 GB), to find nothing more.
The networks before issue 14 follow the same rule since the zoo reached 95 networks and the whole
suite passed its 15-minute budget: VGG-13/16/19 stand on VGG-11 (with and without batch norm),
ResNet-101/152 and Wide ResNet-50-2 on ResNet-50, EfficientNet-B1 to B7 on B0 (their ONNX and .pt2
round trips alone took about 330 worker-seconds). Issue 20's dense-prediction networks follow the
same rule: the ResNet-101 segmentation models, the 320-pixel Faster R-CNN backbone and RetinaNet's v2
backbone stand for themselves in tests/test_zoo_segmentation.py and tests/test_zoo_detection.py, and
their representatives in the heavy tests.
"""

from __future__ import annotations

from typing import Any

import pytest

import archspec

# The re-parameterisable networks (issue 24), checked against timm (tests/test_zoo_reparam.py).
TIMM_VARIANTS: dict[str, str] = {"repvgg_a2": "repvgg_a0", "repvgg_b0": "repvgg_a0", "mobileone_s1": "mobileone_s0"}

# variant -> the network that stands for it in the heavy per-network tests
REPRESENTATIVE: dict[str, str] = {
    **TIMM_VARIANTS,
    **{n: "vgg11" for n in ("vgg13", "vgg16", "vgg19")},
    **{n: "vgg11_bn" for n in ("vgg13_bn", "vgg16_bn", "vgg19_bn")},
    **{n: "resnet50" for n in ("resnet101", "resnet152", "wide_resnet50_2")},
    **{f"efficientnet_b{i}": "efficientnet_b0" for i in range(1, 8)},
    **{n: "resnext50_32x4d" for n in ("resnext101_32x8d", "resnext101_64x4d")},
    "wide_resnet101_2": "resnet50",
    **{n: "densenet121" for n in ("densenet161", "densenet169", "densenet201")},
    **{n: "convnext_tiny" for n in ("convnext_small", "convnext_base", "convnext_large")},
    "squeezenet1_0": "squeezenet1_1",
    **{f"regnet_x_{s}": "regnet_x_400mf" for s in ("800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")},
    **{f"regnet_y_{s}": "regnet_y_400mf" for s in ("800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")},
    **{f"shufflenet_v2_x{s}": "shufflenet_v2_x0_5" for s in ("1_0", "1_5", "2_0")},
    **{f"mnasnet{s}": "mnasnet0_5" for s in ("0_75", "1_0", "1_3")},
    **{f"efficientnet_v2_{s}": "efficientnet_v2_s" for s in ("m", "l")},
    # issue 20's dense-prediction networks: a deeper ResNet, another input size, p6 from C5 not P5
    "fcn_resnet101": "fcn_resnet50",
    "deeplabv3_resnet101": "deeplabv3_resnet50",
    "fasterrcnn_mobilenet_v3_large_320_fpn_backbone": "fasterrcnn_mobilenet_v3_large_fpn_backbone",
    "retinanet_resnet50_fpn_v2_backbone": "retinanet_resnet50_fpn_backbone",
    # issue 21: the attention networks (ViT-L and ViT-H are 304M to 632M parameters)
    **{n: "vit_b_16" for n in ("vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14")},
    **{n: "swin_t" for n in ("swin_s", "swin_b")},
    **{n: "swin_v2_t" for n in ("swin_v2_s", "swin_v2_b")},
}
# The variants above whose representative is not one of issue 14's classifiers.
DENSE_VARIANTS = ("fcn_resnet101", "deeplabv3_resnet101", "fasterrcnn_mobilenet_v3_large_320_fpn_backbone",
                  "retinanet_resnet50_fpn_v2_backbone")

# every zoo network but the variants above
EXPORTED: list[str] = [name for name in archspec.zoo.names() if name not in REPRESENTATIVE]

# Networks whose per-network cases (parity with torchvision, analysis against the meta module,
# torchvision round trips, layer-level diagrams) take over ~5 s on the shared 2-core machine:
# those cases run in the slow tier. Every family keeps lighter members in the fast tier.
HEAVY = {"vgg11", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet101", "resnet152",
         "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_m", "efficientnet_v2_l",
         "densenet161", "densenet169", "densenet201", "convnext_base", "convnext_large", "resnext101_32x8d",
         "resnext101_64x4d", "wide_resnet101_2", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_3_2gf",
         "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf", "inception_v3", "deeplabv3_resnet50",
         "fcn_resnet50", "lraspp_mobilenet_v3_large", "fcn_resnet101", "deeplabv3_resnet101",
         "retinanet_resnet50_fpn_backbone", "retinanet_resnet50_fpn_v2_backbone", "ssd300_vgg16_backbone",
         "fasterrcnn_mobilenet_v3_large_fpn_backbone", "fasterrcnn_mobilenet_v3_large_320_fpn_backbone",
         # issue 21: 28M to 632M parameters; the fast tier has small ones (tests/test_zoo_attention.py)
         "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14", "swin_t", "swin_s", "swin_b", "swin_v2_t",
         "swin_v2_s", "swin_v2_b", "maxvit_t",
         # issue 20: segmentation_models_pytorch's (tests/test_zoo_smp.py)
         "unet_resnet34", "deeplabv3plus_resnet50", "fpn_resnet34"}


def tiered(names: list[str]) -> list:
    """`names` as parameters, the HEAVY ones marked slow (none is dropped: the list never shrinks)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


# The smallest input some networks accept, where a test would otherwise run them below it: Inception
# v3's auxiliary head pools 5x5/3; Swin and MaxViT partition 7x7 windows after a 32x downsampling
# (224 = 32 * 7), Swin v2 8x8 ones (256); SSD300's extra layers need 268 (archspec's analysis names it).
SMALLEST_INPUT: dict[str, int] = {
    "inception_v3": 299, "ssd300_vgg16_backbone": 268, "maxvit_t": 224,
    **{n: 224 for n in ("swin_t", "swin_s", "swin_b")}, **{n: 256 for n in ("swin_v2_t", "swin_v2_s", "swin_v2_b")},
}


def input_side(name: str, native: int, cap: int) -> int:
    """The side a test runs `name` at: its `native` size capped at `cap`, never below what it accepts."""
    return max(min(native, cap), SMALLEST_INPUT.get(name, 0))



def _block_key(block: Any) -> tuple:
    """What a block emits, all of it but its stochastic-depth rate (a stage schedules a rate per block,
    and in eval mode, where the heavy tests run, the rate does nothing): its family, input shapes, and
    every node's name, op (with all its parameters), inputs and output shape."""
    graph = block.graph.with_rate(0.0)
    nodes = tuple((n.name, n.op, n.inputs, n.shape) for n in graph.nodes)
    return (block.family, graph.in_shape, tuple(graph.more_inputs), nodes, graph.output,
            tuple(sorted(graph.outputs.items())))


def shortest_stages(net: Any) -> dict[str, int]:
    """Overrides (`stages.2.repeat: 3`) that cut each stage of `net` to the shortest run of its first
    blocks that holds every distinct block of the stage; stages that are already as short are left out.

    A stage repeats a few blocks: ResNet-50's third stage is one block that halves the map and widens it
    followed by five equal ones; Swin's alternates unshifted and shifted windows after its patch-merging
    first block (three distinct blocks); ViT's twelve encoder layers are one layer twelve times. An
    exporter translates each distinct block the same way wherever it stands, so a network cut this way
    puts every op and every configuration of it (every shape, stride, shift, dilation, width) through the
    exporter, in a fraction of the time. DenseNet's layers all differ (each reads more channels): it is
    not cut at all."""
    overrides: dict[str, int] = {}
    for stage in net.stages:
        keys = [_block_key(b) for b in stage.blocks]
        distinct = set(keys)
        keep = next(k for k in range(1, len(keys) + 1) if set(keys[:k]) == distinct) if keys else 0
        if keep < len(keys):
            assert len(stage.origin) == 2 and stage.origin[0] == "stages", stage.origin
            overrides[f"stages.{stage.origin[1]}.repeat"] = keep
    return overrides


def shortened(spec: Any) -> Any:
    """`spec` with its stages cut by `shortest_stages`, checked to be the same network but for the
    repeats it drops: the same distinct blocks, and the same stem, heads, necks and output shapes."""
    net = spec.network()
    overrides = shortest_stages(net)
    if not overrides:
        return spec
    short = spec.with_overrides(**overrides)
    cut = short.network()
    assert {_block_key(b) for s in cut.stages for b in s.blocks} == {_block_key(b) for s in net.stages for b in s.blocks}
    others = {p.path: p.graph for p in net.parts() if p.group != "stages"}
    assert {p.path: p.graph for p in cut.parts() if p.group != "stages"} == others
    assert cut.output_shape == net.output_shape and len(cut.stages) == len(net.stages)
    assert _taps(cut) == _taps(net)
    return short


def _taps(net: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    """Each tap's name, what it reads (`stages.3`) and the shape of what it returns."""
    graphs = {p.path: p.graph for p in net.parts()}
    return [(t.name, t.path, graphs[t.graph_path].shape_of(t.node)) for t in net.taps]
