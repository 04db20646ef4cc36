"""How the CLI reports wrong specs: stderr, exit 2, every spec checked, JSON on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.clirun import run_cli

from archspec.cli.main import main
from archspec.core.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
GOOD = str(ROOT / "specs" / "resnet50.yaml")


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nstages:\n  - {block: basic, out: 16, repeat: 0}\n", encoding="utf-8")
    return path


def test_every_spec_is_checked_and_any_failure_exits_2(bad: Path) -> None:
    code, out, err = run_cli("validate", GOOD, str(bad), GOOD)
    assert code == 2
    assert out.count(": ok (resnet50, 25,557,032 parameters)") == 2  # torchvision documents 25,557,032
    assert err == f"{bad}:3:37: stages[0].repeat: must be >= 1, got 0\n"


def test_json_lists_the_located_errors(bad: Path) -> None:
    code, out, err = run_cli("validate", "--json", str(bad))
    assert code == 2 and err == ""
    assert json.loads(out) == [{"spec": str(bad), "ok": False,
                                "errors": [f"{bad}:3:37: stages[0].repeat: must be >= 1, got 0"]}]


def test_unknown_zoo_name_gets_a_suggestion() -> None:
    code, _, err = run_cli("validate", "resnet_50")
    assert code == 2
    assert err == "resnet_50: no such file, and no zoo network of that name (did you mean 'resnet50'?)\n"


def test_override_errors_name_the_override() -> None:
    code, _, err = run_cli("validate", GOOD, "--set", "stages.0.repeat=0", "--set", "num_clases=10")
    assert code == 2
    assert err.splitlines() == ["--set stages.0.repeat: stages[0].repeat: must be >= 1, got 0",
                                "--set num_clases: num_clases: unknown key 'num_clases' (did you mean 'num_classes'?)"]


def test_debug_raises_instead_of_printing(bad: Path) -> None:
    with pytest.raises(SpecError):
        main(["--debug", "validate", str(bad)])


def test_build_reports_like_validate(bad: Path) -> None:
    code, out, err = run_cli("build", str(bad))
    assert (code, out) == (2, "")
    assert err == f"{bad}:3:37: stages[0].repeat: must be >= 1, got 0\n"


@pytest.mark.parametrize("argv, message", [
    (["summary", "lenet5", "--batch", "0"], "batch must be an integer of at least 1, got 0"),
    (["compare", "lenet5", "alexnet", "--batch", "0"], "batch must be an integer of at least 1, got 0"),
    (["validate", "resnet18", "--max-params", "1e6"], "over the limit of 1,000,000"),
    (["build", "resnet18", "--max-params", "1e6"], "over the limit of 1,000,000"),
])
def test_the_cli_leaves_argument_checks_to_the_api(argv: list[str], message: str) -> None:
    """The CLI holds no check the API lacks: the API's own errors reach the user, exit 2."""
    code, _, err = run_cli(*argv)
    assert code == 2, err
    assert message in err


def test_a_layer_parameter_left_beside_its_kind_is_located_at_that_key(tmp_path: Path) -> None:
    # `out` written beside `linear` (not under it) is the key at fault: located there, in a file or
    # in the --set that wrote it (before, at the layer, whose location was the file's even for a --set)
    code, _, err = run_cli("validate", "resnet18", "--set", "head.fc.out=10")
    assert code == 2 and err.startswith("--set head.fc.out: head[2].out: a layer has exactly one key, its kind "
                                        "(found linear, out)"), err
    spec = tmp_path / "stray.yaml"
    spec.write_text("name: stray\ninput: {channels: 3, size: 8}\nhead:\n  - flatten\n"
                    "  - {linear: {out: 4}, bias: false}\n", encoding="utf-8")
    code, _, err = run_cli("validate", str(spec))
    assert code == 2 and err.startswith(f"{spec}:5:24: head[1].bias: a layer has exactly one key"), err
    spec.write_text("name: stray\ninput: {channels: 3, size: 8}\nhead:\n  - flatten\n"
                    "  - {out: 4, bias: false}\n", encoding="utf-8")  # no kind at all: the layer is at fault
    code, _, err = run_cli("validate", str(spec))
    assert code == 2 and err.startswith(f"{spec}:5:5: head[1]: a layer has exactly one key"), err
