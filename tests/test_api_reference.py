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
    return names - {"node_op", "window", "whole", "union", "with_map"}  # internal: the IR op; the field arithmetic


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


def test_every_error_class_of_errors_md_is_where_it_says() -> None:
    """docs/errors.md's table: a class with no module beside it imports from `archspec`, the others
    from the module named; each is an ArchspecError, and of the built-in class it says it also is."""
    import builtins
    import importlib

    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text(encoding="utf-8")
    table = doc.split("## Errors in Python", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (`.*?) \| ", table, re.M)
    assert len(rows) >= 10, rows
    for row in rows:
        names = re.findall(r"^`(\w+)`(?:, `(\w+)`)?", row)[0]
        module = re.search(r"\(`(archspec[\w.]*)`\)", row)
        also = re.search(r"\(also an? `(\w+)`\)|\(an? `(\w+)`\)", row)
        for name in filter(None, names):
            owner = importlib.import_module(module[1]) if module else archspec
            cls = getattr(owner, name)
            assert issubclass(cls, archspec.ArchspecError), name
            if also:
                base = also[1] or also[2]
                assert issubclass(cls, getattr(builtins, base, None) or getattr(archspec, base)), (name, base)


def test_input_as_the_spec_writes_it_works_everywhere() -> None:
    """docs/api.md: `input={"size": [32, 32]}` is an override for load_spec and build, and analyze
    and diagram (whose own `input` is a size) take it too; each gives resnet18's 32x32 figures."""
    form = {"input": {"size": [32, 32]}}
    want = archspec.analyze("resnet18", input=(32, 32))
    assert want.output_shape == (1000,) and want.layer("stem.conv1").output_shape == (64, 16, 16)
    assert archspec.analyze(archspec.load_spec("resnet18", **form)).macs == want.macs
    assert archspec.analyze("resnet18", **form).macs == want.macs
    assert archspec.analyze("resnet18", input={"size": [32, 32], "channels": 3}).macs == want.macs
    source = archspec.diagram("resnet18", **form).source
    assert "32x32" in source and "224x224" not in source
