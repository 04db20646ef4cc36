"""`extends` inserts, appends and deletes list items (docs/spec-language.md, "Editing a parent's
list"); the expected lists are the parent's, edited by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec.core.errors import SpecError

PARENT = """name: parent
input: {size: 32}
stem: [{conv: {out: 8, kernel: 3, padding: 1, name: conv1}}]
stages:
  - {block: basic, out: 8, name: a}
  - {block: basic, out: 16, stride: 2, name: b}
  - {block: basic, out: 32, stride: 2, name: c}
head: [global_pool, flatten, {linear: {out: 10, name: fc}}]
"""
CHILD = """name: child
extends: parent.yaml
stages:
  a: null
  after b: [{block: basic, out: 16, name: b2}]
  before c: [{block: basic, out: 16, name: b3}]
  c: {out: 64}
  append: [{block: basic, out: 64, stride: 2, name: d}]
head:
  before fc: [{dropout: 0.5}]
"""


def write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path / f"{list(files)[-1]}.yaml"


def test_delete_insert_append_and_edit_in_one_child(tmp_path: Path) -> None:
    spec = archspec.load_spec(write(tmp_path, parent=PARENT, child=CHILD)).model
    assert [(s.name, s.out, s.stride) for s in spec.stages] == [
        ("b", 16, 2), ("b2", 16, 1), ("b3", 16, 1), ("c", 64, 2), ("d", 64, 2)]
    assert [type(layer).__name__ for layer in spec.head] == ["GlobalPool", "Flatten", "Dropout", "Linear"]
    assert spec.head[2].p == 0.5


def test_by_index_and_from_the_end(tmp_path: Path) -> None:
    child = "name: child\nextends: parent.yaml\nstages:\n  0: null\n  -1: null\n  after 0: [{block: basic, out: 4}]\n"
    spec = archspec.load_spec(write(tmp_path, parent=PARENT, child=child)).model
    assert [(s.name, s.out) for s in spec.stages] == [(None, 4), ("b", 16)]


@pytest.mark.parametrize("stages, message", [
    ("  after bb: [{block: basic, out: 8}]", r"child.yaml:4:3: stages.after bb: no item 'bb' \(did you mean 'b'\?\)"),
    ("  append: {block: basic, out: 8}", r"child.yaml:4:11: stages.append: 'append' takes a list of items"),
    ("  b: null\n  1: {out: 4}", r"child.yaml:5:3: stages\[1\]: item 1 is edited twice \(as 'b' and 1\)"),
    # an inserted item's mistake is the child's, a moved item's the parent's
    ("  0: null\n  before 0: [{block: basic, out: 8, repeat: 0}]", r"child.yaml:5:45: stages\[0\].repeat: must be >= 1"),
])
def test_mistakes_are_located_in_the_file_that_wrote_them(stages: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=message):
        archspec.load_spec(write(tmp_path, parent=PARENT, child=f"name: child\nextends: parent.yaml\nstages:\n{stages}\n"))


def test_a_moved_parent_item_keeps_the_parents_location(tmp_path: Path) -> None:
    parent = PARENT.replace("out: 32, stride: 2, name: c", "out: -32, stride: 2, name: c")
    child = "name: child\nextends: parent.yaml\nstages:\n  before a: [{block: basic, out: 8}]\n"
    with pytest.raises(SpecError, match=r"parent.yaml:7:25: stages\[3\].out: must be >= 1, got -32"):
        archspec.load_spec(write(tmp_path, parent=parent, child=child))


def test_errors_after_edits_by_index_that_move_items_are_located_where_their_text_is(tmp_path) -> None:
    # a deletion by index moves the parent's next item into its place: an error there is the parent's;
    # an insertion before index 0 moves the child's own edits of items 0 and 1: their errors are the child's
    from tests.clirun import run_cli

    (tmp_path / "b2.yaml").write_text(
        "name: b2\ninput: {channels: 3, size: 4}\nstages:\n  - {block: basic, out: 8, name: s0}\n"
        "  - maxpool: {kernel: 8, name: pool}\n  - {block: basic, out: 16, name: s2}\nhead: [global_pool, flatten]\n")
    (tmp_path / "m2.yaml").write_text("name: m2\nextends: b2.yaml\nstages:\n  0: null\n")
    code, _, err = run_cli("validate", str(tmp_path / "m2.yaml"))
    assert code == 2 and f"{tmp_path / 'b2.yaml'}:5:5: stages[0]:" in err, err
    (tmp_path / "base.yaml").write_text(
        "name: base\ninput: {channels: 3, size: [32, 32]}\nnum_classes: 10\n"
        "stages:\n  - {block: basic, out: 8, name: s0}\n  - {block: basic, out: 16, stride: 2, name: s1}\n"
        "head: [global_pool, flatten, {linear: {out: 10}}]\n")
    (tmp_path / "up.yaml").write_text(
        "name: up\nextends: base.yaml\nstages:\n  before 0: [{block: basic, out: 8, repaet: 2}]\n"
        "  0: {repeat: 0}\n  1: {stride: 0}\n")
    code, _, err = run_cli("validate", str(tmp_path / "up.yaml"))
    up = tmp_path / "up.yaml"
    assert code == 2, err
    assert f"{up}:4:37: stages[0].repaet: unknown key" in err, err
    assert f"{up}:5:15: stages[1].repeat: must be >= 1" in err and f"{up}:6:15: stages[2].stride" in err, err
