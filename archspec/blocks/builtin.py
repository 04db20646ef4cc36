"""Imports every built-in family module so that each registers itself."""

from . import inception, layers, residual, vgg  # noqa: F401
