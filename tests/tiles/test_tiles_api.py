"""OGC API - Tiles over HTTP on both stores: tiles, TileJSON, style, scope, cache, invalidation, bad input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from api.app import create_app
from api.settings import Settings
from geoserver import crs
from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import SECRET, login
from tests.conftest import STORE_KINDS, filled_database
from tests.tiles import county
from tests.tiles.mvt import decode
from tiles.tms import get_tiling

MVT = "application/vnd.mapbox-vector-tile"
TOWN_B = county.TOWN_CENTRES["B"]


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request, catalog, tmp_path_factory, fresh_postgis_url) -> Iterator[TestClient]:
    """The app over the tiny county with buildings, per store kind."""
    tmp = tmp_path_factory.mktemp(f"tiles-{request.param}")
    db = filled_database(request.param, catalog, tmp, fresh_postgis_url, county.fill)
    with TestClient(create_app(Settings(database=db, secret=SECRET, tile_cache_mb=16,
                                            public_url="http://testserver"))) as c:
        yield c


@pytest.fixture(scope="module")
def admin(client) -> dict:
    return login(client, "admin")


@pytest.fixture(scope="module")
def leader_a(client) -> dict:
    return login(client, "leader-A")


def _path(tms: str, lon: float, lat: float, z: int, collection: str | None = None) -> str:
    t = get_tiling(tms).tms.tile(lon, lat, z)
    prefix = f"/collections/{collection}/tiles" if collection else "/tiles"
    return f"{prefix}/{tms}/{z}/{t.y}/{t.x}"


def test_tile_matrix_sets_are_listed_and_described(client):
    ids = {t["id"] for t in client.get("/tileMatrixSets").json()["tileMatrixSets"]}
    assert ids == {"WebMercatorQuad", "CGCS2000Quad"}
    doc = client.get("/tileMatrixSets/CGCS2000Quad").json()
    assert doc["crs"].endswith("4490") and doc["tileMatrices"][3]["matrixWidth"] == 16


def test_tile_metadata_names_each_crs_by_its_uri(client):
    """The CRS members are the URIs themselves (they read `root='http://...'` once, a model's repr)."""
    listed = {t["id"]: t["crs"] for t in client.get("/tileMatrixSets").json()["tileMatrixSets"]}
    assert listed == {"WebMercatorQuad": crs.EPSG_3857, "CGCS2000Quad": crs.EPSG_4490}
    assert {t["crs"] for t in client.get("/tiles").json()["tilesets"]} == {crs.EPSG_3857, crs.EPSG_4490}
    assert client.get("/tiles/CGCS2000Quad").json()["crs"] == crs.EPSG_4490


@pytest.mark.parametrize("tms", ["WebMercatorQuad", "CGCS2000Quad"])
def test_a_collection_tile_is_mvt_with_that_layer(client, admin, tms):
    r = client.get(_path(tms, *TOWN_B, 15, "buildings"), headers=admin)
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layers = decode(r.content)
    assert list(layers) == ["buildings"] and len(layers["buildings"]) > 20


def test_the_combined_tile_holds_every_readable_layer_at_that_zoom(client, admin):
    r = client.get(_path("WebMercatorQuad", *TOWN_B, 14), headers=admin)
    assert r.status_code == 200
    assert {"townships", "grids", "buildings", "events"} <= set(decode(r.content))
    low = decode(client.get(_path("WebMercatorQuad", *TOWN_B, 9), headers=admin).content)
    assert "buildings" not in low and "townships" in low


def test_anonymous_callers_see_public_layers_only(client):
    layers = decode(client.get(_path("WebMercatorQuad", *TOWN_B, 14)).content)
    assert "townships" in layers and "events" not in layers and "buildings" not in layers
    assert client.get(_path("WebMercatorQuad", *TOWN_B, 14, "events")).status_code == 404


def test_no_leak_across_scopes_through_the_cache(client, admin, leader_a):
    path = _path("WebMercatorQuad", *TOWN_B, 14)
    first = client.get(path, headers=admin)
    again = client.get(path, headers=admin)
    assert first.content == again.content  # served from the cache
    mine = client.get(path, headers=leader_a)
    assert mine.status_code in (200, 204)
    assert mine.content != first.content and len(mine.content) < len(first.content)
    for name, feats in decode(mine.content).items():
        if client.app.state.catalog.get(name).public:  # the township outlines are for everyone
            continue
        assert all(f["properties"].get("township_code", "A") == "A" for f in feats), name
    assert "buildings" not in decode(mine.content)  # all of town B's houses are B's


def test_an_empty_tile_is_204_without_a_body(client, admin):
    r = client.get(_path("WebMercatorQuad", 10.0, 50.0, 14, "events"), headers=admin)
    assert r.status_code == 204 and r.content == b""
    r = client.get(_path("WebMercatorQuad", *TOWN_B, 10, "buildings"), headers=admin)  # below its min zoom
    assert r.status_code == 204 and r.content == b""


def test_etag_and_if_none_match_give_304(client, admin):
    path = _path("WebMercatorQuad", *TOWN_B, 15, "buildings")
    r = client.get(path, headers=admin)
    etag = r.headers["etag"]
    assert etag.startswith('"') and "max-age=3600" in r.headers["cache-control"]
    r2 = client.get(path, headers={**admin, "If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    live = client.get(_path("WebMercatorQuad", TOWN_B[0], TOWN_B[1] + 0.01, 15, "events"), headers=admin)
    assert "max-age=5" in live.headers["cache-control"]


def test_an_edit_shows_at_once_and_unrelated_tiles_stay_cached(client, admin):
    store = client.app.state.store
    cache = client.app.state.tiles.cache
    moved = store.query("events", _all_events(), Scope.everything()).features[0]
    old_path = _path("WebMercatorQuad", moved.geometry.x, moved.geometry.y, 16, "events")
    new_lon, new_lat = TOWN_B[0] + 0.1, TOWN_B[1] - 0.1
    new_path = _path("WebMercatorQuad", new_lon, new_lat, 16, "events")
    far_path = _path("WebMercatorQuad", *county.TOWN_CENTRES["A"], 15, "buildings")
    before_old = client.get(old_path, headers=admin)
    before_new = client.get(new_path, headers=admin)
    far = client.get(far_path, headers=admin)
    assert moved.id in {f["id"] for f in decode(before_old.content).get("events", [])}
    misses = cache.misses
    store.update("events", moved.id, Feature(None, Point(new_lon, new_lat), {}), Scope.everything(), partial=True)
    after_old = client.get(old_path, headers=admin)
    after_new = client.get(new_path, headers=admin)
    assert moved.id not in {f["id"] for f in decode(after_old.content).get("events", [])}
    assert moved.id in {f["id"] for f in decode(after_new.content).get("events", [])}
    assert before_new.status_code == 204 or moved.id not in {f["id"] for f in decode(before_new.content)["events"]}
    misses_after_edit = cache.misses
    assert client.get(far_path, headers=admin).content == far.content
    assert cache.misses == misses_after_edit == misses + 2  # the untouched tile came from the cache


def _all_events():
    from geoserver.features import FeatureQuery

    return FeatureQuery(limit=1, sortby=(("reported_at", True),))


def test_tilejson_describes_layers_bounds_and_zooms(client, admin):
    doc = client.get("/tiles/WebMercatorQuad/tilejson.json", headers=admin).json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].startswith("http://testserver/tiles/WebMercatorQuad/{z}/{y}/{x}")
    layers = {v["id"]: v for v in doc["vector_layers"]}
    assert layers["buildings"]["minzoom"] == 13 and "height" in layers["buildings"]["fields"]
    assert doc["bounds"] == pytest.approx([100.0, 33.0, 101.0, 33.5], abs=1e-6)
    one = client.get("/collections/events/tiles/CGCS2000Quad/tilejson.json", headers=admin).json()
    assert [v["id"] for v in one["vector_layers"]] == ["events"]


def test_tileset_metadata_links_to_its_tiles_and_tms(client, admin):
    doc = client.get("/collections/buildings/tiles/WebMercatorQuad", headers=admin).json()
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    assert rels["item"].endswith("/collections/buildings/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"].endswith("/tileMatrixSets/WebMercatorQuad")
    listed = client.get("/collections/buildings/tiles", headers=admin).json()["tilesets"]
    assert len(listed) == 2
    assert len(client.get("/tiles").json()["tilesets"]) == 2
    assert client.get("/tiles/CGCS2000Quad", headers=admin).json()["dataType"] == "vector"


def test_the_maplibre_style_is_derived_from_the_catalog(client, admin):
    style = client.get("/styles/onemap.json", headers=admin).json()
    assert style["version"] == 8
    assert style["sources"]["onemap"]["url"] == "http://testserver/tiles/WebMercatorQuad/tilejson.json"
    by_id = {lyr["id"]: lyr for lyr in style["layers"]}
    assert by_id["buildings"]["type"] == "fill-extrusion"
    assert by_id["buildings"]["paint"]["fill-extrusion-color"][0] == "match"
    assert by_id["events"]["type"] == "circle" and by_id["townships"]["type"] == "line"
    anonymous = {lyr["id"] for lyr in client.get("/styles/onemap.json").json()["layers"]}
    assert "events" not in anonymous and "townships" in anonymous


STYLE_VALIDATOR = Path("node_modules/@maplibre/maplibre-gl-style-spec/dist/gl-style-validate.mjs")


def test_the_style_passes_maplibres_own_validator(client, admin, tmp_path):
    assert STYLE_VALIDATOR.exists(), "run `make npm` (maplibre-gl brings the style-spec validator)"
    path = tmp_path / "onemap.json"
    path.write_text(json.dumps(client.get("/styles/onemap.json", headers=admin).json()))
    out = subprocess.run(["node", str(STYLE_VALIDATOR), str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("path", "status", "parameter"), [
    ("/tiles/WebMercatorQuad/3/8/0", 400, "tileRow"),
    ("/tiles/WebMercatorQuad/3/0/8", 400, "tileCol"),
    ("/tiles/WebMercatorQuad/25/0/0", 400, "tileMatrix"),
    ("/tiles/WebMercatorQuad/-1/0/0", 400, "tileMatrix"),
    ("/tiles/WebMercatorQuad/a/0/0", 400, "z"),
    ("/tiles/Nope/3/0/0", 404, "tileMatrixSetId"),
    ("/tileMatrixSets/Nope", 404, "tileMatrixSetId"),
    ("/collections/nope/tiles/WebMercatorQuad/3/0/0", 404, "collectionId"),
    ("/collections/nope/tiles", 404, "collectionId"),
])
def test_bad_tile_requests_are_problem_json(client, admin, path, status, parameter):
    r = client.get(path, headers=admin)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter
