"""Issue 23: the surfaces added since the first hardening round (taps, parts, sweeps, compare
metrics, plots, exports) under hostile input. One test per cause; each failed before its fix.

Outside truth: the operating system (stat, os.mkfifo, symlinks), Python's own parser and importer
(`ast.parse`, `importlib`), onnx.checker, the csv and json modules, hand counts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from archspec.core.errors import ArchspecError, ArgumentError
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "tests" / "sweep_spaces" / "small_base.yaml"
TAPNET = """\
name: tapnet
input: {channels: 3, size: 16}
num_classes: 4
stem: [{conv: {out: 4, kernel: 3, bias: false}}, norm, act]
stages:
  - {block: basic, out: 4, repeat: 1}
  - {block: basic, out: 8, repeat: 1, stride: 2}
head: [global_pool: avg, flatten, linear: 4]
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _space(tmp_path: Path, name: str = "space.yaml", base: Path = BASE) -> Path:
    return _write(tmp_path / name, f"extends: {base}\nsamples: 2\nseed: 1\nsample: {{vars.width: {{choice: [8, 16]}}}}\n")


# -- (a) files lost or code run -------------------------------------------------------------------

@pytest.mark.slow
def test_no_plot_replaces_an_input_of_the_command(tmp_path: Path) -> None:
    """Item 1: every file a command read (space file, base spec, an extends parent, the metrics table,
    a symlink's target) is refused as any of its outputs, not only as -o/--emit."""
    base = _write(tmp_path / "base.png", BASE.read_text())
    space = _space(tmp_path, "space.png", base)
    before = {p: p.read_bytes() for p in (base, space)}
    for target in (space, base):
        code, _, err = run_cli("sweep", str(space), "--plot", str(target))
        assert code == 2 and "is an input of this command" in err, err
    parent = _write(tmp_path / "parent.png", TAPNET)
    child = _write(tmp_path / "child.yaml", f"extends: {parent.name}\nname: child\n")
    metrics = _write(tmp_path / "m.png", "name,top1\nchild,1\n")
    link = tmp_path / "link.png"
    link.symlink_to(child)
    for target, extra in ((parent, []), (metrics, ["--metric", str(metrics)]), (link, [])):
        code, _, err = run_cli("compare", str(child), *extra, "--plot", str(target))
        assert code == 2 and "is an input of this command" in err, (target, err)
    assert parent.read_text() == TAPNET and metrics.read_text() == "name,top1\nchild,1\n"
    assert child.read_text().startswith("extends") and link.is_symlink()
    assert {p: p.read_bytes() for p in (base, space)} == before


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_sweep_checks_every_output_before_any_work(tmp_path: Path, kind: str) -> None:
    """Item 2: a --plot or --emit that cannot be written is refused before the table is written."""
    bad = tmp_path / "bad.png"
    bad.mkdir() if kind == "directory" else os.mkfifo(bad)
    table = tmp_path / "t.csv"
    code, _, err = run_cli("sweep", str(_space(tmp_path)), "-o", str(table), "--plot", str(bad))
    assert code == 2 and "regular file" in err and not table.exists(), err
    emit = tmp_path / "emit"
    os.mkfifo(emit)
    code, _, err = run_cli("sweep", str(_space(tmp_path)), "-o", str(table), "--emit", str(emit))
    assert code == 2 and "not a directory" in err and not table.exists(), err


HOSTILE_TAP = 'a"""\nimport os; os.environ["ARCHSPEC_PWNED"] = "1"\n"""'


def _import(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_python_export_of_hostile_tap_and_fpn_names_runs_none_of_them(tmp_path: Path, monkeypatch) -> None:
    """Item 3: a tap name or an FPN `names:` entry that closes the docstring is text in the export,
    never code: importing the file runs nothing of it, and the names come back intact."""
    import json

    monkeypatch.delenv("ARCHSPEC_PWNED", raising=False)
    fpn = (f"necks: {{fpn: {{block: fpn, in: [stages.0, stages.1], out: 4, names: [{json.dumps(HOSTILE_TAP)}, "
           f"'b\\\\']}}}}\nfeatures: {{{json.dumps(HOSTILE_TAP + 'x')}: stages.1, fpn: necks.fpn}}\n")
    spec = _write(tmp_path / "net.yaml", TAPNET + fpn)
    out = tmp_path / "net.py"
    code, _, err = run_cli("export", str(spec), "-o", str(out))
    assert code == 0, err
    import torch

    module = _import(out)
    assert "ARCHSPEC_PWNED" not in os.environ
    outputs = module.Tapnet().eval()(torch.zeros(1, 3, 16, 16))
    assert list(outputs) == [HOSTILE_TAP + "x", f"fpn.{HOSTILE_TAP}", "fpn.b\\\\", "fpn.pool"]


@pytest.mark.slow
def test_onnx_export_with_a_tap_named_input_passes_the_checker(tmp_path: Path) -> None:
    """Item 4: the graph input is renamed when a tap takes its name; the file passes onnx.checker."""
    import onnx
    spec = _write(tmp_path / "net.yaml", TAPNET + "features: {input: stages.0, out: stages.1}\n")
    out = tmp_path / "net.onnx"
    code, _, err = run_cli("export", str(spec), "-o", str(out))
    assert code == 0, err
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["input", "out"]
    assert [i.name for i in model.graph.input] == ["input_1"]


def test_sweep_workers_are_bounded_by_the_cpus(tmp_path: Path) -> None:
    """Item 5: -j beyond the machine's CPUs is refused before any process starts; the API alike."""
    import archspec
    from archspec.sweeps import run_sweep

    for bad in (0, 100000, 2.5, True):  # first: before the fix, the CLI below started 100,000 processes
        with pytest.raises(ArgumentError):
            archspec.sweep(str(_space(tmp_path)), jobs=bad)
    with pytest.raises(ArgumentError):
        run_sweep(__import__("archspec.sweeps", fromlist=["load_space"]).load_space(_space(tmp_path)), samples=3)
    with pytest.raises(ArgumentError):
        archspec.sweep([str(_space(tmp_path))])
    code, _, err = run_cli("sweep", str(_space(tmp_path)), "-j", "100000")
    from archspec.sweeps.engine import max_jobs

    assert max_jobs() == max(os.cpu_count() or 1, 4)
    assert code == 2 and f"-j must be from 1 to {max_jobs()}" in err, err
    assert issubclass(ArgumentError, ArchspecError)


# -- (b) hangs and memory -------------------------------------------------------------------------

SMALL = """\
input: {channels: 3, size: 32}
stem: [{conv: {out: 8, kernel: 3, padding: 1}}]
stages:
  - {block: basic, out: 8, repeat: 1}
  - {block: basic, out: 8, repeat: 1, stride: 2}
head: [global_pool, flatten, {linear: 3}]
"""
NOTHING = '{if: "${False}", then: [act]}'


def _timed_cli(*argv: str) -> tuple[int, str, float]:
    """Run the CLI in this process; the seconds are CPU time (a hang guard that load does not fail)."""
    import time

    start = time.process_time()
    code, _, err = run_cli(*argv)
    return code, err, time.process_time() - start


@pytest.mark.slow
@pytest.mark.parametrize("body", [
    "- {block: nothing, repeat: 1000000000000000}\n",  # a nested block that makes no layer, 10^15 times
    "- " + "{for: i, in: '${range(5000)}', do: {for: j, in: '${range(5000)}', do: "
    "{for: k, in: '${range(5000)}', do: " + NOTHING + "}}}\n",  # 1.25 x 10^11 iterations of nothing
])
def test_loops_and_repeats_that_make_no_layer_are_bounded(tmp_path: Path, body: str) -> None:
    """Item 6: the work bound counts loop iterations and nested blocks, not only layers emitted."""
    blocks = f"blocks:\n  nothing:\n    layers: [{NOTHING}]\n  many:\n    layers:\n      {body}"
    spec = _write(tmp_path / "net.yaml", "name: net\n" + SMALL.replace("block: basic, out: 8, repeat: 1}",
                                                                        "block: many}", 1) + blocks)
    code, err, seconds = _timed_cli("validate", str(spec))
    assert code == 2 and "more than 200,000 loop iterations and nested blocks" in err, err
    assert seconds < 20


def test_list_helpers_check_their_size_before_allocating() -> None:
    """Item 8: split_channels (and range) refuse a list beyond the expression bound before building it."""
    import tracemalloc

    from archspec.spec.expr import split_channels

    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="result too large"):
            split_channels(10**7, 10**7)  # before the fix: an 80 MB list, then refused
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert split_channels(10, 3) == [4, 3, 3]  # timm's _split_channels: the remainder to the first


@pytest.mark.slow
@pytest.mark.parametrize("necks, features", [
    ("".join(f"  s{i}: {{block: stream, in: stages.0, unit: basic, params: {{out: 8}}, repeat: 1024}}\n"
             for i in range(60)), "{" + ", ".join(f"o{i}: necks.s{i}" for i in range(60)) + "}"),
    ("  fpn: {block: fpn, out: 4, in: [" + ", ".join(["stages.0"] * 15000) + "]}\n", "{f: necks.fpn}"),
])
def test_the_layer_limit_holds_for_necks_and_heads(tmp_path: Path, necks: str, features: str) -> None:
    """Item 9: 60 streams of 1,024 blocks (430,088 layers) or an FPN of 15,000 inputs is refused like a
    stage beyond the limit, at the neck, in seconds."""
    spec = _write(tmp_path / "net.yaml", f"name: net\n{SMALL}necks:\n{necks}features: {features}\n")
    code, err, seconds = _timed_cli("validate", str(spec))
    assert code == 2 and "necks." in err and "the network has more than 50,000 layers" in err, err[:300]
    assert seconds < 20


def test_a_chain_of_thousands_of_necks_is_ordered_without_recursion() -> None:
    """Item 10: part ordering walks with its own stack: 1,500 necks in a chain (listed last first)
    analyse, and a cycle at the end of a long chain is still named."""
    import yaml

    import archspec

    doc = {"name": "chain", **yaml.safe_load(SMALL)}
    chain = {f"n{i}": {"block": "fcn_head", "in": [f"necks.n{i - 1}" if i else "stages.0"], "classes": 8}
             for i in reversed(range(1500))}
    report = archspec.analyze({**doc, "necks": chain, "features": {"out": "necks.n1499"}})
    assert report.features[0].channels == 8
    chain["n0"]["in"] = ["necks.n1499"]
    with pytest.raises(ArchspecError, match="a cycle between parts: "):
        archspec.analyze({**doc, "necks": chain, "features": {"out": "necks.n1499"}})


# -- (c) numbers ----------------------------------------------------------------------------------

def test_dilations_and_rates_are_bounded_like_every_size(tmp_path: Path) -> None:
    """Item 11: 12 stages of `stride: 64, dilate: true` and an ASPP rate of 1e19 are located errors
    before torch (which overflowed int64); 65,536 is the bound of every size, as of the input's side."""
    stages = "".join("  - {block: bottleneck, out: 8, stride: 64, dilate: true}\n" for _ in range(12))
    spec = _write(tmp_path / "dil.yaml", "name: dil\ninput: {channels: 3, size: 64}\nstem: [{conv: {out: 8, kernel: 3}}]\n"
                  f"stages:\n{stages}head: [global_pool, flatten, {{linear: 3}}]\n")
    code, _, err = run_cli("validate", str(spec))
    assert code == 2 and "dil.yaml:7:5: stages[2]: trading stage 2's stride 64 for dilation makes the dilation " \
                         "262,144, more than 65,536" in err, err
    aspp = _write(tmp_path / "aspp.yaml", "name: aspp\n" + SMALL +
                  "heads: {seg: {block: deeplab_head, in: [stages.0, input], classes: 3, rates: [10000000000000000000]}}\n")
    code, _, err = run_cli("validate", str(aspp))
    assert code == 2 and "heads.seg.rates[0]: must be <= 65536, got 10000000000000000000" in err, err
    conv = _write(tmp_path / "conv.yaml", "name: c\n" + SMALL.replace("padding: 1}", "padding: 1, dilation: 65537}"))
    code, _, err = run_cli("validate", str(conv))
    assert code == 2 and "stem[0].conv.dilation: must be <= 65536, got 65537" in err, err


@pytest.mark.parametrize("index", ["²", "٣", "9" * 5000])
def test_indices_are_ascii_digits_of_bounded_length(tmp_path: Path, index: str) -> None:
    """Item 12: a superscript digit or a 5,000-digit index is no index (a located 'no item'), in list
    edits, --set, taps and part sources; `str.isdigit` took them and `int` failed."""
    base = _write(tmp_path / "base.yaml", "name: base\n" + SMALL)
    cases = [
        ("validate", str(base), "--set", f"stages.{index}.repeat=2"),
        ("validate", str(_write(tmp_path / "edit.yaml", f"extends: base.yaml\nstages: {{'{index[:1000]}': {{repeat: 2}}}}\n"))),
        ("validate", str(_write(tmp_path / "tap.yaml", f"extends: base.yaml\nfeatures: [stages.0.blocks.{index[:200]}]\n"))),
        ("validate", str(_write(tmp_path / "src.yaml", f"extends: base.yaml\nheads: {{h: {{block: fcn_head, in: "
                                                                  f"[stages.{index[:200]}], classes: 2}}}}\n"))),
    ]
    for argv in cases:
        code, _, err = run_cli(*argv)
        assert code == 2 and "internal error" not in err and ("no item" in err or "no stage" in err or "no block" in err
                                                               or "must be" in err), (argv[1], err[:300])


@pytest.mark.parametrize("value", ["w_a: 1e308", "w_0: " + "8" * 400, "w_m: 1e300", "group_width: [8, 131072]"])
def test_regnet_parameters_are_bounded_before_the_width_rule(tmp_path: Path, value: str) -> None:
    """Item 13: the width rule's arithmetic overflowed (inf to int, a 400-digit int to float)."""
    fixed = {"depth": "4", "w_0": "8", "w_a": "8", "w_m": "2", "group_width": "8"}
    name, _, given = value.partition(": ")
    fixed[name] = given
    params = ", ".join(f"{k}: {v}" for k, v in fixed.items())
    space = _write(tmp_path / "space.yaml", f"extends: {REPO / 'docs/examples/regnet_y_like.yaml'}\nsamples: 2\n"
                   f"sample:\n  vars: {{regnet: {{{params}}}}}\n")
    code, _, err = run_cli("sweep", str(space))
    assert code == 2 and f"{name}: must be at most 65,536" in err, err[:300]


def test_non_finite_numbers_never_bound_nothing_nor_reach_json(tmp_path: Path) -> None:
    """Item 14: a NaN bound filtered nothing (every comparison with NaN is false); a sampled
    infinity was written to --json and .jsonl as `Infinity`, which no JSON parser takes."""
    for text, message in (("constraints: {macs: {max: .nan}}\n", "a bound is a number such as 4e8 or '400M', got NaN"),
                          ("sample: {vars.kernel: {choice: [3, .inf]}}\n", "the choices must be finite numbers, got inf")):
        space = _write(tmp_path / "space.yaml", f"extends: {BASE}\nsamples: 2\n" +
                       ("sample: {vars.width: {choice: [8, 16]}}\n" if "sample" not in text else "") + text)
        code, _, err = run_cli("sweep", str(space), "-o", str(tmp_path / "t.jsonl"))
        assert code == 2 and message in err, err


# -- (d) messages and API -------------------------------------------------------------------------

ESC = "\x1b]0;pwned\x07\x1b[2J"


def test_file_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    """Item 15: every line the commands print (a sweep's summary, compare's notes, `wrote FILE`)
    escapes control characters, as errors and tables already did."""
    space = _space(tmp_path, f"s{ESC}.yaml")
    table = tmp_path / f"t{ESC}.csv"
    code, out, err = run_cli("sweep", str(space), "-o", str(table))
    assert code == 0 and "\x1b" not in out + err and "\\x1b" in out and "\\x1b" in err, (out, err)
    metrics = _write(tmp_path / f"m{ESC}.csv", "name,top1\nresnet18,1\n")
    code, out, err = run_cli("compare", "resnet18", "alexnet", "--metric", str(metrics))
    assert code == 0 and "lacks some numbers" in err and "\x1b" not in out + err, err


@pytest.mark.slow
def test_metric_tables_with_huge_cells_and_mathtext_names_are_plain_input(tmp_path: Path) -> None:
    """Item 16: a cell past the csv module's limit is a located error; a column or network name that
    matplotlib would read as mathtext (`$\\frac{$`) is drawn as it is written."""
    import matplotlib  # noqa: F401  (a dev dependency: fails, never skips, when missing)
    big = _write(tmp_path / "big.csv", "name,top1\nalexnet,2\nresnet18," + "1" * 200_000 + "\n")
    code, _, err = run_cli("compare", "resnet18", "--metric", str(big))
    assert code == 2 and "big.csv:3: not a table of numbers (field larger than field limit" in err, err
    math = _write(tmp_path / "math.csv", "name,$\\frac{$\nresnet18,1\nalexnet,2\n")
    code, _, err = run_cli("compare", "resnet18", "alexnet", "--metric", str(math), "--plot", str(tmp_path / "p.svg"),
                           "--title", "$x^{$")
    assert code == 0, err
    svg = (tmp_path / "p.svg").read_text()
    assert "internal error" not in err and svg.startswith("<?xml")


def test_emitted_specs_round_trip_text_that_looks_like_an_expression(tmp_path: Path) -> None:
    """Item 17: a resolved value holding `${x}` as text (made by `${'$'}{x}`) is emitted so that it
    validates again and reads back as the same text; a checkpoint's spec alike."""
    import archspec

    base = _write(tmp_path / "lit.yaml", "name: lit\ndescription: \"cost: ${'$'}{x} per unit\"\nvars: {width: 8}\n"
                  "input: {channels: 3, size: 16}\nstem: [{conv: {out: \"${width}\", kernel: 3}}]\n"
                  "head: [global_pool, flatten, {linear: 3}]\n")
    space = _write(tmp_path / "space.yaml", f"extends: {base.name}\nsamples: 2\nsample: {{vars.width: {{choice: [8, 16]}}}}\n")
    code, _, err = run_cli("sweep", str(space), "--emit", str(tmp_path / "kept"))
    assert code == 0, err
    for emitted in sorted((tmp_path / "kept").glob("*.yaml")):
        assert archspec.load_spec(emitted).model.description == "cost: ${x} per unit"
    from archspec.core.frozen import thaw

    again = archspec.load_spec(thaw(archspec.load_spec(base).network().spec_data))  # what a checkpoint embeds
    assert again.model.description == "cost: ${x} per unit"


@pytest.mark.parametrize("text, message", [
    ("necks: {my-neck: {block: fcn_head, in: [stages.0], classes: 2}}\n", "'my-neck' is not a valid part name"),
])
def test_a_pattern_mismatch_says_what_the_pattern_is_for(tmp_path: Path, text: str, message: str) -> None:
    """Item 18: only an init scheme is told about init schemes; --input is blamed on --input."""
    _write(tmp_path / "base.yaml", "name: base\n" + SMALL)
    code, _, err = run_cli("validate", str(_write(tmp_path / "net.yaml", "extends: base.yaml\n" + text)))
    assert code == 2 and message in err and "init scheme" not in err, err
    code, _, err = run_cli("validate", str(tmp_path / "base.yaml"), "--input", "3x0x0")
    assert code == 2 and "--input: input must be CxHxW, HxW or a size, each from 1 to 65536, got 3x0x0" in err
    assert "--set" not in err, err


@pytest.mark.slow
def test_build_totals_name_every_output_of_a_network_returning_a_dict() -> None:
    """Item 19: fcn_resnet50 returns {out, aux}; its totals said "output 2048x8x8"."""
    code, out, err = run_cli("build", "fcn_resnet50", "--input", "3x64x64")
    assert code == 0, err
    total = next(line for line in out.splitlines() if line.startswith("total:"))
    assert "{out 21x64x64, aux 21x64x64}" in total and "2048" not in total, total


def test_sweep_csv_cells_never_run_as_formulas(tmp_path: Path) -> None:
    """Item 21: text cells starting with = + - @ get a leading quote (OWASP); numbers stay numbers."""
    import csv

    base = _write(tmp_path / "inj.yaml", "name: inj\nvars: {d: x}\ndescription: \"${d}\"\ninput: {channels: 3, size: 16}\n"
                  "stem: [{conv: {out: 4, kernel: 3}}]\nhead: [global_pool, flatten, {linear: 3}]\n")
    formulas = ['=HYPERLINK("http://x")', "@SUM(1)", "+1+2", "-1+2"]
    space = _write(tmp_path / "space.yaml", f"extends: {base.name}\nsamples: 4\nseed: 0\n"
                   f"sample: {{vars.d: {{choice: {json_list(formulas)}}}}}\n")
    code, _, err = run_cli("sweep", str(space), "-o", str(tmp_path / "t.csv"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert sorted(r["vars.d"] for r in rows) == sorted("'" + f for f in formulas)
    assert all(not r["params"].startswith("'") for r in rows)


def json_list(values: list[str]) -> str:
    import json

    return json.dumps(values)


# -- (e) the two cases still open from the earlier corpus -----------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_extends_of_a_pipe_or_device_is_located_like_a_directory(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "parent.yaml"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/null")
    spec = _write(tmp_path / "child.yaml", "name: c\nextends: parent.yaml\n")
    code, _, err = run_cli("validate", str(spec))
    word = "a named pipe" if kind == "fifo" else "a character device"
    assert code == 2 and f"child.yaml:2:10: extends: 'parent.yaml' is {word}, not a spec file" in err, err


@pytest.mark.slow
def test_a_layer_diagram_too_large_for_dot_is_refused_before_dot_starts(tmp_path: Path) -> None:
    """4,096 blocks at layer level (28,677 boxes) waited the full 60 s for `dot`; now refused at
    once, naming --fold. The bound sits where dot took 19 s (3,600 boxes, loaded machine)."""
    import time

    import archspec
    from archspec.backends.diagram import MAX_DOT_NODES, DiagramTooLarge, check_drawable

    stages = "".join("  - {block: basic, out: 8, repeat: 1024}\n" for _ in range(4))
    spec = _write(tmp_path / "big.yaml", "name: big\ninput: {channels: 3, size: 32}\n"
                  "stem: [{conv: {out: 8, kernel: 3, padding: 1}}]\n"
                  f"stages:\n{stages}head: [global_pool, flatten, {{linear: 3}}]\n")
    with pytest.raises(DiagramTooLarge, match="--fold"):
        check_drawable(archspec.diagram(str(spec), level="layer", fold=False).source)
    check_drawable(archspec.diagram("resnet152", level="layer").source)  # 516 boxes: drawn
    assert MAX_DOT_NODES < 7000
    start = time.process_time()
    code, _, err = run_cli("diagram", str(spec), "--level", "layer", "-o", str(tmp_path / "big.svg"))
    assert code == 2 and "boxes, more than Graphviz's `dot` lays out" in err and "--fold" in err, err
    assert time.process_time() - start < 20
