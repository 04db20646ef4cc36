"""docs/api.md names every public attribute of the objects the API hands out, and the examples hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import archspec
from archspec.analysis.report import LayerInfo, Report
from archspec.ir.op import RF

DOC = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")


def _public(cls: type) -> set[str]:
    names = {n for n in vars(cls) if not n.startswith("_")}
    names |= {n for n in getattr(cls, "__dataclass_fields__", {}) if not n.startswith("_")}
    return names - {"node_op", "window", "whole", "union"}  # internal: the IR op; the field arithmetic


@pytest.mark.parametrize("cls", [archspec.Spec, Report, LayerInfo, RF], ids=lambda c: c.__name__)
def test_every_public_attribute_is_documented(cls: type) -> None:
    section = DOC.split(f"## `{cls.__name__}`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(\w+)", section))
    assert _public(cls) - documented == set()


def test_the_documented_attributes_exist() -> None:
    spec = archspec.load_spec("resnet50", num_classes=10)
    assert (spec.input.channels, spec.input.size, spec.input.shape, spec.num_classes) == (3, (224, 224), (3, 224, 224), 10)
    report = archspec.analyze(spec)
    layer = report.layer("stages.2.blocks.0.conv2")
    assert (layer.stride, layer.rf.stride) == ((2, 2), (16, 16))
    assert report.receptive_field.stride == (32, 32)
    row = next(r for r in report.to_dict()["layers"] if r["name"] == "stages.2.blocks.0.conv2")
    assert (row["stride"], row["rf_stride"]) == ([2, 2], [16, 16])
