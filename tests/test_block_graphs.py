"""Blocks as small graphs: named values read later (`from:`), unequal splits, loops, repeated
nested blocks.

Outside truth: hand-written PyTorch modules of the published blocks (Res2Net's hierarchical
split, Gao et al. 2019, Fig. 2; MixConv's mixed-kernel depthwise conv, Tan & Le 2019, as
timm's `MixedConv2d` computes it, channels cut by timm's `_split_channels`), loaded with the
compiled module's weights by name; parameter counts worked out by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import archspec
from archspec.spec.expr import split_channels
from tests.generated import exported_model

HEAD = """
name: graph_block
input: {channels: %d, size: [12, 12]}
defaults: {norm: none, activation: relu}
%s
head: [global_pool, flatten]
"""

RES2 = """
blocks:
  res2:
    params: {width: int}
    layers:
      - split: {parts: 4, index: 0, name: x1}
      - split: {parts: 4, index: 1, from: input, name: x2}
      - conv: {out: "${width}", kernel: 3, padding: 1, name: k2}
      - split: {parts: 4, index: 2, from: input, name: x3}
      - add: [x3, k2]
      - conv: {out: "${width}", kernel: 3, padding: 1, name: k3}
      - split: {parts: 4, index: 3, from: input, name: x4}
      - add: [x4, k3]
      - conv: {out: "${width}", kernel: 3, padding: 1, name: k4}
      - concat: [x1, k2, k3, k4]
stages: [{block: res2, width: 5}]
"""


class Res2Split(nn.Module):
    """Res2Net's split-transform-concat, as the paper's Fig. 2 draws it."""

    def __init__(self, width: int):
        super().__init__()
        self.k2, self.k3, self.k4 = (nn.Conv2d(width, width, 3, padding=1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2, x3, x4 = x.chunk(4, dim=1)
        y2 = self.k2(x2)
        y3 = self.k3(x3 + y2)
        y4 = self.k4(x4 + y3)
        return torch.cat([x1, y2, y3, y4], dim=1)


def test_docs_show_the_tested_examples() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "spec-language.md").read_text()
    assert RES2.split("stages:")[0].strip() in doc and MIX.strip() in doc and FUSE.split("stages:")[0].strip() in doc
    assert (Path(__file__).resolve().parent.parent / "docs" / "examples" / "pixel_norm_op.py").read_text().strip() in doc


def test_hierarchical_split_is_res2net(tmp_path: Path) -> None:
    text = HEAD % (20, RES2)
    model = archspec.build(text).eval()
    block = model.stages[0].blocks[0]
    reference = Res2Split(5).eval()
    reference.load_state_dict(block.state_dict())
    assert archspec.analyze(text).params == 3 * (5 * 5 * 9 + 5)
    x = torch.randn(2, 20, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x), rtol=0, atol=0)
        exported = exported_model(text, "res2", tmp_path).eval()
        exported.load_state_dict(model.state_dict())
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=0)


MIX = """
blocks:
  mixconv:
    params: {kernels: list}
    layers:
      - concat:
          for: i
          in: "${range(len(kernels))}"
          do:
            - split: {sizes: "${split_channels(channels, len(kernels))}", index: "${i}"}
            - conv: {out: "${channels}", kernel: "${kernels[i]}", padding: "${kernels[i] // 2}",
                     groups: depthwise, bias: false, name: "conv${i}"}
stages: [{block: mixconv, kernels: [3, 5, 7]}]
"""


class MixedConv2d(nn.Module):
    """timm's MixedConv2d (depthwise, stride 1): torch.split by `_split_channels`, one conv per group."""

    def __init__(self, channels: int, kernels: list[int]):
        super().__init__()
        self.splits = [channels // len(kernels)] * len(kernels)
        self.splits[0] += channels - sum(self.splits)
        for i, (k, c) in enumerate(zip(kernels, self.splits)):
            self.add_module(f"conv{i}", nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, 1)
        return torch.cat([conv(p) for conv, p in zip(self.children(), parts)], 1)


def test_loop_and_unequal_split_are_mixconv() -> None:
    text = HEAD % (11, MIX)
    block = archspec.build(text).eval().stages[0].blocks[0]
    reference = MixedConv2d(11, [3, 5, 7]).eval()
    assert reference.splits == [5, 3, 3]
    reference.load_state_dict(block.state_dict())
    assert [tuple(v.shape) for v in block.state_dict().values()] == [(5, 1, 3, 3), (3, 1, 5, 5), (3, 1, 7, 7)]
    x = torch.randn(2, 11, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("channels,parts", [(11, 3), (32, 3), (96, 4), (7, 7), (100, 1), (120, 5), (65, 2)])
def test_split_channels_is_timms_rule(channels: int, parts: int) -> None:
    expected = [channels // parts for _ in range(parts)]  # timm.layers.mixed_conv2d._split_channels
    expected[0] += channels - sum(expected)
    assert split_channels(channels, parts) == expected


REPEATED = """
blocks:
  unit:
    params: {out: int}
    layers: [conv: {out: "${out}", kernel: 3, padding: 1, stride: "${stride}", name: conv}, act: {name: relu}]
  pair:
    params: {out: int}
    layers:
      - {block: unit, out: "${out}", repeat: 3, stride: 2, name: layer}
      - {block: unit, out: "${out}"}
      - {block: unit, out: "${out}"}
stages: [{block: pair, out: 6}]
"""


def test_nested_blocks_repeat_as_a_stage_does() -> None:
    text = HEAD % (3, REPEATED)
    model = archspec.build(text)
    keys = [k.removeprefix("stages.0.blocks.0.") for k in model.state_dict() if k.endswith("weight")]
    # repeat: N numbers the copies like a stage's blocks; two unnamed blocks of one type don't clash
    assert keys == ["layer.0.conv.weight", "layer.1.conv.weight", "layer.2.conv.weight", "unit.conv.weight",
                    "unit1.conv.weight"]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1), (1, 1)]  # the stride to the first only
    assert archspec.analyze(text).params == (3 * 6 * 9 + 6) + 4 * (6 * 6 * 9 + 6)


def test_named_merges_and_the_block_input(tmp_path: Path) -> None:
    """A node that takes several earlier outputs (an aggregation node): here the block input,
    a named layer and a named sum."""
    text = HEAD % (4, """
blocks:
  agg:
    params: {out: int}
    layers:
      - conv: {out: "${out}", name: a}
      - {add: [identity, {from: input}], name: s}
      - conv: {out: "${out}", from: input, name: b}
      - concat: [input, a, s, b]
stages: [{block: agg, out: 4}]
""")
    block = archspec.build(text).eval().stages[0].blocks[0]
    x = torch.randn(2, 4, 12, 12)
    with torch.no_grad():
        a = block.a(x)
        expected = torch.cat([x, a, a + x, block.b(x)], 1)
        torch.testing.assert_close(block(x), expected, rtol=0, atol=0)


def _refused(text: str) -> str:
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.load_spec(text).network()
    return str(info.value)


@pytest.mark.parametrize("layers,message", [
    ('[conv: {out: 4, name: first}, conv: {out: 4, from: frist}]',
     "blocks.b.layers[1].conv.from: 'frist' is neither a layer type nor a name given in this block "
     "(did you mean 'first'?); names: first, input"),
    ('[conv: {out: 4, from: later}, conv: {out: 4, name: later}]',
     "'later' names no value at this point"),
    ('[{if: "${out > 100}", then: [conv: {out: 4, name: c}]}, conv: {out: 4, from: c}]',  # a branch not taken
     "'c' names no value at this point"),
    ('[add: {p: [conv: {out: 4, name: c}], q: [conv: {out: 4, name: c}]}, conv: {out: 4, from: c}]',
     "'c' names several values (p.c, q.c); write the path to one"),
    ('[{for: 3, in: [1], do: [norm]}]', "`for:` takes the name of the loop variable"),
    ('[{for: k, in: [1], do: [conv: {out: "${kk}"}]}]', "unknown name 'kk'"),
    ('[split: {sizes: [2, 2], index: 0}]', "split sizes [2, 2] add up to 4, but the input has 3 channels"),
    ('[{block: {block: basic, out: 4}}]', "blocks.b.layers[0].block: `block:` takes a block type's name; its "
     "parameters go beside it, in one mapping: `{block: basic, out: 64, ...}`"),
    ('[conv: {out: 4, name: t}, {block: basic, out: 4, name: t}]',  # located at the second use
     "'t' names both a layer and a scope (a nested block or a named branch) in the same block; rename one "
     "(at <string>:8:68)"),  # the value of the second `name: t`, counted by hand
    ('[{block: basic, out: 4, repeat: 0}]', "blocks.b.layers[0].repeat: repeat must be a positive integer, got 0"),
    ('[{block: inception, branches: [1x1 4], stride: 2}]',  # a nested stride is refused as a stage's is
     "b: layers[0].stride: block type 'inception' takes no stride (at <string>:8:"),
    ('[conv: {out: "${out}", kernel 3}]',  # a colon forgotten is not a comma to quote
     "blocks.b.layers[0].conv.kernel 3: unknown key 'kernel 3'; a colon is missing: `kernel: 3` for conv"),
    # names a torch module cannot hold: validate used to accept them and build to end in a KeyError
    ('[conv: {out: 4, name: forward}]', "name 'forward' is taken by every torch module (an attribute of nn.Module)"),
    ("""[conv: {out: 4, name: "${'training'}"}]""", "name 'training' is taken by every torch module"),
    ("""[conv: {out: 4, name: "${''}"}]""", "name '' must be a plain identifier"),
    # names made by expressions meet the rule written ones do (docs/blocks.md): no scope made by a dot
    ("""[conv: {out: 4, name: "${'a.b'}"}]""", "layers[0].conv.name: name 'a.b' must be a plain identifier"),
    ("""[{add: [identity, [act: relu]], name: "${'1x'}"}]""", "name '1x' must be a plain identifier"),
    ("""[{block: basic, out: 4, name: "${3}"}]""", "layers[0].name: name 3 must be a plain identifier"),
    ('[{block: basic, out: 4, name: eval}]', "name 'eval' is taken by every torch module"),
    ("""[{add: [identity, [act: relu]], name: "${'to'}"}]""", "name 'to' is taken by every torch module"),
    ('[add: {half: [act: relu], q: [act: relu]}]', "name 'half' is taken by every torch module"),
])
def test_graph_mistakes_are_located(layers: str, message: str) -> None:
    text = HEAD % (3, f"blocks:\n  b:\n    params: {{out: int}}\n    layers: {layers}\n"
                      "stages: [{block: b, out: 4}]\n")
    if "${out" not in layers:
        text = text.replace("params: {out: int}", "params: {}").replace("{block: b, out: 4}", "{block: b}")
    assert message in _refused(text)


def test_the_names_no_module_can_hold_are_torchs() -> None:
    """Validation refuses a layer or scope name that every built container already has as an
    attribute (it runs without torch, so the names are written out): checked here against torch."""
    from archspec.core.naming import MODULE_ATTRIBUTES

    containers = (nn.Module(), nn.Sequential(), torch.fx.GraphModule(nn.Module(), torch.fx.Graph()))
    assert {a for c in containers for a in dir(c) if not a.startswith("__")} <= MODULE_ATTRIBUTES
    for name in ("forward", "training"):  # outside blocks too: a stem layer, located where it is written
        message = _refused(HEAD % (3, f"stem: [conv: {{out: 4}}, conv: {{out: 4, name: {name}}}]"))
        assert message == f"<string>:5:24: stem[1]: name '{name}' is taken by every torch module (an attribute " \
                          "of nn.Module); choose another", message  # line 5, column 24: counted by hand


def test_an_op_added_from_python(tmp_path: Path) -> None:
    """docs/examples/pixel_norm_op.py, as docs/spec-language.md shows it: usable in a stem and a
    block, analysed, built and exported (its module class copied into the exported file)."""
    from archspec.plugins import load_plugins

    load_plugins([str(Path(__file__).resolve().parent.parent / "docs" / "examples" / "pixel_norm_op.py")])
    text = HEAD % (3, """
blocks:
  unit:
    params: {out: int}
    layers: [conv: {out: "${out}", kernel: 3, padding: 1, name: conv}, pixel_norm: {eps: 1e-6, name: pn}]
stem: [pixel_norm]
stages: [{block: unit, out: 4}]
""")
    assert archspec.analyze(text).params == 4 * 3 * 9 + 4
    model = archspec.build(text).eval()
    x = torch.randn(2, 3, 12, 12)
    y = model.stages[0].blocks[0].conv(x / (x.pow(2).mean(1, keepdim=True) + 1e-8).sqrt())
    expected = (y / (y.pow(2).mean(1, keepdim=True) + 1e-6).sqrt()).mean((2, 3))
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
        exported = exported_model(text, "pixel_norm", tmp_path).eval()
        exported.load_state_dict(model.state_dict())
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=0)


def test_an_op_whose_counting_fails_is_still_lowered(monkeypatch) -> None:
    # The builder sums each node's params, buffers and MACs as it emits it (`Graph.counts`, for a
    # sweep's bounds); an op whose counting raises (a plugin's bug) leaves its graphs without counts
    # and is lowered as before: only analysis, which asks for the counts, meets the error (not run
    # here: it keeps each op class's rules once read).
    from archspec.core import memo
    from archspec.ir.ops.norm import Norm
    from archspec.spec.load import to_network

    def broken(self: Any, ins: Any, out: Any) -> int:
        raise ZeroDivisionError("a plugin's rule")

    memo.clear()
    monkeypatch.setattr(Norm, "macs", broken)
    try:
        net = to_network("resnet18")
        assert net.stem.counts is None and net.head.counts is not None  # the head has no norm
        assert [len(stage.blocks) for stage in net.stages] == [2, 2, 2, 2]
    finally:
        memo.clear()


def test_did_you_mean_never_repeats_the_word() -> None:
    from archspec.core.errors import did_you_mean

    assert did_you_mean("repeat", ["repeat", "stride"]) == ""
    assert did_you_mean("repaet", ["repeat", "stride"]) == " (did you mean 'repeat'?)"


FUSE = """
blocks:
  two_streams:
    params: {out: int}
    layers:
      - conv: {out: "${out}", kernel: 3, padding: 1, name: high}
      - conv: {out: "${out}", kernel: 3, padding: 1, stride: 2, from: input, name: low}
      - resize: {from: [low, high], mode: bilinear, name: up}
      - add: [high, up]
stages: [{block: two_streams, out: 6}]
"""


def test_two_resolutions_fuse_through_a_resize(tmp_path: Path) -> None:
    """HRNet-style exchange: a stride-2 stream upsampled to the full-resolution one and added."""
    import torch.nn.functional as F

    text = HEAD % (3, FUSE)
    model = archspec.build(text).eval()
    block = model.stages[0].blocks[0]
    x = torch.randn(2, 3, 11, 11)  # odd: the low stream is 6x6, resized to 11x11
    with torch.no_grad():
        high, low = block.high(x), block.low(x)
        expected = high + F.interpolate(low, size=(11, 11), mode="bilinear", align_corners=False)
        torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
        exported = exported_model(text, "fuse", tmp_path).eval()
        exported.load_state_dict(model.state_dict())
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=0)


def test_a_loop_makes_and_gathers_named_values() -> None:
    """An aggregation node over a loop's outputs: y0..y2 made in a loop, concatenated by name."""
    text = HEAD % (4, """
blocks:
  chain:
    params: {out: int}
    layers:
      - for: i
        in: "${range(3)}"
        do: [conv: {out: "${out}", kernel: 3, padding: 1, name: "y${i}"}]
      - concat: {for: i, in: [2, 0], do: [{from: "y${i}"}]}
stages: [{block: chain, out: 4}]
""")
    block = archspec.build(text).eval().stages[0].blocks[0]
    x = torch.randn(2, 4, 12, 12)
    with torch.no_grad():
        y0 = block.y0(x)
        y2 = block.y2(block.y1(y0))
        torch.testing.assert_close(block(x), torch.cat([y2, y0], 1), rtol=0, atol=0)


def test_unequal_splits_of_different_widths_export_as_one_class(tmp_path: Path) -> None:
    """Two MixConv blocks, 11 channels cut (5, 3, 3) and 12 cut (4, 4, 4): one exported class whose
    split sizes are an argument of any length; the outputs equal the compiled module's."""
    text = HEAD % (11, MIX.replace("stages: [{block: mixconv, kernels: [3, 5, 7]}]", """stages:
  - {block: mixconv, kernels: [3, 5, 7]}
  - conv: {out: 12}
  - {block: mixconv, kernels: [3, 5, 7]}"""))
    model = archspec.build(text).eval()
    exported = exported_model(text, "mix_widths", tmp_path).eval()
    source = (tmp_path / "mix_widths.py").read_text()
    assert source.count("class Mixconv") == 1 and "_parts: tuple[int, ...]" in source
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 11, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=0)


def test_specs_with_equal_defaults_share_the_ops_their_new_blocks_make() -> None:
    """Ops are kept by the identity of the defaults they were resolved with (ir/builder.py), so
    equal defaults must be one object, or each spec (each sweep sample) makes its norms and
    activations anew: two networks of different widths get the same `norm` and `act` objects.
    Defaults that are equal in Python but written differently stay apart (`-0.0` is not `0.0`)."""
    def network(width: int) -> Any:
        return archspec.load_spec(f"""
name: w{width}
input: {{channels: 3, size: [8, 8]}}
defaults: {{norm: batch, activation: relu}}
stem: [{{conv: {{out: {width}, kernel: 3}}}}, norm, act]
head: [global_pool, flatten]
""").network()
    a, b = network(8), network(16)
    ops_a, ops_b = ([n.op for n in net.stem.nodes] for net in (a, b))
    assert ops_a[0] != ops_b[0]  # the convs differ in width
    assert ops_a[1] is ops_b[1] and ops_a[2] is ops_b[2]
    from archspec.spec.models import Defaults
    plus, minus = (Defaults(norm_momentum=m).op_defaults() for m in (0.0, -0.0))
    assert plus is not minus and str(plus.norm_momentum) == "0.0" and str(minus.norm_momentum) == "-0.0"
