"""Reading input files: only regular files (a named pipe would block forever, a device never
end), and never more than a bound."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextvars import ContextVar

from .errors import ArchspecError, ArgumentError

PathLike = str | os.PathLike


class InputFileError(ArchspecError):
    """An input that is not a readable regular file of bounded size. `reason` omits the path."""

    def __init__(self, path: PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def file_name(path: object) -> str:
    """`path` as a string, if it is a file name at all (a str or os.PathLike); ArgumentError if not."""
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if isinstance(text, str) and "\x00" not in text:
            return text
    raise ArgumentError(f"a file name is a str or a Path, not {path!r}"[:200])


# The files read while a command runs (`inputs_recorded`), as (device, inode): every output of the
# command refuses them (core.atomic), whatever option named the output and whatever file the input was.
_READ: ContextVar[set[tuple[int, int]] | None] = ContextVar("archspec_inputs_read", default=None)


@contextlib.contextmanager
def inputs_recorded() -> Iterator[set[tuple[int, int]]]:
    """Record every input file read or checked inside the block (the CLI wraps each command in one)."""
    read: set[tuple[int, int]] = set()
    token = _READ.set(read)
    try:
        yield read
    finally:
        _READ.reset(token)


def inputs_read() -> frozenset[tuple[int, int]]:
    """The (device, inode) of every input read so far inside `inputs_recorded` (empty outside one)."""
    return frozenset(_READ.get() or ())


def _record(st: os.stat_result) -> None:
    read = _READ.get()
    if read is not None:
        read.add((st.st_dev, st.st_ino))


def kind_of(mode: int) -> str:
    """`a directory`, `a named pipe`, ... for what a stat mode describes (`a regular file` for one)."""
    for test, word in _KINDS:
        if test(mode):
            return word
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def path_state(path: PathLike) -> os.stat_result | None:
    """The stat of `path` (links followed), None when nothing is there (a dangling link included);
    InputFileError when it cannot be looked at (a name too long, a symlink loop, no permission)."""
    try:
        return os.stat(file_name(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise InputFileError(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def check_regular(path: PathLike) -> os.stat_result:
    """The stat of `path` if it is a regular file; InputFileError otherwise (missing, a pipe, ...)."""
    try:
        st = os.stat(file_name(path))
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(path, f"is {kind_of(st.st_mode)}, not a regular file")
    _record(st)
    return st


def read_regular(path: PathLike, max_bytes: int) -> bytes:
    """At most `max_bytes + 1` bytes of the regular file `path` (one more than allowed tells the
    caller it is too large). Opened without blocking, so a named pipe is refused, not waited on."""
    try:
        fd = os.open(file_name(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a regular file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(path, f"is {kind_of(st.st_mode)}, not a regular file")
        _record(st)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
