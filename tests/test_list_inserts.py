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
