"""Diagrams one can put on a page: folded repeats, stage tables, a straight main path, named gates."""

from __future__ import annotations

import html
import re
import struct
import subprocess

import pytest

import archspec
from archspec.backends.diagram import main_path, picture, render_bytes, to_digraph
from archspec.spec.load import load_spec


def need_dot() -> None:
    assert render_bytes("digraph { a }", "svg") is not None, \
        "these tests need Graphviz's dot: run tools/setup.sh or apt-get install graphviz"


def drawn_blocks(pic) -> dict[int, set[int]]:
    """Stage -> the block indices that have a box in the picture (from the boxes' module paths)."""
    out: dict[int, set[int]] = {}
    for box in pic.boxes():
        for path in box.paths:
            m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.", path)
            if m:
                out.setdefault(int(m[1]), set()).add(int(m[2]))
    return out


def titles(source: str) -> str:
    """The DOT source's text, HTML tags dropped and entities read."""
    return html.unescape(re.sub(r"<[^>]+>", " ", source))


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def test_resnet152_folds_to_a_page() -> None:
    """He et al. 2015, table 1: ResNet-152 has 3, 8, 36 and 3 bottlenecks per stage."""
    net = load_spec("resnet152").network()
    pic = picture(net, "block")
    assert drawn_blocks(pic) == {s: {0, 1} for s in range(4)}  # the first block (it projects) and one repeat
    text = titles(to_digraph(pic).source)
    for n in (3, 8, 36, 3):
        assert f"blocks 1–{n - 1} · bottleneck ×{n - 1}" in text
    assert "grey: one block drawn for ×N identical ones" in text
    need_dot()
    width, height = png_size(render_bytes(to_digraph(pic).source, "png"))
    assert height <= 2000, (width, height)
    unfolded = picture(net, "block", fold=False)
    assert drawn_blocks(unfolded) == {s: set(range(n)) for s, n in enumerate((3, 8, 36, 3))}


def test_densenet121_dense_blocks_fold_and_read_as_dense() -> None:
    """Huang et al. 2017, table 1: dense blocks of 6, 12, 24 and 16 layers, growth 32, from 64 channels."""
    net = load_spec("densenet121").network()
    pic = picture(net, "block")
    assert drawn_blocks(pic) == {s: {0} for s in range(7)}
    text = titles(to_digraph(pic).source)
    width = 64
    for k, (stage, layers) in enumerate(zip((0, 2, 4, 6), (6, 12, 24, 16)), start=1):
        grown = width + 32 * layers
        assert f"stages.{stage} (denseblock{k}) · dense_layer ×{layers} · {width}->{grown} channels" in text
        width = grown // 2  # each transition halves the width (compression 0.5)
    dense = [e for e in pic.edges if e.label == "all earlier maps"]
    assert len(dense) == 4 and all(e.skip and e.bold for e in dense)  # one bold bypass into each block's concat
    unfolded = picture(net, "block", fold=False)  # every layer's bypass bold, the first of each block labelled
    assert sum(e.bold for e in unfolded.edges) == 6 + 12 + 24 + 16
    assert sum(e.label == "all earlier maps" for e in unfolded.edges) == 4
    layer = picture(net, "layer", fold=True)
    assert drawn_blocks(layer) == {s: {0} for s in range(7)}


def test_drop_path_rates_do_not_stop_folding_and_are_rounded() -> None:
    """ConvNeXt-T (Liu et al. 2022): 3, 3, 9, 3 blocks; stochastic depth 0.1 rising linearly over 18 blocks."""
    pic = picture(load_spec("convnext_tiny").network(), "block")
    assert drawn_blocks(pic) == {s: {0, 1} for s in range(4)}
    rows = [row.text for box in pic.boxes() for row in box.rows]
    assert any("drop path 0.006" in t for t in rows)  # 0.1 * 1/17 = 0.00588...
    assert not any(re.search(r"drop path 0\.\d{4}", t) for t in rows)


def test_stage_level_reads_like_the_papers_tables() -> None:
    """ResNet-50's conv3_x: [1x1, 128; 3x3, 128; 1x1, 512] x 4 at stride 2 (He et al. 2015, table 1)."""
    pic = picture(load_spec("resnet50").network(), "stage")
    stage1 = next(b for b in pic.boxes() if b.header == "stages.1")
    assert [r.text for r in stage1.rows] == ["bottleneck ×4 · stride 2", "conv 1x1, 512->128 · bn · relu",
                                             "conv 3x3, 128->128 · bn · relu", "conv 1x1, 128->512 · bn", "add · relu"]
    assert [r.category for r in stage1.rows[1:]] == ["conv", "conv", "conv", "merge"]  # coloured by kind
    vgg = picture(load_spec("vgg19").network(), "stage")
    assert "conv" in vgg.categories()  # the legend of a stage-level VGG names conv


def test_squeeze_excitation_is_grouped_and_named() -> None:
    """EfficientNet-B0's MBConv6 at 24 channels squeezes to 24 * 0.25 = 6 (Tan & Le 2019)."""
    stage = picture(load_spec("efficientnet_b0").network(), "stage")
    rows = [r.text for b in stage.boxes() if b.header == "stages.1" for r in b.rows]
    assert "squeeze-excitation 144->6->144" in rows
    assert not any(t.startswith(("global avgpool", "mul")) for t in rows)  # folded into the named row
    block = picture(load_spec("mobilenet_v3_small").network(), "block")

    def clusters(c):
        yield c
        for sub in c.clusters:
            yield from clusters(sub)

    gates = [c for c in clusters(block.root) if c.label == "squeeze-excitation"]
    # Howard et al. 2019, table 2: 9 of the 11 bnecks have SE; two of them repeat the block before (folded)
    assert len(gates) == 9 - 2
    assert all(any(p.endswith("se.pool") for b in c.boxes for p in b.paths) for c in gates)


@pytest.mark.parametrize("name", ["resnet152", "googlenet"])
def test_main_path_is_straight(name: str) -> None:
    """Every box of the input-to-output path at one x (they drifted right in GoogLeNet, left in ResNet-152)."""
    need_dot()
    pic = picture(load_spec(name).network(), "block")
    main, _ = main_path(pic)
    plain = subprocess.run(["dot", "-Tplain"], input=to_digraph(pic).source.encode(), capture_output=True,
                           check=True, timeout=60).stdout.decode()
    x = {f[1]: float(f[2]) for f in (line.split() for line in plain.splitlines()) if f[0] == "node"}
    assert len(main) > 10 and max(x[b] for b in main) - min(x[b] for b in main) < 0.05  # inches


def test_api_and_cli_fold_options(tmp_path, capsys) -> None:
    from archspec.cli.main import main

    assert len(archspec.diagram("resnet18", fold=False).source) > len(archspec.diagram("resnet18").source)
    assert main(["diagram", "resnet18", "--no-fold", "-o", "-"]) == 0
    assert capsys.readouterr().out == archspec.diagram("resnet18", fold=False).source
    assert main(["diagram", "resnet18", "--level", "layer", "--fold", "-o", "-"]) == 0
    assert "blocks 1–1 · basic ×1" not in capsys.readouterr().out  # a run of one is not folded


_TAPPED_INSIDE_A_RUN = """
name: tapped
input: {channels: 3, size: [32, 32]}
num_classes: 10
blocks:
  cba:
    params: {out: int}
    layers:
      - conv: {out: "${out}", kernel: "${5 if index % 3 == 0 else 3}", padding: "${2 if index % 3 == 0 else 1}"}
      - act
stem:
  - conv: {out: 64, kernel: 3, padding: 1}
stages:
  - {block: cba, out: 64, repeat: 4}
head: [global_pool, flatten, {linear: 10}]
heads:
  side: {block: layers, in: stages.0.blocks.2, layers: [global_pool, flatten, {linear: 5}]}
  main: {block: layers, in: stages.0, layers: [global_pool, flatten, {linear: 7}]}
"""


def _box_of(pic, path: str):
    return next(box for box in pic.boxes() if path in box.paths)


def test_a_head_reading_a_folded_block_is_drawn_from_that_blocks_run() -> None:
    # Blocks 0 and 3 are 5x5, 1 and 2 are 3x3: runs 0, 1-2, 3. The head reads block 2, folded into
    # the run drawn as block 1: its edge comes from that run, not from block 3 (the last box of the stage).
    pic = picture(load_spec(_TAPPED_INSIDE_A_RUN).network(), "block")
    assert drawn_blocks(pic) == {0: {0, 1, 3}}
    run, side = _box_of(pic, "stages.0.blocks.1.0"), _box_of(pic, "heads.side.0")
    assert [e.src for e in pic.edges if e.dst == side.id] == [run.id]


def test_returned_taps_are_marked_on_folded_blocks() -> None:
    # resnet50 with features=stages returns each stage's last block, which folding hides in every stage
    pic = picture(load_spec("resnet50", features="stages").network(), "block")
    notes = " ".join(box.note for box in pic.boxes())
    assert all(f"→ stages.{s}" in notes for s in range(4)), notes


def test_a_value_read_outside_its_graph_ends_its_box() -> None:
    # unet_resnet34's up4 reads stem.relu (64x112x112), before the stem's max-pool: at block level the
    # edge leaves a box that ends with the relu, not the stem's box ending with the pooled 64x56x56 map
    pic = picture(load_spec("unet_resnet34").network(), "block")
    source = _box_of(pic, "stem.relu")
    assert source.paths[-1] == "stem.relu"
    up4 = {box.id for box in pic.boxes() if any(p.startswith("necks.up4.") for p in box.paths)}
    assert any(e.src == source.id and e.dst in up4 for e in pic.edges)


def test_blocks_that_read_inputs_of_another_width_do_not_fold_together() -> None:
    # the first block reads the stem's 16 channels, the others 64: the same ops, another layer
    spec = load_spec("""
name: widths
input: {channels: 3, size: 32}
blocks:
  cba:
    params: {out: int}
    layers: [{conv: {out: "${out}", kernel: 3, padding: 1}}, norm, act]
stem: [{conv: {out: 16, kernel: 3, padding: 1}}]
stages: [{block: cba, out: 64, repeat: 3}]
""")
    pic = picture(spec.network(), "block")
    assert drawn_blocks(pic) == {0: {0, 1}}
    assert "blocks 1–2 · cba ×2" in titles(to_digraph(pic).source)


def test_diagram_options_that_would_be_ignored_are_refused(capsys) -> None:
    from archspec.cli.main import main

    assert main(["diagram", "resnet18", "-o", "-", "--format", "png"]) == 2
    assert "-o - writes the DOT source to stdout, not png" in capsys.readouterr().err
    assert main(["diagram", "resnet18", "--level", "stage", "--no-fold", "-o", "-"]) == 2
    assert "--no-fold draws every block, and the stage level draws none" in capsys.readouterr().err
