"""Every deliberate error is an ArchspecError, errors below the spec language carry their
origin in one type (LocatedError), and a bug inside a block family is reported as an internal
error naming the family, not as a mistake in the user's spec (issue 22)."""

from __future__ import annotations

import inspect

import pytest

import archspec
from archspec.blocks import BlockContext, BlockFamily
from archspec.core.errors import ArchspecError, BlockError, InternalError, LocatedError, SpecError
from archspec.ir.builder import GraphBuilder, NodeShapeError, Value
from archspec.ir.output_stride import StrideError
from archspec.ir.taps import TapError
from archspec.spec.expr import ExprError
from archspec.spec.lower import LoweringError
from archspec.spec.lower_parts import PartError
from archspec.sweeps.regnet import RegNetError
from tests.analysis_helpers import registered
from tests.clirun import run_cli


@pytest.mark.parametrize("cls", [TapError, StrideError, PartError, LoweringError, NodeShapeError])
def test_errors_that_carry_an_origin_are_one_type(cls):
    assert issubclass(cls, LocatedError) and issubclass(cls, ArchspecError)


@pytest.mark.parametrize("cls", [ExprError, RegNetError, BlockError, TapError, StrideError])
def test_deliberate_errors_are_archspec_errors_and_still_value_errors(cls):
    assert issubclass(cls, ArchspecError) and issubclass(cls, ValueError)


def test_an_internal_error_is_not_an_archspec_error():
    assert not issubclass(InternalError, ArchspecError)


class _IndexBug(BlockFamily):
    out: int = 8

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        return b.conv(x, out=self.out, kernel=[1, 3][ctx.index + 5])  # BUG: index out of range


class _UnpackBug(BlockFamily):
    out: int = 8

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        kh, _kw = (3, 3, 3)  # BUG: a ValueError, which used to be blamed on the spec
        return b.conv(x, out=self.out, kernel=kh)


class _Refuses(BlockFamily):
    out: int = 8

    def emit(self, b: GraphBuilder, x: Value, ctx: BlockContext) -> Value:
        if x.channels != self.out:
            raise BlockError(f"the input must have {self.out} channels, not {x.channels}")
        return x


SPEC = """\
name: probe
input: {channels: 3, size: 16}
stages:
  - {block: %s, out: 8}
head: []
"""


def _line_of(cls: type, marker: str) -> int:
    lines, first = inspect.getsourcelines(cls)
    return first + next(i for i, line in enumerate(lines) if marker in line)


@pytest.mark.parametrize("family, bug", [(_IndexBug, "IndexError"), (_UnpackBug, "ValueError")])
def test_a_bug_inside_a_family_is_an_internal_error_naming_it(tmp_path, family, bug):
    with registered(buggy=family):
        with pytest.raises(InternalError) as caught:
            archspec.load_spec(SPEC % "buggy").network()
        message = str(caught.value)
        assert f"block type 'buggy' ({__name__}.{family.__qualname__})" in message
        assert f"{__file__}:{_line_of(family, '# BUG')}: {bug}" in message
        assert "bug in the block family, not a problem of the spec" in message
        assert type(caught.value.__cause__).__name__ == bug  # the original, for the traceback
        path = tmp_path / "probe.yaml"
        path.write_text(SPEC % "buggy")
        code, _, err = run_cli("summary", str(path))
    assert code == 1
    assert err.startswith("archspec: internal error: InternalError: block type 'buggy'")
    assert "probe.yaml" not in err  # not located in the user's file as if it were wrong


def test_a_block_error_is_located_at_the_stage(tmp_path):
    path = tmp_path / "probe.yaml"
    path.write_text(SPEC % "refuses")
    with registered(refuses=_Refuses):
        with pytest.raises(SpecError) as caught:
            archspec.load_spec(path).network()
        code, _, err = run_cli("summary", str(path))
    assert str(caught.value) == f"{path}:4:5: stages[0]: refuses: the input must have 8 channels, not 3"
    assert code == 2 and err.strip() == str(caught.value)


def test_a_tap_error_reaches_the_user_located():
    with pytest.raises(SpecError, match=r"^<string>:1:32: features\[0\]: no stage 'stage9'; valid there: 0, 1, 2, 3$"):
        archspec.load_spec("{extends: resnet18, features: [stages.stage9]}").network()
