"""archspec export: standalone Python source, ONNX or a torch.export program."""

from __future__ import annotations

import argparse

from .common import (add_input_option, add_spec_options, add_weights_option, check_output_names, note, overrides, print_json,
                     quiet_weights)

EXAMPLE = """\
examples:
  archspec export resnet50 -o resnet50.py                 readable PyTorch source, no archspec needed
  archspec export resnet50 -o resnet50.onnx               ONNX, dynamic batch axis (onnxruntime-ready)
  archspec export resnet50 -o resnet50.pt2                torch.export program: torch.export.load(path)
  archspec export specs/vgg19.yaml --format python -o vgg.py --set num_classes=10
  archspec export resnet50.safetensors -o resnet50.onnx   a checkpoint from `archspec build -o`: its weights
  archspec export resnet50 --weights IMAGENET1K_V2 -o resnet50.onnx   torchvision's published weights

The format follows the suffix of -o (.py, .onnx, .pt2) unless --format names it. Python
source has the state_dict keys of `archspec.build`, so weights load into it unchanged:
  model = Resnet50(); model.load_state_dict(safetensors.torch.load_file("resnet50.safetensors"))
ONNX and .pt2 trace the module (random weights unless SPEC is a checkpoint or --weights names some).
"""


def register(sub: argparse._SubParsersAction) -> None:
    from ..backends.exporters import ALIASES, FORMATS

    formats = ", ".join(f"{f.name} ({f.suffix}): {f.help}" for f in FORMATS.values())
    p = sub.add_parser("export", help="write standalone PyTorch source, ONNX or a torch.export program",
                       description=f"Export SPEC (a spec, a zoo name or a .safetensors checkpoint). Formats: {formats}.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file, a zoo name, or a checkpoint written by `archspec build -o`")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the file to write (.py, .onnx or .pt2)")
    p.add_argument("--format", choices=[*FORMATS, *ALIASES], metavar="{" + ",".join(FORMATS) + "}",
                   help="the format (default: from the suffix of -o); `export` is the old name of pt2")
    add_spec_options(p)
    add_input_option(p)
    p.add_argument("--batch", type=int, default=2, metavar="N",
                   help="batch size of the example input used for tracing, at least 2 (torch.export takes a size-1 "
                        "dimension for a constant); the batch axis stays dynamic (default: 2)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset version, 18 or newer (default: the exporter's)")
    p.add_argument("--deploy", action="store_true",
                   help="write the inference form (as `archspec build --deploy`): norms folded, branches merged; "
                        "a checkpoint written by `build --deploy -o` is always written deployed")
    add_weights_option(p)
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import export
    from ..api import export_format
    from ..checkpoint import is_checkpoint, read_deployed
    from ..plugins import load_plugins

    check_output_names(args.output)
    chosen = export_format(args.output, args.format)  # a bad suffix is reported before any work
    load_plugins(args.plugins)
    with quiet_weights():
        path = export(args.spec, args.output, chosen.name, batch=args.batch, opset=args.opset, deploy=args.deploy,
                      weights=args.weights, **overrides(args))
    hint = None
    if chosen.name == "python" and is_checkpoint(args.spec):
        if args.deploy and not read_deployed(args.spec):  # the file holds the training form's tensors
            hint = (f"the source holds no weights; load the deployed form's with model.load_state_dict("
                    f"archspec.deploy(archspec.load({str(args.spec)!r})).state_dict())")
        else:
            hint = (f"the source holds no weights; load them with "
                    f"model.load_state_dict(safetensors.torch.load_file({str(args.spec)!r}))")
    if args.json:
        print_json({"output": str(path), "format": chosen.name, "bytes": path.stat().st_size, "note": hint})
    else:
        note(f"wrote {path} ({chosen.name})")
        if hint:
            note(f"note: {hint}")
    return 0
