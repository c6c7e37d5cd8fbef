"""Every code block of README.md and docs/*.md runs as written, or says why it cannot.

How a fenced block is treated, by its language:

- ``python``: run as a script (``python <block>.py``); it must exit 0 within 120 s.
- ``sh``, ``bash``, ``shell``: run by ``bash -euo pipefail``; it must exit 0 within 120 s.
  Three commands behave a little differently there:
  ``pip install ...`` is not run (the suite runs with hero-fast installed);
  ``hero-fast serve ...`` starts in the background, must answer ``GET /api/status`` within
  20 s, and is stopped (SIGTERM, by its PID) when the block ends;
  ``curl`` gets ``-sS --max-time 10`` (a refused connection fails the block; an HTTP error
  status does not).
- ``json``: must parse, as one document or as one document per line.
- ``text``, no language, and configuration of other programs (``nginx``, ``ini``,
  ``dockerfile``, ``promql``, ``toml``, ``yaml``): shown, not run.
- any other language: needs a marker (below).

The blocks of one document run in order in one scratch folder of their own (fresh for
each document), so a later block sees the files an earlier one made (``hero-fast new
chatapp`` then ``cd chatapp``). Port 8080 in a block becomes a free port, the same for
every block of the document (``hero-fast serve`` without ``--port`` uses it too).

Markers: an HTML comment on the line right before the opening fence (blank lines between
are allowed), one or more directives separated by ``;``:

- ``<!-- snippet: skip (reason) -->``: not run; the reason is required and says why
  (``skip (needs a TLS certificate)``).
- ``<!-- snippet: file PATH -->``: the block is a file: it is written to PATH in the
  scratch folder instead of being run (a ``.py`` file must compile), for later blocks to
  use (``file actions/add.py``, then a block that calls the action).
- ``<!-- snippet: server [DIR] -->``: ``hero-fast serve --project DIR`` (default: the
  scratch folder itself) runs while the block runs.
- ``<!-- snippet: forever -->``: the block runs until stopped (a server, a client reading
  a stream): it must still be running after 5 s, having printed something; it is then
  stopped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
PARSED = {"json"}
SHOWN = {"", "text", "nginx", "ini", "dockerfile", "promql", "toml", "yaml"}
TIMEOUT = 120.0
FOREVER_GRACE = 5.0

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)[^`]*$")
MARKER = re.compile(r"^<!--\s*snippet:(.*?)-->\s*$")
SKIP = re.compile(r"^skip\s*\((.*\S.*)\)$")
DIRECTIVE = re.compile(r"^(file)\s+(\S+)$|^(server)(?:\s+(\S+))?$|^(forever)$")

PRELUDE = textwrap.dedent(
    """\
    set -euo pipefail
    SNIPPET_PIDS=()
    snippet_stop() {
        local pid
        for pid in "${SNIPPET_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${SNIPPET_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    }
    trap snippet_stop EXIT
    pip() {
        if [ "${1:-}" = install ]; then echo "[snippet] not run (hero-fast is installed): pip $*"
        else command pip "$@"; fi
    }
    curl() { command curl -sS --max-time 10 "$@"; echo; }
    hero-fast() {
        if [ "${1:-}" != serve ]; then command hero-fast "$@"; return; fi
        command hero-fast "$@" &
        local pid=$! i
        SNIPPET_PIDS+=("$pid")
        for i in $(seq 200); do
            command curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$SNIPPET_PORT/api/status" && return 0
            kill -0 "$pid" 2>/dev/null || { echo "[snippet] hero-fast $* ended before it answered" >&2; return 1; }
            sleep 0.1
        done
        echo "[snippet] hero-fast $* did not answer within 20 s" >&2
        return 1
    }
    """
)


class SnippetError(Exception):
    """A block the test cannot classify (bad marker, unknown language without one)."""


@dataclass
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    skip: str | None = None
    file: str | None = None
    server: str | None = None
    forever: bool = False

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def apply_marker(block: Block, comment: str, where: str) -> None:
    skip = SKIP.match(comment)
    if skip:  # the reason may hold anything, ";" included
        block.skip = skip.group(1).strip()
        return
    for part in (p.strip() for p in comment.split(";")):
        m = DIRECTIVE.match(part)
        if m is None:
            raise SnippetError(f"{where}: unknown snippet directive {part!r} (skip (reason), file PATH, server [DIR], "
                               "forever)")
        if m.group(1):
            block.file = m.group(2)
        elif m.group(3):
            block.server = m.group(4) or "."
        else:
            block.forever = True


def closes(line: str, opening: str) -> bool:
    """Whether ``line`` is the closing fence of a block opened by ``opening``."""
    return line.startswith(opening) and not line.strip().strip(opening[0])


def extract(text: str, doc: str) -> list[Block]:
    """The fenced blocks of a markdown text, with their markers; SnippetError for a block
    that is neither runnable, parsed nor shown and has no marker, or for a bad marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    marker: tuple[str, str] | None = None  # (comment, where)
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.strip())
        if m:
            marker = (m.group(1).strip(), f"{doc}:{i + 1}")
            i += 1
            continue
        fence = FENCE.match(line)
        if fence is None:
            if line.strip():
                marker = None  # a marker belongs to the very next block
            i += 1
            continue
        opening, lang = fence.group(1), fence.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not closes(lines[i], opening):
            body.append(lines[i])
            i += 1
        block = Block(doc, i - len(body), lang, "\n".join(body) + "\n")
        i += 1  # the closing fence
        if marker is not None:
            apply_marker(block, *marker)
            marker = None
        if block.skip is None and block.file is None and lang not in RUN and lang not in PARSED | SHOWN:
            raise SnippetError(
                f"{block.where}: a ```{lang} block is neither run nor shown: mark it "
                "<!-- snippet: skip (why it cannot run) --> or <!-- snippet: file PATH -->"
            )
        if (block.server or block.forever) and lang not in RUN:
            raise SnippetError(f"{block.where}: server and forever apply to python and sh blocks only")
        blocks.append(block)
    return blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_json(block: Block) -> None:
    try:
        json.loads(block.text)
        return
    except ValueError:
        pass
    for n, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if line.strip():
            try:
                json.loads(line)
            except ValueError as exc:
                raise AssertionError(f"{block.doc}:{n}: not JSON: {exc}") from None


def write_file(block: Block, scratch: Path) -> None:
    assert block.file is not None
    path = scratch / block.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.text)
    if path.suffix == ".py":
        compile(block.text, f"{block.where} ({block.file})", "exec")


def script_of(block: Block, scratch: Path, port: int) -> str:
    body = re.sub(r"\b8080\b", str(port), block.text)
    if RUN[block.lang] == "python":
        source = scratch / ".snippets" / f"line{block.line}.py"
        source.parent.mkdir(exist_ok=True)
        source.write_text(body)
        body = f"python {source}\n"
    if block.server is not None:
        body = f"hero-fast serve --project {block.server}\n{body}"
    return PRELUDE + body


def environment(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SNIPPET_PORT"] = str(port)
    env["HERO_FAST__servers__web__port"] = str(port)
    return env


def stop_group(proc: subprocess.Popen[str]) -> None:
    """Stop the block's bash and everything it started (its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            continue


def run_block(block: Block, scratch: Path, port: int) -> None:
    proc = subprocess.Popen(
        ["bash", "-c", script_of(block, scratch, port)], cwd=scratch, env=environment(port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=FOREVER_GRACE if block.forever else TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        out, _ = proc.communicate()
        if not block.forever:
            raise AssertionError(f"{block.where}: still running after {TIMEOUT:.0f} s:\n{out[-3000:]}") from None
        assert out.strip(), f"{block.where}: ran {FOREVER_GRACE:.0f} s without printing anything"
        return
    finally:
        stop_group(proc)
    if proc.returncode != 0:
        raise AssertionError(f"{block.where}: exit status {proc.returncode}:\n{out[-3000:]}")


def check_doc(text: str, name: str, scratch: Path) -> None:
    """Run, parse or write every block of a document, in order, in ``scratch``."""
    port = free_port()
    for block in extract(text, name):
        if block.skip is not None:
            continue
        if block.file is not None:
            write_file(block, scratch)
        elif block.lang in PARSED:
            check_json(block)
        elif block.lang in RUN:
            run_block(block, scratch, port)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_code_block_runs_or_says_why_not(doc: Path, tmp_path: Path) -> None:
    if not doc.is_file():
        pytest.skip("needs the source checkout (README.md, docs/), not only the installed package")
    check_doc(doc.read_text(encoding="utf-8"), doc.relative_to(ROOT).as_posix(), tmp_path)


# -- the conventions themselves ------------------------------------------------------------


def test_blocks_and_markers_are_read_as_documented() -> None:
    text = textwrap.dedent(
        """\
        # t
        <!-- snippet: file actions/x.py -->
        ```python
        X = 1
        ```
        text between
        ```sh
        echo hi
        ```
        <!-- snippet: server chatapp; forever -->

        ```python
        print(1)
        ```
        <!-- snippet: skip (needs a TLS certificate) -->
        ```html
        <p>
        ```
        ````nginx
        ```
        inner
        ````
        """
    )
    blocks = extract(text, "t.md")
    assert [(b.line, b.lang, b.file, b.server, b.forever, b.skip) for b in blocks] == [
        (3, "python", "actions/x.py", None, False, None),
        (7, "sh", None, None, False, None),
        (12, "python", None, "chatapp", True, None),
        (16, "html", None, None, False, "needs a TLS certificate"),
        (19, "nginx", None, None, False, None),
    ]
    assert blocks[0].text == "X = 1\n" and blocks[4].text == "```\ninner\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```html\n<p>\n```\n", "t.md:1: a ```html block is neither run nor shown"),
        ("<!-- snippet: skip -->\n```python\nx\n```\n", "unknown snippet directive 'skip'"),
        ("<!-- snippet: skip () -->\n```python\nx\n```\n", "unknown snippet directive 'skip ()'"),
        ("<!-- snippet: run -->\n```python\nx\n```\n", "unknown snippet directive 'run'"),
        ("<!-- snippet: forever; skip (x) -->\n```python\nx\n```\n", "unknown snippet directive 'skip (x)'"),
        ("<!-- snippet: forever -->\n```json\n{}\n```\n", "apply to python and sh blocks only"),
    ],
)
def test_a_block_that_neither_runs_nor_says_why_is_an_error(text: str, message: str) -> None:
    with pytest.raises(SnippetError, match=re.escape(message)):
        extract(text, "t.md")


def test_a_marker_belongs_to_the_very_next_block_only() -> None:
    with pytest.raises(SnippetError, match=r"t\.md:4: a ```html block"):
        extract("<!-- snippet: skip (a reason) -->\nsome prose\n\n```html\n<p>\n```\n", "t.md")


def test_a_failing_block_fails_the_document_and_names_its_line(tmp_path: Path) -> None:
    text = "# x\n\n```python\nprint('fine')\n```\n\n```sh\necho about to fail\nfalse\n```\n"
    with pytest.raises(AssertionError, match=r"doc\.md:7: exit status 1:\nabout to fail"):
        check_doc(text, "doc.md", tmp_path)


def test_blocks_of_a_document_share_its_folder_and_port(tmp_path: Path) -> None:
    check_doc(
        "<!-- snippet: file actions/hello.py -->\n```python\nX = 1\n```\n"
        "```sh\ntest -f actions/hello.py\n```\n"
        "<!-- snippet: server -->\n```sh\ncurl -f http://127.0.0.1:8080/api/status | grep -q heroFastVersion\n```\n",
        "doc.md",
        tmp_path,
    )
