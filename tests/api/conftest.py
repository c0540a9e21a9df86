"""App fixtures: a TestClient over each store holding the tiny county (tests/api/county.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database

SECRET = "test-secret-of-at-least-thirty-two-bytes"


@pytest.fixture(scope="module", params=STORE_KINDS)
def county_db(request, catalog, tmp_path_factory, fresh_postgis_url) -> str:
    """The database (gpkg path or PostGIS URL) of the tiny county, per store kind."""
    tmp = tmp_path_factory.mktemp(f"county-{request.param}")
    return filled_database(request.param, catalog, tmp, fresh_postgis_url, county.fill)


@pytest.fixture(scope="module")
def client(county_db) -> Iterator[TestClient]:
    """A TestClient over the app serving the tiny county (the lifespan runs)."""
    settings = Settings(database=county_db, secret=SECRET, public_url="http://testserver")
    with TestClient(create_app(settings)) as c:
        yield c


def login(client: TestClient, username: str) -> dict[str, str]:
    """Authorization headers for a tiny-county account."""
    r = client.post("/auth/token", data={"username": username, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
