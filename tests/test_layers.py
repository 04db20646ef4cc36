"""The import contracts in pyproject.toml (`lint-imports`): layers only import downwards, and
no modules import each other in a cycle. A broken contract fails the suite, so CI catches it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def copy_of_the_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "archspec", root / "archspec", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize("module, line, contract", [
    ("ir/graph.py", "from ..spec import load  # an upward import", "Lower layers never import higher ones BROKEN"),
    ("spec/expr.py", "from . import resolve  # resolve imports expr: a cycle", "No import cycles between modules BROKEN"),
])
def test_a_new_upward_import_or_cycle_breaks_a_contract(copy_of_the_package: Path, module: str, line: str,
                                                        contract: str) -> None:
    path = copy_of_the_package / "archspec" / module
    original = path.read_text()
    path.write_text(original + "\n" + line + "\n")
    try:
        result = lint(copy_of_the_package)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout
    assert contract in result.stdout


def test_every_top_level_module_is_in_a_layer() -> None:
    """The layers contract says nothing about a module it does not list: a new module must join one."""
    import pkgutil
    import tomllib

    import archspec

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    listed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    modules = {f"archspec.{m.name}" for m in pkgutil.iter_modules(archspec.__path__)} - {"archspec.specs"}
    assert modules - listed == set(), "add these to a layer in pyproject.toml [tool.importlinter]"
