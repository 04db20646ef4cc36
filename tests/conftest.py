"""Test configuration: tests run from the repository root; torch threads are limited to what CI has.

Test-only block families are registered by fixtures, never on import, so no test sees them
unless its module asks (`pytestmark = pytest.mark.usefixtures("test_paths_family")`).
"""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def test_paths_family():
    """The `test_paths` block family (tests/analysis_helpers.py) for the module that uses it."""
    from tests.analysis_helpers import Paths, registered

    with registered(test_paths=Paths):
        yield
