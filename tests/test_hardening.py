"""What archspec never does to your files, never reads and never runs (docs/errors.md, "Promises"),
and every bad input of issue 13 ending in exit 2 (3 for a missing package) with one located line.

Outside truth: the operating system (stat of a device node, a FIFO, a symlink; signals), the
safetensors file format (written with the safetensors library, not archspec), hand counts.
Real system files are never touched: device nodes are `mknod` copies in tmp_path (as root) or
symlinks to /dev/null that a non-root user cannot replace anyway.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import archspec
from archspec.core.errors import ArchspecError, ArgumentError, SpecError
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parent.parent
TINY = ("name: tiny\ninput: {channels: 1, size: [8, 8]}\nstem: [{conv: {out: 2, kernel: 3}}]\n"
        "head: [global_pool, flatten, {linear: 3}]\n")


def tiny(tmp_path: Path, name: str = "tiny.yaml", text: str = TINY) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def char_device(tmp_path: Path) -> Path:
    """A character device to aim `-o` at: a copy of /dev/null made with mknod (as root), else a
    symlink to /dev/null (followed to the device; a non-root user could not replace it anyway)."""
    path = tmp_path / "null"
    if os.geteuid() == 0:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        path.symlink_to("/dev/null")
    return path


# -- outputs: only a regular file (or a new name) is ever replaced ------------------------------------------------

def test_a_device_is_never_replaced(tmp_path: Path) -> None:
    device = char_device(tmp_path)
    code, _, err = run_cli("schema", "-o", str(device))
    assert code == 2 and err == f"archspec: error: {device}: is a character device; archspec writes only regular files " \
                                "(choose a file name)\n"
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temporary file left beside it


def test_a_fifo_or_a_directory_is_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.py"
    folder.mkdir()
    spec = tiny(tmp_path)
    for target, kind in ((fifo, "a named pipe"), (folder, "a directory")):
        code, _, err = run_cli("export", str(spec), "--format", "python", "-o", str(target))
        assert code == 2 and f"{target}: is {kind}; archspec writes only regular files" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and folder.is_dir() and not any(folder.iterdir())


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    """As the shell's `>`: the link stays a link, the file it points to gets the output."""
    real = tmp_path / "real.json"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    code, _, _ = run_cli("schema", "-o", str(link))
    assert code == 0 and link.is_symlink() and os.readlink(link) == real.name
    assert json.loads(real.read_text(encoding="utf-8"))["title"]
    loop = tmp_path / "loop.json"
    loop.symlink_to("loop.json")
    code, _, err = run_cli("schema", "-o", str(loop))
    assert code == 2 and "a symlink loop" in err and loop.is_symlink()


def test_an_input_is_never_an_output(tmp_path: Path) -> None:
    spec = tiny(tmp_path)
    parent = tiny(tmp_path, "parent.yaml")
    child = tiny(tmp_path, "child.yaml", "extends: parent.yaml\nname: child\n")
    odd = tiny(tmp_path, "spec.dot")
    cases = [("export", str(spec), "--format", "python", "-o", str(spec)),
             ("build", str(spec), "-o", str(spec)),
             ("diagram", str(odd), "-o", str(odd)),  # a spec file named like a diagram
             ("export", str(child), "--format", "python", "-o", str(parent))]  # a parent is an input too
    for argv in cases:
        code, _, err = run_cli(*argv)
        assert code == 2 and "is an input of this command" in err, (argv, err)
    assert spec.read_text(encoding="utf-8") == TINY and parent.read_text(encoding="utf-8") == TINY
    checkpoint = tmp_path / "tiny.safetensors"
    assert run_cli("build", str(spec), "-o", str(checkpoint))[0] == 0
    before = checkpoint.read_bytes()
    code, _, err = run_cli("export", str(checkpoint), "--format", "python", "-o", str(checkpoint))
    assert code == 2 and "is an input of this command" in err and checkpoint.read_bytes() == before
    with pytest.raises(ArchspecError, match="is an input of this command"):
        archspec.save(archspec.load(checkpoint), checkpoint)


@pytest.mark.parametrize("name, message", [
    ("", "the output file name is empty"),
    ("x" * 300 + ".py", "cannot write: File name too long"),
    ("tiny.yaml/x.py", "cannot write: Not a directory"),
])
def test_unwritable_output_names_exit_2(tmp_path: Path, name: str, message: str, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    tiny(tmp_path)
    code, _, err = run_cli("export", "tiny.yaml", "--format", "python", "-o", name)
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv", [
    ("build", "tiny.yaml", "-o", ""),
    ("diagram", "tiny.yaml", "-o", ""),
    ("schema", "-o", ""),
    ("compare", "tiny.yaml", "--plot", ""),
    ("compare", "tiny.yaml", "--metric", ""),
    ("sweep", "space.yaml", "-o", ""),
    ("sweep", "space.yaml", "--emit", ""),
    ("sweep", "space.yaml", "--plot", ""),
], ids=lambda argv: "-".join(a for a in argv if a.startswith("-") or a.isalpha()))
def test_an_empty_file_name_is_refused_not_ignored(argv: tuple[str, ...], tmp_path: Path, monkeypatch) -> None:
    """`-o ''` (an unset shell variable, say) is a mistake to report, not a request to write nothing,
    to stdout or to a default name; and it is reported before any work."""
    monkeypatch.chdir(tmp_path)
    tiny(tmp_path)
    (tmp_path / "space.yaml").write_text("name: s\nbase: tiny.yaml\nsamples: 1\n", encoding="utf-8")
    code, out, err = run_cli(*argv)
    assert (code, out, err.count("\n")) == (2, "", 1), (argv, out, err)
    assert "empty" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml", "tiny.yaml"]


def _signalled(script: str, argument: str, signal_name: str,
               ready: Callable[[subprocess.Popen], None]) -> tuple[int, str]:
    """Run `script` with `argument` in a new interpreter, send it `signal_name` once `ready(proc)`
    returns, and wait for it to end: its exit code and standard error."""
    import signal

    proc = subprocess.Popen([sys.executable, "-c", script, argument], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        ready(proc)
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=60)
    finally:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


SLOW_WRITE = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if the test runner ignores it
import archspec.core.atomic
from archspec.cli.main import main
def hold(*args):  # the output is complete in its temporary file, not yet renamed
    print("ready", flush=True)
    time.sleep(60)
archspec.core.atomic.os.replace = hold
sys.exit(main(["schema", "-o", sys.argv[1]]))
"""


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_mid_write_leaves_no_temporary_file(tmp_path: Path, signal_name: str, code: int) -> None:
    target = tmp_path / "schema.json"
    target.write_text("previous", encoding="utf-8")

    def ready(proc: subprocess.Popen) -> None:
        assert proc.stdout.readline() == "ready\n"
        assert len(list(tmp_path.iterdir())) == 2  # the target and its temporary file

    returncode, err = _signalled(SLOW_WRITE, str(target), signal_name, ready)
    assert returncode == code, err
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]
    assert target.read_text(encoding="utf-8") == "previous"


FORKED = """
import os, signal, sys, time
from archspec.cli.main import Terminated, _terminate_as_exception
with _terminate_as_exception():
    pid = os.fork()
    if pid == 0:  # a worker forked while a command runs (sweep -j)
        time.sleep(30)
        os._exit(0)
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except Terminated:
        print("unwound")
"""


def test_sigterm_unwinds_the_command_but_a_forked_worker_just_ends() -> None:
    proc = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (proc.stdout, proc.stderr) == ("True\nunwound\n", "")


# -- inputs: only regular files, of bounded size; a checkpoint's spec reads nothing ------------------------------

def test_extends_and_include_never_wait_on_a_named_pipe(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "a.yaml").write_text("extends: pipe.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(TINY + "include: pipe.yaml\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "archspec.cli.main", "validate", "a.yaml", "b.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "a.yaml:1:10: extends: 'pipe.yaml' is a named pipe, not a spec file",  # located, as a directory is
        "b.yaml:5:10: include: include 'pipe.yaml': is a named pipe, not a spec file",
    ]


def test_a_metrics_file_is_read_only_if_regular(tmp_path: Path) -> None:
    """compare --metric reads a CSV named by the user: never waited on (a pipe), never read without
    end (a device), as the spec files are."""
    os.mkfifo(tmp_path / "pipe.csv")
    for name, kind in (("pipe.csv", "a named pipe"), ("null", "a character device")):
        path = char_device(tmp_path) if name == "null" else tmp_path / name
        code, out, err = run_cli("compare", "lenet5", "--metric", str(path))
        assert (code, out, err) == (2, "", f"archspec: error: cannot read the metrics file {path}: is {kind}, "
                                           "not a regular file\n")
    (tmp_path / "latin1.csv").write_bytes(b"name,top1\nlenet5,99\nr\xe9seau,1\n")  # byte 10 + 10 + 1: not UTF-8
    code, _, err = run_cli("compare", "lenet5", "--metric", str(tmp_path / "latin1.csv"))
    assert (code, err) == (2, f"archspec: error: the metrics file {tmp_path / 'latin1.csv'} is not UTF-8 text "
                              "(invalid continuation byte at byte 21)\n")


def test_missing_files_and_symlink_loops_are_named_plainly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("loop_a.yaml").symlink_to("loop_b.yaml")
    Path("loop_b.yaml").symlink_to("loop_a.yaml")
    Path("child.yaml").write_text("extends: loop_a.yaml\n", encoding="utf-8")
    assert run_cli("validate", "no:such.yaml")[2] == "no:such.yaml: no such file, and no zoo network of that name\n"
    assert run_cli("validate", "")[2] == "<string>: the spec is empty (neither a file name nor YAML text)\n"
    assert run_cli("validate", "loop_a.yaml")[2] == "loop_a.yaml: cannot read: Too many levels of symbolic links\n"
    assert run_cli("validate", "child.yaml")[2] == \
        "child.yaml:1:10: extends: 'loop_a.yaml': cannot read: Too many levels of symbolic links\n"
    long = "x" * 300 + ".yaml"
    assert run_cli("validate", long)[2] == f"{long}: cannot read: File name too long\n"
    Path("long.yaml").write_text(f"extends: {long}\n", encoding="utf-8")
    assert run_cli("validate", "long.yaml")[2] == f"long.yaml:1:10: extends: '{long}': cannot read: File name too long\n"


def _checkpoint(tmp_path: Path, spec: dict, tensors: dict | None = None, name: str = "c.safetensors") -> Path:
    """A checkpoint written with the safetensors library itself, holding whatever the test wants."""
    import torch
    from safetensors.torch import save_file

    path = tmp_path / name
    save_file(tensors or {"x": torch.zeros(1)}, str(path),
              metadata={"archspec.spec": json.dumps(spec), "archspec.format": "1"})
    return path


def test_checkpoint_header_is_checked_before_any_module_is_built(tmp_path: Path, monkeypatch) -> None:
    """A tiny file whose spec asks for 1e9 weights (4 GB) is refused from its header; the only module
    built is on the meta device (no memory)."""
    import torch

    import archspec.backends.torch_module as backend

    devices = []
    real = backend.build_module
    monkeypatch.setattr(backend, "build_module", lambda net, init=True: devices.append(
        torch.empty(0).device.type) or real(net, init))
    spec = {"name": "big", "input": {"channels": 1, "size": [1, 1]}, "head": ["flatten", {"linear": {"out": 1_000_000_000}}]}
    path = _checkpoint(tmp_path, spec)
    assert path.stat().st_size < 2000
    with pytest.raises(ArchspecError, match=r"the weights do not match the spec \(missing \['head.1.weight'"):
        archspec.load(path)
    assert devices == ["meta"]


def test_checkpoint_dtypes_must_fit_the_weights(tmp_path: Path) -> None:
    import torch

    spec = {"name": "t", "input": {"channels": 1, "size": [1, 1]}, "head": ["flatten", {"linear": {"out": 2}}]}
    path = _checkpoint(tmp_path, spec, {"head.1.weight": torch.zeros(2, 1, dtype=torch.int32),
                                        "head.1.bias": torch.zeros(2)})
    code, _, err = run_cli("export", str(path), "-o", str(tmp_path / "t.pt2"))
    assert code == 2 and err == (f"archspec: error: {path}: tensor 'head.1.weight' is stored as I32, the model needs "
                                 "floating-point values (float32)\n")


def test_a_checkpoints_spec_reads_no_files_and_is_named_in_errors(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("num_classes: hunter2-SECRET-TOKEN\n", encoding="utf-8")
    path = _checkpoint(tmp_path, {"extends": str(secret), "name": "x"})
    code, _, err = run_cli("export", str(path), "--format", "python", "-o", str(tmp_path / "x.py"))
    assert code == 2 and "SECRET" not in err
    assert err == f"{path}: extends: a spec embedded in {path} cannot read other files: `extends` is not allowed here\n"
    bad = _checkpoint(tmp_path, {"name": "x", "stages": [{"block": "basic", "repeat": 0}]}, name="bad.safetensors")
    assert run_cli("export", str(bad), "--format", "python", "-o", str(tmp_path / "x.py"))[2].startswith(f"{bad}: stages[0]")


def test_checkpoint_metadata_within_the_limits_of_a_spec(tmp_path: Path) -> None:
    deep: dict = {"name": "x"}
    for _ in range(600):
        deep = {"vars": deep}
    bomb = {"name": "x", "vars": {"a": "${[[[[[1]*100]*100]*100]*100]*100}"}, "num_classes": "${len(a)}"}
    for spec, message in ((deep, "nested deeper than 64 levels"), (bomb, "result too large")):
        path = _checkpoint(tmp_path, spec)
        start = time.process_time()
        code, _, err = run_cli("export", str(path), "--format", "python", "-o", str(tmp_path / "x.py"))
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert time.process_time() - start < 5


# -- limits are checked before the work they bound ----------------------------------------------------------------

def test_exponential_nested_blocks_stop_at_the_layer_limit(monkeypatch) -> None:
    """b_i uses b_(i-1) twice: 2^20 layers from 25 lines. Emission stops at the limit (lowered to 2,000
    here to keep the test fast; checked after emitting, 2^20 layers would take minutes whatever the limit)."""
    import archspec.spec.lower as lower

    monkeypatch.setattr(lower, "MAX_NODES", 2000)
    lines = ["name: bomb", "input: {channels: 1, size: [4, 4]}", "blocks:", "  b0: {layers: [act]}"]
    for i in range(1, 21):
        lines.append(f"  b{i}: {{layers: [{{block: b{i - 1}}}, {{block: b{i - 1}}}]}}")
    lines += ["stages: [{block: b20}]"]
    start = time.process_time()
    with pytest.raises(SpecError, match=r"<string>:\d+:\d+: stages\[0\]: the network has more than 2,000 layers"):
        archspec.analyze("\n".join(lines) + "\n")
    assert time.process_time() - start < 5


def test_expression_values_are_measured_at_every_level() -> None:
    start = time.process_time()
    with pytest.raises(SpecError, match="result too large: more than 10000 items in all"):
        archspec.load_spec("name: x\nvars: {a: '${[[[[[1]*100]*100]*100]*100]*100}'}\nnum_classes: '${len(a)}'\n")
    with pytest.raises(SpecError, match="result too large"):  # [a, a]: 2 x 5,051 items
        archspec.load_spec("name: x\nvars: {a: '${[[1]*50]*100}', b: '${[a, a]}'}\nnum_classes: '${len(b)}'\n")
    assert time.process_time() - start < 2


@pytest.mark.parametrize("argv, message", [
    (("--input", "3x65536x65536"), "needs about"),
    (("--batch", "100000000"), "needs about"),
    (("--opset", "99999"), "opset 99999: the newest opset the installed onnx knows is"),
])
def test_export_memory_and_options_are_refused_before_allocating(argv: tuple, message: str, tmp_path: Path,
                                                                   monkeypatch) -> None:
    import archspec.api

    monkeypatch.setattr(archspec.api, "build", lambda *a, **k: pytest.fail("built a module"))
    out = tmp_path / "x.onnx"
    code, _, err = run_cli("export", "resnet18", "-o", str(out), *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_the_memory_check_lets_real_exports_through() -> None:
    """EfficientNet-B7 at 600x600, batch 2: 0.25 GiB of weights, 0.26 GiB peak activations (7.5 GiB summed
    over all layers, which an export never holds at once): it fits a 4 GiB machine."""
    from archspec.backends.exporters import ExportError, check_memory

    net = archspec.load_spec("efficientnet_b7").network()
    check_memory(net, 2, limit=4 << 30)
    with pytest.raises(ExportError, match=r"needs about 0\.8 GiB"):  # 2 x 0.25 + 0.26 + the input
        check_memory(net, 2, limit=1 << 29)
    with pytest.raises(ExportError, match=r"\(0\.5 GiB of weights, .*; use a smaller batch or input size"):
        check_memory(net, 2, limit=1 << 29)  # the weights (2 x 66.3M x 4 bytes) fit: the batch or size is the cure
    with pytest.raises(ExportError, match=r"; the weights alone do not fit$"):  # no batch makes 0.5 GiB of weights fit
        check_memory(net, 2, limit=1 << 28)


@pytest.mark.parametrize("argv, message", [
    (("--set", "a." * 500 + "b=1"), "the key is nested deeper than 64 levels"),
    (("--set", "extends=/etc/passwd"), "'extends' cannot be overridden"),
    (("--max-params", "nan"), "argument --max-params: must be a positive number"),
])
def test_bad_options_exit_2_with_one_line(argv: tuple, message: str) -> None:
    import contextlib
    import io

    from archspec.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["validate", "lenet5", *argv])
        except SystemExit as exc:  # argparse: the usage and one line
            code = exc.code
    err = err.getvalue()
    assert code == 2 and message in err and "Traceback" not in err, err


def test_a_plugin_cannot_end_archspec(tmp_path: Path) -> None:
    plugin = tmp_path / "quit.py"
    plugin.write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    code, _, err = run_cli("validate", "lenet5", "--plugin", str(plugin))
    assert (code, err) == (2, f"lenet5: --plugin {plugin}: called sys.exit(0) while being imported\n")
    os.mkfifo(tmp_path / "pipe.py")  # never waited on
    code, _, err = run_cli("validate", "lenet5", "--plugin", str(tmp_path / "pipe.py"))
    assert (code, err) == (2, f"lenet5: --plugin {tmp_path / 'pipe.py'}: is a named pipe, not a regular file\n")


def test_a_plugin_file_is_never_an_output(tmp_path: Path) -> None:
    """`--plugin blocks.py` is an input of the command as much as the spec: `-o blocks.py` (the same
    suffix as a Python export) is refused, not replaced by the exported source."""
    plugin = tmp_path / "blocks.py"
    plugin.write_text("# registers nothing\n", encoding="utf-8")
    code, _, err = run_cli("export", "lenet5", "--plugin", str(plugin), "-o", str(plugin))
    assert code == 2 and f"{plugin}: is an input of this command" in err, err
    assert plugin.read_text(encoding="utf-8") == "# registers nothing\n"


def test_names_from_a_spec_cannot_drive_the_terminal(tmp_path: Path) -> None:
    spec = tmp_path / "esc.yaml"
    spec.write_text('name: x\n"\\e]0;owned\\a\\e[2J": 1\nstages: [{block: "\\e[1Abasic"}]\n', encoding="utf-8")
    code, _, err = run_cli("validate", str(spec))
    assert code == 2 and "\x1b" not in err and "\x07" not in err
    assert "unknown key '\\x1b]0;owned\\x07\\x1b[2J'" in err and "'\\x1b[1Abasic'" in err


def test_tables_never_print_control_characters(tmp_path: Path) -> None:
    """Tables (summary, rf, compare) print names and headers taken from input files: a stem layer's
    name and a metrics CSV's column are escaped, never sent raw to the terminal."""
    spec = tiny(tmp_path, text=TINY.replace("{out: 2, kernel: 3}", '{out: 2, kernel: 3, name: "x\\e[2J"}'))
    for argv in (("rf", str(spec)), ("summary", str(spec), "--level", "layer")):
        code, out, _ = run_cli(*argv)
        assert code == 0 and "\x1b" not in out and "stem.x\\x1b[2J" in out, out
    metrics = tmp_path / "m.csv"
    metrics.write_text("name,top\x1b]0;owned\x07\nlenet5,99\n", encoding="utf-8")
    code, out, _ = run_cli("compare", "lenet5", "--metric", str(metrics))
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "top\\x1b]0;owned\\x07" in out, out


# -- missing optional packages: exit 3 with the install command ---------------------------------------------------

@pytest.mark.parametrize("missing, argv, command", [
    ("torch", ("build", "lenet5"), "pip install 'archspec[torch]'"),
    ("safetensors", ("build", "lenet5", "-o", "l.safetensors"), "pip install 'archspec[torch]'"),
    ("onnx", ("export", "lenet5", "-o", "l.onnx"), "pip install 'archspec[export]'"),
])
def test_a_missing_package_exits_3_with_the_install_command(missing: str, argv: tuple, command: str,
                                                            monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: importing it fails
    code, _, err = run_cli(*argv)
    assert code == 3 and command in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_without_torch_a_plain_install_still_validates_and_builds_say_how(tmp_path: Path) -> None:
    """A process where torch cannot be imported at all, as after `pip install .` with no extras."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        from archspec.cli.main import main
        assert main(["validate", "resnet18"]) == 0
        assert main(["export", "resnet18", "-o", sys.argv[1]]) == 0
        sys.exit(main(["build", "resnet18"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.py")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("archspec: error: building a module needs torch, which is not "
                                                    "installed: pip install 'archspec[torch]'")


# -- the Python API raises ArchspecError subclasses for bad input -------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: archspec.analyze("lenet5", batch=0),
    lambda: archspec.analyze("lenet5", dtype="int3"),
    lambda: archspec.analyze("lenet5", input="3xAx4"),
    lambda: archspec.load_spec(42),
    lambda: archspec.load_spec({"name": "x", "vars": json.loads("[" * 900 + "]" * 900)}),
    lambda: archspec.load_spec("/"),
    lambda: archspec.build("lenet5", max_params=float("nan")),
    lambda: archspec.export("lenet5", "/", format="python"),
    lambda: archspec.load("/"),
    lambda: archspec.load(None),
    lambda: archspec.export("lenet5", None),
    lambda: archspec.export("lenet5", "x.onnx", opset="18"),
    lambda: archspec.load(REPO / "specs" / "lenet5.yaml", device="no-such-device"),
], ids=["batch", "dtype", "input", "type", "deep", "directory", "nan", "output-dir", "load-dir", "load-none",
        "export-none", "opset-str", "device"])
def test_the_api_raises_archspec_errors_for_bad_input(call) -> None:
    with pytest.raises(ArchspecError):
        call()


@pytest.mark.parametrize("device, message", [
    ("no-such-device", "device: Invalid device string: 'no-such-device'"),
    ("cuda:99", "device 'cuda:99' is not available here"),  # no machine has a hundredth GPU
    ("meta", "device 'meta' holds no values; load onto cpu or an accelerator"),
])
def test_a_checkpoint_is_loaded_only_onto_a_device_that_exists(device: str, message: str, tmp_path: Path) -> None:
    """Checked with a real checkpoint, so that the refusal comes from the device and not the file."""
    checkpoint = tmp_path / "tiny.safetensors"
    archspec.save(archspec.build(tiny(tmp_path)), checkpoint)
    with pytest.raises(ArgumentError) as caught:
        archspec.load(checkpoint, device=device)
    assert str(caught.value).startswith(message), caught.value


# -- scale ----------------------------------------------------------------------------------------------------------

def test_python_export_of_1024_blocks_plans_each_distinct_block_once(monkeypatch) -> None:
    from archspec.backends import python_source as ps
    from archspec.backends.python_source import model

    stages = "".join(f"  - {{block: basic, out: {c}, repeat: 256, stride: {s}}}\n"
                     for c, s in ((8, 1), (16, 2), (16, 1), (32, 2)))
    net = archspec.load_spec(f"name: big\ninput: {{channels: 3, size: [16, 16]}}\nstages:\n{stages}").network()
    calls = []
    real = model.design_class
    monkeypatch.setattr(model, "design_class", lambda name, members: calls.append(len(members)) or real(name, members))
    start = time.process_time()
    source = ps.python_source(net)
    assert time.process_time() - start < 5
    assert len(calls) < 10  # one trial per distinct signature and one class each: not 1,024 x 1,024
    compile(source, "big.py", "exec")


def test_dot_runs_under_a_time_limit(tmp_path: Path, monkeypatch) -> None:
    from archspec.backends import diagram

    monkeypatch.setattr(diagram, "DOT_TIMEOUT_S", 1e-4)
    code, _, err = run_cli("diagram", "lenet5", "--level", "layer", "-o", str(tmp_path / "l.svg"))
    assert code == 2 and "did not finish drawing within 0.0001 s; draw a coarser level" in err
    assert not list(tmp_path.iterdir())


def _children(pid: int) -> list[str]:
    """The processes whose parent is `pid` (Linux's /proc)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if fields[1] == str(pid):
            found.append(stat_file.parent.name)
    return found


SWEEP = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if the test runner ignores it
from archspec.cli.main import main
sys.exit(main(["sweep", sys.argv[1], "-n", "100000", "--max-draws", "1000000", "-j", "2"]))
"""


@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_mid_sweep_ends_the_workers_too(signal_name: str, code: int) -> None:
    workers: list[str] = []

    def ready(proc: subprocess.Popen) -> None:
        nonlocal workers
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # both workers forked, the sweep under way
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) == 2
        time.sleep(1)

    returncode, err = _signalled(SWEEP, str(REPO / "docs" / "examples" / "regnet_space.yaml"), signal_name, ready)
    assert returncode == code, err
    assert "Traceback" not in err  # the workers end quietly
    time.sleep(0.5)
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []
