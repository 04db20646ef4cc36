"""Package discovery only; everything else lives in pyproject.toml.

The zoo directory `specs/` is installed as the package `archspec.specs`, so the
repository's zoo and the installed one are the same files.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["archspec", "archspec.*"]) + ["archspec.specs"],
    package_dir={"archspec.specs": "specs"},
    package_data={"archspec.specs": ["*.yaml"]},
)
