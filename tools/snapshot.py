"""Fingerprint what users see of every zoo spec, to prove a refactor changes none of it.

    python tools/snapshot.py > before.txt        # on the base commit
    python tools/snapshot.py > after.txt         # on the refactored tree
    diff before.txt after.txt                    # empty: nothing a user sees changed

One line per zoo spec and view: `name view sha256`. Views: `python` (the exported Python
source), `summary` (`archspec summary NAME --json`), `summary-text` (`--depth layer`), `dot-stage/block/layer` (the diagram's
DOT source at each level). `--torch` adds `state` (state_dict keys, shapes and dtypes of
`archspec.build`, built without initialising weights) and `modules` (the module's repr and
the generated forward code of every fx submodule). Only public entry points are used,
so the script runs unchanged on both sides of a refactor.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import archspec
from archspec import zoo
from archspec.cli.main import main as cli_main


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _cli_stdout(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(argv)
    if code != 0:
        raise SystemExit(f"archspec {' '.join(argv)} exited with {code}")
    return out.getvalue()


def views(name: str, torch: bool) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.py"
        archspec.export(name, path, "python")
        found = {"python": _sha(path.read_bytes())}
    found["summary"] = _sha(_cli_stdout(["summary", name, "--json"]))
    found["summary-text"] = _sha(_cli_stdout(["summary", name, "--depth", "layer"]))
    for level in ("stage", "block", "layer"):
        found[f"dot-{level}"] = _sha(archspec.diagram(name, level, show="params,macs,rf").source)
    if torch:
        model = archspec.build(name, init_weights=False)
        found["state"] = _sha("\n".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in model.state_dict().items()))
        code = [f"{path}\n{m.code}" for path, m in model.named_modules() if hasattr(m, "code")]
        found["modules"] = _sha(repr(model) + "\n".join(code))
    return found


def _safe(name: str, torch: bool) -> dict[str, str]:
    """`views`, or one `error` line naming the exception (a bug on both sides compares equal)."""
    try:
        return views(name, torch)
    except Exception as exc:
        return {"error": _sha(f"{type(exc).__name__}: {exc}")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="zoo names (default: all)")
    p.add_argument("--torch", action="store_true", help="also fingerprint the built module's state_dict layout")
    args = p.parse_args()
    for name in args.names or zoo.names():
        for view, digest in _safe(name, args.torch).items():
            print(f"{name} {view} {digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
