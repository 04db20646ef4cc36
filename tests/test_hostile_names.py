"""Issue 23: random hostile names through every writer. A name from a spec (a tap, an FPN level, a
sampled value) reaches the terminal, a DOT diagram, exported Python source, ONNX, CSV and JSON; each
output must parse with its own parser and run nothing, and the name must come back as written.

Outside truth: Python's parser and importer, the json and csv modules, Graphviz's `dot`, onnx.checker.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archspec
from archspec.core.errors import ArchspecError
from tests.clirun import run_cli

BASE = {
    "name": "hostile",
    "input": {"channels": 3, "size": 16},
    "num_classes": 4,
    "stem": [{"conv": {"out": 4, "kernel": 3, "bias": False}}, "norm", "act"],
    "stages": [{"block": "basic", "out": 4, "repeat": 1}, {"block": "basic", "out": 8, "repeat": 1, "stride": 2}],
    "head": ["global_pool", "flatten", {"linear": 4}],
}
SENTINEL = "ARCHSPEC_HOSTILE_RAN"
PAYLOADS = [
    f'"""\nimport os; os.environ["{SENTINEL}"] = "1"\n"""',
    f"'''\nimport os; os.environ['{SENTINEL}'] = '1'\n'''",
    f'"); import os; os.environ["{SENTINEL}"] = "1"; ("',
    f"\\\n__import__('os').environ.__setitem__('{SENTINEL}', '1')",
    "\x1b]0;title\x07\x1b[2J\r\u202e", "=cmd|' /C calc'!A0", "${x}", "$\\frac{$", "\\", '"', "\x00", "input", "output",
    "a\nb", "\t", "é", "\U0001f600", "-->", "</TD>", "<B>", "&amp;", "{", "}", "[", "]", ";", "graph", "node",
]
NAMES = st.one_of(st.sampled_from(PAYLOADS), st.text(min_size=1, max_size=24),
                  st.lists(st.sampled_from(PAYLOADS), min_size=2, max_size=3).map("".join))
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _network(name: str, other: str):
    """The analysis of BASE with taps `name` and `other`, or None when the spec refuses the names."""
    assume(name != other)
    try:
        return archspec.load_spec({**BASE, "features": {name: "stages.0", other: "stages.1"}})
    except ArchspecError:
        return None


@given(name=NAMES, other=NAMES)
@SETTINGS
def test_terminal_and_json_writers(name: str, other: str) -> None:
    spec = _network(name, other)
    assume(spec is not None)
    report = archspec.analyze(spec)
    for text in (report.heading(), report.text("stage")):  # what the terminal gets
        assert all(ch.isprintable() or ch in " \n" for ch in text), repr(text)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert [f["name"] for f in data["features"]] == [name, other]


@given(name=NAMES, other=NAMES)
@SETTINGS
def test_python_source_writer(name: str, other: str) -> None:
    import ast

    from archspec.backends.python_source import python_source

    spec = _network(name, other)
    assume(spec is not None)
    source = python_source(spec.network())
    tree = ast.parse(source)  # parses
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert name in strings and other in strings  # the names are data: string literals, as written
    calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "system" not in calls and "__import__" not in calls and "__setitem__" not in calls
    assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) and n.names[0].name == "os" for n in ast.walk(tree))


@pytest.mark.slow
@given(name=NAMES, other=NAMES)
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_imported_python_export_runs_nothing_and_returns_the_names(name: str, other: str, tmp_path_factory) -> None:
    import torch

    spec = _network(name, other)
    assume(spec is not None)
    os.environ.pop(SENTINEL, None)
    path = tmp_path_factory.mktemp("export") / "net.py"
    archspec.export(spec, path)
    module_spec = importlib.util.spec_from_file_location("hostile_export", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    assert SENTINEL not in os.environ
    model = next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                 and v.__module__ == "hostile_export" and v.__name__ == "Hostile")
    assert list(model().eval()(torch.zeros(1, 3, 16, 16))) == [name, other]


@pytest.mark.slow
@given(name=NAMES, other=NAMES)
@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_onnx_writer(name: str, other: str, tmp_path_factory) -> None:
    import onnx
    spec = _network(name, other)
    assume(spec is not None)
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    archspec.export(spec, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == [name, other]
    assert model.graph.input[0].name not in (name, other)


@given(name=NAMES, other=NAMES)
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_dot_writer(name: str, other: str) -> None:
    assert shutil.which("dot"), "Graphviz's dot is missing: tools/setup.sh installs it"
    spec = _network(name, other)
    assume(spec is not None)
    for level in ("stage", "layer"):
        source = archspec.diagram(spec, level=level).source
        done = subprocess.run(["dot", "-Tcanon"], input=source.encode("utf-8"), capture_output=True, timeout=30)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr.decode(errors="replace")


@pytest.mark.slow
@given(values=st.lists(NAMES, min_size=2, max_size=4, unique=True))
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_csv_and_jsonl_writers(values: list[str], tmp_path_factory) -> None:
    """Sampled text goes into the sweep's table: CSV that a spreadsheet never runs, strict JSON lines."""
    assume("${" not in "".join(values) and all("\x00" not in v for v in values))
    folder = tmp_path_factory.mktemp("sweep")
    base = folder / "base.yaml"
    base.write_text("name: base\nvars: {d: x}\ndescription: \"${d}\"\ninput: {channels: 3, size: 16}\n"
                    "stem: [{conv: {out: 4, kernel: 3}}]\nhead: [global_pool, flatten, {linear: 3}]\n")
    space = folder / "space.yaml"
    space.write_text(f"extends: base.yaml\nsamples: {len(values)}\nmax_draws: 200\nseed: 0\n"
                     f"sample: {{vars.d: {{choice: {json.dumps(values)}}}}}\n")
    code, out, err = run_cli("sweep", str(space), "-o", str(folder / "t.csv"))
    assume(code == 0)
    assert all(ch.isprintable() or ch in " \n" for ch in out + err)
    assert run_cli("sweep", str(space), "-o", str(folder / "t.jsonl"))[0] == 0
    rows = [json.loads(line) for line in (folder / "t.jsonl").read_text().splitlines()]
    with open(folder / "t.csv", newline="", encoding="utf-8") as f:
        cells = [r["vars.d"] for r in csv.DictReader(f)]
    assert sorted(r["vars.d"] for r in rows) == sorted(values)
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        original = cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell
        assert original in values


@pytest.mark.parametrize("name", ["if", "class", "None", "lambda"])
def test_a_python_keyword_as_a_layer_name_is_refused_where_it_is_written(name: str, tmp_path) -> None:
    # torch.fx writes a branching block's forward as Python that calls each module as an attribute
    # (`self.if(x)` does not parse): refused where the name is written, as `validate` reports it
    path = tmp_path / "kw.yaml"
    path.write_text("name: kw\ninput: {channels: 3, size: 8}\nnum_classes: 3\n"
                    "blocks:\n  u:\n    layers:\n      - add: [[conv: {out: 3, kernel: 1, name: " + name + "}], identity]\n"
                    "stages: [{block: u}]\nhead: [flatten, linear: 3]\n")
    code, _, err = run_cli("validate", str(path))
    assert code == 2 and f"name '{name}' is a Python keyword" in err and f"{path}:" in err, err
    with pytest.raises(ArchspecError, match="Python keyword"):
        archspec.build(str(path))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(['"', "\\", "a", " ", "\n", "\x1b", "é", "'"]), max_size=12) | st.text())
def test_any_text_reads_back_from_a_generated_docstring(text: str) -> None:
    # a description paragraph or a tap name written into the exported file's docstrings
    import ast

    from archspec.backends.python_source.writer import docstring_safe

    source = 'def f():\n    """' + docstring_safe(text) + '"""\n'
    assert ast.get_docstring(ast.parse(source).body[0], clean=False) == text  # type: ignore[arg-type]
