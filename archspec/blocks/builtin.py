"""Imports every built-in family module so that each registers itself."""

from . import convnext, densenet, inception, layer_sequence, mobile, residual, squeezenet, vgg  # noqa: F401
