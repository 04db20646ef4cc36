"""A bare zoo name means the zoo network, even beside a file of that name (issue 25).

`d.render("resnet50", format="svg")` (docs/diagrams.md) leaves a DOT file called `resnet50` in the
working directory; `archspec summary resnet50` then read it and failed. The rule (docs/api.md): a
name with no `.yaml`/`.yml` and no directory that the zoo has is the zoo's; a file is named with
its extension or a directory (`resnet50.yaml`, `./resnet50`). Expected counts are torchvision's
(resnet50: 25,557,032 parameters; with a 10-class head 25,557,032 - 2048 * 990 - 990).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from tests.clirun import run_cli

DOT = 'digraph resnet50 {\n\tgraph [rankdir=TB]\n\tstem [label="stem"]\n}\n'  # what Digraph.render leaves
R50, R50_10 = 25_557_032, 25_557_032 - 2048 * 990 - 990


@pytest.fixture
def beside_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet50").write_text(DOT)
    return tmp_path


def _params(*argv: str) -> int:
    code, out, err = run_cli("summary", *argv, "--json")
    assert code == 0, err
    import json

    return json.loads(out)["params"]


def test_bare_zoo_name_is_the_zoo_beside_a_file(beside_dot: Path) -> None:
    assert _params("resnet50") == R50
    assert archspec.analyze("resnet50").params == R50
    assert archspec.load_spec("resnet50").source.endswith("resnet50.yaml")


def test_a_path_to_that_file_reads_the_file(beside_dot: Path) -> None:
    code, _, err = run_cli("summary", "./resnet50")
    assert code == 2 and err.startswith("resnet50:2:1:") and "tab" in err, err


def test_a_file_with_its_extension_wins_over_the_zoo(beside_dot: Path) -> None:
    spec = (Path(archspec.zoo.path_of("resnet50")).read_text()).replace("num_classes: 1000", "num_classes: 10")
    (beside_dot / "resnet50.yaml").write_text(spec)
    assert _params("resnet50.yaml") == R50_10
    assert _params("resnet50") == R50


def test_extends_a_bare_zoo_name_beside_a_file(beside_dot: Path) -> None:
    (beside_dot / "child.yaml").write_text("extends: resnet50\nname: child\nnum_classes: 10\n")
    assert _params("child.yaml") == R50_10


def test_a_bare_name_the_zoo_lacks_is_a_file(beside_dot: Path) -> None:
    spec = archspec.zoo.path_of("resnet50").read_text()  # type: ignore[union-attr]
    (beside_dot / "mynet").write_text(spec.replace("num_classes: 1000", "num_classes: 10"))
    assert _params("mynet") == R50_10
