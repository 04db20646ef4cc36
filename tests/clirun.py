"""Run the CLI in-process and capture what it prints (shared by the tests)."""

from __future__ import annotations

import contextlib
import io

from archspec.cli.main import main


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`archspec ARGV...` -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
