"""archspec summary: per-layer shapes, parameters, MACs, memory and receptive field (no torch)."""

from __future__ import annotations

import argparse

from .common import (
    add_analysis_options,
    add_input_option,
    add_level_option,
    add_spec_options,
    analyze,
    overrides,
    print_json,
    say,
    shape_text,
    table,
)

EXAMPLE = """\
example:
  archspec summary specs/resnet50.yaml
  archspec summary resnet50 --input 3x160x160 --level block
  archspec summary resnet50 --batch 32 --dtype float16 --json | jq .peak_activation_bytes
  archspec summary resnet50 --features                      # every stage's end: channels, stride, field
  archspec summary resnet50 --features --set 'features={c2: stem.maxpool, c4: stages.2}' --input 800
  archspec summary resnet50 --features --set output_stride=8
  archspec summary repvgg_a0 --deploy --level layer        # the merged layers of the inference form
  archspec summary resnet50 --weights IMAGENET1K_V2           # and the published weights' metrics
  archspec summary resnet50 --set 'freeze=[stem, stages.0]'  # trainable and frozen parameters
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="shapes, parameters, MACs, memory and receptive field of every layer",
                       description="Analyse SPEC from its IR alone (no weights, no torch): the output shape, "
                                   "parameters, MACs and receptive field of every layer, grouped by stem, stages "
                                   "and head, with the totals and the conventions they follow.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name")
    add_input_option(p)
    add_spec_options(p)
    add_analysis_options(p)
    add_level_option(p, default="stage", help="one row per stage (default), per block or per layer")
    p.add_argument("--features", action="store_true",
                   help="one row per tap (the spec's `features:`, else every stage's end): channels, reduction "
                        "(stride), shape and receptive field, as a detector or segmentation head needs them")
    p.add_argument("--deploy", action="store_true",
                   help="analyse the inference form (`archspec build --deploy`): batch norms folded, parallel conv "
                        "branches merged into one conv, dropout gone")
    p.add_argument("--weights", metavar="NAME",
                   help="also show a published weights entry of the spec (DEFAULT, IMAGENET1K_V2, ...): its metrics, "
                        "preprocessing and file; nothing is downloaded")
    p.add_argument("--json", action="store_true",
                   help="print the whole report (every layer, whatever --level) as JSON")
    p.set_defaults(run=run)


def features_table(report) -> str:
    rows = [[f.name, f.layer, str(f.channels), str(f.reduction), shape_text(f.shape),
             f"{f.rf.size[0]}x{f.rf.size[1]}", f"{f.rf.padding[0]}x{f.rf.padding[1]}"] for f in report.features]
    return table(rows, ["tap", "layer", "channels", "reduction", "shape", "RF", "RF padding"], right={2, 3})


def weights_text(entry: dict) -> str:
    metrics = ", ".join(f"{k} {v:g}" for k, v in entry.get("metrics", {}).items()) or "no published metrics"
    dataset = f" ({entry['dataset']})" if "dataset" in entry else ""
    t = entry.get("transforms", {})
    prep = f"; input: resize {t['resize']}" + (f", crop {t['crop']}" if t.get("crop") else "") if t else ""
    default = " (default)" if entry.get("default") else ""
    return f"weights      {entry['name']}{default}: {metrics}{dataset}{prep}; {entry.get('url', 'no URL')}"


def run(args: argparse.Namespace) -> int:
    report = analyze(args.spec, args)
    entry = None
    if args.weights:
        from ..api import load_spec, weights_entry

        entry = weights_entry(load_spec(args.spec, **overrides(args)), args.weights)
    if args.json:
        print_json({**report.to_dict(), **({"weights": entry} if entry is not None else {})})
        return 0
    if args.features:
        lines = [report.heading(), features_table(report)]
        if entry is not None:
            lines.append(weights_text(entry))
        lines.append("\nreduction: input pixels between neighbouring units; RF: the receptive field of one unit, "
                     "unit i starting at -padding + i * reduction")
        say("\n".join(lines))  # names, URLs and metrics come from the spec: escaped
        return 0
    text = report.text(args.level, conventions=True)
    if entry is not None:  # after the totals, before the conventions
        head, sep, tail = text.partition("\n\nconventions:")
        text = head + "\n" + weights_text(entry) + sep + tail
    say(text)
    return 0
