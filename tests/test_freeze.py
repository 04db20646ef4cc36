"""Freezing parts (`freeze:` in a spec, `freeze=` in build): no gradient reaches them, their batch
norms keep their statistics while the rest trains, and `summary` counts what is frozen. The
expected counts are torch's own (`requires_grad`), and torchvision's `trainable_layers`."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

import archspec
from archspec.core.errors import ArgumentError, SpecError
from clirun import run_cli


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_frozen_parts_get_no_gradient_and_keep_their_statistics() -> None:
    torch.manual_seed(0)
    model = archspec.build("resnet18", num_classes=10, freeze=["stem", "stages.0"])
    model.train()
    frozen_bn, live_bn = model.stem.bn1, model.stages[1].blocks[0].bn1
    before = frozen_bn.running_mean.clone(), live_bn.running_mean.clone()
    loss = model(torch.randn(4, 3, 64, 64)).logsumexp(1).mean()
    loss.backward()
    assert not frozen_bn.training and live_bn.training
    assert torch.equal(frozen_bn.running_mean, before[0]) and not torch.equal(live_bn.running_mean, before[1])
    assert all(p.grad is None for p in model.stem.parameters())
    assert all(p.grad is None for p in model.stages[0].parameters())
    assert all(p.grad is not None for p in model.stages[1].parameters())
    assert model.archspec_frozen == ("stem", "stages.0")
    # The state dict is unchanged by freezing: a checkpoint loads into an unfrozen model.
    assert list(model.state_dict()) == list(archspec.build("resnet18", num_classes=10).state_dict())


def test_summary_counts_the_frozen_parameters_torch_counts() -> None:
    model = archspec.build("resnet18", freeze=["stem", "stages.0"])
    report = archspec.analyze("resnet18", freeze=["stem", "stages.0"])
    assert report.trainable_params == trainable(model) == 11_532_008
    assert report.frozen_params == report.params - trainable(model) == 157_504
    code, out, err = run_cli("summary", "resnet18", "--set", "freeze=[stem, stages.0]")
    assert code == 0, err
    assert "params       11,689,512 (trainable 11,532,008, frozen 157,504), buffers 9,620" in out


def test_patterns_name_blocks_across_stages() -> None:
    model = archspec.build("resnet18", freeze="stages.*.blocks.0")
    assert model.archspec_frozen == tuple(f"stages.{i}.blocks.0" for i in range(4))
    assert archspec.analyze("resnet18", freeze="stages.*.blocks.0").trainable_params == trainable(model)


def test_trainable_layers_is_one_setting_of_freeze() -> None:
    """torchvision's resnet_fpn_backbone(trainable_layers=3) freezes conv1 and layer1 (its stem and first stage)."""
    theirs = resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=3)
    ours = archspec.build("resnet50_fpn", freeze=["stem", "stages.0"])
    assert trainable(ours) == trainable(theirs)


def test_a_pattern_that_names_nothing_is_an_error() -> None:
    with pytest.raises(ArgumentError, match="freeze: 'stage.0' names no part of the model"):
        archspec.build("resnet18", freeze="stage.0")
    # the spec's own patterns are checked against the network when it is lowered: `validate` refuses them
    with pytest.raises(SpecError, match=r"freeze\[1\]: 'stages.9' names no part of the network \(did you mean 'stages.3'\?\)"):
        archspec.build(archspec.load_spec("resnet18", freeze=["stem", "stages.9"]))
    code, _, err = run_cli("validate", "resnet18", "--set", "freeze=[stem, stages.9]")
    assert code == 2 and "freeze[1]: 'stages.9' names no part of the network" in err, err
    with pytest.raises(ArgumentError, match="freeze is a part path or a list of them"):
        archspec.build("resnet18", freeze=3)


def test_a_spec_that_freezes_parts_deploys_and_its_deployed_checkpoint_loads(tmp_path) -> None:
    spec = {"extends": "resnet18", "num_classes": 10, "freeze": ["stem", "stages.0"]}
    model = archspec.build(spec).eval()
    deployed = archspec.deploy(model)
    path = tmp_path / "deployed.safetensors"
    archspec.save(deployed, path)
    loaded = archspec.load(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), rtol=1e-4, atol=1e-5)
    assert getattr(loaded, "archspec_frozen", None) is None
    with pytest.raises(ArgumentError, match="freeze is for training"):  # asked for in the same call: refused
        archspec.build("resnet18", freeze=["stem"], deploy=True)
