"""GET /heatmap on both stores: hexagon counts equal h3.latlng_to_cell over the items the caller reads with the
same filter; the caller's townships are applied before counting (a hexagon across the A/B border counts only
what the leader may see); bad input is a 400 naming the parameter, an unknown or unreadable layer a 404."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import h3
import pytest
from shapely.geometry import Point, shape

from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import login
from tests.api.county import T0

BORDER_A, BORDER_B = (100.4995, 33.3001), (100.5005, 33.3001)  # 100 m apart, on either side of lon 100.5


@pytest.fixture(scope="module")
def heat(client):
    """Events on both sides of the A/B border (in one hexagon) and a few alarms, added once per store."""
    store = client.app.state.store
    for res in (5, 6, 7, 8):
        assert h3.latlng_to_cell(BORDER_A[1], BORDER_A[0], res) == h3.latlng_to_cell(BORDER_B[1], BORDER_B[0], res)
    store.insert("events", [
        Feature(None, Point(*xy), {"title": f"border {i}", "type": kind, "status": "reported",
                                   "reported_at": T0 + timedelta(days=30 + i)})
        for i, (xy, kind) in enumerate([(BORDER_A, "garbage"), (BORDER_B, "garbage"), (BORDER_B, "road_damage")])],
        Scope.everything())
    store.insert("alarms", [
        Feature(None, Point(100.1 + 0.1 * i, 33.2), {"alarm_kind": "threshold", "status": "raised",
                                                     "raised_at": T0 + timedelta(hours=i)}) for i in range(6)],
        Scope.everything())
    return {"operator": login(client, "operator"), "leader-A": login(client, "leader-A"),
            "leader-B": login(client, "leader-B")}


def _items(client, headers, layer: str, params: dict) -> list[dict]:
    out, offset = [], 0
    while True:
        page = client.get(f"/collections/{layer}/items", params={**params, "limit": 1000, "offset": offset},
                          headers=headers)
        assert page.status_code == 200, page.text
        out += page.json()["features"]
        if len(page.json()["features"]) < 1000:
            return out
        offset += 1000


def _direct(items: list[dict], resolution: int) -> dict[str, int]:
    """What h3 itself says: each item's cell at the resolution, counted."""
    return dict(Counter(h3.latlng_to_cell(f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0],
                                          resolution) for f in items))


def _heatmap(client, headers, **params) -> dict:
    r = client.get("/heatmap", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    return r.json()


def _counts(body: dict) -> dict[str, int]:
    return {f["properties"]["h3"]: f["properties"]["count"] for f in body["features"]}


@pytest.mark.parametrize("who", ["operator", "leader-A", "leader-B"])
@pytest.mark.parametrize("layer, params, resolution", [
    ("events", {}, 8), ("events", {"filter": "type = 'garbage'"}, 7), ("events", {}, 5),
    ("events", {"datetime": "2024-05-03T00:00:00Z/2024-06-30T00:00:00Z", "filter": "status <> 'closed'"}, 9),
    ("alarms", {}, 8), ("alarms", {"filter": "status = 'raised'", "bbox": "100.0,33.0,100.45,33.5"}, 6),
])
def test_counts_equal_a_direct_h3_computation_over_the_same_items(client, heat, who, layer, params, resolution):
    body = _heatmap(client, heat[who], layer=layer, resolution=resolution, **params)
    expected = _direct(_items(client, heat[who], layer, params), resolution)
    assert _counts(body) == expected
    assert body["total"] == sum(expected.values())
    for f in body["features"]:
        cell = f["properties"]["h3"]
        assert f["id"] == cell and f["properties"]["layer"] == layer
        assert h3.get_resolution(cell) == resolution
        polygon = shape(f["geometry"])
        assert polygon.is_valid and polygon.exterior.is_ccw
        lat, lng = h3.cell_to_latlng(cell)
        assert polygon.contains(Point(lng, lat))


def test_a_leader_never_counts_another_township_s_feature_in_a_shared_hexagon(client, heat):
    cell = h3.latlng_to_cell(BORDER_A[1], BORDER_A[0], 7)
    assert _counts(_heatmap(client, heat["operator"], layer="events", resolution=7))[cell] == 3
    assert _counts(_heatmap(client, heat["leader-A"], layer="events", resolution=7))[cell] == 1
    assert _counts(_heatmap(client, heat["leader-B"], layer="events", resolution=7))[cell] == 2
    garbage = _heatmap(client, heat["leader-B"], layer="events", resolution=7, filter="type = 'garbage'")
    assert _counts(garbage)[cell] == 1


def test_no_resolution_is_resolution_8_and_no_datetime_is_all_time(client, heat):
    body = _heatmap(client, heat["operator"], layer="events")
    assert body["resolution"] == 8
    assert body["total"] == len(_items(client, heat["operator"], "events", {}))


@pytest.mark.parametrize("params, status, field", [
    ({"layer": "events", "resolution": "99"}, 400, "resolution"),
    ({"layer": "events", "resolution": "-1"}, 400, "resolution"),
    ({"layer": "events", "resolution": "x"}, 400, "resolution"),
    ({"layer": "events", "resolution": "8.5"}, 400, "resolution"),
    ({"layer": "events", "datetime": "2024-13-45T99:00:00Z"}, 400, "datetime"),
    ({"layer": "events", "datetime": "2024-06-01T00:00:00Z/2024-05-01T00:00:00Z"}, 400, "datetime"),
    ({"layer": "events", "filter": "status = "}, 400, "filter"),
    ({"layer": "events", "filter": "colour = 'red'"}, 400, "filter"),
    ({"layer": "events", "bbox": "1,2,3"}, 400, "bbox"),
    ({"layer": "events", "resolution": "15", "bbox": "-180,-90,180,90"}, 400, "resolution"),
    ({"layer": "events", "colour": "red"}, 400, "colour"),
    ({}, 400, "layer"),
    ({"layer": "temples"}, 400, "layer"),
    ({"layer": "nope"}, 404, "layer"),
])
def test_bad_heat_map_requests_are_problems_naming_the_parameter(client, heat, params, status, field):
    r = client.get("/heatmap", params=params, headers=heat["operator"])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == field


def test_a_layer_the_caller_cannot_read_is_404(client, heat):
    r = client.get("/heatmap", params={"layer": "events"})  # anonymous: events are not public
    assert r.status_code == 404 and r.json()["parameter"] == "layer", r.text
    r = client.get("/heatmap", params={"layer": "alarms"}, headers=login(client, "dept-religion"))
    assert r.status_code == 404 and r.json()["parameter"] == "layer", r.text
