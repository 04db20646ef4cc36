"""Hostile and non-YAML files: `archspec validate` ends within seconds, exit 2, one located message.

Also: no YAML tag constructs a Python object, deep nesting does not blow the stack (100k
levels, flow and block style), alias and merge-key bombs are refused, and a file that is
endless (/dev/zero) or huge is not read into memory.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pytest
from tests.clirun import run_cli

from archspec.core.errors import SpecError
from archspec.spec.source import MAX_DEPTH, parse_text

LOCATED = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<column>\d+): \S")
SECONDS = 10  # generous for a loaded 2-core machine; each case takes well under a second alone


def _bomb(levels: int = 9) -> str:
    lines = ["name: bomb", "vars:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 40) -> str:
    lines = ["m0: &m0 {}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


N = 100_000
HOSTILE: dict[str, bytes] = {
    "random_bytes": random.Random(4).randbytes(4096),
    "png_header": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)),
    "ten_megabytes": b"name: big\ndescription: '" + b"x" * (10 * 1024 * 1024) + b"'\n",
    "yaml_bomb": _bomb().encode(),
    "merge_key_bomb": _merge_bomb().encode(),
    "deep_flow_lists": b"[" * N + b"]" * N,
    "deep_flow_mappings": b"{a: " * N + b"1" + b"}" * N,
    "deep_block_lists": b"- " * N + b"x\n",
    "deep_block_mappings": "".join("  " * i + "a:\n" for i in range(700)).encode() + b"  " * 700 + b"a: 1\n",
    "python_object_tag": b"name: !!python/object/new:os.system [echo pwned]\n",
    "custom_tag": b"name: !secret x\n",
    "alias_cycle": b"a: &a [1, *a]\n",
    "latin1_text": "name: caf\u00e9\n".encode("latin-1"),
    "utf16_with_bom": "name: net\n".encode("utf-16"),
    "only_a_bom": b"\xef\xbb\xbf",
    "long_line": b"name: " + b"a" * 900_000 + b"\n",
    "many_keys": ("name: x\n" + "".join(f"k{i}: {i}\n" for i in range(60_000))).encode(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_refused_quickly_with_a_located_message(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(HOSTILE[case])
    start = time.process_time()
    code, out, err = run_cli("validate", str(path))
    elapsed = time.process_time() - start
    assert code == 2, err
    assert out == ""
    assert elapsed < SECONDS, f"{case}: {elapsed:.1f}s"
    first = err.splitlines()[0]
    match = LOCATED.match(first)
    assert match and match["file"] == str(path) and int(match["line"]) >= 1, err[:300]
    assert "Traceback" not in err


def test_deep_nesting_is_refused_at_the_limit_with_its_position() -> None:
    ok = "v: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_text(ok).data  # exactly at the limit: fine
    with pytest.raises(SpecError) as info:
        parse_text("v: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    problem = info.value.problems[0]
    # Root mapping = level 1, so the first '[' (column 4) is level 2 and level MAX_DEPTH + 1 is the
    # (MAX_DEPTH)th bracket, at column 4 + MAX_DEPTH - 1.
    assert (problem.location.line, problem.location.column) == (1, 4 + MAX_DEPTH - 1)
    assert problem.message == f"nested deeper than {MAX_DEPTH} levels"


def test_override_values_past_a_specs_limits_are_refused_before_anything_copies_them() -> None:
    # through the Python API, a value a YAML file cannot hold: a list that holds itself, and lists
    # shared so often (100 x 100 x 100 x 100) that a copy would hold 10^8 values
    import archspec
    from archspec.spec.source import MAX_NODES

    itself: list = []
    itself.append(itself)
    shared: list = [0]
    for _ in range(4):
        shared = [shared] * 100
    for value, message in ((itself, f"nested deeper than {MAX_DEPTH} levels"),
                           (shared, f"more than {MAX_NODES:,} values")):
        start = time.perf_counter()
        with pytest.raises(SpecError) as info:
            archspec.load_spec("lenet5", description=value)
        assert message in str(info.value) and "<overrides>" in str(info.value)
        assert time.perf_counter() - start < 1.0


def test_no_tag_constructs_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f'name: !!python/object/apply:os.mkdir ["{marker}"]',
        f'name: !!python/object/new:os.mkdir ["{marker}"]',
        "name: !!python/name:os.mkdir ''",
        f'!!python/object/apply:os.mkdir ["{marker}"]: 1',
        f'name: x\nstem: !!python/object/apply:os.mkdir ["{marker}"]',
        "name: !!binary aGVsbG8=",
        "name: !!set {a, b}",
        "name: !!omap [a: 1]",
    ]
    for text in payloads:
        with pytest.raises(SpecError) as info:
            parse_text(text, "t.yaml")
        assert "is not allowed" in str(info.value) or "mapping keys must be" in str(info.value), text
    assert not marker.exists()


def test_yaml_merge_keys_follow_the_yaml_rules() -> None:
    """Keys written in the mapping win over merged ones; earlier merged mappings win over later ones."""
    data = parse_text("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], x: 3}\n").data
    assert data["c"] == {"x": 3, "y": 1, "z": 2}
    with pytest.raises(SpecError, match="duplicate key 'x'"):
        parse_text("a: &a {x: 1}\nc: {<<: *a, x: 3, x: 4}\n")


def test_endless_file_is_not_read_into_memory() -> None:
    """/dev/zero never ends: reading it whole would exhaust memory (every supported system has it).
    Only regular files are read, so it is refused before a byte is read."""
    code, _, err = run_cli("validate", "/dev/zero")
    assert (code, err) == (2, "/dev/zero: is a character device, not a spec file\n")


def _plain(value: object) -> bool:
    """Only the data YAML describes: mappings, lists, strings, numbers, booleans, null."""
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_random_garbage_is_refused_with_located_problems() -> None:
    """200 random byte strings and 200 random YAML-ish texts: each is refused with a SpecError
    whose every problem names the file, a line inside it and a column, and says something."""
    rng = random.Random(7)
    alphabet = "ab:-[]{},&*!|>'\"#%@`?\n \t0123456789.$"
    for i in range(400):
        raw = rng.randbytes(rng.randint(0, 300)) if i < 200 else \
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))).encode()
        try:
            source = parse_text(raw, "g.yaml")
        except SpecError as exc:
            lines = raw.count(b"\n") + 1
            for problem in exc.problems:
                where = problem.location
                assert where is not None and where.file == "g.yaml", (i, problem)
                assert 1 <= where.line <= lines + 1 and where.column >= 1, (i, problem)
                assert problem.message.strip(), (i, problem)
            assert str(exc).startswith("g.yaml:"), (i, str(exc))
        else:  # garbage that happens to be YAML must still be plain data, never an object
            assert _plain(source.data), (i, source.data)


def test_random_mappings_parse_to_what_they_say() -> None:
    """The other side of the fuzz test: 100 random flat mappings parse to exactly their values."""
    rng = random.Random(11)
    for _ in range(100):
        expected = {f"k{j}": rng.choice([rng.randint(-999, 999), round(rng.uniform(-9, 9), 3), rng.choice([True, False]),
                                         "s" + str(rng.randint(0, 99)), None]) for j in range(rng.randint(1, 12))}
        text = "".join(f"{k}: {'null' if v is None else str(v).lower() if isinstance(v, bool) else v}\n"
                       for k, v in expected.items())
        assert parse_text(text, "m.yaml").data == expected, text


def test_cli_exit_code_and_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - {block: basic, out: 16, repeat: 0}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = subprocess.run([sys.executable, "-m", "archspec.cli.main", "validate", str(bad)],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == f"{bad}:3:37: stages[0].repeat: must be >= 1, got 0\n"
    debug = subprocess.run([sys.executable, "-m", "archspec.cli.main", "--debug", "validate", str(bad)],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr and "SpecError" in debug.stderr
