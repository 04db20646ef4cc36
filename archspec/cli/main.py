"""`archspec` entry point: parses arguments, calls the API, maps errors to exit codes.

Exit codes: 0 success, 1 internal error, 2 bad spec or bad input, 3 a missing
optional package or external tool (Graphviz's `dot`), 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator

from ..core.deps import as_missing
from ..core.errors import OVERRIDE_NAME, ArchspecError, SpecError, printable
from ..core.reading import inputs_recorded

# One module `cmd_<name>.py` per command, each with `register(subparsers)`.
COMMANDS = ["build", "validate", "list", "summary", "rf", "compare", "diagram", "export", "predict", "schema", "sweep"]

EPILOG = textwrap.dedent("""\
    examples:
      archspec build specs/vgg19.yaml                  compile, print the table and totals
      archspec build specs/resnet50.yaml --set num_classes=10 -o resnet50.safetensors
      archspec validate specs/*.yaml                   check specs, report every problem
      archspec list                                    the zoo, with parameter counts
      archspec summary resnet50 --json                 per-layer shapes, MACs, receptive field
      archspec export resnet50 -o resnet50.py          standalone PyTorch source (.onnx, .pt2 too)
      archspec predict resnet50 cat.jpg                top-5 categories with torchvision's published weights
      archspec sweep space.yaml -o population.csv      sample a design space, keep networks within bounds

    Run `archspec COMMAND --help` for the options and an example of each command.
    A SPEC is a path to a YAML file or the name of a zoo network (see `archspec list`). A bare
    zoo name (resnet50) is always the zoo's, even beside a file of that name: write ./resnet50.
""")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="archspec",
        description="A declarative architecture compiler for convolutional networks: "
                    "YAML spec -> PyTorch module, analysis, diagrams, exports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--debug", action="store_true", help="show the Python traceback of errors")
    top.add_argument("-q", "--quiet", action="store_true",
                     help="no progress display (it is drawn only when standard error is a terminal anyway)")
    top.add_argument("--version", action="version", version=f"archspec {_version()}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".cmd_{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.cmd_{name}":
                continue
            raise
        module.register(sub)
    for command in sub.choices.values():  # `archspec export ... --quiet` reads as well as `archspec --quiet export`
        command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                             help="no progress display (drawn only when standard error is a terminal)")
    return top


def _version() -> str:
    from .. import __version__

    return __version__


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that `finally` blocks (temporary files) run."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """While a command runs, SIGTERM unwinds like Ctrl-C does instead of killing the process outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker (sweep -j): die as it would have, quietly
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(text: str) -> None:
    print(printable(text, keep="\n"), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one place where exceptions become exit codes: 2 for a bad spec or
    bad input (one located line, no traceback), 3 for a missing optional package or tool,
    130 / 143 for Ctrl-C / SIGTERM, 1 for a bug in archspec."""
    top = parser()
    args = top.parse_args(argv)
    if not getattr(args, "run", None):
        top.print_help()
        return 0
    from ..progress import set_quiet

    set_quiet(args.quiet)
    named = OVERRIDE_NAME.set("--set")  # an override is located as the flag that gave it
    try:
        with _terminate_as_exception(), inputs_recorded():  # no output of the command replaces a file it read
            return int(args.run(args) or 0)
    except SpecError as exc:
        if args.debug:
            raise
        _error(str(exc))
        return 2
    except ArchspecError as exc:
        if args.debug:
            raise
        _error(f"archspec: error: {exc}")
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        _error("archspec: interrupted")
        return 130
    except Terminated:
        _error("archspec: terminated")
        return 143
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as exc:  # an optional package imported without deps.require: still exit 3
        found = as_missing(exc, f"archspec {args.command}")
        if found is None or args.debug:
            raise
        _error(f"archspec: error: {found}")
        return 3
    except Exception as exc:  # an archspec bug, not a user error
        if args.debug:
            raise
        _error(f"archspec: internal error: {type(exc).__name__}: {exc}\n"
               f"(run with --debug for the traceback, and please report it)")
        return 1
    finally:
        OVERRIDE_NAME.reset(named)


if __name__ == "__main__":
    sys.exit(main())
