"""The channel ops ShuffleNet needs: `split` and `channel_shuffle`, against torch and torchvision."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.shufflenetv2 import channel_shuffle

from archspec.backends.torch_module import instantiate
from archspec.core.errors import ArchspecError
from archspec.ir.builder import GraphBuilder
from archspec.ir.op import RF
from archspec.ir.ops import op_class


def test_channel_shuffle_is_torchvisions() -> None:
    op = op_class("channel_shuffle")(groups=4)
    assert op.out_shape([(16, 5, 7)]) == (16, 5, 7)
    assert op.params([(16, 5, 7)]) == op.macs([(16, 5, 7)], (16, 5, 7)) == 0
    assert op.rf([RF((3, 3), (2, 2), (1, 1))], [(16, 5, 7)]) == RF((3, 3), (2, 2), (1, 1))
    x = torch.randn(2, 16, 5, 7)
    assert torch.equal(instantiate(op.torch([(16, 5, 7)]))(x), channel_shuffle(x, 4))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_split_is_torch_chunk(index: int) -> None:
    op = op_class("split")(parts=3, index=index)
    assert op.out_shape([(12, 4, 4)]) == (4, 4, 4)
    x = torch.randn(2, 12, 4, 4)
    assert torch.equal(instantiate(op.torch([(12, 4, 4)]))(x), x.chunk(3, dim=1)[index])


def test_channel_ops_refuse_what_does_not_divide() -> None:
    b = GraphBuilder((6, 4, 4))
    with pytest.raises(ArchspecError, match="divisible by 4"):
        b.op("channel_shuffle", b.input, groups=4)
    with pytest.raises(ArchspecError, match="divisible by 4"):
        b.op("split", b.input, parts=4, index=0)
    with pytest.raises(ValueError, match="out of range"):
        op_class("split")(parts=2, index=2)
