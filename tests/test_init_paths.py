"""`init.by_name`: a glob that matches no layer is a located error, and stage names work as in taps."""

from __future__ import annotations

import pytest
import torch

import archspec
from archspec.core.errors import SpecError

NAMED = {"name": "x", "extends": "resnet18", "stages": {1: {"name": "layer2"}}}


def test_a_stage_name_in_a_glob_is_the_stage() -> None:
    model = archspec.build({**NAMED, "init": {"by_name": {"stages.layer2.*": {"weight": "zeros"}}}})
    zeros = [name for name, p in model.named_parameters() if p.dim() == 4 and not p.abs().sum()]
    # every conv of stage 1 (ResNet-18's layer2: two blocks, two convs each, one projection), no other
    assert zeros == [f"stages.1.blocks.{b}.{c}.weight" for b, c in
                     [(0, "conv1"), (0, "conv2"), (0, "downsample.0"), (1, "conv1"), (1, "conv2")]]


@pytest.mark.parametrize("glob, hint", [("stages.9.*", ""), ("stages.layr2.*", "stages.layer2.*"),
                                        ("head.fcc", "head.fc"), ("necks.*", "")])
def test_a_glob_that_matches_nothing_is_a_located_error(glob: str, hint: str) -> None:
    with pytest.raises(SpecError, match=rf"init.by_name.{glob.replace('.', '[.]').replace('*', '[*]')}: "
                                        rf"'{glob.replace('.', '[.]').replace('*', '[*]')}' matches no conv, linear "
                                        "or norm layer") as err:
        archspec.load_spec({**NAMED, "init": {"by_name": {glob: {"weight": "zeros"}}}}).network()
    if hint:
        assert f"did you mean '{hint}'?" in str(err.value)


def test_an_aux_head_glob_may_match_nothing_when_the_head_is_switched_off() -> None:
    archspec.load_spec("inception_v3", **{"aux_heads.0.enabled": False}).network()  # aux_heads.*.fc stays
    with torch.device("meta"):
        archspec.build("inception_v3", init_weights=False, **{"aux_heads.0.enabled": False})


def test_a_head_glob_may_match_nothing_when_the_network_is_headless() -> None:
    """squeezenet1_1 initialises `head.final_conv` by name; as a backbone (`head=[]`) the rule has nothing
    to do, which is no typo. The same glob on the spec with its head is still checked."""
    assert archspec.analyze("squeezenet1_1", head=[]).params == 722_496  # torchvision's .features
    with pytest.raises(SpecError, match="matches no conv"):
        archspec.load_spec("squeezenet1_1", **{"init.by_name": {"head.final_cnv": {"weight": "zeros"}}}).network()
