"""Benchmark: design-space sweeps in samples per second (tools/bench.py adds the rows to docs/benchmarks.md).

    python tools/bench_sweep.py          # a table
    python tools/bench_sweep.py --json   # the rows as JSON

The spaces: docs/examples/regnet_space.yaml, RegNet-Y networks of 12 to 28 blocks under 400M
MACs, regnet_y_400mf's size, over the zoo's regnet_y_400mf (the built-in `regnet` block); the
same space over docs/examples/regnet_y_like.yaml, whose block is written in YAML; and
docs/examples/efficientnet_space.yaml, efficientnet_b0's compound scaling (width 0.5-2, depth
0.5-3, input 128-384), where every sample has new widths and nothing is reused.

A sample counts when it was judged: resolved against the base spec, validated, lowered and
analysed (params, MACs, activation memory, depth, receptive field) as far as its verdict needs (a
RegNet over the space's 400M MACs is rejected once the blocks lowered so far are over; the
compound-scaling space has no bound, so every sample is lowered and analysed whole). Draws the
RegNet sampler rejects before that (not 4 stages) and repeats of an earlier spec are not counted;
each row's detail also gives the networks kept a second. Each row, with 1 and 2 worker
processes, is the median of `RUNS` (3) sweeps; each of them starts from emptied memo tables
(`archspec.core.memo.clear()`), runs an untimed warm-up sweep of 100 samples of seed 99 (imports,
file caches, the base spec), then the timed sweep: 600 samples of a seed of its own, or, in the
third row of each space, the space file as written (its `samples`, 2,000 in each, and its seed),
which is what `archspec sweep FILE -j 2` runs: a longer sweep reuses more of what its own earlier
samples built, so it runs faster than its first 600 samples (shown, not judged: the target is the
600-sample row's). No row inherits what an earlier row
(another space, or the same space at `-j 1`) left in the caches: the workers of a `-j 2` row are
forked from a process that has seen the warm-up alone, as a command-line sweep's are forked from
one that has seen the base spec. Targets (wall, -j 2): RegNet >= 2,000 samples/s, EfficientNet >=
1,000. Each row also gives the samples per CPU second of all its processes: what the code gets from
a core that is not shared (on a machine others use, wall time also counts the waits for a core).

What `-j 2` could reach on this machine is measured in the same run: two `-j 1` sweeps of 300
samples at once, each in a fresh process of its own (`pair_rate`, the sum of their rates, median
of 3), beside each `-j 2` 600-sample row. The two `-j 2` workers do that work, plus their start
(forked from this process: every page of it they write to is copied first), what each reuses of
its half of the samples alone, and the exchange with the sweeping process, which draws the samples
on one of the same two CPUs. The gap between the two figures is that cost; the gap between the
pair and the target is the cost of a sample itself.

pycls's own sampler (`pycls.sweep`) is not in its PyPI package; when `pycls` imports, its
hand-written `RegNet.complexity()` (flops, params, activations; no validation, no receptive
field) is timed on the six parameters of each sample analysed, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# label -> (space file, target in samples/s with -j 2; issue 24)
SPACES = {"RegNet-Y space (zoo block)": (ROOT / "docs" / "examples" / "regnet_space.yaml", 2000.0),
          "RegNet-Y space (YAML block)": (ROOT / "docs" / "examples" / "regnet_yaml_space.yaml", 2000.0),
          "efficientnet_b0 compound-scaling space": (ROOT / "docs" / "examples" / "efficientnet_space.yaml", 1000.0)}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers, once a sweep ends)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def sweep_rate(space: Path, jobs: int, samples: int | None = 600, seed: int | None = 1) -> tuple[float, float, Any]:
    """(analysed samples per wall second, per CPU second (all processes), the result) of one sweep
    from emptied memo tables and the warm-up; `samples` and `seed` None: the space file's own."""
    from archspec.core import memo
    from archspec.sweeps import run_sweep

    memo.clear()
    run_sweep(space, samples=100, seed=99, jobs=1)
    cpu = _cpu()
    result = run_sweep(space, samples=samples, seed=seed, jobs=jobs)
    cpu = _cpu() - cpu
    return result.evaluated / result.seconds, result.evaluated / cpu, result


RUNS = 3  # sweeps per row, the median reported


def median_sweep(space: Path, jobs: int, runs: int = RUNS, as_written: bool = False) -> tuple[float, float, Any]:
    """The run of median wall rate among `runs` sweeps: of 600 samples (seeds jobs, jobs + 10, ...),
    or `as_written`, of the space file's own samples and seed (the same sweep each time)."""
    measured = sorted((sweep_rate(space, jobs, None, None) if as_written else sweep_rate(space, jobs, seed=jobs + 10 * k)
                       for k in range(runs)), key=lambda m: m[0])
    return measured[len(measured) // 2]


def _alone(space: str, seed: int, samples: int) -> float:
    """The wall rate of one `-j 1` sweep of `space` (`samples` of `seed`), in a process of `pair_rate`."""
    return sweep_rate(Path(space), 1, samples, seed)[0]


def pair_rate(space: Path, runs: int = RUNS, samples: int = 300) -> float:
    """Two `-j 1` sweeps of `space` at once, each keeping `samples` (half of a row's 600, as each
    worker of `-j 2` does) in a fresh process (spawned: it shares no memory with this one) from its
    own emptied memo tables and warm-up: the sum of their rates, the median of `runs`. What two
    workers would reach on this machine if they paid nothing for starting, for sharing the work
    and for talking to the sweeping process."""
    import multiprocessing

    rates = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for k in range(runs):
            seeds = (1 + 10 * k, 2 + 10 * k)
            rates.append(sum(pool.starmap(_alone, [(str(space), seed, samples) for seed in seeds], chunksize=1)))
    return sorted(rates)[len(rates) // 2]


def pycls_rate(result: Any) -> float | None:
    """pycls's RegNet.complexity() per second over the same RegNet parameters, or None without pycls."""
    try:
        from pycls.core import net
        from pycls.core.config import cfg
        from pycls.models.regnet import RegNet
    except Exception:  # not installed, or an import that fails on this Python
        return None
    params = [{k.removeprefix("vars."): v for k, v in row.items() if k.startswith("vars.")} for row in result.rows]
    cfg.TRAIN.IM_SIZE = 224
    start = time.perf_counter()
    for p in params:
        cfg.REGNET.DEPTH, cfg.REGNET.W0, cfg.REGNET.WA, cfg.REGNET.WM = p["depth"], p["w_0"], p["w_a"], p["w_m"]
        cfg.REGNET.GROUP_W, cfg.REGNET.BOT_MUL = p["group_width"], p["bottleneck"]
        cfg.REGNET.SE_ON, cfg.REGNET.SE_R = p["se"] > 0, p["se"] or 0.25
        net.complexity(RegNet)
    return len(params) / (time.perf_counter() - start)


def measure() -> list[dict[str, Any]]:
    rows = []
    for label, (space, target) in SPACES.items():
        for jobs, as_written in ((1, False), (2, False), (2, True)):
            rate, per_cpu, result = median_sweep(space, jobs, as_written=as_written)
            what = f"the file as written ({space.name}: {result.space.model.samples:,} samples, seed " \
                   f"{result.space.model.seed})" if as_written else "600 samples"
            row = {"name": f"sweep, {label}, -j {jobs}, {what}", "samples_per_s": rate,
                   "samples_per_cpu_s": per_cpu, "target": f">= {target:,.0f} samples/s with -j 2",
                   "met": rate >= target if jobs == 2 and not as_written else None,  # the 600-sample row decides
                   "detail": f"median of {RUNS}; {result.evaluated:,} judged of {result.draws:,} drawn, "
                             f"{len(result.rows):,} kept ({len(result.rows) / result.seconds:,.0f} kept/s), "
                             f"{result.seconds:.2f} s", "pycls_per_s": None,
                   "pair_per_s": pair_rate(space) if jobs == 2 and not as_written else None}
            if jobs == 1 and label == "RegNet-Y space (zoo block)":
                row["pycls_per_s"] = pycls_rate(result)
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| check | archspec (wall) | per CPU second | two `-j 1` sweeps at once | pycls `complexity()` | target | met "
             "| detail |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        ref, pair = r.get("pycls_per_s"), r.get("pair_per_s")
        met = "-" if r["met"] is None else "yes" if r["met"] else "NO"
        lines.append(f"| {r['name']} | {r['samples_per_s']:,.0f} samples/s | {r['samples_per_cpu_s']:,.0f} | "
                     f"{f'{pair:,.0f} samples/s' if pair else '-'} | {f'{ref:,.0f} /s' if ref else '-'} | "
                     f"{r['target']} | {met} | {r['detail']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)
    rows = measure()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        print(table(rows))
    return 0 if all(r["met"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
