"""Pieces shared by the commands: spec arguments, loading, number formatting, JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..core.formatting import human, human_bytes, shape_text, table  # noqa: F401  (the commands' helpers)

if TYPE_CHECKING:  # the parser is built without pydantic or the IR: `archspec --help` stays fast
    from ..spec.load import Spec


def add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key, e.g. --set num_classes=10 --set input.size=[32,32] "
                        "--set scale.width=1.5 (repeatable; the value is read as YAML)")
    p.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE",
                   help="import a Python file or module first, e.g. one that registers block types "
                        "with @register_block (repeatable)")


def add_weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="NAME|FILE|URL",
                   help="load published weights: an entry of the spec's `weights:` (e.g. IMAGENET1K_V2), DEFAULT, "
                        "a file or a URL (downloaded once into torch's hub cache, $TORCH_HOME)")


@contextlib.contextmanager
def quiet_weights() -> Iterator[None]:
    """The weights report is printed by the command: no Python warning beside it."""
    import warnings

    from ..api import WeightsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        yield


def weights_report(model: Any) -> None:
    """Say on stderr what loading the weights did (which tensors did not load, and why)."""
    report = getattr(model, "archspec_weights", None)
    if report is not None:
        print(report, file=sys.stderr)


def add_input_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", metavar="CxHxW", help="input size, e.g. 3x224x224 or 224x224 (default: the spec's)")


LEVELS = ("stage", "block", "layer")


def add_level_option(p: argparse.ArgumentParser, default: str, help: str) -> None:
    """--level, the level of detail, in every command that has one (`--depth` is its old name in summary)."""
    p.add_argument("--level", dest="level", choices=LEVELS, default=default, help=help)
    p.add_argument("--depth", dest="level", choices=LEVELS, help=argparse.SUPPRESS)  # the old name, for scripts


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size for the activation memory (default: 1)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64", "int8"],
                   help="value type for the activation memory (default: float32)")


def param_limit(text: str) -> float:
    """`--max-params`: a positive number (`2e9`, `inf` for no limit); argparse reports anything else."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:  # refuses nan too
        raise argparse.ArgumentTypeError(f"must be a positive number (or inf), got {text!r}")
    return value


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    from ..api import parse_assignment

    out: dict[str, Any] = {}
    for text in getattr(args, "overrides", []) or []:
        key, value = parse_assignment(text)
        out[key] = value
    if getattr(args, "input", None):
        from ..api import input_overrides

        try:
            out.update(input_overrides(args.input))
        except ValueError as exc:
            from ..core.errors import ArgumentError

            raise ArgumentError(f"--input: {exc}") from None
    return out


def check_output_names(*names: str | None) -> None:
    """Refuse an output before any work, as the writers would after it: an empty name (`-o ''`),
    a device, a named pipe, a directory, a symlink loop, or a file this command has read so far
    (its inputs); None is an option not given."""
    from ..core.atomic import output_target

    for name in names:
        if name is not None:
            output_target(name)


def check_output_directory(name: str | None) -> None:
    """`--emit DIR` before any work: a directory or a new name, nothing else (a file, a named pipe)."""
    from ..core.atomic import output_directory

    if name is not None:
        output_directory(name)


def load(spec: str, args: argparse.Namespace) -> Spec:
    from ..api import load_spec
    from ..plugins import load_plugins

    load_plugins(getattr(args, "plugins", []) or [])
    return load_spec(spec, **overrides(args))


def analyze(spec: str, args: argparse.Namespace):
    """Load SPEC with the command's overrides and analyse it (the IR only; no torch)."""
    from ..api import analyze as _analyze

    return _analyze(load(spec, args), batch=getattr(args, "batch", 1), dtype=getattr(args, "dtype", "float32"),
                    deploy=getattr(args, "deploy", False))


def say(text: str) -> None:
    """Print a line of output: every name in it (a file name, a network's, a metrics column) comes
    from the input, so control characters are escaped (`\x1b`) and only the line breaks of `text` stay."""
    from ..core.errors import printable

    print(printable(text, keep="\n"))


def note(text: str) -> None:
    """Print a note to standard error (`wrote FILE`, `note: ...`), escaped as `say` does."""
    from ..core.errors import printable

    print(printable(text, keep="\n"), file=sys.stderr)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False)  # strict JSON: no Infinity or NaN tokens
    sys.stdout.write("\n")
