"""Atomic file output, with the promises of docs/errors.md.

Outputs go to a temporary file beside the target and are moved into place in one rename, so
after any failure (an exception, Ctrl-C, SIGTERM under the CLI) the previous file is intact and
no partial file is left. Only a regular file (or a new name) is ever replaced: a device, a named
pipe, a socket or a directory is refused; a symlink is written *through* (its target is
replaced, the link stays), as the shell's `>` does. A file the output was made from
(`protect`) is never the output.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import ArchspecError
from .reading import file_name, inputs_read, kind_of

PathLike = str | os.PathLike


class OutputError(ArchspecError):
    """An output path archspec will not (or cannot) write; the CLI exits with code 2."""


# Files this process ran as code (`--plugin FILE`): inputs of every command, so of every output's `protect`.
_RUN: list[str] = []


def protect_always(path: PathLike) -> None:
    """Never write an output over `path` in this process (a plugin: its code is an input of every command)."""
    _RUN.append(os.fspath(path))


def _stat_or_none(path: PathLike) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def output_name(path: PathLike) -> str:
    """`path` as a string; OutputError if it is empty. `-o ''` (an unset shell variable, say) is a
    mistake to report, never a request to write nothing, to stdout or to a default name."""
    text = file_name(path)
    if not text.strip():
        raise OutputError("the output file name is empty")
    return text


def output_target(path: PathLike, protect: Iterable[PathLike] = ()) -> Path:
    """The file an output to `path` replaces: `path` itself, or what a symlink there points to.

    Raises OutputError for an empty name, a symlink loop, anything but a regular file, a file in
    `protect` (the inputs: a spec is never overwritten by what was made from it), a plugin file
    this process ran, and any file read inside `reading.inputs_recorded` (every input of a CLI command).
    """
    text = output_name(path)
    if text.endswith(("/", os.sep)):  # realpath would drop the slash and write a file of that name
        raise OutputError(f"{text}: ends in '/', a directory's name; give the name of a file")
    try:
        # Writing through symlinks: the link's target is replaced, the link stays a link.
        target = Path(os.path.realpath(text, strict=False))
        if os.path.islink(target):  # realpath stops at a loop
            raise OutputError(f"{text}: a symlink loop; not writing through it")
        st = _stat_or_none(target)
    except OSError as exc:
        raise OutputError(f"{text}: cannot write: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{text}: is {kind_of(st.st_mode)}; archspec writes only regular files (choose a file name)")
    if st is not None:
        for item in (*protect, *_RUN):
            other = _stat_or_none(item)
            if other is not None and (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                raise OutputError(f"{text}: is an input of this command ({item}); an input is never overwritten, "
                                  "choose another output name")
        if (st.st_dev, st.st_ino) in inputs_read():
            raise OutputError(f"{text}: is an input of this command (a file it read); an input is never "
                              "overwritten, choose another output name")
    return target


def output_directory(path: PathLike) -> Path:
    """A folder outputs go into: an existing directory or a new name; OutputError for anything else
    (a file, a named pipe, a device) or an empty name."""
    text = output_name(path)
    try:
        st = os.stat(text)
    except FileNotFoundError:
        return Path(text)
    except NotADirectoryError:
        raise OutputError(f"{text}: cannot write: a part of its path is a file, not a directory") from None
    except OSError as exc:
        raise OutputError(f"{text}: cannot write: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{text}: is {kind_of(st.st_mode)}, not a directory")
    return Path(text)


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "", protect: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside the target; on success it replaces the target in one rename.

    `suffix` ends the temporary name, for writers that insist on one (torch.export: `.pt2`).
    See `output_target` for what is refused. OS errors (a read-only folder, a name too long,
    a full disk) become OutputError naming `path`.
    """
    target = output_target(path, protect)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=f".tmp{suffix}", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{os.fspath(path)}: cannot write: {exc.strerror or exc}") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would (or keep the old file's).
        old = _stat_or_none(target)
        os.chmod(tmp_path, old.st_mode & 0o777 if old is not None else 0o666 & ~_umask())
        output_target(path, protect)  # the target may have changed while the output was made
        os.replace(tmp_path, target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise OutputError(f"{os.fspath(path)}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: PathLike, data: bytes | str, protect: Iterable[PathLike] = ()) -> None:
    with atomic_path(path, protect=protect) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def write_with(path: PathLike, writer: Callable[[Path], None], suffix: str = "",
               protect: Iterable[PathLike] = ()) -> None:
    """Let `writer` write to a temporary file (named ending in `suffix`), then move it into place."""
    with atomic_path(path, suffix, protect) as tmp:
        writer(tmp)
