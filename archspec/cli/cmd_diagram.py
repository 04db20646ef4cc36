"""archspec diagram: draw the network with Graphviz (no torch needed)."""

from __future__ import annotations

import argparse
import sys

from .common import add_input_option, add_level_option, add_spec_options, check_output_names, load, note

EXAMPLE = """\
examples:
  archspec diagram resnet50                                     writes resnet50.svg: every block, skips as edges
  archspec diagram resnet50 --level stage --show params,macs -o resnet50.png --dpi 150
  archspec diagram resnet152 --no-fold -o resnet152-all.svg      every one of the 50 blocks
  archspec diagram specs/vgg19.yaml --level layer --rankdir LR -o vgg19.pdf
  archspec diagram resnet50 -o resnet50.dot                     DOT source only: no Graphviz needed
  archspec diagram resnet50 -o - | dot -Tpng -o resnet50.png    -o - writes the DOT source to stdout

The picture is drawn from the same IR that builds the module. Rendering SVG, PNG or PDF needs
Graphviz's `dot` (apt-get install graphviz, brew install graphviz or conda install graphviz);
without it the .dot file is written next to the requested output and the exit code is 3.
"""

FORMATS = ("svg", "png", "pdf", "dot")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagram", help="draw the network as a Graphviz diagram (SVG, PNG, PDF or DOT)",
                       description="Draw SPEC at stage, block or layer level, coloured by layer kind, with a "
                                   "legend and a title giving parameters, MACs and input size.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name")
    add_spec_options(p)
    add_input_option(p)
    add_level_option(p, default="block",
                     help="stage: stem, stages (blocks folded as xN) and head; block: every block, with "
                          "branches, skips and concatenations; layer: every layer (default: block)")
    p.add_argument("--show", metavar="LIST", default="",
                   help="numbers to add to each row, comma-separated: params, macs, rf")
    p.add_argument("--rankdir", choices=("TB", "LR"), type=str.upper, default="TB",
                   help="TB draws top to bottom, LR left to right (default: TB)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file; the format follows the extension: .svg, .png, .pdf or .dot; `-` writes "
                        "the DOT source to stdout (default: NAME.svg, or NAME.FORMAT with --format)")
    p.add_argument("--format", choices=FORMATS, help="the format when -o is not given (default: svg)")
    p.add_argument("--dpi", type=float, metavar="N", help="resolution of a PNG (default: Graphviz's 96)")
    p.add_argument("--deploy", action="store_true",
                   help="draw the inference form (`archspec build --deploy`): norms folded, parallel conv branches "
                        "merged into one conv, dropout gone")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the first block of each run of identical blocks, marked xN, on a grey ground "
                        "(default: on at block level, off at layer level; --no-fold draws every block)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import check_dpi, diagram, diagram_format, render
    from ..core.errors import ArchspecError

    check_dpi(args.dpi)  # as the extension below: refused before any work
    check_output_names(args.output)
    if args.output and args.output != "-":
        fmt = diagram_format(args.output)  # a bad extension is reported before any work
        if args.format and args.format != fmt:
            raise ArchspecError(f"--format {args.format} disagrees with the extension of {args.output}")
    if args.output == "-" and args.format not in (None, "dot"):
        raise ArchspecError(f"-o - writes the DOT source to stdout, not {args.format}: give a file name for --format "
                            f"{args.format}")
    if args.level == "stage" and args.fold is False:
        raise ArchspecError("--no-fold draws every block, and the stage level draws none: use --level block or layer")
    spec = load(args.spec, args)
    output = args.output or f"{spec.name}.{args.format or 'svg'}"
    if output != "-":
        from ..core.atomic import output_target

        output_target(output, spec.files)  # a device, a directory or the spec itself: refused before any work
    graph = diagram(spec, level=args.level, show=args.show, rankdir=args.rankdir, fold=args.fold, deploy=args.deploy)
    if output == "-":
        sys.stdout.write(graph.source)
        return 0
    from ..progress import status

    with status(f"diagram {spec.name}: drawing {output} with Graphviz"):
        path = render(graph, output, dpi=args.dpi, protect=spec.files)
    note(f"wrote {path}")
    return 0
