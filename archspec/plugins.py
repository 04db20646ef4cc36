"""Importing user code that registers block types (`@register_block`) or ops (`@register_op`).

    archspec build net.yaml --plugin my_blocks.py      # a file
    archspec build net.yaml --plugin mypackage.blocks  # an importable module
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from .core.atomic import protect_always
from .core.errors import ArchspecError
from .core.reading import InputFileError, check_regular


class PluginError(ArchspecError):
    pass


def load_plugins(names: Iterable[str]) -> None:
    """Import each file or module once; a failure is reported with the plugin's name."""
    for name in names:
        path = Path(name)
        try:
            if name.endswith(".py"):
                try:
                    check_regular(path)  # a named pipe would block the import forever
                except InputFileError as exc:
                    raise PluginError(f"--plugin {name}: {exc.reason}") from None
                key = f"archspec_plugin_{abs(hash(str(path.resolve())))}"
                if key in sys.modules:
                    continue
                protect_always(path)  # its code is an input: never an output of this command
                spec = importlib.util.spec_from_file_location(key, path)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # spec_from_file_location returns a spec for an existing .py file
                sys.modules[key] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]  # a file spec always has a loader
            else:
                origin = getattr(importlib.import_module(name), "__file__", None)
                if origin:
                    protect_always(origin)
        except PluginError:
            raise
        except ImportError as exc:
            raise PluginError(f"--plugin {name}: {exc}") from None
        except SystemExit as exc:  # a plugin may not end archspec (with exit 0, and the spec never checked)
            sys.modules.pop(f"archspec_plugin_{abs(hash(str(path.resolve())))}", None)
            raise PluginError(f"--plugin {name}: called sys.exit({exc.code!r}) while being imported") from None
        except Exception as exc:
            sys.modules.pop(f"archspec_plugin_{abs(hash(str(path.resolve())))}", None)
            raise PluginError(f"--plugin {name}: {type(exc).__name__}: {exc}") from None
