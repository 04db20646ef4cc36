"""ONNX and torch.export (.pt2) for every zoo spec, checked by onnx, onnxruntime and torch.export.load.

The references are outside the code under test: `onnx.checker`, onnxruntime's outputs
and the program torch loads back, each compared with the compiled PyTorch module on a
batch size other than the one traced (the batch axis must be dynamic).

The per-network round trips run each network with its stages cut to their distinct blocks
(`tests.zoo_tiers.shortened`): every op and block configuration is exported, not every repeat of
it. The full-depth networks are held to torchvision and timm by the parity tests
(tests/test_zoo_*.py) and exported as Python source in full (tests/test_export_python.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import archspec
from archspec.backends.exporters import trace, write_onnx, write_pt2
from tests.clirun import run_cli
from tests.zoo_tiers import EXPORTED, input_side, shortened, shortest_stages

# The zoo less the variants of issue 14's families, which their representatives stand for (tests/zoo_tiers.py).
ZOO = EXPORTED


def calibrate(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.nn.Module:
    """Set every batch norm's running statistics to those of a random batch, so that a randomly
    initialised network gives outputs of order one (EfficientNet's are ~1e-14 otherwise, and
    Inception-v3's ~1e6), and a tolerance means something."""
    with torch.no_grad():  # a weight initialised to zeros (ViT's classifier) would make the outputs zero
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 0.02)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        model(torch.randn(8, *shape))
    return model.eval()


def _close(ours: np.ndarray, reference: torch.Tensor, model: torch.nn.Module, x: torch.Tensor,
           key: str = "logits") -> None:
    """Within 1e-4 (relative to outputs above 1), or within the float32 noise of the PyTorch module itself.

    A deep random network amplifies rounding: ResNet-152's float32 outputs differ from its own
    float64 outputs by ~7e-4, so no float32 runtime can be held to 1e-4 there. The noise floor
    is measured (float64 as the truth) and the export may err by at most 4 times as much. A
    wrong export errs by the size of the outputs, far above either bound.
    """
    ref = reference.numpy()
    scale = max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(ours - ref).max())
    if diff <= 1e-4 * scale:
        return
    with torch.no_grad():
        truth = copy.deepcopy(model).double()(x.double())
        truth = (truth[key] if isinstance(truth, dict) else truth).numpy()  # a network with taps: that output
    floor = float(np.abs(ref - truth).max())
    error = float(np.abs(ours - truth).max())
    assert error <= 4 * floor, f"max abs difference {diff}, {error} from float64 (float32 noise: {floor})"


@pytest.mark.slow  # 1 to 30 s a network
@pytest.mark.parametrize("name", ZOO)
def test_onnx_and_pt2_export_of_every_zoo_spec(name: str, tmp_path: Path) -> None:
    """Each stage is cut to the shortest run of its first blocks that holds all its distinct blocks
    (`shortened`, which checks that nothing else changes): ResNet-50 keeps 2 of each stage's 3 to 6
    blocks, Swin-T 3 of its third stage's 6, ViT-B/16 1 of its 12 identical layers. The exporters
    translate a block the same way wherever it stands; tracing, ONNX's decomposition and its
    optimizer take time in proportion to the nodes: the repeats took over a quarter of the test's
    time (in full, then cut: Swin-T 27 s, 20 s; ViT-B/16 20 s, 3 s; MobileOne-S0 19 s, 7 s; the zoo 484
    worker-seconds, 348) and checked nothing more."""
    # Above 224x224 (EfficientNet-B1 to B7) the layers are the same at 224, and the runs up to
    # seven times cheaper: the test exports those networks for a 224x224 input.
    spec = archspec.load_spec(name)
    net = spec.network()
    if net.input_shape[1] > 224 and name.startswith("efficientnet"):
        spec = archspec.load_spec(name, **{"input.size": [224, 224]})
        net = spec.network()
    if net.taps:  # dense prediction is fully convolutional: the same layers at 128x128, several times cheaper
        side = input_side(name, net.input_shape[1], 128)  # (or the least the network takes)
        spec = archspec.load_spec(name, **{"input.size": [side, side]})
        net = spec.network()
    spec = shortened(spec)
    net = spec.network()
    torch.manual_seed(0)
    model = calibrate(archspec.build(spec), net.input_shape)
    x = torch.randn(3, *net.input_shape)  # traced with batch 2: 3 needs the dynamic axis
    with torch.no_grad():
        reference = model(x)
    # A network with taps returns an ordered dict, and its ONNX graph names each output after its tap.
    outputs = dict(reference) if isinstance(reference, dict) else {"logits": reference}
    assert all(float(r.std()) > 1e-3 for r in outputs.values()), "calibration failed: outputs too small to compare"

    program = trace(net, model)  # one trace for both formats; `archspec export` traces per format
    onnx_path = tmp_path / f"{name}.onnx"
    write_onnx(net, model, onnx_path, 2, None, program)
    onnx.checker.check_model(str(onnx_path))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and [out.name for out in session.get_outputs()] == list(outputs)
    assert inp.shape[0] == "batch" and inp.shape[1:] == list(net.input_shape)
    for got, (key, ref) in zip(session.run(None, {"input": x.numpy()}), outputs.items()):
        _close(got, ref, model, x, key)
    del session
    onnx_path.unlink()  # VGG's files are 0.5 GB each: keep at most one on disk at a time

    pt2_path = tmp_path / f"{name}.pt2"
    write_pt2(net, model, pt2_path, 2, None, program)
    program = torch.export.load(str(pt2_path))
    pt2_path.unlink()
    with torch.no_grad():
        result = program.module()(x)
    for key, ref in outputs.items():
        _close((result[key] if isinstance(result, dict) else result).numpy(), ref, model, x, key)


def test_the_round_trips_cut_only_repeated_blocks() -> None:
    """The cut the round trips run on, against the papers' block layouts: ResNet-50's stages
    (3, 4, 6, 3 bottlenecks) each open with a block that changes the shape and projects the
    shortcut, then repeat one identity block; ResNet-34's first stage is three equal basic blocks
    (64 channels in and out, stride 1); Swin-T's third stage (6 blocks) merges patches in its first
    block and alternates unshifted and shifted windows; ViT-B/16's 12 encoder layers are equal;
    every DenseNet-121 layer reads more channels than the one before, and MaxViT-T's stages open
    with a downsampling layer (2, 2, 5, 2 layers)."""
    cuts = {name: shortest_stages(archspec.load_spec(name).network())
            for name in ("resnet50", "resnet34", "swin_t", "vit_b_16", "densenet121", "maxvit_t")}
    assert cuts == {
        "resnet50": {f"stages.{i}.repeat": 2 for i in range(4)},
        "resnet34": {"stages.0.repeat": 1, **{f"stages.{i}.repeat": 2 for i in (1, 2, 3)}},
        "swin_t": {"stages.2.repeat": 3},
        "vit_b_16": {"stages.0.repeat": 1},
        "densenet121": {},
        "maxvit_t": {"stages.2.repeat": 2},
    }
    short = shortened(archspec.load_spec("swin_t")).network()
    assert [len(s.blocks) for s in short.stages] == [2, 2, 3, 2]
    assert short.output_shape == (1000,)


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_export_cli_writes_each_format_and_reports_json(tmp_path: Path) -> None:
    for suffix, fmt in ((".py", "python"), (".onnx", "onnx"), (".pt2", "pt2")):
        target = tmp_path / f"lenet{suffix}"
        code, out, err = run_cli("export", "lenet5", "-o", str(target), "--json", "--set", "num_classes=7")
        assert code == 0, err
        report = json.loads(out)
        assert report["format"] == fmt and report["bytes"] == target.stat().st_size > 0
    session = onnxruntime.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape == ["batch", 7]


def test_export_from_a_checkpoint_keeps_its_weights(tmp_path: Path) -> None:
    ckpt = tmp_path / "lenet.safetensors"
    assert run_cli("build", "lenet5", "-o", str(ckpt))[0] == 0
    model = archspec.load(ckpt).eval()
    code, _, err = run_cli("export", str(ckpt), "-o", str(tmp_path / "lenet.onnx"))
    assert code == 0, err
    x = torch.randn(5, 1, 32, 32)
    session = onnxruntime.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        _close(session.run(None, {"input": x.numpy()})[0], model(x), model, x)


def test_export_refuses_what_it_cannot_do_without_writing(tmp_path: Path) -> None:
    code, _, err = run_cli("export", "lenet5", "-o", str(tmp_path / "lenet.tflite"))
    assert code == 2 and "cannot tell the export format" in err and ".onnx (onnx)" in err
    with pytest.raises(SystemExit) as exit_:  # argparse refuses the choice
        run_cli("export", "lenet5", "--format", "tflite", "-o", str(tmp_path / "x"))
    assert exit_.value.code == 2
    ckpt = tmp_path / "lenet.safetensors"
    assert run_cli("build", "lenet5", "-o", str(ckpt))[0] == 0
    code, _, err = run_cli("export", str(ckpt), "-o", str(tmp_path / "x.onnx"), "--set", "num_classes=3")
    assert code == 2 and "cannot be overridden" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.safetensors"]


def test_export_options_are_checked_before_any_work(tmp_path: Path) -> None:
    code, _, err = run_cli("export", "lenet5", "-o", str(tmp_path / "l.onnx"), "--opset", "13")
    assert code == 2 and "opset 18 or newer" in err
    code, _, err = run_cli("export", "lenet5", "-o", str(tmp_path / "l.onnx"), "--batch", "1")
    assert code == 2 and "at least 2" in err
    assert list(tmp_path.iterdir()) == []


def test_export_leaves_a_trained_module_in_its_mode(tmp_path: Path) -> None:
    model = archspec.build("lenet5").train()
    archspec.export("lenet5", tmp_path / "l.pt2", model=model)
    assert model.training
