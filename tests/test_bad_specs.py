"""The corpus of wrong specs in `tests/bad_specs/`: each gives exactly the message in its `.expected` file.

Every `NAME.yaml` there (but the helpers starting with `_`, parents of other cases) has a
`NAME.expected` holding the exact lines `archspec validate NAME.yaml` prints on stderr, with
the exit code 2. Lines and columns in those files were counted by hand in the YAML.

Lists that grow when ops, families or activations are added are written as placeholders
filled from the registries: {known_blocks}, {known_layers}, {activations}, {functions}.
"""

from __future__ import annotations

import importlib.util
import typing
from pathlib import Path

import pytest

from archspec.spec.families import BLOCKS, load_builtin_blocks, register_block
from archspec.cli.main import main

HERE = Path(__file__).resolve().parent / "bad_specs"
CASES = sorted(p.stem for p in HERE.glob("*.yaml") if not p.name.startswith("_"))


def _placeholders() -> dict[str, str]:
    from archspec.ir.ops.activation import ActKind
    from archspec.spec.expr import FUNCTIONS
    from archspec.spec.layers import layer_kinds

    return {
        "{known_blocks}": ", ".join(sorted(f for f, c in load_builtin_blocks().items() if c.inputs[0] == 1)),  # a stage's
        "{known_layers}": ", ".join(layer_kinds()),
        "{activations}": ", ".join(typing.get_args(ActKind)),
        "{functions}": ", ".join(sorted(FUNCTIONS)),
    }


@pytest.fixture
def user_families():
    """Register the corpus's own (deliberately mis-wired) families, and remove them afterwards."""
    spec = importlib.util.spec_from_file_location("bad_spec_families", HERE / "_families.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    load_builtin_blocks()
    for name, cls in module.FAMILIES.items():
        register_block(name)(cls)
    yield
    for name in module.FAMILIES:
        BLOCKS.pop(name, None)


def test_every_case_has_an_expected_message() -> None:
    assert CASES, "no bad specs found"
    missing = [c for c in CASES if not (HERE / f"{c}.expected").is_file()]
    assert not missing, f"add the expected message for: {missing}"
    orphans = [p.name for p in HERE.glob("*.expected") if not (HERE / f"{p.stem}.yaml").is_file()]
    assert not orphans


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_message(case: str, user_families, monkeypatch, capsys) -> None:
    monkeypatch.chdir(HERE)
    expected = (HERE / f"{case}.expected").read_text(encoding="utf-8")
    for key, value in _placeholders().items():
        expected = expected.replace(key, value)
    code = main(["validate", f"{case}.yaml"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == expected
