"""Imports every built-in family module so that each registers itself."""

from . import inception, layers, mobile, residual, vgg  # noqa: F401
