"""Imports every built-in family module so that each registers itself."""

from . import (  # noqa: F401
    convnext,
    densenet,
    inception,
    layer_sequence,
    mobile,
    parts,
    regnet,
    reparam,
    residual,
    shufflenet,
    squeezenet,
    vgg,
)
