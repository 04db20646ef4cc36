"""Hand-computed receptive fields and shapes for the cases that break naive rules.

Every expected value below is worked out by hand in the comment above it with
Araujo et al.'s recurrences (Distill 2019): for a window of kernel k, stride s,
padding p and dilation d on a field (r, j, P): k' = d(k-1)+1, r += (k'-1)j,
P += p*j, j *= s; merges take the union of the paths' regions. No torch here.
"""

from __future__ import annotations

import pytest

import archspec
from archspec.analysis import analyze_network
from archspec.spec.load import load_spec, to_network
from archspec.core.errors import SpecError
from archspec.ir.op import RF
from tests.analysis_helpers import paths, spec

pytestmark = pytest.mark.usefixtures("test_paths_family")  # the `test_paths` block these tests use


def report(s: dict):
    return analyze_network(to_network(s))


def field(layer) -> tuple:
    return layer.rf.size, layer.rf.stride, layer.rf.padding


def test_dilation_and_stride_compose() -> None:
    # conv 3x3 d2 p2: k'=5 -> r=5, j=1, P=2; shape 32+4-5+1 = 32
    # conv 3x3 /2 p1: r=5+2*1=7, j=2, P=2+1=3; shape (32+2-3)//2+1 = 16
    # conv 3x3 d3 p3: k'=7 -> r=7+6*2=19, j=2, P=3+3*2=9; shape 16+6-7+1 = 16
    r = report(spec([], stem=[{"conv": {"out": 4, "kernel": 3, "dilation": 2, "padding": 2}},
                              {"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}},
                              {"conv": {"out": 4, "kernel": 3, "dilation": 3, "padding": 3}}], size=32))
    assert [la.output_shape for la in r.layers] == [(4, 32, 32), (4, 16, 16), (4, 16, 16)]
    assert field(r.layers[0]) == ((5, 5), (1, 1), (2, 2))
    assert field(r.layers[1]) == ((7, 7), (2, 2), (3, 3))
    assert field(r.layers[2]) == ((19, 19), (2, 2), (9, 9))


def test_asymmetric_kernels_1x7_7x1() -> None:
    # conv [3,1] /[2,1] p[1,0]: r=(3,1), j=(2,1), P=(1,0); shape ((17+2-3)//2+1, 17) = (9, 17)
    # conv [1,7] p[0,3]:        r=(3,1+6)=(3,7), j=(2,1), P=(1,3)
    # conv [7,1] p[3,0]:        r=(3+6*2,7)=(15,7), j=(2,1), P=(1+3*2,3)=(7,3)
    r = report(spec([], stem=[{"conv": {"out": 2, "kernel": [3, 1], "stride": [2, 1], "padding": [1, 0]}},
                              {"conv": {"out": 2, "kernel": [1, 7], "padding": [0, 3]}},
                              {"conv": {"out": 2, "kernel": [7, 1], "padding": [3, 0]}}], size=17))
    assert [la.output_shape for la in r.layers] == [(2, 9, 17)] * 3
    assert field(r.layers[0]) == ((3, 1), (2, 1), (1, 0))
    assert field(r.layers[1]) == ((3, 7), (2, 1), (1, 3))
    assert field(r.layers[2]) == ((15, 7), (2, 1), (7, 3))


def test_ceil_mode_pooling() -> None:
    # maxpool 3/2 ceil on 8: ceil((8-3)/2)+1 = 4 (floor mode: 3); field r=3, j=2, P=0
    # maxpool 2/2 p1 ceil on 4: ceil((4+2-2)/2)+1 = 3, last window starts at 2*2-1 = 3 < 4: kept;
    #   field r=3+1*2=5, j=4, P=0+1*2=2
    r = report(spec([], stem=[{"maxpool": {"kernel": 3, "stride": 2, "ceil_mode": True}},
                              {"maxpool": {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True}}], size=8))
    assert [la.output_shape for la in r.layers] == [(1, 4, 4), (1, 3, 3)]
    assert field(r.layers[0]) == ((3, 3), (2, 2), (0, 0))
    assert field(r.layers[1]) == ((5, 5), (4, 4), (2, 2))
    floor = report(spec([], stem=[{"maxpool": {"kernel": 3, "stride": 2}}], size=8))
    assert floor.layers[0].output_shape == (1, 3, 3)


def test_ceil_mode_drops_a_window_that_starts_in_the_right_padding() -> None:
    # 2/2 p1 ceil on 5: windows would start at -1, 1, 3, 5; 5 is in the right padding -> 3 outputs
    r = report(spec([], stem=[{"maxpool": {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True}}], size=5))
    assert r.layers[0].output_shape == (1, 3, 3)


def test_inception_concat_takes_the_union_of_its_paths() -> None:
    # stem conv 3/2 p1 on 16: r=3, j=2, P=1, 8x8.
    # path0 conv1:                r=3,         P=1        region of unit 0: [-1, 1]
    # path1 conv1, conv3 p1:      r=3+2*2=7,   P=1+1*2=3  [-3, 3]
    # path2 conv1, conv5 p2:      r=3+4*2=11,  P=1+2*2=5  [-5, 5]
    # path3 maxpool3/1 p1, conv1: r=7,         P=3        [-3, 3]
    # union: [-5, 5] -> r=11, j=2, P=5; channels 2+3+4+5
    s = spec([paths([{"conv": {"out": 2}}],
                    [{"conv": {"out": 3}}, {"conv": {"out": 3, "kernel": 3, "padding": 1}}],
                    [{"conv": {"out": 4}}, {"conv": {"out": 4, "kernel": 5, "padding": 2}}],
                    [{"maxpool": {"kernel": 3, "stride": 1, "padding": 1}}, {"conv": {"out": 5}}])],
             stem=[{"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}}], size=16)
    merge = report(s).layer("stages.0.blocks.0.merge")
    assert merge.output_shape == (14, 8, 8)
    assert field(merge) == ((11, 11), (2, 2), (5, 5))


def test_union_of_unaligned_fields_is_larger_than_either() -> None:
    # regions [-3, 1] (r=5, P=3) and [-1, 3] (r=5, P=1) -> [-3, 3]: r=7, P=3
    a, b = RF((5, 5), (1, 1), (3, 3)), RF((5, 5), (1, 1), (1, 1))
    assert RF.union([a, b]) == RF((7, 7), (1, 1), (3, 3))
    assert RF.union([a, b]).region((2, 2)) == ((-1, 5), (-1, 5))


def test_residual_add_with_projection_takes_the_main_path() -> None:
    # basic block /2 on 8x8 (input field r=1, j=1, P=0):
    # conv1 3/2 p1: r=3, j=2, P=1; conv2 3 p1: r=3+2*2=7, P=1+2=3 -> [-3, 3]
    # shortcut conv 1/2: r=1, j=2, P=0 -> [0, 0]; union [-3, 3]: r=7, j=2, P=3
    s = spec([{"block": "basic", "out": 4, "stride": 2}], size=8)
    s["defaults"]["norm"] = "batch"
    r = report(s)
    assert field(r.layer("stages.0.blocks.0.downsample.0")) == ((1, 1), (2, 2), (0, 0))
    assert field(r.layer("stages.0.blocks.0.add")) == ((7, 7), (2, 2), (3, 3))


def test_squeeze_excitation_gate_gives_every_unit_the_whole_map() -> None:
    # stem conv 3 p1 on 8: r=3, j=1, P=1 (unit i sees [i-1, i+1]).
    # gate: global pool over 8 -> r=3+7*1=10, P=1 (sees [-1, 8]); broadcast back by mul.
    # mul: local field stays r=3, j=1, P=1 (the gate sets no spacing); context [-1, 8].
    # conv 3 p1 after it: r=5, j=1, P=2; unit 4 sees [2, 6] locally, [-1, 8] with the context.
    s = spec([paths([], [{"global_pool": "avg"}, {"conv": {"out": 4}}, {"act": "sigmoid"}], merge="mul"),
              {"block": "layers", "layers": [{"conv": {"out": 4, "kernel": 3, "padding": 1}}]}],
             stem=[{"conv": {"out": 4, "kernel": 3, "padding": 1}}], size=8)
    r = report(s)
    gate = r.layer("stages.0.blocks.0.merge")
    assert field(gate) == ((3, 3), (1, 1), (1, 1))
    assert gate.rf.context == ((-1, 8), (-1, 8))
    after = r.layers[-1]
    assert field(after) == ((5, 5), (1, 1), (2, 2))
    assert after.rf.region((4, 4)) == ((-1, 8), (-1, 8))
    assert after.rf.centre((4, 4)) == (4.0, 4.0)


def test_global_pooling_sees_the_whole_input() -> None:
    # conv 3 (no pad) on 12 -> 10: r=3, j=1, P=0; maxpool 2 -> 5: r=4, j=2, P=0
    # global pool over 5: r=4+4*2=12, P=0: pixels [0, 11], the whole 12x12 input
    s = spec([{"block": "layers", "layers": [{"conv": {"out": 2, "kernel": 3}}, {"maxpool": 2}]}],
             head=[{"global_pool": "avg"}, "flatten", {"linear": 3}], size=12)
    r = report(s)
    assert r.layer("head.0").rf.region((0, 0)) == ((0, 11), (0, 11))
    # On 13x13 the 2x2 pool (floor mode) drops the last row and column: 12 of 13 are seen.
    s["input"]["size"] = [13, 13]
    assert report(s).layer("head.0").rf.region((0, 0)) == ((0, 11), (0, 11))
    # the network's field is taken before global pooling
    assert r.receptive_field_layer == "stages.0.blocks.0.1"


def test_vgg16_published_field_and_unit_region() -> None:
    # Araujo et al., Table 1: VGG-16 at pool5: r=212, stride 32, padding 90.
    r = analyze_network(to_network("vgg16"))
    rf = r.receptive_field
    assert (rf.size, rf.stride, rf.padding) == ((212, 212), (32, 32), (90, 90))
    assert r.receptive_field_layer == "stages.4.blocks.0.pool"
    # unit (3, 3) of the 7x7 pool5: starts at -90 + 3*32 = 6, ends at 6 + 211 = 217, centre 111.5
    assert rf.region((3, 3)) == ((6, 217), (6, 217))
    assert rf.centre((3, 3)) == (111.5, 111.5)


# Araujo et al., Table 1, at the end of the feature extractor: (size, stride, padding).
PUBLISHED = {"vgg16": (212, 32, 90), "inception_v3": (1311, 32, 618)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))  # a zoo spec gone fails here, as it should
def test_published_receptive_fields(name: str) -> None:
    rf = analyze_network(to_network(name)).receptive_field
    size, stride, padding = PUBLISHED[name]
    assert (rf.size, rf.stride, rf.padding) == ((size, size), (stride, stride), (padding, padding))


# "Depth" in MathWorks' table of pretrained networks ("Pretrained Deep Neural Networks",
# Deep Learning Toolbox documentation): the most conv/fully connected layers on a path.
PUBLISHED_DEPTH = {"alexnet": 8, "vgg16": 16, "vgg19": 19, "resnet18": 18, "resnet50": 50, "resnet101": 101,
                   "googlenet": 22, "inception_v3": 48, "squeezenet1_1": 18, "mobilenet_v2": 53,
                   "efficientnet_b0": 82}


@pytest.mark.parametrize("name", sorted(PUBLISHED_DEPTH))
def test_depth_counts_weight_layers_on_the_longest_path(name: str) -> None:
    # projection shortcuts and parallel branches are not on the longest path
    assert analyze_network(to_network(name)).depth == PUBLISHED_DEPTH[name]


def test_activation_memory_scales_with_batch_and_dtype() -> None:
    import archspec

    one = archspec.analyze("resnet50")
    # ResNet-50's stem conv output alone: 64 x 112 x 112 float32 values per sample
    assert one.layer_bytes(one.layer("stem.conv1")) == 64 * 112 * 112 * 4
    many = archspec.analyze("resnet50", batch=8, dtype="float16")
    assert many.activation_bytes == one.activation_bytes // 4 * 2 * 8
    assert many.peak_activation_bytes == one.peak_activation_bytes // 4 * 2 * 8
    # the peak holds at least the largest single output plus the input it was computed from
    assert one.peak_activation_bytes >= (64 * 112 * 112 + 3 * 224 * 224) * 4


def test_too_small_input_names_the_layer_and_the_smallest_input() -> None:
    # VGG: five 2x2/2 pools need 2**5 = 32 pixels; at 16 the fifth pool (stage 4's 'pool') meets a 1x1 map.
    with pytest.raises(SpecError) as err:
        to_network("vgg16", **{"input.size": [16, 16]})
    message = str(err.value)
    assert "stages[4]: vgg (layer 'pool'): input 512x1x1 is too small for maxpool 2x2/2" in message
    assert "the smallest input that works is 32x32" in message


def test_smallest_input_for_an_asymmetric_kernel() -> None:
    # conv [3, 7] without padding needs 7 columns, so the smallest square input is 7x7
    s = spec([], stem=[{"conv": {"out": 2, "kernel": [3, 7]}}], size=(5, 5))
    with pytest.raises(SpecError, match=r"stem\[0\]: input 1x5x5 is too small for conv 3x7/1; "
                                        r"the smallest input that works is 7x7"):
        load_spec(s).network()


def test_lowering_reuses_a_block_only_when_nothing_it_read_changed() -> None:
    # ResNet-50's stage 2: block 0 downsamples (stride 2), blocks 1-5 are one block five times.
    stage = to_network("resnet50").stages[2]
    assert len({id(b.graph) for b in stage.blocks}) == 2
    # A family that reads its index gets a graph per block, with the widths its index gives.
    net = to_network(spec([{"block": "test_grows", "base": 2, "repeat": 3}], size=8))
    assert [b.graph.out_shape for b in net.stages[0].blocks] == [(2, 8, 8), (4, 8, 8), (6, 8, 8)]



@pytest.mark.parametrize("by", ["index", "global_index"])
def test_blocks_after_the_second_share_its_graph_only_when_their_position_is_not_read(by: str) -> None:
    # Blocks 1, 2, 3 of a stage see the same input and context but for their position; a family that
    # reads it dilates each block's conv by its own (1 + position), all on one 4x9x9 shape.
    stages = [{"block": "test_grows", "base": 4, "repeat": 1},
              {"block": "test_spreads", "by": by, "repeat": 4}]
    net = to_network(spec(stages, size=9))
    first = 1 if by == "global_index" else 0  # the stage's first block is block 1 of the network
    assert [b.graph.nodes[0].op.dilation for b in net.stages[1].blocks] == list(range(first + 1, first + 5))
    assert [b.graph.out_shape for b in net.stages[1].blocks] == [(4, 9, 9)] * 4
    # a family that does not read it: blocks 1, 2, 3 are one graph
    blocks = to_network("resnet50").stages[1].blocks
    assert len({id(b.graph) for b in blocks[1:]}) == 1 and blocks[0].graph is not blocks[1].graph


def test_the_receptive_field_stride_has_one_name_in_python_and_json() -> None:
    """`stride` in Python and in JSON; `jump` (the older name, Araujo et al.'s) stays as an alias."""
    report = archspec.analyze("vgg16")
    rf = report.receptive_field
    assert rf.stride == (32, 32)
    assert report.to_dict()["receptive_field"]["stride"] == [32, 32]
