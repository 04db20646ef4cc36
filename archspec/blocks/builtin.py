"""Imports every built-in family module so that each registers itself."""

from . import convnext, densenet, layers, residual, squeezenet, vgg  # noqa: F401
