"""Every zoo spec's `weights:` equals torchvision 0.29.1's weights enums, offline (the installed
package's metadata: nothing is downloaded). The expected values are read from torchvision here,
not from tools/gen_weights.py, which wrote the specs."""

from __future__ import annotations

import inspect
import math
import re
import typing

import pytest
import torchvision
from torchvision import models as tvm
from torchvision.models import _meta

import archspec
from archspec.spec.categories import CATEGORIES

ZOO = archspec.zoo.names()
# Zoo specs that are torchvision backbones, not whole torchvision models (their descriptions say so).
BACKBONE_ONLY = {"resnet50_fpn": tvm.ResNet50_Weights}
# The zoo specs with no torchvision weights at all: LeNet-5 and MobileNet-v1 are not in torchvision, and
# RepVGG and MobileOne are timm's (their weights are timm's, not entries of torchvision's enums).
# No torchvision weights: networks torchvision lacks (timm's RepVGG/MobileOne, segmentation-models-pytorch's
# decoders, whose encoders smp loads from its own files, not torchvision's enums).
NO_WEIGHTS = {"lenet5", "mobilenet_v1", "repvgg_a0", "repvgg_a2", "repvgg_b0", "mobileone_s0", "mobileone_s1",
              "unet_resnet34", "fpn_resnet34", "deeplabv3plus_resnet50"}
TV_NAMES = set(tvm.list_models(module=tvm)) | set(tvm.list_models(module=tvm.segmentation))
DETECTORS = set(tvm.list_models(module=tvm.detection))


def expected(name: str) -> list[tuple[object, bool]]:
    """(torchvision weights member, is it a weights_backbone entry) for zoo spec `name`."""
    if name in BACKBONE_ONLY:
        return [(w, True) for w in BACKBONE_ONLY[name]]
    detector = name.removesuffix("_backbone")
    if name.endswith("_backbone") and detector in DETECTORS:  # a detector's backbone: its weights_backbone
        return [(w, True) for w in backbone_enum(detector)]
    if name not in TV_NAMES:
        return []
    out: list[tuple[object, bool]] = [(w, False) for w in tvm.get_model_weights(name)]
    backbone = backbone_enum(name)
    if backbone is not None:
        out += [(w, True) for w in backbone]
    return out


def backbone_enum(name: str) -> type | None:
    """The weights enum a torchvision builder's `weights_backbone` takes, from its annotation."""
    hints = typing.get_type_hints(inspect.unwrap(tvm.get_model_builder(name)))
    if "weights_backbone" not in hints:
        return None
    (enum,) = [a for a in typing.get_args(hints["weights_backbone"]) if a is not type(None)]
    return enum


def test_torchvision_is_the_version_the_zoo_states() -> None:
    assert torchvision.__version__.split("+")[0] == "0.29.1"


def test_every_torchvision_model_weights_entry_of_the_zoo_is_counted() -> None:
    """All 115 classification entries are those of 80 models; the zoo has every classifier (the
    transformers since issue 21), so it carries all 115."""
    zoo_classifiers = [n for n in ZOO if n in tvm.list_models(module=tvm)]
    assert len(zoo_classifiers) == 80
    carried = sum(len(archspec.load_spec(n).model.weights) for n in zoo_classifiers)
    assert carried == sum(len(list(tvm.get_model_weights(n))) for n in zoo_classifiers)
    detector_backbones = {n for n in ZOO if n.endswith("_backbone") and n.removesuffix("_backbone") in DETECTORS}
    assert set(ZOO) - TV_NAMES - set(BACKBONE_ONLY) - detector_backbones == NO_WEIGHTS
    assert len(detector_backbones) == 6 and all(archspec.load_spec(n).model.weights for n in detector_backbones)


def test_the_shipped_category_lists_are_torchvisions() -> None:
    assert list(CATEGORIES["imagenet-1k"]) == _meta._IMAGENET_CATEGORIES
    assert list(CATEGORIES["coco"]) == _meta._COCO_CATEGORIES
    assert list(CATEGORIES["voc"]) == _meta._VOC_CATEGORIES


@pytest.mark.parametrize("name", ZOO)
def test_weights_entries_equal_torchvisions_enums(name: str) -> None:
    entries = archspec.load_spec(name).model.weights
    wanted = expected(name)
    assert [(e.name, e.backbone) for e in entries] == [(w.name, b) for w, b in wanted]
    for entry, (w, backbone) in zip(entries, wanted):
        meta = w.meta
        assert entry.url == w.url
        file = w.url.rsplit("/", 1)[-1]
        assert entry.sha256 == re.search(r"-([a-f0-9]*)\.", file).group(1)
        assert entry.file_name == file
        enum = type(w)
        assert entry.default == (not backbone and w is enum.DEFAULT)
        (dataset, metrics), = meta["_metrics"].items()
        assert entry.dataset == dataset
        assert entry.metrics == {k: v for k, v in metrics.items() if not math.isnan(v)}
        assert entry.num_params == meta["num_params"]
        assert entry.file_size_mb == meta["_file_size"]
        assert entry.recipe == meta["recipe"]
        assert entry.license == meta.get("license")
        names = entry.category_names
        assert (list(names) if names is not None else None) == meta["categories"]
        t = w.transforms()
        assert entry.transforms.resize == t.resize_size[0]
        assert entry.transforms.crop == (t.crop_size[0] if hasattr(t, "crop_size") else None)
        assert entry.transforms.interpolation == t.interpolation.value
        assert list(entry.transforms.mean) == list(t.mean) and list(entry.transforms.std) == list(t.std)
        # The file's layout: the classifier it was saved from (a backbone entry's is its enum's model).
        arch = next(n for n in tvm.list_models(module=tvm) if tvm.get_model_weights(n) is enum) if backbone else name
        assert entry.arch == arch
        model_class = inspect.signature(tvm.get_model_builder(arch)).return_annotation
        assert entry.layout.cls == getattr(model_class, "__name__", model_class)


def test_googlenet_and_inception_weights_switch_transform_input_on_as_torchvision_does() -> None:
    """torchvision's builders set transform_input=True (and load with aux_logits=True) when given weights."""
    for name in ("googlenet", "inception_v3"):
        builder = inspect.getsource(tvm.get_model_builder(name))
        assert '_ovewrite_named_param(kwargs, "transform_input", True)' in builder
        assert '_ovewrite_named_param(kwargs, "aux_logits", True)' in builder
        for entry in archspec.load_spec(name).model.weights:
            assert entry.set == {  # torchvision's _transform_input, as it computes its constants
                "stem.transform_input.channel_affine.scale": [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5],
                "stem.transform_input.channel_affine.shift": [(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5,
                                                              (0.406 - 0.5) / 0.5]}
            assert entry.reference == {"vars.aux_logits": True}


def test_vit_weights_of_another_resolution_set_the_input_size_as_torchvision_does() -> None:
    """torchvision's _vision_transformer builds image_size = weights.meta["min_size"][0] (SWAG: 384, 518)."""
    assert '_ovewrite_named_param(kwargs, "image_size", weights.meta["min_size"][0])' in \
        inspect.getsource(tvm.vision_transformer._vision_transformer)
    for name in [n for n in ZOO if n.startswith("vit_")]:
        for entry, (w, _) in zip(archspec.load_spec(name).model.weights, expected(name)):
            size = w.meta["min_size"][0]
            wanted = {"input.size": [size, size]} if size != 224 else {}
            assert (entry.set, entry.reference) == (wanted, wanted), (name, entry.name)


def test_densenet_entries_rename_keys_as_torchvisions_loader() -> None:
    source = inspect.getsource(tvm.densenet._load_state_dict)
    for name in ("densenet121", "densenet161", "densenet169", "densenet201"):
        for entry in archspec.load_spec(name).model.weights:
            (pattern, replace), = entry.layout.rename
            assert repr(pattern)[1:-1].replace("\\\\", "\\") in source.replace('r"', '"')
            assert replace == r"\1\2"


def test_ssdlite_backbone_weights_keep_the_full_tail_as_torchvision_does() -> None:
    """torchvision's ssdlite320_mobilenet_v3_large builds the reduced tail only without weights_backbone;
    the other detectors' builders pass weights_backbone to the classifier's builder unchanged."""
    source = inspect.getsource(inspect.unwrap(tvm.get_model_builder("ssdlite320_mobilenet_v3_large")))
    assert "reduce_tail = weights_backbone is None" in source
    assert "reduced_tail=reduce_tail" in source
    for name in [n for n in ZOO if n.endswith("_backbone") and n.removesuffix("_backbone") in DETECTORS]:
        wanted = {"vars.reduced_tail": False} if name.startswith("ssdlite") else {}
        for entry in archspec.load_spec(name).model.weights:
            assert (entry.set, entry.reference) == (wanted, {}), (name, entry.name)
