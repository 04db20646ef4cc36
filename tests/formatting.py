"""Shared check: generated Python passes `ruff format --check` and `ruff check` at ruff's defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def assert_ruff_clean(directory: Path) -> None:
    """Every .py file in `directory` is as ruff (and black) would format it, and lint-clean."""
    ruff = [sys.executable, "-m", "ruff"]
    fmt = subprocess.run([*ruff, "format", "--isolated", "--diff", str(directory)], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[:3000] + fmt.stderr[:3000]
    lint = subprocess.run([*ruff, "check", "--isolated", "--select", "E,F,W,B", str(directory)], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout[:3000]
