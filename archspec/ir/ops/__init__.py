"""The built-in primitive ops. Importing this package registers them all; look ops up here."""

from ...core.errors import ArchspecError, unknown_name
from ..op import OPS, Op
from . import activation, channels, conv, linear, merge, norm, pool, regularize, resize, shape  # noqa: F401

__all__ = ["OPS", "op_class"]


def op_class(kind: str) -> type[Op]:
    """The op registered as `kind` (built-in, or by a plugin's `@register_op`)."""
    try:
        return OPS[kind]
    except KeyError:
        raise ArchspecError(unknown_name("layer type", kind, OPS)) from None
