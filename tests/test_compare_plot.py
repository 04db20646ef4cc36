"""compare: families, metrics of one's own, the Pareto front, and a plot whose labels never overlap."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import pytest

from archspec import zoo
from archspec.cli.main import main
from archspec.comparison import compare, family, pareto, read_metrics
from archspec.spec.load import load_spec

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def zoo_rows() -> list[dict]:
    return compare(zoo.names())


def test_family_is_the_root_of_the_extends_chain() -> None:
    assert family(load_spec("resnext50_32x4d")) == "resnet"  # extends resnet50.yaml
    assert family(load_spec("resnet34")) == "resnet"  # extends resnet18, which extends resnet50
    assert family(load_spec("vgg16_bn")) == "vgg"
    assert family(load_spec("mobilenet_v3_large")) == "mobilenet"  # extends nothing: its own name
    assert family(load_spec("name: my_net7\ninput: {channels: 1, size: [8, 8]}\nnum_classes: 2\n"
                            "stem: [{conv: {out: 4, kernel: 3}}]\nhead: [{global_pool: {}}, {flatten: {}}, "
                            "{linear: {out: 2}}]\n")) == "my"


def test_pareto_front_by_hand() -> None:
    rows = [{"name": n, "macs": m, "top1": a} for n, m, a in
            [("a", 1, 70), ("b", 2, 75), ("c", 3, 74), ("d", 3, 75), ("e", 4, 80), ("f", 4, 80)]]
    # c is beaten by b (fewer MACs, more top-1), d by b (same top-1, fewer MACs); e and f tie and both stay
    assert [r["name"] for r in pareto(rows, "macs", "top1")] == ["a", "b", "e", "f"]
    # with top-1 taken as a cost (lower better), only a is on the front
    assert [r["name"] for r in pareto(rows, "macs", "top1", lower=["top1"])] == ["a"]


def test_metric_file_errors_are_located(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("name,top1\nresnet50,76.1\nresnet18,high\n")
    with pytest.raises(Exception, match=r"m.csv:3: top1 of resnet18 is 'high', not a number"):
        read_metrics(bad)
    bad.write_text("net,top1\nresnet50,76.1\n")
    with pytest.raises(Exception, match=r"m.csv:1: .*`name`"):
        read_metrics(bad)


@pytest.mark.parametrize("text, message", [
    # a column named like one of compare's own would replace the analysed number (params 1.0)
    ("name,params\nresnet18,1\n", "m.csv:1: `params` is one of compare's own columns"),
    ("name,activations\nresnet18,1\n", "m.csv:1: `activations` is one of compare's own columns"),
    ("name,top1,top1\nresnet18,1,2\n", "m.csv:1: the column `top1` is named twice"),
    ("name,top1\nresnet18,69.8\nresnet34,73.3\nresnet18,70\n", "m.csv:4: resnet18 has a row already (line 2)"),
])
def test_metric_files_that_would_hide_a_number_are_refused(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text(text)
    with pytest.raises(Exception) as caught:
        read_metrics(bad)
    assert message in str(caught.value)


@pytest.mark.parametrize("lower, message", [
    ("latt", "--lower: unknown metric column 'latt' (did you mean 'lat'?); known: lat, top1"),
    ("rf", "--lower: unknown metric column 'rf'"),  # compare's own figures have a fixed direction
])
def test_lower_names_a_metric_column(capsys, tmp_path: Path, lower: str, message: str) -> None:
    """A misspelt --lower was ignored: the front then took latency as higher-better."""
    metrics = tmp_path / "m.csv"
    metrics.write_text("name,top1,lat\nlenet5,99,3\n")
    code, out, err = run_cli(capsys, "compare", "lenet5", "--metric", str(metrics), "--plot",
                             str(tmp_path / "p.png"), "--lower", lower)
    assert code == 2 and message in err and not (tmp_path / "p.png").exists(), err


def test_metric_joins_the_table_json_and_y_axis(capsys, tmp_path: Path) -> None:
    csv = tmp_path / "top1.csv"
    csv.write_text("name,top1\nresnet18,69.758\nresnet50,76.13\n")  # torchvision's published IMAGENET1K_V1 top-1
    plot = tmp_path / "acc.svg"
    code, out, err = run_cli(capsys, "compare", "resnet18", "resnet50", "--metric", str(csv), "--plot", str(plot),
                             "--title", "Top-1 against MACs", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["top1"], r["family"]) for r in rows] == [("resnet18", 69.758, "resnet"),
                                                                   ("resnet50", 76.13, "resnet")]
    svg = plot.read_text()
    assert "Top-1 against MACs" in svg and "top1 (higher is better)" in svg and "Pareto front" in svg
    assert f"wrote {plot}" in err and "wrote" not in out  # "wrote" goes to stderr, as in every command


def test_missing_matplotlib_is_reported_before_any_analysis(capsys, monkeypatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed before checking for matplotlib")

    monkeypatch.setattr("archspec.comparison.compare", no_analysis)
    code, _, err = run_cli(capsys, "compare", "resnet18", "--plot", str(tmp_path / "p.png"))
    # A missing optional package is exit 3, as the README says, with the command that installs it.
    assert code == 3 and "compare --plot) needs matplotlib" in err and "pip install 'archspec[plot]'" in err


def test_labels_never_overlap_over_the_whole_zoo(zoo_rows: list[dict]) -> None:
    from matplotlib import pyplot as plt
    from matplotlib.text import Text

    from archspec.plotting import comparison_figure

    fig, labels, numbered = comparison_figure(zoo_rows, dpi=72)
    try:
        fig.canvas.draw()  # place everything as drawn
        renderer = fig.canvas.get_renderer()
        # the text's own box (an Annotation's extent would include its leader line)
        boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in labels]
        frame = fig.axes[0].get_window_extent(renderer)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"
        for text, box in boxes:  # nothing cut at an edge (efficientnet_b7 once was)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        # every network is named: beside its point, or by a number spelled out in the key
        shown = {t for t, _ in boxes}
        assert {r["name"] for r in zoo_rows} == (shown - {str(i) for i in range(1, len(numbered) + 1)}) | set(numbered)
        assert len(labels) == len(zoo_rows)
    finally:
        plt.close(fig)


def test_plot_options_without_plot_are_refused_before_any_work(capsys) -> None:
    code, _, err = run_cli(capsys, "compare", "resnet18", "--title", "t", "--y", "depth")
    assert code == 2 and "--y, --title shape the plot: add --plot" in err
    code, _, err = run_cli(capsys, "compare", "resnet18", "--plot", "p.png", "--y", "acc")
    assert code == 2 and "unknown axis 'acc'" in err
