"""Errors that point at the spec.

Every problem found in a spec is a `Problem`: a message, the path inside the spec
(`stages[2].repeat`) and, where known, the source location (`file:line:column`).
A `SpecError` carries one or more problems so that several mistakes are reported
together. The CLI prints `str(error)` and exits with code 2.
"""

from __future__ import annotations

import contextvars
import difflib
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Sequence

PathItem = str | int
SpecPath = tuple[PathItem, ...]


@dataclass(frozen=True)
class Location:
    """A position in a source file; line and column are 1-based, as editors show them."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


def format_path(path: Sequence[PathItem]) -> str:
    """`("stages", 2, "repeat")` -> `stages[2].repeat`."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


@dataclass(frozen=True)
class Problem:
    message: str
    path: SpecPath = ()
    location: Location | None = None
    # The `extends` chain that led to the file holding the problem, child first.
    chain: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<spec>"
        what = format_path(self.path)
        text = f"{where}: {what}: {self.message}" if what else f"{where}: {self.message}"
        if len(self.chain) > 1:
            text += f" (via extends: {' -> '.join(self.chain)})"
        return printable(text)  # keys and names come from the input: no terminal escapes, one line


def printable(text: str, keep: str = "") -> str:
    """`text` with control and format characters (ESC, CR, newlines, bidi overrides) written as
    escapes (`\\x1b`), so that a name taken from a spec cannot retitle, clear or rewrite a
    terminal, or split one message into several lines. Characters in `keep` stay as they are."""
    if text.isprintable() and not keep:
        return text
    out = []
    for ch in text:
        if ch in keep or ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


class ArchspecError(Exception):
    """Base class of every error archspec raises on purpose."""


class LocatedError(ArchspecError, ValueError):
    """A deliberate error found where the source text is not known (the IR, lowering, taps,
    parts, output stride): `origin` is its path in the spec, which `spec.load` turns into a
    located `SpecError` (file:line:column). `spatial_zero`: a size that shrank to nothing (the
    message then gets the smallest input that works); `limit`: a valid network beyond a size
    limit (a `LimitError`). Subclasses name the stage that raised it."""

    def __init__(self, message: str, origin: SpecPath = (), spatial_zero: bool = False, limit: bool = False):
        super().__init__(message)
        self.origin: SpecPath = tuple(origin)
        self.spatial_zero = spatial_zero
        self.limit = limit


class BlockError(ArchspecError, ValueError):
    """A block family refuses what a stage gave it: parameters that do not fit together, an
    input it cannot take (`at stride 1 the input must have 116 channels`). Raise it from a
    family's `emit`; it is reported at the stage that uses the block. Any other exception from
    `emit` is a bug in the family (`InternalError`)."""


class InternalError(RuntimeError):
    """A bug in code archspec runs for a spec (a block family's `emit`, a part's), not a problem
    of the spec: the message names the family and the line that raised, and the original
    exception is chained. Deliberately not an `ArchspecError`: the CLI reports it as an internal
    error (exit code 1), never as a mistake in the user's file."""


def family_bug(what: str, cls: type, exc: BaseException) -> InternalError:
    """The `InternalError` for `exc` raised inside `cls` (`what`: "block type 'x'"). `cls` may be a
    stage or part model made from the family (`models.py`): the family is its first base."""
    if cls.__module__ == "archspec.spec.models" and cls.__bases__:
        cls = cls.__bases__[0]
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
    return InternalError(f"{what} ({cls.__module__}.{cls.__qualname__}) failed{where}: {type(exc).__name__}: "
                         f"{exc}. This is a bug in the block family, not a problem of the spec; a family reports "
                         "a problem of the spec with archspec.BlockError")


class ArgumentError(ArchspecError, ValueError):
    """A bad argument to an API function or a command-line option (`batch=0`, `dtype="int3"`)."""


class MissingDependency(ArchspecError, ModuleNotFoundError):
    """An optional package a feature needs is not installed; the CLI exits with code 3.

    Also a `ModuleNotFoundError`, so code that catches ImportError keeps working."""

    exit_code = 3

    def __init__(self, message: str, name: str | None = None):
        ArchspecError.__init__(self, message)
        self.msg = message
        self.name = name


MAX_SHOWN_PROBLEMS = 50


class SpecError(ArchspecError, ValueError):
    """One or more problems in a spec. `str()` gives one located line per problem
    (the first MAX_SHOWN_PROBLEMS of them; `problems` keeps them all)."""

    def __init__(self, problems: Problem | Iterable[Problem], omitted: int = 0):
        """`omitted`: further problems that were counted but not worked out (a file with thousands)."""
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else list(problems)
        if not self.problems:
            raise ValueError("SpecError needs at least one problem")
        self.omitted = omitted
        lines = [str(p) for p in self.problems[:MAX_SHOWN_PROBLEMS]]
        hidden = max(0, len(self.problems) - MAX_SHOWN_PROBLEMS) + omitted
        if hidden:
            lines.append(f"... and {hidden} more problems")
        super().__init__("\n".join(lines))

    @classmethod
    def at(cls, message: str, path: SpecPath = (), location: Location | None = None) -> "SpecError":
        return cls(Problem(message, tuple(path), location))



# What an override is called where it is located in a message: `override KEY` in Python (keyword
# arguments), `--set KEY` on the command line (the CLI sets this while it runs).
OVERRIDE_NAME: contextvars.ContextVar[str] = contextvars.ContextVar("archspec_override_name", default="override")

class LimitError(SpecError):
    """A spec that is valid but beyond a resource limit (parameters, layers, repeats)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A short suffix suggesting the closest known name, or "" when nothing is close."""
    # Never the word itself: `unknown key 'repeat' (did you mean 'repeat'?)` helps no one.
    close = difflib.get_close_matches(str(word), sorted(set(choices) - {str(word)}), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def bare_key_hint(key: Any, value: Any, known: Iterable[str]) -> str:
    """What to add to `unknown key 'KEY'`: a near miss among `known`. For a key written without a
    value, `kernel 3` (a known key, a space, a value) lacks a colon; otherwise, in a flow mapping
    (`{doc: a, b}`) a comma ended the value before it and what follows reads as a key, unless a
    near miss explains a plain word better."""
    known = list(known)
    word, _, rest = str(key).partition(" ")
    if value is None and rest.strip() and word in known:
        return f"; a colon is missing: `{word}: {rest.strip()}`"
    suggestion = did_you_mean(str(key), known)
    if value is not None or (suggestion and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key))):
        return suggestion
    return (f"{suggestion}; it has no value: inside `{{...}}` a comma ends a value, so if it belongs to the value "
            "before it, quote that value (`doc: \"a, b\"`)")


def unknown_name(kind: str, word: str, choices: Iterable[str]) -> str:
    """`unknown block type 'botleneck' (did you mean 'bottleneck'?); known: basic, bottleneck, ...`"""
    choices = sorted(set(choices))
    return f"unknown {kind} '{word}'{did_you_mean(word, choices)}; known: {', '.join(choices)}"


def first_problem(exc: Any) -> str:
    """A pydantic ValidationError's first problem as one line (`out: Input should be greater than
    or equal to 1`): the field's path, without pydantic's names of union members (`constrained-int`,
    `tuple[...]`)."""
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and ("-" in p or "[" in p)))
    return f"{loc}: {first['msg']}" if loc else first["msg"]
