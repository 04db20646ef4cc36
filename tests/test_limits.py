"""Resource limits apply before anything is allocated; validation never imports torch.

Parameter counts in the expected messages are worked out by hand in each test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace
from pathlib import Path

import pytest
from tests.clirun import run_cli

import archspec
from archspec.core.errors import LimitError, SpecError

ROOT = Path(__file__).resolve().parent.parent

# conv 3->64 3x3 with bias: 64*3*9 + 64 = 1,792
# basic 64->64: two 3x3 convs 2*36,864 + two BNs 2*128 = 73,984
# basic 64->C, stride 2 (C = 655,360): conv1 C*64*9, conv2 C*C*9, 1x1 projection C*64, three BNs 3*2C
# linear C->10: 10*C + 10
C = 655_360
HEAVY_STAGE = C * 64 * 9 + C * C * 9 + C * 64 + 3 * 2 * C
TOTAL = 1_792 + 73_984 + HEAVY_STAGE + 10 * C + 10
HUGE = f"""\
name: huge
input: {{size: 32}}
stem:
  - conv: {{out: 64, kernel: 3, padding: 1}}
stages:
  - {{block: basic, out: 64}}
  - {{block: basic, out: {C}, stride: 2}}
head: [global_pool, flatten, {{linear: 10}}]
"""


def test_parameter_limit_names_the_estimate_and_the_heaviest_stage(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE, encoding="utf-8")
    code, out, err = run_cli("validate", str(path))
    assert code == 2 and out == ""
    assert err == (f"{path}:7:5: stages[1]: the network has {TOTAL:,} parameters ({HEAVY_STAGE:,} of them here), "
                   "over the limit of 2,000,000,000; raise the limit with --max-params (max_params= in the API) "
                   "if you mean it\n")


def test_max_params_flag_raises_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE, encoding="utf-8")
    code, out, _ = run_cli("validate", str(path), "--max-params", "4e12")
    assert code == 0 and f"{TOTAL:,} parameters" in out
    code, _, err = run_cli("validate", str(path), "--max-params", "1e12")
    assert code == 2 and "over the limit of 1,000,000,000,000" in err


def test_build_refuses_before_allocating_any_weight(monkeypatch) -> None:
    """The check runs on the analysis: the torch backend is never reached."""
    import archspec.backends.torch_module as backend

    def no_allocation(*args, **kwargs):
        raise AssertionError("weights were about to be allocated")

    monkeypatch.setattr(backend, "build_module", no_allocation)
    start = time.process_time()
    with pytest.raises(LimitError, match="over the limit of 2,000,000,000"):
        archspec.build(HUGE)
    assert time.process_time() - start < 10


def test_build_cli_refuses_before_allocating(tmp_path: Path, monkeypatch) -> None:
    import archspec.backends.torch_module as backend

    monkeypatch.setattr(backend, "build_module", lambda *a, **k: pytest.fail("allocated"))
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE, encoding="utf-8")
    code, _, err = run_cli("build", str(path))
    assert code == 2 and "over the limit of 2,000,000,000" in err


def test_build_with_a_raised_limit_reaches_the_backend(monkeypatch) -> None:
    import archspec.backends.torch_module as backend

    reached = []
    monkeypatch.setattr(backend, "build_module", lambda net, init=True: reached.append(net.name) or SimpleNamespace())
    archspec.build(HUGE, max_params=4e12)
    archspec.build(HUGE, max_params=None)
    assert reached == ["huge", "huge"]


@pytest.mark.parametrize("text, message", [
    ("name: x\nstages:\n  - {block: basic, out: 8, repeat: 1025}\n",
     "stages[0].repeat: must be <= 1024, got 1025"),
    ("name: x\ninput: {size: 8}\nstages:\n" + "  - {block: basic, out: 8, repeat: 1000}\n" * 5,
     "stages: the stages hold 5,000 blocks in all, more than the limit of 4,096"),
    # 40 layers x 1,024 repeats x 2 stages = 81,920 nodes > 50,000 with only 2,048 blocks
    ("name: x\ninput: {size: 8}\nstages:\n"
     + ("  - {block: layers, repeat: 1024, layers: [" + ", ".join(["act"] * 40) + "]}\n") * 2,
     "stages[1]: the network has more than 50,000 layers"),
    ("name: x\ninput: {size: 100000}\n", "input.size: must be <= 65536, got 100000"),
    ("name: x\ninput: {channels: 100000}\n", "input.channels: must be <= 65536, got 100000"),
    ("name: x\nscale: {width: 1000}\n", "scale.width: must be <= 64.0, got 1000"),
])
def test_absurd_counts_are_refused_quickly(text: str, message: str) -> None:
    start = time.process_time()
    with pytest.raises(SpecError) as info:
        archspec.load_spec(text).network()
    assert time.process_time() - start < 10
    assert len(info.value.problems) == 1
    assert message in str(info.value)


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)


def test_validate_and_schema_never_import_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput: {size: 4}\nstem: [{conv: {out: 8, kernel: 7}}]\n", encoding="utf-8")
    schema = str(tmp_path / "s.json")
    run = _run_python(
        "import sys\n"
        "from archspec.cli.main import main\n"
        f"codes = [main(['validate', 'specs/resnet50.yaml']), main(['validate', {str(bad)!r}]),\n"
        f"         main(['validate', '--set', 'num_classes=10', 'resnet50']), main(['schema', '-o', {schema!r}])]\n"
        "print(codes, 'torch' in sys.modules)\n"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[0, 2, 0, 0] False"
