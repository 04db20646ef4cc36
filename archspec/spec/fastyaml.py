"""Faster YAML composing: libyaml (C) scans and parses, PyYAML's Python composer builds nodes.

Scanning is most of PyYAML's time; doing it in C makes loading a spec about 8x
faster. Composing stays in the given Python loader class, so its overrides (a depth
limit, say) still apply and deep nesting raises RecursionError instead of
overflowing the C stack as libyaml's own composer does. On any problem the caller
re-parses with the pure-Python loader, so error messages and locations are PyYAML's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml


@cache
def with_libyaml(loader: type) -> type | None:
    """`loader` (a PyYAML loader class) taking its events from libyaml, or None without libyaml."""
    cparser = getattr(getattr(yaml, "_yaml", None), "CParser", None)
    if cparser is None:
        return None

    class Hybrid(cparser, loader):  # type: ignore[misc, valid-type]
        def __init__(self, stream: str, *args: Any, **kwargs: Any):
            loader.__init__(self, stream, *args, **kwargs)
            cparser.__init__(self, stream)

        # CParser has its own C composer under these names; keep the Python one.
        get_single_node = loader.get_single_node
        get_node = loader.get_node
        check_node = loader.check_node

    Hybrid.__name__ = Hybrid.__qualname__ = f"Libyaml{loader.__name__}"
    return Hybrid


def compose(loader: type, text: str, *args: Any) -> tuple[Any, yaml.Node] | None:
    """(loader instance, root node) of a one-document `text` composed with libyaml's
    help, or None when libyaml is missing, the document is empty or anything fails
    (the caller then takes the pure-Python path and reports the problem)."""
    fast = with_libyaml(loader)
    if fast is None:
        return None
    instance = fast(text, *args)
    try:
        node = instance.get_single_node()
    except Exception:  # noqa: BLE001  (the pure-Python path reproduces and reports it)
        instance.dispose()
        return None
    if node is None:
        instance.dispose()
        return None
    return instance, node
