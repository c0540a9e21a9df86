"""Schemathesis against our own OpenAPI document, on both stores, anonymously and as the operator.

Schemathesis' own runner (its CLI, as a user would run it) calls every operation the caller's document lists
on a real server (uvicorn over the tiny county): boundary values of every parameter (its coverage phase),
then generated requests, valid and invalid ones. No answer may be a 5xx, and every answer's status, media
type, headers and body must be what the document says. The operator also writes (events), so the county is
the per-module copy tests/api/conftest.py makes, never the shared sample.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.api.conftest import county_db  # noqa: F401  (the tiny county, per store)
from tests.e2e.live_server import live_server

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
# Generated requests per operation in the fuzzing phase (the coverage phase's boundary cases come on top):
# the four runs stay near two minutes of CPU on two cores.
EXAMPLES = 3
# The coverage phase would also send every method we do not serve to every path: 405s, no news. The caller is
# given; schemathesis must not sign itself up through the account routes it finds. /stream never ends: its
# first event shows the media type, then the next request.
CONFIG = ("max-stream-events = 1\n\n[auth]\nauto-signup = false\n\n"
          "[phases.coverage]\nunexpected-methods = []\n")


@pytest.fixture(scope="module")
def server(county_db) -> Iterator[str]:  # noqa: F811
    """The app over the tiny county (and the sample county's rasters), served by uvicorn."""
    app = create_app(Settings(database=county_db, secret="schemathesis-secret-of-at-least-32-bytes"))
    with live_server(app) as url:
        yield url


def _headers(url: str, who: str) -> list[str]:
    if who == "anonymous":
        return []
    r = requests.post(f"{url}/auth/token", data={"username": who, "password": county.PASSWORD}, timeout=30)
    r.raise_for_status()
    return ["-H", f"Authorization: Bearer {r.json()['access_token']}"]


def _failures(output: str) -> str:
    """Schemathesis' report from its FAILURES section on (the progress lines before it say nothing)."""
    m = re.search(r"^=+ FAILURES =+$", output, re.M)
    return output[m.start():] if m else output[-20000:]


@pytest.mark.parametrize("who", ["anonymous", "operator"])
def test_no_server_error_and_every_answer_as_documented(server, who, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(cli), "--no-color", "--config-file", str(config), "run", f"{server}/openapi", *_headers(server, who),
         "--checks", ",".join(CHECKS), "--mode", "all", "--phases", "examples,coverage,fuzzing",
         "--max-examples", str(EXAMPLES), "--seed", "13", "--workers", "2",
         "--generation-with-security-parameters", "false", "--generation-database", "none",
         "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert "Operations:" in run.stdout, run.stdout + run.stderr  # it did load our document
    assert run.returncode == 0, _failures(run.stdout) + run.stderr[-3000:]
