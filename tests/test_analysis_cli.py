"""The analysis commands: documented JSON, tables, the RF locator, compare's plot, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = {"name", "input_shape", "output_shape", "params", "trainable_params", "macs", "flops",
              "activation_bytes", "receptive_field", "layers"}
DOCUMENTED_LAYER = {"name", "op", "output_shape", "params", "macs", "rf_size", "rf_stride", "rf_padding"}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_json_is_the_documented_document(capsys) -> None:
    code, out, _ = run_cli(capsys, "summary", "resnet50", "--json")
    assert code == 0
    doc = json.loads(out)
    assert DOCUMENTED <= set(doc)
    assert set(doc["receptive_field"]) >= {"size", "stride", "padding"}
    assert all(DOCUMENTED_LAYER <= set(layer) for layer in doc["layers"])
    # torchvision documents ResNet-50: 25,557,032 parameters, 4.089 GFLOPS (multiply-adds)
    assert doc["params"] == 25_557_032 and round(doc["macs"] / 1e9, 3) == 4.089
    assert doc["flops"] == 2 * doc["macs"]
    assert doc["input_shape"] == [3, 224, 224] and doc["output_shape"] == [1000]
    assert doc["layers"][0] == {**doc["layers"][0], "name": "stem.conv1", "op": "conv", "output_shape": [64, 112, 112],
                                "params": 64 * 3 * 7 * 7, "macs": 64 * 112 * 112 * 3 * 7 * 7,
                                "rf_size": [7, 7], "rf_stride": [2, 2], "rf_padding": [3, 3]}


def test_summary_input_and_depth(capsys) -> None:
    code, out, _ = run_cli(capsys, "summary", "resnet50", "--input", "3x160x160", "--json")
    assert json.loads(out)["layers"][0]["output_shape"] == [64, 80, 80]
    code, out, _ = run_cli(capsys, "summary", "resnet50")
    assert code == 0
    for part in ("stem", "stages.0", "stages.3", "head", "25,557,032", "conventions"):
        assert part in out
    code, out, _ = run_cli(capsys, "summary", "resnet50", "--depth", "layer")
    assert "stages.2.blocks.5.conv3" in out and "conv 1x1, 256->1024" in out
    code, out, _ = run_cli(capsys, "summary", "resnet50", "--depth", "block")
    assert "stages.2.blocks.5 " in out and "stages.2.blocks.5.conv3" not in out


def test_summary_batch_scales_memory(capsys) -> None:
    _, one, _ = run_cli(capsys, "summary", "resnet50", "--json")
    _, eight, _ = run_cli(capsys, "summary", "resnet50", "--json", "--batch", "8")
    one, eight = json.loads(one), json.loads(eight)
    assert eight["activation_bytes"] == 8 * one["activation_bytes"]
    assert eight["peak_activation_bytes"] == 8 * one["peak_activation_bytes"]


def test_summary_errors_are_located_not_tracebacks(capsys) -> None:
    code, _, err = run_cli(capsys, "summary", "vgg16", "--input", "3x16x16")
    assert code == 2 and "stages[4]: vgg (layer 'pool')" in err and "32x32" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "summary", "resnet50", "--input", "big")
    assert code == 2 and "--input" in err


def test_rf_table_and_one_unit(capsys) -> None:
    code, out, _ = run_cli(capsys, "rf", "vgg16")
    assert code == 0 and "212x212" in out and "stages.4.blocks.0.pool" in out
    # Araujo et al.: pool5 unit (3, 3) of VGG-16 starts at -90 + 3*32 = 6 and spans 212 pixels
    code, out, _ = run_cli(capsys, "rf", "vgg16", "--layer", "stages.4.blocks.0.pool", "--unit", "3,3", "--json")
    where = json.loads(out)
    assert where["rows"] == [6, 217] and where["columns"] == [6, 217] and where["centre"] == [111.5, 111.5]
    code, out, _ = run_cli(capsys, "rf", "resnet50", "--layer", "stem.conv1", "--unit", "0,0")
    assert "rows -3..3" in out and "rows 0..3" in out
    code, _, err = run_cli(capsys, "rf", "resnet50", "--layer", "stem.conv2")
    assert code == 2 and "did you mean 'stem.conv1'" in err


def test_compare_rows_and_plot(capsys, tmp_path: Path) -> None:
    out_png = tmp_path / "plot.png"
    code, out, _ = run_cli(capsys, "compare", "resnet18", "resnet50", "--plot", str(out_png), "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["resnet18", "resnet50"]
    assert [r["depth"] for r in rows] == [18, 50]
    assert rows[1]["params"] == 25_557_032 and rows[1]["receptive_field"] == [427, 427]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]  # written atomically, no leftovers
    code, out, _ = run_cli(capsys, "compare", "resnet18", "resnet50")
    assert "resnet18" in out and "427x427" in out


def test_compare_refuses_an_unknown_image_format(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "compare", "resnet18", "--plot", str(tmp_path / "plot.bmpx"))
    assert code == 2 and "format" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["summary", "rf", "compare"])
def test_help_has_an_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "example:" in capsys.readouterr().out.replace("examples:", "example:")


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_commands_without_weights_do_not_import_torch(tmp_path: Path) -> None:
    script = (
        "import sys, io, contextlib\n"
        "from archspec.cli.main import main\n"
        "runs = [['summary', 'specs/resnet50.yaml', '--json'], ['rf', 'resnet50', '--layer', 'stem.conv1'],\n"
        f"        ['compare', 'resnet50', 'resnet18', '--plot', {str(tmp_path / 'p.png')!r}],\n"
        "        ['validate', 'specs/resnet50.yaml'], ['list']]\n"
        "for argv in runs:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "    assert 'torch' not in sys.modules, argv\n"
        "import archspec\n"
        "archspec.analyze('resnet50')\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_report_to_dict_matches_the_cli(capsys) -> None:
    _, out, _ = run_cli(capsys, "summary", "resnet18", "--json")
    assert json.loads(out) == json.loads(json.dumps(archspec.analyze("resnet18").to_dict()))


def test_summary_escapes_the_weights_text_and_shows_it_with_features(tmp_path: Path, capsys) -> None:
    # the weights line printed an escape sequence from the spec as it is, and --features dropped it
    spec = tmp_path / "evil.yaml"
    spec.write_text('extends: resnet18\nweights:\n  - {name: W, url: "https://x/\\e[34mblue.pth", dataset: "DS\\e[36m",'
                    ' metrics: {"acc\\e[33m@1": 1.0}, layout: {format: archspec}}\n')
    for extra in ([], ["--features"]):
        assert main(["summary", str(spec), "--weights", "W", *extra]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "blue.pth" in out and "\\x1b[34m" in out, out


def test_summary_rows_of_aux_heads_are_marked_outside_the_totals(capsys) -> None:
    # inception_v3's auxiliary classifier runs in training only: its MACs are not in the total
    assert main(["summary", "inception_v3"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("aux_heads.0"))
    assert "(5.68M)" in row and "(131.4 KiB)" in row, row
    report = archspec.analyze("inception_v3")
    shown = sum(la.macs for la in report.layers if la.group != "aux")
    assert shown == report.macs  # the rows outside the parentheses add up to the total


def test_a_freeze_pattern_inside_a_layer_is_refused(capsys) -> None:
    # attention's out_proj is a module of one layer, whose parameters summary does not count apart:
    # frozen 0 was reported for 590,592 frozen parameters
    assert main(["summary", "vit_b_16", "--set", "freeze=[stages.0.blocks.0.self_attention.out_proj]"]) == 2
    err = capsys.readouterr().err
    assert "names a part inside the layer stages.0.blocks.0.self_attention" in err, err
    report = archspec.analyze("vit_b_16", freeze=["stages.0.blocks.0.self_attention"])
    import torchvision

    attention = torchvision.models.vit_b_16().encoder.layers[0].self_attention
    assert report.frozen_params == sum(p.numel() for p in attention.parameters())
