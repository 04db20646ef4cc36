"""User-defined blocks, in YAML (`blocks:`, `include:`) and in Python (`@register_block`).

Outside truth: torchvision's ShuffleNet-v2 (units and the whole x1.0 network: parameters,
outputs, documented `_ops`), ResNet-18, BasicBlock and SqueezeExcitation; hand counts.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.resnet import BasicBlock
from torchvision.models.shufflenetv2 import InvertedResidual
from torchvision.ops import SqueezeExcitation

import archspec
from archspec.cli.main import main
from archspec.core.errors import SpecError
from tests.parity import assert_parity

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
NETWORK = EXAMPLES / "shufflenet_v2_x1_0.yaml"
runpy.run_path(str(EXAMPLES / "shufflenet_unit.py"))  # registers `shuffle_v2`, as a user's import would


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        archspec.load_spec(path).network()
    return str(info.value)


# -- the worked example, both ways ---------------------------------------------------------

def test_docs_show_the_tested_examples() -> None:
    doc = (ROOT / "docs" / "blocks.md").read_text()
    assert (EXAMPLES / "shufflenet_unit.py").read_text() in doc
    blocks = (EXAMPLES / "shufflenet_blocks.yaml").read_text()
    assert blocks[blocks.index("blocks:"):] in doc


UNITS = {"yaml": "shuffle_unit", "python": "shuffle_v2"}


@pytest.mark.parametrize("way", sorted(UNITS))
def test_shufflenet_unit_matches_torchvision_units(way: str, tmp_path: Path) -> None:
    """One stride-2 unit 24->116 and one stride-1 unit 116->116, as torchvision's InvertedResidual."""
    spec = write(tmp_path, f"""
        name: units
        include: {EXAMPLES / "shufflenet_blocks.yaml"}
        input: {{channels: 24, size: [56, 56]}}
        stages:
          - {{block: {UNITS[way]}, out: 116, stride: 2}}
          - {{block: {UNITS[way]}, out: 116}}
        """)
    report = archspec.analyze(spec)
    per_stage = [sum(la.params for la in report.layers if la.stage == s and la.group == "stages") for s in (0, 1)]
    assert per_stage == [numel(InvertedResidual(24, 116, 2)), numel(InvertedResidual(116, 116, 1))]
    assert report.output_shape == (116, 28, 28)
    model = archspec.build(spec).eval()
    reference = torch.nn.Sequential(InvertedResidual(24, 116, 2), InvertedResidual(116, 116, 1)).eval()
    model.load_state_dict(dict(zip(model.state_dict(), reference.state_dict().values())))
    x = torch.randn(2, 24, 16, 16)
    with torch.no_grad():
        assert (model.stages(x) - reference(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("way", sorted(UNITS))
def test_whole_shufflenet_v2_with_the_user_unit(way: str) -> None:
    reference = torchvision.models.shufflenet_v2_x1_0(weights=None)
    assert numel(reference) == 2_278_604
    assert_parity(str(NETWORK), reference, (3, 64, 64), **{"vars.unit": UNITS[way]})
    documented = torchvision.models.ShuffleNet_V2_X1_0_Weights.DEFAULT.meta["_ops"]  # 0.145 GFLOPS
    assert round(archspec.analyze(NETWORK, **{"vars.unit": UNITS[way]}).macs / 1e9, 3) == documented


def test_validating_user_blocks_does_not_import_torch() -> None:
    code = ("import sys; from archspec.cli.main import main; "
            f"rc = main(['validate', {str(NETWORK)!r}, '--plugin', {str(EXAMPLES / 'shufflenet_unit.py')!r}]); "
            "sys.exit(10 * rc + ('torch' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_plugin_loads_a_python_block() -> None:
    code = main(["validate", str(NETWORK), "--plugin", str(EXAMPLES / "shufflenet_unit.py"),
                 "--set", "vars.unit=shuffle_v2"])
    assert code == 0


# -- the YAML notation ------------------------------------------------------------------------

RESNET18 = """
    name: resnet18_yaml
    blocks:
      plain_basic:
        params:
          out: {type: int, min: 1, channels: true}
        layers:
          - add:
              main:
                - conv: {out: "${out}", kernel: 3, stride: "${stride}", padding: 1, bias: false, name: conv1}
                - norm: {name: bn1}
                - act: {name: relu1}
                - conv: {out: "${out}", kernel: 3, padding: 1, bias: false, name: conv2}
                - norm: {name: bn2}
              downsample:
                - if: "${stride != 1 or in_channels != out}"
                  then: [conv: {out: "${out}", stride: "${stride}", bias: false}, norm]
          - act: {name: relu}
    stem:
      - conv: {out: 64, kernel: 7, stride: 2, padding: 3, bias: false}
      - norm
      - act
      - maxpool: {kernel: 3, stride: 2, padding: 1}
    stages:
      - {block: plain_basic, out: 64, repeat: 2}
      - {block: plain_basic, out: 128, repeat: 2, stride: 2}
      - {block: plain_basic, out: 256, repeat: 2, stride: 2}
      - {block: plain_basic, out: 512, repeat: 2, stride: 2}
    head: [global_pool, flatten, {linear: 1000}]
    """


def test_residual_addition_with_conditional_projection_is_resnet18(tmp_path: Path) -> None:
    assert_parity(str(write(tmp_path, RESNET18)), torchvision.models.resnet18(weights=None), (3, 64, 64))


SE = """
    name: se_net
    blocks:
      se:
        params: {squeeze: {type: int, min: 1}}
        layers:
          - mul:
              - identity
              - [global_pool, conv: {out: "${squeeze}"}, act: relu, conv: {out: "${in_channels}"}, act: sigmoid]
      basic_se:
        params: {out: int, squeeze: int}
        layers:
          - block: basic
            out: "${out}"
            stride: "${stride}"
          - {block: se, squeeze: "${squeeze}", name: se}
    stem: [conv: {out: 64, kernel: 3, padding: 1, bias: false}]
    stages:
      - {block: se, squeeze: 16}
      - {block: basic_se, out: 64, squeeze: 16}
    """


def test_multiplication_is_squeeze_excitation(tmp_path: Path) -> None:
    model = archspec.build(write(tmp_path, SE)).eval()
    block = model.stages[0].blocks[0]
    reference = SqueezeExcitation(64, 16).eval()
    assert numel(block) == numel(reference)
    block.load_state_dict(dict(zip(block.state_dict(), reference.state_dict().values())))
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        assert torch.allclose(block(x), reference(x), atol=1e-6)


def test_blocks_nest_inside_yaml_blocks(tmp_path: Path) -> None:
    report = archspec.analyze(write(tmp_path, SE), input=(3, 16, 16))
    nested = sum(la.params for la in report.layers if la.stage == 1)
    assert nested == numel(BasicBlock(64, 64)) + numel(SqueezeExcitation(64, 16))
    assert any(la.name.startswith("stages.1.blocks.0.se.") for la in report.layers)


def test_width_scaling_reaches_channel_parameters(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        name: scaled
        scale: {width: 2.0, depth: 1.0}
        defaults: {norm: null}
        blocks:
          fire_module:
            params:
              squeeze: {type: int, channels: true}
              expand: {type: int, channels: true}
              fixed: {type: int, default: 3}
            layers:
              - conv: {out: "${squeeze}", name: squeeze}
              - act
              - concat:
                  - [conv: {out: "${expand}"}, act]
                  - [conv: {out: "${expand}", kernel: "${fixed}", padding: 1}, act]
        stem: [conv: {out: 8, kernel: 3}]
        stages: [{block: fire_module, squeeze: 16, expand: 64}]
        """)
    report = archspec.analyze(spec, input=(3, 16, 16))
    # 16 -> 32 squeeze, 64 -> 128 per expand branch: 256 channels out; the 3x3 kernel is not a width.
    assert report.layer("stages.0.blocks.0.squeeze").output_shape[0] == 32
    assert report.output_shape == (256, 14, 14)
    assert report.layer("stages.0.blocks.0.concat").label == "concat"


def test_yaml_block_survives_a_checkpoint(tmp_path: Path) -> None:
    model = archspec.build(write(tmp_path, SE)).eval()
    archspec.save(model, tmp_path / "se.safetensors")
    again = archspec.load(tmp_path / "se.safetensors").eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


# -- errors, located where they are written ------------------------------------------------------

BAD = [
    # (definition lines, expected text, expected line:column)
    ("""
      layers:
        - conv: {out: "${ot}"}
      params: {out: int}""", "unknown name 'ot' in '${ot}' (did you mean 'out'?)", "5:21"),
    ("""
      layers:
        - convv: {out: 3}""", "unknown layer type 'convv' (did you mean 'conv'?)", "5:9"),
    ("""
      layers:
        - conv: {out: 3, bais: false}""", "unknown key 'bais' (did you mean 'bias'?)", "5:24"),
    ("""
      layers:
        - conv: {out: 3, kernel: 0}""", "layers[0].conv.kernel: must be >= 1, got 0", "5:32"),
    ("""
      layers:
        - mul: [identity]""", "mul needs at least two branches", "5:14"),
    ("""
      params: {out: {type: int, dflt: 2}}
      layers: [conv: {out: "${out}"}]""", "unknown key 'dflt' (did you mean 'default'?)", "4:31"),
    ("""
      params: {out: integer}
      layers: [conv: {out: "${out}"}]""", "got 'integer' (did you mean 'int'?)", "4:19"),
    ("""
      params: {out: {type: int, min: 1, default: 0}}
      layers: [conv: {out: "${out}"}]""", "params.out.default: must be >= 1, got 0", "4:48"),
    ("""
      params: {out: int, unused: int}
      layers: [conv: {out: "${out}"}]""", "parameter 'unused' is never used", "4:24"),
    ("""
      params: {stride: int}
      layers: [act]""", "'stride' is reserved", "4:14"),
    ("""
      layer: [act]""", "unknown key 'layer' (did you mean 'layers'?)", "4:5"),
    ("""
      layers:
        - if: "${stride == 1}"
          than: [act]""", "unknown key 'than' (did you mean 'then'?) in a conditional", "6:9"),
]


@pytest.mark.parametrize(("definition", "message", "where"), BAD)
def test_definition_errors_are_located(definition: str, message: str, where: str, tmp_path: Path) -> None:
    spec = write(tmp_path, "name: bad\nblocks:\n  mine:" + textwrap.indent(textwrap.dedent(definition), "    ")
                 + "\nstem: [conv: {out: 8, kernel: 3}]\n")
    text = problems(spec)
    assert message in text and f"net.yaml:{where}: blocks.mine" in text, text


def test_stage_parameters_are_validated(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        name: bad
        blocks:
          mine:
            params: {out: {type: int, min: 2}, act: {type: str, default: relu, choices: [relu, gelu]}}
            layers: [conv: {out: "${out}"}, act: "${act}"]
        stem: [conv: {out: 8, kernel: 3}]
        stages:
          - {block: mine, out: 1}
          - {block: mine, out: 4, act: tanh}
          - {block: mine, out: 4, oot: 2}
          - {block: mine}
          - {block: mine, out: 4, stride: 2}
        """)
    text = problems(spec)
    assert "net.yaml:9:24: stages[0].out: must be >= 2, got 1" in text
    assert "net.yaml:10:32: stages[1].act: must be one of relu, gelu; got 'tanh'" in text
    assert "net.yaml:11:27: stages[2].oot: unknown key 'oot' (did you mean 'out'?)" in text
    assert "stages[3].out: required key is missing" in text
    assert "net.yaml:13:35: stages[4].stride: block type 'mine' takes no stride" in text


def test_build_time_errors_point_at_the_definition(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        name: bad
        blocks:
          mine:
            params: {out: int}
            layers:
              - conv: {out: "${out - 8}"}
              - conv: {out: "${out // index}", groups: 3}
        stem: [conv: {out: 8, kernel: 3}]
        stages: [{block: mine, out: 8}, {block: mine, out: 9, repeat: 2}]
        """)
    assert problems(spec) == (f"{spec}:10:10: stages[0]: mine: layers[0].conv.out: must be >= 1, got 0 "
                              f"(at {spec}:7:21)")
    spec.write_text(spec.read_text().replace("${out - 8}", "${out - 5}"))
    assert problems(spec) == (f"{spec}:10:10: stages[0]: mine: layers[1].conv.out: in '${{out // index}}': "
                              f"integer division or modulo by zero (at {spec}:8:21)")
    spec.write_text(spec.read_text().replace("${out // index}", "${out}"))
    assert f"{spec}:10:10: stages[0]: mine (layer '1'): groups=3 must divide both input channels (3)" \
           in problems(spec)


def test_blocks_that_contain_each_other_are_refused(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        name: bad
        blocks:
          a: {layers: [{block: b}]}
          b: {layers: [{block: a}]}
        """)
    assert "blocks contain each other: a -> b -> a" in problems(spec)


SHADOWING = """\
name: shadow
input: {channels: 3, size: 32}
blocks:
  fused_mbconv:   # a built-in family's name since this spec was written
    params:
      out: {type: int, min: 1, channels: true}
    layers:
      - conv: {out: "${out}", kernel: 3, stride: "${stride}", padding: 1}
  outer:
    layers: [{block: fused_mbconv, out: 4}]
stages:
  - {block: fused_mbconv, out: 8, stride: 2}
  - {block: outer}
head: []
"""


def test_a_spec_block_shadows_a_built_in_and_validate_notes_it(tmp_path: Path) -> None:
    spec = write(tmp_path, SHADOWING)
    report = archspec.analyze(spec)
    # the spec's single 3x3 conv with bias, not the built-in Fused-MBConv: 3*8*9 + 8, then 8*4*9 + 4,
    # the nested use in `outer` meaning the spec's block too
    assert report.params == 224 + 292
    assert [n.node.op.kind for n in archspec.load_spec(spec).network().nodes()] == ["conv", "conv"]
    code = main(["validate", str(spec)])
    assert code == 0
    note = (f"{spec}:4:3: blocks.fused_mbconv: note: this block shadows the block type 'fused_mbconv' of "
            "archspec.blocks.mobile.FusedMBConv; the stages of this spec that name it use this definition")
    assert archspec.load_spec(spec).notes == [note]
    assert archspec.load_spec(NETWORK).notes == []


def test_validate_prints_the_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, SHADOWING)
    assert main(["validate", str(spec)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{spec}: ok (shadow, 516 parameters)"
    assert out[1].startswith(f"{spec}:4:3: blocks.fused_mbconv: note: this block shadows")


def test_a_plugin_replacing_a_built_in_must_say_so() -> None:
    from archspec.blocks import BLOCKS, register_block
    from archspec.core.errors import ArgumentError

    builtin = BLOCKS["fused_mbconv"]

    class FusedMBConv(archspec.BlockFamily):  # the built-in's __qualname__, another module
        out: int

        def emit(self, b, x, ctx):
            return b.conv(x, out=self.out, kernel=1)

    FusedMBConv.__qualname__ = builtin.__qualname__
    with pytest.raises(ArgumentError, match="block type 'fused_mbconv' is already registered by "
                                            "archspec.blocks.mobile.FusedMBConv; register .* with replace=True"):
        register_block("fused_mbconv")(FusedMBConv)
    assert BLOCKS["fused_mbconv"] is builtin
    try:
        register_block("fused_mbconv", replace=True)(FusedMBConv)
        assert BLOCKS["fused_mbconv"] is FusedMBConv
    finally:
        BLOCKS["fused_mbconv"] = builtin
        builtin.family = "fused_mbconv"


# -- include ------------------------------------------------------------------------------------------

def test_include_merges_blocks_and_keeps_their_locations(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    write(tmp_path, "blocks:\n  inner: {layers: [act]}\n", "lib/inner.yaml")
    write(tmp_path, "include: inner.yaml\nblocks:\n  outer:\n    layers: [conv: {out: 3, kernel: 0}]\n",
          "lib/outer.yaml")
    spec = write(tmp_path, "name: inc\ninclude: [lib/outer.yaml]\nstages: [{block: inner}]\n")
    assert f"{tmp_path / 'lib/outer.yaml'}:4:37: blocks.outer.layers[0].conv.kernel: must be >= 1" in problems(spec)
    (tmp_path / "lib/outer.yaml").write_text("include: inner.yaml\nblocks:\n  outer: {layers: [norm]}\n")
    assert archspec.load_spec(spec).model.stages[0].family == "inner"


@pytest.mark.parametrize(("files", "message", "where"), [
    ({"a.yaml": "blocks:\n  x: {layers: [act]}\n"}, "block 'x' is already defined at", "a.yaml:2:3"),
    ({"a.yaml": "include: net.yaml\n"}, "include cycle", "a.yaml:1:10"),
    ({"a.yaml": "name: other\nblocks: {}\n"}, "an included file holds only `blocks:`", "a.yaml:1:1"),
    ({}, "include 'a.yaml': no such file", "net.yaml:2:10"),
])
def test_include_errors(files: dict[str, str], message: str, where: str, tmp_path: Path) -> None:
    for name, text in files.items():
        write(tmp_path, text, name)
    spec = write(tmp_path, "name: n\ninclude: a.yaml\nblocks:\n  x: {layers: [act]}\n")
    text = problems(spec)
    assert message in text and f"{tmp_path / where.split(':')[0]}:{where.split(':', 1)[1]}" in text, text


# -- unknown block types --------------------------------------------------------------------------

def test_unknown_block_type_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, """
        name: typo
        blocks:
          my_unit: {layers: [act]}
        stem: [conv: {out: 8, kernel: 3}]
        stages:
          - {block: botleneck, out: 256}
        """)
    assert main(["validate", str(spec)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{spec}:7:13: stages[0].block: unknown block type 'botleneck' "
                               "(did you mean 'bottleneck'?); known: ")
    known = lines[0].split("; known: ")[1].split(", ")
    assert known == sorted(known)
    assert {"basic", "bottleneck", "my_unit", "fire"} <= set(known)
