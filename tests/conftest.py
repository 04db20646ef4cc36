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


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails: a test that would download something fails instead
    (the weights tests use it: `pytestmark = pytest.mark.usefixtures("no_network")`)."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("tests do not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache under a temporary TORCH_HOME; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder
