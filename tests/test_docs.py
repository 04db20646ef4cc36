"""Every example of README.md and docs/*.md runs, and shows what the tool prints (issue 25).

One test per runnable unit (a block and the blocks marked `continue` under it), so xdist spreads
them; blocks marked `slow` run in the full suite only. The markers and rules are
tests/docblocks.py's HOWTO, which every failure message prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.docblocks import HOWTO, ROOT, Block, DocError, Unit, commands, diff, elides, matches, normalize, pages, units

DRIVER = Path(__file__).with_name("docdriver.py")
SHIMS = {  # what a reader's shell finds, pointed at this checkout
    "archspec": f'exec "{sys.executable}" -m archspec "$@"',
    "python": f'exec "{sys.executable}" "$@"',
    "python3": f'exec "{sys.executable}" "$@"',
    "torchrun": f'exec "{sys.executable}" -m torch.distributed.run "$@"',
}


def _collect() -> tuple[list, list, list[str], list[str]]:
    """The units to run (a unit that two pages show alike runs once, under both names), the
    `file=` blocks to compare, the errors of reading markers, and the blocks marked `skip` (not
    collected as tests: a skipped test would read as one more pass in the tally)."""
    same: dict[tuple, list[Unit]] = {}
    files, errors, not_run = [], [], []
    for page in pages():
        try:
            u, f = units(page)
        except DocError as e:
            errors.append(str(e))
            continue
        for unit in u:
            same.setdefault(unit.key(), []).append(unit)
        files += [pytest.param(b, id=f"{b.where}={b.keys['file']}") for b in f]
    run = []
    for alike in same.values():
        unit = alike[0]
        marks = [pytest.mark.slow] if any(x.has("slow") for x in alike) else []
        skip = [b for b in unit.blocks if "skip" in b.words]
        if skip:
            not_run.append(f"{skip[0].where}: {skip[0].keys['reason']}")
            continue
        run.append(pytest.param(unit, id="+".join(x.where for x in alike), marks=marks))
    return run, files, errors, not_run


RUN, FILES, ERRORS, NOT_RUN = _collect()


def test_markers_read() -> None:
    """Every marker is one the test knows, every fence is closed."""
    assert not ERRORS, "\n\n".join(ERRORS)


def test_blocks_that_cannot_run_here_are_few_and_say_why() -> None:
    """`skip` is for what this machine cannot do (GPUs, downloads, the suite itself), each with its
    reason; it is not a way out of a failing example."""
    assert len(NOT_RUN) <= 12, "\n".join(NOT_RUN)
    assert all(line.split(": ", 1)[1].strip() for line in NOT_RUN), "\n".join(NOT_RUN)


def test_every_page_has_runnable_blocks() -> None:
    """The collection finds the pages (a moved README would otherwise leave nothing to test)."""
    assert {"README.md", "docs/analysis.md", "docs/errors.md"} <= set(pages())
    assert len(RUN) >= 40


def _fail(unit_or_block: Unit | Block, what: str) -> None:
    pytest.fail(f"{unit_or_block.where}: {what}\n\n{HOWTO}", pytrace=False)


@pytest.mark.parametrize("block", FILES)
def test_shown_file_is_the_file(block: Block) -> None:
    """A block marked `file=PATH` of a file the repository has shows that file (or, as an excerpt, its lines)."""
    path = block.keys["file"]
    have = normalize((ROOT / path).read_text(encoding="utf-8"))
    shown = normalize(block.text)
    if not matches(shown, have, "excerpt" in block.words):
        _fail(block, f"the block is not {path} as it is now\n{diff(shown, have)}")


def _scratch(tmp: Path, unit: Unit) -> Path:
    """A reader's checkout: specs/, schemas/, tools/ linked, docs/examples/ copied, the page's files written."""
    for name in ("specs", "schemas", "tools"):
        (tmp / name).symlink_to(ROOT / name)
    (tmp / "docs").mkdir()
    shutil.copytree(ROOT / "docs" / "examples", tmp / "docs" / "examples")
    (tmp / "docs" / "gallery").symlink_to(ROOT / "docs" / "gallery")
    bin_ = tmp / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name, body in SHIMS.items():
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    for f in unit.files:
        target = tmp / f.keys["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text, encoding="utf-8")
    return bin_


def _steps(unit: Unit) -> list[dict]:
    steps = []
    for b in unit.blocks:
        if b.kind == "python":
            steps.append({"kind": "python", "code": b.text, "where": b.where, "line": b.line})
        elif b.kind == "transcript":
            steps.append({"kind": "transcript", "commands": [c.cmd for c in commands(b)]})
        elif b.kind == "script":
            steps.append({"kind": "script", "code": b.text})
        else:
            _fail(b, f"a {b.kind} block cannot be continued")
    return steps


def _validate_yaml(block: Block, tmp: Path) -> None:
    """A ```yaml block is a whole spec that validates."""
    path = tmp / f"block_{block.line}.yaml"
    path.write_text(block.text, encoding="utf-8")
    code, out, err = run_cli("validate", "-q", str(path))
    if code != 0:
        _fail(block, "this YAML is not a whole spec that validates; mark it `fragment` if it is a piece of one,"
                     f" or `file=NAME` if a later block reads it:\n{out}{err}")


@pytest.mark.parametrize("unit", RUN)
def test_doc_block_runs(unit: Unit, tmp_path: Path) -> None:
    """The unit runs as a reader would run it, and prints what the doc shows."""
    if len(unit.blocks) == 1 and unit.blocks[0].kind == "yaml":
        _validate_yaml(unit.blocks[0], tmp_path)
        return
    bin_ = _scratch(tmp_path, unit)
    steps = _steps(unit)
    (tmp_path / ".doc_steps.json").write_text(json.dumps(steps))
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "MPLBACKEND": "Agg", "COLUMNS": "100", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    timeout = int(next((b.keys["timeout"] for b in unit.blocks if "timeout" in b.keys), 300))
    try:
        p = subprocess.run([sys.executable, str(DRIVER), ".doc_steps.json", ".doc_results.json"], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        _fail(unit, f"did not finish in {timeout} s (mark it `timeout=N`, and `slow`, if it must take longer)")
    results_file = tmp_path / ".doc_results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    if len(results) != len(steps):
        _fail(unit, f"the driver stopped after {len(results)} of {len(steps)} blocks:\n{p.stdout[-3000:]}")
    paths = (str(tmp_path), str(tmp_path.resolve()), str(ROOT))
    for b, r in zip(unit.blocks, results):
        _check(b, r, unit.outputs.get(b.line), paths)


def _check(b: Block, r: dict, output: Block | None, paths: tuple[str, ...]) -> None:
    if b.kind == "python":
        actual = normalize(r["out"] + (r["error"] + "\n" if r["error"] else ""), paths)
        if output is None:
            if r["error"]:
                _fail(b, f"raised {r['error']}\n{r['trace']}")
            return
        shown = normalize(output.text)
        if not matches(shown, actual, "excerpt" in output.words):
            extra = f"\n{r['trace']}" if r["error"] else ""
            _fail(output, f"the output shown is not what the block above prints\n{diff(shown, actual)}{extra}")
    elif b.kind == "script":
        if r["rc"] != 0:
            _fail(b, f"exited {r['rc']}:\n{r['out'][-3000:]}")
        if output is not None:
            shown, actual = normalize(output.text), normalize(r["out"], paths)
            if not matches(shown, actual, "excerpt" in output.words):
                _fail(output, f"the output shown is not what the script above prints\n{diff(shown, actual)}")
    else:
        excerpt = "excerpt" in b.words
        for c, res in zip(commands(b), r["commands"]):
            actual = normalize(res["out"], paths)
            shown = normalize(c.shown)
            if res["rc"] is None:
                _fail(b, f"line {c.line}: `{c.cmd}` never finished (the shell exited?):\n{r['rest'][-2000:]}")
            if res["rc"] != 0 and not [s for s in shown if not elides(s)]:
                _fail(b, f"line {c.line}: `{c.cmd}` exited {res['rc']} and the doc shows no error:\n"
                         + "\n".join(actual[-40:]))
            if not matches(shown, actual, excerpt):
                _fail(b, f"line {c.line}: `{c.cmd}` prints something else than shown\n{diff(shown, actual)}")


def test_the_comparison_rules() -> None:
    """What a shown output may leave out, and what it may not (the rules of HOWTO)."""
    assert elides("  ...   # ResNet-18's stages") and elides("...") and not elides("known: a, ...")
    assert matches(["a", "  ...  # b, c", "d"], ["a", "b", "c", "d"], False)
    assert matches(["a", "...", "d"], ["a", "d"], False)
    assert not matches(["a", "d"], ["a", "b", "d"], False)  # no line may go missing silently
    assert not matches(["a", "b"], ["a", "b", "c"], False)
    assert matches(["known: x, ..."], ["known: x, y, z"], False) and not matches(["known: y, ..."], ["known: x, y"], False)
    assert matches(["b", "d"], ["a", "b", "c", "d"], True) and not matches(["d", "b"], ["a", "b", "c", "d"], True)
    assert normalize("done in 2.8 s (112 analysed/s), 254 ms\n/x/y/specs/a.yaml: 3x3\n", ("/x/y",)) == [
        "done in <time> (<time>), <time>", "specs/a.yaml: 3x3"]
    assert normalize("5 stages, 32x32, 2 x MACs") == ["5 stages, 32x32, 2 x MACs"]  # not timings
