"""`onemap user …`: a county's first admin, then accounts and keys changed from the shell, in both stores."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import cli
from api.app import create_app
from api.settings import Settings
from tests.api.conftest import SECRET
from tests.conftest import STORE_KINDS

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a county's own password"


def _onemap(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The real command, run from this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture(params=STORE_KINDS)
def new_database(request, tmp_path, fresh_postgis_url):
    """A database nobody has set up yet: a path for a new GeoPackage, or a new, empty PostgreSQL database."""
    if request.param == "embedded":
        yield str(tmp_path / "county.gpkg")
        return
    name = f"onemap_new_{uuid.uuid4().hex[:8]}"
    server = fresh_postgis_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_county_creates_its_first_admin_as_readme_says(new_database):
    assert _onemap("db", "upgrade", "--database", new_database).returncode == 0
    done = _onemap("user", "--database", new_database, "add", "admin", "--role", "admin", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "created account 'admin' (admin)" in done.stdout
    with TestClient(create_app(Settings(database=new_database, secret=SECRET))) as c:
        r = c.post("/auth/token", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200
        users = c.get("/users", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
    assert [u["username"] for u in users["users"]] == ["admin"]
    again = _onemap("user", "--database", new_database, "add", "admin", "--role", "admin", "--password-stdin",
                    stdin=PASSWORD + "\n")
    assert again.returncode == 2 and "already an account 'admin'" in again.stderr


def _run(monkeypatch, capsys, county_db: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["user", "--database", county_db, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_accounts_are_added_regranted_disabled_and_listed(county_db, monkeypatch, capsys):
    run = lambda *a, stdin="": _run(monkeypatch, capsys, county_db, *a, stdin=stdin)  # noqa: E731
    code, out, err = run("add", "cli-worker", "--role", "worker", "--townships", "A", "--grids", "A1",
                         "--display-name", "网格员", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, err
    code, out, _ = run("grant", "cli-worker", "--townships", "A,B", "--grids", "A1,B2",
                       "--grant", "temples:read:B")
    assert code == 0 and "townships=A,B" in out and "grids=A1,B2" in out and "grants=temples:read:B" in out
    code, out, _ = run("list", "--role", "worker")
    assert code == 0 and "cli-worker  worker  townships=A,B" in out and "account(s)" in out
    assert run("disable", "cli-worker")[0] == 0
    assert "DISABLED" in run("list", "--role", "worker")[1]
    assert run("enable", "cli-worker")[0] == 0
    assert "DISABLED" not in run("list", "--role", "worker")[1]
    code, out, _ = run("grant", "cli-worker", "--no-grants")
    assert code == 0 and "grants=" not in out


@pytest.mark.parametrize("args, message", [
    (("add", "cli-bad", "--role", "leader", "--townships", "Z", "--password-stdin"), "no township 'Z'"),
    (("add", "cli-bad", "--role", "worker", "--townships", "A", "--grids", "B1", "--password-stdin"), "grid 'B1'"),
    (("add", "cli bad", "--role", "admin", "--password-stdin"), "username must be"),
    (("grant", "nobody", "--townships", "A"), "no account 'nobody'"),
    (("grant", "leader-A", "--grant", "grids"), "LAYER:ACTION"),
    (("disable", "nobody"), "no account 'nobody'"),
    (("key", "revoke", "ffffffffffffffff"), "no API key"),
    (("key", "issue", "nobody"), "no account 'nobody'"),
])
def test_bad_input_exits_2_naming_what_is_wrong(county_db, monkeypatch, capsys, args, message):
    code, _, err = _run(monkeypatch, capsys, county_db, *args, stdin=PASSWORD + "\n")
    assert code == 2 and message in err


def test_a_short_password_or_none_at_all_is_refused(county_db, monkeypatch, capsys):
    code, _, err = _run(monkeypatch, capsys, county_db, "passwd", "leader-B", "--password-stdin", stdin="short\n")
    assert code == 2 and "password must be" in err
    code, _, err = _run(monkeypatch, capsys, county_db, "passwd", "leader-B")  # no terminal to ask at
    assert code == 2 and "--password-stdin" in err


def test_what_the_shell_changes_a_running_server_obeys(county_db, monkeypatch, capsys):
    settings = Settings(database=county_db, secret=SECRET)
    with TestClient(create_app(settings)) as server:
        r = server.post("/auth/token", data={"username": "operator", "password": "onemap"})
        token = {"Authorization": f"Bearer {r.json()['access_token']}"}
        code, out, _ = _run(monkeypatch, capsys, county_db, "key", "issue", "operator", "--label", "night shift")
        key_id, key = out.split()[2], out.splitlines()[-1]
        assert code == 0 and server.get("/collections/events/items", headers={"X-API-Key": key}).status_code == 200
        code, out, _ = _run(monkeypatch, capsys, county_db, "key", "list", "operator")
        assert code == 0 and key_id in out and "night shift" in out and key not in out
        assert _run(monkeypatch, capsys, county_db, "key", "revoke", key_id)[0] == 0
        assert server.get("/collections/events/items", headers={"X-API-Key": key}).status_code == 401
        assert _run(monkeypatch, capsys, county_db, "passwd", "operator", "--password-stdin",
                    stdin=PASSWORD + "\n")[0] == 0
        deadline = time.monotonic() + 5
        while server.get("/collections", headers=token).status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.get("/collections", headers=token).status_code == 401
        assert server.post("/auth/token", data={"username": "operator", "password": PASSWORD}).status_code == 200
