"""Run one unit of documentation blocks in the current (scratch) directory: `python docdriver.py
STEPS.json RESULTS.json` (tests/test_docs.py writes STEPS and reads RESULTS).

Python blocks share one namespace, as a reader pasting them into one session would; transcripts run
in one bash process each, so `cd` and `$?` carry from line to line as in a terminal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import traceback

END = "@@DOC-END"
SPLIT = re.compile(rf"\n?{END} (\d+) (-?\d+)@@\n")


def python_step(code: str, where: str, line: int, ns: dict) -> dict:
    """Exec CODE in NS; what it prints, and the exception it raised (its last line and traceback)."""
    buf = io.StringIO()
    error = trace = None
    try:
        compiled = compile("\n" * line + code, where.split(":")[0], "exec")
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compiled, ns)
    except BaseException as e:  # a doc's block may raise anything (SystemExit too): report it
        error = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]
        trace = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return {"out": buf.getvalue(), "error": error, "trace": trace}


def transcript_step(cmds: list[str]) -> dict:
    """Run the commands in one bash, stderr into stdout; each command's output and exit status."""
    script = ["exec 2>&1"]
    for i, cmd in enumerate(cmds):
        script += [cmd, f"__rc=$?; printf '\\n{END} {i} %d@@\\n' \"$__rc\"; (exit $__rc)"]
    p = subprocess.run(["bash", "-c", "\n".join(script)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       text=True, errors="replace")
    parts = SPLIT.split(p.stdout)
    results = [{"out": "", "rc": None} for _ in cmds]
    for k in range(1, len(parts) - 1, 3):
        results[int(parts[k])] = {"out": parts[k - 1], "rc": int(parts[k + 1])}
    return {"commands": results, "rest": parts[-1]}


def script_step(code: str) -> dict:
    p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace")
    return {"out": p.stdout, "rc": p.returncode}


def main(steps_path: str, results_path: str) -> None:
    steps = json.loads(open(steps_path, encoding="utf-8").read())
    sys.path.insert(0, os.getcwd())  # `from resnet50 import Resnet50` after an export, as in a shell
    ns: dict = {"__name__": "__main__"}
    results = []
    for step in steps:
        if step["kind"] == "python":
            results.append(python_step(step["code"], step["where"], step["line"], ns))
        elif step["kind"] == "transcript":
            results.append(transcript_step(step["commands"]))
        else:
            results.append(script_step(step["code"]))
        with open(results_path, "w", encoding="utf-8") as f:  # after each step: a timeout keeps the rest
            json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
