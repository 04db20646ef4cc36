"""Benchmark: resnet152 at block level, IR -> DOT source -> rendered file (target: under 2 s).

    python tools/bench_diagram.py [--repeat 5] [--format svg] [--level block]

Prints the median time of each step in one process, then the whole `archspec diagram`
command run as a fresh process (Python start-up and imports included). When the zoo has no
resnet152 yet, it is resnet50 with ResNet-152's depths [3, 8, 36, 3].
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archspec import zoo
from archspec.backends.diagram import diagram_network, render_bytes
from archspec.spec.load import load_spec
from archspec.core.atomic import write_atomic

RESNET152 = ("resnet152", {}) if "resnet152" in zoo.names() else (
    "resnet50", {"vars.depths": [3, 8, 36, 3], "name": "resnet152"})


def once(level: str, fmt: str, out: Path) -> dict[str, float]:
    times = {}
    t0 = time.perf_counter()
    net = load_spec(RESNET152[0], **RESNET152[1]).network()
    t1 = time.perf_counter()
    source = diagram_network(net, level=level).source
    t2 = time.perf_counter()
    data = render_bytes(source, fmt)
    if data is None:
        raise SystemExit("bench: Graphviz's dot is not installed")
    t3 = time.perf_counter()
    write_atomic(out, data)
    t4 = time.perf_counter()
    times["spec -> IR"] = t1 - t0
    times["IR -> DOT source"] = t2 - t1
    times[f"dot -> {fmt}"] = t3 - t2
    times["write"] = t4 - t3
    times["total"] = t4 - t0
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--format", default="svg", choices=("svg", "png", "pdf"))
    p.add_argument("--level", default="block", choices=("stage", "block", "layer"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"resnet152.{args.format}"
        runs = [once(args.level, args.format, out) for _ in range(args.repeat)]
        print(f"resnet152, {args.level} level, {args.format}: median of {args.repeat} runs in one process")
        for key in runs[0]:
            print(f"  {key:<18} {statistics.median(r[key] for r in runs):7.3f} s")
        print(f"  output size        {out.stat().st_size / 1024:7.1f} KiB")

        spec, overrides = RESNET152
        cmd = [sys.executable, "-m", "archspec.cli.main", "diagram", spec, "--level", args.level, "-o", str(out)]
        for key, value in overrides.items():
            cmd[5:5] = ["--set", f"{key}={value}"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        walls = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            walls.append(time.perf_counter() - t)
        print(f"  `archspec diagram` as a fresh process: median {statistics.median(walls):.3f} s "
              f"(min {min(walls):.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
