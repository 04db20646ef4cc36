"""Write the `weights:` section of every zoo spec from torchvision's weights enums:
`python tools/gen_weights.py [--check] [NAME...]`.

Each spec gets every torchvision 0.29.1 weights entry of its model: URL, hash prefix, the
preprocessing, categories, published metrics, recipe and size; segmentation and detection specs also
get the entries of their backbone (torchvision's `weights_backbone`). The section is the end of the
file, from its marker comment on; the rest of the file is left as it is. `--check` only reports
which files are stale (tests/test_weights_zoo.py checks the entries against the enums too).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torchvision
from torchvision import models as tvm
from torchvision.models import _meta

from archspec.core.atomic import write_atomic
from archspec.spec import catalog
from archspec.spec.load import load_spec
from archspec.spec.weights import IMAGENET_MEAN, IMAGENET_STD

MARKER = "# Published weights"
HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's HASH_REGEX: the digest prefix in the file name
# torchvision's densenet._load_state_dict: files saved before PyTorch 0.4 name `norm.1` what is now `norm1`.
DENSENET_RENAME = (r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
                   r"\1\2")
# What torchvision's googlenet / inception_v3 builders do when given weights: transform_input=True for
# the network (its constants, as _transform_input computes them, into the spec's `transform_input` layer),
# and aux_logits=True while loading (the files hold the auxiliary heads).
_AFFINE = {"stem.transform_input.channel_affine.scale": [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5],
           "stem.transform_input.channel_affine.shift": [(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]}
INPUT_TRANSFORM = {"googlenet": (_AFFINE, {"vars.aux_logits": True}),
                   "inception_v3": (_AFFINE, {"vars.aux_logits": True})}
# Detector backbones that take their classifier's `features` by index (torchvision's SSD _vgg_extractor and
# SSDlite _mobilenet_extractor, which splits block 13 after its expansion), not by a layout of the same
# names: their entries load in order.
POSITIONAL = {"ssd300_vgg16_backbone", "ssdlite320_mobilenet_v3_large_backbone"}
# What a detector's builder changes in its backbone when given weights_backbone: SSDlite's keeps the
# full tail (`reduce_tail = weights_backbone is None`), the layout of the classifier's file.
BACKBONE_SET = {"ssdlite320_mobilenet_v3_large_backbone": {"vars.reduced_tail": False}}
# Zoo specs that are torchvision backbones rather than whole torchvision models: the classifier whose weights they take.
BACKBONES = {"resnet50_fpn": "resnet50"}
CATEGORY_LISTS = {"imagenet-1k": _meta._IMAGENET_CATEGORIES, "coco": _meta._COCO_CATEGORIES, "voc": _meta._VOC_CATEGORIES}


def torchvision_names() -> dict[str, object]:
    """Every torchvision model name (classification, segmentation, detection) -> its builder."""
    out = {}
    for module in (tvm, tvm.segmentation, tvm.detection):
        for name in tvm.list_models(module=module):
            out[name] = tvm.get_model_builder(name)
    return out


def classifier_of(enum: type) -> str:
    """The torchvision model name whose weights enum is `enum` (ResNet50_Weights -> resnet50)."""
    for name in tvm.list_models(module=tvm):
        if tvm.get_model_weights(name) is enum:
            return name
    raise LookupError(enum.__name__)


def backbone_enum(builder: object) -> type | None:
    """The enum a builder's `weights_backbone` takes (its annotation: `Optional[ResNet50_Weights]`; the
    default may be None, as RetinaNet v2's is), if it has one."""
    hints = typing.get_type_hints(inspect.unwrap(builder))  # type: ignore[arg-type]
    if "weights_backbone" not in hints:
        return None
    return next(a for a in typing.get_args(hints["weights_backbone"]) if a is not type(None))


def class_name(name: str) -> str:
    """The class the builder returns (its return annotation: nothing is built)."""
    annotation = inspect.signature(tvm.get_model_builder(name)).return_annotation
    return annotation if isinstance(annotation, str) else annotation.__name__


def categories(names: list[str]) -> object:
    for key, known in CATEGORY_LISTS.items():
        if list(names) == list(known):
            return key
    return list(names)


def transforms(weights: object) -> dict:
    t = weights.transforms()  # type: ignore[attr-defined]
    out: dict = {"resize": t.resize_size[0]}
    if getattr(t, "crop_size", None):
        out["crop"] = t.crop_size[0]
    interpolation = t.interpolation.value
    if interpolation != "bilinear":
        out["interpolation"] = interpolation
    if tuple(t.mean) != IMAGENET_MEAN:
        out["mean"] = list(t.mean)
    if tuple(t.std) != IMAGENET_STD:
        out["std"] = list(t.std)
    return out


def entry(weights: object, arch: str, default: bool, backbone: bool = False, network: dict | None = None) -> dict:
    """The spec's entry for one torchvision weights member; `network`: the overrides (`set:`) the
    network needs to take them."""
    meta = weights.meta  # type: ignore[attr-defined]
    url = weights.url  # type: ignore[attr-defined]
    found = HASH.search(url.rsplit("/", 1)[-1])
    (dataset, metrics), = meta["_metrics"].items()
    out: dict = {"name": weights.name}  # type: ignore[attr-defined]
    if default:
        out["default"] = True
    out["url"] = url
    if found:
        out["sha256"] = found.group(1)
    out["arch"] = arch
    if backbone:
        out["backbone"] = True
    layout: dict = {"format": "torchvision", "class": class_name(arch)}
    if arch.startswith("densenet"):
        layout["rename"] = [list(DENSENET_RENAME)]
    out["layout"] = layout
    if arch in INPUT_TRANSFORM and not backbone:
        out["set"], out["reference"] = INPUT_TRANSFORM[arch]
    if network:
        out["set"] = network
    size = meta.get("min_size", (224, 224))[0]
    if arch.startswith("vit_") and not backbone and size != 224:
        # torchvision's _vision_transformer builds image_size = min_size for weights (SWAG at 384, 518):
        # the position embedding follows the input size, so the file's layout and the network need it.
        out["set"] = out["reference"] = {"input.size": [size, size]}
    if meta["categories"] is not None:  # vgg16's IMAGENET1K_FEATURES: the classifier is untrained
        out["categories"] = categories(meta["categories"])
    out["transforms"] = transforms(weights)
    out["dataset"] = dataset
    out["metrics"] = {k: v for k, v in metrics.items() if v == v}  # no NaN (published as unknown)
    out["recipe"] = meta["recipe"]
    if "license" in meta:
        out["license"] = meta["license"]
    out["num_params"] = meta["num_params"]
    out["file_size_mb"] = meta["_file_size"]
    return out


def entries_for(name: str, builders: dict[str, object]) -> tuple[list[dict], str]:
    """The entries of zoo spec `name` and the comment naming their enums ([] when torchvision has none)."""
    enums: list[str] = []
    out: list[dict] = []
    if name in builders:
        enum = tvm.get_model_weights(name)
        enums.append(enum.__name__)
        out += [entry(w, name, w is enum.DEFAULT) for w in enum]
        back = backbone_enum(builders[name])
    elif name.removesuffix("_backbone") in builders and name.endswith("_backbone"):
        detector = name.removesuffix("_backbone")  # a detector's backbone: its weights_backbone entries
        back = backbone_enum(builders[detector])
    else:
        back = tvm.get_model_weights(BACKBONES[name]) if name in BACKBONES else None
    if back is not None:
        enums.append(f"{back.__name__} as weights_backbone")
        arch = classifier_of(back)
        out += [entry(w, arch, False, backbone=True, network=BACKBONE_SET.get(name)) for w in back]
        if name in POSITIONAL:
            for e in out:
                e["layout"]["match"] = "position"
    return out, " and ".join(enums)


def _value(value: object) -> str:
    """A YAML scalar or flow collection (JSON is YAML; plain words stay plain)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.@/:+-]*", value) and value not in ("true", "false", "null", "yes", "no"):
            return value
        if "\\" in value:
            return "'" + value.replace("'", "''") + "'"
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def section(entries: list[dict], enums: str) -> str:
    head = (f"{MARKER}: torchvision {torchvision.__version__.split('+')[0]}'s {enums}"
            " (written by tools/gen_weights.py).\n")
    if not entries:
        return head + "weights: []\n"
    lines = [head, "weights:\n"]
    for e in entries:
        first = True
        for key, value in e.items():
            if key == "categories" and isinstance(value, list) and len(value) > 20:
                raise ValueError("a long category list belongs in spec/categories.py")
            lines.append(("  - " if first else "    ") + f"{key}: {_value(value)}\n")
            first = False
    return "".join(lines)


def render(path: Path, name: str, builders: dict[str, object], inherited: bool) -> str:
    """The file's new text (no section when it has no weights and inherits none)."""
    text = path.read_text()
    at = text.find("\n" + MARKER)
    body = text if at < 0 else text[: at + 1]
    entries, enums = entries_for(name, builders)
    if not entries and not inherited:
        return body
    return body.rstrip("\n") + "\n" + section(entries, enums or "none")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a spec's section differs from the enums")
    p.add_argument("names", nargs="*", help="zoo specs to write (default: all)")
    args = p.parse_args(argv)
    builders = torchvision_names()
    stale = []
    for name in args.names or catalog.names():
        path = catalog.path_of(name)
        assert path is not None, name
        # A child spec without weights of its own states `weights: []`: its parent's would not fit it.
        parent = re.search(r"^extends:\s*(\S+)", path.read_text(), re.M)
        inherited = parent is not None and bool(load_spec(path.parent / parent.group(1)).model.weights)
        new = render(path, name, builders, inherited)
        if new != path.read_text():
            stale.append(name)
            if not args.check:
                write_atomic(path, new)
    print(("stale: " if args.check else "written: ") + (", ".join(stale) or "none"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
