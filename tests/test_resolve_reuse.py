"""A base document resolved again and again (a sweep's samples, `resolve_loaded`): what is shared
with the base is resolved once, locations are worked out only when an error asks for them, and
neither may change a result. The expected documents are written out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.core.errors import SpecError
from archspec.spec.resolve import load_document, resolve_loaded
from archspec.spec.source import read_file

BASE = """\
name: reuse
vars:
  w: 8
  twice: "${w * 2}"
input: {channels: 3, size: [32, 32]}
num_classes: 10
stages:
  - {block: basic, out: "${twice}", repeat: 1}
  - {block: basic, out: 64, repeat: "${num_classes // 5}"}
head:
  - linear: {out: "${num_classes}"}
weights:
  - {name: a, metrics: {acc: 1.5}}
"""


@pytest.fixture()
def base(tmp_path: Path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    return load_document(read_file(path))


def expected(w: object, twice: object, num_classes: object = 10, size: object = (32, 32)) -> dict:
    return {"name": "reuse", "input": {"channels": 3, "size": list(size)}, "num_classes": num_classes,
            "stages": [{"block": "basic", "out": twice, "repeat": 1},
                       {"block": "basic", "out": 64, "repeat": num_classes // 5}],  # type: ignore[operator]
            "head": [{"linear": {"out": num_classes}}],
            "weights": [{"name": "a", "metrics": {"acc": 1.5}}]}


def test_each_sample_is_the_document_written_out_by_hand_types_and_all(base) -> None:
    data, locator = base
    # Values Python calls equal (1 == 1.0 == True, 0.0 == -0.0) resolve to different documents.
    for w, twice in [(8, 16), (1, 2), (1.0, 2.0), (True, 2), (0.0, 0.0), (-0.0, -0.0), (8, 16), (1, 2)]:
        doc = resolve_loaded(data, locator, {"vars.w": w})
        assert repr(doc.data) == repr(expected(w, twice)), w
    doc = resolve_loaded(data, locator, {"num_classes": 20.0})
    assert repr(doc.data) == repr(expected(8, 16, num_classes=20.0))
    doc = resolve_loaded(data, locator, {"input.size": [64, 48]})
    assert repr(doc.data) == repr(expected(8, 16, size=(64, 48)))
    assert repr(resolve_loaded(data, locator).data) == repr(expected(8, 16))


def test_changing_a_resolved_document_changes_neither_the_base_nor_the_next_sample(base) -> None:
    data, locator = base
    first = resolve_loaded(data, locator, {"vars.w": 4}).data
    first["weights"][0]["metrics"]["acc"] = 99
    first["head"][0]["linear"]["out"] = -1
    first["input"]["size"].append(7)
    assert resolve_loaded(data, locator, {"vars.w": 4}).data == expected(4, 8)
    assert data["weights"][0]["metrics"]["acc"] == 1.5


def test_a_failing_sample_after_good_ones_is_located_where_the_text_is(base, tmp_path: Path) -> None:
    data, locator = base
    file = tmp_path / "base.yaml"
    for w in (8, 9, 8):
        resolve_loaded(data, locator, {"vars.w": w})
    with pytest.raises(SpecError) as bad_var:  # None * 2: at the variable's text, line 4, column 10
        resolve_loaded(data, locator, {"vars.w": None})
    assert str(bad_var.value) == (f"{file}:4:10: vars.twice: in '${{w * 2}}': unsupported operand type(s) for *: "
                                  "'NoneType' and 'int'")
    with pytest.raises(SpecError) as bad_classes:  # "x" // 5: the second stage's repeat, line 9, column 37
        resolve_loaded(data, locator, {"num_classes": "x"})
    assert str(bad_classes.value) == (f"{file}:9:37: stages[1].repeat: in '${{num_classes // 5}}': unsupported "
                                      "operand type(s) for //: 'str' and 'int'")
    with pytest.raises(SpecError) as unknown:  # a value set by an override is located at the override
        resolve_loaded(data, locator, {"vars.w": "${nope}"})
    assert str(unknown.value).startswith("override vars.w: vars.w: in '${nope}': unknown name 'nope'")
    with pytest.raises(SpecError) as again:
        resolve_loaded(data, locator, {"vars.w": None})
    assert str(again.value) == str(bad_var.value)
    assert (locator.where(("stages", 1, "repeat")).line, locator.where(("vars", "w")).line) == (9, 3)


def test_a_replaced_value_forgets_the_locations_under_it_in_the_sample_only(base) -> None:
    data, locator = base
    doc = resolve_loaded(data, locator, {"input": {"channels": 1, "size": 28}})
    assert str(doc.locator.where(("input", "size"))) == "override input"
    assert doc.locator.where(("weights", 0, "metrics", "acc")).line == 13
    replaced = resolve_loaded(data, locator, {"weights": []})
    assert ("weights", 0, "metrics") not in replaced.locator.values
    assert str(replaced.locator.where(("weights", 0, "metrics"))) == "override weights"
    assert (locator.where(("input", "size")).line, locator.where(("weights", 0, "metrics", "acc")).line) == (5, 13)


SPEC = {"name": "t", "input": {"channels": 3, "size": 32}, "num_classes": 10, "stem": [{"conv": {"out": 16, "kernel": 3}}],
        "stages": [{"block": "basic", "out": 16, "repeat": 1},
                   {"block": "fire", "squeeze": 4, "expand1x1": 8, "expand3x3": 8}],
        "head": [{"global_pool": "avg"}, "flatten", {"linear": 10}]}


def with_stage(i: int, **changes: object) -> dict:
    stages = [dict(s) for s in SPEC["stages"]]  # type: ignore[attr-defined]
    stages[i].update(changes)
    return {**SPEC, "stages": stages}


def test_a_stage_validated_before_is_checked_as_written_each_time() -> None:
    import archspec

    good = archspec.load_spec(SPEC)
    assert [s.repeat for s in good.model.stages] == [1, 1]
    for _ in range(2):  # a fire module takes no stride, however often it is asked
        with pytest.raises(SpecError, match=r"stages\[1\]\.stride: block type 'fire' takes no stride"):
            archspec.load_spec(with_stage(1, stride=2))
        with pytest.raises(SpecError, match=r"stages\[0\]\.repeat: "):
            archspec.load_spec(with_stage(0, repeat="x"))
        with pytest.raises(SpecError, match=r"stages\[0\]\.block: unknown block type 'basik'"):
            archspec.load_spec(with_stage(0, block="basik"))
    assert [s.repeat for s in archspec.load_spec(with_stage(0, repeat=3)).model.stages] == [3, 1]
    assert archspec.load_spec(SPEC).model == good.model


@pytest.mark.parametrize("big, values", [
    ("big: [" + ", ".join(["0"] * 15_000) + "]", 15_001),  # resolved once, then taken from the memo
    ("blocks: {b: [" + ", ".join(["0"] * 15_000) + "]}", 15_002),  # passed on as written, counted once
])
def test_a_document_that_variables_blow_up_is_refused_however_its_parts_were_counted(
        tmp_path: Path, big: str, values: int) -> None:
    # `values` in the big key, then `other`'s n + 1: more than 20,000 in all from n = 20,000 - values
    # on, and the error is `other`'s, the key that crossed.
    path = tmp_path / "big.yaml"
    path.write_text(f"vars: {{n: 1}}\n{big}\nother: \"${{[1] * n}}\"\n")
    data, locator = load_document(read_file(path))
    last_good = 20_000 - values - 1
    for n in (1, last_good, 1):
        assert len(resolve_loaded(data, locator, {"vars.n": n}).data["other"]) == n
    with pytest.raises(SpecError) as blown:
        resolve_loaded(data, locator, {"vars.n": last_good + 1})
    assert str(blown.value) == f"{path}:3:8: other: variables expand the document to more than 20,000 values"


def test_overrides_are_copied_so_the_callers_later_changes_reach_no_document(base) -> None:
    from archspec.spec.source import plain_copy

    nested = {"size": [48, 48]}
    doc = resolve_loaded(*base, {"input": nested, "vars.w": 4})
    nested["size"][0] = 1  # the caller reuses its dict for the next sample
    assert doc.data["input"] == {"channels": 3, "size": [48, 48]}
    # what is not plain data (a tuple that holds a list) is deep-copied, not shared
    held = ([1, 2], "text")
    copied = plain_copy({"a": held})
    held[0].append(3)
    assert copied == {"a": ([1, 2], "text")}


def test_a_text_met_twice_in_a_document_gives_each_place_its_value(tmp_path: Path) -> None:
    """A scalar text is evaluated once per document (`${n}` in both stages, `${n * 5}` twice): every
    place gets its value, and the next document (another n) its own."""
    path = tmp_path / "twice.yaml"
    path.write_text('name: twice\nvars: {n: 2}\ninput: {channels: 3, size: [32, 32]}\nnum_classes: "${n * 5}"\n'
                    'stages:\n  - {block: basic, out: 8, repeat: "${n}"}\n  - {block: basic, out: 16, repeat: "${n}"}\n'
                    'head:\n  - linear: {out: "${n * 5}"}\n  - act: {type: "${\'re\' + \'lu\' if n > 2 else \'gelu\'}"}\n')
    loaded = load_document(read_file(path))
    for n in (2, 3, 2):
        doc = resolve_loaded(*loaded, {"vars.n": n})
        assert [s["repeat"] for s in doc.data["stages"]] == [n, n]
        assert doc.data["num_classes"] == doc.data["head"][0]["linear"]["out"] == n * 5
        assert doc.data["head"][1] == {"act": {"type": "relu" if n > 2 else "gelu"}}


def test_overrides_past_the_limits_are_refused_before_they_are_copied() -> None:
    from archspec.spec.source import MAX_DEPTH, MAX_NODES, checked_copy

    looped: list = []
    looped.append(looped)  # a list that holds itself: deeper than any limit
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_DEPTH} levels"):
        checked_copy({"x": looped}, "<overrides>")
    shared: list = [0] * 10
    for _ in range(5):  # 10^6 values once each use is counted, in 60 lists
        shared = [shared] * 10
    with pytest.raises(SpecError, match=f"more than {MAX_NODES:,} values"):
        checked_copy({"x": shared}, "<overrides>")
    within = {"x": [[1, 2], {"y": (3, [4])}]}
    copied = checked_copy(within, "<overrides>")
    assert copied == within and copied["x"][0] is not within["x"][0] and copied["x"][1]["y"][1] is not within["x"][1]["y"][1]


def test_overrides_holding_what_is_not_plain_data_are_checked_whole_before_any_copy() -> None:
    """A value that cannot be copied (a lock) beside one nested too deep: the limit is the error, as
    the whole is checked before anything is copied."""
    import threading

    from archspec.spec.source import MAX_DEPTH, checked_copy

    deep: list = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_DEPTH} levels"):
        checked_copy({"a": threading.Lock(), "b": deep}, "<overrides>")
    held = {"a": (1, [2])}
    copied = checked_copy(held, "<overrides>")
    assert copied == held and copied["a"][1] is not held["a"][1]
