"""`GraphBuilder`: how block families (and the stem and head) emit IR.

A family's `emit` receives a builder and a symbolic input `Value`, calls ops on
it and returns the output value; shapes are inferred as it goes, so a family can
read `x.channels` to decide, say, whether a projection shortcut is needed:

    def emit(self, b, x, ctx):
        y = b.conv(x, out=self.out, kernel=3, stride=ctx.stride, name="conv1")
        y = b.act(b.norm(y, name="bn1"), name="relu1")
        ...
        return b.act(b.add(y, shortcut), name="relu")

Names are local to the graph; `with b.scope("downsample"):` prefixes them, and
unnamed nodes are numbered within their scope like `nn.Sequential` children.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ..core import memo
from pydantic import ValidationError

from ..core.errors import ArchspecError, LocatedError, SpecPath, first_problem
from ..core.naming import free_name, join, module_name_problem
from .graph import INPUT, Graph, Node, input_index, named_tuple
from .op import Op, OpDefaults, Shape, ShapeError
from .ops import OPS, op_class


class Value(NamedTuple):
    """A symbolic tensor: the output of one node (or the graph input). A named tuple: a network
    makes hundreds of them, and a tuple is made in a fraction of a frozen dataclass's time."""

    index: int
    shape: Shape

    @property
    def channels(self) -> int:
        """C of a C x H x W map or a vector; D, the width, of a token sequence (L, D)."""
        return self.shape[-1] if len(self.shape) == 2 else self.shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]


class NodeShapeError(ShapeError, LocatedError):
    """A shape rule failed; carries the node's local name and spec origin."""

    def __init__(self, message: str, name: str, origin: SpecPath, spatial_zero: bool):
        LocatedError.__init__(self, message, origin, spatial_zero)
        self.name = name


_MADE: memo.Memo[Op] = memo.Memo("ir.ops", 16384)  # a sweep makes thousands of new convs


def _made(cls: type[Op], fields: dict[str, Any], defaults: OpDefaults, key: tuple) -> Op:
    """`cls(**fields).resolved(defaults)`, shared between identical requests: ops are immutable, and
    a network asks for the same few (`norm`, `act`, a 1x1 conv) hundreds of times. `key`: the op's
    key (`_made_node`'s without the input shapes)."""
    hit = _MADE.get(key, defaults)
    if hit is not memo.MISS:
        return hit
    return _MADE.put(key, cls(**fields).resolved(defaults), defaults)


_RESOLVED: memo.Memo[Op] = memo.Memo("ir.resolved", 4096)


def _resolved(op: Op, defaults: OpDefaults) -> Op:
    """`op.resolved(defaults)`, shared for the same op and defaults (both immutable; layers
    parsed once are asked for again and again). Keyed by identity."""
    keep = (op, defaults)
    hit = _RESOLVED.get((id(op), id(defaults)), keep)
    if hit is not memo.MISS:
        return hit
    return _RESOLVED.put((id(op), id(defaults)), op.resolved(defaults), keep)


Counts = tuple[int, int, int]  # a node's (params, buffers, macs)


def _node_of(op: Op, ins: tuple[Shape, ...]) -> tuple[Op, Shape, Counts | None]:
    """(`op`, its output shape on `ins`, its (params, buffers, macs) there): what the builder keeps
    of a node, its counts summed into the graph's (`Graph.counts`). Counts a rule fails to give
    (a plugin op's) are None, and the graph has none: the analysis asks for them, and reports it."""
    shape = tuple(op.out_shape(list(ins)))
    try:
        counts: Counts | None = (op.params(ins), op.buffers(ins), op.macs(ins, shape))
    except Exception:
        counts = None
    return op, shape, counts


_SHAPES: memo.Memo[tuple[Op, Shape, Counts | None]] = memo.Memo("ir.shapes", 8192)


def _shared_node(op: Op, ins: tuple[Shape, ...]) -> tuple[Op, Shape, Counts | None]:
    """`_node_of(op, ins)`, remembered for ops shared by `_resolved` (keyed by identity, which
    is cheap where hashing a pydantic model is not)."""
    hit = _SHAPES.get((id(op), ins), op)
    if hit is not memo.MISS:
        return hit
    return _SHAPES.put((id(op), ins), _node_of(op, ins), op)


@memo.function("ir.name_problems", 4096)
def _name_problem(name: str) -> str | None:
    """`module_name_problem`, once per distinct name (the blocks of a network reuse a few dozen)."""
    return module_name_problem(name)


@memo.function("ir.name_parents", 4096)
def _parents(full: str) -> tuple[str, ...]:
    """Every prefix of a dotted name that ends before a dot: `a.b.c` -> (`a`, `a.b`)."""
    parents = []
    dot = full.find(".")
    while dot != -1:
        parents.append(full[:dot])
        dot = full.find(".", dot + 1)
    return tuple(parents)


_NODES: memo.Memo[tuple[Op, Shape, Counts | None]] = memo.Memo("ir.nodes", 65536)
_NODE_ENTRY = _NODES.entry  # every node of every emitted block asks
# conv -> norm -> act chains (`GraphBuilder.conv_norm_act`): the three nodes' (op, shape, counts)
_UNITS: memo.Memo[tuple[tuple[Op, Shape, Counts | None], ...]] = memo.Memo("ir.conv_norm_act", 16384)
_UNIT_ENTRY = _UNITS.entry


def _made_node(cls: type[Op], fields: dict[str, Any], defaults: OpDefaults,
               ins: tuple[Shape, ...]) -> tuple[Op, Shape, Counts | None]:
    """`_node_of(_made(cls, fields, defaults), ins)` in one lookup: the step every node of every
    block takes, and most often one asked before (the blocks of a stage, a sweep's siblings). A
    `ShapeError` of the rule propagates, and nothing is kept for it."""
    values = fields.values()
    try:
        # One flat tuple, made and hashed once per node: the class, `defaults` by identity, the field
        # names, values and their types (True == 1 in Python, not for validation), the input shapes
        # last; its length tells where each part starts, and without `ins` it keys the op (`_made`).
        # Hashing it raises TypeError for an unhashable field value (a list).
        key = (cls, id(defaults), *fields, *values, *map(type, values), ins)
        found = _NODE_ENTRY(key)
    except TypeError:  # an unhashable field value (a list): no memo
        return _node_of(cls(**fields).resolved(defaults), ins)
    if found is not None and found[0] is defaults:
        return found[1]
    return _NODES.put(key, _node_of(_made(cls, fields, defaults, key[:-1]), ins), defaults)


def sizeless(shape: Shape) -> Shape:
    """`shape` with its spatial size left out: a map's C x H x W as (C, 0, 0), a token sequence's
    L x D as (0, D). What a block's nodes depend on when its family does not read the input size
    (`at_input`)."""
    if len(shape) == 3:
        return (shape[0], 0, 0)
    if len(shape) == 2:
        return (0, shape[1])
    return shape


def at_input(graph: Graph, in_shape: Shape) -> Graph:
    """`graph` (one input) fed a map of another size: the same nodes, each shape inferred again
    by its op's rule. Lowering reuses a block's graph this way across input sizes when its family
    does not read the size (`BlockFamily.reads_input_size`), the stem and head always. A rule
    that refuses the new size raises its `ShapeError` (the caller emits the block instead, for
    the located error)."""
    shapes: list[Shape] = []
    nodes = []
    # Each rule is asked directly: a graph is resized for sizes it has not met (the result is kept
    # by lowering), so a memo of shapes here would mostly miss.
    for name, op, inputs, _, origin in graph.nodes:
        shape = op.out_shape([shapes[j] if j >= 0 else in_shape for j in inputs])
        if type(shape) is not tuple:  # a rule may give a list
            shape = tuple(shape)
        shapes.append(shape)
        nodes.append(named_tuple(Node, (name, op, inputs, shape, origin)))
    resized = Graph(tuple(in_shape), tuple(nodes), graph.output, (), graph.outputs, graph.titles).reading_as(graph)
    return resized.scheduling(graph.scheduled) if graph.scheduled else resized


class NodeLimitError(ArchspecError):
    """More nodes were emitted, or more steps taken, than the builder's budget allows (checked as
    each is emitted or taken, so a block that expands exponentially stops at the limit, not after
    the work). `origin` is the builder's; `steps` tells which budget ran out."""

    def __init__(self, message: str, origin: SpecPath = (), steps: bool = False):
        super().__init__(message)
        self.origin = origin
        self.steps = steps


class _Scope:
    """`GraphBuilder.scope`'s context: a class rather than a generator-based context manager, which
    costs several times as much, and a block opens a few scopes every time it is emitted."""

    __slots__ = ("builder", "name", "title", "outer")

    def __init__(self, builder: GraphBuilder, name: str, title: str | None):
        self.builder, self.name, self.title = builder, name, title

    def __enter__(self) -> None:
        self.outer = self.builder._open(self.name, self.title)

    def __exit__(self, *exc: object) -> None:
        self.builder._close(self.outer)


class GraphBuilder:
    def __init__(self, in_shape: Shape, defaults: OpDefaults | None = None, origin: SpecPath = (),
                 more_inputs: Sequence[Shape] = (), max_nodes: int | None = None, max_steps: int | None = None,
                 drop_rate: float = 0.0):
        """`max_nodes`: how many nodes this graph may hold; `max_steps`: how many loop iterations and
        nested blocks its emission may take, work that may emit no node (None: no limit);
        `drop_rate`: the block's stochastic-depth rate (`stochastic_depth`)."""
        self.drop_rate = drop_rate
        self._scheduled: list[int] = []  # nodes at the block's own rate
        self._nested = 0  # nested blocks (`nested_rate`) being emitted
        self.max_nodes = max_nodes
        self.max_steps = max_steps
        self.steps = 0
        self.in_shape = tuple(in_shape)
        self.more_inputs = tuple(tuple(s) for s in more_inputs)
        self.defaults = defaults if defaults is not None else OpDefaults()
        self.origin = origin
        self.nodes: list[Node] = []
        self._counts: list[Counts | None] = []  # each node's (params, buffers, macs)
        self._prefix: list[str] = []
        self._prefix_text = ""  # ".".join(self._prefix), kept as scopes open and close
        self._counters: dict[str, int] = {}
        self._names: set[str] = set()  # full names of nodes
        self._scopes: set[str] = set()  # every prefix of a node's name (`downsample` of `downsample.0`)
        self.titles: dict[str, str] = {}  # scope -> what it is, for diagrams ("se": "squeeze-excitation")
        self.input = Value(INPUT, self.in_shape)
        # Every input, for a part that reads several (a neck): inputs[0] is `input`.
        self.inputs = [self.input] + [Value(input_index(k + 1), s) for k, s in enumerate(self.more_inputs)]

    # -- naming --------------------------------------------------------------------
    def scope(self, name: str, title: str | None = None) -> _Scope:
        """Prefix the names of nodes emitted inside with `name.` (`with b.scope("proj"):`); `title`
        says what the scope is (diagrams group its layers under it: "squeeze-excitation")."""
        return _Scope(self, str(name), title)

    def _open(self, name: str, title: str | None) -> str:
        """Enter scope `name`; the enclosing scope's prefix, to be restored by `_close`."""
        problem = _name_problem(name)
        if problem is not None:
            raise ShapeError(problem)
        outer = self._prefix_text
        full = f"{outer}.{name}" if self._prefix else name
        if full in self._names:
            raise ShapeError(f"'{full}' names both a layer and a scope (a nested block or a named branch) "
                             "in the same block; rename one")
        self._prefix.append(name)
        self._prefix_text = full
        if title:
            self.titles[full] = title
        return outer

    def _close(self, outer: str) -> None:
        self._prefix.pop()
        self._prefix_text = outer

    @property
    def scope_path(self) -> tuple[str, ...]:
        """The scopes the next node is emitted in, outermost first."""
        return tuple(self._prefix)

    def _name(self, name: str | None) -> str:
        prefix = self._prefix_text
        names = self._names
        if name is None:  # numbered within its scope: the first free number from the scope's counter on
            n = self._counters.get(prefix, 0)
            while (full := f"{prefix}.{n}" if prefix else str(n)) in names:
                n += 1
            self._counters[prefix] = n + 1
        else:
            if (problem := _name_problem(name)) is not None:  # a name that no module can hold
                raise ShapeError(problem)
            full = f"{prefix}.{name}" if prefix else str(name)  # naming.join, inlined: every node is named here
        if full in names:
            raise ShapeError(f"two layers are named '{full}' in the same block")
        clash = full if full in self._scopes else None
        parents = _parents(full)
        for parent in parents:  # a loop, not next(...) over a generator: this runs for every node
            if clash is None and parent in names:
                clash = parent
        if clash is not None:
            raise ShapeError(f"'{clash}' names both a layer and a scope (a nested block or a named branch) "
                             "in the same block; rename one")
        names.add(full)
        if parents:  # recorded once the name is taken, not for a name refused
            self._scopes.update(parents)
        return full

    def free_name(self, base: str) -> str:
        """`base`, else `base1`, `base2`, ...: the first name in the current scope that no node and no
        scope has taken yet (two unnamed nested blocks of one type become `inner`, `inner1`)."""
        prefix = ".".join(self._prefix)
        return free_name(base, lambda name: join(prefix, name) in self._names or join(prefix, name) in self._scopes)

    # -- emitting ------------------------------------------------------------------
    def step(self) -> None:
        """Count one unit of work that need not emit a node (a loop's iteration, a nested block):
        a body that makes no layer, repeated 10^15 times, stops at the limit instead of running."""
        self.steps += 1
        if self.max_steps is not None and self.steps > self.max_steps:
            raise NodeLimitError(f"more than {self.max_steps:,} loop iterations and nested blocks", self.origin, True)

    def op(self, op: Op | str, *inputs: Value, name: str | None = None, origin: SpecPath | None = None, **fields: Any) -> Value:
        """Append one node. `op` is an Op instance or a kind name with `fields`."""
        # Written for speed (every node of every emitted block comes here): one branch on the kind of
        # `op`, one-input nodes without list comprehensions.
        kind = type(op) is str
        if kind:
            cls = OPS.get(op) or op_class(op)
            if name is None:
                name = fields.get("name")
        else:
            if fields:
                op = op.model_copy(update=fields)
            cls = type(op)
            if name is None:
                name = op.name
        nodes = self.nodes
        if self.max_nodes is not None and len(nodes) >= self.max_nodes:
            raise NodeLimitError(f"more than {self.max_nodes:,} layers", self.origin)
        arity = cls.arity
        if arity is not None and len(inputs) != arity:
            raise ShapeError(f"{cls.kind} takes {arity} input(s), got {len(inputs)}")
        full = self._name(name)
        where = self.origin if origin is None else origin
        if len(inputs) == 1:
            source, in_shape = inputs[0]
            ins: tuple[Shape, ...] = (in_shape,)
            sources: tuple[int, ...] = (source,)
        else:
            ins = tuple([v[1] for v in inputs])
            sources = tuple([v[0] for v in inputs])
        try:
            if kind:
                op, shape, counts = _made_node(cls, fields, self.defaults, ins)
            else:
                op, shape, counts = _shared_node(_resolved(op, self.defaults), ins)
        except NodeShapeError:
            raise
        except ShapeError as exc:
            raise NodeShapeError(str(exc), full, where, exc.spatial_zero) from None
        except ValidationError as exc:  # a field out of range (a width a block worked out as 0): named by its layer
            raise NodeShapeError(first_problem(exc), full, where, False) from None
        nodes.append(named_tuple(Node, (full, op, sources, shape, where)))
        self._counts.append(counts)
        return named_tuple(Value, (len(nodes) - 1, shape))

    def _known(self, x: Value, made: tuple[tuple[Op, Shape, Counts | None], ...], names: Sequence[str | None]) -> Value:
        """Append a chain of nodes made before from the same request (`conv_norm_act`): each reads the
        one before, the first `x`; named and counted against the budget as `op` does."""
        nodes, where = self.nodes, self.origin
        for (op, shape, counts), name in zip(made, names):
            if self.max_nodes is not None and len(nodes) >= self.max_nodes:
                raise NodeLimitError(f"more than {self.max_nodes:,} layers", self.origin)
            nodes.append(named_tuple(Node, (self._name(name), op, (x[0],), shape, where)))
            self._counts.append(counts)
            x = named_tuple(Value, (len(nodes) - 1, shape))
        return x

    def sequence(self, x: Value, ops: Sequence[Op], origins: Sequence[SpecPath] | None = None) -> Value:
        for i, op in enumerate(ops):
            x = self.op(op, x, origin=origins[i] if origins else None)
        return x

    # Shorthands for the common ops; each forwards to `op`.
    def conv(self, x: Value, name: str | None = None, **fields: Any) -> Value:
        return self.op("conv", x, name=name, **fields)

    def norm(self, x: Value, name: str | None = None, **fields: Any) -> Value:
        return self.op("norm", x, name=name, **fields)

    def act(self, x: Value, name: str | None = None, **fields: Any) -> Value:
        return self.op("act", x, name=name, **fields)

    def add(self, *xs: Value, name: str | None = None) -> Value:
        return self.op("add", *xs, name=name)

    def concat(self, *xs: Value, name: str | None = None) -> Value:
        return self.op("concat", *xs, name=name)

    def mul(self, *xs: Value, name: str | None = None) -> Value:
        return self.op("mul", *xs, name=name)

    def stochastic_depth(self, x: Value, name: str = "drop_path") -> Value:
        """Stochastic depth on the residual branch `x` at the block's rate; `x` itself at rate 0.

        The rate is the family's `drop_path` scheduled by the block's place in the network
        (`BlockFamily.drop_rate`), worked out by lowering: a family that drops its branch this way
        emits nothing that depends on its position, so the blocks of a stage share one graph, each
        with its own rate (`Graph.with_rate`)."""
        if self.drop_rate <= 0:
            return x
        y = self.op("drop_path", x, name=name, p=self.drop_rate)
        if not self._nested:
            self._scheduled.append(y.index)
        return y

    @contextlib.contextmanager
    def nested_rate(self, rate: float) -> Iterator[None]:
        """Emit a nested block (a stream's unit, a block inside a YAML block) at its own
        stochastic-depth rate; its drop-path nodes keep that rate when the graph is reused."""
        saved = self.drop_rate
        self.drop_rate = rate
        self._nested += 1
        try:
            yield
        finally:
            self.drop_rate = saved
            self._nested -= 1

    def conv_norm_act(
        self,
        x: Value,
        out: int,
        kernel: int | Sequence[int] = 1,
        stride: int = 1,
        padding: Any = "same",
        groups: Any = 1,
        act: str | None | bool = True,
        norm: bool = True,
        names: Sequence[str] | None = ("conv", "bn", "act"),
        **conv_fields: Any,
    ) -> Value:
        """conv -> norm -> activation, the unit most families are made of.

        `act=True` uses the default activation, a string names one, False/None skips it.
        The conv has no bias when a norm follows. Names default to conv/bn/act.
        """
        named: Sequence[str | None] = tuple(names) if names else (None, None, None)  # None: numbered by the builder
        defaults = self.defaults
        use_norm = norm and defaults.norm is not None
        bias = conv_fields.pop("bias", not use_norm)
        # The three nodes, made before for the same request: their ops, shapes and counts depend on the
        # arguments (with their types: True == 1), the defaults and the input's shape alone. Most of a
        # block's nodes come this way, and a sweep emits blocks of widths met before on other inputs.
        values = (out, kernel, stride, padding, groups, bias, act, use_norm, *conv_fields.values())
        try:
            # not with an `origin` for the conv alone (`op`'s own argument): a kept chain takes the builder's
            key = None if "origin" in conv_fields else (id(defaults), x[1], *conv_fields, *values, *map(type, values))
            found = _UNIT_ENTRY(key) if key is not None else None
        except TypeError:  # an unhashable argument (a list): made each time
            key = found = None
        if found is not None and found[0] is defaults:  # the names of the nodes it holds: conv, [norm], [act]
            return self._known(x, found[1], (named[0], *((named[1],) if use_norm else ()), *((named[2],) if act else ())))
        start = len(self.nodes)
        # `op` asked directly, not through the shorthands
        y = self.op("conv", x, name=named[0], out=out, kernel=kernel, stride=stride, padding=padding,
                    groups=groups, bias=bias, **conv_fields)
        if use_norm:
            y = self.op("norm", y, name=named[1])
        if act:
            y = self.op("act", y, name=named[2]) if act is True else self.op("act", y, name=named[2], type=act)
        if key is not None:
            _UNITS.put(key, tuple((n.op, n.shape, c) for n, c in zip(self.nodes[start:], self._counts[start:])),
                       defaults)
        return y

    def finish(self, out: Value, outputs: dict[str, Value] | None = None) -> Graph:
        """The graph; `outputs` names several outputs (a part's), `out` being the main one."""
        named = {name: v.index for name, v in (outputs or {}).items()}
        graph = Graph(self.in_shape, tuple(self.nodes), out.index, tuple(self.more_inputs), named, dict(self.titles))
        if None not in self._counts:
            p, b, m = (sum(column) for column in zip(*self._counts)) if self._counts else (0, 0, 0)
            graph.counting((p, b, m))
        return graph.scheduling(self._scheduled) if self._scheduled else graph
