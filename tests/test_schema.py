"""The JSON Schema: current, valid, accepted by every zoo spec, and strict where the models are.

The outside truth is the `jsonschema` package's implementation of JSON Schema 2020-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonschema.exceptions import best_match

from archspec.spec.schema import build_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "archspec.schema.json"
ZOO = sorted((ROOT / "specs").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/archspec.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(build_schema())


def errors(validator: jsonschema.Draft202012Validator, doc: dict) -> list[tuple[list, str]]:
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(doc)]


def test_schema_file_is_current() -> None:
    """In a fresh process, so that families other tests register do not count."""
    import subprocess
    import sys

    assert SCHEMA_FILE.is_file(), "run: python tools/gen_schema.py"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_schema.py"), "--check"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, f"stale schema: run python tools/gen_schema.py\n{run.stderr}"


def test_schema_is_valid_json_schema_2020_12() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_zoo_spec_validates_against_the_schema(path: Path, validator) -> None:
    assert errors(validator, yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_zoo_spec_names_the_schema_on_its_first_line(path: Path) -> None:
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE


def test_schema_has_every_registered_layer_and_family() -> None:
    from archspec.spec.families import load_builtin_blocks
    from archspec.spec.layers import layer_kinds

    schema = build_schema()
    assert sorted(schema["$defs"]["LayerMapping"]["properties"]) == layer_kinds()
    assert schema["$defs"]["Layer"]["anyOf"][1]["enum"] == layer_kinds()
    dispatched = [rule["if"]["properties"]["block"]["const"] for rule in schema["$defs"]["Stage"]["then"]["allOf"]]
    # a stage passes one value: the block types that read two or more are parts only
    assert sorted(dispatched) == sorted(f for f, c in load_builtin_blocks().items() if c.inputs[0] == 1)
    assert {"hr_fuse", "lraspp_head"} <= set(load_builtin_blocks()) - set(dispatched)
    parts = [rule["if"]["properties"]["block"]["const"] for rule in schema["$defs"]["Part"]["allOf"]]
    assert sorted(parts) == sorted(load_builtin_blocks())  # any block type is a part


BASE = {"name": "net", "input": {"size": 32}, "stem": [{"conv": {"out": 8, "kernel": 3}}]}


@pytest.mark.parametrize("change, path", [
    ({"stages": [{"block": "basic", "out": 16, "repaet": 2}]}, ["stages", 0]),
    ({"stages": [{"block": "botleneck", "out": 16}]}, ["stages", 0, "block"]),
    ({"stages": [{"block": "basic", "out": 16, "repeat": 0}]}, ["stages", 0, "repeat"]),
    ({"stages": [{"block": "basic", "out": 16, "groups": 2}]}, ["stages", 0]),  # a bottleneck key on basic
    ({"stem": [{"conv": {"out": 8, "kernel": 3}, "norm": None}]}, ["stem", 0]),  # two layers in one item
    ({"stem": ["nrom"]}, ["stem", 0]),
    ({"stem": [{"act": "rleu"}]}, ["stem", 0, "act"]),
    ({"stem": [{"conv": 8}]}, ["stem", 0, "conv"]),  # conv has no shorthand
    ({"defaults": {"activation": "rlu"}}, ["defaults", "activation"]),
    ({"input": {"size": [1, 2, 3]}}, ["input", "size"]),
    ({"num_clases": 10}, []),
])
def test_schema_rejects(change: dict, path: list, validator) -> None:
    """Refused, and the most relevant error (as editors pick it) points at the wrong value."""
    best = best_match(validator.iter_errors({**BASE, **change}))
    assert best is not None
    assert list(best.absolute_path) == path, best.message


@pytest.mark.parametrize("change", [
    {"input": {"size": 32}},  # a square size as one int
    {"defaults": {"norm": "none", "activation": "None"}},
    {"stem": ["flatten", {"act": "relu"}, {"linear": 10}, {"dropout": 0.5}, {"norm": None}]},  # bare / shorthand / null
    {"stages": [{"maxpool": {"kernel": 3, "stride": 2}}]},  # a single-layer stage
    {"stages": [{"block": "${kind}", "out": 16}], "vars": {"kind": "basic"}},
    {"num_classes": "${classes}", "input": {"size": ["${h}", 32]}, "vars": {"classes": 10, "h": 32}},
    {"blocks": {"mine": {}}, "stages": [{"block": "mine", "width": 3}]},  # a user-defined family
])
def test_schema_accepts(change: dict, validator) -> None:
    assert errors(validator, {**BASE, **change}) == []


def test_schema_needs_a_name_unless_the_spec_extends_another(validator) -> None:
    assert errors(validator, {"stem": []}) != []
    assert errors(validator, {"extends": "resnet50.yaml", "num_classes": 10}) == []


def test_unregistered_block_types_are_refused_without_user_blocks(validator) -> None:
    assert errors(validator, {**BASE, "stages": [{"block": "mine", "width": 3}]}) != []


def test_cli_schema_prints_and_writes_atomically(tmp_path, capsys) -> None:
    from archspec.cli.main import main

    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema_text()
    target = tmp_path / "out" / "archspec.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == schema_text()
    assert [p.name for p in target.parent.iterdir()] == ["archspec.schema.json"]  # no temporary left


def test_gen_schema_tool_check(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_schema", ROOT / "tools" / "gen_schema.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    target = tmp_path / "schema.json"
    assert tool.main(["--check", "-o", str(target)]) == 1  # missing
    assert tool.main(["-o", str(target)]) == 0
    assert tool.main(["--check", "-o", str(target)]) == 0
    target.write_text("{}", encoding="utf-8")
    assert tool.main(["--check", "-o", str(target)]) == 1  # stale


def test_list_edits_are_valid_only_under_extends(validator) -> None:
    edit = {"stages": {"denseblock3": {"repeat": 32}}, "head": {"classifier": {"linear": {"out": 10}}}}
    assert errors(validator, {"extends": "densenet121.yaml", "name": "d169", **edit}) == []
    assert errors(validator, {"name": "d", "input": {"size": 8}, **edit}) != []


@pytest.mark.parametrize("change, field", [
    ({"stem": [{"conv": {"out": 8, "kernel": 3, "bias": 0}}]}, "bias"),
    ({"stem": [{"conv": {"out": 8, "kernel": 3, "bias": "yes"}}]}, "bias"),
    ({"stem": [{"maxpool": {"kernel": 2, "ceil_mode": 1}}]}, "ceil_mode"),
    ({"stages": [{"block": "basic", "out": 16, "dilate": 1}]}, "dilate"),
    ({"head": ["flatten", {"linear": {"out": 10, "bias": "false"}}]}, "bias"),
])
def test_a_value_the_schema_refuses_as_a_boolean_archspec_refuses_too(change: dict, field: str, validator) -> None:
    """pydantic's lax mode would read 0, 1, "yes" and "false" as booleans; the schema does not."""
    from archspec import load_spec
    from archspec.core.errors import SpecError

    doc = {**BASE, **change}
    best = best_match(validator.iter_errors(doc))
    assert best is not None and list(best.absolute_path)[-1] == field
    with pytest.raises(SpecError, match=f"{field}: must be true or false"):
        load_spec(doc)


@pytest.mark.parametrize("change, field, says", [
    ({"stages": [{"block": "basic", "out": 16, "repeat": True}]}, "repeat", "an integer, got true"),
    ({"stages": [{"block": "basic", "out": "16"}]}, "out", "an integer, got '16'"),
    ({"stem": [{"conv": {"out": 8, "kernel": 3, "stride": False}}]}, "stride", "an integer, got false"),
    ({"stem": [{"conv": {"out": 8, "kernel": 3}}, {"dropout": {"p": "0.5"}}]}, "p", "a number, got '0.5'"),
    ({"input": {"channels": True}}, "channels", "an integer, got true"),
])
def test_a_boolean_or_text_for_a_number_is_refused_as_the_schema_refuses_it(change: dict, field: str, says: str,
                                                                              validator) -> None:
    """pydantic's lax mode would read true as 1 and "16" as 16; the schema does not."""
    from archspec import load_spec
    from archspec.core.errors import SpecError

    doc = {**BASE, **change}
    best = best_match(validator.iter_errors(doc))
    assert best is not None and field in list(best.absolute_path), best
    with pytest.raises(SpecError, match=f"{field}: must be {says}"):
        load_spec(doc)


def test_a_boolean_is_no_literal_number_and_a_yaml_block_default_is_as_strict_as_a_value() -> None:
    from archspec import load_spec
    from archspec.core.errors import SpecError

    with pytest.raises(SpecError, match=r"stages\[0\]\.version: must be one of 1, 2; got true"):
        load_spec({**BASE, "stages": [{"block": "swin", "out": 8, "heads": 2, "window": 2, "version": True}]})
    block = {"params": {"width": {"type": "int", "default": True}}, "layers": [{"conv": {"out": "${width}"}}]}
    with pytest.raises(SpecError, match=r"blocks\.unit\.params\.width\.default: must be an integer, got true"):
        load_spec({**BASE, "blocks": {"unit": block}, "stages": [{"block": "unit"}]})


def test_a_numpy_integer_is_an_integer_and_a_number_where_text_is_wanted_says_to_quote_it() -> None:
    import numpy as np

    from archspec import load_spec
    from archspec.core.errors import SpecError

    net = load_spec({**BASE, "stem": [{"conv": {"out": np.int64(8), "kernel": np.int32(3)}}]}).network()
    assert net.stem.nodes[0].op.out == 8 and type(net.stem.nodes[0].op.out) is int
    with pytest.raises(SpecError, match=r"name: must be a string, got 200000\.0 \(a number in YAML: put it in quotes\)"):
        load_spec("name: 2e5\ninput: {size: 8}\nstem: []\n")


def test_a_whole_float_is_still_an_integer() -> None:
    # the value of an expression such as ${width / 2}: lax mode's rule, kept
    from archspec import load_spec

    net = load_spec({**BASE, "vars": {"w": 16}, "stem": [{"conv": {"out": "${w / 2}", "kernel": 3}}]}).network()
    assert net.stem.nodes[0].op.out == 8 and type(net.stem.nodes[0].op.out) is int


def test_an_exponent_without_a_dot_is_a_number_as_yaml_1_2_and_the_schema_read_it(validator) -> None:
    import yaml

    from archspec import load_spec

    text = "name: net\ninput: {size: 32}\ndefaults: {norm_eps: 1e-3}\nstem: [{conv: {out: 8, kernel: 3}}, norm]\n"
    assert yaml.safe_load(text)["defaults"]["norm_eps"] == "1e-3"  # PyYAML's YAML 1.1: text
    assert errors(validator, {**BASE, "defaults": {"norm_eps": 1e-3}}) == []
    net = load_spec(text).network()
    assert net.stem.nodes[1].op.eps == 0.001 and type(net.stem.nodes[1].op.eps) is float


def _unguarded_numbers(schema: object, path: str = "") -> list[str]:
    """Where a pydantic core schema validates an int or a float that no `SpecNumbers` guard holds."""
    from archspec.core.numbers import _MARK

    if isinstance(schema, dict):
        if (schema.get("metadata") or {}).get(_MARK):
            return []
        kind = schema.get("type")
        numeric_literal = kind == "literal" and any(type(v) in (int, float) for v in schema.get("expected", ()))
        found = [path] if kind in ("int", "float") or numeric_literal else []
        return found + [p for k, v in schema.items() if k not in ("json_schema_input_schema", "metadata")
                        for p in _unguarded_numbers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(schema, list):
        return [p for i, v in enumerate(schema) for p in _unguarded_numbers(v, f"{path}[{i}]")]
    return []


def test_every_number_a_spec_writes_refuses_booleans_and_text() -> None:
    """An op, a family or a spec model that is not a `SpecNumbers` would read true as 1 and "3" as 3."""
    from archspec.ir.ops import OPS, op_class
    from archspec.spec.families import load_builtin_blocks
    from archspec.spec.models import SpecModel
    from archspec.spec.block_language.parse import Definition, ParamDecl
    from archspec.spec.weights import Layout, Transforms, WeightsEntry
    from archspec.sweeps.space import SpaceModel

    op_class("conv")  # the built-in ops registered
    lax = {}
    for model in [SpecModel, SpaceModel, WeightsEntry, Transforms, Layout, ParamDecl, Definition, *OPS.values(),
                  *load_builtin_blocks().values()]:
        model.model_rebuild()
        found = _unguarded_numbers(model.__pydantic_core_schema__)
        if found:
            lax[model.__name__] = found
    assert lax == {}


def _lax_booleans(schema: object, path: str = "") -> list[str]:
    """Where a pydantic core schema validates a bool without `strict` (it would read 0 and "yes").
    A before-validator's `json_schema_input_schema` only describes the JSON schema (`se: true`
    where `se` is a float): it validates nothing."""
    if isinstance(schema, dict):
        found = [path] if schema.get("type") == "bool" and not schema.get("strict") else []
        return found + [p for k, v in schema.items() if k != "json_schema_input_schema"
                        for p in _lax_booleans(v, f"{path}.{k}" if path else str(k))]
    if isinstance(schema, list):
        return [p for i, v in enumerate(schema) for p in _lax_booleans(v, f"{path}[{i}]")]
    return []


def test_every_boolean_a_spec_writes_is_strict() -> None:
    """An op, a family or a spec key declared `bool` instead of `StrictBool` would accept what the
    schema refuses (the test above, for the fields that exist today)."""
    from archspec.ir.ops import OPS, op_class
    from archspec.spec.families import load_builtin_blocks
    from archspec.spec.models import SpecModel

    op_class("conv")  # the built-in ops registered
    models = [SpecModel, *OPS.values(), *load_builtin_blocks().values()]
    lax = {}
    for model in models:
        model.model_rebuild()
        found = _lax_booleans(model.__pydantic_core_schema__)
        if found:
            lax[model.__name__] = found
    assert lax == {}


@pytest.mark.parametrize("conv, says, not_says", [
    ({"groups": 0}, ["must be >= 1", "depthwise"], []),  # a constraint, and the words a union also takes
    ({"padding": "valid"}, ["must be one of same"], ["an integer", "a list"]),  # a word: the words only
])
def test_union_messages_name_the_choices_not_every_branch_type(conv: dict, says: list, not_says: list) -> None:
    from archspec import load_spec
    from archspec.core.errors import SpecError

    with pytest.raises(SpecError) as caught:
        load_spec({**BASE, "stem": [{"conv": {"out": 8, "kernel": 3, **conv}}]})
    message = str(caught.value)
    assert all(s in message for s in says) and not any(s in message for s in not_says), message
