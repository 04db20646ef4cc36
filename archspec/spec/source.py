"""Safe YAML loading that remembers where every value came from.

PyYAML's safe loader already refuses to construct Python objects, but it forgets
positions, silently keeps the last of two duplicate keys, expands aliases without
bound and recurses without limit. This loader composes the node tree with PyYAML
and then builds plain Python data itself, so that it can:

* record `file:line:column` for every value and every key (`Source.where`);
* refuse duplicate keys, non-standard tags, binary or non-UTF-8 input, tab
  indentation, oversized files, deep nesting and alias bombs, each with a location.
"""

from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core import memo
from ..core.errors import Location, Problem, SpecError, SpecPath
from ..core.reading import InputFileError, read_regular

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec is a page of text, not a data set.
MAX_NODES = 20_000  # values in a spec, aliases counted each time they are used (zoo specs: a few hundred)
MAX_DEPTH = 64  # nesting of mappings and lists.

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


@dataclass
class Source:
    """Plain data loaded from one document, with the location of each value and key."""

    data: Any
    name: str
    values: dict[SpecPath, Location] = field(default_factory=dict)
    keys: dict[SpecPath, Location] = field(default_factory=dict)

    def where(self, path: SpecPath, key: bool = False) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        return locate(self.values, self.keys, path, key, Location(self.name, 1, 1))


def locate(values: dict[SpecPath, Location], keys: dict[SpecPath, Location], path: SpecPath, key: bool,
           fallback: Location) -> Location:
    """Where `path` is written: its key's location when `key` and it has one, else its value's or
    that of its nearest ancestor with one, else the document's, else `fallback`."""
    path = tuple(path)
    if key and path in keys:
        return keys[path]
    while path:
        if path in values:
            return values[path]
        path = path[:-1]
    return values.get((), fallback)


def _loc(name: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(name)
    return Location(name, mark.line + 1, mark.column + 1)


def _fail(name: str, message: str, mark: yaml.Mark | Location | None = None, path: SpecPath = ()) -> SpecError:
    where = mark if isinstance(mark, Location) else _loc(name, mark)
    return SpecError(Problem(message, path, where))


def _byte_location(raw: bytes, offset: int, name: str) -> Location:
    """The line and column of a byte offset (the column counts characters before it on its line)."""
    start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[start:offset].decode("utf-8", errors="replace")) + 1
    return Location(name, raw.count(b"\n", 0, offset) + 1, column)


def _tag_error(name: str, node: yaml.Node, path: SpecPath) -> SpecError:
    tag = str(node.tag)
    shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
    return _fail(name, f"tag '{shown}' is not allowed: a spec holds only plain values, lists and mappings",
                 node.start_mark, path)


def _decode(raw: bytes, name: str) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(Problem(f"the file is larger than {MAX_FILE_BYTES:,} bytes, too large for a spec",
                                (), Location(name, 1, 1)))
    if b"\x00" in raw:
        raise SpecError(Problem("this is a binary file, not a YAML spec (it contains NUL bytes)", (),
                                _byte_location(raw, raw.index(b"\x00"), name)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(Problem(f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8", (),
                                _byte_location(raw, exc.start, name))) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    for number, line_text in enumerate(text.splitlines(), start=1):
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        if "\t" in indent:
            raise SpecError(
                Problem("tab used for indentation; YAML needs spaces", (), Location(name, number, indent.index("\t") + 1))
            )
    return text


try:  # libyaml's parser: ten times faster than PyYAML's, and a state machine (no recursion)
    from yaml._yaml import CParser as _Parser

    _FAST = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _FAST = False


class _PureLoader(yaml.SafeLoader):
    pass


if _FAST:
    class _FastLoader(yaml.composer.Composer, _Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml parses into events; PyYAML's (Python) composer builds the nodes, so that the
        depth and size checks below apply while composing."""

        def __init__(self, stream: str):
            _Parser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

    _Base: type = _FastLoader
else:  # pragma: no cover
    _Base = _PureLoader


class _Loader(_Base):
    """A safe loader that refuses deep nesting and huge documents while composing.

    The composer recurses once per level, so the depth is checked before each node;
    nodes are counted (an alias once) so that a big file stops early.
    """

    def __init__(self, stream: str, name: str):
        super().__init__(stream)
        self.spec_name = name
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _fail(self.spec_name, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            if self.nodes > MAX_NODES:
                raise _fail(self.spec_name, f"the spec has more than {MAX_NODES:,} values; a spec is a page of text",
                            self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# `1e-6` and `1e5` are numbers in YAML 1.2 (and to the JSON schema an editor checks a spec
# against), text in PyYAML's YAML 1.1, whose floats need a dot and a signed exponent (`1.0e-6`).
# A spec writes `eps: 1e-6`: it is read as the number it is (and `sha256: 1234e567`, as YAML 1.2
# reads it, a number too: quote such a text).
_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_KIND_WORDS = {"str": "string", "int": "number", "float": "number", "bool": "boolean", "list": "list"}


class _Builder:
    """Turns a composed node tree into plain data, recording locations."""

    def __init__(self, source: Source, loader: yaml.SafeLoader):
        self.source = source
        self.loader = loader
        self.count = 0
        self.active: set[int] = set()  # ids of the collections being built: an alias to one is a cycle

    def build(self, node: yaml.Node, path: SpecPath, depth: int) -> Any:
        name = self.source.name
        self.count += 1
        if self.count > MAX_NODES:
            top = path[:2] if path[:2] in self.source.keys else path[:1]
            raise _fail(name, f"aliases expand the document to more than {MAX_NODES:,} values (a \"billion laughs\" "
                              "file?); write the values out instead", self.source.keys.get(top, node.start_mark), top)
        if depth > MAX_DEPTH:
            raise _fail(name, f"nested deeper than {MAX_DEPTH} levels", node.start_mark, path[:1])
        self.source.values.setdefault(path, _loc(name, node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _PLAIN_TAGS:
                raise _tag_error(name, node, path)
            if node.tag == _STR_TAG:  # what construct_object returns for a string, without its bookkeeping
                return node.value
            value = self.loader.construct_object(node)
            if isinstance(value, (datetime.date, datetime.datetime)):
                return str(node.value)
            return value
        if id(node) in self.active:
            raise _fail(name, "an alias refers to a list or mapping that contains it", node.start_mark, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != "tag:yaml.org,2002:seq":
                    raise _tag_error(name, node, path)
                return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise _fail(name, "unsupported YAML node", node.start_mark, path)  # pragma: no cover

    def mapping(self, node: yaml.MappingNode, path: SpecPath, depth: int) -> dict:
        name = self.source.name
        if node.tag != "tag:yaml.org,2002:map":
            raise _tag_error(name, node, path)
        out: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise _fail(name, "mapping keys must be plain strings or numbers", key_node.start_mark, path)
            key = key_node.value if key_node.tag == _STR_TAG else self.loader.construct_object(key_node)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key_node.value)
            if key in out:
                first = self.source.keys.get(path + (key,))
                raise _fail(name, f"duplicate key '{key}' (first defined at {first})", key_node.start_mark, path + (key,))
            # setdefault: a key written in the mapping keeps its location over the same key merged in by `<<`.
            self.source.keys.setdefault(path + (key,), _loc(name, key_node.start_mark))
            out[key] = self.build(value_node, path + (key,), depth + 1)
        # YAML merge keys (`<<: *base` or `<<: [*a, *b]`): written keys win, then earlier merged mappings.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for item in sources:
                if not isinstance(item, yaml.MappingNode):
                    raise _fail(name, "'<<' merges mappings only, e.g. `<<: *defaults`", item.start_mark, path)
                for key, value in self.build(item, path, depth + 1).items():
                    out.setdefault(key, value)
        return out


def parse_text(text: str | bytes, name: str = "<string>") -> Source:
    """Parse one YAML document into a `Source`; raise `SpecError` with a location on any problem."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    decoded = _decode(raw, name)
    source = Source(data=None, name=name)
    loader = _Loader(decoded, name)
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as exc:
            if "expected a single document" in str(exc):
                raise _fail(name, "a spec holds exactly one YAML document (found '---' starting another)",
                            exc.problem_mark) from None
            raise
        if node is None:
            raise SpecError(Problem("the spec is empty", (), Location(name, 1, 1)))
        source.data = _Builder(source, loader).build(node, (), 0)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = (exc.problem or str(exc)).strip()
        context_at = exc.context_mark and f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        if exc.context and context_at and exc.context.startswith("while "):
            # "while parsing a flow mapping" + where it started: usually where the mistake is (a missing '}').
            context = exc.context.strip().replace("while parsing a", "in the")
            message += f" ({context} that starts at {context_at})"
        elif exc.context and context_at:
            message = f"{exc.context.strip()} at {context_at}; {message} here"
        elif exc.context:
            message = f"{exc.context.strip()}: {message}"
        raise _fail(name, f"invalid YAML: {message}", mark) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(f"invalid YAML: {exc}", (), Location(name))) from None
    except RecursionError:  # pragma: no cover - the depth checks above come first
        raise SpecError(Problem(f"nested too deeply (more than {MAX_DEPTH} levels)", (), Location(name))) from None
    finally:
        getattr(loader, "dispose", lambda: None)()
    if not isinstance(source.data, dict):
        kind = "null" if source.data is None else _KIND_WORDS.get(type(source.data).__name__, type(source.data).__name__)
        raise SpecError(Problem(f"a spec must be a mapping of keys to values, not a {kind}", (), source.where(())))
    return source


def check_plain(data: Any, name: str) -> None:
    """Refuse in-memory data (a dict, checkpoint metadata) beyond the limits of a spec file:
    nesting deeper than MAX_DEPTH, more than MAX_NODES values. Walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise SpecError(Problem(f"nested deeper than {MAX_DEPTH} levels", (), Location(name)))
        if count > MAX_NODES:
            raise SpecError(Problem(f"the spec has more than {MAX_NODES:,} values; a spec is a page of text",
                                    (), Location(name)))
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)


def read_file(path: str | Path) -> Source:
    """Parse the spec file `path`: a regular file, read only up to the size limit."""
    path = Path(path)
    try:  # bounded: /dev/zero or a huge file must not fill memory; a named pipe must not block
        raw = read_regular(path, MAX_FILE_BYTES)
    except InputFileError as exc:
        reason = exc.reason.replace("not a regular file", "not a spec file")
        raise SpecError(Problem(reason, (), Location(str(path)))) from None
    if len(raw) > MAX_CACHED_BYTES:
        return parse_text(raw, str(path))
    key = (str(path), raw)
    parsed = _PARSED.get(key)
    if parsed is memo.MISS:
        parsed = _PARSED.put(key, parse_text(raw, str(path)))
    return Source(plain_copy(parsed.data), parsed.name, dict(parsed.values), dict(parsed.keys))


MAX_CACHED_BYTES = 1 << 16
# Files parsed in this process, by path and content: a zoo's specs extend a few parents, and
# analysis is asked for the same spec again and again. Callers get their own copy of the data.
_PARSED: memo.Memo[Source] = memo.Memo("spec.files", 64)


def plain_copy(value: Any) -> Any:
    """A copy of a document's data: new mappings and lists, the same text, numbers and None, and
    anything else (a tuple, a set, an object in in-memory data) deep-copied. A third of
    `copy.deepcopy`'s time on plain data, which has no references to keep (a sweep copies each
    sample's overrides)."""
    kind = type(value)
    if kind is dict:
        return {k: plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [plain_copy(v) for v in value]
    if kind in _SHARED:
        return value
    return copy.deepcopy(value)


_SHARED = frozenset({str, int, float, bool, type(None)})  # immutable: a copy is the value itself


def checked_copy(data: dict, name: str) -> dict:
    """`plain_copy(data)` of in-memory data, after `check_plain` has held it to a spec file's limits
    (a list that holds itself, or lists shared a hundred times over, would not fit in memory copied)."""
    check_plain(data, name)
    return plain_copy(data)
