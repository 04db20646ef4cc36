"""Running a sweep: draw samples, resolve each against the base spec, validate, lower and
analyse it, keep those that meet the constraints.

Every number comes from the ordinary pipeline (`resolve_loaded` -> `from_document` ->
`Spec.network` -> `analyze_network`); what makes thousands of samples a second possible is
that the base document is loaded once and that lowering and analysis reuse what they
built for earlier samples (block graphs, parsed layers, expressions; see `spec.lower`
and docs/architecture.md, "Built once, read many times"), and that a network over a max bound
on a figure that only grows is rejected as soon as the graphs lowered so far are over it
(`Evaluator._watch`).

Samples are drawn in one sequence from `random.Random(seed)` in this process, evaluated
here or in worker processes, and taken in the order drawn, so the same seed gives the same
table whatever the number of workers. A sample whose resolved spec equals an earlier
one's is a duplicate: it is counted, not kept.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import marshal
import math
import os
import queue
import random
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..analysis.report import Totals, analyze_network
from ..spec.load import from_document
from ..core.errors import OVERRIDE_NAME, ArgumentError, LimitError, SpecError
from ..spec.resolve import resolve_loaded
from .figures import COUNTED, FIGURES, GROWING, figures_of
from ..ir.graph import Graph
from .space import Space

DUPLICATE = "duplicate"
INVALID = "invalid spec"
NO_BUILD = "does not build"
TOO_LARGE = "too large"
CHUNK = 32  # samples to evaluate per task sent to a worker
REJECTS_PER_CHUNK = 8  # at most CHUNK x this draws (mostly rejected by the sampler) wait for one task


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector off while samples are evaluated, as it was before after.

    A sample's objects are freed by reference counting: they make no cycles (a sweep of each
    example space leaves no unreachable object behind; tests/test_sweeps.py checks). What the
    collector did was scan, again and again, the new entries of the caches that let samples share
    work, which survive by design: a fifth of a sweep's time (measured: 1.2 s of 5.7 s over 400
    efficientnet_b0 samples, 0.65 of 3.9 s over RegNet's). Those entries are scanned once, later,
    by whatever full collection comes next (never, in a worker or a CLI run that ends with the sweep).

    Allocations keep counting while the collector is off, so the first one after it is back on would
    start a collection of everything the sweep made, a tenth of a sweep's time. So the young
    generations are collected first (what the caller left there, cycles included, is collected as
    it would have been then), and at the end everything is frozen while the collector is switched
    back on and unfrozen at once: the collection finds the young generations empty, and what the
    sweep made joins the oldest one. Where the caller has frozen objects of its own (a server that
    forks), the sweep leaves them frozen and the collection runs as it would."""
    collecting = gc.isenabled()
    if collecting:
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            if gc.get_freeze_count():  # the caller's own frozen objects: unfreeze() would thaw them too
                gc.enable()
            else:
                gc.freeze()
                gc.enable()
                gc.unfreeze()


@dataclass
class Outcome:
    """One evaluated sample. `reason` is None for a kept one."""

    sample: int
    values: dict[str, Any]  # as drawn ({key: value}); a kept row's columns are made from them (`columns`)
    reason: str | None = None
    message: str = ""
    key: str | None = None  # digest of the resolved spec, for deduplication
    figures: dict[str, int] | None = None
    data: dict | None = None  # the resolved spec of a kept sample
    written: bytes | None = None  # `data` as marshal wrote it for the digest (`_digest`), or None
    evaluated: bool = False  # validated (and lowered and analysed as far as its verdict needed, unless that failed)

    def columns(self) -> dict[str, Any]:
        """The table columns of the sampled values (`flat_values`)."""
        columns: dict[str, Any] = {}
        for key, value in self.values.items():
            columns.update(flat_values(key, value))
        return columns

    def spec(self) -> dict | None:
        """The resolved spec of a kept sample, or None."""
        return self.data if self.data is not None or self.written is None else marshal.loads(self.written)


@dataclass
class SweepResult:
    """The kept rows (sampled values and figures), in the order drawn, and the counts of
    everything else by reason."""

    space: Space
    rows: list[dict[str, Any]]
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # one message per reason
    draws: int = 0
    evaluated: int = 0  # samples judged: validated, lowered and analysed as far as needed (or failing there);
    # not the sampler's rejects or repeats
    seconds: float = 0.0
    # Each row's name and outcome, whose spec `specs` reads when first asked for: a worker sends a
    # kept spec as marshal's bytes, read back in 45 us for efficientnet_b0's (a 20th of its sample,
    # in the process that also draws the samples), and a sweep that writes no spec never needs them.
    _kept: list[tuple[str, Outcome]] = field(default_factory=list, init=False, repr=False, compare=False)
    _specs: list[dict] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def specs(self) -> list[dict]:
        """The resolved spec of each row, named as `row["name"]` (made when first asked for)."""
        if self._specs is None or len(self._specs) != len(self._kept):
            self._specs = [{**spec, "name": name} if (spec := out.spec()) else {} for name, out in self._kept]
        return self._specs

    @property
    def columns(self) -> list[str]:
        return ["sample", "name", *self.space_columns, *FIGURES]

    @property
    def space_columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update((k, None) for k in row if k not in ("sample", "name") and k not in FIGURES)
        return list(seen)

    def table(self) -> Any:
        """A pandas DataFrame when pandas is installed, else the list of row dicts."""
        try:
            import pandas
        except ImportError:
            return [dict(row) for row in self.rows]
        return pandas.DataFrame(self.rows, columns=self.columns)

    def summary(self) -> dict[str, Any]:
        def per_s(n: int) -> float:
            return round(n / self.seconds, 1) if self.seconds > 0 else 0.0

        return {"space": self.space.source, "samples": self.space.model.samples, "kept": len(self.rows),
                "draws": self.draws, "evaluated": self.evaluated, "rejected": dict(self.rejected.most_common()),
                "examples": self.examples, "seconds": round(self.seconds, 3), "draws_per_s": per_s(self.draws),
                "evaluated_per_s": per_s(self.evaluated), "seed": self.space.model.seed}


def flat_values(key: str, value: Any) -> dict[str, Any]:
    """The table columns of one sampled value: a mapping (RegNet's) gives one column per entry."""
    if isinstance(value, dict):
        return {f"{key}.{k}": v for k, v in value.items()}
    return {key: value}


def draws(space: Space) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(sample index, {key: value}, why the draw is no member of the space or None), forever.
    Every sampler is drawn for every sample, so the sequence depends on the seed alone."""
    rng = random.Random(space.model.seed)
    # (key, draw, reject or None), looked up once: a model's missing attribute costs an exception
    samplers = [(key, sampler.draw, getattr(sampler, "reject", None)) for key, sampler in space.model.sample.items()]
    index = 0
    while True:
        values: dict[str, Any] = {}
        reason = None
        for key, draw, reject in samplers:
            value = draw(rng)
            values[key] = value
            reason = reason or (reject(value) if reject else None)
        yield index, values, reason
        index += 1


def _digest(data: dict) -> tuple[str, bytes | None]:
    """A resolved spec's fingerprint, and the spec as marshal wrote it (None where it cannot): equal
    for equal documents, types, float bits and key order included (`1`, `1.0` and `true` differ),
    as their reprs are. marshal's version 0 writes exactly that (no references, floats as their
    repr) in a third of repr's time; a value it cannot write (a YAML date) leaves the document to
    its repr."""
    try:
        written = marshal.dumps(data, 0)
    except ValueError:
        return hashlib.blake2b(b"r" + repr(data).encode(), digest_size=16).hexdigest(), None
    return hashlib.blake2b(b"m" + written, digest_size=16).hexdigest(), written


class _OverBound(Exception):
    """A network being lowered passed a max bound (`Evaluator._watch`): the sample's reason."""

    def __init__(self, reason: str | None):
        super().__init__(reason)
        self.reason = reason


class Evaluator:
    """Evaluates samples against one space (one per process)."""

    def __init__(self, space: Space):
        self.space = space
        self.constraints = list(space.model.constraints.items())
        # (name, bounds, read) of the constraints the space lists first, as long as each is on a
        # figure that only grows as graphs are added (`GROWING`): what a network's totals so far can judge
        leading = list(itertools.takewhile(lambda c: c[0] in GROWING, self.constraints))
        self.growing = [(name, bounds, GROWING[name]) for name, bounds in leading] \
            if any(bounds.max is not None for _, bounds in leading) else []
        self.seen: dict[str, int] = {}  # digest -> first sample index evaluated here

    def _watch(self) -> Callable[[Graph], None] | None:
        """What lowering calls with each graph it makes (`lower`'s `watch`): the totals so far,
        checked against the constraints in the order the space lists them, as far as they can
        tell. A network over a max bound on a growing figure is judged there, without the rest of
        its graphs (RegNet's space, 400M MACs: two of three samples over, a third of a sample's time
        saved), where its whole figures would give the same reason: every constraint listed before
        that bound is certainly met (a growing figure already at its min, with no max). A max not
        passed yet, a min not reached yet, or a figure that does not grow (the receptive field) may
        still break, and would be the reason, so the later bounds wait for the whole network.

        One difference from judging the whole network, by design: a network over the bound whose
        later stages would not build is rejected for the bound, not as "does not build" (it is not
        built further); docs/sweeps.md, "What is counted"."""
        if not self.growing:
            return None
        totals, growing = Totals(), self.growing
        add = totals.add_counts if all(name in COUNTED for name, _, _ in growing) else totals.add

        def watch(graph: Graph) -> None:
            add(graph)
            for name, bounds, read in growing:
                value = read(totals)
                if bounds.max is not None:
                    if value > bounds.max:
                        raise _OverBound(bounds.broken(name, value))
                    return  # under its max so far: it may pass it later, and its reason comes first
                if bounds.min is not None and value < bounds.min:
                    return  # under its min so far: it may stay there, and its reason comes first

        return watch

    def __call__(self, sample: int, values: dict[str, Any], reject: str | None) -> Outcome:
        out = Outcome(sample, values, reject)
        if reject is not None:
            return out
        named = OVERRIDE_NAME.set("sample")  # a bad sampled key is named as the space gives it, not as a --set
        try:
            doc = resolve_loaded(self.space.base, self.space.locator, values)
        except SpecError as exc:
            return self._failed(out, INVALID, exc)
        finally:
            OVERRIDE_NAME.reset(named)
        out.key, written = _digest(doc.data)
        first = self.seen.setdefault(out.key, sample)
        if first < sample:  # an earlier sample had this spec: whoever counts, counts this one a duplicate
            out.reason = DUPLICATE
            return out
        out.evaluated = True
        try:
            spec = from_document(doc)
        except SpecError as exc:
            return self._failed(out, INVALID, exc)
        try:
            net = spec.network(hints=False, watch=self._watch(), data=False)  # its figures alone are read
        except _OverBound as over:
            out.reason = over.reason
            return out
        except LimitError as exc:
            return self._failed(out, TOO_LARGE, exc)
        except SpecError as exc:
            return self._failed(out, NO_BUILD, exc)
        out.figures = figures_of(analyze_network(net))
        for name, bounds in self.constraints:
            broken = bounds.broken(name, out.figures[name])
            if broken is not None:
                out.reason = broken
                return out
        out.data, out.written = doc.data, written
        return out

    @staticmethod
    def _failed(out: Outcome, reason: str, exc: SpecError) -> Outcome:
        out.reason = reason
        out.message = str(exc.problems[0])
        return out


def kept_name(space: Space, sample: int) -> str:
    """The name of a kept network: the space's name and the draw's number (`regnet_y_00042`)."""
    return f"{space.name}_{sample:05d}"


def run(space: Space, *, progress: Callable[[int, int, Counter], None] | None = None,
        pool: Workers | None = None) -> SweepResult:
    """Draw until `samples` networks are kept or `max_draws` are drawn; `progress(draws, kept,
    rejected)` is called after each sample. `pool` (from `workers`) evaluates them in its worker
    processes; without one, this process does."""
    want, limit = space.model.samples, space.max_draws
    result = SweepResult(space, [])
    seen: set[str] = set()
    start = time.perf_counter()
    candidates = _limited(draws(space), limit)
    outcomes = _parallel(pool, candidates, want) if pool is not None else _serial(space, candidates)
    try:
        with _no_cycle_collection():
            for out in outcomes:
                result.draws += 1
                # A repeat of an earlier sample's spec, evaluated where a worker had not seen that
                # sample, counts as one process counts it: a duplicate, not evaluated, no message.
                repeat = out.key is not None and out.key in seen
                result.evaluated += out.evaluated and not repeat
                reason = DUPLICATE if repeat else out.reason
                if out.key is not None:
                    seen.add(out.key)
                if reason is None:
                    name = kept_name(space, out.sample)
                    result.rows.append({"sample": out.sample, "name": name, **out.columns(), **(out.figures or {})})
                    result._kept.append((name, out))
                else:
                    result.rejected[reason] += 1
                    if out.message and not repeat:
                        result.examples.setdefault(reason, out.message)
                if progress is not None:
                    progress(result.draws, len(result.rows), result.rejected)
                if len(result.rows) >= want:
                    break
    finally:
        outcomes.close()
    result.seconds = time.perf_counter() - start
    return result


def _serial(space: Space, candidates: Iterator) -> Iterator[Outcome]:
    evaluate = Evaluator(space)
    for sample, values, reject in candidates:
        yield evaluate(sample, values, reject)


def _limited(items: Iterator, limit: int) -> Iterator:
    for n, item in enumerate(items):
        if n >= limit:
            return
        yield item


def _serve(space: Space, tasks: Any, replies: Any, parent: int) -> None:
    """A worker process: evaluates each chunk that comes in `tasks` and sends back its outcomes
    (or its failure) on `replies`, until the sweeping process ends it or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the sweeping process, which ends the workers
    gc.disable()  # a worker lives for one sweep (see _no_cycle_collection)
    evaluate = Evaluator(space)
    while True:
        try:
            chunk = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the sweeping process was killed: nobody will ask again
                return
            continue
        start = time.perf_counter()
        try:
            reply: Any = ([_to_send(evaluate(*item)) for item in chunk], time.perf_counter() - start)
        except Exception as exc:  # a bug, raised again in the sweeping process
            reply = _Failure(exc, traceback.format_exc())
        try:
            try:
                replies.send(reply)
            except Exception:  # an error that cannot be pickled: its traceback alone
                replies.send(_Failure(None, reply.trace if isinstance(reply, _Failure) else traceback.format_exc()))
        except OSError:  # the sweep has ended
            return


def _to_send(out: Outcome) -> Outcome:
    """`out` as a worker sends it: without the sampled values, which the sweeping process drew and
    puts back (`_parallel`), and a kept spec as the marshal bytes its digest was made of, where it
    has them, not also as the dict. They cost nothing more to make, and an outcome of efficientnet_b0's
    space is pickled and read back in half the time (58 and 43 us with the dict, 20 and 29 with the
    bytes)."""
    out.values = {}
    if out.written is not None:
        out.data = None
    return out


@dataclass
class _Failure:
    """A worker's error (None where it cannot be sent) and its traceback, as text."""

    error: BaseException | None
    trace: str


class WorkerError(RuntimeError):
    """A sweep worker process failed, or ended while the sweep waited for it."""


def max_jobs() -> int:
    """The most worker processes a sweep starts: one per CPU of this machine (more only share them),
    and at least 4, so that `-j 2` in an example works on any machine."""
    return max(os.cpu_count() or 1, 4)


def check_jobs(jobs: Any, option: str = "jobs") -> int:
    """`jobs` if it is a number of workers this machine can run (1 to its CPU count); ArgumentError if not."""
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise ArgumentError(f"{option} is a whole number of worker processes, not {jobs!r}"[:200])
    if not 1 <= jobs <= max_jobs():
        raise ArgumentError(f"{option} must be from 1 to {max_jobs()} (the CPUs of this machine, or 4 where it has "
                            f"fewer), got {jobs:,}")
    return jobs


class Workers:
    """`jobs` worker processes, each with a queue of tasks and a pipe of replies of its own, so that
    a sample can be sent to the one that has seen its neighbours (see `_parallel`).

    All of them are started here, before this process starts any thread (a task queue's feeder
    thread starts with its first task): a process forked beside a running thread may inherit a
    lock that thread held, and Python 3.12 warns of it."""

    def __init__(self, space: Space, jobs: int, method: str):
        import multiprocessing

        context = multiprocessing.get_context(method)
        self.order = _order(space)
        self.cost: list[float | None] = [None] * jobs  # each worker's recent seconds a sample (see `shares`)
        self.tasks: list[Any] = []
        self.replies: list[Any] = []
        self.processes: list[Any] = []
        try:
            for _ in range(jobs):
                tasks = context.Queue()
                replies, theirs = context.Pipe(duplex=False)
                process = context.Process(target=_serve, args=(space, tasks, theirs, os.getpid()),
                                          name="archspec-sweep-worker", daemon=True)
                self.tasks.append(tasks)
                self.replies.append(replies)
                self.processes.append(process)
                process.start()
                theirs.close()  # the worker's end: its pipe reads as ended when the worker does
        except BaseException:
            self.close()
            raise

    def send(self, worker: int, chunk: list[tuple[int, dict[str, Any], str | None]]) -> None:
        """Queue `chunk` for `worker` (without waiting: the queue's thread writes it)."""
        self.tasks[worker].put(chunk)

    def receive(self, worker: int) -> list[Outcome]:
        """The outcomes of the oldest chunk sent to `worker`, when it has them; the worker's error
        raised again here, or WorkerError if the worker ended without answering."""
        from multiprocessing.connection import wait

        replies, process = self.replies[worker], self.processes[worker]
        wait([replies, process.sentinel])
        try:
            reply = replies.recv()  # an answer sent just before the worker ended is still read
        except EOFError:
            process.join(timeout=5)  # its pipe closes as it ends: the exit code is known once it is reaped
            raise WorkerError(f"sweep worker {worker + 1} of {len(self.processes)} ended without answering "
                              f"(exit code {process.exitcode})") from None
        if isinstance(reply, _Failure):
            if reply.error is not None:
                raise reply.error from WorkerError(f"in sweep worker {worker + 1}:\n{reply.trace}")
            raise WorkerError(f"sweep worker {worker + 1} failed:\n{reply.trace}")
        outcomes, seconds = reply
        if outcomes:
            cost, known = seconds / len(outcomes), self.cost[worker]
            self.cost[worker] = cost if known is None else (known + cost) / 2
        return outcomes

    def shares(self) -> list[float]:
        """The part of a window each worker gets: in proportion to the samples it evaluated a second
        in its recent chunks (equal parts until each has answered). The processes are not equally
        fast: one shares a core with this process, and a part of the space may reuse less than
        another; a window waits for its slowest share (measured over efficientnet_b0's compound
        scaling, equal parts: one worker busy 0.55 s, the other 0.82 s for the same sweep)."""
        if any(cost is None or cost <= 0 for cost in self.cost):
            return [1.0] * len(self.cost)
        rates = [1 / cost for cost in self.cost]  # type: ignore[operator]  # None was ruled out
        # at most 3 times the slowest's part: a chunk of repeats (answered at once) says little
        return [min(rate, 3 * min(rates)) for rate in rates]

    def close(self) -> None:
        """End the workers (what they were still evaluating is not needed) and free their pipes."""
        for tasks in self.tasks:
            tasks.cancel_join_thread()  # chunks still queued for an ended worker are dropped, not awaited
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            if process.pid is not None:
                process.join()
        for tasks in self.tasks:
            tasks.close()
        for replies in self.replies:
            replies.close()


def route(work: list[tuple[int, dict[str, Any], str | None]], order: Callable[[dict[str, Any]], Any] | None,
          shares: int | list[float]) -> list[int]:
    """The worker of each sample of `work`: sorted by `order` (in draw order without one, or among
    equals), the first samples go to worker 0, the next to worker 1, ..., each worker's part of them
    in proportion to its entry in `shares` (a number of workers: equal parts)."""
    weights = [1.0] * shares if isinstance(shares, int) else shares
    ranked = range(len(work)) if order is None else sorted(range(len(work)), key=lambda i: order(work[i][1]))
    # worker k takes the places before ceil(n * (its share and those before it) / all shares)
    ends, total, upto = [], sum(weights), 0.0
    for weight in weights:
        upto += weight
        ends.append(math.ceil(len(work) * upto / total - 1e-9))
    owner = [0] * len(work)
    k = 0
    for place, i in enumerate(ranked):
        while place >= ends[k]:
            k += 1
        owner[i] = k
    return owner


def _order(space: Space) -> Callable[[dict[str, Any]], Any] | None:
    """The sort key that routes samples to workers: the value of the first sampled key whose sampler
    orders its values (a number's range, a choice), or None (RegNet's mapping alone)."""
    for key, sampler in space.model.sample.items():
        order = getattr(sampler, "order", None)
        if order is not None:
            return lambda values: order(values[key])
    return None


@contextmanager
def workers(space: Space, jobs: int) -> Iterator[Workers | None]:
    """`jobs` worker processes for `run` (None for one). On Linux they are forked from this
    process after it has evaluated the base spec once, so that they start with its imports and
    caches; all start here, before a progress display starts its thread."""
    if jobs <= 1:
        yield None
        return
    # Fork where it is the platform's own default (Linux); macOS and Windows spawn fresh workers.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method == "fork":
        with contextlib.suppress(Exception):  # a base spec that fails is the samples' business
            from_document(resolve_loaded(space.base, space.locator)).network(hints=False)
    pool = Workers(space, jobs, method)
    try:
        yield pool
    finally:
        pool.close()


WINDOWS = 4  # windows of samples sent ahead of the one being taken


def _parallel(pool: Workers, candidates: Iterator, want: int | None = None) -> Iterator[Outcome]:
    """Windows of `CHUNK` samples a worker evaluated by the workers, yielded in the order drawn.

    Each worker gets the samples of a window that stand nearest one another by the first sampled
    key (`route`): samples that share, say, a width share block graphs and analyses, which
    each process keeps for itself, so a worker that sees half the widths reuses as much as one
    process that sees them all (measured over efficientnet_b0's compound scaling, 600 samples: 1.6
    ms a sample in a worker that got the lower or upper half of the widths, 2.1 ms in one that got
    every other chunk of 32). A draw the sampler rejected is answered here: it has nothing to
    evaluate, and sending it costs more than that. This process waits only for answers: a task is
    queued without waiting, so a worker blocked on an answer that is not read yet blocks nothing.
    Near the end of a sweep that keeps `want` samples, a window holds only as many samples as are
    still expected to be needed (`_window_size`)."""
    from collections import deque

    jobs = len(pool.processes)
    full = CHUNK * jobs
    pending: deque = deque()  # (the window's draws, each evaluated draw's worker, the workers sent a chunk)
    given = kept = judged = 0  # samples sent to the workers; of those yielded, kept and all
    exhausted = False
    while True:
        while not exhausted and len(pending) < WINDOWS:
            size = _window_size(full, want, kept, judged, given - judged)
            if size == 0:
                if pending:
                    break
                size = full  # the workers' kept samples counted repeats the sweep does not keep
            window = _window(candidates, size)
            if not window:
                exhausted = True
                break
            work = [item for item in window if item[2] is None]
            owner = route(work, pool.order, pool.shares())
            shares: list[list] = [[] for _ in range(jobs)]
            for item, k in zip(work, owner):
                shares[k].append(item)
            for k, share in enumerate(shares):
                if share:
                    pool.send(k, share)
            pending.append((window, owner, [bool(share) for share in shares]))
            given += len(work)
        if not pending:
            return
        window, owner, sent = pending.popleft()
        evaluated = [iter(pool.receive(k) if sent[k] else ()) for k in range(jobs)]
        owners = iter(owner)
        for sample, values, reject in window:
            if reject is not None:
                yield Outcome(sample, values, reject)
                continue
            out = next(evaluated[next(owners)])
            out.values = values  # the worker's copy was not sent back (`_to_send`)
            judged += 1
            kept += out.reason is None
            yield out


def _window_size(full: int, want: int | None, kept: int, judged: int, queued: int) -> int:
    """The samples to send in the next window: `full`, or fewer where the sweep's keep rate so far
    (`kept` of `judged`) says that fewer than `full` beyond the `queued` ones will reach `want`
    kept samples (0: none, until those are judged). A worker answers for a chunk once it has
    evaluated all of it, so a sample sent past the last one needed costs time the sweep waits for
    (600 samples without rejects in windows of 64: the last window, 24 needed, was evaluated
    whole). Until a sample is judged, every one is taken to be kept (a sweep of 40 sends 40);
    once some are, and none was kept, windows are full. Two standard deviations of the kept count
    are added, so that a sweep whose samples are often rejected seldom has to send one window
    more and wait for it."""
    if want is None or (judged and not kept):
        return full
    if kept >= want:  # the workers' count of kept samples can pass the sweep's (see `_parallel`)
        return 0
    rate = kept / judged if judged else 1.0
    expected = (want - kept) / rate  # samples still to judge, at the rate so far
    needed = expected + 2 * math.sqrt(expected * (1 - rate)) / rate - queued
    return 0 if needed <= 0 else min(full, math.ceil(needed))


def _window(candidates: Iterator, size: int) -> list:
    """The next draws holding `size` samples to evaluate (the sampler's rejects between them ride
    along), or `size` * REJECTS_PER_CHUNK draws where nearly every draw is rejected; [] at the end."""
    window: list = []
    work = 0
    for item in candidates:
        window.append(item)
        work += item[2] is None
        if work == size or len(window) == size * REJECTS_PER_CHUNK:
            break
    return window


__all__ = ["Evaluator", "Outcome", "SweepResult", "WorkerError", "Workers", "draws", "run", "workers"]
