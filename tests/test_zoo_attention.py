"""ViT, Swin (v1, v2) and MaxViT against torchvision 0.29.1 (random weights, no downloads).

Outside truth: torchvision's VisionTransformer, SwinTransformer and MaxVit (parameter counts, eval outputs after
`load_torchvision` with norm weights, biases, class token and position tables perturbed first, training
outputs under one seed with dropout and stochastic depth on) and the `num_params` of their weights.
(MACs against `_ops` for every zoo network: tests/test_analysis_zoo.py.)

The fast tier checks small networks built from torchvision's own classes with every option the zoo uses
(dropout, attention dropout, stochastic depth, shifted windows, v2); the zoo's networks themselves are
larger (28M to 632M parameters) and run in the slow tier, each built once.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2
from torchvision.models.maxvit import MaxVit
from torchvision.models.vision_transformer import VisionTransformer

import archspec
from archspec.interop import load_torchvision
from tests.parity import assert_close_outputs, assert_parity, assert_training_parity, count

VITS = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]
SWINS = ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b"]


def test_small_vit_equals_torchvision() -> None:
    """A 2-layer ViT on 32x32 inputs with dropout, from vit_b_16.yaml's vars: torchvision's
    VisionTransformer with the same arguments."""
    torch.manual_seed(0)
    theirs = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                               mlp_dim=32, dropout=0.1, attention_dropout=0.1, num_classes=10)
    ours = archspec.build("vit_b_16", num_classes=10, **{"input.size": [32, 32], "vars.patch": 8,
                                                         "vars.layers": 2, "vars.heads": 2, "vars.hidden": 16,
                                                         "vars.mlp": 32, "vars.dropout": 0.1,
                                                         "vars.attention_dropout": 0.1})
    assert_parity("vit", theirs, (3, 32, 32), model=ours, atol=1e-5)
    assert_training_parity(ours, theirs, torch.randn(4, 3, 32, 32), "vit")


@pytest.mark.parametrize("version", [1, 2])
def test_small_swin_equals_torchvision(version: int) -> None:
    """Four stages of two Swin blocks in 2x2 windows (every second block shifted) on 64x64 inputs,
    with stochastic depth: torchvision's SwinTransformer (v2: its V2 block and patch merging)."""
    torch.manual_seed(0)
    v2 = {"block": SwinTransformerBlockV2, "downsample_layer": PatchMergingV2} if version == 2 else {}
    theirs = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4],
                             window_size=[2, 2], stochastic_depth_prob=0.3, num_classes=10, **v2)
    ours = archspec.build("swin_t", num_classes=10, **{"input.size": [64, 64], "vars.window": 2,
                                                       "vars.version": version, "vars.depths": [2, 2, 2, 2],
                                                       "vars.widths": [16, 32, 64, 128], "vars.heads": [1, 2, 2, 4],
                                                       "vars.drop_path": 0.3})
    assert_parity("swin", theirs, (3, 64, 64), model=ours, atol=1e-5)
    assert_training_parity(ours, theirs, torch.randn(4, 3, 64, 64), "swin")


def test_small_maxvit_equals_torchvision() -> None:
    """Four stages of MaxViT layers in 2x2 windows and grids on 64x64 inputs, with stochastic depth:
    torchvision's MaxVit with the same arguments."""
    torch.manual_seed(0)
    theirs = MaxVit(input_size=(64, 64), stem_channels=8, partition_size=2, block_channels=[8, 16, 32, 32],
                    block_layers=[1, 2, 1, 1], head_dim=4, stochastic_depth_prob=0.3, num_classes=10)
    ours = archspec.build("maxvit_t", num_classes=10, **{"input.size": [64, 64], "vars.stem": 8, "vars.partition": 2,
                                                         "vars.widths": [8, 16, 32, 32], "vars.depths": [1, 2, 1, 1],
                                                         "vars.head_dim": 4, "vars.drop_path": 0.3})
    assert_parity("maxvit", theirs, (3, 64, 64), model=ours, atol=1e-5)
    assert_training_parity(ours, theirs, torch.randn(4, 3, 64, 64), "maxvit")


@pytest.mark.slow
def test_maxvit_t_equals_torchvision() -> None:
    """maxvit_t at 224x224 (its partitions need maps divisible by 7): eval and training outputs."""
    torch.manual_seed(0)
    theirs = torchvision.models.maxvit_t()
    ours = archspec.build("maxvit_t")
    assert count(ours) == count(theirs) == _documented("maxvit_t")
    assert_parity("maxvit_t", theirs, (3, 224, 224), model=ours, batch=2)
    assert_training_parity(ours, theirs, torch.randn(2, 3, 224, 224), "maxvit_t")


def _documented(name: str) -> int:
    """The documented count of the weights made at the spec's input (ViT-H/14's default is at 518x518)."""
    size = archspec.load_spec(name).network().input_shape[1]
    weights = torchvision.models.get_model_weights(name)
    return next(w.meta["num_params"] for w in weights if w.transforms().crop_size[0] == size)


@pytest.mark.parametrize("name", VITS + SWINS + ["maxvit_t"])
def test_parameter_counts_are_torchvision_documented(name: str) -> None:
    """From the spec alone, at 224x224 (and Swin v2's 256x256): torchvision's documented counts."""
    assert archspec.analyze(name).params == _documented(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", VITS)
def test_vit_equals_torchvision(name: str) -> None:
    """The zoo's ViTs, built once each, at the smallest input that keeps a 4x4 patch grid (the position
    embedding follows the input; torchvision's `image_size` is set alike): every weight is used."""
    patch = int(name.rsplit("_", 1)[1])
    size = 4 * patch
    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, image_size=size)
    ours = archspec.build(name, **{"input.size": [size, size]})
    assert_parity(name, theirs, (3, size, size), model=ours, batch=2)
    del ours, theirs
    gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("name", SWINS)
def test_swin_equals_torchvision(name: str) -> None:
    """The zoo's Swins at their own input (a smaller one would leave the last stage's map smaller than a
    window), eval and training outputs (stochastic depth 0.2 to 0.5)."""
    size = 256 if "v2" in name else 224
    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name)
    ours = archspec.build(name)
    assert count(ours) == count(theirs) == _documented(name)
    assert_parity(name, theirs, (3, size, size), model=ours, batch=2)
    assert_training_parity(ours, theirs, torch.randn(2, 3, size, size), name)
    del ours, theirs
    gc.collect()


EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_encoder_layer_written_in_yaml_is_the_builtin() -> None:
    """docs/blocks.md's transformer layer from the primitives: the built-in's parameters and outputs."""
    torch.manual_seed(0)
    yaml = archspec.build(EXAMPLES / "vit_yaml.yaml")
    builtin = archspec.build(EXAMPLES / "vit_yaml.yaml",
                             stages=[{"block": "encoder_layer", "heads": 4, "mlp": 128, "repeat": 2}])
    mine, other = yaml.state_dict(), builtin.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in other.values()]
    builtin.load_state_dict(dict(zip(other, mine.values())))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(yaml.eval()(x), builtin.eval()(x), rtol=0, atol=1e-6)


def test_attention_after_a_cnn_stage() -> None:
    """docs/blocks.md's hybrid: ResNet-18 and a global self-attention block on its 512x7x7 map, as
    `nn.MultiheadAttention` over the 49 positions (4 * 512^2 + 4 * 512 parameters, and a layer norm)."""
    report = archspec.analyze(EXAMPLES / "resnet18_attention.yaml")
    assert report.params == 11_689_512 + 4 * 512 * 512 + 4 * 512 + 2 * 512
    model = archspec.build(EXAMPLES / "resnet18_attention.yaml", **{"input.size": [64, 64]}).eval()
    block = model.stages[4].blocks[0]
    x = torch.randn(2, 512, 2, 2)
    attention = torch.nn.MultiheadAttention(512, 8, batch_first=True)
    norm = torch.nn.LayerNorm(512)
    state = block.state_dict()
    norm.load_state_dict({"weight": state["1.weight"], "bias": state["1.bias"]})  # residual body: tokens, norm, ...
    attention.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("2.")})
    tokens = norm(x.flatten(2).transpose(1, 2))
    expected = x + attention(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2).reshape(2, 512, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected.detach(), rtol=0, atol=1e-5)


def test_the_zoo_holds_every_torchvision_classifier() -> None:
    """All 80 of torchvision 0.29.1's classification models, by name (`archspec list` shows them)."""
    classifiers = torchvision.models.list_models(module=torchvision.models)
    assert len(classifiers) == 80
    assert set(classifiers) <= set(archspec.zoo.names())


@pytest.mark.slow
def test_swin_stages_as_a_detection_backbone() -> None:
    """Taps on swin_t's four stages: NCHW maps at strides 4 to 32, equal to torchvision's
    `features[1, 3, 5, 7]` outputs permuted to NCHW (what its detection users do)."""
    taps = {f"c{i + 2}": f"stages.{i}" for i in range(4)}
    info = archspec.analyze("swin_t", features=taps).features
    assert [(f.channels, f.reduction) for f in info] == [(96, 4), (192, 8), (384, 16), (768, 32)]
    torch.manual_seed(0)
    theirs = torchvision.models.swin_t().eval()
    body = archspec.build("swin_t", features=taps).eval()
    whole = archspec.build("swin_t")
    load_torchvision(whole, theirs)
    missing, unexpected = body.load_state_dict(whole.state_dict(), strict=False)
    assert not missing and all(k.startswith("head.") for k in unexpected)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours = body(x)
        y, expected = x, []
        for i, layer in enumerate(theirs.features):
            y = layer(y)
            if i in (1, 3, 5, 7):
                expected.append(y.permute(0, 3, 1, 2))
    for (name, a), b in zip(ours.items(), expected):
        assert a.shape == b.shape, name
        assert_close_outputs(a, b, name, atol=1e-5)
