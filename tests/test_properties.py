"""Property tests: broken specs never crash archspec, and accepted specs build with the analysed shapes.

1. Random mutations of every zoo spec (of its data and of its text) go through
   `archspec validate` in-process: the exit code is 0 or 2, never 1 (an internal error),
   and nothing escapes as an exception.
2. Random small networks made of the built-in layers and families: every one that
   validates also builds, and the shape the analysis gives for each layer and block
   equals the shape of the tensor the real forward pass produces there (the outside truth
   is PyTorch itself).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from tests.clirun import run_cli
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

ZOO = sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))

# -- 1. mutations never crash -------------------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10), st.integers(-(10**13), 10**13), st.floats(allow_nan=True),
    st.text(max_size=6),
    st.sampled_from(["${nope}", "${num_classes * 2}", "${1/0}", "same", "relu", "botleneck", "depthwise", "",
                     "${", "}", "none", "avg", "batch", "layers", "bottleneck", "basic", "vgg", "flatten"]),
    st.lists(st.integers(-1, 5), max_size=3),
    st.dictionaries(st.sampled_from(["out", "kernel", "block", "repeat", "x", "stride"]), st.integers(-1, 70),
                    max_size=2),
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


def _mutate_tree(doc: dict, data: st.DataObject) -> dict:
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return doc
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    action = data.draw(st.sampled_from(["replace", "delete", "rename", "duplicate", "wrap"]))
    if action == "replace":
        parent[last] = data.draw(ODD_VALUES)
    elif action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        typo = data.draw(st.sampled_from(["s", "", "_", "e"]))
        pos = data.draw(st.integers(0, len(str(last))))
        parent[str(last)[:pos] + typo + str(last)[pos + 1:]] = parent.pop(last)
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(last, parent[last])
    else:
        parent[last] = [parent[last]]
    return doc


TEXT_INSERTS = st.sampled_from(["\t", ":", "- ", "[", "{", "}", "]", "&a ", "*a", "!!python/name:os.system ", "<<: ",
                                "\n", "  ", "'", '"', "#", "---\n", "${", "\x00", "\udcff", "é", "? "])


def _mutate_text(text: str, data: st.DataObject) -> str:
    pos = data.draw(st.integers(0, len(text)))
    action = data.draw(st.sampled_from(["insert", "delete", "truncate", "swap_lines"]))
    if action == "insert":
        return text[:pos] + data.draw(TEXT_INSERTS) + text[pos:]
    if action == "delete":
        return text[:pos] + text[pos + data.draw(st.integers(1, 20)):]
    if action == "truncate":
        return text[:pos]
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_zoo_specs_exit_0_or_2(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(ZOO))
    text = source.read_text(encoding="utf-8")
    if data.draw(st.booleans()):
        doc = yaml.safe_load(text)
        for _ in range(data.draw(st.integers(1, 3))):
            doc = _mutate_tree(doc, data)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            text = _mutate_text(text, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / source.name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        code, _, err = run_cli("validate", str(path))
    assert code in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err
    if code == 2:  # every problem is located in some file: `FILE:LINE:COL: ...` or `FILE: ...`
        first = err.splitlines()[0]
        assert first.startswith((str(path), "--set", str(Path(tmp)), str(source.parent))) or ".yaml" in first, err


# -- 2. validated specs build with the analysed shapes ------------------------------------

PAIR = st.lists(st.integers(1, 4), min_size=2, max_size=2)


@st.composite
def conv_layer(draw: st.DrawFn) -> dict:
    kernel = draw(st.one_of(st.integers(1, 5), PAIR))
    odd = all(k % 2 for k in (kernel if isinstance(kernel, list) else [kernel]))
    padding = draw(st.one_of(st.integers(0, 2), st.lists(st.integers(0, 2), min_size=2, max_size=2),
                             st.just("same") if odd else st.just(0)))
    return {"conv": {"out": draw(st.integers(1, 12)), "kernel": kernel, "stride": draw(st.one_of(st.integers(1, 2), PAIR)),
                     "padding": padding, "dilation": draw(st.integers(1, 2)), "bias": draw(st.booleans())}}


@st.composite
def pool_layer(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    kernel = draw(st.integers(1, 4))
    return {kind: {"kernel": kernel, "stride": draw(st.one_of(st.none(), st.integers(1, 3))),
                   "padding": draw(st.integers(0, kernel // 2)), "ceil_mode": draw(st.booleans())}}


SIMPLE_LAYERS = st.sampled_from([
    "norm", {"norm": "batch"}, {"act": "relu"}, {"act": "gelu"}, {"act": {"type": "leaky_relu", "negative_slope": 0.2}},
    {"act": "hardswish"}, {"lrn": 3}, {"dropout": 0.1}, {"adaptive_pool": {"size": [3, 2], "type": "max"}},
])
FEATURE_LAYER = st.one_of(conv_layer(), pool_layer(), SIMPLE_LAYERS)


@st.composite
def stage(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["basic", "bottleneck", "vgg", "layers", "single"]))
    if kind == "basic":
        return {"block": "basic", "out": draw(st.integers(1, 12)), "repeat": draw(st.integers(1, 2)),
                "stride": draw(st.integers(1, 2))}
    if kind == "bottleneck":
        return {"block": "bottleneck", "out": 4 * draw(st.integers(1, 4)), "repeat": draw(st.integers(1, 2)),
                "stride": draw(st.integers(1, 2)), "groups": draw(st.sampled_from([1, 2])),
                "width_per_group": draw(st.sampled_from([16, 64]))}
    if kind == "vgg":
        return {"block": "vgg", "out": draw(st.integers(1, 12)), "convs": draw(st.integers(1, 2)),
                "kernel": draw(st.sampled_from([1, 3])), "pool": draw(st.sampled_from(["max", "avg", "none"]))}
    if kind == "layers":
        return {"block": "layers", "layers": draw(st.lists(FEATURE_LAYER, min_size=1, max_size=3)),
                "repeat": draw(st.integers(1, 2))}
    return draw(st.one_of(conv_layer(), pool_layer()))


@st.composite
def small_spec(draw: st.DrawFn) -> dict:
    head = draw(st.sampled_from([
        [{"global_pool": "avg"}, "flatten", {"linear": 5}],
        [{"global_pool": "max"}, "flatten", {"dropout": 0.5}, {"linear": {"out": 3, "bias": False}}],
        ["flatten", {"linear": 4}],
        [],
    ]))
    return {
        "name": "random",
        "input": {"channels": draw(st.integers(1, 4)), "size": [draw(st.integers(8, 40)), draw(st.integers(8, 40))]},
        "defaults": draw(st.sampled_from([{}, {"norm": "none"}, {"activation": "silu"}])),
        "stem": draw(st.lists(FEATURE_LAYER, max_size=3)),
        "stages": draw(st.lists(stage(), max_size=3)),
        "head": head,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=small_spec())
def test_validated_specs_build_with_analysed_shapes(spec: dict) -> None:
    import torch

    from archspec import analyze, build, load_spec
    from archspec.core.errors import SpecError

    try:
        loaded = load_spec(spec)
        report = analyze(loaded)
    except SpecError:
        assume(False)
        return
    model = build(loaded).eval()
    seen: dict[str, tuple[int, ...]] = {}
    names = {layer.name for layer in report.layers}
    net = loaded.network()
    blocks = {f"stages.{s}.blocks.{b}": block.graph.out_shape
              for s, st_ in enumerate(net.stages) for b, block in enumerate(st_.blocks)}
    for name, module in model.named_modules():
        if name in names or name in blocks:
            module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.randn(1, *report.input_shape))
    assert tuple(out.shape[1:]) == tuple(report.output_shape)
    for layer in report.layers:
        if layer.name in seen:
            assert seen[layer.name] == tuple(layer.output_shape), layer.name
    for name, shape in blocks.items():
        assert seen[name] == tuple(shape), name
    # Every layer that holds weights has a module, and so was checked above.
    assert all(layer.name in seen for layer in report.layers if layer.params), sorted(names - set(seen))


# -- 3. the schema is never stricter than archspec on what archspec accepts ----------------

# No booleans for numbers and no quoted numbers: pydantic's lax mode takes `true` as 1 and
# "3" as 3, which the schema (rightly, for an editor) does not.
SCHEMA_VALUES = st.one_of(
    st.none(), st.integers(-3, 70), st.floats(-2, 100, allow_nan=False), st.lists(st.integers(0, 9), max_size=3),
    st.sampled_from(["same", "relu", "avg", "max", "batch", "none", "depthwise", "flatten", "basic", "bottleneck"]),
    st.dictionaries(st.sampled_from(["out", "kernel", "stride", "padding", "type"]), st.integers(0, 70), max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_specs_archspec_accepts_pass_the_schema(data: st.DataObject) -> None:
    import jsonschema

    from archspec import load_spec
    from archspec.core.errors import SpecError
    from archspec.spec.schema import build_schema

    doc = yaml.safe_load(data.draw(st.sampled_from(ZOO)).read_text(encoding="utf-8"))
    paths = [p for p in _paths(doc) if p and p[0] not in ("vars", "description")]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = data.draw(SCHEMA_VALUES)
    try:
        load_spec(copy.deepcopy(doc))
    except SpecError:
        event("refused by archspec")
        return
    event("accepted by archspec")
    validator = jsonschema.Draft202012Validator(_schema(build_schema))
    assert [e.message for e in validator.iter_errors(doc)] == []


def _schema(build) -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = build()
    return _SCHEMA


_SCHEMA = None
