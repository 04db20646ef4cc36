"""Regenerate docs/gallery/: diagrams of zoo networks, shown in the README.

    python tools/gallery.py            # redraw every picture (needs Graphviz's `dot`)
    python tools/gallery.py --check    # exit 1 when a picture is stale, missing or unexpected

Each SVG carries the SHA-256 of the DOT source it was drawn from, in an XML comment, so a
stale picture is found by regenerating the DOT source (deterministic, no Graphviz needed),
never by comparing pixels. Entries whose spec is not in the zoo are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archspec import zoo
from archspec.backends.diagram import INSTALL_HINT, diagram_network, render_bytes
from archspec.core.atomic import write_atomic

GALLERY_DIR = ROOT / "docs" / "gallery"
STAMP = re.compile(r"<!-- archspec-dot-sha256: ([0-9a-f]{64}) -->")


@dataclass(frozen=True)
class Entry:
    spec: str
    level: str
    show: str = ""

    @property
    def path(self) -> Path:
        return GALLERY_DIR / f"{self.spec}-{self.level}.svg"


GALLERY = [
    Entry("resnet50", "stage", "params,macs,rf"),
    Entry("resnet50", "block"),
    Entry("resnet152", "block"),
    Entry("densenet121", "block"),
    Entry("googlenet", "block"),
    Entry("mobilenet_v3_small", "block"),
    Entry("efficientnet_b0", "stage", "params,macs"),
    Entry("vgg19", "block"),
    Entry("lenet5", "layer", "params,macs,rf"),
    Entry("unet_resnet34", "stage", "params,macs"),
    Entry("deeplabv3plus_resnet50", "stage", "params,macs"),
]


def entries() -> list[Entry]:
    names = set(zoo.names())
    return [e for e in GALLERY if e.spec in names]


def dot_source(entry: Entry) -> str:
    return diagram_network(zoo.load_spec(entry.spec).network(), level=entry.level, show=entry.show).source


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def stamped_svg(svg: str, source: str) -> str:
    """The SVG with the digest of its DOT source after the XML declaration."""
    stamp = f"<!-- archspec-dot-sha256: {digest(source)} -->"
    head, sep, rest = svg.partition("?>\n")
    return f"{head}{sep}{stamp}\n{rest}" if sep else f"{stamp}\n{svg}"


def problems() -> list[str]:
    """What makes docs/gallery/ differ from what the code would draw now."""
    out = []
    expected = {e.path for e in entries()}
    for entry in entries():
        if not entry.path.is_file():
            out.append(f"{entry.path.name}: missing")
            continue
        found = STAMP.search(entry.path.read_text(encoding="utf-8"))
        if not found or found.group(1) != digest(dot_source(entry)):
            out.append(f"{entry.path.name}: stale (drawn from different DOT source)")
    for path in sorted(GALLERY_DIR.glob("*.svg")):
        if path not in expected:
            out.append(f"{path.name}: not in the gallery list")
    return out


def regenerate() -> list[Path]:
    GALLERY_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries():
        source = dot_source(entry)
        svg = render_bytes(source, "svg")
        if svg is None:
            raise SystemExit(f"gallery: Graphviz's `dot` is needed to draw the gallery; {INSTALL_HINT}")
        svg = svg.decode("utf-8")
        write_atomic(entry.path, stamped_svg(svg, source))
        written.append(entry.path)
    for path in GALLERY_DIR.glob("*.svg"):
        if path not in written:
            path.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="report stale pictures instead of redrawing them")
    args = p.parse_args(argv)
    if args.check:
        found = problems()
        for line in found:
            print(line)
        if found:
            print("run `python tools/gallery.py` to redraw the gallery", file=sys.stderr)
        return 1 if found else 0
    for path in regenerate():
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
