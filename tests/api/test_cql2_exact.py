"""Filter literals reach the query bit-exact: a vertex shared by grids finds every grid sharing it, and a grid
equals its own served geometry -- in CQL2 text and JSON, on both stores, checked with shapely over the
features served.

The grid corners sit on sevenths and thirteenths of a degree, numbers that the cql2 package's parser
reads one or two units in the last place off (the test checks that it still does, so it cannot pass by
accident).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import cql2
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, Point, box, shape

from api.app import create_app
from api.settings import Settings
from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import Store, UserRecord
from tests.api.conftest import SECRET
from tests.conftest import STORE_KINDS, filled_database

XS = [100 + i / 7 for i in range(4)]
YS = [33 + j / 13 for j in range(4)]
SHARED = [(x, y) for x in XS[1:3] for y in YS[1:3]]  # each corner of four grids


def fill(store: Store) -> None:
    """A 3 x 3 block of grids whose corners are not round numbers."""
    store.bulk_load("grids", [
        Feature(None, MultiPolygon([box(XS[i], YS[j], XS[i + 1], YS[j + 1])]),
                {"grid_code": f"G{i}{j}", "township_code": "A", "name": f"Grid {i}{j}", "grid_kind": "basic",
                 "is_key": False})
        for i in range(3) for j in range(3)])
    store.put_users([UserRecord("admin", "admin", hash_password("onemap"))])


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request, catalog, tmp_path_factory, fresh_postgis_url) -> Iterator[TestClient]:
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"exact-{request.param}"),
                         fresh_postgis_url, fill)
    with TestClient(create_app(Settings(database=db, secret=SECRET, public_url="http://testserver"))) as c:
        token = c.post("/auth/token", data={"username": "admin", "password": "onemap"}).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


@pytest.fixture(scope="module")
def grids(client) -> list[dict]:
    body = client.get("/collections/grids/items", params={"limit": 100}).json()
    assert body["numberMatched"] == 9
    return body["features"]


def _ids(client, cql: str | dict) -> list[int]:
    params = {"filter": cql if isinstance(cql, str) else json.dumps(cql), "limit": 100}
    if isinstance(cql, dict):
        params["filter-lang"] = "cql2-json"
    r = client.get("/collections/grids/items", params=params)
    assert r.status_code == 200, r.text
    return sorted(f["id"] for f in r.json()["features"])


def _forms(op: str, wkt: str, geojson: dict) -> list[str | dict]:
    return [f"{op}(geometry, {wkt})", {"op": op.lower(), "args": [{"property": "geometry"}, geojson]}]


def test_cql2_alone_would_move_these_corners():
    moved = [(x, y) for x, y in SHARED
             if cql2.parse_text(f"S_INTERSECTS(geometry, POINT({x!r} {y!r}))").to_json()["args"][1]["coordinates"]
             != [x, y]]
    assert moved, "pick corners the cql2 parser rounds, or this file tests nothing"


@pytest.mark.parametrize("corner", SHARED)
@pytest.mark.parametrize("op", ["S_INTERSECTS", "S_TOUCHES"])
def test_a_shared_corner_finds_every_grid_sharing_it(client, grids, corner, op):
    x, y = corner
    point = Point(x, y)
    test = point.intersects if op == "S_INTERSECTS" else point.touches
    expected = sorted(f["id"] for f in grids if test(shape(f["geometry"])))
    assert len(expected) == 4
    for cql in _forms(op, f"POINT({x!r} {y!r})", {"type": "Point", "coordinates": [x, y]}):
        assert _ids(client, cql) == expected, cql


def _wkt(multipolygon: dict) -> str:
    polys = ", ".join("(" + ", ".join("(" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + ")" for ring in poly) + ")"
                      for poly in multipolygon["coordinates"])
    return f"MULTIPOLYGON({polys})"


@pytest.mark.parametrize("index", range(9))
def test_a_grid_equals_its_own_served_geometry(client, grids, index):
    grid = grids[index]
    geometry = client.get(f"/collections/grids/items/{grid['id']}").json()["geometry"]
    touching = sorted(f["id"] for f in grids if shape(f["geometry"]).touches(shape(geometry)))
    for cql in _forms("S_EQUALS", _wkt(geometry), geometry):
        assert _ids(client, cql) == [grid["id"]], cql
    for cql in _forms("S_TOUCHES", _wkt(geometry), geometry):
        assert _ids(client, cql) == touching, cql
