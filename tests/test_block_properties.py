"""Property test: every YAML block that `validate` accepts also builds and exports.

Hypothesis writes random `blocks:` sections: block types that nest earlier ones (named
and unnamed, two of one type in one scope, repeated, reading a named value), residuals,
`add` / `concat` / `mul` with listed, named, identity, looped and named-value branches,
named merges, conditionals, `for` loops, `from:` reads of earlier values and of the
block's input, splits into equal and unequal parts, resizes (by a scale and to another
value's size), named layers (drawn from a few names, so that layer names and scope names
collide), branched sub-blocks followed by plain layers (the shape of issue 14's item 8). For each spec that `load_spec` and
`analyze` accept (what `archspec validate` runs), the test checks against PyTorch itself:
the module builds, the forward pass gives the analysed shape at every block and at
every layer with weights, the layer-level diagram is drawn, and the exported Python
source registers the same state_dict keys and computes the same outputs. A spec refused must be refused with a located
`ArchspecError`, never another exception; mutated copies of the tested graph examples
never make `validate` fail with an internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tempfile

import pytest
import torch
import yaml
from tests.clirun import run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_properties import _mutate_text, _mutate_tree

import archspec
from tests.generated import exported_model
from test_block_graphs import FUSE, HEAD, MIX, REPEATED, RES2

# A few names only, so that layers, branches and nested blocks of one scope share them.
NAMES = st.sampled_from(["t", "inner", "a", "b0", "conv", "add", "b1", "forward"])  # forward: every module has it
KEEP = {"conv": {"out": "${channels}"}}  # a 1x1 conv that keeps the width: for residual bodies


@st.composite
def layer(draw: st.DrawFn, seen: list[str]) -> Any:
    kind = draw(st.sampled_from(["conv", "conv3", "half", "norm", "act", "pool", "dropout", "split", "split_sizes",
                                 "resize", "resize_to"]))
    item = {
        "conv": {"conv": {"out": "${out}"}},
        "conv3": {"conv": {"out": "${out}", "kernel": 3, "padding": 1}},
        "half": {"conv": {"out": "${max(out // 2, 1)}", "groups": 1}},
        "norm": {"norm": {}},
        "act": {"act": {"type": draw(st.sampled_from(["relu", "gelu", "sigmoid"]))}},
        "pool": {"maxpool": {"kernel": 3, "stride": 1, "padding": 1}},
        "dropout": {"dropout": {"p": 0.2}},
        "split": {"split": {"parts": 2, "index": draw(st.integers(0, 1))}},
        "split_sizes": {"split": {"sizes": "${split_channels(channels, min(channels, 3))}",
                                  "index": "${min(channels, 3) - 1}"}},
        "resize": {"resize": {"scale": draw(st.sampled_from([0.5, 2])),
                              "mode": draw(st.sampled_from(["nearest", "bilinear"]))}},
        "resize_to": {"resize": {"from": draw(st.lists(earlier(seen), min_size=2, max_size=2)),
                                 "mode": draw(st.sampled_from(["nearest", "bilinear"]))}},
    }[kind]
    fields = next(iter(item.values()))
    if kind != "resize_to" and draw(st.integers(0, 5)) == 0:  # read an earlier value, not the current one
        fields["from"] = draw(earlier(seen))
    if draw(st.integers(0, 4)) == 0:
        fields["name"] = draw(NAMES)
        seen.append(fields["name"])
    return item


def earlier(seen: list[str]) -> st.SearchStrategy[str]:
    """A name given earlier in the block (mostly), the block's input, or any name (rarely)."""
    return st.one_of(st.sampled_from(seen), st.just("input")) if seen else st.just("input")


def reference(name: str) -> Any:
    """A branch that is an earlier value: its bare name, unless that is also a layer type."""
    return {"from": name} if name in ("conv", "add") else name


@st.composite
def body(draw: st.DrawFn, nested: list[str], seen: list[str], depth: int, longest: int = 3) -> list:
    """Any items; or, often, a branched item (a merge or a nested block) followed by two or
    three unnamed plain layers, the shape that once broke a named scope (issue 14, item 8)."""
    if depth < 2 and draw(st.booleans()):
        first = draw(item(nested, seen, depth, branched=True))
        plain = st.sampled_from([{"conv": {"out": "${out}"}}, "norm", {"act": "relu"}, {"dropout": 0.1}])
        return [first] + draw(st.lists(plain, min_size=2, max_size=3))
    return [draw(item(nested, seen, depth)) for _ in range(draw(st.integers(1, longest)))]


@st.composite
def item(draw: st.DrawFn, nested: list[str], seen: list[str], depth: int, branched: bool = False) -> Any:
    choices = [] if branched else ["layer"] * 5 + ["from"]
    choices += ["residual", "merge", "merge", "if", "for"] if depth < 2 else []
    choices += ["block", "block"] if nested else []
    what = draw(st.sampled_from(choices or ["layer"]))
    if what == "layer":
        return draw(layer(seen))
    if what == "from":
        return {"from": draw(earlier(seen))}
    if what == "block":
        entry: dict[str, Any] = {"block": draw(st.sampled_from(nested)), "out": draw(st.sampled_from(["${out}", 4]))}
        if draw(st.integers(0, 3)) == 0:
            entry["repeat"] = draw(st.integers(1, 2))
        if draw(st.integers(0, 4)) == 0:
            entry["from"] = draw(earlier(seen))
        if draw(st.booleans()):
            entry["name"] = draw(NAMES)
            seen.append(entry["name"])
        return entry
    if what == "residual":
        return {"residual": draw(body(nested, seen, depth + 1)) + [KEEP]}
    if what == "if":
        step = {"if": draw(st.sampled_from(["${index == 0}", "${index != 0}", "${out > 4}"])),
                "then": draw(body(nested, seen, depth + 1, 2))}
        if draw(st.booleans()):
            step["else"] = draw(body(nested, seen, depth + 1, 2))
        return step
    if what == "for":
        return {"for": "k", "in": draw(st.sampled_from([[1, 3], "${range(2)}", [3]])),
                "do": [{"conv": {"out": "${out}", "kernel": "${2 * k + 1}", "padding": "${k}"}}]}
    kind = draw(st.sampled_from(["add", "concat", "mul"]))
    if draw(st.integers(0, 5)) == 0:  # one branch per element of a list
        merge: dict[str, Any] = {kind: {"for": "k", "in": [1, 3], "do": [{"conv": {"out": "${out}", "kernel": "${k}",
                                                                              "padding": "same"}}]}}
    else:
        count = draw(st.integers(2, 3))
        branches: list[Any] = []
        for _ in range(count):
            branch = draw(body(nested, seen, depth + 1))
            # Summed and multiplied branches mostly end at one width, so that most specs are valid.
            if kind != "concat" and draw(st.integers(0, 4)):
                branch.append({"conv": {"out": "${out}"}})
            choice = draw(st.integers(0, 6))
            branches.append("identity" if choice == 0 else reference(draw(earlier(seen))) if choice == 1 else branch)
        if draw(st.booleans()):
            names = draw(st.lists(NAMES, min_size=count, max_size=count, unique=True))
            merge = {kind: dict(zip(names, branches))}
            seen.extend(names)
        else:
            merge = {kind: branches}
    if draw(st.integers(0, 3)) == 0:
        merge["name"] = draw(NAMES)
        seen.append(merge["name"])
    return merge


@st.composite
def spec(draw: st.DrawFn, types: int = 3) -> dict:
    blocks: dict[str, Any] = {}
    for k in range(types):
        layers = draw(body(list(blocks), [], 0, 4))
        if "${out" not in str(layers):  # a parameter never used is refused; use it somewhere
            layers.insert(draw(st.integers(0, len(layers))), {"conv": {"out": "${out}"}})
        params: dict[str, Any] = {"out": {"type": "int", "channels": True}}
        blocks[f"b{k}"] = {"params": params, "layers": layers}
    top = f"b{types - 1}"
    blocks[top]["layers"].insert(0, {"conv": {"out": "${out}", "kernel": 3, "padding": 1, "stride": "${stride}"}})
    return {
        "name": "random_blocks",
        "input": {"channels": 3, "size": [8, 8]},
        "defaults": {"norm": "batch", "activation": "relu"},
        "blocks": blocks,
        "stem": [{"conv": {"out": 4, "kernel": 3, "padding": 1}}],
        "stages": [{"block": top, "out": draw(st.sampled_from([4, 8])), "repeat": draw(st.integers(1, 2)),
                    "stride": draw(st.integers(1, 2))}],
        "head": [{"global_pool": "avg"}, "flatten", {"linear": 3}],
    }


def _runs_as_analysed(loaded: Any, report: Any) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """(the module, an input, its output), after checking that every block's output and every
    weighted layer's has the analysed shape in PyTorch's forward pass."""
    torch.manual_seed(0)
    model = archspec.build(loaded).eval()
    net = loaded.network()
    blocks = {f"stages.{s}.blocks.{b}": block.graph.out_shape
              for s, stage in enumerate(net.stages) for b, block in enumerate(stage.blocks)}
    weighted = {row.name: tuple(row.output_shape) for row in report.layers if row.params}
    seen: dict[str, tuple[int, ...]] = {}
    for name, module in model.named_modules():
        if name in blocks or name in weighted:
            module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
    x = torch.randn(2, *report.input_shape)
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape[1:]) == tuple(report.output_shape)
    assert {n: seen.get(n) for n in blocks} == {n: tuple(s) for n, s in blocks.items()}
    assert {n: seen.get(n) for n in weighted} == weighted
    return model, x, out


def check(doc: dict, tmp_path: Path, note: Any = event) -> None:
    text = yaml.safe_dump(doc, sort_keys=False)
    try:
        loaded = archspec.load_spec(text)
        report = archspec.analyze(loaded)
    except archspec.ArchspecError as exc:
        note(f"refused: {str(exc).split(': ')[-1][:40]}")
        return
    note("accepted")
    model, x, out = _runs_as_analysed(loaded, report)
    # The same blocks at another input size: lowering reuses the graphs emitted above with their
    # shapes inferred again (spec/lower.py); PyTorch's shapes are the truth there too.
    try:
        other = archspec.load_spec(text, **{"input.size": [11, 11]})
        other_report = archspec.analyze(other)
    except archspec.ArchspecError:
        note("refused at 11x11")
    else:
        _runs_as_analysed(other, other_report)

    assert "->" in archspec.diagram(loaded, "layer").source  # the diagram draws the graph's edges

    exported = exported_model(text, "random_blocks", tmp_path)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert [(k, tuple(v.shape)) for k, v in exported.state_dict().items()] == ours
    exported.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), out, rtol=1e-5, atol=1e-5)


SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                         HealthCheck.function_scoped_fixture]}


@settings(max_examples=20, **SETTINGS)
@given(doc=spec(types=2))
def test_accepted_yaml_blocks_build_run_and_export(doc: dict, tmp_path: Path) -> None:
    check(doc, tmp_path)


@pytest.mark.slow
@settings(max_examples=100, **SETTINGS)
@given(doc=spec(types=3))
def test_accepted_yaml_blocks_build_run_and_export_many(doc: dict, tmp_path: Path) -> None:
    check(doc, tmp_path)


NESTED_SCOPE = """
name: nested_scope
input: {channels: 3, size: [16, 16]}
defaults: {norm: batch, activation: relu}
blocks:
  inner: {params: {out: int}, layers: [conv: {out: "${out // 2}"}, concat: [identity, [conv: {out: "${out // 2}"}]]]}
  mid: {params: {out: int}, layers: [{block: inner, out: "${out}"}, conv: {out: "${out}"}, norm]}
  outer: {params: {out: int}, layers: [{block: mid, out: "${out}", name: t}, conv: {out: "${out}"}]}
stages: [{block: outer, out: 8}]
head: [global_pool, flatten, linear: 10]
"""


def test_named_scope_with_a_branched_sub_block_and_trailing_layers(tmp_path: Path) -> None:
    """Issue 14, item 8: `t.inner` beside `t`'s two trailing layers once made `t` an nn.Sequential."""
    doc = yaml.safe_load(NESTED_SCOPE)
    outcome: list[str] = []
    check(doc, tmp_path, outcome.append)
    assert outcome == ["accepted"]
    keys = [k for k in archspec.build(NESTED_SCOPE).state_dict() if k.endswith("weight")]
    block = "stages.0.blocks.0."
    assert keys == [block + k for k in ("t.inner.0.weight", "t.inner.1.weight", "t.0.weight", "t.1.weight",
                                        "0.weight")] + ["head.2.weight"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_graph_blocks_exit_0_or_2(data: st.DataObject) -> None:
    """The graph constructs (from:, for:, split sizes, repeat, named merges) never crash `validate`
    when their specs are mutated: the exit code is 0 or 2, never an internal error."""
    text = data.draw(st.sampled_from([HEAD % (20, RES2), HEAD % (11, MIX), HEAD % (3, FUSE), HEAD % (3, REPEATED),
                                      NESTED_SCOPE]))
    if data.draw(st.booleans()):
        doc = yaml.safe_load(text)
        for _ in range(data.draw(st.integers(1, 3))):
            doc = _mutate_tree(doc, data)
        text = yaml.safe_dump(doc, sort_keys=False)
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            text = _mutate_text(text, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.yaml"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        code, _, err = run_cli("validate", str(path))
    assert code in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err
