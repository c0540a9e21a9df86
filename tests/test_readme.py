"""The curl examples of README and docs/guide.md run as written, against a server on (a copy of) the sample
county.

The convention (docs/guide.md says it too): in ```sh blocks, a command starting with `curl` is run by bash as pasted,
with http://127.0.0.1:8000 replaced by the test server's URL, and must end with `# -> <media type>`: it
must answer 2xx with that media type. `NAME=$(curl ...)` lines run too (later commands use the variable), in
page order, in one shell, as a reader pasting them into one terminal would.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings
from tests.conftest import sample_dir
from tests.e2e.live_server import live_server

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"README": ROOT / "README.md", "guide": ROOT / "docs" / "guide.md"}
BASE = "http://127.0.0.1:8000"
FENCE = re.compile(r"^([ \t]*)```sh\n(.*?)^\1```", re.M | re.S)
EXPECT = re.compile(r"\s+#\s*->\s*(\S+)\s*$")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\$\(curl\s")


@dataclass(frozen=True)
class Command:
    """One curl command of the README, as written, and the media type it says it answers with."""

    text: str
    media_type: str | None


def _shell_commands(block: str) -> Iterator[str]:
    """The block's commands as bash reads them: backslash-newlines joined, quotes may span lines."""
    pending = ""
    for line in textwrap.dedent(block).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        pending += line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on on the next line
            pending += "\n"
            continue
        yield pending
        pending = ""


def readme_commands(text: str) -> list[Command]:
    """The curl commands and curl assignments of every sh block, in page order."""
    out = []
    for _, block in FENCE.findall(text):
        for line in _shell_commands(block):
            line = line.strip()
            if line.startswith("curl "):
                m = EXPECT.search(line)
                out.append(Command(line[: m.start()] if m else line, m.group(1) if m else None))
            elif ASSIGNMENT.match(line):
                out.append(Command(line, None))
    return out


def _script(commands: list[Command], base: str, out: Path) -> str:
    """Bash that runs the commands in order, each checked curl writing `index status content-type`."""
    lines = ["set -o pipefail",
             # the examples' own flags stay; these only add where the body goes and what to report
             f'checked() {{ n=$1; shift; command curl "$@" -o "{out}/$n.body" -w "$n %{{http_code}} %{{content_type}}\\n"; }}']
    for i, c in enumerate(commands):
        text = c.text.replace(BASE, base)
        lines.append(f"checked {i} {text.removeprefix('curl ')}" if c.media_type else text)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The sample county served by uvicorn from a copy of its GeoPackage: examples write (readings).

    The PostGIS sample is shared by every test session and must stay as loaded, and a copy of it per run
    is not cheap, so the examples run on the embedded store.
    """
    db = tmp_path_factory.mktemp("readme") / "county.gpkg"
    source = sqlite3.connect(f"file:{(sample_dir() / 'county.gpkg').resolve()}?mode=ro", uri=True)
    copy = sqlite3.connect(db)
    try:
        source.backup(copy)  # a consistent snapshot, write-ahead log included; the shared file is only read
    finally:
        copy.close()
        source.close()
    with live_server(create_app(Settings(database=str(db), sample_dir=sample_dir(), jobs=False))) as url:
        yield url


@pytest.mark.parametrize("page", PAGES)
def test_every_curl_command_names_its_media_type(page):
    commands = readme_commands(PAGES[page].read_text(encoding="utf-8"))
    checked = [c for c in commands if not ASSIGNMENT.match(c.text)]
    assert len(checked) >= 3, f"{page} lost its curl examples"
    assert [c.text for c in checked if c.media_type is None] == []


def test_the_guide_shows_a_filter():
    commands = readme_commands(PAGES["guide"].read_text(encoding="utf-8"))
    assert any("--data-urlencode" in c.text and "filter=" in c.text for c in commands)


@pytest.mark.parametrize("page", PAGES)
def test_curl_examples_answer_as_they_say(server, tmp_path, page):
    commands = readme_commands(PAGES[page].read_text(encoding="utf-8"))
    run = subprocess.run(["bash", "-c", _script(commands, server, tmp_path)], capture_output=True, text=True,
                         timeout=300)
    answers = {int(n): (int(status), ctype) for n, status, ctype in
               (line.split(" ", 2) for line in run.stdout.splitlines() if line.strip())}
    for i, c in enumerate(commands):
        if c.media_type is None:
            continue
        assert i in answers, f"{c.text}\n-> no answer: {run.stderr}"
        status, ctype = answers[i]
        body = (tmp_path / f"{i}.body").read_bytes()[:300]
        assert 200 <= status < 300, f"{c.text}\n-> {status} {body!r}"
        assert ctype.split(";")[0].strip() == c.media_type, f"{c.text}\n-> {ctype}"
        assert body, c.text
