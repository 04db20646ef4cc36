"""Benchmark: analysis from the spec against torchinfo, and the CLI's cold start.

    python tools/bench_analysis.py          # a table
    python tools/bench_analysis.py --json   # the rows as JSON

`measure()` returns one dict per check with `name`, `ours_s`, `reference_s`,
`ratio` (reference_s / ours_s: the speed-up, or the headroom under a time budget)
and `target` (text), plus `met` (bool), `ours_cpu_s` (CPU seconds, children included:
what a run costs on a shared machine, where wall time includes waiting for a core) and `detail`:

* resnet152, first analysis: `archspec.analyze` of resnet152 in a warm process (archspec imported
  and resnet50 analysed first, so imports and the op registry are loaded, but nothing of resnet152
  is cached), one timing per new process, median over several processes; against
  `torchinfo.summary` of torchvision's resnet152 (weights=None, built beforehand and not timed;
  its fastest run) on one 3x224x224 input, same machine, same run. Target: ratio >= 50. This is
  the headline: what a user who analyses a network once waits for.
* resnet152, repeated: the same spec analysed again in the same process (median of repeated
  calls: parsed-file, block-graph and analysis caches warm), against the same torchinfo figure.
* resnet50: a full `archspec.analyze("resnet50")`. Target: under 10 ms (reference_s is the budget).
* cold CLI: a new `python -m archspec.cli.main summary specs/resnet50.yaml --json`
  process, wall time, median of several after one untimed run that writes the
  bytecode cache (as an installed package has). Target: under 0.5 s.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _median_time(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of `fn` (CPU time says what a run costs
    when the machine is shared: wall time then includes waiting for a core)."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _row(name: str, ours: tuple[float, float], reference: float, target: str, threshold: float,
         detail: str) -> dict[str, Any]:
    ratio = reference / ours[0]
    return {"name": name, "ours_s": ours[0], "reference_s": reference, "ratio": ratio, "target": target,
            "met": ratio >= threshold, "ours_cpu_s": ours[1], "detail": detail}


def _fastest(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


FIRST = """
import sys, time
sys.path.insert(0, sys.argv[1])
import archspec
archspec.analyze("resnet50")  # a warm process: imports, registries, resnet50's own caches
start, cpu = time.perf_counter(), time.process_time()
archspec.analyze(sys.argv[2])
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def first_analysis_s(spec: str, processes: int = 7) -> tuple[float, float]:
    """Median wall and CPU seconds of the first `archspec.analyze(spec)` in a warm process, one new
    process each (on a loaded machine the wall time also counts the waits for a core)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    walls, cpus = [], []
    for _ in range(processes):
        out = subprocess.run([sys.executable, "-c", FIRST, str(ROOT), spec], env=env, check=True,
                             capture_output=True, text=True).stdout
        wall, cpu = out.strip().splitlines()[-1].split()
        walls.append(float(wall))
        cpus.append(float(cpu))
    return statistics.median(walls), statistics.median(cpus)


def bench_resnet152_vs_torchinfo(repeat: int = 10, reference_repeat: int = 5) -> list[dict[str, Any]]:
    """The first analysis (headline) and the repeated one, against torchinfo's fastest run
    (conservative: torch's threads suffer most from a busy machine); torchinfo on one thread is
    in `detail`, for a core-for-core view."""
    import torch
    import torchinfo
    import torchvision

    import archspec

    spec = str(ROOT / "specs" / "resnet152.yaml")
    first = first_analysis_s(spec)
    ours = _median_time(lambda: archspec.analyze(spec), repeat)
    model = torchvision.models.resnet152(weights=None).eval()
    threads = torch.get_num_threads()

    def summary() -> None:
        torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)

    with torch.no_grad():
        reference = _fastest(summary, reference_repeat)
        torch.set_num_threads(1)
        try:
            one_thread = _fastest(summary, max(2, reference_repeat // 2))
        finally:
            torch.set_num_threads(threads)
    detail = f"torchinfo fastest of {reference_repeat} on {threads} thread(s); on 1 thread {one_thread * 1000:.0f} ms"
    return [_row("resnet152: first archspec.analyze in a warm process vs torchinfo.summary", first,
                 reference, ">= 50x faster", 50.0,
                 f"median of 7 new processes, CPU {first[1] * 1000:.1f} ms ({reference / first[1]:.0f}x); {detail}"),
            _row("resnet152: archspec.analyze repeated vs torchinfo.summary", ours, reference, "-", 0.0,
                 f"median of {repeat} in one process; {detail}")]


def bench_resnet50_analysis(repeat: int = 50) -> dict[str, Any]:
    import archspec

    ours = _median_time(lambda: archspec.analyze("resnet50"), repeat)
    return _row("resnet50: full analysis", ours, 0.010, "< 10 ms", 1.0, "spec file -> report, median")


def cold_summary_command() -> list[str]:
    return [sys.executable, "-m", "archspec.cli.main", "summary", "specs/resnet50.yaml", "--json"]


def bench_cold_summary(repeat: int = 7) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the untimed first run write the bytecode cache

    def once() -> None:
        subprocess.run(cold_summary_command(), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    ours = _median_time(once, repeat)
    return _row("cold `archspec summary specs/resnet50.yaml --json`", ours, 0.5, "< 0.5 s wall", 1.0,
                f"new process each time, median of {repeat}")


def measure() -> list[dict[str, Any]]:
    """Run every check once, in this process and machine."""
    return [*bench_resnet152_vs_torchinfo(), bench_resnet50_analysis(), bench_cold_summary()]


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rows = measure()
    if "--json" in argv:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"machine: {_load()}")
    for r in rows:
        mark = "ok " if r["met"] else "MISS"
        print(f"[{mark}] {r['name']}: ours {r['ours_s'] * 1000:.2f} ms (CPU {r['ours_cpu_s'] * 1000:.2f} ms), "
              f"reference {r['reference_s'] * 1000:.2f} ms, ratio {r['ratio']:.1f}x (target {r['target']}; "
              f"{r['detail']})")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
