"""Checkpoints: `archspec build -o` / `archspec.save` write safetensors, `archspec.load` rebuilds the model.

Outside truth: the safetensors file format (8-byte little-endian header length, a JSON header,
raw tensor bytes; read back with the safetensors library, not archspec); torchvision's resnet18
as the function a loaded checkpoint must compute; and hand-derived shapes (LeNet-5's classifier
is 84 -> num_classes).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import archspec
from archspec.checkpoint import CheckpointError
from archspec.core.errors import ArchspecError
from archspec.interop import to_torchvision
from tests.clirun import run_cli


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    """Non-trivial buffers (and affine parameters), so that a checkpoint must carry them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)


def test_cli_checkpoint_loads_as_the_network_it_names(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.safetensors"
    code, out, err = run_cli("build", "resnet18", "--set", "num_classes=10", "--set", "input.size=[64,64]", "-o", str(path))
    assert code == 0, err
    assert f"wrote {path}" in err and "wrote" not in out  # as every command: "wrote" on stderr
    model = archspec.load(path).eval()
    # The loaded weights are the file's bytes, read by the safetensors library itself.
    stored = load_file(str(path))
    assert stored.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key]), key
    # And the rebuilt module is torchvision's resnet18 with ten classes (the override travelled in the file).
    reference = to_torchvision(model, torchvision.models.resnet18(weights=None, num_classes=10)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert ours.shape == (2, 10)
    assert (ours - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "mobilenet_v3_small", "squeezenet1_1"])
def test_save_then_load_gives_identical_outputs(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    size = 32 if name == "lenet5" else 64
    model = archspec.build(name, num_classes=10, **{"input.size": [size, size]})
    _randomise_batchnorm(model)
    path = tmp_path / f"{name}.safetensors"
    archspec.save(model, path)
    loaded = archspec.load(path)
    assert type(loaded) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = torch.randn(3, model.archspec_spec["input"]["channels"], size, size)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_checkpoint_is_safetensors_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "lenet5.safetensors"
    assert run_cli("build", "lenet5", "-o", str(path))[0] == 0
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # a pickle stream starts with PROTO (0x80)
    assert not raw.startswith(b"PK")  # nor is it torch.save's zip archive (which holds a pickle)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])  # the whole header is JSON
    meta = header.pop("__metadata__")
    assert json.loads(meta["archspec.spec"])["name"] == "lenet5"
    # Every remaining byte is tensor data described by the header: nothing else hides in the file.
    sizes = {"F32": 4, "F64": 8, "I64": 8, "F16": 2, "BF16": 2}
    assert sum((end - start) for start, end in (t["data_offsets"] for t in header.values())) == len(raw) - 8 - n
    for entry in header.values():
        numel = torch.Size(entry["shape"]).numel()
        assert entry["data_offsets"][1] - entry["data_offsets"][0] == numel * sizes[entry["dtype"]]
    assert sum(torch.Size(t["shape"]).numel() for t in header.values()) == 61_706  # LeNet-5: parameters only
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(header)


# -- refusals -----------------------------------------------------------------------------------

def _lenet_file(tmp_path: Path, num_classes: int) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata `archspec.save` writes for lenet5 with `num_classes` outputs."""
    path = tmp_path / f"lenet5_{num_classes}.safetensors"
    archspec.save(archspec.build("lenet5", num_classes=num_classes), path)
    with safe_open(str(path), framework="pt") as f:
        return load_file(str(path)), f.metadata()


def test_load_refuses_weights_that_do_not_fit_the_spec(tmp_path: Path) -> None:
    weights_10, _ = _lenet_file(tmp_path, 10)
    _, spec_1000 = _lenet_file(tmp_path, 1000)
    path = tmp_path / "mixed.safetensors"
    save_file(weights_10, str(path), metadata=spec_1000)  # ten-class weights, a 1000-class spec
    with pytest.raises(CheckpointError, match=r"tensor 'head\.fc\.weight' has shape \(10, 84\), the spec needs \(1000, 84\)"):
        archspec.load(path)


def test_load_refuses_a_missing_or_an_extra_tensor(tmp_path: Path) -> None:
    weights, meta = _lenet_file(tmp_path, 10)
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in weights.items() if k != "head.fc.bias"}, str(missing), metadata=meta)
    with pytest.raises(CheckpointError, match=r"missing \['head\.fc\.bias'\]"):
        archspec.load(missing)
    extra = tmp_path / "extra.safetensors"
    save_file({**weights, "head.extra": torch.zeros(3)}, str(extra), metadata=meta)
    with pytest.raises(CheckpointError, match=r"unexpected \['head\.extra'\]"):
        archspec.load(extra)


def test_load_refuses_a_file_without_archspec_metadata(tmp_path: Path) -> None:
    weights, _ = _lenet_file(tmp_path, 10)
    plain = tmp_path / "plain.safetensors"
    save_file(weights, str(plain))
    with pytest.raises(CheckpointError, match="no archspec spec in the metadata"):
        archspec.load(plain)
    for bad, what in (("{not json", "not valid JSON"), ("[1, 2]", "not a mapping")):
        broken = tmp_path / "broken.safetensors"
        save_file(weights, str(broken), metadata={"archspec.spec": bad, "archspec.format": "1"})
        with pytest.raises(CheckpointError, match=what):
            archspec.load(broken)
    with pytest.raises(CheckpointError, match="no such file"):
        archspec.load(tmp_path / "absent.safetensors")


def test_load_refuses_a_checkpoint_asking_for_a_huge_network_before_allocating(tmp_path: Path) -> None:
    weights, meta = _lenet_file(tmp_path, 10)
    spec = json.loads(meta["archspec.spec"])
    spec["input"]["size"] = [4096, 4096]  # flatten: 16 x 1021 x 1021 -> linear 120: about 2.0e9 weights
    path = tmp_path / "huge.safetensors"
    save_file(weights, str(path), metadata={**meta, "archspec.spec": json.dumps(spec)})
    with pytest.raises(ArchspecError, match="over the limit"):
        archspec.load(path)


class _Payload:
    """Unpickling this writes a file: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "unpickled")


def test_load_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"head.fc.weight": torch.zeros(10, 84), "x": _Payload(marker)}))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        archspec.load(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload works: the check above can fail
    assert marker.read_text() == "unpickled"


# -- the CLI path that reads checkpoints: `archspec export CHECKPOINT` ---------------------------

def test_cli_refuses_a_bad_checkpoint_with_exit_code_2(tmp_path: Path) -> None:
    weights_10, _ = _lenet_file(tmp_path, 10)
    _, spec_1000 = _lenet_file(tmp_path, 1000)
    mixed, plain = tmp_path / "mixed.safetensors", tmp_path / "plain.safetensors"
    save_file(weights_10, str(mixed), metadata=spec_1000)
    save_file(weights_10, str(plain))
    out = tmp_path / "model.pt2"  # a format that exports the checkpoint's weights, so it must load them
    code, _, err = run_cli("export", str(mixed), "-o", str(out))
    assert code == 2, err
    assert err.startswith("archspec: error:") and "'head.fc.weight'" in err
    code, _, err = run_cli("export", str(plain), "-o", str(tmp_path / "model.py"))
    assert code == 2 and "no archspec spec in the metadata" in err, err
    assert not out.exists() and not (tmp_path / "model.py").exists()


def test_a_checkpoint_keeps_the_frozen_parts_and_the_weights_name(tmp_path: Path) -> None:
    # a fine-tune resumed from the file freezes what it froze; predict reads the same preprocessing
    model = archspec.build("resnet18", num_classes=10, freeze=["stem", "stages.0"])
    model.archspec_weights_name = "IMAGENET1K_V1"  # as build(..., weights="IMAGENET1K_V1") sets it
    path = tmp_path / "tuned.safetensors"
    archspec.save(model, path)
    loaded = archspec.load(path)
    assert loaded.archspec_frozen == ("stem", "stages.0")
    assert not any(p.requires_grad for p in loaded.stem.parameters())
    assert all(p.requires_grad for p in loaded.stages[1].parameters())
    loaded.train()
    assert not loaded.stem.bn1.training and loaded.stages[1].blocks[0].bn1.training
    assert loaded.archspec_weights_name == "IMAGENET1K_V1"


def test_load_refuses_a_frozen_list_that_is_no_list_of_paths(tmp_path: Path) -> None:
    tensors, metadata = _lenet_file(tmp_path, 10)
    path = tmp_path / "bad_frozen.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "archspec.frozen": '{"stem": 1}'})
    with pytest.raises(CheckpointError, match="not a list of module paths"):
        archspec.load(path)
