"""The public face of archspec. Only `build` and `load` import torch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .analysis.report import DTYPE_BYTES, Report, analyze_network
from .core.deps import require
from .core.errors import OVERRIDE_NAME, ArgumentError, LimitError, Location, Problem, SpecError
from .ir.deploy import deploy_network
from .ir.graph import Network
from .core.limits import DEFAULT_MAX_PARAMS
from .spec.load import Spec, load_spec, to_network


def build(spec: Any, *, weights: Any = None, freeze: Any = None, max_params: float | None = DEFAULT_MAX_PARAMS,
          deploy: bool = False, init_weights: bool = True, **overrides: Any) -> Any:
    """Compile a spec (path, zoo name, YAML text, dict or `Spec`) into a plain `nn.Module`.

    Keyword arguments override spec keys: `build("resnet50", num_classes=10)`,
    `build(path, **{"input.size": [32, 32]})`, `build("resnet50", output_stride=8)`, and
    `build("resnet50", features={"c3": "stages.1", "c5": "stages.3"})`, whose module returns
    those feature maps as an ordered dict and builds nothing they do not need (docs/spec-language.md,
    "Taps"). A network with more than `max_params` parameters (from analysis, before any weight
    exists) is refused; None lifts the limit. `init_weights=False` skips the spec's `init:`
    schemes and leaves each layer as its torch constructor made it: quicker, for weights that
    are loaded next (`archspec.load` does so).

    `weights`: a name from the spec's `weights:` ("IMAGENET1K_V2"), "DEFAULT", a file or a URL;
    downloads go to torch's hub cache. Every tensor whose name and shape fit loads; the rest keeps
    the spec's initialisation, and `model.archspec_weights` (a `weights.Report`) says what did not
    load and why (a warning too). `freeze`: part paths or patterns ("stem", "stages.0") to freeze,
    besides the spec's `freeze:` (docs/training.md).
    """
    if "_init" in overrides:
        raise ArgumentError("build(_init=...) is now build(init_weights=...)")
    require("torch", feature="building a module")
    from .backends.torch_module import build_module

    chosen = None
    if isinstance(spec, Network):
        if weights is not None:
            raise ArgumentError("weights load into a spec's network: give the spec, not a compiled Network")
        net, located = spec, None
    else:
        located = spec if isinstance(spec, Spec) and not overrides else load_spec(spec, **overrides)
        if weights is not None:
            from .weights import choose

            chosen = choose(located, weights)
            if chosen.entry.set:  # what the network needs to use them (GoogLeNet's transform_input)
                # Resolved again from the source where there is one, so that `${}` values follow (ViT's
                # position embedding follows input.size); a `Spec` has its values substituted already.
                named = OVERRIDE_NAME.set(f"weights {chosen.entry.name}: set")  # the entry's mistake, not a --set's
                try:
                    located = (located.with_overrides(**chosen.entry.set) if isinstance(spec, Spec)
                               else load_spec(spec, **{**overrides, **chosen.entry.set}))
                finally:
                    OVERRIDE_NAME.reset(named)
        net = located.network()
    if max_params is not None:
        check_params_limit(analyze_network(net).params, _limit(max_params), located)
    model = build_module(net, init=init_weights)
    if chosen is not None and located is not None:
        _load_weights(model, located, chosen)  # into the training form: deploy folds the loaded norms
    if deploy and _patterns(freeze):
        raise ArgumentError("freeze is for training; a deployed module does not train (drop deploy or freeze)")
    # A spec's own `freeze:` says how to fine-tune it; its deployed form does not train, so the spec deploys
    # (and a deployed checkpoint of it loads) with nothing to freeze.
    patterns = [] if deploy else [*(located.model.freeze if located is not None else ()), *_patterns(freeze)]
    if patterns:
        _freeze(model, patterns, located, len(patterns) - len(_patterns(freeze)))
    if deploy:
        from .backends.torch_deploy import deploy_module

        report = getattr(model, "archspec_weights", None)
        model = deploy_module(model, net)
        if report is not None:
            model.archspec_weights, model.archspec_weights_name = report, chosen.label if chosen else None
    model.archspec_inputs = located.files if located is not None else ()  # never overwritten by `save`
    return model


def deploy(model: Any, *, layout: str = "auto", pack: bool = True):
    """The inference form of a module built by `archspec.build` (trained or not), in eval mode, on
    the module's device and in its dtype.

    Batch norms are folded into the conv or linear layer before them, parallel linear branches
    that are summed (RepVGG, MobileOne) become one conv, dropout, stochastic depth and auxiliary
    heads are gone; the outputs equal the module's own in eval mode, to float rounding. The
    result is for inference only: it has no batch norm left to train, and its parameters do not
    require grad. `layout`: "auto" (channels-last memory for convolutional networks, faster on
    CPU), "channels_last" or "contiguous". `pack`: its 2-d convs keep their weights in oneDNN's
    layout for CPU inference, and run NNPACK instead where the first call times it faster and
    finds it as accurate (`PackedConv2d`, an `nn.Conv2d`; exports and other devices run the plain conv); False leaves
    plain `nn.Conv2d`s, for tools that look for that exact type, and PyTorch's own choice of kernel.
    """
    require("torch", feature="deploying a module")
    from .backends.torch_deploy import deploy_module

    if getattr(model, "archspec_deployed", False):
        raise ArgumentError("the module is already deployed")
    data = getattr(model, "archspec_spec", None)
    if not isinstance(data, dict):
        raise ArgumentError("archspec.deploy takes a module built by archspec.build (it reads the spec it carries); "
                            f"got {type(model).__name__}")
    deployed = deploy_module(model, load_spec(data).network(), layout, pack)
    deployed.archspec_inputs = getattr(model, "archspec_inputs", ())
    return deployed


deploy_model = deploy  # for the functions below, whose `deploy` argument hides it


def _load_weights(model: Any, located: Spec, chosen: Any) -> None:
    import warnings

    from .weights import load_into

    report = load_into(model, located, chosen, reference=_meta_module)
    model.archspec_weights = report
    model.archspec_weights_name = chosen.label
    if report.skipped:
        warnings.warn(str(report), WeightsWarning, stacklevel=3)


class WeightsWarning(UserWarning):
    """Some tensors of the model did not load from the weights (another head, say); the message lists them."""


def _meta_module(spec: Spec) -> Any:
    """The network of `spec` on torch's meta device: shapes and names, no memory, no initialisation."""
    import torch

    from .backends.torch_module import build_module

    with torch.device("meta"):
        return build_module(spec.network(), init=False)


def _patterns(freeze: Any) -> list[str]:
    if freeze is None:
        return []
    items = [freeze] if isinstance(freeze, str) else freeze
    try:
        items = list(items)
    except TypeError:
        raise ArgumentError(f"freeze is a part path or a list of them (\"stem\", \"stages.0\"), not {freeze!r}") from None
    if not all(isinstance(p, str) and p for p in items):
        raise ArgumentError(f"freeze is a part path or a list of them (\"stem\", \"stages.0\"), not {freeze!r}")
    return items


def _freeze(model: Any, patterns: list[str], located: Spec | None, from_spec: int) -> None:
    from .backends.torch_freeze import FreezeError, freeze

    try:
        freeze(model, patterns)
    except FreezeError as exc:
        if located is not None and exc.index < from_spec:
            raise SpecError(located.locator.problem(str(exc), ("freeze", exc.index))) from None
        raise ArgumentError(str(exc)) from None


def transforms(spec: Any, weights: Any = "DEFAULT", **overrides: Any):
    """The preprocessing the weights `weights` (an entry name, or DEFAULT) of `spec` expect: a callable
    from an image (a PIL image, a path, or a C x H x W tensor) to the normalised tensor the network takes,
    equal to torchvision's `weights.transforms()` (resize, centre crop, normalise). No torch is needed
    to get it; calling it needs torch and pillow."""
    from .weights import choose
    from .weights.transforms import Preprocess

    located = _spec_of(spec)
    located = located if isinstance(located, Spec) and not overrides else load_spec(located, **overrides)
    entry = choose(located, weights).entry
    if entry.transforms is None:
        from .weights import WeightsError

        raise WeightsError(f"weights {entry.name} of {located.name} state no preprocessing (`transforms:`)")
    return Preprocess(entry.transforms)


def weights_entry(spec: Any, weights: Any = "DEFAULT") -> dict:
    """The spec's weights entry `weights` (a name, or DEFAULT) as plain data: URL, hash, metrics,
    preprocessing, categories (their count), ... (what `summary --weights` shows). No torch."""
    from .weights import choose

    located = spec if isinstance(spec, Spec) else load_spec(_spec_of(spec))
    entry = choose(located, weights).entry
    data = entry.model_dump(exclude_defaults=True, by_alias=True)
    names = entry.category_names
    if names is not None:
        data["categories"] = f"{entry.categories} ({len(names)})" if isinstance(entry.categories, str) else len(names)
    return data


def predict(spec: Any, images: Any, weights: Any = "DEFAULT", top: int = 5, **overrides: Any) -> list:
    """Classify images with published weights: for each image (a path, a PIL image or a tensor), the
    `top` categories with their probabilities (softmax of the logits), most likely first, as
    [(category, probability), ...]; a list of those for a list of images.

    `spec` is a spec (built with `weights` on each call), a checkpoint (`archspec.save`'s .safetensors:
    its own weights, deployed or not) or a model built by `archspec.build(..., weights=...)` (build
    once, predict many times). Weights that leave a tensor of the network unloaded (a head of
    another class count) are refused: its random values would pass for predictions."""
    import torch

    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ArgumentError(f"top must be a positive integer, got {top!r}")
    from .checkpoint import is_checkpoint

    single = not isinstance(images, (list, tuple))
    if single:
        images = [images]
    if is_checkpoint(spec):  # every tensor loads (strictly), in the form it was saved in
        if weights != "DEFAULT" or overrides:
            raise ArgumentError("a checkpoint holds its own weights and spec: weights and overrides do not apply to it")
        model = load(spec)
    elif not _is_built(spec):
        import warnings

        with warnings.catch_warnings():  # what did not load is an error here, below
            warnings.simplefilter("ignore", WeightsWarning)
            model = build(spec, weights=weights, **overrides)
        _check_loaded(model)
    else:
        model = spec
    located = load_spec(_spec_of(model))
    preprocess = transforms(located, getattr(model, "archspec_weights_name", weights))
    names = _categories(located, getattr(model, "archspec_weights_name", weights))
    model.eval()
    outputs = []
    with torch.no_grad():  # a batch at a time: a thousand images are not held at once
        for i in range(0, len(images), PREDICT_BATCH):
            out = model(torch.stack([preprocess(image) for image in images[i:i + PREDICT_BATCH]]))
            if not isinstance(out, torch.Tensor) or out.ndim != 2:
                raise ArgumentError(f"{located.name} does not classify (its output is not one score per category); "
                                    "predict takes a classifier")
            outputs.append(out)
    if not outputs:
        return []
    logits = torch.cat(outputs)
    if not bool(torch.isfinite(logits).all()):
        raise ArgumentError(f"{located.name} gives scores that are not finite numbers (NaN or infinity) for "
                            f"{_few_images(images, ~torch.isfinite(logits).all(1))}: the weights hold such values, "
                            "or overflow")
    if names is not None and len(names) != logits.shape[1]:  # a head fine-tuned to other classes: no names fit
        names = None
    probs = logits.softmax(1)
    k = min(top, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    found = [[(names[i] if names is not None and i < len(names) else f"class {i}", float(v))
              for v, i in zip(row_v.tolist(), row_i.tolist())] for row_v, row_i in zip(values, indices)]
    return found[0] if single else found


PREDICT_BATCH = 32  # images run through the network at once by `predict`


def _check_loaded(model: Any) -> None:
    """Refuse to predict with a model whose weights did not all load: what did not keeps its random
    initialisation (a head of another class count, a deployed checkpoint into the training form),
    and its predictions would be noise that looks like an answer."""
    from .weights import WeightsError

    report = getattr(model, "archspec_weights", None)
    if report is None or not report.skipped:
        return
    skipped = report.skipped
    first = "; ".join(f"{k}: {why}" for k, why in list(skipped.items())[:3])
    raise WeightsError(f"predict needs every tensor of the network from the weights, and {len(skipped):,} of "
                       f"{len(report.skipped) + len(report.loaded):,} did not load from {report.file} ({first}): they "
                       "would keep their random initialisation. Predict with the network the weights were saved "
                       "from (without --set num_classes=...), or train the parts that did not load first")


def _few_images(images: list, which: Any) -> str:
    chosen = [str(image) if isinstance(image, (str, Path)) else f"image {i}"
              for i, (image, bad) in enumerate(zip(images, which.tolist())) if bad]
    return ", ".join(chosen[:3]) + (f" and {len(chosen) - 3} more" if len(chosen) > 3 else "")


def _categories(spec: Spec, weights: Any) -> tuple[str, ...] | None:
    from .weights import choose

    return choose(spec, weights).entry.category_names


def check_params_limit(params: int, limit: float | None, spec: Spec | None) -> None:
    """Refuse, before any weight is allocated, a network with more than `limit` parameters.

    The error points at the part of the spec (a stem layer, a stage, a head layer) holding
    the most parameters, which is where a typo such as `out: 655360` usually is.
    """
    if limit is None or params <= limit:
        return
    if spec is None:  # a bare Network: no spec to point into
        raise LimitError(Problem(f"the network has {params:,} parameters, over the limit of {int(limit):,}",
                                 (), Location("<network>")))

    by_part: dict[tuple, int] = {}
    for layer in analyze_network(spec.network()).layers:
        part = tuple(layer.origin[:2])
        by_part[part] = by_part.get(part, 0) + layer.params
    part = max(by_part, key=by_part.__getitem__, default=())
    share = f" ({by_part[part]:,} of them here)" if part else ""
    raise LimitError(spec.locator.problem(
        f"the network has {params:,} parameters{share}, over the limit of {int(limit):,}; "
        "raise the limit with --max-params (max_params= in the API) if you mean it", part))


def _limit(value: Any) -> float:
    """A parameter limit: a positive number (inf for none)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"max_params must be a number, got {value!r}") from None
    if not number > 0:  # also refuses nan
        raise ArgumentError(f"max_params must be a positive number, got {value!r}")
    return number


def _spec_of(spec: Any) -> Any:
    """A module built by archspec carries its resolved spec (`archspec_spec`): stand for it by that."""
    data = getattr(spec, "archspec_spec", None)
    if isinstance(data, dict) and not isinstance(spec, (str, dict, Path, Spec, Network)):
        return data
    return spec


def _is_built(spec: Any) -> bool:
    return _spec_of(spec) is not spec


def analyze(spec: Any, input: Any = None, *, batch: int = 1, dtype: str = "float32", deploy: bool = False,
            **overrides: Any) -> Report:
    """Shapes, parameters, MACs, memory and receptive field, without building the model.

    `spec` is a path, a zoo name, YAML text, a dict, a `Spec` or a module built by `archspec.build`.
    `input` sets the input size: `(3, 224, 224)`, `(224, 224)`, `224` or "3x224x224".
    `batch` and `dtype` (float32, float16, bfloat16, float64, int8) scale the activation memory.
    `deploy=True` analyses the inference form (`archspec.deploy`: norms folded, branches merged);
    a deployed module is analysed as deployed.
    """
    deploy = deploy or bool(getattr(spec, "archspec_deployed", False))
    spec = _spec_of(spec)
    if input is not None:
        overrides.update(input_overrides(input))
    if dtype not in DTYPE_BYTES:
        raise ArgumentError(f"dtype is one of {', '.join(DTYPE_BYTES)}, not {dtype!r}")
    _check_batch(batch, 1)
    net = to_network(spec, **overrides)
    return analyze_network(deploy_network(net).network if deploy else net, dtype_bytes=DTYPE_BYTES[dtype], batch=batch)


def _check_batch(batch: Any, least: int) -> None:
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < least:
        raise ArgumentError(f"batch must be an integer of at least {least}, got {batch!r}")


def input_overrides(value: Any) -> dict[str, Any]:
    """`input=` of analyze and diagram: a size, (h, w), (c, h, w), "3x224x224", or the spec's own
    mapping (`{"size": [32, 32]}`), as load_spec and build take it."""
    if isinstance(value, Mapping):
        return {"input": dict(value)}
    if isinstance(value, str):
        text = value
        try:
            value = [int(v) for v in text.lower().replace(",", "x").split("x") if v.strip()]
        except ValueError:
            raise ArgumentError(f"input must be CxHxW, HxW or a size such as 3x224x224, got {text!r}") from None
    if isinstance(value, int):
        return {"input.size": [value, value]}
    try:
        value = list(value)
    except TypeError:
        raise ArgumentError(f"input must be CxHxW, HxW or a size, got {value!r}") from None
    if len(value) in (1, 2, 3) and not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65536
                                           for v in value):
        shown = "x".join(map(str, value))[:100]
        raise ArgumentError(f"input must be CxHxW, HxW or a size, each from 1 to 65536, got {shown}")
    if len(value) == 3:
        return {"input.channels": value[0], "input.size": value[1:]}
    if len(value) == 2:
        return {"input.size": value}
    if len(value) == 1:
        return {"input.size": [value[0], value[0]]}
    raise ArgumentError(f"input must be CxHxW, HxW or a size, got {value}")


def diagram(spec: Any, level: str = "block", *, show: Any = (), rankdir: str = "TB", input: Any = None,
            fold: bool | None = None, deploy: bool = False, **overrides: Any):
    """A Graphviz diagram of the network, as a `graphviz.Digraph` (it renders inline in Jupyter).

    `level`: "stage", "block" or "layer"; `show`: any of "params", "macs", "rf" (a list or
    "params,macs"); `rankdir`: "TB" (top to bottom) or "LR"; `fold`: draw one block for each run of
    identical blocks, marked ×N (default: at block level). Other keywords override spec keys.
    `spec` is anything `analyze` takes, a built module included; `deploy=True` (or a deployed module)
    draws the inference form.
    Write it with `archspec.backends.diagram.render(d, "net.svg")` or `d.render(...)`.
    """
    from .backends.diagram import diagram_network

    deploy = deploy or bool(getattr(spec, "archspec_deployed", False))
    spec = _spec_of(spec)
    if input is not None:
        overrides.update(input_overrides(input))
    net = to_network(spec, **overrides)
    return diagram_network(deploy_network(net).network if deploy else net, level=level, show=show, rankdir=rankdir,
                           fold=fold)


def save(model: Any, path: str | Path) -> None:
    """Write weights and the resolved spec to a safetensors file (atomically)."""
    from .checkpoint import save as _save

    _save(model, path)  # refuses to overwrite the spec or checkpoint the model was made from


def load(path: str | Path, device: str = "cpu"):
    """Rebuild a module from a checkpoint written by `archspec build -o` / `archspec.save`."""
    from .checkpoint import load as _load

    return _load(path, device, build=build)


def export(spec: Any, path: str | Path, format: str | None = None, *, model: Any = None, batch: int = 2,
           opset: int | None = None, deploy: bool = False, weights: Any = None, **overrides: Any) -> Path:
    """Write the network to `path` as standalone Python source, ONNX or a torch.export program.

    `format` is "python", "onnx" or "pt2" (once "export"); by default the suffix decides (.py, .onnx, .pt2).
    `spec` is anything `build` takes, a checkpoint written by `archspec build -o`, or a module
    built by `archspec.build` (after training, say), whose weights go into ONNX and .pt2 (Python
    source holds no weights: load them into the class). `model`: the module to export, for a
    spec; by default the spec is built with fresh weights. `batch` (at least 2) sizes the example input used for tracing;
    the batch axis stays dynamic. `opset` picks the ONNX opset (18 or newer). Other keywords
    override spec keys. Python export needs no torch; the others trace the compiled module.
    `deploy=True` writes the inference form (`archspec.deploy`); a deployed module is written as
    deployed.
    `weights` (ONNX and .pt2): build the spec with those published weights (as `build` does) and export that.
    """
    from .backends.exporters import ExportError, check_memory, check_options, format_for
    from .checkpoint import is_checkpoint
    from .checkpoint import load_spec as checkpoint_spec
    from .checkpoint import read_deployed
    from .core.atomic import output_target
    from .core.reading import file_name

    chosen = format_for(file_name(path), format)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 2:
        raise ExportError(f"batch must be at least 2 (torch.export takes a size-1 dimension for a constant), got {batch}")
    require(*chosen.packages, feature=f"{chosen.name} export")
    check_options(chosen, opset)
    from .progress import status

    if weights is not None:
        if model is not None or _is_built(spec) or is_checkpoint(spec) or isinstance(spec, Network):
            raise ExportError("weights= loads published weights into a spec; this export already has its weights")
        if not chosen.needs_weights:
            raise ExportError(f"{chosen.name} export writes no weights (--weights is for onnx and pt2); load them "
                              "into the exported class with load_state_dict")
        spec, overrides = build(spec, weights=weights, **overrides), {}
    if _is_built(spec):
        if overrides:
            raise ExportError("a built module cannot be overridden: its weights were made for its spec")
        model, spec = (spec if model is None else model), _spec_of(spec)
    with status(f"export to {chosen.name}: reading the spec") as say:
        inputs: tuple = ()
        if isinstance(spec, Network):
            if overrides:
                raise ExportError("overrides apply to a spec, not to a compiled Network")
            net = spec
        elif is_checkpoint(spec):
            if overrides:
                raise ExportError("a checkpoint's spec cannot be overridden (no --set, no keyword overrides): its weights "
                                  "were made for it")
            inputs = (Path(spec),)
            net = checkpoint_spec(spec).network()
        else:
            located = spec if isinstance(spec, Spec) and not overrides else load_spec(spec, **overrides)
            inputs = located.files
            net = located.network()
        deploy = (deploy or bool(getattr(model, "archspec_deployed", False))
                  or (is_checkpoint(spec) and read_deployed(spec)))  # written by `build --deploy -o`
        if deploy and model is not None and not getattr(model, "archspec_deployed", False):
            model = deploy_model(model)
        inputs = (*inputs, *getattr(model, "archspec_inputs", ()))  # a module's spec file or checkpoint
        output_target(path, inputs)  # refused before any work: a device, a directory, an input
        if chosen.needs_weights:
            check_memory(net, batch, model)
            if model is None and is_checkpoint(spec):
                say(f"export {net.name} to {chosen.name}: loading the checkpoint's weights")
                model = load(spec)
                if deploy and not getattr(model, "archspec_deployed", False):
                    model = deploy_model(model)
            elif model is None:
                say(f"export {net.name} to {chosen.name}: building the module")
                model = build(net, deploy=deploy)
        if deploy:
            net = deploy_network(net).network
        say(f"export {net.name} to {chosen.name}: " + ("tracing and writing" if chosen.needs_weights else "writing"))
        chosen.write(net, model, Path(path), batch, opset, protect=inputs)
    return Path(path)


# -- what the command line needs beyond the above: it imports this module and core only ----------------------------
def check(spec: Any, *, max_params: float | None = DEFAULT_MAX_PARAMS, deploy: bool = False, **overrides: Any) -> Report:
    """Everything short of building: load, lower and analyse the spec, and refuse a network over
    `max_params` parameters (`archspec validate`, and `archspec build` before it builds). Returns
    the analysis (of the inference form, with `deploy`)."""
    located = spec if isinstance(spec, Spec) and not overrides else load_spec(spec, **overrides)
    report = analyze_network(located.network())
    check_params_limit(report.params, _limit(max_params), located)
    return analyze_network(deploy_network(located.network()).network) if deploy else report


def parse_assignment(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` (the value read as YAML), as `--set` takes it: ("num_classes", 10)."""
    from .spec.resolve import parse_assignment as parse

    return parse(text)


def schema_text() -> str:
    """The JSON Schema of specs (every registered op and block family), as text."""
    from .spec.schema import schema_text as text

    return text()


def render(diagram: Any, path: str | Path, *, dpi: float | None = None, protect: Any = ()) -> Path:
    """Write a diagram from `diagram()` to `path` (atomically, never over a file in `protect`);
    the suffix picks SVG, PNG, PDF or DOT."""
    from .backends.diagram import render as _render

    return _render(diagram, path, dpi=dpi, protect=protect)


def check_dpi(dpi: float | None) -> None:
    """Refuse a PNG resolution outside what Graphviz draws sensibly (`render` checks it too)."""
    from .backends.diagram import check_dpi as check

    check(dpi)


def diagram_format(path: str | Path) -> str:
    """The diagram format a file name asks for (svg, png, pdf, dot); an error for any other suffix."""
    from .backends.diagram import output_format

    return output_format(path)


def export_format(path: str | Path, format: str | None = None) -> Any:
    """The export format for `path` (its suffix) or the named `format`; an error for a bad one."""
    from .backends.exporters import format_for

    return format_for(path, format)


__all__ = ["Spec", "analyze", "build", "deploy", "diagram", "export", "load", "load_spec", "predict", "save",
           "transforms"]
