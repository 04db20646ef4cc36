"""archspec predict: classify images with a network's published weights (top-k with probabilities)."""

from __future__ import annotations

import argparse

from .common import add_spec_options, overrides, print_json, quiet_weights, say

EXAMPLE = """\
examples:
  archspec predict resnet50 --weights IMAGENET1K_V2 cat.jpg dog.png
  archspec predict efficientnet_b0 cat.jpg --top 3 --json    DEFAULT weights, machine-readable
  archspec predict resnet50 --weights ~/resnet50-11ad3fa6.pth cat.jpg   a local copy of the file
  archspec predict finetuned.safetensors cat.jpg          a checkpoint of archspec build -o / archspec.save

The weights are downloaded once into torch's hub cache ($TORCH_HOME/hub/checkpoints) and used
offline from then on; each image gets the preprocessing the weights were published with
(see `archspec.transforms`), and the categories are the weights' own (ImageNet-1K for the zoo).
Weights that leave a tensor of the network unloaded (a head of another class count) are refused:
its random values would pass for predictions.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify images with published weights: top-5 categories",
                       description="Build SPEC with published weights, preprocess each IMAGE as the weights expect, "
                                   "and print its most likely categories with their probabilities.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name (a classifier with weights), or a "
                                                "checkpoint (.safetensors, deployed or not: its own weights)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format pillow reads)")
    p.add_argument("--weights", default="DEFAULT", metavar="NAME|FILE|URL",
                   help="the spec's weights entry (default: DEFAULT), a file or a URL")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many categories to show (default: 5)")
    add_spec_options(p)
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import predict
    from ..plugins import load_plugins
    from ..progress import status

    load_plugins(args.plugins)
    with status(f"predict: {args.spec} with weights {args.weights}"), quiet_weights():
        results = predict(args.spec, list(args.images), weights=args.weights, top=args.top, **overrides(args))
    if args.json:
        print_json([{"image": image, "top": [{"category": c, "probability": p} for c, p in found]}
                    for image, found in zip(args.images, results)])
        return 0
    for image, found in zip(args.images, results):
        width = max(len(c) for c, _ in found)  # names from the file and the weights: escaped by `say`
        say("\n".join([image, *(f"  {rank}. {category:<{width}}  {probability * 100:6.2f}%"
                                 for rank, (category, probability) in enumerate(found, 1))]))
    return 0
