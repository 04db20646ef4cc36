"""Benchmark archspec against torchvision, side by side in one run, and write docs/benchmarks.md.

    python tools/bench.py              # measure, print the table, write docs/benchmarks.md
    python tools/bench.py --no-write   # measure and print only
    python tools/bench.py --json       # the rows as JSON (nothing written)

Each row times both sides in this process on this machine, alternating them so that a
change of machine load hits both, and reports medians:

* build: `archspec.build("specs/resnet50.yaml")` (spec file -> module with initialised
  weights; the parsed file is cached after the untimed first call) against
  `torchvision.models.resnet50()`.
  Target: ratio (ours / torchvision) <= 1.10.
* forward: eval-mode resnet50, batch 8, 3x224x224, no_grad, same weights on both sides
  (loaded with `load_torchvision`). Target: ratio <= 1.03, i.e. no interpretation overhead.
* build and forward of deeplabv3_resnet50 (with its auxiliary head) against torchvision's
  segmentation model: a network of parts (a dilated backbone, two heads reading two stages,
  an ordered dict out). Same targets; forward at batch 2, 224x224.
* analysis: from tools/bench_analysis.py, resnet152's `archspec.analyze` against
  `torchinfo.summary` (a speed-up: reference / ours). Target: >= 50x.
* sweeps: from tools/bench_sweep.py, RegNet-Y design spaces in samples per second, each sample
  resolved, validated, lowered and analysed. Target: >= 1,000 samples/s.

Timings use one torch thread by default (`--threads`): on a 2-core machine a second
thread mostly measures the neighbour's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "benchmarks.md"


def alternate(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median seconds of each, measured in alternation after one untimed call of each."""
    ours(), theirs()
    a, b = [], []
    for _ in range(repeat):
        for fn, out in ((ours, a), (theirs, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def bench_build(repeat: int) -> dict[str, Any]:
    import torchvision

    import archspec

    spec = str(ROOT / "specs" / "resnet50.yaml")
    ours, theirs = alternate(lambda: archspec.build(spec), lambda: torchvision.models.resnet50(), repeat)
    return {"name": "build resnet50", "ours_s": ours, "torchvision_s": theirs, "ratio": ours / theirs,
            "target": "<= 1.10", "met": ours / theirs <= 1.10, "detail": f"median of {repeat}, initialised weights"}


def bench_forward(repeat: int, batch: int = 8) -> dict[str, Any]:
    import torch
    import torchvision

    import archspec
    from archspec.interop import load_torchvision

    reference = torchvision.models.resnet50().eval()
    model = load_torchvision(archspec.build("resnet50"), reference).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-4), "the two models disagree"
        ours, theirs = alternate(lambda: model(x), lambda: reference(x), repeat)
    return {"name": f"forward resnet50, batch {batch}, 224x224", "ours_s": ours, "torchvision_s": theirs,
            "ratio": ours / theirs, "target": "<= 1.03", "met": ours / theirs <= 1.03,
            "detail": f"eval, no_grad, median of {repeat}"}


def bench_dense_build(repeat: int) -> dict[str, Any]:
    """deeplabv3_resnet50 with its auxiliary head: a dilated backbone and two heads reading two stages."""
    import torchvision

    import archspec

    spec = str(ROOT / "specs" / "deeplabv3_resnet50.yaml")
    ours, theirs = alternate(
        lambda: archspec.build(spec),
        lambda: torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=True),
        repeat)
    return {"name": "build deeplabv3_resnet50", "ours_s": ours, "torchvision_s": theirs, "ratio": ours / theirs,
            "target": "<= 1.10", "met": ours / theirs <= 1.10, "detail": f"median of {repeat}, initialised weights"}


def bench_dense_forward(repeat: int, batch: int = 2, size: int = 224) -> dict[str, Any]:
    import torch
    import torchvision

    import archspec
    from archspec.interop import load_torchvision

    reference = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                                   aux_loss=True).eval()
    model = load_torchvision(archspec.build("deeplabv3_resnet50"), reference).eval()
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        ours_out, theirs_out = model(x), reference(x)
        assert all(torch.allclose(ours_out[k], theirs_out[k], atol=1e-4) for k in theirs_out), "the models disagree"
        ours, theirs = alternate(lambda: model(x), lambda: reference(x), repeat)
    return {"name": f"forward deeplabv3_resnet50 (out, aux), batch {batch}, {size}x{size}", "ours_s": ours,
            "torchvision_s": theirs, "ratio": ours / theirs, "target": "<= 1.03", "met": ours / theirs <= 1.03,
            "detail": f"eval, no_grad, median of {repeat}"}


def bench_analysis() -> dict[str, Any]:
    from tools.bench_analysis import bench_resnet152_vs_torchinfo

    row = bench_resnet152_vs_torchinfo()
    return {"name": "analysis resnet152 (vs torchinfo.summary)", "ours_s": row["ours_s"],
            "torchvision_s": row["reference_s"], "ratio": row["ratio"], "target": ">= 50x faster",
            "met": row["met"], "detail": row["detail"]}


def measure(repeat: int = 15, forward_repeat: int = 15) -> list[dict[str, Any]]:
    return [bench_build(repeat), bench_forward(forward_repeat), bench_dense_build(max(5, repeat // 3)),
            bench_dense_forward(max(7, forward_repeat // 2)), bench_analysis()]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| check | archspec | reference | ratio | target | met |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.1f}x faster" if "faster" in r["target"] else f"{r['ratio']:.2f}"
        lines.append(f"| {r['name']} | {_ms(r['ours_s'])} | {_ms(r['torchvision_s'])} | {ratio} | {r['target']} | "
                     f"{'yes' if r['met'] else 'NO'} |")
    return "\n".join(lines)


def machine(threads: int) -> str:
    import torch

    try:
        load = f"load average {os.getloadavg()[0]:.2f}"
    except OSError:
        load = "load unknown"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {load}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, {threads} torch thread(s)")


def sweep_table(rows: list[dict[str, Any]]) -> str:
    from tools.bench_sweep import table as sweeps

    return sweeps(rows)


def document(rows: list[dict[str, Any]], where: str, sweeps: list[dict[str, Any]]) -> str:
    return f"""# Benchmarks

Written by `python tools/bench.py`, which measures archspec and its reference side by side,
in one run on one machine, and reports medians. Ratios for build and forward are
archspec / torchvision (lower is better); analysis is a speed-up over torchinfo.

Measured on {where}, {time.strftime('%Y-%m-%d')}.

{table(rows)}

* **build**: spec file to a module with initialised weights, against torchvision's constructor.
  Most of either side is drawing random weights; archspec skips the constructor's own
  initialisation of each conv and linear layer that the spec's `init` section overwrites
  (`torch.nn.utils.skip_init`), so it draws once per weight where torchvision draws twice.
* **forward**: the compiled module is plain PyTorch (`nn.Sequential` and `torch.fx` generated
  code, `out += identity` as torchvision writes it), so nothing is interpreted per call.
* **deeplabv3_resnet50**: a network of parts (output stride 8, an ASPP head on the last stage and
  an FCN head on the third, both resized to the input) against torchvision's segmentation model,
  auxiliary head included on both sides; the compiled `Features` module runs the stages, keeps
  the two values the heads read and returns `{{out, aux}}`, as torchvision's does.
* **analysis**: shapes, parameters, MACs and receptive field from the IR, without building
  the model, against `torchinfo.summary` (which runs a forward pass); see docs/analysis.md.

Each row is a median; run the script again on a busy machine and the ratios move by a few
percent, which is why both sides are timed in alternation.

## Sweeps

`archspec sweep` over docs/examples/regnet_space.yaml (RegNet-Y networks of 12 to 28 blocks under
400M MACs; the zoo's `regnet` block) and over the same space with the block written in YAML
(docs/examples/regnet_yaml_space.yaml). A sample counts when it was resolved, validated, lowered
and analysed (params, MACs, memory, depth, receptive field); the sampler's own rejects (not four
stages) and repeats are drawn but not counted. pycls's `RegNet.complexity()` (its hand-written
flops/params/activations, no validation, no receptive field; its sampler is not in its PyPI
package) is timed on the same samples' parameters.

{sweep_table(sweeps)}

The machine is shared (see the load average above): a sweep's rate moves with what else runs.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON and write nothing")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(ROOT)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per side (default: 15)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = measure(args.repeat, args.repeat)
    from tools.bench_sweep import measure as measure_sweeps

    sweeps = measure_sweeps()
    if args.json:
        json.dump(rows + sweeps, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    where = machine(args.threads)
    print(where)
    print(table(rows))
    print(sweep_table(sweeps))
    if not args.no_write:
        from archspec.core.atomic import write_atomic

        write_atomic(DOC, document(rows, where, sweeps))
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0 if all(r["met"] for r in rows) and any(r["met"] for r in sweeps) else 1


if __name__ == "__main__":
    sys.exit(main())
