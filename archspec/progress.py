"""Progress on long work: a bar where the work has steps, a status line where it has none.

Both draw on standard error with rich, and only there when it is a terminal: piped or
redirected output, Jupyter (not a terminal) and `--quiet` (`set_quiet(True)`) see nothing,
and rich is not even imported. Nothing is drawn for work that ends within a second (DELAY_S),
and what is drawn is erased when the work ends, so what stays on the screen is the command's
own output.

    for spec in track(specs, "analysing"):
        ...
    with status("exporting resnet18 to ONNX") as say:
        say("tracing")
    with bar(total=len(points), description="sweep") as advance:
        for done in pool_results():
            advance()
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) every progress display of this process (the CLI's `--quiet`)."""
    global _quiet
    _quiet = bool(quiet)


def enabled() -> bool:
    """True when progress would be drawn: not quiet, and standard error is a terminal."""
    if _quiet or os.environ.get("ARCHSPEC_QUIET"):
        return False
    return _isatty(sys.stderr)


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


# Work shorter than this draws nothing: a quick command does not flicker a bar. (Tests set it to 0.)
DELAY_S = 1.0

_active = None  # the rich Progress of this process: nested work adds a line to it (rich allows one live display)
_shown = threading.Event()  # set once that display is on screen


@contextlib.contextmanager
def _task(description: str, total: int | None) -> Iterator[tuple]:
    """A line for one piece of work in the progress display, opening the display if none is open.

    The display goes on screen only once the outermost work has run DELAY_S seconds.
    """
    global _active
    from rich import progress as rp

    if _active is not None:
        task = _active.add_task(description, total=total)
        if _shown.is_set():
            _active.refresh()
        try:
            yield _active, task
        finally:
            _active.remove_task(task)
        return
    from rich.console import Console

    class Count(rp.MofNCompleteColumn):  # "3/17" for a bar, nothing for a status line (no total)
        def render(self, task: rp.Task) -> rp.Text:
            return super().render(task) if task.total is not None else rp.Text("")

    # One layout for bars and status lines: a status line (total None) shows a pulsing bar and no count.
    display = rp.Progress(rp.SpinnerColumn(), rp.TextColumn("{task.description}"), rp.BarColumn(),
                          Count(), rp.TimeElapsedColumn(),
                          console=Console(file=sys.stderr), transient=True,
                          # Lines printed meanwhile go above the display; stdout only when it shares the terminal
                          # (were it redirected to a file, rich would send its lines to the terminal instead).
                          redirect_stdout=_isatty(sys.stdout), redirect_stderr=True)
    lock = threading.Lock()
    finished = False

    def show() -> None:
        with lock:
            if not finished:
                display.start()
                _shown.set()

    timer = threading.Timer(DELAY_S, show)
    timer.daemon = True
    _active = display
    _shown.clear()
    try:
        task = display.add_task(description, total=total)
        if DELAY_S <= 0:
            show()
        else:
            timer.start()
        yield display, task
    finally:
        with lock:
            finished = True
            timer.cancel()
            if _shown.is_set():
                display.stop()
        _shown.clear()
        _active = None


def track(items: Iterable[T], description: str, total: int | None = None,
          label: Callable[[T], str] | None = None) -> Iterator[T]:
    """Yield `items`, drawing a bar of how many are done (`total` defaults to `len(items)`).

    `label(item)` names the item being worked on beside the description (`compare: resnet50`).
    """
    if not enabled():
        yield from items
        return
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]  # a TypeError (no len) is caught below
        except TypeError:
            total = None
    with _task(description, total) as (display, task):
        for item in items:
            if label is not None:
                display.update(task, description=f"{description}: {label(item)}")
            yield item
            display.advance(task)


@contextlib.contextmanager
def bar(total: int | None, description: str) -> Iterator[Callable[..., None]]:
    """A bar advanced by hand: `advance(n=1, description=None)`, for work not shaped as a loop."""
    if not enabled():
        yield lambda n=1, description=None: None
        return
    with _task(description, total) as (display, task):

        def advance(n: int = 1, description: str | None = None) -> None:
            display.update(task, advance=n, **({"description": description} if description else {}))

        yield advance


@contextlib.contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """A status line with `message` and the time elapsed, for one long step; `say(text)` changes the text."""
    if not enabled():
        yield lambda text: None
        return
    with _task(message, None) as (display, task):
        yield lambda text: display.update(task, description=text)
