"""Published weights into a compiled model: choose the entry, fetch and read the file, map its
tensors onto archspec's names, load what fits and say what did not.

The mapping is the one the zoo is tested with (`archspec.interop`): the file's tensors are paired
with a *reference* network, the network the weights were saved from (the entry's `arch`, a zoo
spec, with the entry's `reference` overrides, built on torch's meta device: no memory, no
initialisation), and must agree with it tensor for tensor; a file of another architecture is an
error with the table of tensors that disagree. The reference's tensors then load into the model by
archspec name, so a model with another head, fewer parts (`features=`) or another output stride
takes every tensor whose name and shape it shares; the rest keeps the spec's initialisation, and
the `Report` lists each tensor that did not load and why.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import did_you_mean
from ..interop.torchvision import InteropError, disagreements, pair_state
from ..spec.load import Spec, load_spec
from ..checkpoint import DEPLOYED_KEY
from ..spec.weights import Layout, WeightsEntry
from .fetch import HASH_IN_NAME, WeightsError, cached
from .files import read

SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
STEPS = ".num_batches_tracked"  # a batch norm's step count: no weight, absent from files older than PyTorch 0.4.1


@dataclass
class Report:
    """What loading did: `loaded` tensors, `skipped` {archspec name: why it did not load} and
    `unused` tensors of the file that nothing in the model takes (a dropped head, say)."""

    name: str
    file: Path
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"weights {self.name}: {len(self.loaded)} tensors loaded from {self.file}"
        if self.skipped:
            text += f"; {len(self.skipped)} not loaded (the spec's init):"
            text += "".join(f"\n  {k}: {why}" for k, why in self.skipped.items())
        if self.unused:
            text += f"\n  {len(self.unused)} tensors of the file unused (no such part here): " + _few(self.unused)
        return text

    def to_dict(self) -> dict:
        return {"name": self.name, "file": str(self.file), "loaded": len(self.loaded), "skipped": dict(self.skipped),
                "unused": list(self.unused)}


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def is_location(weights: str) -> bool:
    """Whether `weights` names a file or URL rather than an entry."""
    return weights.startswith(("http://", "https://")) or "/" in weights or "\\" in weights or \
        weights.endswith(SUFFIXES) or Path(weights).is_file()


@dataclass(frozen=True)
class Chosen:
    """The weights to load: their `label` (an entry name, a path, a URL), the entry (for a file or URL,
    one made with the layout of the spec's default entry) and the local `path` of a file."""

    label: str
    entry: WeightsEntry
    path: Path | None = None


def choose(spec: Spec, weights: Any) -> Chosen:
    """What `weights` selects: a name of the spec's `weights:` (or DEFAULT), a file, or a URL.
    A file or URL takes the layout of the spec's default entry (or its only one): torchvision's
    names for a zoo network; archspec's own names when the file is an archspec checkpoint."""
    entries = list(spec.model.weights)
    if isinstance(weights, Path):
        weights = str(weights)
    if not isinstance(weights, str) or not weights.strip():
        raise WeightsError(f"weights is an entry name, DEFAULT, a file or a URL, not {weights!r}")
    names = [e.name for e in entries]
    if weights in names:
        return Chosen(weights, entries[names.index(weights)])
    if weights.upper() == "DEFAULT":
        default = [e for e in entries if e.default] or (entries if len(entries) == 1 else [])
        if not default:
            listed = ", ".join(names) if names else "none"
            raise WeightsError(f"{spec.name} has no default weights (its entries: {listed})")
        return Chosen(default[0].name, default[0])
    if not is_location(weights):
        listed = ", ".join(["DEFAULT", *names]) if names else "none (give a file or a URL)"
        raise WeightsError(f"{spec.name} has no weights named '{weights}'{did_you_mean(weights, names)}; "
                           f"known: {listed}")
    like = next((e for e in entries if e.default), entries[0] if len(entries) == 1 else None)
    layout = like.layout if like is not None else Layout()
    if weights.endswith(".safetensors"):
        layout = layout.model_copy(update={"format": "safetensors"})
    base = like.model_dump(include={"arch", "backbone", "reference", "set", "categories", "transforms"}) if like else {}
    if weights.startswith(("http://", "https://")):
        return Chosen(weights, WeightsEntry(name="url", url=weights, layout=layout, **base))
    return Chosen(weights, WeightsEntry(name="file", layout=layout, **base), Path(weights))


def file_of(chosen: Chosen) -> Path:
    """The local file: the path given, or the cached (or freshly downloaded) URL."""
    entry = chosen.entry
    if chosen.path is not None:
        return chosen.path
    assert entry.url is not None
    return cached(entry.url, cache_name(entry.url, entry.file_name or "weights.pth"), entry.sha256)


def cache_name(url: str, name: str) -> str:
    """The name `url` is cached under: its file name where that carries the file's hash (torch.hub's
    `resnet50-0676ba61.pth`, shared with torchvision's cache), else the file name with a digest of
    the whole URL, so that two URLs never share a cached file: a cached file is used without
    checking its hash again, and HuggingFace names every repository's file `model.safetensors`."""
    if HASH_IN_NAME.search(name):
        return name
    stem, dot, suffix = name.rpartition(".")
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{stem}_{digest}.{suffix}" if dot and stem else f"{name}_{digest}"


def load_into(model: Any, spec: Spec, chosen: Chosen, *, reference: Any) -> Report:
    """Load the chosen weights into `model` (built from `spec`); `reference(spec)` builds a network on
    the meta device (passed in: the API builds modules). Returns the report."""
    entry = chosen.entry
    if entry.url is None and chosen.path is None:
        raise WeightsError(f"weights {chosen.label} name no URL; give the file: weights=PATH")
    path = file_of(chosen)
    tensors, metadata = read(path, entry.layout.format)
    if metadata.get(DEPLOYED_KEY) == "1" and not getattr(model, "archspec_deployed", False):
        raise WeightsError(f"{path}: holds a deployed network (batch norm folded, branches merged), which does not load "
                           "into the training form that weights load into: load the file itself (archspec.load(FILE), "
                           "or FILE as the spec of a command), or load the training form's weights and deploy")
    if entry.layout.format == "archspec" or "archspec.spec" in metadata or set(tensors) <= set(model.state_dict()):
        mapping = {k: k for k in tensors}  # archspec's own names (a checkpoint, or a saved archspec state dict)
        ref_state = None
    else:
        tensors = _renamed(tensors, entry.layout)
        ref = _reference_spec(spec, entry)
        try:
            ref_state, mapping = _map(tensors, ref, entry, reference, path)
        except WeightsError as published:  # a file fine-tuned to this spec's classes (resnet18(num_classes=10))?
            if ref.model.num_classes == spec.model.num_classes:
                raise
            try:
                ref_state, mapping = _map(tensors, _reference_spec(spec, entry, spec.model.num_classes), entry,
                                          reference, path)
            except WeightsError:
                raise published from None  # neither: the published network's disagreements say most
        if entry.layout.match == "position":
            mapping, ref_state = _in_order(model.state_dict(), ref_state, mapping), None
    return _load(model, tensors, mapping, ref_state, chosen.label, path)


def _renamed(tensors: dict[str, Any], layout: Layout) -> dict[str, Any]:
    if layout.prefix:
        tensors = {k[len(layout.prefix):]: v for k, v in tensors.items() if k.startswith(layout.prefix)}
    for pattern, replace in layout.rename:
        rule = re.compile(pattern)
        tensors = {rule.sub(replace, k): v for k, v in tensors.items()}
    return tensors


def _reference_spec(spec: Spec, entry: WeightsEntry, classes: int | None = None) -> Spec:
    """The network the file was saved from: the entry's `arch` (a zoo spec), else this spec, with
    the published number of classes (or `classes`, a file fine-tuned to them); then the entry's
    `reference` overrides."""
    overrides = dict(entry.reference)
    names = entry.category_names
    if classes is not None:
        overrides["num_classes"] = classes
    elif names is not None and entry.arch is None:
        overrides.setdefault("num_classes", len(names))
    if entry.arch is not None:
        return load_spec(entry.arch, **overrides)
    return spec.with_overrides(**overrides) if overrides else spec


def _map(tensors: dict[str, Any], ref: Spec, entry: WeightsEntry, build: Any, path: Path) -> tuple[dict, dict]:
    """{archspec name in the reference: file tensor name}; WeightsError with the table when they disagree.
    A file saved before batch norm counted its steps (PyTorch < 0.4.1: torchvision's first ResNet files)
    holds no `num_batches_tracked`: the reference's are left out of the pairing, and keep their 0."""
    ref_state = build(ref).state_dict()
    if not any(k.endswith(STEPS) for k in tensors):
        ref_state = {k: v for k, v in ref_state.items() if not k.endswith(STEPS)}
    try:
        pairs = pair_state(ref_state, tensors, entry.layout.cls)
    except InteropError as exc:
        rows = disagreements(ref_state, tensors, entry.layout.cls)
        table = "".join(f"\n  #{i}: archspec {a} {list(sa) if sa else '-'}  vs  file {b} {list(sb) if sb else '-'}"
                        for i, a, sa, b, sb in rows)
        raise WeightsError(f"{path}: these weights are not those of {ref.name} ({exc}); {ref.name} has "
                           f"{len(ref_state)} tensors, the file {len(tensors)}; the tensors that disagree, by position:"
                           f"{table}") from None
    return ref_state, dict(pairs)


def _in_order(own: Any, ref_state: Any, mapping: dict[str, str]) -> dict[str, str]:
    """{this network's name: file name}, pairing the two networks' tensors in order while shapes agree."""
    out = {}
    for (mine, tensor), (ref, theirs) in zip(own.items(), ref_state.items()):
        if tuple(tensor.shape) != tuple(theirs.shape):
            break
        out[mine] = mapping[ref]
    return out


def _load(model: Any, tensors: dict, mapping: dict[str, str], ref_state: Any, label: str, path: Path) -> Report:
    import torch

    report = Report(label, path)
    own = model.state_dict()
    new = {}
    counted = any(k.endswith(STEPS) for k in tensors)
    for key, mine in own.items():
        source = mapping.get(key)
        if source is None:
            if counted or not key.endswith(STEPS):  # a file without step counts keeps them at 0, as torch loads it
                report.skipped[key] = "not in the weights"
            continue
        value = tensors[source]
        if value.numel() != mine.numel() or (ref_state is None and tuple(value.shape) != tuple(mine.shape)) or \
                (ref_state is not None and tuple(ref_state[key].shape) != tuple(mine.shape)):
            report.skipped[key] = f"shape {list(mine.shape)} here, {list(value.shape)} in the weights"
            continue
        if value.is_floating_point() != mine.is_floating_point():
            report.skipped[key] = f"{mine.dtype} here, {value.dtype} in the weights"
            continue
        new[key] = value.reshape(mine.shape)
        report.loaded.append(key)
    if not report.loaded:  # an empty file, or one of another network whose names happen to agree
        why = "it holds no tensors" if not tensors else \
            f"none of its {len(tensors):,} tensors fits this network's {len(own):,} (another architecture?)"
        raise WeightsError(f"{path}: these weights load nothing here: {why}; the first tensors: "
                           + "; ".join(f"{k}: {v}" for k, v in itertools.islice(report.skipped.items(), 3)))
    used = {mapping[k] for k in report.loaded} | {mapping[k] for k in report.skipped if k in mapping}
    report.unused = [k for k in tensors if k not in used]
    with torch.no_grad():
        model.load_state_dict(new, strict=False)
    return report
