"""`init.by_name` globs and `freeze:` patterns against the lowered network, so that a typo is a
located error when the spec is validated rather than a rule that silently does nothing (or, for
`freeze`, an error only once the module is built). An init glob must match a layer it can
initialise (a conv, linear or norm), and a stage may be named as taps name it (`stages.layer4.*`
is `stages.3.*`); a freeze pattern must name a module of the compiled network (a part, a
container, a layer), as `archspec.build` freezes them."""

from __future__ import annotations

import fnmatch
from typing import Any

from ..core.errors import LocatedError, did_you_mean
from ..ir.graph import Network
from .models import fan_based


class InitPathError(LocatedError):
    """An `init.by_name` glob that matches no layer."""


def by_index(pattern: str, net: Network) -> str:
    """`stages.NAME...` with the stage's index for its name; anything else unchanged."""
    bits = pattern.split(".")
    names = [stage.name for stage in net.stages]
    if len(bits) > 1 and bits[0] == "stages" and not bits[1].isdigit() and bits[1] in names:
        bits[1] = str(names.index(bits[1]))
    return ".".join(bits)


def checked_init(init: Any, net: Network, aux_disabled: bool = False) -> Any:
    """`init` (an `InitSpec`) with its globs in index form, once each is seen to match a layer.

    `aux_disabled`: some auxiliary head of the spec is switched off, so a glob under `aux_heads`
    may rightly match nothing here. Likewise a glob under `head` when the network has no head (a
    backbone made with `head=[]`: squeezenet1_1's rule for `head.final_conv` then has nothing to do)."""
    if init is None or not init.by_name:
        return init
    refs = list(net.nodes())
    paths = [ref.path for ref in refs if type(ref.node.op).init_kind is not None]
    every = [ref.path for ref in refs]  # a layer's module may hold modules of its own (attention's out_proj)
    headless = not any(path.startswith("head.") for path in every)
    rules = {}
    for pattern, rule in init.by_name.items():
        glob = by_index(pattern, net)
        bits = glob.split(".")
        inside = any(fnmatch.fnmatchcase(path, ".".join(bits[:k])) for k in range(1, len(bits)) for path in every)
        if not inside and not any(fnmatch.fnmatchcase(path, glob) for path in paths) and not (
                aux_disabled and glob.startswith("aux_heads")) and not (headless and bits[0] == "head"):
            prefixes = sorted({".".join(p.split(".")[:k]) + ".*" for p in paths for k in (1, 2, 3)}
                              | {f"stages.{stage.name}.*" for stage in net.stages} | set(paths))
            shown = ", ".join(paths[:3] + ["..."] if len(paths) > 3 else paths)
            raise InitPathError(f"'{pattern}' matches no conv, linear or norm layer{did_you_mean(pattern, prefixes)}; "
                                f"their paths read like {shown}", ("init", "by_name", pattern))
        if fan_based(rule.weight):  # a norm's weight is one-dimensional: torch refuses to find its fans
            norms = [ref.path for ref in refs if type(ref.node.op).init_kind == "norm"
                     and fnmatch.fnmatchcase(ref.path, glob)]
            if norms:
                raise InitPathError(f"'{pattern}' matches norm layers ({', '.join(norms[:3])}), whose weight has one "
                                    f"dimension: {rule.weight} needs a fan in and a fan out (a conv's or linear's "
                                    "weight); narrow the pattern or use ones, normal(STD)", ("init", "by_name", pattern))
        rules[glob] = rule
    return init.model_copy(update={"by_name": rules})


class FreezePathError(LocatedError):
    """A `freeze:` pattern that names no module of the network."""


def check_freeze(patterns: list[str], net: Network) -> None:
    """Each pattern of the spec's `freeze:` names a module of the compiled network: a layer, or a
    container of layers (`stem`, `stages.0`, `stages.*.blocks.0`); not a module inside a layer
    (attention's `out_proj`), whose parameters analysis does not count apart."""
    if not patterns:
        return
    every = [ref.path for ref in net.nodes()]
    modules = set(every) | {part.path for part in net.parts()}  # a part with no layer is a module too (an empty stem)
    for path in list(modules):
        bits = path.split(".")
        modules.update(".".join(bits[:k]) for k in range(1, len(bits)))
    for i, pattern in enumerate(patterns):
        if any(fnmatch.fnmatchcase(module, pattern) for module in modules):
            continue
        bits = pattern.split(".")
        layer = next((path for k in range(len(bits) - 1, 0, -1) for path in every  # as many parts as the glob's head
                      if path.count(".") == k - 1 and fnmatch.fnmatchcase(path, ".".join(bits[:k]))), None)
        if layer is not None:  # a module of a layer's own (attention's out_proj): not counted apart in summaries
            raise FreezePathError(f"'{pattern}' names a part inside the layer {layer}; freeze: takes layers and the "
                                  f"parts that hold them (summary counts what they freeze): freeze {layer}",
                                  ("freeze", i))
        parts = sorted(m for m in modules if m.count(".") <= 1 and m not in every)
        raise FreezePathError(f"'{pattern}' names no part of the network{did_you_mean(pattern, sorted(modules))}; "
                              f"parts: {', '.join(parts)}", ("freeze", i))
