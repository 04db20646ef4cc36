"""Test configuration: tests run from the repository root; torch threads are limited to what CI has."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
