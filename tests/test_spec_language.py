"""The spec language: sources, extends, variables, overrides, layers, defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import archspec
from archspec.core.errors import SpecError

SMALL = textwrap.dedent("""\
    name: tiny
    input: {channels: 3, size: 32}
    num_classes: 10
    defaults: {norm: batch, activation: relu}
    stem:
      - conv: {out: 16, kernel: 3, padding: same, bias: false}
      - norm
      - act
    stages:
      - {block: basic, out: 16, repeat: 2}
      - {block: basic, out: 32, repeat: 1, stride: 2}
    head:
      - global_pool: avg
      - flatten
      - linear: ${num_classes}
    """)


def _params_by_hand() -> int:
    stem = 3 * 16 * 9 + 2 * 16
    basic16 = 2 * (16 * 16 * 9 + 2 * 16)
    basic32 = (16 * 32 * 9 + 2 * 32) + (32 * 32 * 9 + 2 * 32) + (16 * 32 + 2 * 32)  # + 1x1 projection
    return stem + 2 * basic16 + basic32 + 32 * 10 + 10


def test_yaml_string_dict_path_and_spec_give_the_same_network(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(SMALL)
    counts = {
        "string": archspec.analyze(SMALL).params,
        "path": archspec.analyze(str(path)).params,
        "Path": archspec.analyze(path).params,
        "dict": archspec.analyze(yaml.safe_load(SMALL)).params,
        "spec": archspec.analyze(archspec.load_spec(path)).params,
    }
    assert set(counts.values()) == {_params_by_hand()}, counts


def test_interpolation_and_overrides() -> None:
    spec = archspec.load_spec(SMALL, num_classes=7, **{"input.size": [64, 48]})
    report = archspec.analyze(spec)
    assert report.output_shape == (7,)
    assert report.input_shape == (3, 64, 48)
    # nested dict overrides merge rather than replace
    assert archspec.load_spec(SMALL, input={"channels": 1}).model.input.shape == (1, 32, 32)


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(SMALL)
    (tmp_path / "child.yaml").write_text(textwrap.dedent("""\
        extends: base.yaml
        name: child
        input: {size: 64}
        stages:
          - {block: basic, out: 16, repeat: 1}
        """))
    spec = archspec.load_spec(tmp_path / "child.yaml")
    assert spec.name == "child"
    assert spec.model.input.channels == 3  # kept from the parent
    assert spec.model.input.size == (64, 64)  # merged from the child
    assert len(spec.model.stages) == 1  # the child's list replaces the parent's
    assert spec.data.get("extends") is None and "vars" not in spec.data


def test_vgg13_is_vgg11_with_two_more_convs() -> None:
    vgg11, vgg13 = archspec.analyze("vgg11"), archspec.analyze("vgg13")
    convs = lambda r: [la for la in r.layers if la.op == "conv"]  # noqa: E731
    assert len(convs(vgg13)) - len(convs(vgg11)) == 2
    # the two extra convs are 3x3 64->64 and 128->128 (configuration B, VGG paper Table 1)
    assert vgg13.params - vgg11.params == (64 * 64 * 9 + 64) + (128 * 128 * 9 + 128)


def test_vars_may_use_arithmetic_and_functions() -> None:
    # inside a YAML flow mapping, an expression is quoted
    text = SMALL.replace("out: 16, repeat: 2}", 'out: "${w * 2}", repeat: "${max(1, depth)}"}')
    text = "vars: {w: 8, depth: 2}\n" + text
    spec = archspec.load_spec(text)
    assert spec.model.stages[0].out == 16 and spec.model.stages[0].repeat == 2


def test_bare_norm_and_act_take_the_defaults() -> None:
    net = archspec.load_spec(SMALL.replace("activation: relu", "activation: silu")).network()
    kinds = [(n.op.kind, getattr(n.op, "type", None)) for n in net.stem.nodes]
    assert kinds == [("conv", None), ("norm", "batch"), ("act", "silu")]


def test_stage_defaults_override_only_that_stage() -> None:
    text = SMALL.replace("{block: basic, out: 32, repeat: 1, stride: 2}",
                         "{block: basic, out: 32, repeat: 1, stride: 2, defaults: {activation: gelu}}")
    net = archspec.load_spec(text).network()
    acts = lambda block: {n.op.type for n in block.graph.nodes if n.op.kind == "act"}  # noqa: E731
    assert acts(net.stages[0].blocks[0]) == {"relu"}
    assert acts(net.stages[1].blocks[0]) == {"gelu"}


def test_single_layer_stage_items() -> None:
    text = SMALL.replace("head:", "  - maxpool: {kernel: 2}\nhead:")
    report = archspec.analyze(text)
    pool = [la for la in report.layers if la.op == "maxpool"]
    assert pool and pool[0].output_shape == (32, 8, 8)


@pytest.mark.parametrize(
    "change, path_text, message",
    [
        ("{block: basic, out: 16, repeat: 2}", "stages[0].block", "unknown block type 'basik' (did you mean 'basic'?)"),
        ("{block: basic, out: 16, repeat: 2}", "stages[0].out", "required key is missing"),
        ("{block: basic, out: 16, repeat: 2}", "stages[0].repeat", "must be an integer, got 'two'"),
        ("{block: basic, out: 16, repeat: 2}", "stages[0].stride", "must be >= 1, got 0"),
    ],
)
def test_malformed_specs_name_line_and_field(change: str, path_text: str, message: str) -> None:
    replacement = {
        "stages[0].block": "{block: basik, out: 16, repeat: 2}",
        "stages[0].out": "{block: basic, repeat: 2}",
        "stages[0].repeat": "{block: basic, out: 16, repeat: two}",
        "stages[0].stride": "{block: basic, out: 16, repeat: 2, stride: 0}",
    }[path_text]
    with pytest.raises(SpecError) as info:
        archspec.load_spec(SMALL.replace(change, replacement))
    (problem,) = info.value.problems
    assert problem.location.line == 10  # the stage's line in SMALL
    assert str(problem).startswith("<string>:10:")
    assert f": {path_text}: {message}" in str(problem)


def test_shape_errors_are_located_before_building() -> None:
    text = SMALL.replace("size: 32", "size: 2").replace("padding: same", "padding: 0")
    with pytest.raises(SpecError) as info:
        archspec.load_spec(text).network()
    text_error = str(info.value)
    assert "too small" in text_error and "smallest input that works" in text_error


def test_zoo_is_the_specs_folder() -> None:
    repo_specs = sorted(p.stem for p in (Path(__file__).parent.parent / "specs").glob("*.yaml"))
    assert archspec.zoo.names() == repo_specs
    assert archspec.zoo.directory().resolve() == (Path(__file__).parent.parent / "specs").resolve()


# -- list edits: a child changes one item of its parent's list -----------------------

def test_extends_edits_one_item_by_index_or_by_name(tmp_path: Path) -> None:
    """DenseNet-169 is DenseNet-121 with 32-layer third and fourth dense blocks (torchvision: 14,149,480)."""
    (tmp_path / "d169.yaml").write_text(textwrap.dedent("""\
        extends: densenet121
        name: d169
        stages:
          denseblock3: {repeat: 32}   # by the stage's name
          6: {repeat: 32}             # by index
        head: {classifier: {linear: {out: 10}}}   # a layer, by its name
        """))
    spec = archspec.load_spec(tmp_path / "d169.yaml")
    assert [s.repeat for s in spec.model.stages] == [6, 1, 12, 1, 32, 1, 32]
    assert spec.model.stages[4].growth == 32  # the rest of the item is the parent's
    # torchvision's densenet169 has 14,149,480 parameters; a 10-way classifier on its 1664 features
    assert archspec.analyze(spec).params == 14_149_480 - 1665 * 1000 + 1665 * 10
    assert spec.model.head[-1].out == 10 and len(spec.model.head) == 5


def test_set_edits_a_list_item_by_name_as_files_do() -> None:
    by_name = archspec.analyze("densenet121", **{"stages.denseblock3.repeat": 32, "stages.6.repeat": 32})
    assert by_name.params == 14_149_480
    merged = archspec.load_spec("densenet121", **{"stages.denseblock3": {"repeat": 2}}).model.stages[4]
    assert (merged.repeat, merged.growth) == (2, 32)  # a mapping merges into the item


def test_a_bad_list_edit_names_the_valid_items(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("extends: densenet121\nname: bad\nstages:\n  denseblok3: {repeat: 32}\n  9: {}\n")
    with pytest.raises(SpecError) as err:
        archspec.load_spec(tmp_path / "bad.yaml")
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'bad.yaml'}:4:3: stages.denseblok3: no item 'denseblok3'")
    assert "(did you mean 'denseblock3'?)" in text
    assert "valid: indices 0..6 or a name: denseblock1, transition1, denseblock2" in text
    with pytest.raises(SpecError, match=r"override stages\.9\.repeat: .* at stages: no item 9; valid: indices 0\.\.6"):
        archspec.load_spec("densenet121", **{"stages.9.repeat": 3})


def test_list_edits_reach_only_the_layer_lists_and_vars_as_the_schema_says(tmp_path: Path) -> None:
    """Elsewhere a mapping replaces the list and is checked as a value (the schema refuses it too)."""
    (tmp_path / "size.yaml").write_text("extends: resnet18\nname: r\ninput: {size: {0: 200}}\n")
    with pytest.raises(SpecError, match=r"size\.yaml:3:\d+: input\.size: must be a list"):
        archspec.load_spec(tmp_path / "size.yaml")
    (tmp_path / "vars.yaml").write_text("extends: resnet101\nname: r\nvars: {depths: {2: 6}}\n")
    assert [s["repeat"] for s in archspec.load_spec(tmp_path / "vars.yaml").data["stages"]] == [3, 4, 6, 3]  # 101: 3, 4, 23, 3


def test_an_input_size_computed_as_a_whole_float_is_square() -> None:
    # `${base / 2}` is 32.0: taken as every other size is (`out: "${w / 2}"`); before, "must be a list"
    spec = archspec.load_spec("resnet18", **{"vars": {"base": 64}, "input.size": "${base / 2}"})
    assert spec.model.input.shape == (3, 32, 32)
    with pytest.raises(SpecError, match="input.size"):
        archspec.load_spec("resnet18", **{"input.size": 32.5})


def test_a_weights_entrys_set_is_blamed_on_the_entry(tmp_path: Path) -> None:
    # the values a weights entry sets (GoogLeNet's transform_input) were reported as a --set's
    from safetensors.torch import save_file

    spec = tmp_path / "net.yaml"
    spec.write_text(textwrap.dedent("""\
        name: net
        input: {channels: 3, size: 16}
        num_classes: 4
        stem: [{conv: {out: 4, kernel: 3}}]
        head: [global_pool, flatten, {linear: 4}]
        weights:
          - {name: W, url: "https://example.org/w.safetensors", layout: {format: archspec}, set: {stem.0.conv.kernel: 0}}
        """))
    save_file({}, str(tmp_path / "w.safetensors"))
    with pytest.raises(SpecError) as caught:
        archspec.build(str(spec), weights="W")
    assert str(caught.value).startswith("weights W: set stem.0.conv.kernel: stem[0].conv.kernel: must be >= 1, got 0"), \
        str(caught.value)
