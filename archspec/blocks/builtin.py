"""Imports every built-in family module so that each registers itself."""

from . import convnext, densenet, inception, layers, mobile, residual, squeezenet, vgg  # noqa: F401
