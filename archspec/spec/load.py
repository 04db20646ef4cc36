"""The front half of the compiler: any spec source -> a validated `Spec` -> the IR `Network`.

Nothing here imports torch; analysis, diagrams and validation stop at the IR.
"""

from __future__ import annotations

import dataclasses
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from ..core.reading import InputFileError, path_state
from ..core.errors import ArgumentError, LimitError, LocatedError, Location, Problem, SpecError, did_you_mean
from ..ir.graph import Network
from . import catalog as zoo
from .block_language.family import shadowing_notes
from .lower import Watch, lower
from .models import SpecModel
from .resolve import Document, Locator, literal_document, resolve_data, resolve_source
from .problems import problems_from
from .scaling import ScaledStageError, apply_scaling
from .source import checked_copy, parse_text, read_file
from .validate import validate_document

MAX_SEARCH_SIZE = 1 << 14
SEARCH_BUDGET_S = 5.0


@dataclass
class Spec:
    """A resolved, validated spec. `data` is the explicit document (no extends, no vars)."""

    model: SpecModel
    data: dict
    locator: Locator = field(default_factory=Locator, repr=False)
    _network: Network | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def source(self) -> str:
        return self.locator.root

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the spec was read from (itself, its `extends` parents, its includes):
        the inputs that no output may overwrite."""
        return tuple(Path(f) for f in self.locator.files)

    @property
    def input(self) -> Any:
        """The input: `.channels`, `.size` (h, w) and `.shape` (C, H, W)."""
        return self.model.input

    @property
    def num_classes(self) -> Any:
        return self.model.num_classes

    @property
    def notes(self) -> list[str]:
        """Located remarks that are not errors: each block the spec defines under the name of a
        registered block type (the spec's definition is used; `archspec validate` prints these)."""
        return shadowing_notes(self.data.get("blocks"), self.locator)

    def network(self, hints: bool = True, watch: Watch | None = None, data: bool = True) -> Network:
        """The IR, lowered once and cached. `hints=False` leaves out of an error what costs
        more lowerings to find (the smallest input that works): a sweep counts failures.
        `watch` sees each graph as it is lowered, and may stop the lowering (`lower`).
        `data=False`: a network without the spec's data (`Network.spec_data` empty, so it cannot be
        saved or exported), not cached: a sweep analyses each sample's network and lets it go,
        and copying its spec into it cost a twentieth of a sample."""
        if not data:
            return self._network or _lower_located(self, hints, watch, data=False)
        if self._network is None:
            self._network = _lower_located(self, hints, watch)
        return self._network

    def with_overrides(self, **overrides: Any) -> "Spec":
        return from_document(_document(self, _flatten_overrides(overrides)))


def _flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """API keywords: `num_classes=10`, `input={"size": [32, 32]}` or `**{"input.size": [32, 32]}`,
    within a spec's limits (`checked_copy`)."""
    return {str(k): v for k, v in checked_copy(dict(overrides), "<overrides>").items()}


def _document(spec: Any, overrides: Mapping[str, Any]) -> Document:
    if isinstance(spec, Spec):
        doc = resolve_data(spec.data, spec.source, overrides)
        doc.locator.files = list(spec.locator.files)  # still made from those files: never to be overwritten
        return doc
    if isinstance(spec, dict):
        return resolve_data(spec, "<dict>", overrides)
    if isinstance(spec, Path):
        return resolve_source(read_file(spec), overrides)
    if isinstance(spec, str):
        if not spec.strip():
            raise SpecError(Problem("the spec is empty (neither a file name nor YAML text)", (), Location("<string>")))
        path = Path(spec)
        if "\n" not in spec and len(spec) < 4096:
            named = zoo.bare_name(spec)  # a bare zoo name is the zoo's, even beside a file of that name
            if named is not None:
                return resolve_source(read_file(named), overrides)
            try:
                found = path_state(path)
            except InputFileError as exc:  # a name too long, a symlink loop: unless it is YAML text, say so
                if not _looks_like_yaml(spec):
                    raise SpecError(Problem(exc.reason, (), Location(spec))) from None
                found = None
            if found is not None and stat.S_ISREG(found.st_mode):
                return resolve_source(read_file(path), overrides)
            zoo_path = zoo.path_of(spec)
            if zoo_path is not None:
                return resolve_source(read_file(zoo_path), overrides)
            if found is not None:  # a directory, a device: read_file says what is wrong
                return resolve_source(read_file(path), overrides)
            if not _looks_like_yaml(spec):
                if "/" in spec or "\\" in spec:
                    raise SpecError(Problem("no such file", (), Location(spec)))
                hint = did_you_mean(spec.removesuffix(".yaml"), zoo.names())
                raise SpecError(Problem(f"no such file, and no zoo network of that name{hint}", (), Location(spec)))
        return resolve_source(parse_text(spec, "<string>"), overrides)
    raise SpecTypeError(f"a spec is a path, a YAML string, a dict or a Spec, not {type(spec).__name__}")


class SpecTypeError(ArgumentError, TypeError):
    """A spec argument of a type archspec cannot read (an int, a list, a module)."""


def _looks_like_yaml(line: str) -> bool:
    """Whether one line of text is YAML (`{name: x, ...}`, `name: x`) rather than a file or zoo name
    (`no:such.yaml`, `C:\\nets\\a.yaml` are names: a YAML mapping needs ': ' or braces)."""
    text = line.strip()
    return text.startswith("{") or ": " in text or text.endswith(":")


def from_document(doc: Document) -> Spec:
    model = validate_document(doc)
    try:
        model = apply_scaling(model)
    except ScaledStageError as exc:
        scale = model.scale
        said = f" (once scaled by scale: width {scale.width}, depth {scale.depth})" if scale else ""
        stages = doc.data.get("stages")
        written = stages[exc.index] if isinstance(stages, list) and exc.index < len(stages) else {}
        problems = problems_from(exc.error, written, doc.locator, ("stages", exc.index))
        raise SpecError([dataclasses.replace(p, message=p.message + said) for p in problems]) from None
    return Spec(model, doc.data, doc.locator)


def load_spec(spec: Any, **overrides: Any) -> Spec:
    """Parse, resolve and validate a spec from a path, zoo name, YAML text, dict or Spec."""
    return from_document(_document(spec, _flatten_overrides(overrides)))


def load_embedded(data: dict, name: str) -> Spec:
    """A spec stored inside another file (a checkpoint's metadata): errors name `name`, and it
    may not read files (`extends`, `include`), so a crafted file cannot read the machine's."""
    return from_document(resolve_data(data, name, sandbox=f"a spec embedded in {name}"))


def _lower_located(spec: Spec, hints: bool = True, watch: Watch | None = None, data: bool = True) -> Network:
    try:  # the data is carried into checkpoints: text that resolves again
        return lower(spec.model, literal_document(spec.data) if data else None, watch)
    except LocatedError as exc:
        message = str(exc)
        if exc.spatial_zero and hints:
            smallest = smallest_input(spec.model)
            if smallest:
                message += f"; the smallest input that works is {smallest}x{smallest}"
            elif smallest == 0:
                message += (f"; no input up to {MAX_SEARCH_SIZE}x{MAX_SEARCH_SIZE} works: an adaptive or global pool "
                            "before this layer fixes its input size")
        cls = LimitError if exc.limit else SpecError
        raise cls(spec.locator.problem(message, exc.origin)) from None


def smallest_input(model: SpecModel, budget_s: float = SEARCH_BUDGET_S) -> int | None:
    """The smallest square input size for which every layer keeps a positive size.

    0 when no size up to MAX_SEARCH_SIZE works; None when lowering is so slow (a huge
    network) that the search would take longer than `budget_s`.
    """
    deadline = time.monotonic() + budget_s

    def works(n: int) -> bool:
        if time.monotonic() > deadline:
            raise TimeoutError
        trial = model.model_copy(update={"input": model.input.model_copy(update={"size": (n, n)})})
        try:
            lower(trial)
            return True
        except LocatedError:
            return False

    try:
        hi = 1
        while not works(hi):
            hi *= 2
            if hi > MAX_SEARCH_SIZE:
                return 0
        lo = hi // 2
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if works(mid):
                hi = mid
            else:
                lo = mid
    except TimeoutError:
        return None
    return hi


def to_network(spec: Any, **overrides: Any) -> Network:
    if isinstance(spec, Network):
        return spec
    if isinstance(spec, Spec) and not overrides:
        return spec.network()
    return load_spec(spec, **overrides).network()
