"""Graphviz diagrams of a network, drawn from the IR; the numbers come from the analysis `Report`.

Three levels of detail:

* `stage`: input, stem, one box per stage (its blocks folded as "family xN"), head, auxiliary heads;
* `block`: every block. Each maximal chain of layers is one box whose rows fuse a layer with the
  norm, activation and dropout after it ("conv 3x3, 64->64 · bn · relu"); merges (add, concat)
  start a box of their own, so inception branches sit side by side and residual skips and dense
  concatenations are edges;
* `layer`: every layer, one box each, in one cluster per block.

The picture is first described as plain data (`Picture`: boxes, clusters, edges), then written as
a `graphviz.Digraph`. Every piece of text goes through `text()` into HTML-like labels, and node
identifiers are generated, so layer and spec names may hold any character. Nothing here imports
torch; `graphviz` is imported only when a Digraph is made.
"""

from __future__ import annotations

import html
import itertools
import re
import shutil
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.report import LayerInfo, Report, analyze_network, stage_title
from .diagram_fold import run_title, runs
from ..core.formatting import human, shape_text
from ..core.errors import ArchspecError, unknown_name
from ..core.naming import join
from ..ir.graph import INPUT, Graph, Network, Part
from ..ir.op import CATEGORIES, RF, Shape

if TYPE_CHECKING:
    import graphviz

LEVELS = ("stage", "block", "layer")
SHOWABLE = ("params", "macs", "rf")
RANKDIRS = ("TB", "LR")
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

# Fill colour per op category (`type(op).category`), the same in every diagram; the legend's order.
PALETTE = CATEGORIES
LEGEND_NAMES = {"act": "activation"}
FOLDED_GROUND = "#f0f0f0"  # behind one block drawn for a run of identical ones
FONT = "Helvetica,Arial,sans-serif"
INK = "#333333"
MAX_TEXT = 80

INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz; "
                "conda: conda install -c conda-forge graphviz)")


class DotMissing(ArchspecError):
    """Graphviz's `dot` program (or the `graphviz` Python package) is missing; the CLI exits with code 3."""

    exit_code = 3


def _graphviz():
    from ..core.deps import require

    require("graphviz", feature="drawing a diagram")
    import graphviz

    return graphviz


_DIAGRAM_CLASS = None


def _digraph_class():
    """graphviz.Digraph, except that without Graphviz's `dot` Jupyter shows how to install it, not a traceback."""
    global _DIAGRAM_CLASS
    if _DIAGRAM_CLASS is None:
        graphviz = _graphviz()

        class Diagram(graphviz.Digraph):
            def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
                try:
                    return super()._repr_mimebundle_(include, exclude, **kwargs)
                except graphviz.ExecutableNotFound:
                    return {"text/plain": f"Graphviz's `dot` program was not found, so this diagram cannot be drawn: "
                                          f"{INSTALL_HINT}. Its DOT source is `.source`."}

        _DIAGRAM_CLASS = Diagram
    return _DIAGRAM_CLASS


# -- the picture as data ---------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One line of a box: a layer (or fused layers, or a folded stage) and its numbers."""

    text: str
    category: str | None  # None: not a layer (a folded stage, the input)
    shape: Shape
    params: int = 0
    macs: int = 0
    rf: RF | None = None

    @classmethod
    def of(cls, layers: Sequence[LayerInfo]) -> Row:
        return cls(
            text=" · ".join(la.label for la in layers),
            category=layers[0].category,
            shape=layers[-1].output_shape,
            params=sum(la.params for la in layers),
            macs=sum(la.macs for la in layers),
            rf=layers[-1].rf,
        )


@dataclass
class Box:
    """A node of the diagram: a title line, a small note line and rows."""

    id: str
    rows: list[Row]
    header: str = ""
    note: str = ""
    paths: tuple[str, ...] = ()  # module paths of the layers drawn in this box
    dashed: bool = False
    group: str = ""  # boxes of one chain share a group, which Graphviz draws in a straight line


@dataclass
class Cluster:
    id: str
    label: str
    boxes: list[Box] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    dashed: bool = False
    folded: bool = False  # one block standing for a run of identical ones (drawn on a grey ground)
    # Boxes to keep side by side in this order (the branches leaving one box), for the layout.
    orders: list[list[str]] = field(default_factory=list)

    def all_boxes(self) -> Iterator[Box]:
        yield from self.boxes
        for c in self.clusters:
            yield from c.all_boxes()


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    dashed: bool = False
    skip: bool = False  # a shortcut: its source also reaches the destination through other boxes
    label: str = ""  # drawn beside the edge ("all earlier maps": a dense block's concatenation)
    bold: bool = False


@dataclass
class Picture:
    name: str
    level: str
    summary: str  # "60.19M params · 11.51G MACs · input 3x224x224"
    root: Cluster
    edges: list[Edge]
    show: tuple[str, ...] = ()

    def boxes(self) -> list[Box]:
        return list(self.root.all_boxes())

    def folded(self) -> bool:
        def any_folded(c: Cluster) -> bool:
            return c.folded or any(any_folded(sub) for sub in c.clusters)

        return any_folded(self.root)

    def categories(self) -> list[str]:
        used = {row.category for box in self.boxes() for row in box.rows}
        return [c for c in PALETTE if c in used]


# -- options -----------------------------------------------------------------------------------
def parse_show(show: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"params,macs"` or `["params", "macs"]` -> ("params", "macs"), in canonical order."""
    if not show:
        return ()
    items = show.split(",") if isinstance(show, str) else list(show)
    wanted = {str(s).strip().lower() for s in items if str(s).strip()}
    for item in sorted(wanted):
        if item not in SHOWABLE:
            raise ArchspecError(unknown_name("show value", item, SHOWABLE))
    return tuple(s for s in SHOWABLE if s in wanted)


def _check(level: str, rankdir: str) -> tuple[str, str]:
    if level not in LEVELS:
        raise ArchspecError(unknown_name("diagram level", str(level), LEVELS))
    rankdir = str(rankdir).upper()
    if rankdir not in RANKDIRS:
        raise ArchspecError(unknown_name("rankdir", rankdir, RANKDIRS))
    return level, rankdir


# -- IR -> picture ----------------------------------------------------------------------------
def chains(graph: Graph, read_outside: Collection[int] = ()) -> list[list[int]]:
    """Split a graph into maximal chains: a node joins the chain of its only input when it is
    that input's only reader. Merges (several inputs) and branch points end chains, and so do
    the nodes `read_outside` the graph (a neck's or head's source, a returned tap), so that what
    reads them is drawn from them, not from the end of a chain past them."""
    readers = graph.consumers()
    units: list[list[int]] = []
    unit_of: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        src = node.inputs[0] if len(node.inputs) == 1 else INPUT
        if src >= 0 and readers.get(src) == 1 and units[unit_of[src]][-1] == src and src not in read_outside:
            unit_of[i] = unit_of[src]
            units[unit_of[i]].append(i)
        else:
            unit_of[i] = len(units)
            units.append([i])
    return units


def fused_rows(layers: Sequence[LayerInfo]) -> list[Row]:
    """Rows of a chain: each layer that is not a norm, activation or dropout starts a row."""
    rows: list[list[LayerInfo]] = []
    for la in layers:
        if rows and la.node_op is not None and type(la.node_op).fused:  # joins the row before it
            rows[-1].append(la)
        else:
            rows.append([la])
    return [Row.of(r) for r in rows]


class _Drawer:
    def __init__(self, net: Network, report: Report, level: str, fold: bool = False):
        self.net = net
        self.level = level
        self.fold = fold
        self.info = {la.name: la for la in report.layers}
        self.edges: list[Edge] = []
        self._ids = 0
        self.where: dict[str, Box] = {}  # layer path -> the box that draws it
        self.graphs = {part.path: part.graph for part in net.parts()}
        self.section_of = {part.path: part.section for part in net.parts()}
        self.out_of: dict[str, str] = {}  # part path -> the box holding its output (a folded block's: its run's)
        self.read_outside: dict[str, set[int]] = {}  # part path -> its nodes that necks, heads and taps read
        for tap in [*(s for a in net.attached for s in a.sources), *net.taps]:
            if tap.part != "input" and tap.node >= 0:
                self.read_outside.setdefault(tap.graph_path, set()).add(tap.node)

    def new_id(self) -> str:
        self._ids += 1
        return f"n{self._ids}"

    def box(self, rows: list[Row], paths: Sequence[str] = (), **kw) -> Box:
        box = Box(self.new_id(), rows, paths=tuple(paths), **kw)
        self.where.update((p, box) for p in paths)
        return box

    def value_box(self, tap: Any, inp: str) -> str:
        """The id of the box that holds a tapped value (a part's source, or a returned tap): the box
        of its layer; for a block folded into a run drawn once, the box of that run's output."""
        if tap.part == "input" or tap.node < 0:
            return inp
        box = self.where.get(join(tap.graph_path, self.graphs[tap.graph_path].nodes[tap.node].name))
        if box is not None:
            return box.id
        return self.out_of.get(tap.graph_path, inp)

    def _box(self, box_id: str) -> Box | None:
        return next((b for b in self.where.values() if b.id == box_id), None)

    def attached(self, root: Cluster, inp: str, folded: bool) -> None:
        """The necks and heads, each wired to the boxes it reads; then each returned tap noted on its box
        (on its run's box, for a block folded away)."""
        for part in self.net.attached:
            sources = [self.value_box(s, inp) for s in part.sources]
            if folded:
                box = self._layers_box(part.path, part.graph, part.path)
                root.boxes.append(box)
                self.edges += [Edge(src, box.id) for src in dict.fromkeys(sources)]
            else:
                inner = Cluster(self.new_id(), part.path)
                self.graph(part.graph, part.path, sources[0], inner, more=sources[1:])
                self.place(inner, root)
        for tap in self.net.taps:
            box = self._box(self.value_box(tap, inp))
            if box is not None:
                box.note = f"{box.note} → {tap.name}".strip()

    def graph(self, graph: Graph, prefix: str, source: str, into: Cluster, dashed: bool = False,
              dense: str | None = None, more: Sequence[str] = ()) -> str:
        """Draw a graph's boxes into `into`, wired to the box `source` that feeds its input (and
        `more` feeding a neck's or head's further inputs);
        return the box holding its output. `dense`: the graph is one of a run of identical blocks, so
        a concatenation of its input is dense (each block appends to every earlier map): that bypass is
        drawn bold, labelled with `dense` when it is not empty."""
        per_layer = self.level == "layer"
        units = chains(graph, self.read_outside.get(prefix, ()))
        group: dict[int, str] = {}
        if per_layer:  # a box per layer, each chain kept straight
            group = {i: f"g{self._ids}_{k}" for k, unit in enumerate(units) if len(unit) > 1 for i in unit}
            units = [[i] for i in range(len(graph.nodes))]
        box_of: dict[int, str] = {INPUT: source, **{INPUT - 1 - k: s for k, s in enumerate(more)}}
        scoped: dict[str, list[Box]] = {}  # titled scope (squeeze-excitation) -> its boxes and the gate applying it
        for unit in units:
            paths = [join(prefix, graph.nodes[i].name) for i in unit]
            layers = [self.info[p] for p in paths]
            name = graph.nodes[unit[0]].name
            note = name if per_layer and not name.isdigit() else ""
            box = self.box(fused_rows(layers), paths, note=note, dashed=dashed, group=group.get(unit[0], ""))
            into.boxes.append(box)
            first = graph.nodes[unit[0]]
            bypass = dense is not None and first.op.kind == "concat" and INPUT in first.inputs
            for j in first.inputs:
                here = bypass and j == INPUT
                self.edges.append(Edge(box_of[j], box.id, dashed, label=dense if here else "", bold=here))
            for i in unit:
                box_of[i] = box.id
            keys = {_scope_of(graph, graph.nodes[i]) for i in unit}
            if len(keys) == 1 and None not in keys:
                scoped.setdefault(keys.pop(), []).append(box)
        for key, boxes in scoped.items():  # one small cluster, named, per gate
            if self.level == "block":
                into.boxes[:] = [b for b in into.boxes if b not in boxes]
                into.clusters.append(Cluster(self.new_id(), graph.titles[key], boxes=boxes))
        return box_of[graph.output]

    def part(self, graph: Graph, prefix: str, source: str, title: str, into: Cluster, dashed: bool = False) -> str:
        """Stem, head or an aux head, drawn into its own cluster (see `place`)."""
        inner = Cluster(self.new_id(), title, dashed=dashed)
        out = self.graph(graph, prefix, source, inner, dashed)
        self.place(inner, into)
        return out

    def place(self, cluster: Cluster, into: Cluster) -> None:
        """Put `cluster` into `into`; above layer level, a cluster of one box becomes that box,
        titled with the cluster's label. Empty clusters are dropped."""
        if len(cluster.boxes) == 1 and not cluster.clusters and self.level != "layer":
            cluster.boxes[0].header = cluster.label
            into.boxes.extend(cluster.boxes)
        elif cluster.boxes or cluster.clusters:
            into.clusters.append(cluster)

    def start(self) -> tuple[Cluster, Box]:
        """The root cluster holding the input box."""
        inp = self.box([Row("input", None, self.net.input_shape)])
        return Cluster("root", "", boxes=[inp]), inp

    def sections(self) -> list[list[Part]]:
        """The network's parts (`Network.parts`) grouped by section: the stem, each stage's blocks,
        each aux head, the head."""
        out: dict[str, list[Part]] = {}
        for part in self.net.parts():
            out.setdefault(part.section, []).append(part)
        return list(out.values())

    def network(self) -> Cluster:
        """Block and layer level."""
        root, inp = self.start()
        out_of = self.out_of
        out_of[""] = inp.id
        for section in self.sections():
            first = section[0]
            if first.attached:  # they read several values: drawn last, by `attached`
                continue
            if first.group != "stages":
                out_of[first.path] = self.part(first.graph, first.path, out_of[first.source], _title(first), root,
                                               dashed=not first.inference)
                continue
            stage, out = self.net.stages[first.stage], out_of[first.source]  # type: ignore[index]  # a block's part always has its stage index
            title = _stage_title(first, stage)
            same = runs(stage)
            run_of = {b: (start, count) for start, count in same for b in range(start, start + count)}
            parts = same if self.fold else [(b, 1) for b in range(len(stage.blocks))]
            # A stage of identical blocks is folded as a whole: its own cluster turns grey.
            whole = self.level != "layer" and len(parts) == 1 and parts[0][1] > 1
            for_stage = Cluster(self.new_id(), title + (_growth(stage.blocks) if whole else ""), folded=whole)
            for first_block, count in parts:
                block, prefix = stage.blocks[first_block], section[first_block].path
                folded = count > 1 and not for_stage.folded
                start, length = run_of[first_block]
                # In a run of identical blocks a concatenation of the block input is dense; say so once a run.
                dense = None if length == 1 else "all earlier maps" if first_block == start else ""
                if self.level == "layer":  # one cluster per block (per run when folded)
                    label = (f"{title} · {run_title(first_block, count, block.family)}" if folded
                             else title if len(stage.blocks) == 1 else f"{title} · block {first_block} · {block.family}")
                    cluster = Cluster(self.new_id(), label, folded=folded)
                    out = self.graph(block.graph, prefix, out, cluster, dense=dense)
                    self.place(cluster, root)
                elif folded:  # a run inside the stage's cluster, on a grey ground
                    cluster = Cluster(self.new_id(), run_title(first_block, count, block.family)
                                      + _growth(stage.blocks[first_block:first_block + count]), folded=True)
                    out = self.graph(block.graph, prefix, out, cluster, dense=dense)
                    for_stage.clusters.append(cluster)
                else:
                    out = self.graph(block.graph, prefix, out, for_stage, dense=dense)
                for part in section[first_block:first_block + count]:
                    out_of[part.path] = out
            if self.level != "layer":
                self.place(for_stage, root)
        self.attached(root, inp.id, folded=False)
        return root

    def stages(self) -> Cluster:
        """Stage level: one box per section, blocks folded."""
        root, inp = self.start()
        box_of = {"": inp.id}  # part path -> the box drawing it
        for section in self.sections():
            first = section[0]
            if first.attached:  # they read several values: drawn last, by `attached`
                continue
            source = box_of[first.source]
            box: Box | None = None
            if first.group == "stages":
                stage = self.net.stages[first.stage]  # type: ignore[index]  # a block's part always has its stage index
                layers = [self.info[join(p.path, n.name)] for p in section for n in p.graph.nodes]
                paths = [la.name for la in layers]
                if all(block.family == "layers" for block in stage.blocks):
                    rows = fused_rows(layers) if layers else [Row("identity", None, stage.out_shape)]
                else:
                    # As the papers' tables: the stage's totals, then the layers of the block it repeats
                    # (its last: the first often differs by a stride or a projection), coloured by kind.
                    stride = _reduction(stage.blocks[0].graph.in_shape, stage.out_shape)
                    rows = [Row(
                        _folded(stage) + (f" · stride {stride}" if stride > 1 else ""), None, stage.out_shape,
                        sum(la.params for la in layers), sum(la.macs for la in layers),
                        layers[-1].rf if layers else None,
                    )]
                    rows += self._block_rows(section[-1].graph, section[-1].path)
                box = self.box(rows, paths, header=_stage_title(first, stage, folded=False))
            elif first.graph.nodes or not first.inference:  # an empty stem or head draws nothing
                box = self._layers_box(first.path, first.graph, _title(first))
                box.dashed = not first.inference
            if box is not None:
                root.boxes.append(box)
                self.edges.append(Edge(source, box.id, box.dashed))
            for part in section:
                box_of[part.path] = box.id if box is not None else source
        self.attached(root, inp.id, folded=True)
        return root

    def _block_rows(self, graph: Graph, prefix: str) -> list[Row]:
        """A block's rows for a stage box: fused as at block level, except that the layers of a titled
        scope and the gate applying it become one row named by the scope: `squeeze-excitation 144->6->144`."""
        runs: list[tuple[str | None, list[LayerInfo]]] = []
        for node in graph.nodes:
            key = _scope_of(graph, node)
            layer = self.info[join(prefix, node.name)]
            if runs and runs[-1][0] == key:
                runs[-1][1].append(layer)
            else:
                runs.append((key, [layer]))
        rows: list[Row] = []
        for key, layers in runs:
            if key is None:
                rows += fused_rows(layers)
                continue
            widths = [layers[0].input_shapes[0][0]] + [la.output_shape[0] for la in layers
                                                      if la.category in ("conv", "linear")]
            rows.append(Row(f"{graph.titles[key]} {'->'.join(map(str, widths))}", "merge", layers[-1].output_shape,
                            sum(la.params for la in layers), sum(la.macs for la in layers), layers[-1].rf))
        return rows

    def _layers_box(self, prefix: str, graph: Graph, title: str) -> Box:
        layers = [self.info[join(prefix, n.name)] for n in graph.nodes]
        return self.box(fused_rows(layers), [la.name for la in layers], header=title)


def order_branches(root: Cluster, edges: list[Edge]) -> None:
    """Keep the branches that leave one box for one cluster in the order the block emitted them
    (inception's 1x1, 3x3, 5x5, pool from left to right)."""
    home: dict[str, Cluster] = {}

    def index(c: Cluster) -> None:
        for b in c.boxes:
            home[b.id] = c
        for sub in c.clusters:
            index(sub)

    index(root)
    fans: dict[str, list[str]] = {}
    for e in edges:
        if not e.skip:
            fans.setdefault(e.src, []).append(e.dst)
    for dsts in fans.values():
        by_cluster: dict[int, list[str]] = {}
        for d in dict.fromkeys(dsts):
            by_cluster.setdefault(id(home[d]), []).append(d)
        for row in by_cluster.values():
            if len(row) > 1:
                home[row[0]].orders.append(row)


def _scope_of(graph: Graph, node) -> str | None:
    """The titled scope a node belongs to; a merge reading a titled scope (the multiply applying a
    gate) belongs to that scope too."""
    owner = graph.title_of(node)
    if owner is not None:
        return owner[0]
    if node.op.category == "merge":
        for j in node.inputs:
            if j >= 0 and (fed := graph.title_of(graph.nodes[j])) is not None:
                return fed[0]
    return None


def _folded(stage) -> str:
    """"bottleneck ×3" (runs of different families in order); "" for plain layer stages."""
    runs: list[list] = []
    for block in stage.blocks:
        if runs and runs[-1][0] == block.family:
            runs[-1][1] += 1
        else:
            runs.append([block.family, 1])
    return ", ".join(family if n == 1 else f"{family} ×{n}" for family, n in runs if family != "layers")


def _title(part: Part) -> str:
    return part.title if part.inference else f"{part.title} (training only)"


def _stage_title(part: Part, stage, folded: bool = True) -> str:
    """`stages.2 · bottleneck ×36`: the part's name as tables and module paths write it, and its blocks."""
    title = stage_title(part.section, stage.name, part.stage)
    what = _folded(stage) if folded else ""
    return f"{title} · {what}" if what else title


def _growth(blocks) -> str:
    """" · 64->256 channels" when a folded run widens the map beyond what its one drawn block shows (DenseNet)."""
    first, last = blocks[0].graph, blocks[-1].graph
    if len(last.out_shape) != 3 or first.out_shape[0] == last.out_shape[0]:
        return ""
    return f" · {first.in_shape[0]}->{last.out_shape[0]} channels"


def _reduction(before: Shape, after: Shape) -> int:
    """How many times a stage shrinks the map (2 for a stride-2 stage); 1 for flat or unchanged maps."""
    if len(before) != 3 or len(after) != 3 or after[1] == 0:
        return 1
    return max(1, round(before[1] / after[1]))


def picture(net: Network, level: str = "block", show: str | Iterable[str] | None = (),
            report: Report | None = None, fold: bool | None = None) -> Picture:
    """The diagram of `net` as plain data. `fold` draws one block for each run of identical blocks
    (marked ×N); by default it is on at block level and off at layer level."""
    level, _ = _check(level, "TB")
    report = report or analyze_network(net)
    drawer = _Drawer(net, report, level, fold=(level == "block") if fold is None else bool(fold))
    root = drawer.stages() if level == "stage" else drawer.network()
    edges = mark_skips(drawer.edges)
    order_branches(root, edges)
    summary = (f"{human(report.params)} params · {human(report.macs)} MACs · "
               f"input {shape_text(net.input_shape)}")
    return Picture(net.name, level, summary, root, edges, parse_show(show))


def _rank(box_id: str) -> int:
    return int(box_id[1:])


def mark_skips(edges: list[Edge]) -> list[Edge]:
    """Flag edges u -> v where u also reaches v through another of v's inputs (residual and
    dense shortcuts), so that the layout keeps the main path straight and curves the shortcut.

    Boxes are numbered in topological order, so the search from u stops at boxes made after v.
    """
    succ: dict[str, list[str]] = {}
    preds: dict[str, list[str]] = {}
    for e in edges:
        succ.setdefault(e.src, []).append(e.dst)
        preds.setdefault(e.dst, []).append(e.src)

    def reaches(u: str, targets: set[str], limit: int) -> bool:
        seen, stack = set(), [u]
        while stack:
            for w in succ.get(stack.pop(), ()):
                if w in targets:
                    return True
                if w not in seen and _rank(w) < limit:
                    seen.add(w)
                    stack.append(w)
        return False

    out = []
    for e in edges:
        others = {p for p in preds[e.dst] if p != e.src}
        skip = bool(others) and reaches(e.src, others, _rank(e.dst))
        out.append(replace(e, skip=True) if skip else e)
    return out


# -- picture -> Graphviz ----------------------------------------------------------------------
def text(value: object, limit: int = MAX_TEXT) -> str:
    """Any value as safe text for an HTML-like label: control characters and line breaks become
    spaces, the text is cut at `limit` characters, and & < > " ' become entities."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(value))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=True)


def _attr_text(value: str) -> str:
    """Any value as a plain (non-HTML) attribute string, e.g. a tooltip."""
    graphviz = _graphviz()
    s = "".join(ch if ch.isprintable() else " " for ch in value)
    return graphviz.escape(s)


def _numbers(row: Row, show: Sequence[str]) -> list[str]:
    out = []
    for item in show:
        if item == "params":
            out.append(f"{human(row.params)} params" if row.params else "")
        elif item == "macs":
            out.append(f"{human(row.macs)} MACs" if row.macs else "")
        elif item == "rf":
            rf = row.rf
            out.append("" if rf is None else f"RF {rf.size[0]}" if rf.size[0] == rf.size[1]
                       else f"RF {rf.size[0]}x{rf.size[1]}")
    return out


def _small(s: str, color: str = "#555555") -> str:
    return f'<FONT POINT-SIZE="10" COLOR="{color}">{text(s)}</FONT>' if s else ""


def _lines(lines: Sequence[str], color: str = "#555555") -> str:
    """Title lines, left-aligned, in the small font."""
    body = '<BR ALIGN="LEFT"/>'.join(text(line) for line in lines)
    return f'<FONT POINT-SIZE="10" COLOR="{color}">{body}<BR ALIGN="LEFT"/></FONT>'


def box_label(box: Box, show: Sequence[str] = (), title: str | Sequence[str] = "", rankdir: str = "TB",
              ground: str = "white") -> str:
    """The box as an HTML-like table. A cluster `title` goes beside the box (above it for LR)
    inside the same node, mirrored by an invisible copy so that the box stays centred; the box
    is the port `b` that edges attach to. A title node or a Graphviz cluster label would not do:
    edges are drawn straight through cluster labels, and extra nodes make long chains of
    clusters drift sideways."""
    table = _box_table(box, show)
    if not title:
        return f"<{table}>"
    lines = [title] if isinstance(title, str) else list(title)
    shown = f'<TD ALIGN="LEFT" VALIGN="TOP" CELLPADDING="4">{_lines(lines)}</TD>'
    hidden = f'<TD CELLPADDING="4">{_lines(lines, ground)}</TD>'
    cell = f'<TD PORT="b">{table}</TD>'
    rows = [shown + cell + hidden] if rankdir == "TB" else [shown, cell, hidden]
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
            + "".join(f"<TR>{r}</TR>" for r in rows) + "</TABLE>>")


def _box_table(box: Box, show: Sequence[str]) -> str:
    cols = 2 + len(show)
    style = ' STYLE="dashed"' if box.dashed else ""
    out = [f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="{INK}" BGCOLOR="white"{style}>']
    if box.header:
        out.append(f'<TR><TD COLSPAN="{cols}" ALIGN="LEFT"><B>{text(box.header)}</B></TD></TR>')
    if box.note:
        out.append(f'<TR><TD COLSPAN="{cols}" ALIGN="LEFT">{_small(box.note)}</TD></TR>')
    for row in box.rows:
        bg = f' BGCOLOR="{PALETTE[row.category]}"' if row.category else ""
        cells = [f'<TD ALIGN="LEFT"{bg}>{text(row.text)}</TD>',
                 f'<TD ALIGN="RIGHT"{bg}>{_small(shape_text(row.shape))}</TD>']
        cells += [f'<TD ALIGN="RIGHT"{bg}>{_small(n)}</TD>' for n in _numbers(row, show)]
        out.append("<TR>" + "".join(cells) + "</TR>")
    out.append("</TABLE>")
    return "".join(out)


def title_label(pic: Picture) -> str:
    legend = "".join(
        f'<TD BGCOLOR="{PALETTE[c]}" BORDER="1" COLOR="{INK}">{_small(LEGEND_NAMES.get(c, c), INK)}</TD>'
        for c in pic.categories()
    )
    if pic.folded():
        legend += (f'<TD BGCOLOR="{FOLDED_GROUND}" BORDER="1" COLOR="#999999">'
                   f'{_small("grey: one block drawn for ×N identical ones", INK)}</TD>')
    if legend:
        legend = f'<TR><TD><TABLE BORDER="0" CELLSPACING="3" CELLPADDING="3"><TR>{legend}</TR></TABLE></TD></TR>'
    return (f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">'
            f'<TR><TD><FONT POINT-SIZE="16"><B>{text(pic.name)}</B></FONT></TD></TR>'
            f'<TR><TD>{text(pic.summary)} · {text(pic.level)} level</TD></TR>{legend}</TABLE>>')


def to_digraph(pic: Picture, rankdir: str = "TB") -> graphviz.Digraph:
    _, rankdir = _check(pic.level, rankdir)
    g = _digraph_class()(
        name=re.sub(r"\W", "_", pic.name, flags=re.ASCII) or "network",
        graph_attr={"rankdir": rankdir, "label": title_label(pic), "labelloc": "t", "fontname": FONT,
                    "nodesep": "0.25", "ranksep": "0.3", "bgcolor": "white", "newrank": "true"},
        node_attr={"shape": "plain", "fontname": FONT, "fontsize": "11"},
        edge_attr={"arrowsize": "0.6", "color": "#555555", "fontname": FONT},
    )
    titles = _titles(pic.root)
    main, main_edges = main_path(pic)
    _emit(g, pic.root, pic.show, titles, rankdir, main)

    into, out = ("n", "s") if rankdir == "TB" else ("w", "e")

    def end(box_id: str, side: str) -> str:
        return f"{box_id}:b:{side}" if box_id in titles else box_id

    for e in pic.edges:
        attrs = {"style": "dashed"} if e.dashed else {}
        if e.skip:
            attrs["weight"] = "0"
        elif (e.src, e.dst) in main_edges:
            attrs["weight"] = "8"  # short, straight and vertical: the main path does not drift sideways
        if e.bold:
            attrs["penwidth"] = "2.5"
        if e.label:
            attrs["xlabel"] = f"<{_small(e.label)}>"
        g.edge(end(e.src, out), end(e.dst, into), **attrs)
    return g


def _titles(cluster: Cluster) -> dict[str, list[str]]:
    """Cluster titles by the box that carries them: the first box drawn in each cluster. A box that
    opens nested clusters (a stage whose first run is folded) carries their titles, outermost first."""
    out: dict[str, list[str]] = {}
    for sub in cluster.clusters:
        inner = _titles(sub)
        if sub.label:
            first = min((b.id for b in sub.all_boxes()), key=_rank)
            inner[first] = [sub.label, *inner.get(first, [])]
        out.update(inner)
    return out


def main_path(pic: Picture) -> tuple[set[str], set[tuple[str, str]]]:
    """The boxes and edges of the longest path from the input to the output, skips and auxiliary heads
    left out: drawn straight down the middle (Graphviz `group` and edge weight), branches beside it."""
    boxes = [b for b in pic.boxes() if not b.dashed]
    if not boxes:
        return set(), set()
    preds: dict[str, list[str]] = {}
    for e in pic.edges:
        if not e.skip and not e.dashed:
            preds.setdefault(e.dst, []).append(e.src)
    length: dict[str, int] = {}
    best: dict[str, str] = {}
    for box in sorted(boxes, key=lambda b: _rank(b.id)):  # ids are made in topological order
        length[box.id] = 1
        for p in preds.get(box.id, ()):
            if p in length and length[p] + 1 > length[box.id]:
                length[box.id], best[box.id] = length[p] + 1, p
    node = max(boxes, key=lambda b: _rank(b.id)).id  # the head's last box
    path, edges = {node}, set()
    while node in best:
        edges.add((best[node], node))
        node = best[node]
        path.add(node)
    return path, edges


def _emit(g: graphviz.Digraph, cluster: Cluster, show: Sequence[str], titles: dict[str, list[str]], rankdir: str,
          main: set[str] = frozenset(), ground: str = "white") -> None:
    for box in cluster.boxes:
        attrs = {"tooltip": _attr_text(_tooltip(box))} if box.paths else {}
        if box.id in main:
            attrs["group"] = "main"
        elif box.group:
            attrs["group"] = box.group
        g.node(box.id, box_label(box, show, titles.get(box.id, ()), rankdir, ground), **attrs)
    for sub in cluster.clusters:
        with g.subgraph(name=f"cluster_{sub.id}") as c:
            inner = FOLDED_GROUND if sub.folded else ground  # (Graphviz clusters inherit their parent's fill)
            c.attr(label="", style="rounded,filled,dashed" if sub.dashed else "rounded,filled", fillcolor=inner,
                   color="#999999" if sub.folded else "#aaaaaa")
            _emit(c, sub, show, titles, rankdir, main, inner)
    for row in cluster.orders:
        with g.subgraph() as same:
            same.attr(rank="same")
            for a, b in itertools.pairwise(row):
                same.edge(a, b, style="invis")


def _tooltip(box: Box) -> str:
    if len(box.paths) == 1:
        return box.paths[0]
    return f"{box.paths[0]} … {box.paths[-1]} ({len(box.paths)} layers)"


def diagram_network(net: Network, level: str = "block", show: str | Iterable[str] | None = (),
                    rankdir: str = "TB", fold: bool | None = None) -> graphviz.Digraph:
    return to_digraph(picture(net, level, show, fold=fold), rankdir)


# -- output -----------------------------------------------------------------------------------
def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ArchspecError(f"cannot tell the diagram format from '{path}': use a file name ending in "
                            f"{', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


DOT_TIMEOUT_S = 60.0


class DotTimeout(ArchspecError):
    """Graphviz's `dot` took longer than its time limit (a layer-level diagram of thousands of blocks)."""


# Boxes (nodes) `dot` lays out within its time limit: its time grows faster than the box count
# (measured on a loaded 2-core machine: 1,800 boxes 3 s, 3,600 boxes 19 s, 7,200 boxes 46 s).
MAX_DOT_NODES = 4000
_NODE = re.compile(r"^\s*(\"(?:[^\"\\]|\\.)*\"|[^\s\"\[\]{}]+)\s*\[", re.M)


class DiagramTooLarge(ArchspecError):
    """A diagram with more boxes than `dot` lays out within its time limit; refused before `dot` starts."""


def check_drawable(source: str) -> None:
    """Refuse a DOT source of more than MAX_DOT_NODES boxes before `dot` is started (it would run
    its full time limit, then fail), naming the ways to a smaller drawing."""
    nodes = sum(1 for m in _NODE.finditer(source) if m.group(1) not in ("graph", "node", "edge"))
    if nodes > MAX_DOT_NODES:
        raise DiagramTooLarge(f"the diagram has {nodes:,} boxes, more than Graphviz's `dot` lays out in "
                              f"{DOT_TIMEOUT_S:g} s ({MAX_DOT_NODES:,}); draw runs of identical blocks once (--fold, "
                              "fold=True in the API), a coarser level (--level block or --level stage), or write "
                              "the DOT source (-o FILE.dot) and run `dot` yourself")


def render_bytes(source: str, fmt: str, timeout: float | None = None) -> bytes | None:
    """DOT `source` drawn by Graphviz's `dot` in format `fmt` (svg, png, pdf), or None without `dot`.

    `dot` runs at most `timeout` seconds (DOT_TIMEOUT_S by default); then DotTimeout."""
    import subprocess

    dot = shutil.which("dot")
    if dot is None:
        return None
    limit = DOT_TIMEOUT_S if timeout is None else timeout
    check_drawable(source)
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, timeout=limit,
                              check=False)
    except subprocess.TimeoutExpired:
        raise DotTimeout(f"Graphviz's `dot` did not finish drawing within {limit:g} s; draw a coarser level "
                         "(--level block or --level stage, level= in the API), or write the DOT source "
                         "(-o FILE.dot) and run `dot` yourself") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ArchspecError(f"Graphviz's `dot` failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout


def check_dpi(dpi: float | None) -> float | None:
    if dpi is not None and not 10 <= dpi <= 1200:
        raise ArchspecError(f"dpi is between 10 and 1200, got {dpi:g}")
    return dpi


def render(g: graphviz.Digraph, path: str | Path, dpi: float | None = None,
           protect: Iterable[str | Path] = ()) -> Path:
    """Write `g` to `path` in the format its extension names, atomically, never over a file in
    `protect` (the spec drawn); `dpi` sets a PNG's resolution (Graphviz's default is 96; vector
    formats ignore it).

    Without Graphviz's `dot`, the DOT source goes next to `path` (same name, `.dot`) and
    `DotMissing` says how to install Graphviz.
    """
    from ..core.atomic import write_atomic

    path = Path(path)
    fmt = output_format(path)
    if check_dpi(dpi) is not None:
        if fmt == "png":
            g = g.copy()
            g.attr(dpi=f"{dpi:g}")
    if fmt == "dot":
        write_atomic(path, g.source, protect=protect)
        return path
    data = render_bytes(g.source, fmt)
    if data is None:
        fallback = path.with_suffix(".dot")
        write_atomic(fallback, g.source, protect=protect)
        raise DotMissing(f"Graphviz's `dot` program was not found, so {path} was not drawn; wrote the DOT source to "
                         f"{fallback} instead. To draw it, {INSTALL_HINT}, then run "
                         f"`dot -T{fmt} {fallback} -o {path}` or this command again.")
    write_atomic(path, data, protect=protect)
    return path
