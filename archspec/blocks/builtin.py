"""Imports every built-in family module so that each registers itself.

Every module of this package is imported (in name order), as `ir/ops` does for ops: a new
family is one new file in `archspec/blocks/`, written as a plugin's would be. Not imported:
modules whose name starts with `_` (helpers) and this one.
"""

import importlib
import pkgutil

from . import __path__ as _path

for _module in pkgutil.iter_modules(_path):
    if not _module.name.startswith("_") and _module.name != "builtin":
        importlib.import_module(f"{__package__}.{_module.name}")
