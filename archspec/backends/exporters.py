"""Export formats: standalone Python source, ONNX, and a `torch.export` program (.pt2).

Each format is one function `(model or network, path, options) -> path`, registered
in `FORMATS` with the file suffix that selects it. ONNX and .pt2 trace the compiled
module; Python source is written from the IR and needs no torch at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.formatting import shape_text
from ..core.atomic import write_atomic, write_with
from ..core.deps import require
from ..core.errors import ArchspecError

if TYPE_CHECKING:  # the CLI reads FORMATS to build its parser, which must not import the IR
    from ..ir.graph import Network

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


# torch's ONNX exporter writes opset 18 and newer; it would silently ignore an older request.
MIN_OPSET = 18


class ExportError(ArchspecError):
    pass


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    needs_weights: bool
    write: Callable[..., None]
    help: str
    packages: tuple[str, ...] = ()  # optional packages it needs, checked before any work


def write_python(net: Network, model: Any, path: Path, batch: int, opset: int | None, program: Any = None,
                 protect: Iterable[Path] = ()) -> None:
    from .python_source import python_source

    write_atomic(path, python_source(net), protect=protect)


def check_options(chosen: ExportFormat, opset: int | None) -> None:
    """Refuse, before any work, options the format cannot honour (and never ignore one)."""
    if opset is None:
        return
    if not isinstance(opset, int) or isinstance(opset, bool):
        raise ExportError(f"opset is an integer, not {opset!r}")
    if chosen.name != "onnx":
        raise ExportError(f"opset {opset}: an opset is for ONNX export, not {chosen.name}")
    require(*chosen.packages, feature="ONNX export")
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset}: torch's ONNX exporter writes opset {MIN_OPSET} or newer")
    if opset > newest:
        raise ExportError(f"opset {opset}: the newest opset the installed onnx knows is {newest}")


def machine_memory() -> int:
    """Bytes of physical memory (16 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def check_memory(net: Network, batch: int, model: Any = None, limit: int | None = None) -> None:
    """Refuse, before allocating anything, a traced export that cannot fit in memory (`limit`,
    by default the machine's): the example input, the largest set of activations alive at once
    in one pass (the analysis' peak), and the weights twice (the module, and the copy the
    exporters serialise; not counted when `model` exists already), all in float32. It is meant
    to stop an impossible request (a 65536x65536 input, a batch of 1e8) early, not to be tight."""
    from ..analysis.report import analyze_network

    limit = machine_memory() if limit is None else limit
    report = analyze_network(net, dtype_bytes=4, batch=batch)
    weights = (report.params + report.buffers) * 4 * (1 if model is not None else 2)
    example = batch * 4 * math.prod(net.input_shape)
    total = weights + example + report.peak_activation_bytes
    if total > limit:
        shape = shape_text(net.input_shape)
        advice = "use a smaller batch or input size" if weights < limit else "the weights alone do not fit"
        raise ExportError(f"tracing a batch of {batch} at {shape} needs about {total / (1 << 30):,.1f} GiB "
                          f"({weights / (1 << 30):,.1f} GiB of weights, the rest example input and activations), "
                          f"more than this machine's {limit / (1 << 30):,.1f} GiB; {advice}")


def input_name(outputs: Iterable[str]) -> str:
    """The ONNX graph's input name: `input`, or `input_1`, `input_2`, ... when a tap (an output) has that name:
    ONNX names every value once."""
    taken = set(outputs)
    name, n = INPUT_NAME, 0
    while name in taken:
        n += 1
        name = f"{INPUT_NAME}_{n}"
    return name


def _example(net: Network, model: Any, batch: int) -> Any:
    """A random input on the model's device, in its dtype. A batch of at least 2: torch.export
    takes a dimension of size 1 for a constant, and the batch axis is to stay dynamic."""
    import torch

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    return torch.randn(max(batch, 2), *net.input_shape, device=device, dtype=dtype)


def _dynamic_batch() -> dict[str, Any]:
    import torch

    return {"x": {0: torch.export.Dim("batch")}}


def trace(net: Network, model: Any, batch: int = 2) -> Any:
    """The module in eval mode as a `torch.export` program with a dynamic batch dimension.

    Both ONNX and .pt2 are written from such a program; pass one to both to trace once.
    """
    import torch

    training = model.training
    model.eval()
    try:
        return torch.export.export(model, (_example(net, model, batch),), dynamic_shapes=_dynamic_batch())
    finally:
        model.train(training)  # the caller's module is left as it was


def write_onnx(net: Network, model: Any, path: Path, batch: int, opset: int | None, program: Any = None,
               protect: Iterable[Path] = ()) -> None:
    """ONNX through torch's exporter, with a dynamic batch axis named `batch`. The file is
    checked to carry the opset asked for (the exporter may quietly write another)."""
    require(*FORMATS["onnx"].packages, feature="ONNX export")
    check_options(FORMATS["onnx"], opset)
    import onnx
    import torch

    program = program if program is not None else trace(net, model, batch)
    x = _example(net, model, batch)
    options: dict[str, Any] = {"opset_version": opset} if opset else {}
    outputs = [tap.name for tap in net.taps] if net.taps else [OUTPUT_NAME]  # a network with taps: one per tap

    def save(tmp: Path) -> None:
        torch.onnx.export(program, (x,), str(tmp), input_names=[input_name(outputs)], output_names=outputs,
                          dynamo=True, dynamic_shapes=_dynamic_batch(), external_data=False, verbose=False, **options)
        try:  # the file is valid ONNX before it takes the target's name
            onnx.checker.check_model(str(tmp))
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"torch's exporter wrote an ONNX file that onnx.checker refuses "
                              f"({str(exc).splitlines()[0][:300]}); nothing was written") from None
        if opset is not None:
            written = {o.domain: o.version for o in onnx.load(str(tmp), load_external_data=False).opset_import}
            if written.get("", written.get("ai.onnx")) != opset:
                raise ExportError(f"opset {opset}: torch's exporter wrote opset {written.get('')} instead; "
                                  "nothing was written")

    _quietly(lambda: write_with(path, save, protect=protect))


def write_pt2(net: Network, model: Any, path: Path, batch: int, opset: int | None, program: Any = None,
              protect: Iterable[Path] = ()) -> None:
    """A `torch.export` program with a dynamic batch dimension; load it with `torch.export.load`."""
    import torch

    program = program if program is not None else trace(net, model, batch)
    # torch.export.save wants a name ending in .pt2 (or a buffer, which costs a copy of the weights)
    write_with(path, lambda tmp: torch.export.save(program, str(tmp)), suffix=".pt2", protect=protect)


def _quietly(action: Callable[[], None]) -> None:
    """Run the ONNX exporter without its progress lines on stdout (which `--json` owns)."""
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        action()


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("python", ".py", False, write_python, "standalone PyTorch source (no archspec import)"),
        ExportFormat("onnx", ".onnx", True, write_onnx, "ONNX with a dynamic batch axis", ("torch", "onnx", "onnxscript")),
        ExportFormat("pt2", ".pt2", True, write_pt2, "a torch.export program (torch.export.load)", ("torch",)),
    )
}
# Earlier names, still accepted: `export` was the .pt2 format's name, `py` reads as the suffix.
ALIASES = {"export": "pt2", "py": "python"}


def format_for(path: str | Path, name: str | None) -> ExportFormat:
    """The format named, or the one the file suffix implies."""
    if name is not None:
        name = ALIASES.get(name, name)
        if name not in FORMATS:
            from ..core.errors import unknown_name

            raise ExportError(unknown_name("export format", name, FORMATS))
        return FORMATS[name]
    suffix = Path(path).suffix.lower()
    for f in FORMATS.values():
        if f.suffix == suffix:
            return f
    known = ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS.values())
    raise ExportError(f"cannot tell the export format from '{path}'; name it (--format on the command line, format= "
                      f"in Python) or end the file name in one of {known}")
