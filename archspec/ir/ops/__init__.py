"""The built-in primitive ops. Importing this package registers them all."""

from . import activation, channels, conv, linear, merge, norm, pool, regularize, shape  # noqa: F401
