"""The code blocks of README.md and docs/*.md, read as tests (issue 25): what each block is, how
blocks join into runnable units, and how shown output is compared with what the tool prints.

tests/test_docs.py runs them; tests/docdriver.py executes one unit in a scratch directory.
`HOWTO` below is the whole contract for writers of docs; every failure message repeats it.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "docs/*.md")

HOWTO = """\
How the docs are tested (tests/test_docs.py; tests/docblocks.py has the details):
  - ```console blocks (or ```text / ``` blocks whose first line starts with `$ `) are transcripts: each
    `$ ` line runs in bash, and the lines under it must be exactly what it prints (stdout and stderr).
    A command that exits non-zero passes only when the error it prints is shown.
  - ```bash / ```sh blocks run as scripts (`set -e`); nothing they print is compared.
  - ```python blocks run; a ```text block marked `output` below one is compared with what it prints.
  - ```yaml blocks must be whole specs (`archspec validate` accepts them) unless marked.
  - Timings (a number followed by s, ms, us, min, or WORD/s) are never compared; absolute paths of
    this checkout and of the scratch directory are shown relative (`specs/vgg11.yaml`).
  - Each unit runs in a fresh scratch directory holding specs/, schemas/, tools/, a copy of
    docs/examples/, and every `file=` block written above it on the page; `archspec`, `python` and
    `.venv/bin/archspec`/`.venv/bin/python` run this checkout. Ship inputs in docs/examples/ or show them.
Markers: an HTML comment on the line just above the opening ``` (GitHub does not render it), words
combined freely, e.g. <!-- doc: excerpt slow -->
  excerpt           the block shows some of the output (or some lines of a file): the lines shown must
                    appear in that order. In any block, a line `...` (or `...  # why`) stands for any number of lines,
                    and a line ending in `...` for any line that begins with what precedes it
  output            this block is what the runnable block just above prints (python or a transcript)
  file=PATH         this block is the file PATH: compared with it when the repository has PATH, else
                    written to PATH in the scratch directory of every unit below it on the page
  continue          run in the same scratch directory (and Python namespace) as the runnable block above
  name=ID           names this block's unit, and continue=ID joins it from further down the page (safer
                    than a bare `continue` when others may insert blocks in between)
  fragment          a piece of a spec or of code, not runnable by itself (say which file it is from in the prose)
  skip reason="..." cannot run here (reason required, e.g. "needs 8 GPUs"); not collected as a test
  slow              takes over ~5 s: runs in the full suite only, not in the fast tier (-m "not slow")
  timeout=N         seconds the unit may take (default 300)
Fix a failing block by making it show what the tool prints now (the `actual` text above), by shipping or
showing the input it reads, or by marking it as above; never by hiding a wrong example."""

MARKER = re.compile(r"^\s*<!--\s*doc:(?P<body>.*?)-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)(?P<info>.*)$")
WORDS = {"excerpt", "output", "continue", "fragment", "slow", "skip"}
KEYS = {"file", "reason", "timeout", "name", "continue"}
SHELL_INFOS = {"bash", "sh", "shell", "zsh"}
TRANSCRIPT_INFOS = {"console", "shell-session", "text", ""} | SHELL_INFOS
TIMING = re.compile(
    r"\d[\d,]*(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|min|h)\b(?!\w)"  # 2.8 s, 254 ms, 0.29s
    r"|\d[\d,]*(?:\.\d+)?\s?[A-Za-z_ ]*?/s\b"  # 1,417 samples/s, 112 analysed/s
)


class DocError(Exception):
    """A block or marker the test cannot read (a typo in a marker, an unclosed fence)."""


@dataclass
class Block:
    page: str  # "README.md"
    line: int  # 1-based line of the opening fence
    info: str  # "python", "console", ...
    text: str  # the content, dedented to the fence's indentation
    words: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """transcript, script, python, yaml or text (shown, never run)."""
        if self.info in ("python", "py", "python3"):
            return "python"
        if self.info in ("yaml", "yml"):
            return "yaml"
        first = next((ln for ln in self.text.splitlines() if ln.strip()), "")
        if self.info in TRANSCRIPT_INFOS and first.startswith("$ "):
            return "transcript"
        if self.info in SHELL_INFOS:
            return "script"
        return "text"


@dataclass
class Command:
    line: int  # doc line of the `$ `
    cmd: str  # as bash reads it (continuations joined by bash itself)
    shown: list[str]  # the output lines shown under it


@dataclass
class Unit:
    """Blocks run one after another in one scratch directory: a block and its `continue`s, with
    the `output` blocks that follow each; `files` are the page's `file=` blocks above it."""

    blocks: list[Block]
    files: list[Block]
    outputs: dict[int, Block] = field(default_factory=dict)  # block line -> its output block

    @property
    def where(self) -> str:
        return self.blocks[0].where

    def key(self) -> tuple:
        """What the unit runs and shows, and the page's files it names: equal keys run alike."""
        text = "".join(b.text for b in self.blocks)
        named = [f for f in self.files if Path(f.keys["file"]).name in text]
        return tuple((b.kind, b.text, tuple(sorted(b.words - {"slow"})), b.keys.get("file"))
                     for b in [*self.blocks, *self.outputs.values(), *named])

    def has(self, word: str) -> bool:
        return any(word in b.words for b in [*self.blocks, *self.outputs.values()])


def parse_marker(body: str, where: str) -> tuple[set[str], dict[str, str]]:
    words: set[str] = set()
    keys: dict[str, str] = {}
    try:
        tokens = shlex.split(body)
    except ValueError as e:
        raise DocError(f"{where}: marker <!-- doc:{body}-->: {e}\n\n{HOWTO}") from None
    for tok in tokens:
        key, eq, value = tok.partition("=")
        if eq and key in KEYS:
            keys[key] = value
        elif not eq and tok in WORDS:
            words.add(tok)
        else:
            raise DocError(f"{where}: unknown doc marker {tok!r} in <!-- doc:{body}-->\n\n{HOWTO}")
    if "skip" in words and not keys.get("reason"):
        raise DocError(f"{where}: `skip` needs reason=\"why it cannot run here\"\n\n{HOWTO}")
    return words, keys


def blocks(page: str) -> list[Block]:
    """Every fenced block of PAGE (a path relative to the repository root), with its marker."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if j == len(lines):
            raise DocError(f"{page}:{i + 1}: code block never closed")
        body = [ln[indent:] if ln[:indent].strip() == "" else ln.lstrip() for ln in lines[i + 1 : j]]
        words: set[str] = set()
        keys: dict[str, str] = {}
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and (mk := MARKER.match(lines[k])):
            words, keys = parse_marker(mk["body"], f"{page}:{k + 1}")
        info = m["info"].strip().split()[0].lower() if m["info"].strip() else ""
        out.append(Block(page, i + 1, info, "\n".join(body) + "\n", words, keys))
        i = j + 1
    return out


def pages() -> list[str]:
    found = [p for pattern in PAGES for p in sorted(str(q.relative_to(ROOT)) for q in ROOT.glob(pattern))]
    return found


def units(page: str) -> tuple[list[Unit], list[Block]]:
    """The runnable units of PAGE and its `file=` blocks that stand for files of the repository."""
    run: list[Unit] = []
    repo_files: list[Block] = []
    made: list[Block] = []  # file= blocks that create scratch files, in page order
    last: Unit | None = None
    named: dict[str, Unit] = {}
    for b in blocks(page):
        if "output" in b.words:
            if last is None or last.blocks[-1].line in last.outputs:
                raise DocError(f"{b.where}: an `output` block must follow a runnable block\n\n{HOWTO}")
            last.outputs[last.blocks[-1].line] = b
            continue
        if "file" in b.keys:
            if (ROOT / b.keys["file"]).is_file():
                repo_files.append(b)
            else:
                made.append(b)
            continue
        if "fragment" in b.words or b.kind == "text":
            continue
        if "continue" in b.words or "continue" in b.keys:
            target = named.get(b.keys["continue"]) if "continue" in b.keys else last
            if target is None:
                raise DocError(f"{b.where}: `continue` with no runnable block above it to join"
                               f" (name=ID on that block, continue=ID here)\n\n{HOWTO}")
            target.blocks.append(b)
            last = target
            continue
        last = Unit([b], list(made))
        run.append(last)
        if "name" in b.keys:
            named[b.keys["name"]] = last
    return run, repo_files


def commands(block: Block) -> list[Command]:
    """A transcript's `$ ` commands with the output lines shown under each."""
    out: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln.startswith("$ "):
            raise DocError(f"{block.page}:{block.line + 1 + i}: transcript line before any `$ ` command")
        cmd = [ln[2:]]
        start = i
        while cmd[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd.append(lines[i])
        i += 1
        shown: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        out.append(Command(block.line + 1 + start, "\n".join(cmd), shown))
    return out


def normalize(text: str | list[str], paths: tuple[str, ...] = ()) -> list[str]:
    """Lines to compare: timings blanked, absolute paths of this run made relative, trailing
    spaces and surrounding blank lines dropped."""
    if isinstance(text, list):
        text = "\n".join(text)
    for p in sorted(paths, key=len, reverse=True):
        text = text.replace(p.rstrip("/") + "/", "")
    lines = [TIMING.sub("<time>", ln).rstrip() for ln in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(shown: list[str], actual: list[str], excerpt: bool) -> bool:
    """Do the SHOWN lines equal ACTUAL (`...` = any run of lines), or with EXCERPT appear in it in order?"""
    if excerpt:
        it = iter(actual)
        return all(elides(w) or any(same(w, h) for h in it) for w in shown)
    parts: list[list[str]] = [[]]
    for w in shown:
        if elides(w):
            parts.append([])
        else:
            parts[-1].append(w)
    if len(parts) == 1:
        return len(shown) == len(actual) and all(map(same, shown, actual))
    head, *middle, tail = parts
    if len(actual) < len(head) + len(tail) or not all(map(same, head, actual)):
        return False
    if not all(map(same, tail, actual[len(actual) - len(tail) :])):
        return False
    pos, end = len(head), len(actual) - len(tail)
    for seg in middle:  # each found at its first place: the earliest leaves the most room
        while pos + len(seg) <= end and not all(map(same, seg, actual[pos : pos + len(seg)])):
            pos += 1
        if pos + len(seg) > end:
            return False
        pos += len(seg)
    return True


def elides(line: str) -> bool:
    """A shown line `...` (indented or not, with an optional `# comment`) stands for any run of lines."""
    return re.fullmatch(r"\s*\.\.\.(\s+#.*)?", line) is not None


def same(shown: str, actual: str) -> bool:
    """A shown line equals the actual one, or ends in `...` and begins it (`known: act, conv, ...`)."""
    if shown.endswith("...") and not elides(shown):
        return actual.startswith(shown[:-3].rstrip())
    return shown == actual


def diff(shown: list[str], actual: list[str]) -> str:
    return "\n".join(difflib.unified_diff(shown, actual, "shown in the doc", "actual", lineterm="", n=2))
