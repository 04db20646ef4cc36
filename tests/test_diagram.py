"""Diagrams: every level for every zoo spec, structure checked against torch and torchvision,
escaping of hostile names, the fallback without Graphviz, the CLI and the gallery.

Outside truth: the leaf modules and fx graphs of the torch module built on the meta device,
torchvision's resnet50 (its blocks, downsample modules, per-stage parameters and documented
num_params / GFLOPS), the GoogLeNet paper's four-branch inception module, LeNet-5 counted by
hand, and Graphviz's own layout (`-Tplain`) and SVG output.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import operator
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

import archspec
from archspec import zoo
from archspec.backends.diagram import (
    LEVELS,
    PALETTE,
    DotMissing,
    diagram_network,
    picture,
    render,
    render_bytes,
    to_digraph,
)
from archspec.blocks import BlockFamily, register_block
from archspec.core.formatting import human
from archspec.cli.main import main
from tests.zoo_tiers import tiered

ROOT = Path(__file__).resolve().parent.parent
NODE = re.compile(r"^\s*(n\d+) \[label=<", re.MULTILINE)
EDGE = re.compile(r"^\s*(n\d+)(?::b:[nsew])? -> (n\d+)(?::b:[nsew])?(?![\w:])(?! \[style=invis)", re.MULTILINE)
BGCOLOR = re.compile(r'BGCOLOR="(#[0-9a-f]{6})"')


class Inception(BlockFamily):
    """GoogLeNet's inception module (Szegedy et al. 2014, fig. 2b): 1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1."""

    c1: int
    c3: int
    c5: int
    pool: int

    def emit(self, b, x, ctx):
        with b.scope("branch1"):
            b1 = b.conv_norm_act(x, self.c1, 1)
        with b.scope("branch2"):
            y = b.conv_norm_act(x, self.c3 // 2, 1, names=("0.conv", "0.bn", "0.act"))
            b2 = b.conv_norm_act(y, self.c3, 3, names=("1.conv", "1.bn", "1.act"))
        with b.scope("branch3"):
            y = b.conv_norm_act(x, self.c5 // 4, 1, names=("0.conv", "0.bn", "0.act"))
            b3 = b.conv_norm_act(y, self.c5, 5, names=("1.conv", "1.bn", "1.act"))
        with b.scope("branch4"):
            y = b.op("maxpool", x, name="0", kernel=3, stride=1, padding=1)
            b4 = b.conv_norm_act(y, self.pool, 1, names=("1.conv", "1.bn", "1.act"))
        return b.concat(b1, b2, b3, b4)


class Identity(BlockFamily):
    """A block that emits no layer at all."""

    strided = False

    def emit(self, b, x, ctx):
        return x


@pytest.fixture
def custom_blocks():
    """Register the test families for one test only, so that other tests' lists of known
    block types stay as they are."""
    from archspec.spec.families import BLOCKS, load_builtin_blocks

    before = dict(load_builtin_blocks())  # the built-ins register once per process: keep them
    register_block("diagram_test_inception")(Inception)
    register_block("diagram_test_identity")(Identity)
    yield
    BLOCKS.clear()
    BLOCKS.update(before)


INCEPTION_SPEC = {
    "name": "tiny_inception",
    "input": {"channels": 3, "size": [32, 32]},
    "stem": [{"conv": {"out": 16, "kernel": 3, "padding": 1}}, "act"],
    "stages": [{"block": "diagram_test_inception", "c1": 8, "c3": 16, "c5": 8, "pool": 8, "repeat": 2}],
    "head": ["global_pool", "flatten", {"linear": 10}],
}

LENET = {  # LeCun et al. 1998, with C3 fully connected as in most reimplementations
    "name": "lenet",
    "input": {"channels": 1, "size": [32, 32]},
    "defaults": {"norm": "none", "activation": "tanh"},
    "stem": [{"conv": {"out": 6, "kernel": 5}}, "act", {"avgpool": {"kernel": 2, "stride": 2}}],
    "stages": [{"block": "layers", "layers": [{"conv": {"out": 16, "kernel": 5}}, "act",
                                              {"avgpool": {"kernel": 2, "stride": 2}}]}],
    "head": ["flatten", {"linear": 120}, "act", {"linear": 84}, "act", {"linear": 10}],
}


def nodes_edges(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    return NODE.findall(source), EDGE.findall(source)


def need_dot() -> None:
    assert render_bytes("digraph { a }", "svg") is not None, \
        "these tests need Graphviz's dot: run tools/setup.sh or apt-get install graphviz"


# -- every zoo spec, every level ----------------------------------------------------------------
@pytest.mark.parametrize("name", tiered(zoo.names()))
def test_every_level_draws_every_layer_once(name):
    net = zoo.load_spec(name).network()
    ir_paths = [ref.path for ref in net.nodes()]
    for level in LEVELS:
        pic = picture(net, level, fold=False)
        source = to_digraph(pic).source
        nodes, edges = nodes_edges(source)
        boxes = pic.boxes()
        assert len(nodes) == len(set(nodes)) == len(boxes), (level, "one DOT node per box")
        assert len(edges) == len(pic.edges)
        drawn = [p for box in boxes for p in box.paths]
        assert sorted(drawn) == sorted(ir_paths), (level, "every layer in exactly one box")
        if level == "layer":
            assert len(boxes) == len(ir_paths) + 1  # and the input
        if level == "stage":
            expected = (1 + bool(net.stem.nodes) + len(net.stages) + bool(net.head.nodes) + len(net.aux_heads)
                        + len(net.attached))  # a box per neck and head
            assert len(boxes) == expected


def _ancestors(path: str) -> list[str]:
    """`a`, `a.b` for `a.b.c`: the paths above a module's."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _leaf_modules_and_functions(net) -> tuple[set[str], int, Counter]:
    """Leaf module names of the meta-device module, the number of merges done by functions
    (a chain of binary `a + b + c` counts once) and the input counts of each torch.cat."""
    import torch
    from torch import fx

    from archspec.backends.torch_module import to_meta

    model = to_meta(net)
    containers = (torch.nn.Sequential, torch.nn.ModuleList, fx.GraphModule)  # an empty stem is no layer
    leaves = {name for name, m in model.named_modules()
              if name and not list(m.children()) and not isinstance(m, containers)}
    # a layer of the IR is one layer, whatever modules it holds (an attention layer's qkv and proj)
    layers = {ref.path for ref in net.nodes()}
    leaves = {next((a for a in _ancestors(name) if a in layers), name) for name in leaves}
    merges, cats = 0, Counter()
    for m in model.modules():
        if not isinstance(m, fx.GraphModule):
            continue
        for node in m.graph.nodes:
            if node.op != "call_function":
                continue
            if node.target is torch.cat:
                cats[len(node.args[0])] += 1
            folded = len(node.users) == 1 and any(u.op == "call_function" and u.target is node.target and u.args[0] is node
                         for u in node.users) and node.target in (operator.add, operator.mul, operator.iadd)
            merges += not folded
    return leaves, merges, cats


@pytest.mark.parametrize("name", tiered(zoo.names()))
def test_layer_level_matches_the_torch_module(name):
    """Layer level: one box per leaf module of the built network, plus one per functional merge;
    block level: each concatenation box has as many inputs as the torch.cat in the module."""
    net = zoo.load_spec(name).network()
    leaves, merges, cats = _leaf_modules_and_functions(net)
    layer = picture(net, "layer")
    paths = {p for box in layer.boxes() for p in box.paths}
    assert leaves <= paths
    assert len(layer.boxes()) - 1 == len(leaves) + merges

    block = picture(net, "block", fold=False)
    indegree = Counter(e.dst for e in block.edges)
    concat_boxes = [b for b in block.boxes() if b.rows and b.rows[0].text.startswith("concat")]
    assert Counter(indegree[b.id] for b in concat_boxes) == cats


def test_resnet50_against_torchvision():
    """Skip edges, folded stages, per-stage parameters and the title, from torchvision's resnet50."""
    import torch
    import torchvision
    from torchvision.models import ResNet50_Weights

    with torch.device("meta"):
        tv = torchvision.models.resnet50(weights=None)
    meta = ResNet50_Weights.IMAGENET1K_V1.meta
    stages = [tv.layer1, tv.layer2, tv.layer3, tv.layer4]

    block = picture(archspec.load_spec("resnet50").network(), "block", fold=False)
    identity_blocks = sum(1 for layer in stages for blk in layer if blk.downsample is None)
    assert sum(e.skip for e in block.edges) == identity_blocks == 12

    stage = picture(archspec.load_spec("resnet50").network(), "stage", show="params,macs")
    for i, layer in enumerate(stages):
        (box,) = [b for b in stage.boxes() if b.paths and b.paths[0].startswith(f"stages.{i}.")]
        row = box.rows[0]  # the stage's totals; the rows of the block it repeats follow
        assert row.text.startswith(f"bottleneck ×{len(layer)}")
        assert row.params == sum(p.numel() for p in layer.parameters())

    source = to_digraph(stage).source
    assert f"{human(meta['num_params'])} params" in source  # 25.56M
    assert f"{meta['_ops']:.2f}G MACs" in source  # torchvision documents 4.09 GFLOPS (multiply-adds)
    assert "input 3x224x224" in source
    assert f"{human(sum(p.numel() for p in tv.layer3.parameters()))} params" in source


def test_numbers_shown_for_lenet_by_hand():
    """--show params,macs,rf at stage level: LeNet-5 worked out on paper."""
    pic = picture(archspec.load_spec(LENET).network(), "stage", show="params,macs,rf")
    (stage,) = [b for b in pic.boxes() if b.header == "stages.0"]
    conv, pool = stage.rows  # "conv 5x5, 6->16 · tanh", "avgpool 2x2/2"
    assert conv.params == 16 * 6 * 5 * 5 + 16
    assert conv.macs == 16 * 10 * 10 * 6 * 5 * 5
    # RF: c1 5; s2 2x2/2 -> 6 (jump 2); c3 5x5 -> 6 + 4*2 = 14; s4 2x2/2 -> 14 + 1*2 = 16.
    assert pool.rf.size == (16, 16)
    source = to_digraph(pic).source
    assert "2.42K params" in source and "RF 16" in source and "240.00K MACs" in source


def test_inception_branches_side_by_side(custom_blocks):
    need_dot()
    net = archspec.load_spec(INCEPTION_SPEC).network()
    pic = picture(net, "block", fold=False)  # the two identical modules, both drawn
    concat = [b for b in pic.boxes() if b.rows[0].text == "concat"]
    assert len(concat) == 2
    for box in concat:
        assert sum(e.dst == box.id for e in pic.edges) == 4  # four branches (paper, fig. 2)
    # Graphviz's layout: the four branch heads of the first module on one rank, in emission order.
    first_concat = concat[0].id
    (stem,) = [b.id for b in pic.boxes() if b.header == "stem"]
    heads = [e.dst for e in pic.edges if e.src == stem]  # the stem feeds every branch head
    assert len(heads) == 4
    plain = render_bytes(to_digraph(pic).source, "plain").decode()
    pos = {parts[1]: (float(parts[2]), float(parts[3])) for parts in map(str.split, plain.splitlines())
           if parts and parts[0] == "node"}
    assert len({pos[h][1] for h in heads}) == 1
    assert [pos[h][0] for h in heads] == sorted(pos[h][0] for h in heads)
    assert pos[first_concat][1] < pos[heads[0]][1]  # below them (y grows upwards in -Tplain)


@pytest.mark.parametrize(("spec", "level"), [("resnet50", "block"), ("resnet50", "layer"), ("inception", "block")])
def test_no_overlapping_boxes_in_layout(custom_blocks, spec, level):
    """Graphviz's own layout: no two nodes (boxes, with the cluster titles they carry) overlap."""
    need_dot()
    g = archspec.diagram(INCEPTION_SPEC if spec == "inception" else spec, level=level, show="params",
                         fold=False if spec == "inception" else None)
    plain = render_bytes(g.source, "plain").decode()
    rects = []
    for parts in map(str.split, plain.splitlines()):
        if parts and parts[0] == "node":
            x, y, w, h = map(float, parts[2:6])
            rects.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    assert len(rects) == len(nodes_edges(g.source)[0]) > 10
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_colours_are_one_per_category_across_the_zoo(custom_blocks):
    """At layer level every box is filled with its op category's colour, whatever the network."""
    seen: dict[str, set[str]] = {}
    for name in zoo.names() + [INCEPTION_SPEC, LENET]:
        net = archspec.load_spec(name).network()
        category = {ref.path: type(ref.node.op).category for ref in net.nodes()}
        pic = picture(net, "layer")
        g = to_digraph(pic)
        for box in pic.boxes()[1:]:
            (path,) = box.paths
            label = next(line for line in g.body if line.lstrip().startswith(f"{box.id} ["))
            (colour,) = set(BGCOLOR.findall(label))
            seen.setdefault(category[path], set()).add(colour)
        legend = set(BGCOLOR.findall(g.graph_attr["label"]))
        assert legend == {PALETTE.get(category[p], PALETTE["other"]) for b in pic.boxes()[1:] for p in b.paths}
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({c for cs in seen.values() for c in cs}) == len(seen)


def test_dot_source_is_deterministic():
    a = archspec.diagram("resnet50", level="layer", show="params,macs,rf").source
    b = archspec.diagram(archspec.load_spec("resnet50"), level="layer", show=["rf", "macs", "params"]).source
    assert a == b


def test_options():
    assert "rankdir=LR" in archspec.diagram(LENET, rankdir="lr").source
    with pytest.raises(archspec.ArchspecError, match="did you mean 'layer'"):
        archspec.diagram(LENET, level="layers")
    with pytest.raises(archspec.ArchspecError, match="unknown show value 'flops'"):
        archspec.diagram(LENET, show="params,flops")
    assert "input 1x64x64" in archspec.diagram(LENET, input=64).source


def test_empty_parts_and_blocks_without_layers(custom_blocks):
    """No stem, no head and blocks that emit nothing still make valid pictures at every level."""
    need_dot()
    spec = {"name": "bare", "input": {"size": [8, 8]},
            "stages": [{"block": "diagram_test_identity", "repeat": 2}, {"block": "basic", "out": 3}]}
    net = archspec.load_spec(spec).network()
    for level in LEVELS:
        g = diagram_network(net, level=level, show="params,macs,rf")
        text, _ = _svg_texts(render_bytes(g.source, "svg"))
        assert "input 3x8x8" in text
    stage = picture(net, "stage")
    assert [b.header for b in stage.boxes()] == ["", "stages.0", "stages.1"]
    assert stage.boxes()[1].rows[0].text == "diagram_test_identity ×2"


def test_renders_inline_in_jupyter():
    need_dot()
    bundle = archspec.diagram(LENET, level="stage")._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")


# -- escaping -----------------------------------------------------------------------------------
HOSTILE = 'a"b<c>&{d}\\e\nf\'g ]; -> ✓'
HOSTILE_END = "x\\"
HOSTILE_AUX = '<aux> & "q" {\\}'


def hostile_network():
    spec = {
        "name": "hostile",
        "input": {"channels": 3, "size": [16, 16]},
        "stem": [{"conv": {"out": 4, "kernel": 3, "name": HOSTILE}}, "act"],
        "stages": [{"block": "basic", "out": 4, "repeat": 1}],
        "head": ["global_pool", "flatten", {"linear": {"out": 10, "name": HOSTILE_END}}],
        "aux_heads": [{"after": 0, "name": HOSTILE_AUX, "layers": ["flatten", {"linear": 10}]}],
    }
    net = archspec.load_spec(spec).network()
    # names the spec language refuses, set on the IR directly
    stage = dataclasses.replace(net.stages[0], name="st<ag>e\n0 \\")
    return dataclasses.replace(net, name='spec "name" <b>&amp; \\n', stages=(stage, *net.stages[1:]))


def _svg_texts(svg: bytes) -> tuple[str, set[str]]:
    root = ET.fromstring(svg)
    text = " ".join(t.strip() for t in root.itertext() if t.strip())
    titles = {v for el in root.iter() for k, v in el.attrib.items() if k.endswith("title")}
    return text, titles


@pytest.mark.parametrize("level", LEVELS)
def test_hostile_names_are_escaped(level):
    need_dot()
    net = hostile_network()
    g = diagram_network(net, level=level, show="params")
    svg = render_bytes(g.source, "svg")
    text, titles = _svg_texts(svg)  # dot accepted the source and wrote well-formed XML
    assert 'spec "name" <b>&amp; \\n' in text
    assert "st<ag>e 0 \\" in text
    assert f"{HOSTILE_AUX} (training only)" in text
    if level == "layer":
        assert HOSTILE.replace("\n", " ") in text and HOSTILE_END in text
        assert f"stem.{HOSTILE}".replace("\n", " ") in titles  # the tooltip is the module path
        assert f"head.{HOSTILE_END}" in titles


# -- output and the CLI ---------------------------------------------------------------------------
def test_render_formats(tmp_path):
    need_dot()
    g = archspec.diagram(LENET, level="layer")
    for ext, magic in (("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")):
        path = render(g, tmp_path / f"lenet.{ext}")
        assert path.read_bytes().startswith(magic)
    assert render(g, tmp_path / "lenet.dot").read_text() == g.source
    with pytest.raises(archspec.ArchspecError, match="ending in"):
        render(g, tmp_path / "lenet.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.dot", "lenet.pdf", "lenet.png", "lenet.svg"]


def test_without_dot_the_api_writes_the_dot_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    g = archspec.diagram(LENET)
    with pytest.raises(DotMissing, match="apt-get install graphviz") as err:
        render(g, tmp_path / "net.png")
    assert err.value.exit_code == 3
    assert (tmp_path / "net.dot").read_text() == g.source
    assert not (tmp_path / "net.png").exists()


def test_cli_without_dot(tmp_path):
    """The real command with a PATH that has no `dot`: a .dot file, install advice, exit code 3."""
    env = {**os.environ, "PATH": str(tmp_path / "no-bin"), "PYTHONPATH": str(ROOT)}
    out = tmp_path / "figs" / "resnet.svg"
    proc = subprocess.run([sys.executable, "-m", "archspec.cli.main", "diagram", "resnet50", "--level", "stage",
                           "-o", str(out)], env=env, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    for advice in ("apt-get install graphviz", "brew install graphviz", "conda install"):
        assert advice in proc.stderr
    assert not out.exists()
    assert (tmp_path / "figs" / "resnet.dot").read_text() == archspec.diagram("resnet50", level="stage").source


def test_cli(tmp_path, capsys):
    need_dot()
    assert main(["diagram", "resnet50", "--level", "stage", "--show", "params,macs", "--rankdir", "LR",
                 "-o", str(tmp_path / "r.svg")]) == 0
    svg = (tmp_path / "r.svg").read_bytes()
    text, _ = _svg_texts(svg)
    assert "bottleneck ×6" in text and "25.56M params" in text
    assert main(["diagram", "resnet50", "--set", "num_classes=10", "-o", str(tmp_path / "r.dot")]) == 0
    assert "linear 2048-&gt;10" in (tmp_path / "r.dot").read_text()
    capsys.readouterr()
    assert main(["diagram", "resnet50", "--level", "layer", "--input", "3x64x64", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("digraph resnet50 {")
    assert main(["diagram", "resnet50", "-o", str(tmp_path / "r.jpg")]) == 2
    assert main(["diagram", "resnet50", "--show", "flops", "-o", str(tmp_path / "r.svg")]) == 2
    assert "unknown show value 'flops'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["diagram", "--help"])
    assert "example" in capsys.readouterr().out


def test_diagram_does_not_import_torch(tmp_path):
    code = ("import sys, archspec; from archspec.cli.main import main; archspec.diagram('resnet50', level='layer'); "
            f"main(['diagram', 'resnet50', '-o', {str(tmp_path / 'x.dot')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# -- the gallery --------------------------------------------------------------------------------
def test_gallery_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "tools" / "gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    sys.modules["gallery"] = gallery  # dataclasses look their module up
    spec.loader.exec_module(gallery)
    assert gallery.entries(), "the gallery shows at least one zoo network"
    assert gallery.problems() == [], "run `python tools/gallery.py` to redraw docs/gallery/"


def test_cli_without_output_writes_name_svg_and_says_so(tmp_path, capsys, monkeypatch):
    need_dot()
    monkeypatch.chdir(tmp_path)
    assert main(["diagram", "lenet5", "--level", "stage"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "wrote lenet5.svg" in err
    assert (tmp_path / "lenet5.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert main(["diagram", "lenet5", "--level", "stage", "--format", "png", "--dpi", "200"]) == 0
    assert "wrote lenet5.png" in capsys.readouterr().err
    low = tmp_path / "low.png"
    assert main(["diagram", "lenet5", "--level", "stage", "-o", str(low), "--dpi", "50"]) == 0
    width_at = {dpi: int.from_bytes(path.read_bytes()[16:20], "big")  # the PNG header's width
                for dpi, path in ((200, tmp_path / "lenet5.png"), (50, low))}
    assert 3.5 < width_at[200] / width_at[50] < 4.5  # 200 dpi against 50: four times as wide
