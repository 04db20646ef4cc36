"""Python source export: standalone, formatted, and the same module as `archspec.build`.

The generated files are imported in a fresh interpreter in which `import archspec`
fails, so nothing they need can come from archspec. The references are the compiled
modules (their state_dict keys, shapes and outputs) and ruff's formatter and linter.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import archspec
from archspec.backends.python_source import python_source
from archspec.ir.op import ModuleCall
from tests.clirun import run_cli
from tests.generated import assert_ruff_clean, exported_model, model_class
from tests.zoo_tiers import EXPORTED, input_side, shortened

ZOO = archspec.zoo.names()
# Forward passes run on the zoo less the variants of issue 14's families (tests/zoo_tiers.py), in four
# groups, one child interpreter each, so that the test spreads over workers, each network with its
# stages cut to their distinct blocks (tests.zoo_tiers.shortened: every block class and every set of
# constructor arguments runs, not every repeat). Keys, shapes and formatting are checked for every
# zoo network in full.
GROUPS = [EXPORTED[i::4] for i in range(4)]

# Runs in the child: archspec is made unimportable before anything else happens. It reads one
# job per line on stdin and answers each with one line of JSON on stdout, so that the parent can
# write one network's weights at a time (VGG's are 0.5 GB) and the child imports torch once.
CHILD = r"""
import importlib.util, json, os, sys
sys.modules["archspec"] = None  # `import archspec` now raises ImportError
import torch
from safetensors.torch import load_file

for line in sys.stdin:
    item = json.loads(line)
    spec = importlib.util.spec_from_file_location(item["module"], item["source"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, item["class"])
    if item.get("weights"):
        model = cls()
        model.load_state_dict(load_file(item["weights"]))
        os.remove(item["weights"])
        model.eval()
        x = load_file(item["input"])["x"]
        with torch.no_grad():
            torch.save(model(x), item["output"])
        if item.get("train"):
            torch.manual_seed(0)
            model.train()
            out = model(x)
            outs = out.values() if isinstance(out, dict) else out if isinstance(out, tuple) else [out]
            torch.save(list(outs), item["train"])
    else:
        with torch.device("meta"):
            model = cls()
    keys = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    print(json.dumps({"name": item["name"], "keys": keys}), flush=True)
"""


class Child:
    """A fresh interpreter without archspec that imports, builds and runs exported files, one job at a time."""

    def __init__(self, tmp_path: Path) -> None:
        self._stderr = tmp_path / "child.stderr"
        with self._stderr.open("w") as err:
            self._process = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp_path)

    def run(self, item: dict) -> dict:
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps(item) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        assert reply, f"the child died on {item['name']}: {self._stderr.read_text()[-3000:]}"
        return json.loads(reply)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process.stdin
        with contextlib.suppress(BrokenPipeError):  # a dead child: the test's own error says why
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        finally:
            self._process.kill()


def _write(name: str, tmp_path: Path) -> tuple[Path, str]:
    source = python_source(archspec.load_spec(name).network())
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path, source


@pytest.mark.slow  # about 35 s for the whole zoo
def test_every_zoo_spec_exports_with_the_compiled_modules_keys_and_shapes(tmp_path: Path) -> None:
    with Child(tmp_path) as child:
        for name in ZOO:
            path, source = _write(name, tmp_path)
            entry = child.run({"name": name, "module": f"exported_{name}", "source": str(path),
                               "class": model_class(source)})
            with torch.device("meta"):
                expected = [[k, list(v.shape)] for k, v in archspec.build(name, init_weights=False).state_dict().items()]
            assert entry["keys"] == expected, name


def _forward_job(spec: str | Path | archspec.Spec, key: str, tmp_path: Path,
                 short: bool = False) -> tuple[dict, dict]:
    """Export `spec`, save random weights and an input for the child; return its job and our outputs.

    EfficientNet-B1 to B7 run at 224x224 (their layers do not depend on the input size; at up
    to 600x600 the four forward passes would take most of the test's time). `short`: its stages
    cut to their distinct blocks (`shortened`).
    """
    net = archspec.load_spec(spec).network()
    if str(spec).startswith("efficientnet") and net.input_shape[1] > 224:
        spec = archspec.load_spec(spec, **{"input.size": [224, 224]})
        net = spec.network()
    if net.taps:  # dense prediction is fully convolutional: the same layers at 128x128 (or the least it takes)
        side = input_side(str(spec), net.input_shape[1], 128)
        spec = archspec.load_spec(spec, **{"input.size": [side, side]})
        net = spec.network()
    if short:
        spec = shortened(archspec.load_spec(spec))
        net = spec.network()
    source = python_source(net)
    path = tmp_path / f"{key}.py"
    path.write_text(source)
    torch.manual_seed(0)
    model = archspec.build(spec)
    _randomise_norm_statistics(model)
    x = torch.randn(2, *net.input_shape)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / f"{key}.safetensors")
    save_file({"x": x}, tmp_path / f"{key}.x.safetensors")
    item = {"name": key, "module": f"exported_{key}", "source": str(path), "class": model_class(source),
            "weights": str(tmp_path / f"{key}.safetensors"), "input": str(tmp_path / f"{key}.x.safetensors"),
            "output": str(tmp_path / f"{key}.out.pt")}
    model.eval()
    with torch.no_grad():
        expected = {"eval": model(x)}
    if net.aux_heads or any(ref.node.op.kind in ("dropout", "drop_path") for ref in net.nodes()):
        # Training mode draws dropout and stochastic-depth masks: the same seed must give the same ones.
        item["train"] = str(tmp_path / f"{key}.train.pt")
        torch.manual_seed(0)
        model.train()
        out = model(x)
        outs = out.values() if isinstance(out, dict) else out if isinstance(out, tuple) else (out,)
        expected["train"] = [t.detach() for t in outs]
    return item, expected


def _check_outputs(child: Child, item: dict, want: dict) -> None:
    """Run `item` in the child; its outputs must be the compiled module's, `want`."""
    key = item["name"]
    child.run(item)
    ours = torch.load(item["output"])
    if isinstance(want["eval"], dict):  # a network with taps: the same names, in order, and values
        assert list(ours) == list(want["eval"]), key
        assert all(torch.allclose(ours[k], v, atol=1e-5, rtol=0) for k, v in want["eval"].items()), key
    else:
        assert torch.allclose(ours, want["eval"], atol=1e-5, rtol=0), key
    if "train" in want:
        theirs = torch.load(item["train"])
        assert len(theirs) == len(want["train"]), key
        for a, b in zip(theirs, want["train"]):
            assert torch.allclose(a, b, atol=1e-5, rtol=0), key


@pytest.mark.slow  # about 35 s a group
@pytest.mark.parametrize("group", GROUPS, ids=[f"group{i}" for i in range(len(GROUPS))])
def test_exported_modules_compute_what_the_compiled_ones_compute(group: list[str], tmp_path: Path) -> None:
    with Child(tmp_path) as child:
        for name in group:
            _check_outputs(child, *_forward_job(name, name, tmp_path, short=True))


def _randomise_norm_statistics(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def test_exported_source_is_formatted_and_lint_clean(tmp_path: Path) -> None:
    for name in ZOO:
        _write(name, tmp_path)
    assert_ruff_clean(tmp_path)


def test_ops_name_their_positional_arguments_as_the_constructors_do() -> None:
    """Exported class arguments are named after constructor parameters (`conv1_channels` from
    `out_channels`): each op's names must be the constructor's own, read from its signature."""
    shufflenet = Path(__file__).parent.parent / "docs" / "examples" / "shufflenet_v2_x1_0.yaml"
    rest = {"name": "rest", "input": {"channels": 3, "size": [16, 16]}, "num_classes": 4,  # ops no zoo net uses
            "stem": [{"conv": {"out": 8, "kernel": 3}}, {"lrn": 3}, {"norm": {"type": "group", "groups": 4}},
                     {"conv_transpose": {"out": 8, "kernel": 2, "stride": 2}}, {"pixel_unshuffle": 2},
                     {"pixel_shuffle": 2}, {"adaptive_pool": {"size": [3, 2], "type": "max"}}],
            "stages": [], "head": ["flatten", {"linear": 6}, {"norm": "batch"}, {"norm": "layer"}, {"linear": 4}]}
    seen = set()
    for spec in [*ZOO, shufflenet, rest]:
        for ref in archspec.load_spec(spec).network().nodes():
            call = ref.node.op.torch(ref.graph.in_shapes(ref.node))
            if isinstance(call, ModuleCall) and call.args:
                module, _, name = call.target.rpartition(".")
                parameters = list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
                assert list(call.positional()) == parameters[: len(call.args)], (spec, ref.path, call.target)
                seen.add(call.target.rpartition(".")[2])
    assert seen == {"Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "LayerNorm2d", "LayerNorm", "LocalResponseNorm",
                    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten", "StochasticDepth", "LayerScale", "ChannelSplit",
                    "ChannelShuffle", "FrozenBatchNorm2d", "ClassToken", "PositionEmbedding", "SelfAttention",
                    "SelectToken", "WindowAttention", "PartitionAttention", "L2Norm", "GroupNorm", "ConvTranspose2d",
                    "PixelShuffle", "PixelUnshuffle"}, seen


def test_one_class_per_block_type_and_no_archspec_import(tmp_path: Path) -> None:
    _, source = _write("resnet50", tmp_path)
    classes = re.findall(r"^class (\w+)\(", source, re.M)
    assert classes == ["Stem", "Bottleneck", "Head", "Stage", "Resnet50"]
    imports = [line for line in source.splitlines() if re.match(r"\s*(import|from) ", line)]
    assert imports == ["from __future__ import annotations", "import fnmatch", "import math", "import re",
                       "from collections import OrderedDict", "import torch", "from torch import nn"]
    # The optional projection shortcut is a None module, as in torchvision's Bottleneck.
    assert "self.downsample = None\n        if downsample:" in source
    assert "if self.downsample is not None:\n            x = self.downsample(x)\n        out += x" in source
    # ResNet-50's stage 1 holds 3 bottlenecks, the first with the projection.
    assert source.count("downsample=True") == 4 and source.count("downsample=False") == 12


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_user_defined_blocks_export_too(tmp_path: Path) -> None:
    """A YAML-defined ShuffleNet-v2 unit (split, shuffle): its archspec layers are copied into the file."""
    spec = Path(__file__).parent.parent / "docs" / "examples" / "shufflenet_v2_x1_0.yaml"
    item, want = _forward_job(spec, "shufflenet", tmp_path)
    source = Path(item["source"]).read_text()
    assert "class ChannelShuffle(nn.Module):" in source and "class ChannelSplit(nn.Module):" in source
    with Child(tmp_path) as child:
        _check_outputs(child, item, want)
    code, _, err = run_cli("export", str(spec), "-o", str(tmp_path / "cli.py"))
    assert code == 0, err
    assert (tmp_path / "cli.py").read_text() == source


def test_export_cli_needs_no_torch(tmp_path: Path) -> None:
    code = ("import sys; from archspec.cli.main import main; rc = main(['export', 'resnet50', '-o', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.py").read_text().startswith('"""resnet50: standalone PyTorch source')


def test_the_documented_example_is_current() -> None:
    example = Path(__file__).parent.parent / "docs" / "examples" / "resnet50_export.py"
    assert example.read_text() == python_source(archspec.load_spec("resnet50").network()), (
        "stale: run `archspec export resnet50 -o docs/examples/resnet50_export.py`")


def test_exported_models_initialise_as_their_specs_say(tmp_path: Path) -> None:
    """The standards are the references' initialisers: He et al.'s fan-out normal for ResNet's convs
    (std sqrt(2 / (out * k * k))), ConvNeXt's truncated normal (std 0.02, zero bias), SqueezeNet's
    final conv (normal, std 0.01, zero bias, by module name). PyTorch's defaults differ in each."""
    torch.manual_seed(0)
    torch.set_grad_enabled(False)  # only statistics of the weights are read
    try:
        _check_initialisers(tmp_path)
    finally:
        torch.set_grad_enabled(True)


def _check_initialisers(tmp_path: Path) -> None:
    resnet = exported_model("resnet50", "resnet50", tmp_path)
    w = resnet.stem.conv1.weight
    assert abs(float(w.std()) / math.sqrt(2 / (64 * 7 * 7)) - 1) < 0.05
    convnext = exported_model("convnext_tiny", "convnext_tiny", tmp_path)
    fc1 = convnext.stages[0].blocks[0].pwconv1
    assert abs(float(fc1.weight.std()) / 0.02 - 1) < 0.05 and not fc1.bias.any()
    squeezenet = exported_model("squeezenet1_1", "squeezenet1_1", tmp_path)
    final = squeezenet.head.final_conv
    assert abs(float(final.weight.std()) / 0.01 - 1) < 0.05 and not final.bias.any()
    first = squeezenet.stem.conv1  # kaiming_uniform for the other convs, with zero bias
    assert not first.bias.any() and abs(float(first.weight.std()) / math.sqrt(2 / (3 * 9)) - 1) < 0.1


# The facts every op states (register_op refuses one that leaves any out), for the ops of the scripts below.
_OP_FACTS = '''    depth_layer: ClassVar[bool] = False
    ends_features: ClassVar[bool] = False
    output_overwritable: ClassVar[bool] = False
    init_kind: ClassVar[str | None] = None
    init_skippable: ClassVar[bool] = False
    fused: ClassVar[bool] = True
'''

_SCRIPT_OP = '''
import sys
from typing import ClassVar
import torch
from pydantic import Field
from torch import nn
import archspec
from archspec.ir.op import ModuleCall, Op, register_op


class PixelNorm(nn.Module):
    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


@register_op
class PixelNormOp(Op):
    kind: ClassVar[str] = "pixel_norm"
    category: ClassVar[str] = "norm"
    shorthand: ClassVar[str] = "eps"
''' + _OP_FACTS + '''    eps: float = Field(1e-8, gt=0)

    def torch(self, ins):
        return ModuleCall(f"{__name__}.PixelNorm", kwargs={"eps": self.eps})


spec = {"name": "pn", "input": {"channels": 3, "size": 16}, "num_classes": 4,
        "stem": [{"conv": {"out": 8, "kernel": 3}}, "pixel_norm", "act"],
        "head": ["global_pool", "flatten", {"linear": 4}]}
model = archspec.build(spec).eval()
archspec.export(spec, sys.argv[1])
torch.save(model.state_dict(), sys.argv[2])
'''


def test_a_layer_class_of_the_running_script_is_copied_into_the_export(tmp_path: Path) -> None:
    # `ModuleCall(f"{__name__}.PixelNorm")` in a script names `__main__`, which no other interpreter
    # can import: the class is copied in, and the file builds the same model elsewhere
    script, exported, weights = tmp_path / "make.py", tmp_path / "pn_export.py", tmp_path / "pn.pth"
    script.write_text(_SCRIPT_OP)
    made = subprocess.run([sys.executable, str(script), str(exported), str(weights)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "__main__" not in exported.read_text() and "class PixelNorm(nn.Module)" in exported.read_text()
    check = ("import sys, torch; sys.path.insert(0, sys.argv[1]); import pn_export\n"
             "m = pn_export.Pn().eval(); m.load_state_dict(torch.load(sys.argv[2]))\n"
             "print(m(torch.ones(1, 3, 16, 16)).shape)")
    run = subprocess.run([sys.executable, "-c", check, str(tmp_path), str(weights)], capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert run.returncode == 0 and run.stdout.strip() == "torch.Size([1, 4])", run.stderr[-2000:]


def test_the_weights_hint_of_a_deployed_export_of_a_checkpoint_loads_them(tmp_path: Path) -> None:
    # the checkpoint holds the training form's tensors; the note says how to get the deployed form's
    spec = {"name": "tiny_bn", "input": {"channels": 3, "size": 16}, "num_classes": 4,
            "defaults": {"norm": "batch", "activation": "relu"},
            "stem": [{"conv": {"out": 8, "kernel": 3, "padding": 1, "bias": False}}, "norm", "act"],
            "head": ["global_pool", "flatten", {"linear": 4}]}
    model = archspec.build(spec).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    ckpt, out = tmp_path / "tiny.safetensors", tmp_path / "tiny_dep.py"
    archspec.save(model, ckpt)
    code, stdout, err = run_cli("export", str(ckpt), "--deploy", "-o", str(out), "--json")
    assert code == 0, err
    hint = json.loads(stdout)["note"]
    statement = hint.split("with ", 1)[1]
    loader = importlib.util.spec_from_file_location("tiny_dep", out)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    exported = module.TinyBn().eval()
    eval(statement, {"model": exported, "archspec": archspec})  # the note's own code
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(exported(x), model(x), rtol=1e-4, atol=1e-5)


_PLUGIN = '''
import math
from typing import ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from archspec.ir.op import ModuleCall, Op, register_op


class ScaledGelu(nn.Module):
    """gelu(x) * scale / sqrt(2): reads F and math, which its file imports."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return F.gelu(x) * self.scale / math.sqrt(2)


@register_op
class ScaledGeluOp(Op):
    kind: ClassVar[str] = "scaled_gelu"
    category: ClassVar[str] = "act"
    shorthand: ClassVar[str] = "scale"
''' + _OP_FACTS + '''    scale: float = Field(1.0, gt=0)

    def torch(self, ins):
        return ModuleCall(f"{__name__}.ScaledGelu", kwargs={"scale": self.scale})
'''

_PLUGIN_SPEC = ("{name: sg, input: {channels: 3, size: 8}, num_classes: 4, stem: [{conv: {out: 6, kernel: 3}}, "
                "{scaled_gelu: 3.0}], head: [global_pool, flatten, {linear: 4}]}")


def test_a_plugin_layer_class_is_exported_with_the_imports_it_reads(tmp_path: Path) -> None:
    # the class reads `F` and `math`, imported at the top of its file: the exported file imports them too
    # (before, it was copied alone and failed with a NameError at forward time)
    (tmp_path / "sg_plugin.py").write_text(_PLUGIN)
    (tmp_path / "sg.yaml").write_text(_PLUGIN_SPEC)
    make = ("import sys, torch, archspec; from archspec.plugins import load_plugins; load_plugins([sys.argv[1]])\n"
            "torch.manual_seed(0); m = archspec.build(sys.argv[2]).eval(); archspec.export(sys.argv[2], sys.argv[3])\n"
            "torch.save({'state': m.state_dict(), 'out': m(torch.linspace(-2, 2, 192).reshape(1, 3, 8, 8))}, sys.argv[4])")
    exported, saved = tmp_path / "sg_export.py", tmp_path / "sg.pt"
    made = subprocess.run([sys.executable, "-c", make, str(tmp_path / "sg_plugin.py"), str(tmp_path / "sg.yaml"),
                           str(exported), str(saved)], capture_output=True, text=True, cwd=str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    text = exported.read_text()
    assert "import torch.nn.functional as F" in text and "import math" in text and "class ScaledGelu" in text
    check = ("import sys, torch; sys.path.insert(0, sys.argv[1]); import sg_export\n"
             "saved = torch.load(sys.argv[2]); m = sg_export.Sg().eval(); m.load_state_dict(saved['state'])\n"
             "print(torch.equal(m(torch.linspace(-2, 2, 192).reshape(1, 3, 8, 8)), saved['out']))")
    run = subprocess.run([sys.executable, "-c", check, str(tmp_path), str(saved)], capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr[-2000:]


def test_a_plugin_layer_class_reading_a_name_its_file_defines_is_refused_at_export(tmp_path: Path) -> None:
    # a module-level constant cannot come along: a located refusal at export, not a NameError later
    plugin = _PLUGIN.replace("import math\n", "SQRT2 = 2 ** 0.5\n").replace("math.sqrt(2)", "SQRT2")
    (tmp_path / "sg_plugin.py").write_text(plugin)
    (tmp_path / "sg.yaml").write_text(_PLUGIN_SPEC)
    code, _, err = run_cli("export", str(tmp_path / "sg.yaml"), "--plugin", str(tmp_path / "sg_plugin.py"),
                           "--format", "python", "-o", str(tmp_path / "out.py"))
    assert code != 0 and "ScaledGelu" in err and "'SQRT2'" in err and "defines outside the class" in err, err
    assert not (tmp_path / "out.py").exists()
