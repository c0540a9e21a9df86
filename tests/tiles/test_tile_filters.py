"""Filtered collection tiles (`filter`, `datetime`) on both stores: clusters count only the matching features,
the caller's scope still applies, the cache keeps filtered and plain tiles apart, bad input is a 400."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import morecantile
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import STORE_KINDS, postgis_url, sample_dir
from tests.tiles.mvt import decode

LEADER = "leader-632626100"
OPEN = "status IN ('reported','accepted','dispatched','in_progress','handled','verified')"


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request) -> Iterator[TestClient]:
    db = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    with TestClient(create_app(Settings(database=db, sample_dir=sample_dir(), jobs=False))) as c:
        yield c


def _token(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": "onemap"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def operator(client) -> dict[str, str]:
    return _token(client, "operator")


def _county_tiles(client: TestClient, z: int) -> list[morecantile.Tile]:
    bbox = client.get("/collections/townships").json()["extent"]["spatial"]["bbox"][0]
    return list(morecantile.tms.get("WebMercatorQuad").tiles(*bbox, zooms=[z]))


def _counted(client: TestClient, headers: dict, query: str = "", z: int = 8) -> int:
    """How many events the clustered tiles over the county hold (sum of point_count)."""
    total = 0
    for t in _county_tiles(client, z):
        r = client.get(f"/collections/events/tiles/WebMercatorQuad/{z}/{t.y}/{t.x}{query}", headers=headers)
        assert r.status_code in (200, 204), r.text
        total += sum(f["properties"]["point_count"] for f in decode(r.content).get("events", []))
    return total


def _matched(client: TestClient, headers: dict, cql: str | None = None, datetime: str | None = None) -> int:
    params = {"limit": 1, **({"filter": cql} if cql else {}), **({"datetime": datetime} if datetime else {})}
    return client.get("/collections/events/items", params=params, headers=headers).json()["numberMatched"]


def test_a_filtered_tile_counts_exactly_the_matching_events(client, operator):
    everything = _counted(client, operator)
    assert everything == _matched(client, operator)
    open_now = _counted(client, operator, "?filter=" + quote(OPEN))
    assert open_now == _matched(client, operator, OPEN)
    assert 0 < open_now < everything


def test_a_datetime_window_narrows_the_tile_as_it_narrows_the_items(client, operator):
    window = "2026-01-01T00:00:00Z/.."
    assert _counted(client, operator, "?datetime=" + quote(window)) == _matched(client, operator, datetime=window)


def test_a_filter_never_widens_a_leaders_scope(client):
    leader = _token(client, LEADER)
    own = _counted(client, leader, "?filter=" + quote(OPEN))
    assert own == _matched(client, leader, OPEN) > 0
    other = "?filter=" + quote("township_code = '632626200'")
    assert _counted(client, leader, other) == 0


def test_filtered_and_plain_tiles_are_cached_apart(client, operator):
    t = _county_tiles(client, 8)[0]
    path = f"/collections/events/tiles/WebMercatorQuad/8/{t.y}/{t.x}"
    plain = client.get(path, headers=operator)
    closed = client.get(path + "?filter=" + quote("status = 'closed'"), headers=operator)
    again = client.get(path, headers=operator)
    assert plain.content == again.content and plain.headers["etag"] == again.headers["etag"]
    assert closed.headers.get("etag") != plain.headers.get("etag")


@pytest.mark.parametrize(("query", "parameter"), [
    ("filter=status%20%3D", "filter"),
    ("filter=nope%20%3D%201", "filter"),
    ("datetime=yesterday", "datetime"),
    ("filter=status%20%3D%20'x'&filter-lang=sql", "filter-lang"),
])
def test_bad_tile_filters_are_400_naming_the_parameter(client, operator, query, parameter):
    t = _county_tiles(client, 8)[0]
    r = client.get(f"/collections/events/tiles/WebMercatorQuad/8/{t.y}/{t.x}?{query}", headers=operator)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter


def test_a_layer_without_time_refuses_a_datetime(client, operator):
    t = _county_tiles(client, 8)[0]
    r = client.get(f"/collections/townships/tiles/WebMercatorQuad/8/{t.y}/{t.x}?datetime=2026-01-01T00:00:00Z",
                   headers=operator)
    assert r.status_code == 400 and r.json()["parameter"] == "datetime"
