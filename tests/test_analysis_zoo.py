"""Every zoo network: the analysis agrees with the module built on the meta device
(shapes per layer, parameters, buffers) at two input sizes, and with torchvision's
documented GFLOPS and parameter counts where torchvision has the network."""

from __future__ import annotations

import pytest
import torch
import torchvision

import archspec
from archspec.analysis import analyze_network
from archspec.backends.torch_module import to_meta
from archspec.spec.load import to_network
from archspec.ir.op import ModuleCall
from tests.zoo_tiers import tiered

ZOO = archspec.zoo.names()


# MaxViT's window and grid partitions need every stage's map divisible by 7 (inputs of 224k)
LARGER = {"maxvit_t": 224}


def input_sizes(name: str) -> list[tuple[int, int]]:
    """The spec's own input and one 32 pixels larger on each side."""
    h, w = to_network(name).input_shape[1:]
    step = LARGER.get(name, 32)
    return [(h, w), (h + step, w + step)]


def run_meta(net, model: torch.nn.Module) -> dict[str, tuple[list, tuple]]:
    """{module path: (input shapes, output shape)} for every module a forward pass calls."""
    seen: dict[str, tuple[list, tuple]] = {}
    hooks = []
    for path, module in model.named_modules():
        if path:
            def hook(mod, args, out, path=path):
                out = out[-1] if isinstance(out, tuple) else out  # a part with several outputs: its main (last) one
                seen[path] = ([tuple(a.shape[1:]) for a in args if isinstance(a, torch.Tensor)], tuple(out.shape[1:]))
            hooks.append(module.register_forward_hook(hook))
    # Training mode runs the auxiliary heads too; batch 2 keeps BatchNorm happy on 1x1 maps.
    model.train(bool(net.aux_heads))
    try:
        out = model(torch.empty((2,) + tuple(net.input_shape), device="meta"))
        if isinstance(out, dict):  # a network with taps: the shape of each
            seen.update({f"<output {k}>": ([], tuple(v.shape[1:])) for k, v in out.items()})
    finally:
        for h in hooks:
            h.remove()
    return seen


def _ancestors(path: str) -> list[str]:
    """`a`, `a.b` for `a.b.c`: the paths above a module's."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@pytest.mark.parametrize("name", tiered(ZOO))
def test_analysis_matches_the_meta_module(name: str) -> None:
    for size in input_sizes(name):
        net = to_network(name, **{"input.size": list(size)})
        report = analyze_network(net)
        model = to_meta(net)
        seen = run_meta(net, model)
        modules = dict(model.named_modules())
        # layers: modules without children, less empty containers (an empty stem)
        leaves = {p for p, m in modules.items()
                  if p and not list(m.children()) and not isinstance(m, (torch.nn.Sequential, torch.fx.GraphModule))}
        layers = {la.name: la for la in report.layers}
        # the layers inside one op's module (an attention op's qkv and proj) are that op's
        # a layer of the IR is one layer, whatever modules it holds (an attention layer's qkv and proj)
        leaves = {next((a for a in _ancestors(p) if a in layers), p) for p in leaves}
        ops = {ref.path: ref.node.op for ref in net.nodes()}
        assert leaves <= set(layers), f"{name}: modules the analysis does not know: {sorted(leaves - set(layers))}"
        for la in report.layers:
            if la.name in leaves:
                module = modules[la.name]
                assert sum(p.numel() for p in module.parameters()) == la.params, (name, size, la.name)
                assert sum(b.numel() for b in module.buffers()) == la.buffers, (name, size, la.name)
                ins, out = seen[la.name]
                assert out == la.output_shape, (name, size, la.name, out, la.output_shape)
                assert ins == list(la.input_shapes), (name, size, la.name, ins, la.input_shapes)
            else:  # a function in forward (add, concat, mul): no weights, no module of its own
                assert not isinstance(ops[la.name].torch(list(la.input_shapes)), ModuleCall), (name, la.name)
                assert la.params == 0 and la.buffers == 0
        # block outputs (which may be a function node's) and the network's output
        for part in net.parts():
            if part.path in seen:
                assert seen[part.path][1] == part.graph.out_shape, (name, size, part.path)
        if net.taps:  # it returns its taps, each with the analysed shape
            assert {f"<output {f.name}>": f.shape for f in report.features} == {
                k: v[1] for k, v in seen.items() if k.startswith("<output ")}
        else:
            assert seen["head"][1] == report.output_shape
        assert sum(p.numel() for p in model.parameters()) == report.params
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == report.trainable_params
        assert sum(b.numel() for b in model.buffers()) == report.buffers


def torchvision_weights(name: str):
    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        return None


WITH_TORCHVISION = [name for name in ZOO if torchvision_weights(name) is not None]


def test_the_zoo_has_torchvision_counterparts() -> None:
    assert "resnet50" in WITH_TORCHVISION


@pytest.mark.parametrize("name", WITH_TORCHVISION)
def test_macs_equal_torchvision_documented_gflops(name: str) -> None:
    weights = torchvision_weights(name)
    # The size torchvision measured its GFLOPS at: the crop, or a segmentation model's resize (520).
    crop = getattr(weights.transforms(), "crop_size", None) or weights.transforms().resize_size
    report = archspec.analyze(name, input=(crop[0], crop[-1]))
    documented = weights.meta["_ops"]  # GFLOPS as torchvision prints it: multiply-adds, 3 decimals
    assert round(report.macs / 1e9, 3) == pytest.approx(documented, abs=1e-9), (report.macs, documented)
    assert report.params == weights.meta["num_params"]


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16", "googlenet", "squeezenet1_1", "inception_v3"])
def test_smallest_input_is_where_torch_starts_to_work(name: str) -> None:
    """The search's answer against torch's own shape checks: the module (aux heads
    included) runs at (h, w) and fails one pixel lower on either side."""
    from archspec.spec.load import load_spec, smallest_input

    h = w = smallest_input(load_spec(name).model)
    net = to_network(name, **{"input.size": [h, w]})
    model = to_meta(net).train(bool(net.aux_heads))
    model(torch.empty((2, net.input_shape[0], h, w), device="meta"))
    for size in ((h - 1, w), (h, w - 1)):
        if min(size) < 1:
            continue
        with pytest.raises(RuntimeError):
            model(torch.empty((2, net.input_shape[0]) + size, device="meta"))
