"""docs/training.md's fine-tuning and feature-extraction examples run as written, offline: a
temporary TORCH_HOME holds a random torchvision model's state dict under the published file's
name, and a folder of generated images stands for the user's photos. The loss must fall."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def section_code(heading: str) -> str:
    """The python block of docs/training.md's section `heading`."""
    text = (ROOT / "docs" / "training.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, heading
    return blocks[0]


@pytest.fixture
def offline(tmp_path, monkeypatch, no_network, hub):
    """No network, an empty hub cache, and the photos folder the examples read, as the working directory."""
    rng = np.random.default_rng(0)
    for colour, channel in (("red", 0), ("blue", 2)):
        (tmp_path / "photos" / colour).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 120, (96, 128, 3), dtype=np.uint8)
            pixels[:, :, channel] += 130
            Image.fromarray(pixels).save(tmp_path / "photos" / colour / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    return hub


def run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/training.md", "exec"), {"__name__": "__doc__"})
    return out.getvalue()


@pytest.mark.slow
def test_the_fine_tuning_example_learns(offline) -> None:
    torch.manual_seed(0)
    torch.save(tvm.mobilenet_v3_small().state_dict(), offline / "mobilenet_v3_small-047dcff4.pth")
    printed = run(section_code("Fine-tuning published weights"))
    assert "head.fc.weight: shape [2, 1024] here, [1000, 1024] in the weights" in printed
    losses = [float(v) for v in re.findall(r"step \d: loss ([0-9.]+)", printed)]
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0], losses  # measured: 0.695 -> 0.020


def test_the_feature_extraction_example_prints_the_shapes_it_shows(offline) -> None:
    torch.save(tvm.resnet18().state_dict(), offline / "resnet18-f37072fd.pth")
    code = section_code("Feature extraction")
    printed = run(code)
    shown = re.search(r"# (\{.*\})", code).group(1)
    assert printed.strip() == shown
