"""The archspec zoo: one YAML spec per network, named as torchvision names it.

This directory is installed as the package `archspec.specs`; see `archspec.zoo`.
"""
