"""Outputs are written atomically: after a failure midway the previous file is intact and nothing is left over."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.core.atomic import atomic_path, write_atomic, write_with


class WriterFailed(Exception):
    pass


def half_then_fail(tmp: Path) -> None:
    with open(tmp, "wb") as f:
        f.write(b"partial output")
        f.flush()
        raise WriterFailed("disk full")


def test_failing_writer_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"previous")
    with pytest.raises(WriterFailed):
        write_with(target, half_then_fail)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_failing_writer_creates_no_file_where_there_was_none(tmp_path: Path) -> None:
    target = tmp_path / "new" / "diagram.svg"
    with pytest.raises(WriterFailed):
        write_with(target, half_then_fail)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_interrupt_midway_is_handled_like_a_failure(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    target.write_text("{}", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text('{"half": ', encoding="utf-8")
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]


def test_success_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_schema_command_failure_keeps_the_previous_schema(tmp_path: Path, monkeypatch) -> None:
    from tests.clirun import run_cli

    from archspec.spec import schema

    target = tmp_path / "archspec.schema.json"
    target.write_text("previous", encoding="utf-8")

    def broken(*args, **kwargs):
        raise WriterFailed("generation failed")

    monkeypatch.setattr(schema, "schema_text", broken)
    with pytest.raises(WriterFailed):
        run_cli("--debug", "schema", "-o", str(target))
    assert target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["archspec.schema.json"]


def test_checkpoint_save_failing_midway_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """`archspec build -o` / `archspec.save` write through the same path."""
    import safetensors.torch

    import archspec

    target = tmp_path / "net.safetensors"
    target.write_bytes(b"previous checkpoint")
    model = archspec.build("name: tiny\ninput: {channels: 1, size: 8}\nhead: [flatten, {linear: 2}]\n")

    def save_half(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a checkpoint")
        raise WriterFailed("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", save_half)
    with pytest.raises(WriterFailed):
        archspec.save(model, target)
    assert target.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]


def test_atomic_output_has_the_mode_of_a_plain_write(tmp_path) -> None:
    import os

    from archspec.core.atomic import write_atomic

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_atomic(atomic, "x")
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    os.chmod(atomic, 0o640)
    write_atomic(atomic, "y")  # replacing keeps the existing file's mode
    assert os.stat(atomic).st_mode & 0o777 == 0o640
