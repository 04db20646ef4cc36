"""Python export: the model class that puts stem, stages, heads and parts together, and the file."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from ...core.formatting import shape_text
from ... import __version__
from ...core.naming import class_name, unique
from ...ir.graph import PART_GROUPS, Graph, Network
from ..plan import head_runs, plan_graph, tap_runs
from ..source_format import INDENT, WIDTH, Call, Expr, render

from .names import INIT_FUNCTIONS, Imports, RESERVED_CLASSES, definition_source
from .classes import ABSENT, ClassDesign, Member, step_key, design_class
from .writer import ClassWriter, assign_line, docstring_safe, literal, read_path


# -- the model ------------------------------------------------------------------------------------------------
def _model_class_name(name: str) -> str:
    return class_name(name) if name else "Network"


@dataclass
class _Family:
    designs: list[ClassDesign]
    instance: dict[int, tuple[ClassDesign, int]]  # graph id -> (design, member index)


def _signature(m: Member) -> str:
    """What `design_class` compares: step names, their keys and wiring, the output; not the
    constructor values (those become arguments). Members with equal signatures can always share
    a class, and whether a set of members can depends only on its set of signatures."""
    steps = tuple((s.name, step_key(s), tuple(m.input_names(s))) for s in m.plan.steps)
    return repr((steps, m.output_name))


def _designs(name: str, graphs: list[Graph], taken: set[str]) -> _Family:
    """Classes for graphs of one kind: as few as the rule in the module docstring allows.

    The greedy grouping runs over distinct signatures (a few per family), not over blocks, so a
    spec of thousands of blocks costs one plan per distinct graph and one pass to write."""
    distinct: dict[int, Graph] = {id(g): g for g in graphs}  # a stage repeats one Graph object
    members = {k: Member(plan_graph(g), g.in_shape[0], g.out_shape[0], inputs=len(g.input_shapes))
               for k, g in distinct.items()}
    by_signature: dict[str, list[int]] = {}
    for k, m in members.items():
        by_signature.setdefault(_signature(m), []).append(k)
    position = {k: i for i, k in enumerate(members)}
    pending = list(by_signature)  # in block order of first appearance
    family = _Family([], {})
    while pending:
        # The largest prefix-free set that one class can write, grown greedily in block order.
        chosen = [pending[0]]
        for sig in pending[1:]:
            if design_class("", [members[by_signature[s][0]] for s in chosen + [sig]]) is not None:
                chosen.append(sig)
        keys = sorted((k for s in chosen for k in by_signature[s]), key=position.__getitem__)
        design_name = unique(name, taken)
        taken.add(design_name)
        design = design_class(design_name, [members[k] for k in keys])
        assert design is not None
        family.designs.append(design)
        for index, k in enumerate(keys):
            family.instance[k] = (design, index)
        pending = [s for s in pending if s not in chosen]
    return family


def _instantiate(design: ClassDesign, member: int) -> Call:
    kwargs = [(a.name, literal(a.values[member])) for a in design.arguments if a.values[member] is not ABSENT]
    return Call(design.name, [], kwargs)


# The containers are the torch backend's own (`torch_layers`), copied, so the two cannot drift.
CONTAINERS = "archspec.backends.torch_layers"


def python_source(net: Network, params: int | None = None) -> str:
    """The network as the text of a standalone Python module (see the module docstring).

    `params` (the parameter count, for the docstring) is computed when not given.
    """
    if params is None:
        from ...analysis import analyze_network

        params = analyze_network(net).params
    taken: set[str] = set(RESERVED_CLASSES)
    imports = Imports(taken)
    graphs: dict[str, dict[str, list[Graph]]] = {}  # group -> kind -> graphs, in module order
    stage_graphs: list[list[Graph]] = [[] for _ in net.stages]
    for part in net.parts():
        graphs.setdefault(part.group, {}).setdefault(part.family, []).append(part.graph)
        if part.group == "stages":
            stage_graphs[part.stage].append(part.graph)  # type: ignore[index]  # a block's part always has its stage index
    stem, head = (_designs(class_name(k), g, taken) for group in ("stem", "head") for k, g in graphs[group].items())
    aux = next((_designs(class_name(k), g, taken) for k, g in graphs.get("aux", {}).items()), None)
    families = {f: _designs(class_name(f), g, taken) for f, g in graphs.get("stages", {}).items()}
    family_of = {id(g): f for f, gs in graphs.get("stages", {}).items() for g in gs}
    kinds: dict[str, list[Graph]] = {}  # necks and heads, by part type (two FCN heads: one class)
    for group in PART_GROUPS:
        for k, g in graphs.get(group, {}).items():
            kinds.setdefault(k, []).extend(g)
    attached = {k: _designs(class_name(k), g, taken) for k, g in kinds.items()}
    docs = {design.name: _family_doc(f) for f, fam in families.items() for design in fam.designs}
    classes: list[str] = []
    for fam, doc in [(stem, "The stem."), *((families[f], None) for f in families), (head, "The head."),
                     *([(aux, "An auxiliary classifier (run in training only).")] if aux else []),
                     *((attached[k], _family_doc(k)) for k in attached)]:
        for design in fam.designs:
            classes.append(ClassWriter(design, imports, doc or docs[design.name]).source())

    def make(fam: _Family, graph: Graph) -> Call:
        design, member = fam.instance[id(graph)]
        return _instantiate(design, member)

    stage_calls: list[Expr] = [
        Call("Stage", [make(families[family_of[id(g)]], g) for g in stage]) for stage in stage_graphs]
    model_name = unique(_model_class_name(net.name), taken)
    init = [f"{INDENT * 2}super().__init__()"]
    init += render(make(stem, graphs["stem"]["stem"][0]), 2, "self.stem = ")
    init += render(Call("nn.Sequential", stage_calls), 2, "self.stages = ")
    if aux:
        init += render(Call("nn.ModuleList", [Call("", [make(aux, g) for g in graphs["aux"]["aux_head"]], brackets="[]")]),
                       2, "self.aux_heads = ")
    if head_runs(net):
        init += render(make(head, graphs["head"]["head"][0]), 2, "self.head = ")
    for group in PART_GROUPS:
        if any(p.group == group for p in net.attached):
            init += assign_line(group, "nn.Module()", 2)
        for part in (p for p in net.attached if p.group == group):
            init += assign_line(part.path, make(attached[part.family], part.graph), 2)
    if aux:
        init.append(f"{INDENT * 2}self.aux_after = {tuple(a.after for a in net.aux_heads)!r}")
    initialised = _init_section(net, imports)
    if initialised:
        init.append(f"{INDENT * 2}init_weights(self, INIT_KINDS, INIT_BY_NAME)")
    forward = _taps_forward(net, imports) if net.taps else _model_forward(bool(aux))
    doc = _model_doc(net, params, bool(initialised))
    model = "\n".join([f"class {model_name}(nn.Module):", *doc, "",
                       f"{INDENT}def __init__(self) -> None:", *init, "", *forward])

    copied = imports.copied_classes()  # after every class is written: they register what they use
    header = imports.header()
    parts = ["\n".join(_module_doc(net, model_name)) + "\n\n" + "\n".join(header), *copied, *initialised, *classes,
             definition_source(f"{CONTAINERS}.Stage"), model]
    return "\n\n\n".join(parts) + "\n"


def _family_doc(family: str) -> str:
    """The first paragraph of the family's docstring (it shows the spec form), or a plain description."""
    from ...spec.families import BLOCKS, load_builtin_blocks

    load_builtin_blocks()
    doc = (BLOCKS[family].__doc__ or "").strip() if family in BLOCKS else ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first or f"A `{family}` block."


def _model_forward(aux: bool) -> list[str]:
    """The `forward` of the compiled container (`torch_layers.Network` or `AuxNetwork`), copied."""
    text = definition_source(f"{CONTAINERS}.{'AuxNetwork' if aux else 'Network'}", "forward")
    return [line and INDENT + line for line in text.splitlines()]


def _taps_forward(net: Network, imports: Imports) -> list[str]:
    """A forward that runs what the taps need (`plan.tap_runs`): the chain, keeping the values that
    taps and parts read in `values`, then the necks and heads; it returns the taps by name."""
    imports.ordered_dict = True
    body = [f"{INDENT * 2}values: dict[str, torch.Tensor] = {{\"input\": x}}"]
    for path, ins, outs in tap_runs(net):
        if ins == ("x",):
            body.append(f"{INDENT * 2}x = {read_path(path)}(x)")
            body += [f"{INDENT * 2}values[{literal(key)}] = x" for key in outs[1:]]
            continue
        call = Call(read_path(path), [f"values[{literal(key)}]" for key in ins])
        if len(outs) == 1:
            body += render(call, 2, f"values[{literal(outs[0])}] = ")
        else:
            keys = Call("", [literal(k) for k in outs])
            body += render(Call("values.update", [Call("zip", [keys, call], [("strict", "True")])]), 2)
    pairs = [Call("", [literal(t.name), f"values[{literal(t.path)}]"]) for t in net.taps]
    body += render(Call("OrderedDict", [Call("", pairs, brackets="[]")]), 2, "return ")
    return [f"{INDENT}def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:", *body]


def _shape(shape: Iterable[int]) -> str:
    return shape_text(shape)


def _init_section(net: Network, imports: Imports) -> list[str]:
    """The spec's `init` rules as constants and the functions that apply them; none if all default."""
    if net.init is None or net.init.is_default:
        return []
    imports.standard |= {"fnmatch", "math", "re"}
    kinds, by_name = net.init.tables()

    def table(rules: dict[str, tuple[str, str]]) -> Call:
        return Call("", [f"{literal(k)}: {literal(v)}" for k, v in rules.items()], brackets="{}")

    constants = ["# The spec's `init` section: (weight, bias) schemes per kind of layer, then by",
                 "# module path (glob patterns; the last match wins). See init_scheme for the schemes.",
                 *render(table(kinds), 0, "INIT_KINDS: dict[str, tuple[str, str]] = "),
                 *render(table(by_name), 0, "INIT_BY_NAME: dict[str, tuple[str, str]] = ")]
    functions = [definition_source(f"archspec.backends.torch_init.{name}") for name in INIT_FUNCTIONS]
    return ["\n".join(constants), *functions]


def _model_doc(net: Network, params: int, initialised: bool) -> list[str]:
    name = docstring_safe(net.name)
    lines = [f"{name}: input N x {_shape(net.input_shape)}, output N x {_shape(net.output_shape)}.", ""]
    how = "as the spec says (init_weights)" if initialised else "by PyTorch's defaults"
    lines.append(f"{params:,} parameters, initialised {how}.")
    lines.append("Load trained weights with `load_state_dict`: the keys are those of `archspec.build`.")
    if net.aux_heads:
        lines += ["", "In training, forward returns (logits, *aux_logits); in eval, the logits."]
    if net.taps:
        lines[0] = f"{name}: input N x {_shape(net.input_shape)}."
        names = docstring_safe(", ".join(t.name for t in net.taps))
        lines += ["", *textwrap.wrap(f"forward returns an ordered dict: {names}.", WIDTH - 4, break_long_words=False)]
    return [f'{INDENT}"""{lines[0]}'] + [INDENT + line if line else "" for line in lines[1:]] + [f'{INDENT}"""']


def _module_doc(net: Network, model_name: str) -> list[str]:

    first = f'"""{docstring_safe(net.name)}: standalone PyTorch source, exported by archspec {__version__}.'
    if len(first) > WIDTH:  # a long name (fasterrcnn_mobilenet_v3_large_320_fpn_backbone) gets a line of its own
        first = f'"""{docstring_safe(net.name)}:\nStandalone PyTorch source, exported by archspec {__version__}.'
    text = [*first.split("\n"), ""]
    for paragraph in net.description.strip().split("\n") if net.description else []:
        text += textwrap.wrap(docstring_safe(paragraph), WIDTH - 2, break_long_words=False) or [""]
    if net.description:
        text.append("")
    text += ["Needs only torch:", "", f"    model = {model_name}()", '"""']
    return text
