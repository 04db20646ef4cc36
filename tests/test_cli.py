"""The command line: tables, exit codes, located one-line errors, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "archspec.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_build_vgg19_shows_the_parameter_count() -> None:
    result = run("build", "specs/vgg19.yaml")
    assert result.returncode == 0, result.stderr
    assert "143,667,240 parameters" in result.stdout
    assert "stages.4" in result.stdout


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_build_json() -> None:
    result = run("build", "lenet5", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["params"] == 61_706


def test_every_command_has_help_with_an_example() -> None:
    from archspec.cli.main import parser

    top = parser()
    sub = next(a for a in top._actions if a.dest == "command")
    assert {"build", "validate", "list"} <= set(sub.choices)
    for name, p in sub.choices.items():
        assert "example" in (p.epilog or ""), name


BAD = {
    "unknown block type": ("{block: bottleneck, out: 256", "{block: botleneck, out: 256",
                           "stages[0].block: unknown block type 'botleneck' (did you mean 'bottleneck'?)"),
    "missing field": ("{block: bottleneck, out: 256, repeat", "{block: bottleneck, repeat",
                      "stages[0].out: required key is missing"),
    "wrong type": ("input: {channels: 3", "input: {channels: three", "input.channels: must be an integer, got 'three'"),
    "stride 0": ("stride: 2, padding: 3", "stride: 0, padding: 3", "stem[0].conv.stride: must be >= 1, got 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_spec_gets_one_located_line_and_exit_2(case: str, tmp_path: Path) -> None:
    old, new, message = BAD[case]
    text = (ROOT / "specs" / "resnet50.yaml").read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if new in t)
    for command in ("build", "validate"):
        result = run(command, str(path))
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{path}:{line}:"), lines[0]
        assert lines[0].endswith(message) or f": {message}" in lines[0], lines[0]
        assert "Traceback" not in result.stderr


def test_internal_errors_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from archspec.cli import cmd_list, main

    def boom(args):  # an archspec bug, not a user error
        raise RuntimeError("boom")

    monkeypatch.setattr(cmd_list, "run", boom)
    assert main.main(["list"]) == 1
    assert "internal error" in capsys.readouterr().err


def test_list_shows_the_zoo() -> None:
    result = run("list", "--json")
    assert result.returncode == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["resnet50"]["params"] == 25_557_032
    assert rows["lenet5"]["params"] == 61_706


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_set_overrides_from_the_command_line() -> None:
    result = run("build", "resnet18", "--set", "num_classes=10", "--set", "input.size=[32,32]", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["output_shape"] == [10] and data["input_shape"] == [3, 32, 32]


def test_python_dash_m_archspec_runs_the_command() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "archspec", "--version"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("archspec "), done.stderr


def test_help_builds_its_parser_without_pydantic_or_the_ir() -> None:
    """`archspec --help` stays fast (~0.1 s against 0.8 s) because no command imports the spec models to register."""
    script = ("import sys, time; t = time.perf_counter(); from archspec.cli.main import parser; parser()\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'torch', 'yaml', 'graphviz')\n"
              "               or m.startswith(('archspec.ir', 'archspec.spec', 'archspec.blocks')))\n"
              "print(heavy)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_build_takes_input_like_every_analysis_command(capsys) -> None:
    from archspec.cli.main import main

    assert main(["build", "resnet18", "--input", "3x32x32", "--set", "num_classes=10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [3, 32, 32] and data["output_shape"] == [10]


def test_list_filters_with_wildcards_and_wraps_descriptions(capsys, monkeypatch) -> None:
    from archspec.cli.main import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list", "resnet1*", "vgg1?", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert names == ["resnet101", "resnet152", "resnet18", "vgg11", "vgg13", "vgg16", "vgg19"]
    assert main(["list", "resnet152"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    words = " ".join(line[out.splitlines()[0].index("description"):].strip() for line in out.splitlines()[2:])
    assert words == "ResNet-152 (He et al., 2015), bottleneck blocks [3, 4, 23, 3]".replace("4, 23", "8, 36")
    assert main(["list", "resnt50"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err


def test_export_format_names_and_the_old_alias(tmp_path: Path, capsys) -> None:
    from archspec.backends.exporters import format_for

    assert format_for("m.pt2", None).name == "pt2" and format_for("m.bin", "export").name == "pt2"
    from archspec.cli.main import main

    assert main(["export", "lenet5", "--format", "py", "-o", str(tmp_path / "l.py"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "python"
