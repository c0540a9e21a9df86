"""Desktop GIS clients with HTTP Basic: GDAL (GDAL_HTTP_AUTH=BASIC) and QGIS (a Basic auth configuration)
open protected layers and see exactly what the API gives the same account -- on both stores.

Anonymous callers get 404 for a protected collection (its existence is not told), never a 401 challenge:
these clients send Basic credentials pre-emptively once configured, which is what these tests prove.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.api.conftest import (
    SECRET,
    county_db,  # noqa: F401  (the tiny county, per store)
)
from tests.conftest import sample_dir
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.e2e
QGIS_PYTHON = "/usr/bin/python3"  # Debian's python3-qgis is for the system Python, not our venv
QGIS_PROBE = Path(__file__).with_name("qgis_probe.py")


@pytest.fixture(scope="module")
def server(county_db) -> Iterator[str]:  # noqa: F811
    """The app over the tiny county (and the sample imagery), served by uvicorn on a free port."""
    settings = Settings(database=county_db, secret=SECRET, sample_dir=sample_dir())
    with live_server(create_app(settings)) as url:
        yield url


def api_events(server: str, username: str) -> tuple[int, list[str]]:
    """How many events, in which townships, the API gives this account (asked with a bearer token)."""
    token = httpx.post(f"{server}/auth/token", data={"username": username, "password": county.PASSWORD}).json()
    body = httpx.get(f"{server}/collections/events/items", params={"limit": 1000},
                     headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert body["numberReturned"] == body["numberMatched"]
    return body["numberMatched"], sorted({f["properties"]["township_code"] for f in body["features"]})


def ogrinfo(server: str, userpwd: str | None, *args: str) -> subprocess.CompletedProcess:
    """`ogrinfo` on the protected events collection, with Basic credentials set as GDAL reads them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDAL_HTTP_")}
    if userpwd is not None:
        env.update(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=userpwd)
    return subprocess.run(["ogrinfo", "-ro", *args, f"OAPIF:{server}/collections/events", "events"], env=env,
                          capture_output=True, text=True, timeout=120)


def gdal_events(server: str, userpwd: str) -> tuple[int, int, list[str]]:
    """What GDAL sees: the feature count it reports, the features it reads (every page), their townships."""
    summary = ogrinfo(server, userpwd, "-so")
    assert summary.returncode == 0, summary.stderr
    reported = int(summary.stdout.split("Feature Count: ")[1].split()[0])
    full = ogrinfo(server, userpwd, "-al", "-q")
    assert full.returncode == 0, full.stderr
    codes = [line.split("=", 1)[1].strip() for line in full.stdout.splitlines()
             if line.strip().startswith("township_code (String) =")]
    return reported, len(codes), sorted(set(codes))


@pytest.mark.parametrize("username", ["leader-A", "admin"])
def test_gdal_with_a_password_reads_what_the_api_gives_the_account(server, username):
    count, codes = api_events(server, username)
    assert gdal_events(server, f"{username}:{county.PASSWORD}") == (count, count, codes)


def test_gdal_with_an_api_key_as_the_password(server):
    count, codes = api_events(server, "leader-A")
    assert (count, codes) == (10, ["A"])
    assert gdal_events(server, f"apikey:{county.LEADER_KEY}") == (count, count, codes)


def test_gdal_with_a_wrong_password_or_none_is_refused(server):
    wrong = ogrinfo(server, "leader-A:not-the-password", "-so")
    assert wrong.returncode != 0 and "401" in wrong.stderr and "wrong username or password" in wrong.stderr
    anonymous = ogrinfo(server, None, "-so")
    assert anonymous.returncode != 0 and "404" in anonymous.stderr


def qgis(server: str, home: Path, username: str, password: str | None) -> dict:
    """Run the QGIS probe (its own profile, auth database and HTTP cache in `home`); what QGIS saw."""
    home.mkdir()
    args = {"base": server, "home": str(home), "username": username, "password": password,
            "collection": "events", "wmts": ["imagery", "grids"]}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([QGIS_PYTHON, str(QGIS_PROBE), json.dumps(args)], capture_output=True, text=True,
                          timeout=300, env=env, stdin=subprocess.DEVNULL, cwd=home)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("username", "password"), [("leader-A", county.PASSWORD), ("apikey", county.LEADER_KEY)],
                         ids=["password", "api-key"])
def test_qgis_opens_protected_layers_with_a_basic_auth_configuration(server, tmp_path, username, password):
    count, codes = api_events(server, "leader-A")
    seen = qgis(server, tmp_path / "qgis", username, password)
    assert seen["oapif"] == {"valid": True, "count": count, "township_codes": codes}
    assert seen["vector_tiles"] == {"valid": True, "counts": {"events": count}}  # clusters count their points
    assert seen["wmts"]["imagery"]["valid"] and seen["wmts"]["imagery"]["drawn_pixels"] > 0
    assert seen["wmts"]["grids"]["valid"] and seen["wmts"]["grids"]["drawn_pixels"] > 0  # a protected layer


def test_qgis_with_a_wrong_password_gets_nothing(server, tmp_path):
    seen = qgis(server, tmp_path / "qgis", "leader-A", "not-the-password")
    assert seen["oapif"] == {"valid": False}
    assert seen["vector_tiles"]["counts"] == {}
    assert seen["wmts"] == {"imagery": {"valid": False}, "grids": {"valid": False}}  # refused, not anonymous
