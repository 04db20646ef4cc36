"""The built-in primitive ops. Importing this package registers them all; look ops up here.

Every module of this package is imported (in name order), so that a new op is one new file
here (see "Adding an op" in docs/architecture.md). Not imported: modules whose name starts
with `_` (helpers) and `torch_modules` (torch code that the torch backend imports by name).
"""

import importlib
import pkgutil

from ...core.errors import ArchspecError, unknown_name
from ..op import OPS, Op

NOT_OPS = ("torch_modules",)
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in NOT_OPS:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OPS", "op_class"]


def op_class(kind: str) -> type[Op]:
    """The op registered as `kind` (built-in, or by a plugin's `@register_op`)."""
    try:
        return OPS[kind]
    except KeyError:
        raise ArchspecError(unknown_name("layer type", kind, OPS)) from None
