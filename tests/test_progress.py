"""Progress display: drawn on a terminal, silent when standard error is not one or under --quiet."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from archspec import progress
from archspec.cli.main import main


class Terminal(io.StringIO):
    """A captured standard error that says it is a terminal, as rich and `progress.enabled` ask."""

    def isatty(self) -> bool:
        return True


def run_on(stderr: io.StringIO, *argv: str) -> tuple[int, str, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return code, out.getvalue(), stderr.getvalue()


@pytest.fixture(autouse=True)
def _loud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHSPEC_QUIET", raising=False)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # draw at once: the work here is quick
    progress.set_quiet(False)


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture) -> None:
    assert list(progress.track([1, 2, 3], "work")) == [1, 2, 3]
    with progress.status("one step") as say, progress.bar(2, "steps") as advance:
        say("next")
        advance()
    assert capsys.readouterr().err == ""


def test_compare_draws_a_bar_on_a_terminal_and_keeps_stdout_clean() -> None:
    code, out, err = run_on(Terminal(), "compare", "lenet5", "alexnet")
    assert code == 0
    assert "compare: " in err and "2/2" in err  # the bar names the network and counts
    assert "\x1b" not in out and "alexnet" in out  # the table itself is plain


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_silences_progress(where: str) -> None:
    argv = ["compare", "lenet5", "alexnet"]
    argv = ["--quiet", *argv] if where == "before" else [*argv, "-q"]
    code, out, err = run_on(Terminal(), *argv)
    assert code == 0 and err == "" and "alexnet" in out


def test_nested_work_shares_one_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich allows one live display at a time: a status inside a bar adds a line instead of failing."""
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    seen = []
    for item in progress.track(["a", "b"], "outer", label=str):
        with progress.status(f"inner {item}"):
            seen.append(item)
    assert seen == ["a", "b"]
    assert "inner b" in term.getvalue() and "outer: b" in term.getvalue()


def test_export_shows_its_step(tmp_path: Path) -> None:
    code, _, err = run_on(Terminal(), "export", "lenet5", "-o", str(tmp_path / "lenet5.py"))
    assert code == 0
    assert "export lenet5 to python: writing" in err
    assert err.rstrip().endswith("(python)")  # "wrote ..." stays after the transient line is erased


def test_quick_work_draws_nothing_and_slow_work_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.setattr(progress, "DELAY_S", 5.0)
    assert list(progress.track(range(3), "quick")) == [0, 1, 2]
    assert term.getvalue() == ""  # no flicker for work under the delay
    monkeypatch.setattr(progress, "DELAY_S", 0.1)
    with progress.status("slow"):
        time.sleep(0.8)  # margin for a loaded machine
    assert "slow" in term.getvalue()

