"""Shared helpers for tests of generated Python: ruff's verdict, and building the exported model."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import torch

import archspec
from archspec.backends.python_source import python_source


def assert_ruff_clean(directory: Path) -> None:
    """Every .py file in `directory` is as ruff (and black) would format it, and lint-clean."""
    ruff = [sys.executable, "-m", "ruff"]
    fmt = subprocess.run([*ruff, "format", "--isolated", "--diff", str(directory)], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[:3000] + fmt.stderr[:3000]
    lint = subprocess.run([*ruff, "check", "--isolated", "--select", "E,F,W,B", str(directory)], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout[:3000]


def model_class(source: str) -> str:
    """The name of the model class: the last `nn.Module` class of the file."""
    return re.findall(r"^class (\w+)\(nn\.Module\):", source, re.M)[-1]


def exported_model(spec: str, key: str, tmp_path: Path) -> torch.nn.Module:
    """Export `spec` to `tmp_path/<key>.py`, import that file in this process and build its model."""
    source = python_source(archspec.load_spec(spec).network())
    path = tmp_path / f"{key}.py"
    path.write_text(source)
    loader = importlib.util.spec_from_file_location(f"exported_{key}", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return getattr(module, model_class(source))()


def compiled_and_exported(spec, key: str, tmp_path: Path, x: torch.Tensor) -> tuple:
    """The outputs of the compiled module and of its exported source (same weights) on `x`, in eval."""
    ours = archspec.build(spec).eval()
    theirs = exported_model(spec, key, tmp_path).eval()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        return ours(x), theirs(x)
