"""Fetching and bad weights: the hash check (with an entry and a file this test makes), the cache used
offline, and a clear error, with nothing half-done, for each way weights can be wrong. No test
touches the network: `fetch._open` is replaced by a server of bytes, or sockets refuse."""

from __future__ import annotations

import hashlib
import io
import os
import pickle

import pytest
import torch
import torchvision.models as tvm

import archspec
from archspec.core.errors import SpecError
from archspec.weights import WeightsError, cache_dir
from archspec.weights import fetch
from clirun import run_cli

pytestmark = pytest.mark.usefixtures("no_network")


TINY = {
    "name": "tiny", "input": {"channels": 3, "size": [8, 8]}, "num_classes": 3,
    "stem": [{"conv": {"out": 4, "kernel": 3, "padding": 1, "name": "conv"}}, {"norm": {"name": "bn"}}, "act"],
    "head": [{"global_pool": {"type": "avg"}}, "flatten", {"linear": {"out": 3, "name": "fc"}}],
}


def tiny_file() -> tuple[bytes, dict]:
    torch.manual_seed(0)
    model = archspec.build(TINY)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue(), model.state_dict()


def with_entry(data: bytes, sha256: str | None = None, **extra) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    entry = {"name": "MINE_V1", "default": True, "url": f"https://weights.example/tiny-{digest[:8]}.pth",
             "sha256": sha256 or digest, **extra}
    return {**TINY, "weights": [entry]}


class Served(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, data: bytes) -> list[str]:
    asked: list[str] = []

    def fake_open(url):
        asked.append(url)
        return Served(data)

    monkeypatch.setattr(fetch, "_open", fake_open)
    return asked


def test_a_download_is_hash_checked_written_atomically_and_then_read_from_the_cache(hub, monkeypatch) -> None:
    data, state = tiny_file()
    spec = with_entry(data)
    asked = serve(monkeypatch, data)
    model = archspec.build(spec, weights="DEFAULT")
    target = hub / f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    assert cache_dir() == hub and target.read_bytes() == data and os.listdir(hub) == [target.name]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert asked == [spec["weights"][0]["url"]]

    def offline(url):
        raise AssertionError("the cached file must be used without the network")

    monkeypatch.setattr(fetch, "_open", offline)
    again = archspec.build(spec, weights="MINE_V1")
    assert again.archspec_weights.file == target


def test_two_urls_of_the_same_file_name_are_cached_apart(hub, monkeypatch) -> None:
    # HuggingFace names every repository's file the same: the second URL is downloaded too, and each
    # model gets its own file's weights (a cached file is not hashed again)
    torch.manual_seed(1)
    other = archspec.build(TINY).state_dict()
    first, state = tiny_file()
    buffer = io.BytesIO()
    torch.save(other, buffer)
    files = {"https://weights.example/a/resolve/main/model.pth": first,
             "https://weights.example/b/resolve/main/model.pth": buffer.getvalue()}
    asked: list[str] = []

    def fake_open(url):
        asked.append(url)
        return Served(files[url])

    monkeypatch.setattr(fetch, "_open", fake_open)
    a, b = (archspec.build(TINY, weights=url) for url in files)
    assert asked == list(files) and len(os.listdir(hub)) == 2
    assert all(torch.equal(a.state_dict()[k], v) for k, v in state.items())
    assert all(torch.equal(b.state_dict()[k], v) for k, v in other.items())
    assert a.archspec_weights.file.name.startswith("model_") and a.archspec_weights.file.suffix == ".pth"


@pytest.mark.parametrize("digest", ["0" * 64, "deadbeef"])
def test_a_hash_mismatch_keeps_no_file(hub, monkeypatch, digest: str) -> None:
    data, _ = tiny_file()
    serve(monkeypatch, data)
    with pytest.raises(WeightsError, match=f"SHA-256 is {hashlib.sha256(data).hexdigest()}, the weights entry "
                                           f"expects {digest}.*not kept"):
        archspec.build(with_entry(data, sha256=digest), weights="DEFAULT")
    assert not hub.exists() or os.listdir(hub) == []  # neither the file nor a temporary one


def test_a_truncated_download_keeps_no_file(hub, monkeypatch) -> None:
    data, _ = tiny_file()

    class Short(Served):
        def __init__(self, data):
            super().__init__(data[: len(data) // 2])
            self.headers = {"Content-Length": str(len(data))}

    monkeypatch.setattr(fetch, "_open", lambda url: Short(data))
    with pytest.raises(WeightsError, match="truncated"):
        archspec.build(with_entry(data), weights="DEFAULT")
    assert os.listdir(hub) == []


def test_no_network_names_the_url_and_where_to_put_the_file(hub) -> None:
    url = archspec.load_spec("resnet18").model.weights[0].url
    with pytest.raises(WeightsError) as caught:
        archspec.build("resnet18", weights="IMAGENET1K_V1")
    message = str(caught.value)
    assert f"cannot download {url}" in message
    assert f"put it at {hub / 'resnet18-f37072fd.pth'}" in message


def test_an_unknown_name_suggests_the_near_one_and_lists_them() -> None:
    with pytest.raises(WeightsError, match="resnet50 has no weights named 'IMAGENET1K_V3' "
                                           r"\(did you mean 'IMAGENET1K_V2'\?\); known: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"):
        archspec.build("resnet50", weights="IMAGENET1K_V3")
    with pytest.raises(WeightsError, match="lenet5 has no weights named 'DEFAULTS'"):
        archspec.build("lenet5", weights="DEFAULTS")
    with pytest.raises(WeightsError, match="lenet5 has no default weights"):
        archspec.build("lenet5", weights="DEFAULT")


def test_weights_of_another_architecture_list_the_tensors_that_disagree(hub) -> None:
    path = hub.parent.parent.parent / "resnet34.pth"
    torch.save(tvm.resnet34().state_dict(), path)
    with pytest.raises(WeightsError) as caught:
        archspec.build("resnet18", weights=str(path))
    message = str(caught.value)
    assert "these weights are not those of resnet18" in message
    assert "resnet18 has 122 tensors, the file 218" in message
    assert "\n  #30: archspec stages.1.blocks.0.conv1.weight [128, 64, 3, 3]  vs  file layer1.2.conv1.weight [64, 64, 3, 3]" \
        in message


def test_a_truncated_file_and_a_pickle_that_carries_code_are_refused(tmp_path) -> None:
    data, _ = tiny_file()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.pth: not a readable weights file, truncated or damaged"):
        archspec.build(TINY, weights=str(cut))
    evil = tmp_path / "evil.pth"
    torch.save({"stem.conv.weight": os.system}, evil)  # unpickling would look up a callable
    ran = tmp_path / "ran"
    payload = type("Payload", (), {"__reduce__": lambda self: (os.system, (f"touch {ran}",))})()
    evil.write_bytes(pickle.dumps({"stem.conv.weight": payload}))
    with pytest.raises(WeightsError, match="evil.pth: refused: the file is a pickle that carries code"):
        archspec.build(TINY, weights=str(evil))
    assert not ran.exists()


def test_a_local_file_and_a_safetensors_file_load(tmp_path) -> None:
    data, state = tiny_file()
    path = tmp_path / "tiny.pth"
    path.write_bytes(data)
    model = archspec.build(TINY, weights=str(path))
    assert model.archspec_weights.skipped == {} and len(model.archspec_weights.loaded) == len(state)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "tiny.safetensors"))
    model = archspec.build(TINY, weights=str(tmp_path / "tiny.safetensors"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    archspec.save(model, tmp_path / "checkpoint.safetensors")  # an archspec checkpoint: archspec's own names
    again = archspec.build(TINY, weights=str(tmp_path / "checkpoint.safetensors"))
    assert all(torch.equal(again.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("entries, message", [
    ([{"name": "A"}, {"name": "A"}], "two weights entries are named 'A'"),
    ([{"name": "A", "default": True}, {"name": "B", "default": True}], "more than one weights entry is `default: true`"),
    ([{"name": "A", "categories": "imagenet1k"}], "unknown category list 'imagenet1k' \\(did you mean 'imagenet-1k'\\?\\)"),
    ([{"name": "A", "url": "ftp://x/y.pth"}], "weights\\[0\\].url"),
    ([{"name": "A", "sha256": "xyz"}], "weights\\[0\\].sha256"),
    ([{"name": "DEFAULT"}], "'DEFAULT' names the entry marked `default: true`"),
])
def test_bad_weights_entries_are_located_errors(entries, message) -> None:
    with pytest.raises(SpecError, match=message):
        archspec.load_spec({**TINY, "weights": entries})


def test_cli_build_with_weights_reports_what_loaded(tmp_path) -> None:
    data, _ = tiny_file()
    path = tmp_path / "tiny.pth"
    path.write_bytes(data)
    spec = tmp_path / "tiny.yaml"
    import yaml

    spec.write_text(yaml.safe_dump({**TINY, "num_classes": 5, "head": [{"global_pool": {"type": "avg"}}, "flatten",
                                                                         {"linear": {"out": "${num_classes}", "name": "fc"}}]}))
    code, out, err = run_cli("build", str(spec), "--weights", str(path))
    assert code == 0, err
    assert "weights " + str(path) + ": 7 tensors loaded" in err
    assert "head.fc.weight: shape [5, 4] here, [3, 4] in the weights" in err
    code, out, err = run_cli("build", "resnet18", "--weights", "IMAGENET1K_V9")
    assert code == 2 and "resnet18 has no weights named 'IMAGENET1K_V9'" in err


def test_a_file_that_loads_nothing_is_an_error_not_a_warning(tmp_path) -> None:
    empty, wrong = tmp_path / "empty.pth", tmp_path / "wrong.pth"
    torch.save({}, empty)
    torch.save({k: torch.zeros(3, 3) for k in archspec.build(TINY).state_dict()}, wrong)  # the names, no shape
    with pytest.raises(WeightsError, match="load nothing here: it holds no tensors"):
        archspec.build(TINY, weights=str(empty))
    with pytest.raises(WeightsError, match=r"load nothing here: none of its \d+ tensors fits"):
        archspec.build(TINY, weights=str(wrong))
