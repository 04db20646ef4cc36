"""Every per-op fact lives on the op class, and every registered op states each one.

A fact left to a default would fail silently (a depth one short, weights left to PyTorch's
initialisation, a sum written into a value autograd still needs), so `register_op` refuses an
op without them, and the facts that torch can check are checked against torch here.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import ClassVar

import pytest
import torch
from torch import nn

from archspec.backends.torch_init import init_scheme, init_weights
from archspec.backends.torch_module import instantiate, resolve_target
from archspec.ir.op import FACTS, ModuleCall, Op, OpDefaults, missing_facts, register_op
from archspec.ir.ops import OPS, op_class
from archspec.ir.ops.activation import ACTIVATIONS, ActKind
from archspec.spec.models import INIT_SCHEMES, InitRule

BUILT_IN = sorted(kind for kind, cls in OPS.items() if cls.__module__.startswith("archspec.ir.ops."))


SAMPLES = {kind: OPS[kind].example for kind in BUILT_IN}


def test_every_built_in_op_states_an_example() -> None:
    assert [kind for kind, example in SAMPLES.items() if example is None] == []


@pytest.mark.parametrize("kind", sorted(OPS))
def test_every_registered_op_states_every_fact(kind: str) -> None:
    cls = OPS[kind]
    assert missing_facts(cls) == []
    for fact in FACTS:
        value = getattr(cls, fact)
        if fact == "init_kind":
            assert value in (None, "conv", "linear", "norm"), (kind, value)
        else:
            assert isinstance(value, bool), (kind, fact, value)
    if cls.init_skippable:
        assert cls.init_kind is not None, kind


def test_register_op_refuses_an_op_that_leaves_a_fact_out() -> None:
    class Half(Op):
        kind: ClassVar[str] = "half_stated"
        depth_layer: ClassVar[bool] = False
        fused: ClassVar[bool] = False

    with pytest.raises(TypeError, match="ends_features, output_overwritable, init_kind, init_skippable"):
        register_op(Half)
    assert "half_stated" not in OPS


def _module(kind: str) -> tuple[Op, nn.Module | None]:
    fields, ins = SAMPLES[kind]
    op = op_class(kind)(**fields).resolved(OpDefaults())
    call = op.torch(ins)
    return op, (instantiate(call) if isinstance(call, ModuleCall) else None)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_init_facts_agree_with_the_initialisation(kind: str) -> None:
    """`init_kind` names the rule that `init_weights` applies to the op's module (zeros, here),
    and an op whose constructor's initialisation may be skipped has a module without buffers."""
    op, module = _module(kind)
    if module is None:
        assert type(op).init_kind is None and not type(op).init_skippable
        return
    model = nn.Sequential(module)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zeros = {k: ("zeros", "zeros") for k in ("conv", "linear", "norm")}
    init_weights(model, zeros, {})
    params = dict(model.named_parameters())
    if type(op).init_kind is None:
        assert all(torch.equal(before[k], v) for k, v in params.items()), kind
    else:  # the rule sets the weights of its layers; an attention op's own tables keep theirs
        ruled = {f"{n}.{p}" for n, m in model.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear, nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d))
                 for p, _ in m.named_parameters(recurse=False)}
        assert ruled and all(not params[k].any() for k in ruled), kind
        assert all(torch.equal(before[k], v) for k, v in params.items() if k not in ruled), kind
    if type(op).init_skippable:
        assert not list(module.buffers()), kind


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_depth_and_feature_facts_follow_the_module(kind: str) -> None:
    """Depth counts the layers with weights that papers count (conv, U-Net's up-convolution and
    linear); the feature
    extractor ends at what reduces a map to a vector or classifies it."""
    op, module = _module(kind)
    fields, ins = SAMPLES[kind]
    assert type(op).depth_layer == isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)), kind
    if type(op).ends_features:
        out = op.out_shape(ins)
        assert len(out) == 1 or out[1:] != ins[0][1:], kind


@pytest.mark.parametrize("name", typing.get_args(ActKind))
def test_each_activation_says_whether_its_module_runs_in_place(name: str) -> None:
    target, inplace = ACTIVATIONS[name]
    assert ("inplace" in inspect.signature(resolve_target(target)).parameters) == inplace


def test_the_init_schemes_the_messages_list_are_the_ones_accepted_and_applied() -> None:
    for shown in INIT_SCHEMES:
        scheme = shown.replace("MODE", "fan_out").replace("NONLINEARITY", "relu").replace("STD", "0.02")
        InitRule(weight=scheme)  # the spec's pattern accepts it
        init_scheme(scheme, torch.empty(4, 3, 3, 3))  # torch_init applies it
    with pytest.raises(ValueError):
        InitRule(weight="kaiming")
    assert re.search(r"unknown init scheme", _message_for("kaiming"))


def _message_for(scheme: str) -> str:
    from archspec.core.errors import SpecError
    from archspec.spec.load import load_spec

    with pytest.raises(SpecError) as exc:
        load_spec({"name": "n", "init": {"conv": {"weight": scheme}}})
    return str(exc.value)


WALKTHROUGH = """
import importlib.util, sys
from pathlib import Path
import torch
from torch import nn
import archspec
from archspec.ir.op import missing_facts
from archspec.ir.ops import OPS

doc = Path(sys.argv[1]).read_text(encoding="utf-8")
code = doc.split("### Adding an op", 1)[1].split("```python\\n", 1)[1].split("```", 1)[0]
name = "archspec.ir.ops.pad"  # as archspec/ir/ops/pad.py
module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
module.__package__ = "archspec.ir.ops"
sys.modules[name] = module
exec(compile(code, "pad.py", "exec"), module.__dict__)
assert missing_facts(OPS["pad"]) == []
net = {"name": "padnet", "input": {"channels": 3, "size": [8, 8]}, "stem": [{"pad": 1}, {"conv": {"out": 4}}],
       "head": ["flatten"]}
report = archspec.analyze(net)
assert report.layers[0].output_shape == (3, 10, 10) and report.output_shape == (400,), report
model = archspec.build(net)
x = torch.randn(2, 3, 8, 8)
assert isinstance(model.stem[0], nn.ZeroPad2d)
assert torch.equal(model.stem[0](x), nn.functional.pad(x, (1, 1, 1, 1)))

# The second file, an upsampling op (pixel shuffle as TensorFlow names it), states its field; the
# field equals autograd's at every unit of a 4x4 patch, and the same op without `rf` is refused.
sys.path.insert(0, sys.argv[2])
from archspec.core.errors import ArchspecError
from archspec.spec.load import to_network
from tests.analysis_helpers import measure_region

code = doc.split("### Adding an op", 1)[1].split("```python\\n")[2].split("```", 1)[0]
for kind, text in (("depth_to_space", code),
                   ("depth_to_space_unruled", code.replace("depth_to_space", "depth_to_space_unruled")
                    .replace("def rf(", "def _no_rf("))):
    name = f"archspec.ir.ops.{kind}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    module.__package__ = "archspec.ir.ops"
    sys.modules[name] = module
    exec(compile(text, f"{kind}.py", "exec"), module.__dict__)
    net = {"name": "shuffled", "input": {"channels": 1, "size": [16, 16]}, "defaults": {"norm": "none"},
           "stem": [{"conv": {"out": 8, "kernel": 3, "stride": 2, "padding": 1}}, {kind: 2},
                    {"conv": {"out": 2, "kernel": 3, "padding": 1}}], "head": []}
    if kind == "depth_to_space":
        layers = archspec.analyze(net).layers
        assert layers[1].output_shape == (2, 16, 16), layers[1]
        # by hand: unit i reads input unit i // 2, whose field is [2 (i // 2) - 1, 2 (i // 2) + 1]:
        # [i - 1, i + 1] for even i, [i - 2, i] for odd; both fit [i - 2, i + 1]: size 4, padding 2
        assert layers[1].rf.size == (4, 4) and layers[1].rf.stride == (1, 1) and layers[1].rf.padding == (2, 2)
        for layer in (1, 2):
            met = set()
            for unit in [(h, w) for h in range(6, 10) for w in range(6, 10)]:
                (a0, a1), (b0, b1) = layers[layer].rf.region(unit)
                (r0, r1), (c0, c1) = measure_region(to_network(net), f"stem.{layer}", unit)
                assert a0 <= r0 and r1 <= a1 and b0 <= c0 and c1 <= b1, (layer, unit, layers[layer].rf)
                met |= {("first", r0 == a0), ("last", r1 == a1)}
            assert {("first", True), ("last", True)} <= met, (layer, met)  # the cover is tight
    else:
        try:
            archspec.analyze(net).layers
        except ArchspecError as exc:
            assert "states no receptive-field rule" in str(exc), exc
        else:
            raise AssertionError("an upsampling op without a field rule was analysed")
print("walkthrough ok")
"""


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_the_adding_an_op_walkthrough_is_true() -> None:
    """docs/architecture.md's "Adding an op" files, as written there, make a working `pad` op and
    an upsampling op whose receptive field is autograd's (in a fresh interpreter: registering an
    op is for good)."""
    import subprocess
    import sys
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
    run = subprocess.run([sys.executable, "-c", WALKTHROUGH, str(doc), str(doc.parent.parent)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "walkthrough ok" in run.stdout, run.stderr


def _shares_memory(out: object, ins: list[torch.Tensor]) -> bool:
    outs = [out] if isinstance(out, torch.Tensor) else list(out)  # type: ignore[call-overload]
    mine = {t.untyped_storage().data_ptr() for t in ins}
    return any(o.untyped_storage().data_ptr() in mine for o in outs)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_an_op_whose_output_is_fresh_returns_new_memory(kind: str) -> None:
    """`fresh_output` lets an activation after the op run in place: the module, run in eval mode,
    shares no memory with its inputs (a view or the input itself would be overwritten too)."""
    op, module = _module(kind)
    if module is None or not op.output_is_fresh():
        return
    fields, ins = SAMPLES[kind]
    xs = [torch.randn(2, *shape) for shape in ins]
    with torch.no_grad():
        assert not _shares_memory(module.eval()(*xs), xs), kind


@pytest.mark.parametrize("name", typing.get_args(ActKind))
def test_an_activation_says_whether_its_output_is_new_memory(name: str) -> None:
    op = op_class("act")(type=name)
    module = instantiate(op.torch([(4, 6, 6)]))
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert _shares_memory(module(x), [x]) != op.output_is_fresh(), name
