"""Instructions a sweep sample costs, counted by valgrind's callgrind: a measure that does not move
with the machine's load, where time on a shared 2-core machine moves by 25% from minute to minute
(docs/benchmarks.md). For judging a change to lowering or analysis, not for reporting speed.

    python tools/count_instructions.py                       # both example spaces, this checkout
    python tools/count_instructions.py --tree /tmp/base      # another checkout (a git worktree)
    python tools/count_instructions.py --again               # samples whose graphs were all met before

Each count runs one process under callgrind with instrumentation off until the measured part: the
space's first N samples to analyse (200 of the compound-scaling space, 300 of RegNet's), evaluated
in one process after a warm-up sweep (100 samples of seed 99, as tools/bench_sweep.py does), with
the cycle collector off as in a sweep. `--again` evaluates the same samples a second time and counts
that: the floor of a sample, every graph met before. PYTHONHASHSEED is fixed, so two runs of the
same code count within a few hundred instructions a sample.

Needs valgrind, its headers (valgrind/callgrind.h, Debian's `valgrind` package) and a C compiler,
which build the two functions that switch callgrind's counting on and off around the measured part.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPACES = {"efficientnet_b0 compound scaling": ("docs/examples/efficientnet_space.yaml", 200),
          "RegNet-Y (zoo block)": ("docs/examples/regnet_space.yaml", 300)}

_SWITCH = """#include <valgrind/callgrind.h>
void count_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_off(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS; }
"""

# Run under callgrind: argv = tree, space file, samples, "first" or "again", the switch library.
_MEASURED = """
import ctypes, gc, itertools, sys
tree, space_file, count, mode, switch = sys.argv[1:6]
sys.path.insert(0, tree)
from archspec.core import memo
from archspec.sweeps import engine, load_space, run_sweep
space = load_space(space_file, samples=600, seed=11)
items = list(itertools.islice((d for d in engine.draws(space) if d[2] is None), int(count)))
memo.clear()
run_sweep(space_file, samples=100, seed=99, jobs=1)
evaluate = engine.Evaluator(space)
if mode == "again":
    for item in items:
        evaluate(*item)
    evaluate.seen.clear()
gc.collect()
gc.disable()
lib = ctypes.CDLL(switch)
lib.count_on()
for item in items:
    evaluate(*item)
lib.count_off()
"""


def _switch_library(folder: Path) -> Path:
    source, library = folder / "switch.c", folder / "libswitch.so"
    source.write_text(_SWITCH, encoding="utf-8")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
                   check=True)
    return library


def count(tree: Path, space: str, samples: int, again: bool, folder: Path, switch: Path) -> float:
    """Instructions a sample (the measured part's total over `samples`)."""
    script = folder / "measured.py"
    script.write_text(_MEASURED, encoding="utf-8")
    out = folder / "callgrind.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
         str(script), str(tree), str(ROOT / space), str(samples), "again" if again else "first", str(switch)],
        cwd=tree, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
    collected = re.findall(r"Collected : (\d+)", done.stderr)
    if not collected:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(collected[-1]) / samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose archspec is measured "
                                                                "(default: this one)")
    parser.add_argument("--again", action="store_true", help="count samples whose graphs were all met before")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        switch = _switch_library(folder)
        for label, (space, samples) in SPACES.items():
            per_sample = count(args.tree.resolve(), space, samples, args.again, folder, switch)
            print(f"{label}: {per_sample / 1e6:.3f}M instructions a sample "
                  f"({'again' if args.again else 'first'} {samples} samples, {args.tree})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
