"""Squeeze-and-excitation (Hu et al., 2018), written once for every family that gates channels."""

from __future__ import annotations

from ..ir.builder import GraphBuilder, Value


def squeeze_excitation(b: GraphBuilder, x: Value, squeeze: int, act: str = "relu", gate: str = "sigmoid") -> Value:
    """`x * gate(fc2(act(fc1(avgpool(x)))))`, torchvision's `SqueezeExcitation`.

    fc1 and fc2 are 1x1 convolutions with bias (`squeeze` hidden channels). The
    squeeze path is named `se.pool`, `se.fc1`, `se.act`, `se.fc2`, `se.gate` (one
    `se` submodule in torch) and the channel-wise product `se_scale`.
    """
    with b.scope("se", title="squeeze-excitation"):
        s = b.op("global_pool", x, name="pool", type="avg")
        s = b.conv(s, name="fc1", out=squeeze, kernel=1, bias=True)
        s = b.act(s, name="act", type=act)
        s = b.conv(s, name="fc2", out=x.channels, kernel=1, bias=True)
        s = b.act(s, name="gate", type=gate)
    return b.mul(x, s, name="se_scale")
