"""Any block family is a part: a YAML block, a Python block or a built-in one can be a neck,
decoder or head that reads several values by name, with one or several outputs. Each part is its
own rows, box, module path and tap target. References: hand-written torch modules."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archspec
from archspec.core.errors import SpecError
from archspec.ir.builder import GraphBuilder, Value
from archspec.spec.families import BLOCKS, BlockContext, BlockFamily, register_block

UNET = """
name: unet_small
input: {channels: 3, size: 64}
blocks:
  cbr:
    params: {out: int}
    layers: [{conv: {out: "${out}", kernel: 3, padding: 1, bias: false}}, norm, act]
  up:
    doc: A U-Net decoder stage - upsample to the skip's size, concatenate it, two conv-norm-ReLU.
    inputs: [x, skip]
    params: {out: int}
    layers:
      - resize: {from: [x, skip], name: upsample}
      - concat: [upsample, skip]
      - {block: cbr, out: "${out}", name: conv1}
      - {block: cbr, out: "${out}", name: conv2}
stem:
  - conv: {out: 16, kernel: 3, stride: 2, padding: 1, bias: false, name: conv1}
  - norm: {name: bn1}
  - act: {name: relu}
stages:
  - {block: basic, out: 16}
  - {block: basic, out: 32, stride: 2}
  - {block: basic, out: 64, stride: 2}
necks:
  up1: {block: up, in: [stages.2, stages.1], out: 32}
  up2: {block: up, in: [necks.up1, stages.0], out: 16}
heads:
  mask: {block: layers, in: necks.up2, layers: [{conv: {out: 1, kernel: 1}}]}
"""


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class HandUp(nn.Module):
    """The decoder stage written by hand (smp's UnetDecoderBlock without attention)."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.conv1, self.conv2 = cbr(cin + skip, cout), cbr(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


def test_yaml_block_parts_are_rows_module_paths_and_taps(tmp_path: Path) -> None:
    path = write(tmp_path, UNET)
    report = archspec.analyze(path)
    rows = dict(report.rows("stage"))
    assert list(rows)[-3:] == ["necks.up1", "necks.up2", "heads.mask"]
    # up1: conv (64 + 32) -> 32 and 32 -> 32, 3x3, no bias, two norms of 32
    assert sum(layer.params for layer in rows["necks.up1"]) == 96 * 32 * 9 + 32 * 32 * 9 + 4 * 32
    model = archspec.build(path)
    keys = [k for k in model.state_dict() if k.startswith(("necks", "heads"))]
    assert keys[:2] == ["necks.up1.conv1.0.weight", "necks.up1.conv1.1.weight"]
    assert "heads.mask.0.weight" in keys
    # each decoder stage is a tap target
    tapped = archspec.build(path, features={"u1": "necks.up1", "mask": "heads.mask"})
    out = tapped(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"u1": (1, 32, 16, 16), "mask": (1, 1, 32, 32)}


def test_yaml_block_parts_compute_what_a_hand_written_decoder_does(tmp_path: Path) -> None:
    model = archspec.build(write(tmp_path, UNET)).eval()
    up1, up2, head = HandUp(64, 32, 32), HandUp(32, 16, 16), nn.Conv2d(16, 1, 1)
    for mine, theirs in ((model.necks.up1, up1), (model.necks.up2, up2), (model.heads.mask, head)):
        theirs.load_state_dict({k.removeprefix("0."): v for k, v in mine.state_dict().items()})
        for m in theirs.modules():  # statistics away from the identity, copied to both
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
        mine.load_state_dict({("0." if isinstance(theirs, nn.Conv2d) else "") + k: v
                              for k, v in theirs.state_dict().items()})
    for m in (up1, up2, head):
        m.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stem = model.stem(x)
        c0 = model.stages[0](stem)
        c1 = model.stages[1](c0)
        c2 = model.stages[2](c1)
        expected = head(up2(up1(c2, c1), c0))
        got = model(x)["mask"]
    assert torch.allclose(got, expected, atol=1e-5)


def test_each_part_is_its_own_box_in_the_diagram(tmp_path: Path) -> None:
    dot = archspec.diagram(write(tmp_path, UNET), "stage").source
    for part in ("necks.up1", "necks.up2", "heads.mask"):
        assert part in dot


@pytest.fixture
def two_outputs() -> Iterator[type[BlockFamily]]:
    @register_block("test_split_head")
    class SplitHead(BlockFamily):
        """Two inputs, two outputs: a 1x1 conv of each, then their sum and their product."""

        inputs = (2, 2)
        out: int

        def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> dict[str, Value]:
            a = b.conv(x, name="a", out=self.out, kernel=1)
            c = b.conv(b.inputs[1], name="c", out=self.out, kernel=1)
            return {"sum": b.add(a, c, name="s"), "prod": b.mul(a, c, name="p")}

    yield SplitHead
    BLOCKS.pop("test_split_head")


def test_a_python_block_with_two_inputs_and_two_outputs_is_a_part(two_outputs: type, tmp_path: Path) -> None:
    spec = {"name": "n", "input": {"size": 16}, "stages": [{"block": "basic", "out": 8},
                                                           {"block": "basic", "out": 8}],
            "heads": {"h": {"block": "test_split_head", "in": ["stages.0", "stages.1"], "out": 4}}}
    model = archspec.build(spec).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        s0 = model.stages[0](model.stem(x))
        a, c = model.heads.h.a(s0), model.heads.h.c(model.stages[1](s0))
    assert list(out) == ["h.sum", "h.prod"] or list(out) == ["sum", "prod"]
    values = list(out.values())
    assert torch.allclose(values[0], a + c) and torch.allclose(values[1], a * c)
    with pytest.raises(SpecError, match=r"block type 'test_split_head' reads 2 or more values, and a stage passes one"):
        archspec.load_spec({**spec, "stages": [{"block": "test_split_head", "out": 4}]})


def test_yaml_outputs_name_several_values(tmp_path: Path) -> None:
    two = """  two:
    inputs: [x]
    outputs: [p, q]
    layers:
      - conv: {out: 4, kernel: 1, name: p}
      - conv: {out: 2, kernel: 1, from: x, name: q}
"""
    text = UNET.replace("  up:\n", two + "  up:\n").replace(
        "  mask: {block: layers, in: necks.up2, layers: [{conv: {out: 1, kernel: 1}}]}", "  pq: {block: two, in: necks.up2}")
    out = archspec.build(write(tmp_path, text))(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {"p": (4, 32, 32), "q": (2, 32, 32)}
    with pytest.raises(SpecError, match=r"blocks.two.outputs\[1\]: 'r' is neither"):
        archspec.load_spec(write(tmp_path, text.replace("outputs: [p, q]", "outputs: [p, r]")))


@pytest.mark.parametrize("edit, message", [
    # an input read by a name the block does not declare
    (("from: [x, skip]", "from: [x, skp]"), r"blocks.up.layers\[0\].resize.from: 'skp' is neither a layer type "
                                            r"nor a name given in this block \(did you mean 'skip'\?\)"),
    # a part that gives a two-input block one value
    ("  up1: {block: up, in: [stages.2, stages.1], out: 32}", r"block type 'up' reads 2 inputs \(`in:`\), got 1"),
    # a two-input block as a stage
    ("  - {block: basic, out: 64, stride: 2}", r"block type 'up' reads 2 or more values, and a stage passes one"),
])
def test_mistakes_with_inputs_are_located(edit: object, message: str, tmp_path: Path) -> None:
    if isinstance(edit, tuple):
        text = UNET.replace(*edit)
    elif edit.startswith("  up1"):
        text = UNET.replace(edit, "  up1: {block: up, in: stages.2, out: 32}")
    else:
        text = UNET.replace(edit, edit + "\n  - {block: up, out: 8}")
    with pytest.raises(SpecError, match=message):
        archspec.load_spec(write(tmp_path, text))


def test_a_stream_runs_the_specs_own_block_and_locates_its_parameters(tmp_path: Path) -> None:
    text = """
name: s
input: {size: 16}
blocks:
  unit:
    params: {out: {type: int, min: 1}}
    layers: [{conv: {out: "${out}", kernel: 3, padding: 1}}, act]
stages: [{block: basic, out: 8}]
necks:
  s0: {block: stream, in: stages.0, unit: unit, params: {out: 8}, repeat: 2}
"""
    model = archspec.build(write(tmp_path, text))
    assert [k for k in model.state_dict() if k.startswith("necks")] == [
        "necks.s0.0.0.weight", "necks.s0.0.0.bias", "necks.s0.1.0.weight", "necks.s0.1.0.bias"]
    with pytest.raises(SpecError, match=r"net.yaml:10:\d+: necks.s0.params.out: .*must be >= 1") as err:
        archspec.load_spec(write(tmp_path, text.replace("out: 8}, repeat", "out: -8}, repeat")))
    assert "pydantic" not in str(err.value)
    with pytest.raises(SpecError, match=r"necks.s0.unit: unknown block type 'unt' \(did you mean 'unit'\?\)"):
        archspec.load_spec(write(tmp_path, text.replace("unit: unit", "unit: unt")))


def test_part_groups_are_one_vocabulary() -> None:
    """Each group of parts is a key of the spec, and nothing else spells the groups."""
    import re
    from archspec.ir.graph import PART_GROUPS
    from archspec.spec.models import SpecModel

    assert set(PART_GROUPS) <= set(SpecModel.model_fields)
    root = Path(archspec.__file__).parent
    spelled = [str(p.relative_to(root)) for p in root.rglob("*.py")
               if re.search(r"""["']necks["']\s*,\s*["']heads["']""", p.read_text(encoding="utf-8"))]
    assert spelled == ["ir/graph.py"]


def test_exported_containers_are_the_compiled_ones(tmp_path: Path) -> None:
    """The exported Stage class and model forward are copied from the torch backend's containers."""
    import inspect
    import textwrap
    from archspec.backends import torch_layers

    for name, aux in (("resnet18", False), ("inception_v3", True)):
        out = tmp_path / f"{name}.py"
        archspec.export(name, out, "python")
        text = out.read_text(encoding="utf-8")
        assert inspect.getsource(torch_layers.Stage) in text
        forward = (torch_layers.AuxNetwork if aux else torch_layers.Network).forward
        assert textwrap.indent(textwrap.dedent(inspect.getsource(forward)), "    ") in text


def test_a_value_a_later_head_reads_stays_in_the_forward_peak() -> None:
    # fcn_resnet50 at 128x128: its aux classifier reads stages.2's output (1024 x 16 x 16), which is
    # alive while stage 3 runs. Stage 3's first block peaks at its sum: the shortcut's norm, the
    # branch's last norm and the sum, 3 x 2048 x 16 x 16, with that input held throughout (hand count).
    report = archspec.analyze("fcn_resnet50", input={"size": [128, 128]})
    assert report.peak_activation_elements == 3 * 2048 * 16 * 16 + 1024 * 16 * 16


@pytest.mark.parametrize("name", ["fcn_resnet50", "resnet50_fpn", "unet_resnet34", "googlenet", "convnext_tiny"])
def test_the_peak_with_held_inputs_counts_as_the_graphs_own_with_none_held(name: str) -> None:
    # two counts of one liveness rule: `_static`'s, in a sweep's hot loop, and `_pinned_peak`'s
    from archspec.analysis.report import _pinned_peak, _static_of

    for part in archspec.load_spec(name).network().parts():
        assert _pinned_peak(part.graph, set()) == _static_of(part.graph).peak, (name, part.path)
