"""The `heatmap` tile layer on both stores: in the combined tiles and its own, hexagons at the zoom's resolution
with the counts GET /heatmap gives (decoded with mapbox-vector-tile), scoped like every tile, redrawn when an
event is reported, and in the style as fill layers hidden until the viewer shows them."""

from __future__ import annotations

import math
from datetime import timedelta

import h3
import mapbox_vector_tile
import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import login
from tests.api.county import T0
from tiles.heatmap import resolution_at

POINT = (100.4995, 33.3001)  # township A, beside the border with B


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return row, col


def _heat_features(client, headers, path: str) -> list[dict]:
    r = client.get(path, headers=headers)
    if r.status_code == 204:
        return []
    assert r.status_code == 200, r.text
    layers = mapbox_vector_tile.decode(r.content)
    return layers["heatmap"]["features"] if "heatmap" in layers else []


def _by_cell(features: list[dict], layer: str = "events") -> dict[str, int]:
    return {f["properties"]["h3"]: f["properties"]["count"] for f in features if f["properties"]["layer"] == layer}


@pytest.fixture(scope="module")
def who(client):
    """Tokens, once an event of A at POINT and one of B just across the border are reported."""
    store = client.app.state.store
    store.insert("events", [Feature(None, Point(*xy), {"title": "border", "type": "garbage", "reported_at": T0})
                            for xy in (POINT, (100.5005, 33.3001))], Scope.everything())
    return {name: login(client, name) for name in ("operator", "leader-A", "leader-B")}


@pytest.mark.parametrize("z", [8, 10, 11, 13, 15])
@pytest.mark.parametrize("name", ["operator", "leader-A", "leader-B"])
def test_tiles_draw_the_hexagons_of_the_zoom_s_resolution_with_the_heat_map_s_counts(client, who, z, name):
    row, col = _tile_of(*POINT, z)
    resolution = resolution_at(z)
    combined = _heat_features(client, who[name], f"/tiles/WebMercatorQuad/{z}/{row}/{col}")
    own = _heat_features(client, who[name], f"/heatmap/tiles/WebMercatorQuad/{z}/{row}/{col}")
    assert _by_cell(combined) == _by_cell(own)
    heat = client.get("/heatmap", params={"layer": "events", "resolution": resolution}, headers=who[name]).json()
    counts = {f["properties"]["h3"]: f["properties"]["count"] for f in heat["features"]}
    drawn = _by_cell(combined)
    assert drawn and all(counts[cell] == n for cell, n in drawn.items())
    assert all(f["properties"]["resolution"] == resolution and f["geometry"]["type"] == "Polygon" for f in combined)
    assert {h3.get_resolution(cell) for cell in drawn} == {resolution}
    point_cell = h3.latlng_to_cell(POINT[1], POINT[0], resolution)
    if name == "leader-B":  # the point lies in A: B's hexagon there, if any, counts only B's features
        assert drawn.get(point_cell, 0) == counts.get(point_cell, 0)
    else:
        assert point_cell in drawn


def test_a_reported_event_redraws_the_heat_map_tile(client, who):
    z = 11
    row, col = _tile_of(*POINT, z)
    path = f"/tiles/WebMercatorQuad/{z}/{row}/{col}"
    cell = h3.latlng_to_cell(POINT[1], POINT[0], resolution_at(z))
    before = _by_cell(_heat_features(client, who["leader-A"], path)).get(cell, 0)
    r = client.post("/collections/events/items", headers=who["leader-A"], json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": list(POINT)},
        "properties": {"title": "heat", "type": "garbage", "reported_at": (T0 + timedelta(days=90)).isoformat()}})
    assert r.status_code == 201, r.text
    assert _by_cell(_heat_features(client, who["leader-A"], path)).get(cell, 0) == before + 1
    assert _by_cell(_heat_features(client, who["operator"], path)).get(cell, 0) >= before + 1


def test_the_style_and_tilejson_carry_the_heat_map_hidden_by_default(client, who):
    style = client.get("/styles/onemap.json", headers=who["leader-A"]).json()
    heat = [sl for sl in style["layers"] if sl.get("source-layer") == "heatmap"]
    assert {sl["id"] for sl in heat} == {"heatmap-events", "heatmap-alarms"}
    assert all(sl["type"] == "fill" and sl["layout"]["visibility"] == "none" for sl in heat)
    assert all(sl["paint"]["fill-color"][0] == "interpolate" for sl in heat)
    tilejson = client.get("/tiles/WebMercatorQuad/tilejson.json", headers=who["leader-A"]).json()
    [layer] = [v for v in tilejson["vector_layers"] if v["id"] == "heatmap"]
    assert layer["fields"] == {"h3": "String", "count": "Number", "layer": "String", "resolution": "Number"}


def test_no_heat_map_for_a_caller_who_reads_neither_layer(client):
    row, col = _tile_of(*POINT, 11)
    assert client.get(f"/heatmap/tiles/WebMercatorQuad/11/{row}/{col}").status_code == 404
    assert "heatmap" not in mapbox_vector_tile.decode(
        client.get(f"/tiles/WebMercatorQuad/11/{row}/{col}").content or b"")
    style = client.get("/styles/onemap.json").json()
    assert not [sl for sl in style["layers"] if sl.get("source-layer") == "heatmap"]


@pytest.mark.parametrize("path", ["/heatmap/tiles/WebMercatorQuad/30/0/0", "/heatmap/tiles/NoSuchTMS/1/0/0",
                                  "/heatmap/tiles/WebMercatorQuad/2/9/0"])
def test_bad_heat_map_tile_addresses_are_problems(client, who, path):
    r = client.get(path, headers=who["operator"])
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json"), r.text
