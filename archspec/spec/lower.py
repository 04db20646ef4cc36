"""Lowering: a validated spec model -> the IR `Network`. Families emit their own nodes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .families import BlockContext
from ..core import memo
from ..core.errors import ArchspecError, LocatedError, SpecPath, family_bug, unknown_name
from ..ir.builder import GraphBuilder, NodeLimitError, NodeShapeError, at_input, sizeless
from ..ir.graph import PART_GROUPS, AuxHead, Block, Graph, Network, Stage
from ..ir.keys import HashedKey, frozen
from ..ir.op import Op, OpDefaults, Shape, ShapeError
from ..ir.output_stride import Dilations, out_jump
from ..ir.taps import resolve_taps, truncate
from .init_paths import check_freeze, checked_init
from .lower_parts import Budget, lower_parts, short_error
from .models import SpecModel

MAX_NODES = 50_000
# Loop iterations and nested blocks while emitting the whole network: work that may emit no layer
# (a body that makes nothing, repeated 10^15 times). The zoo's largest takes a few thousand.
MAX_STEPS = 200_000
MAX_BLOCKS = 4096  # blocks in all stages together; the deepest published CNNs have a few hundred


class LoweringError(LocatedError):
    """A block or layer could not be built; `origin` is its path in the spec.

    `limit` marks a network beyond a size limit rather than a wrong one."""


def _layers(ops: Sequence[Op], shape: Shape, defaults: OpDefaults, origin: SpecPath) -> Graph:
    try:  # hashed once: each lookup below hashes its key again, and a pydantic op hashes slowly
        key: HashedKey | None = HashedKey(("layers", tuple(ops), defaults, origin))
    except TypeError:
        key = None
    found = _BLOCKS.find(key, shape, {}, any_size=True)  # a stem or head seen before (sweep samples share theirs)
    if found is not None:
        return found[1]
    b = GraphBuilder(shape, defaults, origin)
    # A layer that is the identity with its values (`channel_affine` of ones and zeros) is left out.
    kept = [(op, origin + (i,)) for i, op in enumerate(ops) if not getattr(op, "is_identity", False)]
    try:
        out = b.sequence(b.input, [op for op, _ in kept], [where for _, where in kept])
    except NodeShapeError as exc:
        raise LoweringError(f"{exc}", exc.origin, exc.spatial_zero) from None
    except ShapeError as exc:  # a layer's name refused: the layer is the one after the nodes made so far
        raise LoweringError(f"{exc}", origin + (len(b.nodes),), exc.spatial_zero) from None
    graph = b.finish(out)
    _BLOCKS.add(key, shape, {}, graph, any_size=True)
    return graph


def _stage_index(after: str | int, spec: Any, origin: SpecPath) -> int:
    if isinstance(after, int):
        if 0 <= after < len(spec.stages):
            return after
        raise LoweringError(f"no stage {after}; the spec has {len(spec.stages)}", origin)
    for i in range(len(spec.stages)):
        if spec.stage_name(i) == after:
            return i
    names = [spec.stage_name(i) for i in range(len(spec.stages))]
    raise LoweringError(unknown_name("stage", after, names), origin)


class _ContextReads(BlockContext):
    """A `BlockContext` that notes which of its fields the family reads, so that the next
    block of the stage can reuse the graph when those fields and the input are unchanged."""

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in _CONTEXT_FIELDS:
            object.__getattribute__(self, "__dict__").setdefault("_reads", {})[name] = value
        return value

    @property
    def reads(self) -> dict[str, Any]:
        return object.__getattribute__(self, "__dict__").get("_reads", {})


_CONTEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(BlockContext))
_POSITION = frozenset({"index", "global_index"})  # the context fields that differ between blocks 1, 2, ...


def _family_key(stage: Any, defaults: OpDefaults, origin: SpecPath) -> HashedKey | None:
    """What a block's graph depends on besides its input and context: the family (a class,
    one per YAML definition text) and the values of its own parameters, the stage's defaults
    and its place in the spec; hashed once for all the blocks of the stage. None when a value
    cannot be hashed (the block is then emitted every time)."""
    known = (id(stage), id(defaults), origin)  # stages are shared (validated once, scaled once): by identity
    hit = _FAMILY_KEYS.get(known, (stage, defaults))
    if hit is not memo.MISS:
        return hit
    family = type(stage)
    values = stage.__dict__  # a model's field values (read here for every stage of every sample)
    try:
        key = HashedKey((family, tuple([frozen(values[f]) for f in _key_fields(family)]), defaults, origin))
    except TypeError:
        key = None
    return _FAMILY_KEYS.put(known, key, (stage, defaults))


_FAMILY_KEYS: memo.Memo[HashedKey | None] = memo.Memo("spec.family_keys", 4096)


@memo.function("spec.family_key_fields", 1024)
def _key_fields(family: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a stage model that its family key holds: the family's own, not the stage's
    (block, repeat, stride, name, defaults)."""
    skip = getattr(family, "STAGE_KEYS", ())
    return tuple(f for f in family.model_fields if f not in skip)


class _BlockGraphs:
    """Block graphs already emitted in this process, for reuse (graphs are never modified).

    A graph is reused when the family and its parameters, the input shape, the defaults and
    the spec origin are the same, and the context agrees on every field the family read while
    emitting it (the index of a block in its stage usually matters only for the first block).
    Repeated blocks of one stage, the same stages of sibling specs and the samples of a sweep
    share graphs this way; analysis keeps what it derives from a graph by identity, too.

    A graph whose nodes do not depend on the input's size (a family that does not read it, the
    stem's and head's fixed layers) is also found for an input of another size with the same
    channels: its nodes are taken with their shapes inferred again (`at_input`), which costs
    a fraction of emitting them (a sweep over input resolutions).
    """

    MAX_KEYS = 16384  # about 14,000 RegNet block graphs take 200 MB, the process included

    def __init__(self) -> None:
        self.entries: memo.Memo[tuple[tuple[dict[str, Any], Graph], ...]] = memo.Memo("spec.block_graphs",
                                                                                    self.MAX_KEYS)
        self.any_size: memo.Memo[tuple[tuple[dict[str, Any], Graph], ...]] = memo.Memo("spec.block_graphs_any_size",
                                                                                     self.MAX_KEYS)

    def find(self, key: Hashable | None, shape: Shape, context: dict[str, Any],
             any_size: bool = False) -> tuple[dict[str, Any], Graph] | None:
        """(the context fields it read, the graph) emitted for `key` on an input of `shape` in `context`,
        or None; with `any_size`, one emitted for an input of another size, reshaped (None where a rule
        refuses the size)."""
        if key is None:
            return None
        entry = _matching(self.entries.get((key, shape)), context)
        if entry is not None:
            return entry
        entry = _matching(self.any_size.get((key, sizeless(shape))), context) if any_size else None
        if entry is None:
            return None
        reads, emitted = entry
        try:
            graph = at_input(emitted, shape)
        except ShapeError:
            return None
        self._put(self.entries, (key, shape), reads, graph)
        return reads, graph

    def add(self, key: Hashable | None, shape: Shape, reads: dict[str, Any], graph: Graph, any_size: bool = False) -> None:
        """Keep `graph`, emitted for `key` on `shape` reading `reads` of its context; with `any_size`,
        for inputs of other sizes too (`find`)."""
        if key is None:
            return
        self._put(self.entries, (key, shape), reads, graph)
        if any_size:
            found = self.any_size.get((key, sizeless(shape)))
            if found is memo.MISS or all(known != reads for known, _ in found):
                self._put(self.any_size, (key, sizeless(shape)), reads, graph)

    @staticmethod
    def _put(entries: memo.Memo, key: tuple, reads: dict[str, Any], graph: Graph) -> None:
        found = entries.get(key)
        entries.put(key, (*(() if found is memo.MISS else found), (dict(reads), graph)))


def _matching(found: Any, context: dict[str, Any]) -> tuple[dict[str, Any], Graph] | None:
    """The (reads, graph) entry whose context reads agree with `context`, or None."""
    if found is memo.MISS:
        return None
    for entry in found:
        for k, v in entry[0].items():  # a loop, not all(...): this runs for every block of every sample
            if context[k] != v:
                break
        else:
            return entry
    return None


_BLOCKS = _BlockGraphs()


# Called with each graph of the stem and the stages as it is lowered (`lower`'s `watch`).
Watch = Callable[[Graph], None]


def lower(spec: SpecModel, spec_data: dict | None = None, watch: Watch | None = None) -> Network:
    """Build the IR of a validated (and scaled) `SpecModel`.

    `watch` is called with the stem's graph and each block's, in order, as they are lowered,
    where all of them stay in the network (no `features:`, necks or heads, which may cut stages
    off): whatever it raises stops the lowering. A sweep counts them against its bounds."""
    shape: Shape = spec.input.shape
    defaults = spec.defaults.op_defaults()
    stem = _layers(spec.stem, shape, defaults, ("stem",))
    shape = stem.out_shape
    if watch is not None and (spec.features is not None or any(getattr(spec, g) for g in PART_GROUPS)):
        watch = None
    if watch is not None:
        watch(stem)
    # Each stage is an instance of its family's stage model (the family's fields and StageFields'),
    # made at validation: typed here by what every stage has.
    spec_stages: list[Any] = list(spec.stages)
    total = sum(s.repeat for s in spec_stages)
    if total > MAX_BLOCKS:
        raise LoweringError(f"the stages hold {total:,} blocks in all, more than the limit of {MAX_BLOCKS:,}",
                            ("stages",), limit=True)
    _check_stage_names(spec)
    count, steps = len(stem.nodes), 0
    stages: list[Stage] = []
    global_index = 0
    dilations = Dilations(spec.output_stride, out_jump(stem, (1, 1)) if spec.output_stride is not None else (1, 1))
    for i, st in enumerate(spec_stages):
        origin: SpecPath = ("stages", i)
        stage_defaults = spec.stage_defaults(st).op_defaults()
        blocks: list[Block] = []
        plan = dilations.stage(i, st.block, st.stride, st.dilate, type(st).first_block_dilation)
        family_key = _family_key(st, stage_defaults, origin)
        repeat, any_size = st.repeat, not st.reads_input_size  # read once: the loop runs for every block
        shared: tuple[Graph, bool] | None = None  # block 1's graph and whether it drops, for blocks 2, 3, ...
        for r in range(repeat):
            # The block's stochastic-depth rate: whether it drops at all shapes the graph; its value
            # does not, so a graph emitted at another rate is reused with this one.
            rate = st.drop_rate(global_index, total)
            if shared is not None and shared[1] == (rate > 0) and shared[0].in_shape == shape:
                graph = shared[0].with_rate(rate)  # what `_BLOCKS.find` gives it, without the context and lookup
            else:
                context = dict(index=r, repeat=repeat, stage=i, global_index=global_index, total_blocks=total,
                               defaults=stage_defaults, **plan.context(r))
                key = None if family_key is None else (family_key, rate > 0)
                entry = _BLOCKS.find(key, shape, context, any_size=any_size)
                if entry is None:
                    reads, graph, taken = _emit_block(st, shape, context, rate, origin, MAX_NODES - count,
                                                      MAX_STEPS - steps)
                    _BLOCKS.add(key, shape, reads, graph, any_size=any_size)
                    steps += taken
                else:
                    reads, graph = entry[0], entry[1].with_rate(rate)
                if r == 1 and key is not None and not reads.keys() & _POSITION:
                    # Blocks 2, 3, ... of a stage have block 1's context but for their position: where
                    # the family read neither, block 1's graph is theirs on the same input.
                    shared = (graph, rate > 0)
            count += len(graph.analysed_as.nodes)  # a rebound graph's nodes are made when read
            if count > MAX_NODES:
                raise LoweringError(f"the network has more than {MAX_NODES:,} layers", origin, limit=True)
            blocks.append(Block.of(st.block, graph, st, origin))
            if watch is not None:
                watch(graph)
            dilations.passed(graph)
            shape = graph.out_shape
            global_index += 1
        stages.append(Stage(spec.stage_name(i), blocks, origin))
    dilations.check()

    aux: list[AuxHead] = []
    for a, head in enumerate(spec.aux_heads):
        if not head.enabled:
            continue
        after = _stage_index(head.after, spec, ("aux_heads", a, "after"))
        src = stages[after].out_shape if stages else stem.out_shape
        graph = _layers(head.layers, src, defaults, ("aux_heads", a, "layers"))
        aux.append(AuxHead(head.name or f"aux{a + 1}", after, graph, ("aux_heads", a)))

    head_graph = _layers(spec.head, shape, defaults, ("head",))
    net = Network(
        name=spec.name, input_shape=spec.input.shape, stem=stem, stages=stages, head=head_graph,
        aux_heads=aux, description=spec.description, spec_data=spec_data or {}, init=spec.init,
    )
    count += len(head_graph.nodes) + sum(len(a.graph.nodes) for a in aux)
    try:
        attached = lower_parts(spec, net, Budget(MAX_NODES - count, MAX_STEPS - steps))
    except NodeLimitError as exc:
        raise LoweringError(limit_message(exc), exc.origin, limit=True) from None
    if attached:  # necks and heads read the network built so far
        net = dataclasses.replace(net, attached=attached)
    init = checked_init(spec.init, net, any(not h.enabled for h in spec.aux_heads))
    if init is not net.init:  # by_name globs, checked and in index form
        net = dataclasses.replace(net, init=init)
    if spec.features is not None or net.attached:
        net = truncate(net, resolve_taps(spec.features, net))
    check_freeze(spec.freeze, net)  # on what is built: no head to freeze once taps cut it off
    return net


def _emit_block(st: Any, shape: Shape, context: dict[str, Any], rate: float, origin: SpecPath,
                max_nodes: int, max_steps: int) -> tuple[dict[str, Any], Graph, int]:
    """(the context fields it read, the graph, the steps it took) of stage `st`'s block emitted on
    `shape` in `context`, within what is left of the network's node and step budgets; its failures
    as located errors."""
    b = GraphBuilder(shape, context["defaults"], origin, max_nodes=max_nodes, max_steps=max_steps, drop_rate=rate)
    ctx = _ContextReads(**context)
    try:
        out = st.emit(b, b.input, ctx)
    except NodeLimitError as exc:
        raise LoweringError(limit_message(exc), origin, limit=True) from None
    except NodeShapeError as exc:
        where = f"block {context['index']} of {context['repeat']}, " if context["repeat"] > 1 else ""
        raise LoweringError(f"{st.block} ({where}layer '{exc.name}'): {exc}", origin, exc.spatial_zero) from None
    except (ValidationError, ArchspecError) as exc:
        raise LoweringError(f"{st.block}: {short_error(exc)}", origin) from None
    except Exception as exc:
        raise family_bug(f"block type '{st.block}'", type(st), exc) from exc
    if isinstance(out, dict):  # a neck's (an FPN's levels): a stage passes one value on
        raise LoweringError(f"block type '{st.block}' has several outputs ({', '.join(map(str, out))}); "
                            "a stage's block has one (several are a neck's: `necks:`)", origin)
    return ctx.reads, b.finish(out), b.steps


def _check_stage_names(spec: SpecModel) -> None:
    """A stage's name stands for its index wherever a stage is named (taps, `aux_heads.after`,
    `init.by_name`): two stages of one name, or a name of digits (stage "1" as stage 0), would make
    those refer to the wrong stage."""
    seen: dict[str, int] = {}
    for i in range(len(spec.stages)):
        name = spec.stage_name(i)
        if name.isdigit():
            raise LoweringError(f"a stage's name may not be all digits ('{name}'): it would read as a stage's index",
                                ("stages", i, "name"))
        if name in seen:
            first = seen[name]
            how = " (its default name)" if getattr(spec.stages[first], "name", None) is None else ""
            raise LoweringError(f"stage {first} is named '{name}' too{how}; each stage needs a name of its own",
                                ("stages", i, "name"))
        seen[name] = i


def limit_message(exc: NodeLimitError) -> str:
    """The network-wide limit a builder's budget (what the network had left) ran out of, in the user's terms."""
    if exc.steps:
        return (f"the network takes more than {MAX_STEPS:,} loop iterations and nested blocks to build "
                "(a `for:` or `repeat:` whose body makes few layers, repeated many times)")
    return f"the network has more than {MAX_NODES:,} layers"
