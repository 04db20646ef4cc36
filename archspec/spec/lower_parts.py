"""Lowering necks and heads: each part's graph, reading the values its `in:` names, in an order
where every part runs after everything it reads (a cycle between parts is a located error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..core.formatting import shape_text
from ..core.errors import ArchspecError, LocatedError, SpecPath, family_bug, first_problem
from ..ir.builder import GraphBuilder, NodeLimitError, NodeShapeError
from ..ir.graph import PART_GROUPS, Attached, Graph, Network
from ..ir.taps import Tap, resolve
from .families import BlockContext


class PartError(LocatedError):
    """A neck or head that cannot be built as written; `origin` is where in the spec."""


@dataclass
class Budget:
    """What the network's limits leave to its necks and heads: layers, and loop iterations and nested blocks."""

    nodes: int | None = None
    steps: int | None = None


def _reads(source: str) -> str | None:
    """The part a source names (`necks.fpn.0` -> `necks.fpn`), or None."""
    bits = source.split(".")
    return f"{bits[0]}.{bits[1]}" if bits[0] in PART_GROUPS and len(bits) > 1 else None


def _order(specs: dict[str, tuple[str, str, Any]]) -> list[str]:
    """The parts in an order that runs each after the parts it reads; a cycle is an error.
    A depth-first walk with its own stack: a chain of thousands of necks is no recursion."""
    order: list[str] = []
    state: dict[str, str] = {}
    for root in specs:
        if state.get(root) == "done":
            continue
        state[root] = "open"
        trail = [root]
        stack = [iter(specs[root][2].sources)]
        while stack:
            read = next((r for r in map(_reads, stack[-1]) if r in specs and state.get(r) != "done"), None)
            if read is None:
                key = trail.pop()
                stack.pop()
                state[key] = "done"
                order.append(key)
            elif state.get(read) == "open":
                cycle = trail[trail.index(read):] + [read]
                raise PartError("a cycle between parts: " + " reads ".join(cycle), specs[read][:2])
            else:
                state[read] = "open"
                trail.append(read)
                stack.append(iter(specs[read][2].sources))
    return order


def _shape(tap: Tap, net: Network, parts: dict[str, Attached]) -> tuple[int, ...]:
    if tap.part == "input":
        return net.input_shape
    if tap.graph_path in parts:
        return parts[tap.graph_path].graph.shape_of(tap.node)
    graphs = {part.path: part.graph for part in net.parts()}
    return graphs[tap.graph_path].shape_of(tap.node)


def lower_parts(spec: Any, net: Network, budget: Budget | None = None) -> list[Attached]:
    """The IR of the spec's necks and heads, in the order they run, within `budget` (what the network's
    limits leave; NodeLimitError beyond it)."""
    budget = budget or Budget()
    specs = {f"{group}.{name}": (group, name, part)
             for group in PART_GROUPS for name, part in getattr(spec, group).items() if part is not None}
    parts: dict[str, Attached] = {}
    for key in _order(specs):
        group, name, part = specs[key]
        origin: SpecPath = (group, name)
        sources: list[Tap] = []
        for i, source in enumerate(part.sources):
            sources += resolve(source, source, net, origin + ("in", i), parts)
        shapes = [_shape(s, net, parts) for s in sources]
        defaults = spec.defaults.updated(part.defaults).op_defaults()
        b = GraphBuilder(shapes[0], defaults, origin, shapes[1:], max_nodes=budget.nodes, max_steps=budget.steps)
        ctx = BlockContext(stride=1, index=0, repeat=1, stage=0, global_index=0, total_blocks=1, defaults=defaults)
        try:
            out = part.emit(b, b.input, ctx)
        except NodeLimitError:
            raise  # the network's limit, which lower() reports
        except NodeShapeError as exc:
            raise PartError(f"{part.family} (layer '{exc.name}'): {exc}; {_reads_text(sources, shapes)}", origin,
                            exc.spatial_zero) from None
        except (ValidationError, ArchspecError) as exc:
            raise PartError(f"{part.family}: {short_error(exc)}; {_reads_text(sources, shapes)}", origin) from None
        except Exception as exc:
            raise family_bug(f"block type '{part.family}'", type(part), exc) from exc
        graph: Graph = b.finish(list(out.values())[-1], out) if isinstance(out, dict) else b.finish(out)
        parts[key] = Attached(group, name, part.family, sources, graph, origin)
        budget.nodes = None if budget.nodes is None else budget.nodes - len(graph.nodes)
        budget.steps = None if budget.steps is None else budget.steps - b.steps
    return list(parts.values())


def _reads_text(sources: list[Tap], shapes: list[tuple[int, ...]]) -> str:
    """`it reads stages.1 (512x28x28), stem (64x56x56)`: every input, for an error that names them."""
    return "it reads " + ", ".join(f"input {i}: {s.path} ({shape_text(shape)})"
                                   for i, (s, shape) in enumerate(zip(sources, shapes)))


def short_error(exc: Exception) -> str:
    """An error from a family's emit as one line: a ValidationError's first problem (an op's field
    out of range: `padding: Input should be less than or equal to 65536`), else the text."""
    return first_problem(exc) if isinstance(exc, ValidationError) else str(exc)
