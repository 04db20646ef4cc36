"""The `weights:` section of a spec: published weights as data (models only; loading is `archspec.weights`).

    weights:
      - name: IMAGENET1K_V2
        default: true
        url: https://download.pytorch.org/models/resnet50-11ad3fa6.pth
        sha256: 11ad3fa6                  # the whole digest, or the prefix torchvision puts in file names
        arch: resnet50                    # the zoo network whose layout the file holds
        layout: {format: torchvision, class: ResNet}
        categories: imagenet-1k           # a list shipped in the package (spec/categories.py), or the names
        transforms: {resize: 232, crop: 224, interpolation: bilinear}
        metrics: {acc@1: 80.858, acc@5: 95.434}

`weights` is a list so that `extends` replaces it whole: a child spec of another architecture
never inherits entries that would not fit it (a child that only changes the head keeps them).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from ..core.errors import did_you_mean
from ..core.numbers import SpecNumbers
from .categories import CATEGORIES

NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMATS = ("torchvision", "safetensors", "archspec")


class _Strict(SpecNumbers, BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


_Channel = Annotated[float, Field(allow_inf_nan=False)]
_Std = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Transforms(_Strict):
    """The preprocessing the weights expect: resize the shorter side to `resize`, crop the centre
    `crop` x `crop` (none for dense prediction), scale to [0, 1], normalise by `mean` and `std`."""

    resize: int = Field(ge=1, le=1 << 15)
    crop: int | None = Field(default=None, ge=1, le=1 << 15)
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bilinear"
    mean: tuple[_Channel, ...] = Field(default=IMAGENET_MEAN, min_length=1, max_length=64)
    std: tuple[_Std, ...] = Field(default=IMAGENET_STD, min_length=1, max_length=64)


class Layout(_Strict):
    """How the file stores its tensors.

    `format`: `torchvision` (a state dict saved by `torch.save`, read with `weights_only=True`),
    `safetensors` (the same names in a safetensors file) or `archspec` (a checkpoint written by
    `archspec build -o`: archspec's own names). `class`: the torchvision class whose
    registration order the file follows (interop's ORDER_HINTS). `prefix`: keep only the
    tensors under it, without it (`backbone.body.`). `rename`: regular-expression renames applied
    first, as torchvision's loaders do to older files (DenseNet's `norm.1` keys). `match`: see below."""

    format: Literal["torchvision", "safetensors", "archspec"] = "torchvision"
    cls: str | None = Field(default=None, alias="class", max_length=64)
    prefix: str = Field(default="", max_length=256)
    rename: list[tuple[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=256)]]] = []
    # How the reference's tensors reach this network: by archspec name (`name`), or in order while the
    # shapes agree (`position`), as torchvision's SSD extractors take a classifier's `features` by index.
    match: Literal["name", "position"] = "name"

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)

    @field_validator("rename")
    @classmethod
    def _patterns(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for pattern, _ in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PydanticCustomError("rename", "rename pattern '{p}' is not a regular expression: {e}",
                                          {"p": pattern, "e": str(exc)}) from None
        return value


_Categories = Annotated[str, Field(max_length=64)] | Annotated[list[str], Field(min_length=1, max_length=1 << 20)]


class WeightsEntry(_Strict):
    """One published set of weights (see the module docstring)."""

    name: str = Field(pattern=NAME, max_length=128)
    default: StrictBool = False
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2048)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{8,64}$")
    arch: str | None = Field(default=None, pattern=NAME, max_length=128)
    # A `weights_backbone` entry: published for the classifier `arch`, it fills the parts of this
    # network named as in that classifier (the stem and stages); the rest keeps the spec's init.
    backbone: StrictBool = False
    layout: Layout = Layout()
    # Overrides this network needs to use the weights (`vars.transform_input: true`), and those that give
    # the layout the file was saved in (`vars.aux_logits: true`: published with the auxiliary heads).
    set: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    categories: _Categories | None = None
    transforms: Transforms | None = None
    dataset: str | None = Field(default=None, max_length=128)
    metrics: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = {}
    recipe: str | None = Field(default=None, max_length=2048)
    license: str | None = Field(default=None, max_length=2048)
    num_params: int | None = Field(default=None, ge=0)
    file_size_mb: float | None = Field(default=None, ge=0)

    @field_validator("categories")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in CATEGORIES:
            raise PydanticCustomError("categories", "unknown category list '{v}'{hint}; known: {known} (or list the names)",
                                      {"v": value, "hint": did_you_mean(value, list(CATEGORIES)),
                                       "known": ", ".join(CATEGORIES)})
        return value

    @property
    def category_names(self) -> tuple[str, ...] | None:
        if self.categories is None:
            return None
        return CATEGORIES[self.categories] if isinstance(self.categories, str) else tuple(self.categories)

    @property
    def file_name(self) -> str | None:
        """The name the download is cached under (torchvision's: the URL's last part)."""
        if self.url is None:
            return None
        return self.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or None


def check_entries(entries: list[WeightsEntry]) -> list[WeightsEntry]:
    """Names unique, at most one default: errors point at the entry (index) that breaks the rule."""
    seen: set[str] = set()
    defaults = 0
    for entry in entries:
        if entry.name in seen:
            raise PydanticCustomError("weights", "two weights entries are named '{name}'", {"name": entry.name})
        if entry.name.upper() == "DEFAULT":
            raise PydanticCustomError("weights", "'DEFAULT' names the entry marked `default: true`; "
                                      "give this entry another name", {})
        seen.add(entry.name)
        defaults += entry.default
    if defaults > 1:
        names = ", ".join(e.name for e in entries if e.default)
        raise PydanticCustomError("weights", "more than one weights entry is `default: true` ({names})", {"names": names})
    return entries


WeightsList = Annotated[list[WeightsEntry], Field(max_length=256)]
