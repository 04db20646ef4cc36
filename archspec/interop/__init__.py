"""Interoperability with other model zoos (torchvision)."""

from .torchvision import InteropError, load_torchvision, to_torchvision

__all__ = ["InteropError", "load_torchvision", "to_torchvision"]
