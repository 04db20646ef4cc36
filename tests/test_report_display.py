"""The analysis report as one uses it in a notebook: a table, HTML, a DataFrame, per-layer geometry;
and the API taking the module `archspec.build` returned."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

import archspec
from archspec.cli.main import main


@pytest.fixture(scope="module")
def resnet50():
    return archspec.analyze("resnet50")


def test_repr_is_short_and_str_is_the_table(resnet50) -> None:
    assert len(repr(resnet50)) < 200 and "25,557,032 parameters" in repr(resnet50)
    text = str(resnet50)
    lines = text.splitlines()
    assert lines[0] == "resnet50: input 3x224x224 -> output 1000"
    names = [line.split()[0] for line in lines[3:9]]
    assert names == ["stem", "stages.0", "stages.1", "stages.2", "stages.3", "head"]
    assert "params       25,557,032" in text  # torchvision's resnet50 count
    assert resnet50.table("block").count("stages.2.blocks.") == 6  # ResNet-50 has 6 blocks in conv4_x


def test_html_table_for_jupyter(resnet50) -> None:
    html = resnet50._repr_html_()
    assert html.count("<tr>") == 1 + 6 and "<th" in html and "stages.3" in html
    from archspec.core.formatting import html_table

    assert "&lt;b&gt;" in html_table([["<b>"]], ["name"])  # every cell escaped


def test_dataframe_rows_carry_the_layer_geometry(resnet50) -> None:
    import pandas as pd  # optional for users; the dev extra installs it
    frame = resnet50.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(resnet50.layers)
    conv1 = frame.loc["stem.conv1"]
    assert conv1["label"] == "conv 7x7/2, 3->64"
    assert (list(conv1["kernel"]), list(conv1["stride"]), list(conv1["padding"]), conv1["groups"]) == \
        ([7, 7], [2, 2], [3, 3], 1)
    assert list(conv1["input_shape"]) == [3, 224, 224]
    assert frame.loc["stem.maxpool"]["kernel"] == [3, 3] and frame.loc["stem.maxpool"]["stride"] == [2, 2]
    assert frame.loc["head.fc"]["kernel"] is None
    stages = resnet50.to_dataframe("stage")
    assert int(stages["params"].sum()) == 25_557_032


def test_dataframe_without_pandas_says_what_to_install(resnet50, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        resnet50.to_dataframe()


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_conv_geometry_matches_torchvision(name: str) -> None:
    """Every conv's kernel, stride, dilation and groups, as torchvision's modules have them."""
    import torch
    import torchvision
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    theirs = Counter((m.in_channels, m.out_channels, m.kernel_size, m.stride, m.dilation, m.groups)
                     for m in reference.modules() if isinstance(m, torch.nn.Conv2d))
    report = archspec.analyze(name)
    ours = Counter((la.input_shape[0], la.output_shape[0], la.kernel, la.stride, la.dilation, la.groups)
                   for la in report.layers if la.op == "conv")
    assert ours == theirs


def test_summary_json_layers_have_label_and_geometry(capsys) -> None:
    assert main(["summary", "mobilenet_v2", "--json", "--level", "layer"]) == 0
    layers = {la["name"]: la for la in json.loads(capsys.readouterr().out)["layers"]}
    dw = layers["stages.1.blocks.0.depthwise.conv"]
    assert dw["groups"] == 96 and dw["kernel"] == [3, 3] and dw["stride"] == [2, 2]  # torchvision features[2]
    assert dw["label"].startswith("conv 3x3/2 dw") and dw["input_shape"] == [96, 112, 112]


def test_summary_depth_is_an_alias_of_level(capsys) -> None:
    assert main(["summary", "resnet18", "--level", "block"]) == 0
    by_level = capsys.readouterr().out
    assert main(["summary", "resnet18", "--depth", "block"]) == 0
    assert capsys.readouterr().out == by_level and "stages.3.blocks.1" in by_level


def test_the_api_takes_a_built_module(tmp_path: Path, monkeypatch) -> None:
    import torch  # noqa: F401  (a dev dependency: fails, never skips, when missing)
    model = archspec.build("lenet5")
    report = archspec.analyze(model)
    assert report.params == sum(p.numel() for p in model.parameters()) and report.name == "lenet5"
    assert "lenet5" in archspec.diagram(model).source
    assert archspec.export(model, tmp_path / "lenet5.py").read_text().startswith('"""')
    seen = {}
    from archspec.backends import exporters

    fmt = exporters.FORMATS["onnx"]
    monkeypatch.setitem(exporters.FORMATS, "onnx", exporters.ExportFormat(
        fmt.name, fmt.suffix, fmt.needs_weights, lambda net, m, *a, **kw: seen.setdefault("model", m), fmt.help))
    archspec.export(model, tmp_path / "lenet5.onnx")
    assert seen["model"] is model  # its own (trained) weights, not a fresh build
    with pytest.raises(archspec.ArchspecError, match="built module cannot be overridden"):
        archspec.export(model, tmp_path / "x.py", num_classes=3)


def test_jupyter_without_dot_shows_how_to_install(monkeypatch) -> None:
    import graphviz
    d = archspec.diagram("lenet5")

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    bundle = d._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "install Graphviz" in bundle["text/plain"]


def test_override_errors_name_the_override_as_python_or_the_cli_wrote_it(capsys) -> None:
    with pytest.raises(archspec.SpecError) as err:
        archspec.load_spec("resnet18", num_clases=10)
    assert str(err.value).startswith("override num_clases: ") and "--set" not in str(err.value)
    assert main(["validate", "resnet18", "--set", "num_clases=10"]) == 2
    assert capsys.readouterr().err.startswith("--set num_clases: ")
    with pytest.raises(archspec.SpecError, match=r"^override num_clases"):  # the CLI run left Python's name in place
        archspec.load_spec("resnet18", num_clases=10)
