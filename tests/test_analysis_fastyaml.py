"""The libyaml-assisted loader gives exactly what PyYAML's pure-Python loader gives."""

from __future__ import annotations

import pytest
import yaml

from archspec import zoo
from archspec.errors import SpecError
from archspec.spec import fastyaml, source

DOCUMENTS = [
    "a: &x [1, 2]\nb: *x\nc: {<<: {k: 1}, d: 2}\nd: 2024-01-01\ne: 1e3\nf: yes\ng: ~\nh: 0x1F\ni: |\n  text\n",
    "name: x\nstages:\n  - {block: basic, out: 64}\n  - block: basic\n    out: 128\n",
    # problems: the messages and locations must be PyYAML's, whatever path found them
    "a: b: c", "a: [1, 2", "a:\n  - x\n - y", "a: 'unterminated", "{a: 1}}", "a: *nope", "a: 1\n---\nb: 2",
    "key: @bad", "x: !!python/object:os.system 1", "- a\nb: 1", "a: {b: 1, b: 2}", "", "[1, 2]",
    "a: " + "[" * 600 + "]" * 600,
]


def parse(text: str):
    try:
        s = source.parse_text(text, "t.yaml")
        return "ok", s.data, sorted(s.values.items()), sorted(s.keys.items())
    except SpecError as exc:
        return "error", str(exc)



def test_libyaml_is_used_here() -> None:
    assert fastyaml.compose(yaml.SafeLoader, "a: 1") is not None


def test_same_results_as_pure_python(monkeypatch) -> None:
    texts = DOCUMENTS + [zoo.path_of(n).read_text() for n in zoo.names()]
    fast = [parse(t) for t in texts]
    monkeypatch.setattr(source, "compose", lambda *args: None)
    slow = [parse(t) for t in texts]
    for text, a, b in zip(texts, fast, slow):
        assert a == b, text[:40]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    # libyaml's own composer recurses in C and overflows the stack on this; ours does not.
    text = "a: " + "[" * 1_500 + "]" * 1_500
    assert fastyaml.compose(yaml.SafeLoader, text) is None
    with pytest.raises(SpecError):
        source.parse_text(text, "deep.yaml")
