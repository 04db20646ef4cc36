"""Python export of random YAML blocks: the exported class must register the compiled module's
state_dict keys in the same order and compute the same function, in eval mode and, under
the same seed, in training mode (dropout draws in the same order).

The blocks mix what makes merging a family's blocks into one class hard: steps present
in some blocks only (`if` on the block index), nested residuals, named and unnamed
add / concat / mul branches, identity branches and dropout. A fixed seed keeps the run
reproducible; the compiled module (checked against torchvision elsewhere) is the reference.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import yaml

import archspec
from archspec.backends.python_source import python_source
from tests.generated import assert_ruff_clean, exported_model

BASE = """
name: random_blocks
input: {channels: 3, size: [16, 16]}
defaults: {norm: batch, activation: relu}
stem:
  - conv: {out: 8, kernel: 3, padding: 1, name: conv1}
  - norm: {name: bn1}
  - act: {name: relu}
%s
head:
  - global_pool: {type: avg, name: avgpool}
  - flatten
  - linear: {out: 10, name: fc}
"""
CONDITIONS = ["index == 0", "index != 0", "index == 1", "index <= 1", "index % 2 == 0", "index >= 2", "index in [1, 3]"]


class RandomBlock:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def layer(self, depth: int) -> object:
        r = self.rng.random()
        if depth < 2 and r < 0.15:
            return {"residual": self.body(depth + 1)}
        if depth < 2 and r < 0.25:
            kind = self.rng.choice(["add", "concat", "mul", "add"])
            branches: list = [self.body(depth + 1) for _ in range(self.rng.randint(2, 3))]
            if self.rng.random() < 0.3:
                branches[self.rng.randrange(len(branches))] = "identity"
            if self.rng.random() < 0.5:
                return {kind: {self.name("branch"): b for b in branches}}
            return {kind: branches}
        if depth < 3 and r < 0.45:
            step: dict = {"if": "${" + self.rng.choice(CONDITIONS) + "}", "then": self.body(depth + 1, 2)}
            if self.rng.random() < 0.3:
                step["else"] = self.body(depth + 1, 2)
            return step
        kind = self.rng.choice(["conv", "norm", "act", "conv3", "dropout"])
        layer = {
            "conv": {"conv": {"out": "${out}"}},
            "conv3": {"conv": {"out": "${out}", "kernel": 3, "padding": 1}},
            "norm": {"norm": {}},
            "act": {"act": {"type": self.rng.choice(["relu", "gelu", "relu6"])}},
            "dropout": {"dropout": {"p": 0.3}},
        }[kind]
        if self.rng.random() < 0.8:
            next(iter(layer.values()))["name"] = self.name(kind)
        return layer

    def body(self, depth: int, longest: int = 4) -> list:
        return [self.layer(depth) for _ in range(self.rng.randint(1, longest))]

    def spec(self) -> str:
        first = {"conv": {"out": "${out}", "kernel": 3, "padding": 1, "stride": "${stride}", "name": "entry"}}
        blocks = {"blocks": {"unit": {"params": {"out": {"type": "int", "channels": True}},
                                      "layers": [first, *self.body(0, 5)]}},
                  "stages": [{"block": "unit", "out": 8, "repeat": 5}, {"block": "unit", "out": 8, "repeat": 3, "stride": 2}]}
        return BASE % yaml.safe_dump(blocks, sort_keys=False)


def _specs(count: int) -> list[tuple[int, str]]:
    """The first `count` seeds whose random block is a valid spec (some are not: a mul of
    differently sized branches, say)."""
    out, seed = [], 0
    while len(out) < count:
        text = RandomBlock(seed).spec()
        try:
            archspec.load_spec(text).network()
        except archspec.ArchspecError:
            pass
        else:
            out.append((seed, text))
        seed += 1
    return out


# Blocks that merge badly unless the class keeps each block's own order (found in review).
REGRESSIONS = {
    # Block 0 has `a`, block 1 has `c`, block 2 both: a merged order [c, a] would put block 2's
    # keys (and its dropout draws) out of order.
    "order": """
blocks:
  unit:
    params: {out: {type: int, channels: true}}
    layers:
      - add:
          - if: "${index != 1}"
            then: [conv: {out: "${out}", name: a}, act: {name: ar}, dropout: {p: 0.5, name: ad}]
          - if: "${index != 0}"
            then: [conv: {out: "${out}", kernel: 3, padding: 1, name: c}, act: {name: cr}, dropout: {p: 0.5, name: cd}]
stages:
  - {block: unit, out: 8, repeat: 3}
""",
    # Container `b` holds a step of block 0 only and one of every block: block 1 registers `c`
    # before `b`, which a class creating `b` at its first step would not.
    "container": """
blocks:
  unit:
    params: {out: {type: int, channels: true}}
    layers:
      - add:
          b:
            - if: "${index == 0}"
              then: [conv: {out: "${out}", name: p}, act: {name: pr}]
          c: [conv: {out: "${out}", name: q}]
      - add:
          b: [conv: {out: "${out}", name: s}]
          d: identity
stages:
  - {block: unit, out: 8, repeat: 2}
""",
}


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-5, rtol=1e-5, equal_nan=True)


CASES = [(str(seed), text) for seed, text in _specs(30)] + [(k, BASE % v) for k, v in REGRESSIONS.items()]


@pytest.mark.parametrize("seed,text", CASES, ids=[c[0] for c in CASES])
def test_random_blocks_export_to_the_same_module(seed: str, text: str, tmp_path: Path) -> None:
    exported = exported_model(text, f"random_{seed}", tmp_path)

    torch.manual_seed(0)
    compiled = archspec.build(text)
    ours = [(k, tuple(v.shape)) for k, v in compiled.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in exported.state_dict().items()]
    assert theirs == ours, "state_dict keys differ"
    exported.load_state_dict(compiled.state_dict())

    x = torch.randn(2, 3, 16, 16)
    compiled.eval(), exported.eval()
    with torch.no_grad():
        assert _same(exported(x), compiled(x)), "eval outputs differ"
    compiled.train(), exported.train()
    torch.manual_seed(1)
    a = compiled(x)
    torch.manual_seed(1)
    b = exported(x)
    assert _same(b, a), "training outputs differ under the same seed"


def test_random_blocks_export_formatted_and_lint_clean(tmp_path: Path) -> None:
    for key, text in CASES:
        (tmp_path / f"random_{key}.py").write_text(python_source(archspec.load_spec(text).network()))
    assert_ruff_clean(tmp_path)
