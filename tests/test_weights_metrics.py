"""Published metrics flow into list, compare and summary (no CSV, no torch needed); the expected
numbers are torchvision's enum metadata."""

from __future__ import annotations

import json

import pytest
import torchvision.models as tvm

from clirun import run_cli


def top1(name: str) -> float:
    return tvm.get_model_weights(name).DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"]


@pytest.mark.slow  # over ~5 s on the shared 2-core machine
def test_compare_plots_accuracy_against_macs_from_the_zoo_itself(tmp_path) -> None:
    plot = tmp_path / "acc.png"
    code, out, err = run_cli("compare", "resnet*", "efficientnet_b?", "--metric", "acc@1", "--plot", str(plot), "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert {"resnet18", "resnet152", "resnet50_fpn", "efficientnet_b0", "efficientnet_b7"} <= set(rows)
    for name in ("resnet18", "resnet50", "efficientnet_b0", "efficientnet_b7"):
        assert rows[name]["acc@1"] == top1(name)
    assert "acc@1" not in rows["resnet50_fpn"]  # a backbone: no published classifier metric of its own
    assert plot.stat().st_size > 10_000 and "lacks some numbers for resnet50_fpn" in err


def test_an_unknown_metric_name_is_an_error_with_a_suggestion() -> None:
    code, out, err = run_cli("compare", "resnet18", "--metric", "acc1")
    assert code == 2 and "unknown published metric (or a CSV file) 'acc1' (did you mean 'acc@1'?)" in err
    code, out, err = run_cli("compare", "nosuch*")
    assert code == 2 and "no zoo network matches 'nosuch*'" in err


def test_list_and_summary_show_the_published_metrics() -> None:
    code, out, err = run_cli("list", "mobilenet_v3*", "--metric", "acc@1,acc@5", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["mobilenet_v3_large"]["metrics"]["acc@1"] == top1("mobilenet_v3_large")
    assert rows["mobilenet_v3_large"]["weights"] == "IMAGENET1K_V2"
    code, out, err = run_cli("list", "mobilenet_v3_small", "--metric", "acc@1")
    assert code == 0 and f"{top1('mobilenet_v3_small'):g}" in out.splitlines()[2]
    code, out, err = run_cli("summary", "resnet50", "--weights", "IMAGENET1K_V1")
    assert code == 0, err
    assert ("weights      IMAGENET1K_V1: acc@1 76.13, acc@5 92.862 (ImageNet-1K); input: resize 256, crop 224; "
            "https://download.pytorch.org/models/resnet50-0676ba61.pth") in out
    code, out, err = run_cli("summary", "fcn_resnet50", "--weights", "DEFAULT", "--json")
    assert json.loads(out)["weights"]["metrics"] == {"miou": 60.5, "pixel_acc": 91.4}
