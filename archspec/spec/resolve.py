"""Resolve a spec into one fully explicit document: extends, overrides, `${...}` variables.

Order: load the file and its `extends` chain (a child's mappings merge into its
parent's, a child's lists and scalars replace the parent's), apply overrides
(`--set input.size=[32,32]`, API keyword arguments), then substitute `${expr}`
using `vars` and the top-level keys. Every value keeps the location of the file
and line that gave it, so errors point at the right file even through `extends`.
"""

from __future__ import annotations

import itertools
import marshal
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from ..core import memo
from ..core.errors import OVERRIDE_NAME, Location, Problem, SpecError, SpecPath, did_you_mean, format_path
from . import catalog as zoo
from .list_edits import EDITABLE_ROOTS, edit_key, find_item, no_item
from ..core.reading import InputFileError, check_regular, kind_of, path_state
from ..core.naming import parse_index
from .expr import MAX_RESULT_ITEMS, MAX_VAR_DEPTH, ExprError, substitute
from .source import MAX_DEPTH, MAX_NODES, Source, checked_copy, locate, parse_text, read_file

MAX_EXTENDS_DEPTH = 16


class Locator:
    """Locations of the values of a merged document, and the extends chain of each file.

    Changes to the tables (`drop_under`, `set_value`) are logged and applied when a location is
    first asked for, and a `copy` shares its tables until then: a sweep resolves thousands of
    samples from one base document, and only those that fail ever read a location."""

    def __init__(self, values: dict[SpecPath, Location] | None = None, keys: dict[SpecPath, Location] | None = None,
                 chains: dict[str, tuple[str, ...]] | None = None, root: str = "<spec>",
                 files: list[str] | None = None):
        self._values = {} if values is None else values
        self._keys = {} if keys is None else keys
        self.chains = {} if chains is None else chains
        self.root = root
        self.files = [] if files is None else files  # every file read: the spec, its parents, its includes
        self._shared = False  # the tables are another locator's too: copy them before they change
        self._changes: list[tuple[SpecPath, Location | None]] = []  # (path, None): drop_under(path)

    @classmethod
    def of(cls, source: Source, chain: tuple[str, ...]) -> "Locator":
        files = [] if source.name.startswith("<") else [source.name]
        return cls(dict(source.values), dict(source.keys), {source.name: chain}, source.name, files)

    def copy(self) -> "Locator":
        """A locator that starts as this one and then changes on its own."""
        self._settle()
        other = Locator(self._values, self._keys, dict(self.chains), self.root, list(self.files))
        self._shared = other._shared = True
        return other

    @property
    def values(self) -> dict[SpecPath, Location]:
        """The location of each value, by path (a table the caller may change)."""
        self._settle()
        return self._values

    @property
    def keys(self) -> dict[SpecPath, Location]:
        """The location of each mapping key, by path (a table the caller may change)."""
        self._settle()
        return self._keys

    def where(self, path: SpecPath, key: bool = False) -> Location:
        """The location of `path`, or of its nearest ancestor that has one (`source.locate`)."""
        return locate(self.values, self.keys, path, key, Location(self.root))

    def problem(self, message: str, path: SpecPath, key: bool = False) -> Problem:
        location = self.where(path, key)
        return Problem(message, tuple(path), location, self.chains.get(location.file, ()))

    def drop_under(self, path: SpecPath) -> None:
        """Forget the locations below `path` (its value was replaced)."""
        self._changes.append((tuple(path), None))

    def set_value(self, path: SpecPath, where: Location) -> None:
        """`path`'s value now comes from `where`."""
        self._changes.append((tuple(path), where))

    def _settle(self) -> None:
        """Apply the logged changes, in order, to tables of this locator's own."""
        if not self._changes and not self._shared:
            return
        if self._shared:
            self._values, self._keys, self._shared = dict(self._values), dict(self._keys), False
        changes, self._changes = self._changes, []
        for path, where in changes:
            if where is None:
                self._drop_under(path)
            else:
                self._values[path] = where

    def _drop_under(self, path: SpecPath) -> None:
        n = len(path)
        if not n:
            for table in (self._values, self._keys):
                for p in [p for p in table if p]:
                    del table[p]
            return
        first = path[0]
        for table in (self._values, self._keys):
            for p in [p for p in table if p and p[0] == first and len(p) > n and p[:n] == path]:
                del table[p]

    def rename(self, old: SpecPath, new: SpecPath) -> None:
        """Re-key the locations under `old` to `new` (a list item addressed by name, then by index)."""
        n = len(old)
        for table in (self.values, self.keys):
            for p in [p for p in table if p[:n] == old]:
                table[new + p[n:]] = table.pop(p)

    def overlay(self, child: "Locator", data: Any, path: SpecPath = ()) -> None:
        """Take the child's locations wherever the child's document gave the value."""
        values, keys = self.values, self.keys
        values.update(child.values)
        keys.update(child.keys)
        self.chains.update(child.chains)
        self.root = child.root
        self.files = child.files + [f for f in self.files if f not in child.files]

    def _fields(self) -> tuple:
        return self.values, self.keys, self.chains, self.root, self.files

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Locator) and self._fields() == other._fields()

    __hash__ = None  # mutable, as the dataclass it was

    def __repr__(self) -> str:
        values, keys, chains, root, files = self._fields()
        return f"Locator(values={values!r}, keys={keys!r}, chains={chains!r}, root={root!r}, files={files!r})"


def _merge(parent: Any, child: Any, path: SpecPath, locator: Locator, edits: Locator | None = None) -> Any:
    """Deep-merge mappings; a mapping over a list edits items of the list (`stages: {2: {repeat: 27}}`,
    `stages: {denseblock3: {repeat: 32}}`); anything else in the child replaces the parent's value.

    `edits` is the child's locator: list edits by name are re-keyed there to the item's index, and
    a key that selects no item is an error located in the child."""
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for key, value in child.items():
            out[key] = _merge(parent[key], value, path + (key,), locator, edits) if key in parent else value
        return out
    if isinstance(parent, list) and isinstance(child, dict) and path[:1] and path[0] in EDITABLE_ROOTS:
        return _edit_items(parent, child, path, locator, edits)
    locator.drop_under(path)
    return child


def _edit_items(parent: list, child: dict, path: SpecPath, locator: Locator, edits: Locator | None) -> list:
    """The parent's list with the child's edits (list_edits.py): `KEY: {...}` merges into the item
    KEY selects, `KEY: null` deletes it, `before KEY` / `after KEY: [items]` insert items there and
    `append: [items]` adds them at the end. Every KEY selects an item of the parent's list."""
    own = edits or locator
    changed: dict[int, tuple[Any, Any]] = {}  # parent index -> (key, value: a mapping to merge, or None)
    placed: dict[tuple[int, str], list[tuple[Any, list]]] = {}  # (index, before/after) -> (key, items)
    appended: list[tuple[Any, list]] = []
    for key, value in child.items():
        where, target = edit_key(key)
        if where is not None and not isinstance(value, list):
            raise SpecError(own.problem(f"'{key}' takes a list of items to insert, e.g. `{key}: [{{...}}]`",
                                        path + (key,)))
        if where == "append":
            appended.append((key, value))
            continue
        index = find_item(parent, target)
        if index is None:
            raise SpecError(own.problem(no_item(target, parent), path + (key,), key=True))
        if where is None:
            if index in changed:
                raise SpecError(own.problem(f"item {index} is edited twice (as {changed[index][0]!r} and {key!r})",
                                            path + (key,), key=True))
            changed[index] = (key, value)
        else:
            placed.setdefault((index, where), []).append((key, value))
    if not placed and not appended and all(v is not None for _, v in changed.values()):  # edits in place
        out = list(parent)
        for index, (key, value) in changed.items():
            if edits is not None and key != index:
                edits.rename(path + (key,), path + (index,))
            out[index] = _merge(parent[index], value, path + (index,), locator, edits)
        return out
    # Items move: lay the list out, re-key every location to the item's new index, then merge.
    layout: list[tuple[str, Any, Any]] = []  # ("parent", index, edit) or ("child", (key, k), item)
    for i in range(len(parent)):
        layout += [("child", (key, k), new) for key, items in placed.get((i, "before"), []) for k, new in enumerate(items)]
        key, value = changed.get(i, (None, {}))
        if value is not None:
            layout.append(("parent", i, (key, value)))
        else:
            locator.drop_under(path + (i,))
            if edits is not None:  # the `KEY: null` that deleted it: no item is there any more
                edits.drop_under(path + (key,))
                edits.values.pop(path + (key,), None)
        layout += [("child", (key, k), new) for key, items in placed.get((i, "after"), []) for k, new in enumerate(items)]
    layout += [("child", (key, k), new) for key, items in appended for k, new in enumerate(items)]
    _move(locator, [(path + (p,), path + (n,)) for n, (side, p, _) in enumerate(layout) if side == "parent" and p != n])
    if edits is not None:  # the child's edits too (an edit keyed 1 may move to 0, and one keyed 0 elsewhere)
        _move(edits, [(path + at if side == "child" else path + (what[0],), path + (n,))
                      for n, (side, at, what) in enumerate(layout) if side == "child" or what[0] is not None])
    out = []
    for n, (side, at, what) in enumerate(layout):
        if side == "child":
            locator.drop_under(path + (n,))
            out.append(what)
            continue
        key, value = what
        out.append(_merge(parent[at], value, path + (n,), locator, edits) if key is not None else parent[at])
    return out


def _move(locator: Locator, moves: list[tuple[SpecPath, SpecPath]]) -> None:
    """Re-key the locations under each old path to its new one, all at once: through temporary keys,
    so that no move overwrites the locations another has still to take."""
    for old, new in moves:
        locator.rename(old, new[:-1] + (f"\0{new[-1]}",))
    for _, new in moves:
        locator.rename(new[:-1] + (f"\0{new[-1]}",), new)


def _parent_path(ref: Any, child: Source, locator: Locator) -> Path:
    if not isinstance(ref, str) or not ref.strip():
        raise SpecError(locator.problem("extends must name a spec file, e.g. `extends: resnet50.yaml`", ("extends",)))
    named = zoo.bare_name(ref)  # `extends: vgg11` is the zoo's, even beside a file called vgg11
    if named is not None:
        return named
    base = Path(child.name).parent if not child.name.startswith("<") else Path.cwd()
    candidate = base / ref
    try:
        found = path_state(candidate)
    except InputFileError as exc:  # a symlink loop, a name too long
        raise SpecError(locator.problem(f"'{ref}': {exc.reason}", ("extends",))) from None
    if found is not None and not stat.S_ISREG(found.st_mode):  # a directory, a named pipe, a device: located here
        raise SpecError(locator.problem(f"'{ref}' is {kind_of(found.st_mode)}, not a spec file", ("extends",)))
    if found is not None:
        return candidate
    if candidate.is_symlink():  # a dangling link
        raise SpecError(locator.problem(f"'{ref}' is a symlink to nothing", ("extends",)))
    zoo_path = zoo.path_of(ref.removesuffix(".yaml"))
    if zoo_path is not None:
        return zoo_path
    nearby = [p.name for p in itertools.islice(base.glob("*.y*ml"), 1000)] if base.is_dir() else []
    hint = did_you_mean(ref, nearby + [f"{n}.yaml" for n in zoo.names()])
    raise SpecError(locator.problem(f"no spec '{ref}'{hint}; looked in {base} and in the zoo", ("extends",)))


def load_document(source: Source, chain: tuple[str, ...] = (), sandbox: str | None = None) -> tuple[dict, Locator]:
    """The merged document of `source` and its extends chain, with locations.

    `sandbox` (what the spec is, e.g. "a spec embedded in a checkpoint") forbids reading
    other files: `extends` and `include` are errors, so the spec sees nothing of the machine."""
    chain = chain + (source.name,)
    locator = Locator.of(source, chain)
    data = dict(source.data)
    if sandbox is not None:
        for key in ("extends", "include"):
            if key in data:
                raise SpecError(locator.problem(f"{sandbox} cannot read other files: `{key}` is not allowed here",
                                                (key,), key=True))
    include_blocks(data, source.name, locator, () if source.name.startswith("<") else (str(Path(source.name).resolve()),))
    ref = data.pop("extends", None)
    if ref is None:
        return data, locator
    parent_path = _parent_path(ref, source, locator)
    key = str(parent_path.resolve())
    seen = [str(Path(c).resolve()) for c in chain if not c.startswith("<")]
    if key in seen:
        cycle = " -> ".join(list(chain) + [str(parent_path)])
        raise SpecError(Problem(f"cycle: {cycle}", ("extends",), locator.where(("extends",))))
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise SpecError(locator.problem(f"extends chain deeper than {MAX_EXTENDS_DEPTH}", ("extends",)))
    try:
        parent = read_file(parent_path)
    except SpecError as exc:  # an unreadable parent: say which spec asked for it
        raise SpecError(replace(p, chain=p.chain or chain + (str(parent_path),)) for p in exc.problems) from None
    parent_data, merged = load_document(parent, chain)
    data = _merge(parent_data, data, (), merged, locator)
    merged.overlay(locator, data)
    return data, merged


# -- include -----------------------------------------------------------------------

INCLUDABLE_KEYS = ("blocks", "include")


def _relative(ref: str, including: str) -> Path:
    return (Path(including).parent if not including.startswith("<") else Path.cwd()) / ref


def include_blocks(data: dict, name: str, locator: Locator, stack: tuple[str, ...]) -> None:
    """Consume `include:` (a file or a list of files): their `blocks:` join this document's,
    with their own locations. A block defined twice is an error, not a silent override."""
    if "include" not in data:
        return
    refs = data.pop("include")
    paths: list[tuple[str, SpecPath]] = []
    if isinstance(refs, str) and refs.strip():
        paths = [(refs, ("include",))]
    elif isinstance(refs, list) and all(isinstance(r, str) and r.strip() for r in refs):
        paths = [(r, ("include", i)) for i, r in enumerate(refs)]
    else:
        raise SpecError(locator.problem("include must name a file or a list of files, e.g. `include: [blocks.yaml]`",
                                        ("include",)))
    own = data.get("blocks") if isinstance(data.get("blocks"), dict) else {}
    found: dict[str, Location] = {k: locator.where(("blocks", k), key=True) for k in own}
    merged: dict[str, Any] = {}
    for ref, at in paths:
        path = _relative(ref, name)
        try:
            if path_state(path) is None:
                raise SpecError(locator.problem(f"include '{ref}': no such file (looked in {path.parent})", at))
            check_regular(path)  # a named pipe would block, a device never end
        except InputFileError as exc:
            raise SpecError(locator.problem(f"include '{ref}': {exc.reason.replace('a regular', 'a spec')}", at)) from None
        key = str(path.resolve())
        if key in stack or len(stack) >= MAX_EXTENDS_DEPTH:
            raise SpecError(locator.problem(f"include cycle: {' -> '.join(stack + (str(path),))}", at))
        source = read_file(path)
        locator.files.append(source.name)
        inner = Locator.of(source, ())
        extra = sorted(set(source.data) - set(INCLUDABLE_KEYS))
        if extra:
            raise SpecError(inner.problem(f"an included file holds only `blocks:` (and `include:`), not '{extra[0]}'",
                                          (extra[0],), key=True))
        included = dict(source.data)
        include_blocks(included, source.name, inner, stack + (key,))
        blocks = included.get("blocks", {})
        if not isinstance(blocks, dict):
            raise SpecError(inner.problem("blocks must map block names to definitions", ("blocks",)))
        for block, definition in blocks.items():
            where = inner.where(("blocks", block), key=True)
            if block in found:
                raise SpecError(inner.problem(f"block '{block}' is already defined at {found[block]}",
                                              ("blocks", block), key=True))
            found[block] = where
            merged[block] = definition
        for table, theirs in ((locator.values, inner.values), (locator.keys, inner.keys)):
            table.update((p, loc) for p, loc in theirs.items() if p[:1] == ("blocks",) and len(p) > 1)
    if merged:
        locator.values.setdefault(("blocks",), locator.where(at))
        data["blocks"] = {**merged, **own}


# -- overrides ---------------------------------------------------------------------

def parse_assignment(text: str) -> tuple[str, Any]:
    """`input.size=[32,32]` -> ("input.size", [32, 32]); the value is read as YAML."""
    if "=" not in text:
        raise SpecError(Problem(f"--set needs KEY=VALUE, got '{text}'", (), Location("--set")))
    key, raw = text.split("=", 1)
    try:
        value = parse_text(f"v: {raw}" if raw.strip() else "v: ''", f"--set {key}").data["v"]
    except SpecError:
        value = raw
    return key.strip(), value


def _split_key(key: str) -> SpecPath:
    parts: list[str | int] = []
    for part in re.split(r"\.|\[|\]", key):
        if part == "":
            continue
        index = parse_index(part, negative=True)
        parts.append(part if index is None else index)
    return tuple(parts)


def apply_overrides(data: dict, overrides: Mapping[str, Any], locator: Locator,
                    places: Mapping[str, Location] | None = None) -> dict:
    """Set each dotted path (`stages.0.repeat`, `input.size`) to its value.

    `data` is left as it was: the mappings and lists on each path are copied before they
    change, and everything else is shared (nothing later modifies a document in place),
    so that a sweep can apply a few overrides to a large document thousands of times.
    `places`: where each override is written, when it is in a file (a space file's `set:`);
    otherwise it is named as OVERRIDE_NAME says (`--set KEY`).
    """
    data = dict(data)
    for key, value in overrides.items():
        path = _split_key(key)
        where = (places or {}).get(key) or Location(f"{OVERRIDE_NAME.get()} {key[:80] + '...' if len(key) > 80 else key}")
        if not path:
            raise SpecError(Problem("empty override key", (), where))
        if len(path) > MAX_DEPTH:
            raise SpecError(Problem(f"the key is nested deeper than {MAX_DEPTH} levels", (), where))
        if path[0] in ("extends", "include"):  # read before overrides apply: setting them would do nothing
            raise SpecError(Problem(f"'{path[0]}' cannot be overridden; write it in the spec file", (), where))
        target: Any = data
        resolved: list[str | int] = []
        for part in path[:-1]:
            if isinstance(target, dict):
                part = _mapping_key(target, part)
                child = target.get(part)
                target[part] = child = {} if child is None else _copied(child)
                target = child
            elif isinstance(target, list) and find_item(target, part) is not None:
                part = find_item(target, part)
                target[part] = _copied(target[part])
                target = target[part]
            else:
                what = no_item(part, target) if isinstance(target, list) else f"no item {part!r}"
                raise SpecError(Problem(f"cannot set '{key}' at {format_path(resolved) or 'top level'}: {what}",
                                        tuple(resolved) + (part,), where))
            resolved.append(part)
        last = path[-1]
        if isinstance(target, dict):
            last = _mapping_key(target, last)
            if isinstance(value, dict) and isinstance(target.get(last), (dict, list)):
                value = _merge(target[last], value, path, locator)
            target[last] = value
        elif isinstance(target, list) and find_item(target, last) is not None:
            last = find_item(target, last)
            if isinstance(value, dict) and isinstance(target[last], (dict, list)):
                value = _merge(target[last], value, path, locator)
            target[last] = value
        else:
            what = f": {no_item(last, target)}" if isinstance(target, list) else ""
            raise SpecError(Problem(f"cannot set '{key}'{what}", path, where))
        path = tuple(resolved) + (last,)
        locator.drop_under(path)
        locator.set_value(path, where)
    return data


def _mapping_key(mapping: dict, part: str | int) -> str | int:
    """The key of `mapping` that a key part names: `1` in `features.1` is the text "1" where the
    mapping has that key and no number 1 (`features: {"0": stages.0, "1": stages.1}`)."""
    if type(part) is int and part not in mapping and str(part) in mapping:
        return str(part)
    return part


def _copied(value: Any) -> Any:
    """A shallow copy of a mapping or list (about to change), anything else as it is."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# -- interpolation -----------------------------------------------------------------

_UNKNOWN = object()
_SCALAR_TYPES = frozenset({int, float, bool, str, type(None)})


class _Interpolator:
    def __init__(self, data: dict, locator: Locator):
        self.data = data
        self.vars = data.get("vars", {}) if isinstance(data.get("vars"), dict) else {}
        self.locator = locator
        self.done: dict[str, Any] = {}
        self.active: list[str] = []
        self.used: dict[str, Any] | None = None  # while an item is resolved for the memo: the names it read
        self.sizes: dict[int, tuple[Any, int]] = {}  # the expressions' memo of value sizes (expr.evaluate)
        self.counted: dict[int, int] = {}  # id of an item taken from the memo -> its values, as _check_size counts
        self.texts: dict[str, Any] = {}  # a `${...}` text -> its scalar value (`string`)

    def lookup(self, name: str) -> Any:
        value = self._lookup(name)
        if self.used is not None and not self.active:  # read by the item itself, not by a variable it reads
            self.used.setdefault(name, value)
        return value

    def _lookup(self, name: str) -> Any:
        if name in self.done:
            return self.done[name]
        if name in self.vars:
            path: SpecPath = ("vars", name)
            raw = self.vars[name]
        elif name in self.data and name != "vars":
            path = (name,)
            raw = self.data[name]
        else:
            known = sorted(set(self.vars) | {k for k in self.data if k != "vars"})
            raise ExprError(f"unknown name '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}")
        if name in self.active:
            raise ExprError(f"'{name}' refers to itself: {' -> '.join(self.active + [name])}")
        if len(self.active) >= MAX_VAR_DEPTH:
            raise ExprError(f"variables refer to variables more than {MAX_VAR_DEPTH} deep")
        self.active.append(name)
        try:
            value = self.value(raw, path)
        finally:
            self.active.pop()
        self.done[name] = value
        return value

    def value(self, value: Any, path: SpecPath) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self.string(value, path)
        return value

    def string(self, text: str, path: SpecPath) -> Any:
        # A text met before in this document has the value it had (the names it reads cannot change
        # while the document is resolved): RegNet's four stages each read `${se}` and `${bottleneck}`.
        # Scalars alone, so that no list or mapping is shared by two places of the document; and not
        # while an item records the names it reads (`item`), which a kept value would not record.
        known = self.texts.get(text, _UNKNOWN) if self.used is None else _UNKNOWN
        if known is not _UNKNOWN:
            return known
        try:
            out = substitute(text, self.lookup, sizes=self.sizes)
            if isinstance(out, str) and len(out) > MAX_RESULT_ITEMS:
                raise ExprError(f"the text grows longer than {MAX_RESULT_ITEMS} characters")
        except ExprError as exc:
            raise SpecError(self.locator.problem(f"in '{text}': {exc}", path)) from None
        if type(out) in _SCALAR_TYPES:
            self.texts[text] = out
        return out

    def item(self, raw: Any, path: SpecPath, made: list | None) -> Any:
        """One top-level value or list item, resolved. With `made` (a list), the item is one of a
        base document's, which every sample of a sweep resolves again: its result is taken from
        `_ITEMS` when the names it reads have the same values as then, and a new result is
        appended to `made`, for `interpolate` to remember once the whole document is good. An
        item whose names change from sample to sample (RegNet's stages) is soon no longer kept."""
        hit = _ITEMS.get(id(raw), raw) if made is not None else None
        if made is None or hit is None:  # not a base document's item, or one that varies
            return self.value(raw, path)
        if hit is not memo.MISS and self._unchanged(hit[0]):
            value = marshal.loads(hit[1])  # a new copy, made in C
            if isinstance(value, (dict, list)):
                self.counted[id(value)] = hit[2]
            if hit[3]:
                _ITEMS.put(id(raw), (*hit[:3], 0), raw)
            return value
        self.used = {}
        try:
            value = self.value(raw, path)
            made.append((raw, tuple(self.used.items()), value, 0 if hit is memo.MISS else hit[3] + 1))
        finally:
            self.used = None
        return value

    def _unchanged(self, used: tuple[tuple[str, Any], ...]) -> bool:
        """Whether each name has the value it had (the same type too: `1`, `1.0` and `true` differ)."""
        for name, before in used:
            try:
                now = self.lookup(name)
            except (ExprError, SpecError):  # resolving the item itself says so, located
                return False
            if not _same(now, before):
                return False
        return True


# Resolved items of base documents, by identity (documents never change in place): (the names
# the item read, with their values; the resolved item, marshalled: plain data, every type kept;
# its number of values, as _check_size counts them; the misses in a row before it), or None for
# an item that missed MAX_MISSES times in a row (resolved each time from then on).
_ITEMS: memo.Memo[tuple[tuple[tuple[str, Any], ...], bytes, int, int] | None] = \
    memo.Memo("spec.interpolated_items", 1024)
MAX_MISSES = 4
# The values in a base document's `blocks:` (which resolving passes on as they are), by identity.
_BLOCK_COUNTS: memo.Memo[int] = memo.Memo("spec.block_counts", 64)


def _blocks_count(blocks: dict | list) -> int:
    count = _BLOCK_COUNTS.get(id(blocks), blocks)
    return _BLOCK_COUNTS.put(id(blocks), _count(blocks), blocks) if count is memo.MISS else count


class _TooDeep(Exception):
    pass


def _fresh(value: Any, depth: int = 0) -> Any:
    """A copy of plain data: new mappings and lists, the same scalars. _TooDeep past MAX_DEPTH."""
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _TooDeep
        return {k: _fresh(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _TooDeep
        return [_fresh(v, depth + 1) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Whether two values of plain data are the same to the last type and float bit that shows
    (`1 == 1.0 == True` and `0.0 == -0.0` in Python, but they resolve to different documents)."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return len(a) == len(b) and all(_same(ka, kb) and _same(va, vb)
                                        for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if kind is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if kind is float:
        return repr(a) == repr(b)
    if kind in (int, str, bool):
        return bool(a == b)
    return False


def _remember(made: list) -> None:
    """Keep the items `interpolate` resolved from a base document (`_Interpolator.item`), copied, so
    that a caller who changes its document changes nothing here. An item marshal cannot write
    (a YAML timestamp, nesting past its limit) is resolved each time."""
    for raw, used, value, misses in made:
        if misses >= MAX_MISSES:
            _ITEMS.put(id(raw), None, raw)
            continue
        try:
            entry = (tuple((name, _fresh(v)) for name, v in used), marshal.dumps(value), _count(value), misses)
        except (_TooDeep, ValueError):
            continue
        _ITEMS.put(id(raw), entry, raw)


def literal_document(data: dict) -> dict:
    """A resolved document as one that resolves to itself: a `${` that a value holds as text (made by
    an expression such as `${'$'}{x}`) is written `${'$'}{`, which gives `${` back, so that an emitted
    spec (a sweep's, a checkpoint's) validates again. `blocks:` keep their expressions: they are
    evaluated when a block is built, not when the document is resolved.

    A top-level value without a `${` is `data`'s own, not a copy (most are; the callers copy the
    document anyway: a `Network` freezes its spec, an emitted spec is thawed)."""
    return {k: v if k == "blocks" or _literal(v) else _escaped(v) for k, v in data.items()}


def _escaped(value: Any) -> Any:
    """`value` with every `${` in its text written `${'$'}{` (`literal_document`). A function of the
    module, not a closure that calls itself: that would be a reference cycle for every document (a
    sweep makes one a sample, with the cycle collector off)."""
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    if isinstance(value, str) and "${" in value:
        return value.replace("${", "${'$'}{")
    return value


def _literal(value: Any) -> bool:
    """Whether `value` is plain data (dicts, lists and scalars) with no `${` in any text: marshal writes
    each string's UTF-8 bytes whole (version 0: no references), so one search of them tells (a
    number's bytes may look like `${` too, and then `value` is walked)."""
    if type(value) is str:
        return "${" not in value
    if type(value) is not dict and type(value) is not list:
        return type(value) in (int, float, bool, type(None))
    try:
        return b"${" not in marshal.dumps(value, 0)
    except ValueError:  # a tuple is walked into a list; other types, as _escaped() does
        return False


def interpolate(data: dict, locator: Locator, base: dict | None = None) -> dict:
    """Substitute every `${expr}`; `vars` is consumed. Block definitions keep theirs: there
    `${}` names the block's parameters, evaluated when the block is built (blocks.composite).

    `base`: the document `data` was made from by overrides, which will be resolved again (a sweep's
    base spec); the values and list items that `data` still shares with it are resolved once and
    remembered (`_Interpolator.item`)."""
    engine = _Interpolator(data, locator)
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    made: list | None = [] if base is not None else None
    for key, value in data.items():  # each top-level key, and each layer or stage, on its own: report them all
        if key == "vars":
            continue
        was = base.get(key) if base is not None else None
        if key == "blocks":  # evaluated per block when it is built (blocks.composite)
            out[key] = value
            if value is was and isinstance(value, (dict, list)):  # the base's own: counted once
                engine.counted[id(value)] = _blocks_count(value)
            continue
        items: list[tuple[SpecPath, Any, list | None]]  # (path, item, where to remember it: a base's item)
        if isinstance(value, list):
            same = isinstance(was, list) and len(was) == len(value)
            items = [((key, i), item, made if same and item is was[i] else None)
                     for i, item in enumerate(value)]
        else:
            items = [((key,), value, made if value is was else None)]
        done = []
        for path, item, remember in items:
            try:
                done.append(engine.item(item, path, remember))
            except SpecError as exc:
                problems += [p for p in exc.problems if p not in problems]
        out[key] = done if isinstance(value, list) else done[0] if done else None
    if problems:
        raise SpecError(problems)
    _check_size(out, locator, engine.counted)
    if made:
        _remember(made)
    return out


def _check_size(data: dict, locator: Locator, counted: dict[int, int] | None = None) -> None:
    """Refuse a document that variables blow up (lists of lists of ... of shared values).
    `counted`: the number of values of some of its items (by id), counted before."""
    count = 0
    for key, value in data.items():
        count += _count(value, counted, MAX_NODES - count)
        if count > MAX_NODES:
            raise SpecError(locator.problem(
                f"variables expand the document to more than {MAX_NODES:,} values", (key,)))


def _count(value: Any, counted: dict[int, int] | None = None, limit: float = float("inf")) -> int:
    """The values in `value`: itself and all it holds, an item of `counted` (by id) as many as it
    says. Counting stops once it passes `limit` (what it returns is then over the limit, not the total)."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        known = counted.get(id(item)) if counted else None
        count += 1 if known is None else known
        if count > limit:
            return count
        if known is not None:
            continue
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


@dataclass
class Document:
    """A resolved document: plain data plus where each value came from."""

    data: dict
    locator: Locator


def resolve_source(source: Source, overrides: Mapping[str, Any] | None = None,
                   sandbox: str | None = None) -> Document:
    data, locator = load_document(source, sandbox=sandbox)
    return resolve_loaded(data, locator, overrides, copy_locator=False)


def resolve_loaded(data: dict, locator: Locator, overrides: Mapping[str, Any] | None = None,
                   copy_locator: bool = True) -> Document:
    """Overrides and `${...}` applied to a document `load_document` made (neither argument
    changes, unless copy_locator is False): a sweep loads its base spec once and resolves
    each sample from it."""
    base = data if copy_locator else None  # kept for the next sample: what it shares is resolved once
    if copy_locator:
        locator = locator.copy()
    if overrides:
        data = apply_overrides(data, checked_copy(dict(overrides), "<overrides>"), locator)
    return Document(interpolate(data, locator, base), locator)


def resolve_data(data: dict, name: str = "<dict>", overrides: Mapping[str, Any] | None = None,
                 sandbox: str | None = None) -> Document:
    """Resolve an in-memory spec (already plain data): no file locations, paths only.
    It meets the limits of a file (nesting, number of values) before anything walks it."""
    source = Source(checked_copy(data, name), name, {(): Location(name)})
    return resolve_source(source, overrides, sandbox)
