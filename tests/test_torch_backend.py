"""The compiled module: plain PyTorch, readable names, state_dict, compile, export, init."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchvision

import archspec


def test_readable_nested_names() -> None:
    model = archspec.build("resnet50")
    names = dict(model.named_modules())
    for expected in ("stem.conv1", "stages.2.blocks.0.conv1", "stages.2.blocks.0.downsample", "head.fc"):
        assert expected in names
    assert type(names["stages.0.blocks.0"]).__name__ == "Bottleneck"
    text = repr(model)
    assert "(conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)" in text
    # the generated forward is plain Python calling the submodules
    code = model.stages[1].blocks[0].code
    assert "self.downsample(x)" in code and "bn3 += downsample" in code


def test_state_dict_round_trip(tmp_path: Path) -> None:
    a = archspec.build("resnet18", num_classes=10).eval()
    path = tmp_path / "weights.pt"
    torch.save(a.state_dict(), path)
    b = archspec.build("resnet18", num_classes=10).eval()
    b.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(a(x), b(x))


def test_safetensors_checkpoint_round_trip(tmp_path: Path) -> None:
    from archspec.cli.main import main

    path = tmp_path / "lenet.safetensors"
    assert main(["build", "lenet5", "--set", "num_classes=7", "-o", str(path)]) == 0
    model = archspec.load(path).eval()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 7)
    # the saved spec is the resolved one: no extends, no vars
    from archspec.checkpoint import read_spec

    assert read_spec(path)["num_classes"] == 7


def test_torch_compile_matches_eager() -> None:
    model = archspec.build("lenet5").eval()
    x = torch.randn(4, 1, 32, 32)
    compiled = torch.compile(model, backend="eager")  # graph capture, no C++ toolchain needed
    assert torch.allclose(compiled(x), model(x))


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_torch_compile_inductor_on_a_residual_block() -> None:
    model = archspec.build("resnet18", **{"input.size": [32, 32]}, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model)
    assert torch.allclose(compiled(x), model(x), atol=1e-4)


def test_torch_export() -> None:
    model = archspec.build("resnet18", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    program = torch.export.export(model, (x,))
    assert torch.allclose(program.module()(x), model(x), atol=1e-5)


def _std(t: torch.Tensor) -> float:
    return t.float().std().item()


def test_init_follows_torchvision_resnet() -> None:
    torch.manual_seed(0)
    ours = dict(archspec.build("resnet50").named_parameters())
    theirs = dict(torchvision.models.resnet50().named_parameters())
    # kaiming normal, fan_out: std = sqrt(2 / (out * k * k))
    conv = ours["stages.3.blocks.0.conv2.weight"]
    assert _std(conv) == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.05)
    assert _std(conv) == pytest.approx(_std(theirs["layer4.0.conv2.weight"]), rel=0.05)
    assert torch.all(ours["stages.0.blocks.0.bn1.weight"] == 1) and torch.all(ours["stages.0.blocks.0.bn1.bias"] == 0)
    # fc keeps PyTorch's default uniform(-1/sqrt(in), 1/sqrt(in))
    bound = 1 / math.sqrt(2048)
    assert ours["head.fc.weight"].abs().max().item() <= bound
    assert ours["head.fc.weight"].abs().max().item() == pytest.approx(bound, rel=0.01)


def test_init_follows_torchvision_vgg() -> None:
    torch.manual_seed(0)
    ours = dict(archspec.build("vgg11").named_parameters())
    fc = [v for k, v in ours.items() if k.startswith("head") and k.endswith("weight")]
    assert all(_std(w) == pytest.approx(0.01, rel=0.05) for w in fc)
    assert all(torch.all(v == 0) for k, v in ours.items() if k.endswith("bias"))
    conv = ours["stages.2.blocks.0.conv1.weight"]
    assert _std(conv) == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)


def test_forward_has_no_interpretation_overhead() -> None:
    """The compiled block is the same sequence of module calls a hand-written one makes."""
    model = archspec.build("resnet18")
    calls: list[str] = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: calls.append(n))
             for n, m in model.named_modules() if not list(m.children())]
    model(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    leaves = [n for n, m in model.named_modules() if not list(m.children())]
    assert sorted(calls) == sorted(leaves)  # each leaf module runs exactly once


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mobilenet_v3_small", "convnext_tiny", "densenet121",
                                  "efficientnet_b0", "inception_v3", "vgg11_bn"])
def test_layers_built_without_their_own_initialisation_are_all_initialised(name: str, monkeypatch) -> None:
    """`build` skips the constructor's initialisation of layers the spec's `init` overwrites.
    Fill what skip_init leaves with NaN: if any parameter is not overwritten, a NaN survives."""
    real = torch.nn.utils.skip_init
    skipped: list[str] = []

    def poisoned(cls, *args, **kwargs):
        module = real(cls, *args, **kwargs)
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(float("nan"))
        skipped.append(cls.__name__)
        return module

    monkeypatch.setattr(torch.nn.utils, "skip_init", poisoned)
    model = archspec.build(name)
    assert skipped, "nothing was skipped: the test checks nothing"
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and torch.isnan(v).any()]
    assert not bad, bad


def test_build_honours_the_default_device() -> None:
    with torch.device("meta"):
        model = archspec.build("resnet18")
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("layers", [
    [{"concat": [[{"split": {"parts": 2, "index": 0}}, "act"], [{"split": {"parts": 2, "index": 0}}]]}],  # a view
    [{"add": [[{"dropout": 0.2}, "act"], "identity"]}],  # dropout in eval mode returns its input itself
    [{"add": [[{"act": "identity"}, "act"], "identity"]}],  # so does the identity activation
    [{"add": [[{"flatten": None}, "act"], [{"flatten": None}]]}],  # a view of another shape
], ids=["split", "dropout", "identity_act", "flatten"])
def test_an_activation_after_a_view_or_its_input_itself_does_not_run_in_place(layers) -> None:
    # Running it in place would also overwrite the value the other branch reads: the block must
    # compute what it computes with every activation out of place (torch's own semantics)
    spec = {"name": "alias", "input": {"channels": 4, "size": 8}, "num_classes": 3,
            "defaults": {"norm": "batch", "activation": "relu"},
            "blocks": {"u": {"layers": layers}}, "stem": [{"conv": {"out": 4, "kernel": 1}}],
            "stages": [{"block": "u"}], "head": ["flatten", {"linear": 3}]}
    block = archspec.build(spec).eval().stages[0].blocks[0]
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        ours = block(x.clone())
        for module in block.modules():
            if hasattr(module, "inplace"):
                module.inplace = False
        assert torch.equal(ours, block(x.clone()))
