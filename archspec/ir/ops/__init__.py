"""The built-in primitive ops. Importing this package registers them all."""

from . import activation, channels, conv, linear, merge, norm, pool, regularize, resize, shape  # noqa: F401
