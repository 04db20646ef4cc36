"""The `inception` block family: branch notation, shapes, parameters and errors; the `valid` and
`count_include_pad` options against timm's Inception-v4 modules, transcribed into plain torch.

Expected numbers are worked by hand from the notation's definition (conv without bias,
then BatchNorm with 2 parameters per channel; stride-1 windows keep the size, strided
windows are unpadded).
"""

from __future__ import annotations

import pytest

import archspec
from archspec.core.errors import SpecError


def _spec(branches, size=17, channels=8) -> dict:
    return {
        "name": "t",
        "input": {"channels": channels, "size": size},
        "stages": [{"block": "inception", "branches": branches}],
        "head": ["global_pool", "flatten", {"linear": 10}],
    }


def test_asymmetric_factorisation_keeps_the_grid():
    report = archspec.analyze(_spec(["1x1 4", ["1x1 4", "1x7 4", "7x1 6"], ["avgpool 3x3", "1x1 2"]]))
    block = [la for la in report.layers if la.group == "stages"]
    by_name = {la.name.split("blocks.0.")[1]: la for la in block}
    assert by_name["concat"].output_shape == (4 + 6 + 2, 17, 17)
    assert by_name["branch2.conv1"].label == "conv 1x7, 4->4"
    assert by_name["branch2.conv2"].label == "conv 7x1, 4->6"
    # conv 1x1 8->4 (32) + bn (8); 1x1 8->4 (32) + bn (8), 1x7 4->4 (112) + bn (8), 7x1 4->6 (168) + bn (12);
    # 1x1 8->2 (16) + bn (4)
    assert sum(la.params for la in block) == 40 + 40 + 120 + 180 + 20


def test_strided_branches_are_unpadded_like_the_grid_reductions():
    report = archspec.analyze(_spec(["3x3/2 16", ["1x1 4", "3x3 4", "3x3/2 4"], "maxpool 3x3/2"]))
    concat = report.layer("stages.0.blocks.0.concat")
    # (17 - 3) // 2 + 1 = 8; the pool branch passes the 8 input channels through.
    assert concat.output_shape == (16 + 4 + 8, 8, 8)


def test_split_tops_concatenate_inside_a_branch():
    report = archspec.analyze(_spec([["1x1 4", {"concat": ["1x3 5", "3x1 6"]}], "1x1 3"], size=8))
    assert report.layer("stages.0.blocks.0.branch1.concat1").output_shape == (11, 8, 8)
    assert report.layer("stages.0.blocks.0.branch1.conv1a").label == "conv 1x3, 4->5"
    assert report.layer("stages.0.blocks.0.concat").output_shape == (14, 8, 8)


def test_units_follow_the_spec_defaults():
    spec = _spec(["1x1 4", "3x3 4"])
    spec["defaults"] = {"norm": "none"}
    report = archspec.analyze(spec)
    convs = [la for la in report.layers if la.op == "conv"]
    assert [la.params for la in convs] == [8 * 4 + 4, 8 * 9 * 4 + 4]  # with bias, no norm
    assert not any(la.op == "norm" for la in report.layers)


@pytest.mark.parametrize("item, message", [
    ("3x3 abc", "is not a branch item"),
    ("maxpool 2x2", "odd kernel"),
    ("4x4 8", "odd kernel"),
    ("3x3 0", "must be positive"),
])
def test_bad_items_are_located_errors(item, message):
    with pytest.raises(SpecError) as err:
        archspec.load_spec(_spec(["1x1 4", ["1x1 4", item]]))
    text = str(err.value)
    assert "stages[0].branches[1][1]" in text and message in text


def test_a_fork_needs_two_branches():
    with pytest.raises(SpecError) as err:
        archspec.load_spec(_spec([["1x1 4", {"concat": ["1x3 5"]}]]))
    assert "stages[0].branches[0][1].concat" in str(err.value)


def test_compiled_parameters_follow_the_branch_order():
    """Positional weight loading needs the state_dict in execution order, even when a plain
    branch (one nn.Sequential) follows a split one (loose modules)."""
    model = archspec.build(_spec([["1x1 4", {"concat": ["1x3 5", "3x1 6"]}], "1x1 3"], size=8))
    convs = [k.split("blocks.0.")[1] for k in model.state_dict()
             if k.startswith("stages.") and ".conv" in k and k.endswith(".weight")]
    assert convs == ["branch1.conv0.weight", "branch1.conv1a.weight", "branch1.conv1b.weight", "branch2.conv.weight"]


def _unit(cin: int, cout: int, kernel, padding=0) -> list:
    """timm's Inception-v4 BasicConv2d: conv (no bias), BatchNorm2d(eps=0.001), ReLU."""
    import torch

    return [torch.nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), torch.nn.BatchNorm2d(cout, eps=0.001),
            torch.nn.ReLU()]


def test_unpadded_stride_1_convs_and_pools_that_skip_the_padding():
    """Inception-v4's Mixed_4a (unpadded stride-1 3x3 tops) and Inception-A's pool branch
    (`AvgPool2d(3, 1, 1, count_include_pad=False)`), as timm's inception_v4.py writes them,
    at a tenth of the widths; weights loaded by position, perturbed statistics, exact outputs."""
    import torch
    from torch import nn

    spec = {"name": "t", "input": {"channels": 16, "size": 9}, "defaults": {"norm_eps": 0.001},
            "stages": [{"block": "inception", "branches": [["1x1 6", "3x3 9 valid"],
                                                            ["1x1 6", "1x7 6", "7x1 6", "3x3 9 valid"]]},
                       {"block": "inception", "count_include_pad": False,
                        "branches": ["1x1 9", ["avgpool 3x3", "1x1 9"]]}]}
    assert archspec.analyze(spec).output_shape == (18, 7, 7)
    model = archspec.build(spec).eval()

    class Mixed4a(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branch0 = nn.Sequential(*_unit(16, 6, 1), *_unit(6, 9, 3))
            self.branch1 = nn.Sequential(*_unit(16, 6, 1), *_unit(6, 6, (1, 7), (0, 3)), *_unit(6, 6, (7, 1), (3, 0)),
                                         *_unit(6, 9, 3))

        def forward(self, x):
            return torch.cat([self.branch0(x), self.branch1(x)], 1)

    class InceptionA(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branch0 = nn.Sequential(*_unit(18, 9, 1))
            self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), *_unit(18, 9, 1))

        def forward(self, x):
            return torch.cat([self.branch0(x), self.branch3(x)], 1)

    reference = nn.Sequential(Mixed4a(), InceptionA()).eval()
    ours = [v for k, v in model.state_dict().items() if k.startswith("stages.")]
    theirs = reference.state_dict()
    assert [tuple(v.shape) for v in ours] == [tuple(v.shape) for v in theirs.values()]
    torch.manual_seed(0)
    for (key, value), mine in zip(theirs.items(), ours):
        mine.copy_(torch.rand_like(mine) + 0.5 if key.endswith(("running_var", "weight")) and mine.dim() == 1
                   else torch.randn_like(mine) if mine.is_floating_point() else mine)
        value.copy_(mine)
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        features = model.stages(model.stem(x))
        torch.testing.assert_close(features, reference(x), rtol=0, atol=0)
    # With the padding counted, the border means differ: the option reaches the module.
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert [p.count_include_pad for p in pools] == [False]


def test_valid_lifts_the_odd_kernel_rule():
    report = archspec.analyze(_spec([["1x1 4", "2x2 4 valid"], ["maxpool 2x2 valid", "1x1 4"]], size=8))
    assert report.layer("stages.0.blocks.0.concat").output_shape == (8, 7, 7)
