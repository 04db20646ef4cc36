"""archspec build: validate, compile, print the per-stage table, optionally save weights."""

from __future__ import annotations

import argparse


from ..core.limits import DEFAULT_MAX_PARAMS, DEFAULT_MAX_PARAMS_TEXT
from .common import (add_input_option, add_spec_options, add_weights_option, check_output_names, human, load, note,
                     overrides, param_limit, print_json, quiet_weights, say, shape_text, table, weights_report)

EXAMPLE = """\
example:
  archspec build specs/vgg19.yaml
  archspec build specs/resnet50.yaml --set num_classes=10 -o resnet50.safetensors
  archspec build resnet18 --input 3x32x32 --set num_classes=10
  archspec build repvgg_a0 --deploy                 # the inference form: one 3x3 conv per block
  archspec build resnet50 --weights IMAGENET1K_V2 --set num_classes=10 -o start.safetensors
                      torchvision's weights, a new 10-class head (the report says what did not load)
  python -c "import archspec; m = archspec.load('resnet50.safetensors')"
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="compile a spec into a PyTorch module and print its table",
                       description="Validate SPEC, compile it into a torch module and print, per stage, the output "
                                   "shape and parameters, then the totals (parameters, MACs, receptive field).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name")
    add_input_option(p)
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE.safetensors",
                   help="save the weights (initialised, or loaded with --weights), with the resolved spec in the "
                        "file's metadata")
    add_weights_option(p)
    p.add_argument("--max-params", type=param_limit, default=DEFAULT_MAX_PARAMS, metavar="N",
                   help=f"refuse networks with more parameters than this (default: {DEFAULT_MAX_PARAMS_TEXT})")
    p.add_argument("--deploy", action="store_true",
                   help="build the inference form: batch norms folded into the conv before them, parallel conv "
                        "branches summed into one conv (RepVGG, MobileOne), dropout gone; same outputs in eval "
                        "mode, not for training (see README, 'Deploy')")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.set_defaults(run=run)


def stage_table(report) -> str:
    rows = []
    for group, layers in report.groups():
        rows.append([group, shape_text(layers[-1].output_shape), f"{sum(la.params for la in layers):,}",
                     human(sum(la.macs for la in layers))])
    return table(rows, ["part", "output", "params", "MACs"], right={2, 3})


def run(args: argparse.Namespace) -> int:
    from ..api import check

    check_output_names(args.output)
    spec = load(args.spec, args)
    if args.output:
        from ..core.atomic import output_target

        output_target(args.output, spec.files)  # refused before any work: a device, a directory, the spec
    report = check(spec, max_params=args.max_params, deploy=args.deploy)

    from ..api import analyze, build, save
    from ..progress import status

    with status(f"build {spec.name}: building the module ({report.params:,} parameters)") as tell:
        with quiet_weights():
            # With weights, from the source: an entry's `set:` may change the network (ViT's input size).
            model = build(args.spec if args.weights else spec, max_params=None, deploy=args.deploy,
                          weights=args.weights, **(overrides(args) if args.weights else {}))  # checked above
        if args.weights:
            report = analyze(model)
        actual = sum(p.numel() for p in model.parameters())
        if actual != report.params:  # the analysis and the module come from one IR; say so loudly if not
            raise AssertionError(f"analysis counts {report.params} parameters, the module has {actual}")
        if args.output:
            tell(f"build {spec.name}: saving {args.output}")
            save(model, args.output)
    loaded = getattr(model, "archspec_weights", None)
    if args.json:
        outputs = {f.name: list(f.shape) for f in report.features} if report.returns_features else None
        print_json({"name": spec.name, "deployed": args.deploy, "params": report.params, "macs": report.macs,
                    "input_shape": list(report.input_shape), "output_shape": list(report.output_shape),
                    "outputs": outputs, "output": args.output,
                    "weights": loaded.to_dict() if loaded is not None else None})
        return 0
    weights_report(model)
    print(f"{spec.name}{' (deployed)' if args.deploy else ''}: input {shape_text(report.input_shape)}")
    print(stage_table(report))
    rf = report.receptive_field
    say(f"\ntotal: {report.params:,} parameters, {human(report.macs)} MACs, "
        f"{report.outputs_text()}, receptive field {rf.size[0]}x{rf.size[1]}")
    if args.output:
        note(f"wrote {args.output}")
    return 0
