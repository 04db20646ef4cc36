"""The type checker passes: `python -m mypy` with pyproject.toml's [tool.mypy] (the package at
mypy's default strictness, less the per-module exceptions listed there), and every
`# type: ignore` names its error code and says why."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # about 25 s of CPU from a cold cache
def test_mypy_passes() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout


def test_every_type_ignore_says_why() -> None:
    bare = []
    for path in sorted((ROOT / "archspec").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "type: ignore" in line and not re.search(r"# type: ignore\[[a-z, -]+\]  # \S", line):
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bare == []
