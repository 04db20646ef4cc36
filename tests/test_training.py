"""Compiled networks train: LeNet-5 learns the real digits data; DDP keeps replicas in step.

Outside truth: the issue's requirement (>= 95 % test accuracy on scikit-learn's digits, a real
data set); chance level for an untrained network (10 classes); and the definition of data-parallel
SGD: averaging the gradients of two ranks' batches is one SGD step on the union of the batches.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import archspec

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_digits_example_reaches_95_percent(capsys) -> None:
    result = _tool("train_digits").main(["--epochs", "10", "--seed", "0"])
    assert result["epochs"] == 10
    assert result["test_size"] == 360  # 20 % of the 1,797 digits, rounded up by scikit-learn
    assert result["accuracy"] >= 0.95, result
    assert "test accuracy" in capsys.readouterr().out


def test_untrained_lenet_is_at_chance_on_digits() -> None:
    """The 95 % above comes from training, not from an easy evaluation."""
    result = _tool("train_digits").train(epochs=0, seed=0)
    assert result["accuracy"] < 0.3, result


# -- DistributedDataParallel ------------------------------------------------------------------------

STEPS, BATCH = 3, 8


def _torchrun(tmp_path: Path, *args: str) -> tuple[str, dict[str, dict[str, torch.Tensor]], list[dict]]:
    """Two gloo processes on the CPU; returns rank 0's stdout, the saved states and each rank's log."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tools" / "train_ddp.py"), "--steps", str(STEPS), "--batch-size", str(BATCH),
           "--backend", "gloo", "--save", str(tmp_path), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = {name: load_file(str(tmp_path / f"{name}.safetensors")) for name in ("initial", "rank0", "rank1")}
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    return proc.stdout, states, logs


@pytest.mark.slow  # three Python processes importing torch: ~11 CPU-seconds
def test_ddp_replicas_agree_on_parameters_and_batchnorm_buffers(tmp_path: Path) -> None:
    out, states, logs = _torchrun(tmp_path, "--spec", "resnet18", "--input-size", "32")
    initial, rank0, rank1 = states["initial"], states["rank0"], states["rank1"]
    assert rank0.keys() == rank1.keys() == initial.keys()
    assert any(k.endswith("running_mean") for k in rank0)  # BatchNorm buffers are part of the check
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"replicas differ at {key}"
        assert not torch.equal(rank0[key], initial[key]), f"{key} did not change in training"
    assert int(rank0["stem.bn1.num_batches_tracked"]) == STEPS
    # DistributedSampler: each rank trained on its own share of the data.
    first, second = (set(log["indices"]) for log in logs)
    assert len(first) == len(second) == STEPS * BATCH and not first & second
    # Only rank 0 prints the loss, once per step.
    assert [line.split()[1] for line in out.splitlines() if line.startswith("step")] == ["1", "2", "3"]


@pytest.mark.slow  # three Python processes importing torch: ~11 CPU-seconds
def test_ddp_step_equals_one_sgd_step_on_the_union_of_the_ranks_batches(tmp_path: Path) -> None:
    """Without BatchNorm, DDP over two ranks of 8 samples is plain SGD over the 16 samples."""
    _, states, logs = _torchrun(tmp_path, "--spec", "lenet5", "--lr", "0.05")
    ddp = _tool("train_ddp")
    x_all, y_all = ddp.digits_dataset()
    model = archspec.build("lenet5", num_classes=10)
    model.load_state_dict(states["initial"])
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(STEPS):
        batch = torch.tensor([i for log in logs for i in log["indices"][step * BATCH:(step + 1) * BATCH]])
        loss = F.cross_entropy(model(ddp.to_input(x_all[batch], 1, (32, 32))), y_all[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for key, value in model.state_dict().items():
        assert not torch.equal(value, states["initial"][key]), key
        assert torch.allclose(value, states["rank0"][key], atol=1e-6, rtol=1e-5), key
