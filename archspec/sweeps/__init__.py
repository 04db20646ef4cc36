"""Design spaces: sample networks from one spec, keep those within bounds, study the population.

    result = run_sweep("docs/examples/regnet_space.yaml", jobs=2)   # a SweepResult
    result.table()        # pandas DataFrame (or a list of dicts without pandas)
    result.rejected       # Counter of the samples not kept, by reason

`archspec.sweep(...)` returns the table; `archspec sweep SPACE.yaml` is the command.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import ArchspecError, ArgumentError
from .engine import SweepResult, check_jobs, run, workers
from .space import Space, load_space


class SweepError(ArchspecError):
    """No sample of the space was kept (exit status 2); the message counts the reasons."""

    exit_code = 2

    def __init__(self, result: SweepResult):
        self.result = result
        reasons = "; ".join(f"{reason}: {n:,}" for reason, n in result.rejected.most_common()) or "none drawn"
        example = next(iter(result.examples.values()), "")
        super().__init__(f"no network of {result.space.source} was kept: {result.draws:,} drawn, rejected as "
                         f"{reasons}" + (f"\n  for example: {example}" if example else ""))


def run_sweep(space: str | Path | dict | Space, *, samples: int | None = None, seed: int | None = None,
              max_draws: int | None = None, jobs: int = 1, progress: bool = False) -> SweepResult:
    """Sample the space; raises SweepError when no sample is kept. `samples`, `seed` and
    `max_draws` replace the space file's; `jobs` worker processes evaluate the samples (the
    result is the same for any number); `progress` draws a bar on a terminal."""
    check_jobs(jobs)
    if not isinstance(space, Space):
        space = load_space(space, samples=samples, seed=seed, max_draws=max_draws)
    elif samples is not None or seed is not None or max_draws is not None:
        raise ArgumentError("samples, seed and max_draws apply to a space file, not to a loaded Space "
                            "(load_space(path, samples=...) takes them)")
    with workers(space, jobs) as pool, _progress(space, progress) as report:
        result = run(space, progress=report, pool=pool)
    if not result.rows:
        raise SweepError(result)
    return result


@contextmanager
def _progress(space: Space, show: bool) -> Iterator[Callable[[int, int, Counter], None] | None]:
    """A bar of kept samples, its text the rate and the rejections by reason (redrawn at most 5 times a second)."""
    from ..progress import bar, enabled

    if not show or not enabled():
        yield None
        return
    start = time.perf_counter()
    state = {"shown": 0, "at": 0.0}
    with bar(total=space.model.samples, description="sweep") as advance:

        def report(draws: int, kept: int, rejected: Counter) -> None:
            now = time.perf_counter()
            if now - state["at"] < 0.2 and kept < space.model.samples:
                return
            rate = draws / max(now - start, 1e-9)
            why = ", ".join(f"{reason} {n:,}" for reason, n in rejected.most_common(3))
            advance(kept - state["shown"], description=f"sweep: {rate:,.0f} drawn/s, kept {kept:,}, "
                                                        f"rejected {sum(rejected.values()):,}" + (f" ({why})" if why else ""))
            state["shown"], state["at"] = kept, now

        yield report


def sweep(space: Any, *, samples: int | None = None, seed: int | None = None, max_draws: int | None = None,
          jobs: int = 1, progress: bool = False):
    """Sample a design space (a space file, YAML text or a dict; see docs/sweeps.md) and return
    its table: one row per kept network, the sampled values and the analysed figures, as a
    pandas DataFrame when pandas is installed and a list of dicts otherwise.

    `samples`, `seed` and `max_draws` replace the space file's; `jobs` worker processes
    evaluate the samples (the same seed gives the same table for any number of them). Raises
    `archspec.sweeps.SweepError` (with the count of each reason) when no sample is kept;
    `archspec.sweeps.run_sweep` returns the counts with the table.
    """
    return run_sweep(space, samples=samples, seed=seed, max_draws=max_draws, jobs=jobs, progress=progress).table()


__all__ = ["Space", "SweepError", "SweepResult", "load_space", "run_sweep", "sweep"]
