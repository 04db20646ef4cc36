"""Design-space sweeps (`archspec sweep`, `archspec.sweep`): every kept row against an independent
analysis of its emitted spec, the constraints, determinism, the samplers' distributions, RegNet's
rule against torchvision, and the located errors of space files."""

from __future__ import annotations

import gc
import itertools
import json
import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import archspec
from archspec.core.errors import SpecError
from archspec.sweeps import SweepError, load_space, run_sweep
from archspec.sweeps.output import emit_specs, table_text
from archspec.sweeps.regnet import RegNet, regnet_stages
from archspec.sweeps.samplers import FloatRange, IntRange
from tests.clirun import run_cli

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "tests" / "sweep_spaces" / "small_space.yaml"
BASE = ROOT / "tests" / "sweep_spaces" / "small_base.yaml"
SAMPLED = ("vars.width", "vars.depth1", "vars.depth2", "vars.kernel", "vars.stride", "input.size")

# What a child process computes for each emitted spec, from `archspec.analyze` alone (its own
# caches, filled in another order than the sweep's).
CHILD = """
import json, sys, archspec
out = {}
for path in reversed(sys.argv[1:]):
    r = archspec.analyze(path)
    out[path] = {"params": r.params, "buffers": r.buffers, "macs": r.macs, "flops": r.flops,
                 "activation_bytes": r.activation_bytes, "peak_activation_bytes": r.peak_activation_bytes,
                 "depth": r.depth, "receptive_field": min(r.receptive_field.size),
                 "output_stride": max(r.receptive_field.stride)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    result = run_sweep(SPACE)
    directory = tmp_path_factory.mktemp("emitted")
    paths = emit_specs(result, directory)
    return result, paths


@pytest.fixture(scope="module")
def analysed(population):
    """The figures of every emitted spec, analysed in a fresh process."""
    _, paths = population
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_every_row_is_the_analysis_of_its_emitted_spec(population, analysed) -> None:
    result, paths = population
    assert len(result.rows) == 2000 == len(paths)
    for row, path in zip(result.rows, paths):
        assert path.name == f"{row['name']}.yaml"
        assert {k: row[k] for k in analysed[str(path)]} == analysed[str(path)], row["name"]


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_rows_are_the_base_spec_with_the_sampled_values(population) -> None:
    result, _ = population
    for row in result.rows[::50]:  # every 50th: the emitted specs are checked whole above
        report = archspec.analyze(BASE, **{k: row[k] for k in SAMPLED})
        assert (report.params, report.macs, report.depth) == (row["params"], row["macs"], row["depth"])


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_no_kept_row_breaks_a_constraint_and_each_reason_is_counted(population, analysed) -> None:
    result, _ = population
    assert all(f["params"] <= 2_000_000 and f["receptive_field"] >= 24 for f in analysed.values())
    assert set(result.rejected) == {"params > 2M", "receptive_field < 24", "does not build", "duplicate"}
    assert result.draws == len(result.rows) + sum(result.rejected.values())
    assert "too small for conv 7x7" in result.examples["does not build"]
    assert "small_base.yaml:8:5" in result.examples["does not build"]  # located in the base spec


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_kept_networks_are_distinct_and_drawn_from_the_samplers(population) -> None:
    result, _ = population
    specs = [json.dumps({**spec, "name": ""}, sort_keys=True) for spec in result.specs]
    assert len(set(specs)) == len(specs)
    for row in result.rows:
        assert row["vars.width"] % 8 == 0 and 8 <= row["vars.width"] <= 256
        assert 1 <= row["vars.depth1"] <= 6 and 1 <= row["vars.depth2"] <= 6
        assert row["vars.kernel"] in (3, 5, 7) and row["vars.stride"] in (1, 2)
        assert row["input.size"] in (6, 24, 32, 40, 48)


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_same_seed_same_table_whatever_the_workers(population) -> None:
    result, _ = population
    again = run_sweep(SPACE, samples=300, jobs=2)  # the first 300 kept are the same draws, in order
    assert again.rows == result.rows[:300]
    other = run_sweep(SPACE, samples=300, seed=8)
    assert other.rows != result.rows[:300]


def test_a_space_whose_sampler_rejects_draws_gives_the_same_sweep_whatever_the_workers(tmp_path: Path) -> None:
    # RegNet draws of other than 4 stages are rejected where they are drawn; those of 4 are sent to
    # the workers: the table, the specs and every count are the one process's, in the same order.
    example = ROOT / "docs" / "examples" / "regnet_space.yaml"
    one, two = (run_sweep(example, samples=60, seed=5, jobs=jobs) for jobs in (1, 2))
    assert (two.rows, two.specs, two.rejected, two.draws, two.evaluated) == \
        (one.rows, one.specs, one.rejected, one.draws, one.evaluated)
    assert one.rejected["regnet: not 4 stages"] > one.evaluated  # most draws never reach a worker
    # a space that rejects nearly every draw (RegNet's rule gives 7 stages to few)
    rare = tmp_path / "rare.yaml"
    rare.write_text(example.read_text().replace("stages: 4", "stages: 7").replace(
        "extends: regnet_y_400mf", f"extends: {ROOT / 'specs' / 'regnet_y_400mf.yaml'}"))
    one, two = (run_sweep(rare, samples=2, seed=1, max_draws=4000, jobs=jobs) for jobs in (1, 2))
    assert (two.rows, two.rejected, two.draws) == (one.rows, one.rejected, one.draws)
    assert one.rejected["regnet: not 7 stages"] > 10 * len(one.rows)


def test_workers_get_the_samples_nearest_one_another_by_the_first_sampled_key() -> None:
    from archspec.sweeps.engine import _order, route

    space = load_space(SPACE)  # first key: vars.width, an int range
    order = _order(space)
    assert order is not None and order({"vars.width": 40, "vars.kernel": 7}) == 40
    widths = [200, 8, 64, 16, 128, 32, 24]
    work = [(i, {"vars.width": w}, None) for i, w in enumerate(widths)]
    # the 4 narrowest (8, 16, 24, 32) to worker 0, the 3 widest to worker 1; each list in draw order
    assert route(work, order, 2) == [1, 0, 1, 0, 1, 0, 0]
    assert route(work, order, 3) == [2, 0, 1, 0, 2, 1, 0]
    # without an order (RegNet's mapping alone): contiguous runs of the draws
    assert route(work, None, 2) == [0, 0, 0, 0, 1, 1, 1]
    # a worker three times as fast gets three quarters of a window: 8 widths, the 6 narrowest to it
    eight = work + [(7, {"vars.width": 48}, None)]
    assert route(eight, order, [3.0, 1.0]) == [1, 0, 0, 0, 1, 0, 0, 0]
    assert route(eight, order, [1.0, 3.0]) == [1, 0, 1, 0, 1, 1, 1, 1]
    # RegNet's mapping has no order: the example space routes by its second key, se's choice
    regnet = _order(load_space(ROOT / "docs" / "examples" / "regnet_space.yaml"))
    assert regnet is not None and regnet({"vars": {"depth": 13}, "vars.se": 0.25}) == 1


def test_a_window_is_shared_in_proportion_to_each_workers_rate() -> None:
    from archspec.sweeps.engine import Workers

    pool = object.__new__(Workers)  # no processes: the shares follow the seconds a sample each reported
    pool.cost = [None, 0.004]
    assert pool.shares() == [1.0, 1.0]  # equal until every worker has answered
    pool.cost = [0.002, 0.004]
    assert pool.shares() == [500.0, 250.0]  # samples a second: the first gets two thirds
    pool.cost = [0.0005, 0.004]
    assert pool.shares() == [750.0, 250.0]  # never more than 3 times the slowest's part


def test_a_choice_orders_its_values_by_their_place_in_the_list() -> None:
    from archspec.sweeps.samplers import Choice

    choice = Choice(choice=[{"a": 1}, 3, "x"])
    rng = random.Random(0)
    for _ in range(20):
        value = choice.draw(rng)
        assert choice.order(value) == choice.choice.index(value)


@pytest.mark.parametrize("shares", [None, [3.0, 1.0], [1.0, 3.0]], ids=["measured", "3:1", "1:3"])
def test_a_routed_sweep_gives_the_table_of_one_process(shares, monkeypatch) -> None:
    # the first key (vars.width) routes each window's samples, narrow ones to worker 0, in parts
    # that follow the workers' rates (forced uneven here); a repeat of an earlier spec that another
    # worker evaluated counts as one process counts it (this sweep has repeats and failures)
    from archspec.sweeps import engine

    one = run_sweep(SPACE, samples=300, seed=3)
    if shares is not None:
        monkeypatch.setattr(engine.Workers, "shares", lambda self: shares)
    two = run_sweep(SPACE, samples=300, seed=3, jobs=2)
    assert one.rejected["duplicate"] > 0 and len(one.rejected) > 1
    assert (two.rows, two.specs, two.rejected, two.draws, two.evaluated, two.examples) == \
        (one.rows, one.specs, one.rejected, one.draws, one.evaluated, one.examples)


@pytest.mark.parametrize(("want", "kept", "judged", "queued", "size"), [
    (None, 0, 0, 0, 64),  # no target: full windows
    (40, 0, 0, 0, 40),  # nothing judged yet: each sample taken to be kept
    (40, 0, 0, 40, 0),  # ... and those 40 are on their way
    (600, 384, 384, 192, 24),  # no rejects so far: 216 to go, 192 of them sent
    (600, 448, 448, 192, 0),
    (600, 0, 64, 192, 64),  # none kept yet: no rate to go by
    # a third kept: 10 more kept take 30 samples, and 2 x sqrt(30 x 2/3) / (1/3) = 26.8 more
    (200, 190, 570, 0, 57),
    (200, 190, 570, 50, 7),
    (10, 12, 30, 0, 0),  # more kept than wanted, as the workers count (cross-worker repeats)
])
def test_a_window_holds_the_samples_the_sweep_still_needs(want, kept, judged, queued, size) -> None:
    from archspec.sweeps.engine import _window_size

    assert _window_size(64, want, kept, judged, queued) == size


@pytest.mark.parametrize(("samples", "sent"), [(40, 40), (100, 100)])
def test_a_sweep_without_rejects_sends_its_workers_no_sample_it_does_not_keep(samples, sent, tmp_path: Path,
                                                                              monkeypatch) -> None:
    # every draw of this space is kept (no constraint, no repeat: widths 8 to 4,096 and four sizes
    # are enough distinct specs), so a worker evaluating a sample past the last is time wasted
    from archspec.sweeps import engine

    space = tmp_path / "space.yaml"
    space.write_text(f"extends: {BASE}\nsamples: {samples}\nseed: 5\nsample:\n  vars.width: {{int: [8, 4096]}}\n"
                     "  input.size: {choice: [32, 40, 48, 56]}\n")
    counted: list[int] = []
    send = engine.Workers.send
    monkeypatch.setattr(engine.Workers, "send", lambda self, k, chunk: (counted.append(len(chunk)), send(self, k, chunk)))
    result = run_sweep(space, jobs=2)
    assert len(result.rows) == samples and not result.rejected
    assert sum(counted) == sent


def test_a_sweep_whose_workers_kept_repeats_still_gets_every_sample_it_asks_for() -> None:
    # each worker counts a spec new that the other already evaluated: the sweep process, which
    # sees both, calls it a repeat and asks for more samples than `want` (here: every one a repeat)
    from archspec.sweeps import engine

    class InProcess:  # the Workers interface, each chunk answered at once
        processes = [None, None]
        order = None

        def __init__(self) -> None:
            self.chunks: list[list] = [[], []]

        def shares(self) -> list[float]:
            return [1.0, 1.0]

        def send(self, k: int, chunk: list) -> None:
            self.chunks[k].append(chunk)

        def receive(self, k: int) -> list:  # every third sample over a constraint
            return [engine.Outcome(sample, values, None if sample % 3 else "params")
                    for sample, values, _ in self.chunks[k].pop(0)]

    candidates = ((n, {"x": n}, None) for n in range(1000))
    outcomes = engine._parallel(InProcess(), candidates, want=10)  # type: ignore[arg-type]
    assert [out.sample for out in itertools.islice(outcomes, 300)] == list(range(300))


def test_a_worker_reports_its_rate_with_its_outcomes() -> None:
    from archspec.sweeps import engine

    space = load_space(SPACE)
    pool = engine.Workers(space, 2, "fork")
    try:
        assert pool.shares() == [1.0, 1.0]
        items = [item for item in itertools.islice(engine.draws(space), 8)]
        pool.send(0, items[:4])
        pool.send(1, items[4:])
        pool.send(1, [])  # an empty chunk says nothing of the rate
        first, second = pool.receive(0), pool.receive(1)
        assert [o.sample for o in first + second] == list(range(8))
        cost = list(pool.cost)
        assert all(c is not None and 0 < c < 1 for c in cost)
        assert pool.receive(1) == [] and pool.cost == cost
        rates = [1 / c for c in cost]
        assert pool.shares() == [min(r, 3 * min(rates)) for r in rates]
    finally:
        pool.close()


def test_every_worker_is_forked_before_this_process_starts_a_thread() -> None:
    # a process forked beside a running thread may inherit a lock that thread held (Python 3.12 warns)
    import os
    import threading

    threads_at_fork: list[set[int]] = []
    before = {thread.ident for thread in threading.enumerate()}  # an earlier test's may still be ending
    os.register_at_fork(before=lambda: threads_at_fork.append({t.ident for t in threading.enumerate()}))
    run_sweep(SPACE, samples=40, seed=3, jobs=3)
    assert len(threads_at_fork) >= 3 and all(alive <= before for alive in threads_at_fork[-3:])


def test_an_error_in_a_worker_is_raised_in_the_sweep_and_a_dead_worker_is_reported(monkeypatch) -> None:
    import os

    from archspec.sweeps import engine

    evaluate = engine.Evaluator.__call__

    def failing(self, sample, values, reject):  # a bug in evaluation, in the forked workers
        if sample == 5:
            raise KeyError("a bug in sample 5")
        return evaluate(self, sample, values, reject)

    monkeypatch.setattr(engine.Evaluator, "__call__", failing)
    with pytest.raises(KeyError, match="a bug in sample 5") as caught:
        run_sweep(SPACE, samples=40, seed=3, jobs=2)
    assert "in sweep worker" in str(caught.value.__cause__) and "failing" in str(caught.value.__cause__)

    def dying(self, sample, values, reject):
        if sample == 5:
            os._exit(3)
        return evaluate(self, sample, values, reject)

    monkeypatch.setattr(engine.Evaluator, "__call__", dying)
    with pytest.raises(engine.WorkerError, match=r"ended without answering \(exit code 3\)"):
        run_sweep(SPACE, samples=40, seed=3, jobs=2)


@pytest.mark.slow  # the 2,000-sample population: about 8 s to draw, emit and analyse again
def test_table_as_csv_jsonl_and_dataframe(population, monkeypatch) -> None:
    result, _ = population
    lines = table_text(result, "csv").splitlines()
    assert lines[0].split(",")[:4] == ["sample", "name", "vars.width", "vars.depth1"]
    assert len(lines) == 2001
    walks: list[int] = []  # the columns are found by reading every row: once a table, not once a row
    every_row = type(result).space_columns
    monkeypatch.setattr(type(result), "space_columns", property(lambda r: walks.append(1) or every_row.fget(r)))
    assert table_text(result, "csv").splitlines() == lines and len(walks) == 1
    monkeypatch.undo()
    first = json.loads(table_text(result, "jsonl").splitlines()[0])
    assert first == result.rows[0]
    frame = result.table()
    assert type(frame).__name__ == "DataFrame" and list(frame["params"]) == [r["params"] for r in result.rows]
    monkeypatch.setitem(sys.modules, "pandas", None)  # pandas not installed: plain rows
    assert result.table() == result.rows


# -- samplers --------------------------------------------------------------------------------

def test_uniform_int_draws_every_step_equally() -> None:
    sampler = IntRange.model_validate({"int": [8, 32], "quantize": 8})
    rng = random.Random(0)
    counts = Counter(sampler.draw(rng) for _ in range(8000))
    assert set(counts) == {8, 16, 24, 32}
    assert all(abs(n - 2000) < 200 for n in counts.values())  # 2,000 expected each; sd about 39


def test_log_draws_have_log_uniform_odds() -> None:
    sampler = FloatRange.model_validate({"float": [1, 100], "draw": "log"})
    rng = random.Random(0)
    values = [sampler.draw(rng) for _ in range(8000)]
    assert 1 <= min(values) and max(values) <= 100
    below = sum(v <= 10 for v in values) / len(values)  # 10 is the geometric middle of [1, 100]
    assert abs(below - 0.5) < 0.03
    quantized = FloatRange.model_validate({"float": [0.5, 2.0], "quantize": 0.25})
    assert {quantized.draw(rng) for _ in range(500)} == {0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0}


# -- RegNet --------------------------------------------------------------------------------------

PUBLISHED = {  # torchvision.models.regnet: depth, w_0, w_a, w_m, group width (bottleneck 1)
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8), "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24), "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56), "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232), "regnet_y_128gf": (27, 456, 160.83, 2.52, 264),
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16), "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24), "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120), "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168),
}


def test_regnet_rule_is_torchvisions_for_every_published_regnet() -> None:
    from torchvision.models import regnet as tv

    for name, (depth, w_0, w_a, w_m, group) in PUBLISHED.items():
        theirs = tv.BlockParams.from_init_params(depth=depth, w_0=w_0, w_a=w_a, w_m=w_m, group_width=group)
        ours = regnet_stages(depth, w_0, w_a, w_m, group)
        assert ours == {"widths": theirs.widths, "depths": theirs.depths, "group_widths": theirs.group_widths}, name


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_regnet_space_with_published_parameters_gives_the_zoo_spec(name: str) -> None:
    """The sampler's widths, depths and group widths (Python) replace those the zoo spec computes
    from the same parameters (YAML expressions): the two must build the same network."""
    depth, w_0, w_a, w_m, group = PUBLISHED[name]
    space = {"extends": name, "samples": 1, "sample": {"vars": {"regnet": {
        "depth": depth, "w_0": w_0, "w_a": w_a, "w_m": w_m, "group_width": group, "stages": 4}}}}
    result = run_sweep(space)
    zoo = archspec.load_spec(name)
    assert [(s["out"], s["repeat"], s["group_width"]) for s in result.specs[0]["stages"]] == \
        [(s.out, s.repeat, s.group_width) for s in zoo.model.stages]
    assert result.rows[0]["params"] == archspec.analyze(zoo).params
    if name == "regnet_y_400mf":
        assert result.rows[0]["vars.widths"] == [48, 104, 208, 440] and result.rows[0]["vars.depths"] == [1, 3, 6, 6]
        assert result.rows[0]["params"] == 4_344_144  # torchvision's RegNet_Y_400MF_Weights num_params


def test_the_yaml_block_example_with_published_parameters_is_regnet_y_400mf() -> None:
    space = {"extends": str(ROOT / "docs" / "examples" / "regnet_y_like.yaml"), "samples": 1,
             "sample": {"vars": {"regnet": {"depth": 16, "w_0": 48, "w_a": 27.89, "w_m": 2.09, "group_width": 8}}}}
    result = run_sweep(space)
    row = result.rows[0]
    assert row["vars.widths"] == [48, 104, 208, 440] and row["vars.depths"] == [1, 3, 6, 6]  # torchvision's
    assert row["params"] == 4_344_144  # torchvision's RegNet_Y_400MF_Weights num_params
    spec = result.specs[0]
    assert [(s["out"], s["repeat"]) for s in spec["stages"]] == [(48, 1), (104, 3), (208, 6), (440, 6)]


def test_regnet_sampler_draws_pycls_quanta() -> None:
    sampler = RegNet.model_validate({"regnet": {"depth": [12, 28], "w_0": [8, 256], "w_a": [8, 256],
                                                "w_m": [2, 3], "group_width": [1, 32], "stages": 4}})
    rng = random.Random(0)
    for _ in range(300):
        value = sampler.draw(rng)
        assert 12 <= value["depth"] <= 28 and value["w_0"] % 8 == 0 and 8 <= value["w_0"] <= 256
        assert math.isclose(value["w_a"] * 10, round(value["w_a"] * 10)) and 8 <= value["w_a"] <= 256
        assert value["group_width"] in (1, 2, 4) or value["group_width"] % 8 == 0
        assert sum(value["depths"]) == value["depth"] and len(value["widths"]) == value["num_stages"]
        assert (sampler.reject(value) is None) == (value["num_stages"] == 4)
        assert set(value) == set(RegNet.entries())


@pytest.mark.parametrize("bad, message", [
    ({"w_m": 1}, "w_m: must be above 1"),               # u_j = w_0 w_m^s_j: log base 1
    ({"w_m": 0.5}, "w_m: must be above 1"),
    ({"w_m": [0.5, 3]}, "w_m: must be above 1"),
    ({"w_m": [2, float("inf")]}, "w_m: must be finite, got [2.0, inf]"),
    ({"w_m": [2, 1e30]}, "is too many steps of 0.001 from 0"),
    ({"w_m": float("nan")}, "w_m: must be finite"),
    ({"w_a": -1}, "w_a: must be at least 0"),
    ({"w_0": 12}, "w_0: must be a multiple of 8"),
    ({"depth": 0}, "depth: must be at least 1"),
    ({"group_width": 0}, "group_width: must be at least 1"),
    ({"bottleneck": 0}, "bottleneck: must be above 0"),
    # regnet_stages walks every block: a billion of them hung each draw, and no such network can be lowered
    ({"depth": 10**9}, "depth: at most 50,000 blocks"),
    ({"depth": [12, 10**9]}, "depth: at most 50,000 blocks"),
])
def test_regnet_parameters_outside_the_rule_are_refused_when_read(bad: dict, message: str) -> None:
    """Fixed or drawn, a parameter regnet_stages refuses is an error of the space, not of a draw."""
    from pydantic import ValidationError

    params = {"depth": [12, 28], "w_0": [8, 256], "w_a": [8, 256], "w_m": [2, 3], "group_width": [1, 32], **bad}
    with pytest.raises(ValidationError) as caught:
        RegNet.model_validate({"regnet": params})
    assert message in str(caught.value)


# -- errors ------------------------------------------------------------------------------------------

def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(f"extends: {BASE}\nsamples: 10\n" + text)
    return path


def test_a_repeated_spec_is_a_duplicate_and_a_value_of_another_type_is_not(tmp_path: Path) -> None:
    # 3, 3.0 and 3 written as text are three documents (3 and 3.0 make the same network: the stem's
    # kernel is an int; text is no number); every later draw repeats one of them.
    space = _space(tmp_path, "max_draws: 40\nsample:\n  vars.kernel: {choice: [3, 3.0, '3']}\n")
    result = run_sweep(space, samples=10, seed=3)
    kept = [row["vars.kernel"] for row in result.rows]
    assert sorted(map(repr, kept)) == ["3", "3.0"]
    assert result.rejected == {"duplicate": 40 - 3, "invalid spec": 1}
    assert "kernel: must be an integer, got '3'" in result.examples["invalid spec"]


@pytest.mark.parametrize("text, where, message", [
    ("sample: {vars.widht: {choice: [8]}}\n", "space.yaml:3:10", "no var 'widht' (did you mean 'width'?)"),
    ("sample: {vars.width: {int: [8, 20], quantize: 8}}\n", "space.yaml:3:", "20 is not a multiple of quantize"),
    ("sample: {vars.width: {uniform: [8, 20]}}\n", "space.yaml:3:",
     "a sampler is one of {choice: [a, b]}, {int: [low, high]}, {float: [low, high]} or {regnet: {...}} "
     "(found uniform)"),
    ("sample: {vars.width: {choice: [8]}}\nconstraints: {mac: {max: 1M}}\n", "space.yaml:4:15",
     "unknown figure 'mac' (did you mean 'macs'?)"),
    ("sample: {vars.width: {choice: [8]}}\nconstraints: {macs: {max: lots}}\n", "space.yaml:4:",
     "a bound is a number such as 4e8 or '400M'"),
    ("sample: {vars.width: {float: [8, .inf], quantize: 8}}\n", "space.yaml:3:", "must be finite numbers"),
    ("sample: {vars.width: {float: [8, .inf]}}\n", "space.yaml:3:", "must be finite numbers"),
    ("sample: {vars.width: {float: [.nan, 8]}}\n", "space.yaml:3:", "must be finite numbers"),
    ("sample: {vars.width: {float: [-.inf, 8], draw: log}}\n", "space.yaml:3:", "must be finite numbers"),
    ("sample: {vars.width: {float: [0.5, 1.5], quantize: 1e-320}}\n", "space.yaml:3:",
     "0.5 is too many steps of 1e-320 from 0"),
])
def test_space_errors_are_located(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_space(_space(tmp_path, text))
    assert where in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("text, key, message", [
    # the mapping drawn at vars would overwrite the var drawn below it (or the other way round,
    # by the order of the file), and both would claim the table's column vars.width
    ("sample:\n  vars.width: {int: [8, 16], quantize: 8}\n  vars: {choice: [{width: 24}]}\n", "sample.vars.width",
     "overlaps sample.vars"),
    ("sample:\n  vars: {regnet: {depth: [1, 4], w_0: 8, w_a: 8, w_m: 2, group_width: 8}}\n"
     "  vars.depth: {int: [1, 3]}\n", "sample.vars.depth", "overlaps sample.vars"),
    ("set: {vars.width: 8}\nsample:\n  vars.width: {int: [8, 16], quantize: 8}\n", "set.vars.width",
     "overlaps sample.vars.width"),
    # the sweep names every kept network; a sampled name took the table's `name` column
    ("sample:\n  name: {choice: [a, b]}\n", "sample.name", "the sweep names each network"),
])
def test_overlapping_keys_are_refused(tmp_path: Path, text: str, key: str, message: str) -> None:
    """Two keys that set the same value make the table's column say what the network is not."""
    with pytest.raises(SpecError) as caught:
        load_space(_space(tmp_path, text))
    assert f"{key}: " in str(caught.value) and message in str(caught.value)


def test_a_regnet_at_vars_over_a_spec_that_reads_none_of_its_vars_is_refused(tmp_path: Path) -> None:
    """small_base.yaml has no var widths, depths, ...: every draw would be the same network."""
    text = "sample:\n  vars: {regnet: {depth: [1, 4], w_0: 8, w_a: 8, w_m: 2, group_width: 8}}\n"
    with pytest.raises(SpecError) as caught:
        load_space(_space(tmp_path, text))
    assert "space.yaml:4:3: sample.vars: the base spec has none of the vars a RegNet draw sets" in str(caught.value)


def test_a_regnet_at_vars_and_a_var_it_does_not_set_may_be_sampled_together(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("extends: regnet_y_400mf\nsamples: 10\nsample:\n"
                    "  vars: {regnet: {depth: [1, 4], w_0: 8, w_a: 8, w_m: 2, group_width: 8}}\n"
                    "  vars.se: {choice: [0, 0.25]}\n")
    assert list(load_space(path).model.sample) == ["vars", "vars.se"]


def test_a_bad_command_line_value_is_blamed_on_its_option_not_the_file() -> None:
    with pytest.raises(SpecError) as caught:
        load_space(SPACE, samples=0, max_draws=None)  # the file says samples: 2000
    assert str(caught.value).startswith("--samples: samples: must be >= 1, got 0"), str(caught.value)


def test_plot_options_without_plot_are_refused_before_any_work() -> None:
    """As in compare: --x nosuch without --plot was ignored, and the sweep ran."""
    code, out, err = run_cli("sweep", str(SPACE), "--x", "nosuch", "--edf", "macs")
    assert code == 2 and "--x, --edf shape the plot: add --plot OUT.png" in err and not out, err


def test_a_bad_set_or_sampled_key_is_named_as_the_space_gives_it(tmp_path: Path) -> None:
    """They were reported as `--set stages.9.repeat` (from the CLI) though no --set was given."""
    with pytest.raises(SpecError) as caught:
        load_space(_space(tmp_path, "set: {stages.9.repeat: 2}\nsample: {vars.width: {choice: [8]}}\n"))
    assert "space.yaml:3:7: stages[9]: cannot set 'stages.9.repeat' at stages: no item 9" in str(caught.value), \
        str(caught.value)
    code, _, err = run_cli("sweep", str(_space(tmp_path, "sample: {stages.9.repeat: {choice: [1, 2]}}\n")))
    assert code == 2 and ("space.yaml:3:10: sample.stages.9.repeat: every trial draw fails at this key: cannot set "
                          "'stages.9.repeat' at stages: no item 9") in err, err


def test_a_space_nothing_meets_exits_2_with_the_reasons(tmp_path: Path) -> None:
    path = _space(tmp_path, "sample: {vars.width: {choice: [8, 16]}}\nconstraints: {params: {max: 10}}\n")
    with pytest.raises(SweepError) as caught:
        run_sweep(path)
    assert caught.value.result.rejected == Counter({"params > 10": 2, "duplicate": 98})
    code, out, err = run_cli("sweep", str(path))
    assert code == 2 and "no network" in err and "params > 10: 2" in err and "duplicate: 98" in err


# A network whose first stage alone holds 2 x 3 x 3 x 256 x 256 = 1,179,648 conv weights (hand count),
# and whose second stage cannot be built (a bottleneck of 24 channels in groups of 16).
OVER_THEN_BROKEN = """\
name: over_then_broken
vars: {width: 256}
input: {channels: 3, size: 16}
num_classes: 10
stem: [conv: {out: "${width}", kernel: 1, bias: false}]
stages:
  - {block: basic, out: "${width}", repeat: 1}
  - {block: regnet, out: 24, group_width: 16}
head: [global_pool: avg, flatten, linear: "${num_classes}"]
"""


def test_a_network_over_a_max_bound_on_a_growing_figure_is_judged_before_the_rest_is_built(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(OVER_THEN_BROKEN)
    space = tmp_path / "space.yaml"
    space.write_text("extends: base.yaml\nsample: {vars.width: {choice: [256, 8]}}\nconstraints: {params: {max: 1M}}\n")
    with pytest.raises(SweepError) as caught:
        run_sweep(space, samples=1, max_draws=20)
    # the width of 256 is over 1M parameters by its first stage, so its broken second stage is never
    # reached; the width of 8 is under, and its second stage is built and fails
    assert caught.value.result.rejected == Counter({"params > 1M": 1, "does not build": 1, "duplicate": 18})
    assert "not a multiple of group_width 16" in caught.value.result.examples["does not build"]
    # without the bound, the 256-wide network fails where the 8-wide one does
    space.write_text("extends: base.yaml\nsample: {vars.width: {choice: [256, 8]}}\n")
    with pytest.raises(SweepError) as caught:
        run_sweep(space, samples=1, max_draws=20)
    assert caught.value.result.rejected == Counter({"does not build": 2, "duplicate": 18})


def test_a_bound_is_judged_on_the_network_that_features_cut(tmp_path: Path) -> None:
    # `features: [0]` keeps the stem and the first stage (1,179,648 + 3 x 256 conv weights and 4 x 256
    # norm values): a network cut there is judged on those, not on the later stages that lowering makes first
    (tmp_path / "base.yaml").write_text(OVER_THEN_BROKEN.replace("regnet, out: 24", "regnet, out: 512")
                                        + "features: [0]\n")
    space = tmp_path / "space.yaml"
    space.write_text("extends: base.yaml\nsample: {vars.width: {choice: [256]}}\nconstraints: {params: {max: 1.2M}}\n")
    result = run_sweep(space, samples=1)
    assert result.rows[0]["params"] == 2 * 3 * 3 * 256 * 256 + 3 * 256 + 4 * 256


@pytest.mark.parametrize("space, samples", [(SPACE, 500), (ROOT / "docs" / "examples" / "regnet_space.yaml", 150)])
def test_judging_networks_as_they_are_built_changes_no_verdict(space: Path, samples: int, monkeypatch) -> None:
    early = run_sweep(space, samples=samples)
    from archspec.sweeps.engine import Evaluator

    monkeypatch.setattr(Evaluator, "_watch", lambda self: None)  # every network built and analysed whole
    whole = run_sweep(space, samples=samples)
    assert early.rows == whole.rows and early.specs == whole.specs
    assert early.rejected == whole.rejected and early.examples == whole.examples
    assert early.evaluated == whole.evaluated
    assert early.rejected["params > 2M" if space == SPACE else "macs > 400M"] > samples / 10


@pytest.mark.parametrize("name", ["regnet_y_400mf", "efficientnet_b0", "densenet121", "swin_t"])
def test_a_bound_on_params_or_macs_counts_what_the_analysis_counts(name: str) -> None:
    # A sweep whose growing bounds are all on params, buffers, macs or flops counts each graph alone
    # (`Totals.add_counts`, most of whose graphs no one analyses further); from empty memo tables, the
    # sums over the network are the report's (whose params are torchvision's: tests/test_analysis_zoo.py).
    from archspec.analysis.report import Totals
    from archspec.core import memo
    from archspec.spec.load import to_network

    memo.clear()
    net = to_network(name)
    counted = Totals()
    for part in net.parts():
        counted.add_counts(part.graph)
    report = archspec.analyze(name)
    assert (counted.params, counted.buffers, counted.macs) == (report.params, report.buffers, report.macs)
    assert counted.macs > 0


def test_a_graph_the_builder_did_not_count_is_counted_by_the_analysis() -> None:
    # A graph resized to another input (`at_input`: a sweep over input sizes) has no counts from the
    # builder, and its template's would be wrong there: `counts_of` takes the analysis's, whose MACs
    # grow with the map (between 3 and 4 times for twice the side: the SE's 1x1 convs do not grow).
    from archspec.analysis.report import counts_of
    from archspec.ir.builder import at_input
    from archspec.spec.load import to_network

    net = to_network("efficientnet_b0")
    for block in net.stages[2].blocks:
        graph = block.graph.analysed_as
        assert graph.counts is not None
        channels, height, width = graph.in_shape
        resized = at_input(graph, (channels, 2 * height, 2 * width))
        assert resized.counts is None
        params, buffers, macs = counts_of(resized)
        assert (params, buffers) == graph.counts[:2] and 3 * graph.counts[2] < macs < 4 * graph.counts[2]


def test_a_stage_scaled_to_numbers_met_before_is_the_stage_made_then() -> None:
    # compound scaling keeps each stage it validated by (stage, scaled numbers): two multipliers that
    # round to the same numbers share it; a scaled stage the block refuses is refused every time
    from archspec.spec.load import load_spec

    def stages(width: float, depth: float) -> list:
        return list(load_spec("efficientnet_b0", **{"scale.width": width, "scale.depth": depth}).model.stages)

    first, again = stages(1.2, 1.4), stages(1.2, 1.4)
    assert all(a is b for a, b in zip(first, again))
    # torchvision's _make_divisible(c * 1.2, 8) of b0's 16, 24, 40, 80, 112, 192, 320, by hand (19.2 -> 16,
    # under 90% of 19.2, so 24)
    assert [s.out for s in first] == [24, 32, 48, 96, 136, 232, 384]
    assert stages(1.5, 1.4)[1] is not first[1]
    bad = Path(__file__).parent / "bad_specs" / "scaled_width_odd.yaml"
    for _ in range(2):
        with pytest.raises(SpecError, match="21"):
            load_spec(bad)


def test_a_network_lowered_without_its_spec_data_is_not_kept_for_the_spec() -> None:
    # a sweep lowers each sample without copying its spec into the network (`data=False`); the
    # spec's own network, asked for later, still carries the spec: its checkpoint can be rebuilt
    from archspec.spec.load import load_spec

    spec = load_spec("regnet_y_400mf")
    bare = spec.network(data=False)
    assert dict(bare.spec_data) == {} and bare.stages
    full = spec.network()
    assert full is not bare and full.spec_data["name"] == "regnet_y_400mf"
    assert spec.network(data=False) is full  # a network already made is handed out as it is


@pytest.mark.parametrize("constraints, judged_early", [
    ("{receptive_field: {min: 24}, params: {max: 2M}}", False),  # a figure that does not grow, listed first
    ("{macs: {max: 100M}, params: {max: 2M}}", True),  # two bounds that both break: the first listed is the reason
    ("{params: {max: 2M}, macs: {max: 100M}}", True),
    ("{params: {min: 20K}, macs: {max: 30M}}", True),  # a min already met does not hold the max back
    ("{macs: {min: 5M, max: 30M}, params: {max: 500K}}", True),
])
def test_a_sample_is_rejected_for_the_first_constraint_it_breaks_as_listed(constraints: str, judged_early: bool,
                                                                           tmp_path: Path, monkeypatch) -> None:
    # several constraints, each order: the reasons (and their counts and messages) of networks judged
    # while they are built are those of the same networks built and analysed whole
    from archspec.sweeps.engine import Evaluator, _OverBound

    space = tmp_path / "space.yaml"
    space.write_text(SPACE.read_text().replace("extends: small_base.yaml", f"extends: {BASE}")
                     .split("constraints:")[0] + f"constraints: {constraints}\n")
    stopped = []
    watch_of = Evaluator._watch

    def counting(self: Evaluator) -> Any:
        watch = watch_of(self)
        if watch is None:
            return None

        def counted(graph: Any) -> None:
            try:
                watch(graph)
            except _OverBound:
                stopped.append(graph)
                raise
        return counted

    monkeypatch.setattr(Evaluator, "_watch", counting)
    early = run_sweep(space, samples=150)
    assert bool(stopped) == judged_early  # networks were (or, with nothing to judge early, were not) cut short
    monkeypatch.setattr(Evaluator, "_watch", lambda self: None)
    whole = run_sweep(space, samples=150)
    assert (early.rows, early.rejected, early.examples, early.evaluated) == \
        (whole.rows, whole.rejected, whole.examples, whole.evaluated)
    assert len(whole.rejected) >= 3  # a build failure and at least two constraints' reasons


def test_cli_writes_the_table_specs_and_plot(tmp_path: Path) -> None:
    path = _space(tmp_path, "sample: {vars.width: {int: [8, 64], quantize: 8}, vars.depth2: {int: [1, 3]}}\n")
    code, out, err = run_cli("sweep", str(path), "-o", str(tmp_path / "t.csv"), "--emit", str(tmp_path / "kept"),
                             "--plot", str(tmp_path / "p.png"), "--y", "params", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kept"] == 10 and len(summary["rows"]) == 10
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 11
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    emitted = sorted((tmp_path / "kept").glob("*.yaml"))
    assert len(emitted) == 10
    assert archspec.analyze(emitted[0]).params == summary["rows"][0]["params"]
    code, out, err = run_cli("validate", *map(str, emitted))
    assert code == 0, err
    model = archspec.build(emitted[0])  # a kept spec builds as it is
    assert sum(p.numel() for p in model.parameters()) == summary["rows"][0]["params"]


def test_archspec_sweep_returns_the_table(tmp_path: Path) -> None:
    path = _space(tmp_path, "sample: {vars.width: {int: [8, 64], quantize: 8}}\nseed: 3\n")
    table = archspec.sweep(path, samples=5)
    assert type(table).__name__ == "DataFrame" and len(table) == 5
    assert list(table["vars.width"]) == [r["vars.width"] for r in run_sweep(path, samples=5).rows]


def test_space_schema_is_current_and_takes_the_example_spaces() -> None:
    import jsonschema
    import yaml

    from archspec.sweeps.space import space_schema, space_schema_text

    assert (ROOT / "schemas" / "archspec-space.schema.json").read_text(encoding="utf-8") == space_schema_text()
    validator = jsonschema.Draft202012Validator(space_schema())
    for path in (SPACE, ROOT / "docs" / "examples" / "regnet_space.yaml"):
        validator.validate(yaml.safe_load(path.read_text()))
    assert not validator.is_valid({"extends": "x.yaml", "samples": 5, "sample": {"vars.w": {"uniform": [1, 2]}}})
    code, out, _ = run_cli("schema", "--space")
    assert code == 0 and json.loads(out) == space_schema()


def test_help_names_every_figure(capsys) -> None:
    from archspec.cli.main import main
    from archspec.sweeps.figures import FIGURES

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in FIGURES), text


def test_emitted_specs_never_overwrite_an_input(tmp_path: Path) -> None:
    """An emitted spec named like the space file (or its base spec) is refused, as any output over an input."""
    path = _space(tmp_path, "name: s\nsample: {vars.width: {choice: [8]}}\n")
    assert run_cli("sweep", str(path), "-n", "1", "--emit", str(tmp_path / "first"))[0] == 0
    (emitted,) = (tmp_path / "first").glob("*.yaml")
    space = tmp_path / emitted.name
    space.write_text(path.read_text())
    code, _, err = run_cli("sweep", str(space), "-n", "1", "--emit", str(tmp_path))
    assert code == 2 and f"{space}: is an input of this command" in err, err
    assert space.read_text() == path.read_text()


def test_the_space_file_docs_sweeps_shows_is_the_example_file() -> None:
    """docs/sweeps.md prints `docs/examples/regnet_space.yaml` for users to copy: it must be that file."""
    import re

    import yaml

    doc = (ROOT / "docs" / "sweeps.md").read_text(encoding="utf-8")
    shown = re.search(r"`docs/examples/regnet_space\.yaml`:\n\n(?:<!--.*?-->\n)?```yaml\n(.*?)```", doc, re.S)
    assert shown, "docs/sweeps.md no longer shows the example space file"
    example = ROOT / "docs" / "examples" / "regnet_space.yaml"
    assert yaml.safe_load(shown.group(1)) == yaml.safe_load(example.read_text(encoding="utf-8"))
    load_space(example)


@pytest.mark.parametrize("space", [SPACE, ROOT / "docs" / "examples" / "regnet_yaml_space.yaml",
                                   ROOT / "docs" / "examples" / "efficientnet_space.yaml"],
                         ids=["failing_samples", "yaml_block", "compound_scaling"])
def test_a_sweep_leaves_no_reference_cycle_behind(space: Path) -> None:
    """The engine turns the cyclic collector off while it evaluates samples (engine's
    `_no_cycle_collection`), which is sound only if samples make no reference cycles, those that
    fail to validate or to build included: after a sweep, a full collection finds nothing.

    The collector stays off through the sweep and after it: once it is back on, the first
    allocation may collect what the sweep left before this test looks (it did: a recursive
    closure, three objects a sample, went unnoticed that way)."""
    gc.collect()
    gc.disable()
    try:
        result = run_sweep(load_space(space, samples=40, seed=11))
        assert not gc.isenabled()  # the engine restores the state it found
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert result.evaluated >= 40
    run_sweep(load_space(space, samples=5, seed=11))
    assert gc.isenabled()
    # what the sweep made is not left frozen (the engine freezes it only to step over the collection
    # that its first allocation would start): a later full collection still scans it
    assert gc.get_freeze_count() == 0


def test_a_sweep_leaves_the_callers_collector_as_it_would_be() -> None:
    """Around a sweep the engine steps over one collection (`_no_cycle_collection`): what the caller
    froze stays frozen, and the cycles it left in the young generations are collected as they would
    have been, not moved unexamined to the oldest generation."""
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.collect()
    kept = [Cycle()]
    gc.freeze()  # as a server does before it forks
    try:
        for _ in range(1000):
            Cycle()
        run_sweep(load_space(SPACE, samples=5, seed=11))
        assert gc.isenabled()
        assert not any(o is kept for o in gc.get_objects())  # still frozen: in no generation
        assert gc.collect(2) == 0  # the young cycles were collected already
    finally:
        gc.unfreeze()


def test_a_worker_sends_a_kept_spec_that_reads_back_the_same_to_the_last_type_and_bit() -> None:
    """A worker sends a kept sample's spec as the marshal bytes of its digest (`engine._to_send`):
    read back it is the resolved document, key order, types and float bits included (`==` would
    take `1` for `1.0` and `-0.0` for `0.0`), and a document marshal cannot write goes as the dict."""
    import datetime
    import marshal
    import pickle

    from archspec.sweeps import engine

    data = {"name": "n", "vars": {"b": 1, "a": 1.0, "z": -0.0, "t": True, "l": [1, (2, 3)], "big": 10 ** 30}}
    key, written = engine._digest(data)
    sent = pickle.loads(pickle.dumps(engine._to_send(engine.Outcome(0, {}, data=data, written=written))))
    assert sent.data is None and sent.written is not None
    assert marshal.dumps(sent.spec(), 0) == marshal.dumps(data, 0)
    assert list(sent.spec()["vars"]) == ["b", "a", "z", "t", "l", "big"]

    dated = {"name": "n", "when": datetime.date(2020, 1, 2)}
    key, written = engine._digest(dated)
    assert written is None
    sent = pickle.loads(pickle.dumps(engine._to_send(engine.Outcome(0, {}, data=dated, written=written))))
    assert sent.spec() == dated


def test_an_emit_directory_the_sweep_cannot_use_is_refused_before_any_work(tmp_path: Path) -> None:
    # each was refused only after the whole sweep (its table written, its summary lost)
    path = _space(tmp_path, "sample: {vars.width: {int: [8, 64], quantize: 8}}\n")
    (tmp_path / "afile").write_text("")
    table = tmp_path / "t.csv"
    code, out, err = run_cli("sweep", str(path), "-o", str(table), "--emit", str(tmp_path / "afile" / "kept"))
    assert code == 2 and "a part of its path is a file" in err and not out and not table.exists(), err
    code, out, err = run_cli("sweep", str(path), "-o", str(table), "--emit", str(table))
    assert code == 2 and "is the --emit directory too" in err and not out and not table.exists(), err
    code, out, err = run_cli("sweep", str(path), "-o", f"{table}/")  # a Path would drop the slash
    assert code == 2 and "ends in '/'" in err and not out and not table.exists(), err


def test_the_pareto_front_is_drawn_as_the_best_figure_reached_so_far() -> None:
    # Three networks: (10M MACs, field 100), (20M, 200) and (15M, 50), which the first beats. With MACs
    # on x (a cost), the best field for at most 15M MACs is 100: the staircase holds each front point's
    # y until the next point's x. With the field on x (more is better), the cheapest network with a
    # field of at least 150 costs 20M: the staircase takes the next point's y at once.
    from matplotlib import cbook
    from matplotlib import pyplot as plt

    from archspec.sweeps.plot import sweep_figure

    rows = [{"macs": 10e6, "receptive_field": 100}, {"macs": 20e6, "receptive_field": 200},
            {"macs": 15e6, "receptive_field": 50}]
    for x, y, corners in (("macs", "receptive_field", [(10, 100), (20, 100), (20, 200)]),
                          ("receptive_field", "macs", [(100, 10), (100, 20), (200, 20)])):
        fig = sweep_figure(rows, x=x, y=y)
        try:
            (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("Pareto front")]
            steps = cbook.STEP_LOOKUP_MAP[line.get_drawstyle()](line.get_xdata(), line.get_ydata())
            assert [(float(a), float(b)) for a, b in zip(*steps)] == corners
        finally:
            plt.close(fig)


def test_a_space_files_misspelled_keys_get_a_space_files_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(f"extends: {BASE}\nsamples: 3\nseeds: 1\nmax_draw: 9\nsample:\n"
                    "  vars.width: {int: [8, 64], qantize: 8}\nconstraints: {macs: {mx: 3}}\n")
    with pytest.raises(SpecError) as caught:
        load_space(path)
    text = str(caught.value)
    for typo, meant in (("seeds", "seed"), ("max_draw", "max_draws"), ("qantize", "quantize"), ("mx", "max")):
        assert f"unknown key '{typo}' (did you mean '{meant}'?)" in text, text


def test_keys_no_spec_has_are_refused_where_the_space_file_writes_them(tmp_path: Path) -> None:
    # before, every draw was rejected as an invalid spec, after max_draws of them, with a sample's
    # message and no line (or `input.sise` hidden behind the sampled size's own errors)
    cases = {"set: {input.sise: 3}\nsample: {vars.width: {int: [8, 64]}}\n": ":3:7: input.sise: unknown key 'sise'",
             "set: {vars.nope: 3}\nsample: {vars.width: {int: [8, 64]}}\n": ":3:7: set.vars.nope: the base spec has no var",
             "sample:\n  stages.0.repet: {int: [1, 3]}\n":
                 ":4:3: sample.stages.0.repet: every trial draw fails at this key: unknown key 'repet' (did you mean 'repeat'?)",
             "sample:\n  foo.bar: {int: [1, 3]}\n": ":4:3: sample.foo.bar: every trial draw fails at this key: unknown "
                                                    "key 'foo'"}
    for text, expected in cases.items():
        path = _space(tmp_path, text)
        with pytest.raises(SpecError) as caught:
            load_space(path)
        assert expected in str(caught.value), str(caught.value)
    # a key that one value of another sampler makes known (a bottleneck's expansion) is the space's design
    path = _space(tmp_path, "sample:\n  stages.0.block: {choice: [basic, bottleneck]}\n"
                            "  stages.0.expansion: {choice: [2, 4]}\n")
    result = run_sweep(path, samples=4)
    assert result.rows and {row["stages.0.block"] for row in result.rows} == {"bottleneck"}


def test_the_space_file_in_sweep_help_loads(tmp_path: Path) -> None:
    import shutil

    from archspec.cli.cmd_sweep import EXAMPLE

    text = EXAMPLE.split("names a base spec, samplers over its keys and bounds on analysed figures:\n")[1]
    text = "\n".join(line[2:] for line in text.split("\nSee docs/sweeps.md")[0].splitlines())
    shutil.copy(ROOT / "docs" / "examples" / "regnet_y_like.yaml", tmp_path)
    (tmp_path / "space.yaml").write_text(text)
    space = load_space(tmp_path / "space.yaml")
    assert space.model.samples == 2000 and set(space.model.sample) == {"vars", "vars.se"}


def test_range_samplers_draw_pycls_numbers_from_the_generator() -> None:
    """Each sampler's draws, for a seed, are pycls's formulas (pycls/sweep/random.py) applied to
    `random.Random`'s stream, written out here: `uniform` floors `rng.uniform(low, high + q) / q`,
    `log_uniform` ceils exp(-uniform(-log high, -log(low - min(q, low / 2)))) / q, both times q at
    q's decimals. RegNet's drawn parameters follow in the same order (depth, w_0, w_a, w_m, group
    width: a power of two below 8, else log-uniform multiples of 8; a fixed parameter draws nothing)."""
    def theirs_log(rng: random.Random, low: float, high: float, q: float, digits: int) -> float:
        f = math.exp(-rng.uniform(-math.log(high), -math.log(low - min(q, low / 2))))
        return round(math.ceil(f / q) * q, digits)

    ints = IntRange.model_validate({"int": [8, 256], "quantize": 8, "draw": "log"})
    floats = FloatRange.model_validate({"float": [0.5, 2.0], "quantize": 0.01})
    mine, theirs = random.Random(7), random.Random(7)
    for _ in range(300):
        assert ints.draw(mine) == int(round(theirs_log(theirs, 8, 256, 8, 0)))
        assert floats.draw(mine) == round(math.floor(theirs.uniform(0.5, 2.0 + 0.01) / 0.01) * 0.01, 2)
    sampler = RegNet.model_validate({"regnet": {"depth": [12, 28], "w_0": [8, 256], "w_a": [8, 256],
                                                "w_m": [2, 3], "group_width": [1, 32]}})
    mine, theirs = random.Random(3), random.Random(3)
    for _ in range(300):
        value = sampler.draw(mine)
        depth = int(math.floor(theirs.uniform(12, 28 + 1) / 1) * 1)
        w_0 = int(theirs_log(theirs, 8, 256, 8, 0))
        w_a, w_m = theirs_log(theirs, 8, 256, 0.1, 1), theirs_log(theirs, 2, 3, 0.001, 3)
        group = 2.0 ** math.floor(theirs.uniform(math.log2(1), math.log2(32) + 1))
        if group >= 8:
            group = theirs_log(theirs, 8, 32, 8, 0)
        assert (value["depth"], value["w_0"], value["w_a"], value["w_m"], value["group_width"], value["bottleneck"]) == \
            (depth, w_0, w_a, w_m, int(group), 1.0)  # the bottleneck is fixed (1): nothing drawn for it


def test_a_space_that_has_drawn_pickles_and_draws_the_same_and_a_copy_draws_its_own_range() -> None:
    """Worker processes that are spawned (macOS, Windows) get the space pickled, after the sweeping
    process has drawn from it: it holds no drawer, and draws on as the original does. A sampler
    copied with other bounds draws within them, not with the original's drawer."""
    import pickle

    from archspec.sweeps import engine

    for path in (ROOT / "docs" / "examples" / "regnet_space.yaml", ROOT / "docs" / "examples" / "efficientnet_space.yaml"):
        space = load_space(path, samples=10, seed=4)
        before = list(itertools.islice(engine.draws(space), 20))
        copied = pickle.loads(pickle.dumps(space))
        assert list(itertools.islice(engine.draws(copied), 20)) == before
    sampler = IntRange.model_validate({"int": [8, 32], "quantize": 8})
    rng = random.Random(0)
    assert {sampler.draw(rng) for _ in range(200)} == {8, 16, 24, 32}
    wider = sampler.model_copy(update={"int_": (104, 200)})
    assert {wider.draw(rng) for _ in range(200)} <= set(range(104, 201, 8))


def test_spawned_workers_take_the_space_and_give_the_forked_workers_table() -> None:
    """Where workers are spawned (macOS, Windows: `engine.workers`), the space goes to them pickled,
    after the sweeping process has drawn from it; their table is the one forked workers give."""
    from archspec.sweeps import engine

    path = ROOT / "docs" / "examples" / "regnet_space.yaml"
    forked = run_sweep(path, samples=6, seed=5, jobs=2)
    space = load_space(path, samples=6, seed=5)
    pool = engine.Workers(space, 2, "spawn")
    try:
        spawned = engine.run(space, pool=pool)
    finally:
        pool.close()
    assert spawned.rows == forked.rows and spawned.rejected == forked.rejected
