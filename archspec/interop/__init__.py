"""Interoperability with other model zoos (torchvision, and PyTorch models of the same architecture)."""

from .torchvision import InteropError, load_state_dict_from, load_torchvision, to_torchvision

__all__ = ["InteropError", "load_state_dict_from", "load_torchvision", "to_torchvision"]
