"""`query_geojson` (the items' encoded page) says what `query` + `to_geojson` say, in both stores.

PostGIS writes the Features itself (ST_AsGeoJSON, to_json, its own count); the GeoPackage store encodes the
Python page. Either way a client must read the same features, the same count, the scope applied.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.crs import CRS84, EPSG_3857, EPSG_4326
from geoserver.features import Feature, FeatureQuery
from geoserver.geojson import to_geojson
from tests.geoserver.contract_county import EAST_BOX, EVERYTHING, WEST, WEST_BOX, WEST_EVENTS, WEST_ONLY, prop

QUERIES = [
    ("events", FeatureQuery(limit=100)),
    ("events", FeatureQuery(limit=5)),  # a full page: the count comes from elsewhere
    ("events", FeatureQuery(limit=5, offset=10)),  # a short last page
    ("events", FeatureQuery(limit=5, offset=50)),  # past the end: empty, still counted
    ("events", FeatureQuery(limit=3, bbox=WEST_BOX)),
    ("events", FeatureQuery(limit=3, offset=99, bbox=WEST_BOX)),
    ("events", FeatureQuery(limit=4, filter={"op": "=", "args": [prop("type"), "garbage"]},
                            sortby=(("reported_at", False),))),
    ("events", FeatureQuery(limit=20, sortby=(("priority", True), ("title", False)), properties=("title", "priority"))),
    ("events", FeatureQuery(limit=20, properties=())),
    ("events", FeatureQuery(limit=20, with_geometry=False, properties=("reported_at",))),
    ("buildings", FeatureQuery(limit=10)),  # polygons, numbers, booleans, missing values
    ("patrols", FeatureQuery(limit=10)),  # lines, a NULL datetime
    ("monitoring_sites", FeatureQuery(limit=10)),  # dates
]


def _decoded(page_bytes: bytes) -> list[dict]:
    return json.loads(b"[" + page_bytes + b"]")


def _plain(features: list[Feature], crs: str = CRS84) -> list[dict]:
    """What `to_geojson` says once written as JSON (tuples become lists)."""
    return json.loads(json.dumps([to_geojson(f, crs) for f in features]))


def test_the_encoded_page_is_the_page(store):
    store.bulk_load("monitoring_sites", [
        Feature(1, Point(100.62, 32.82), {"site_code": "S1", "kind": "water_quality",
                                          "installed_on": date(2021, 6, 30)}),
        Feature(2, Point(100.75, 32.85), {"site_code": "S2", "kind": "air"}),
    ])
    for scope in (EVERYTHING, WEST_ONLY, Scope.nothing()):
        for layer, query in QUERIES:
            page = store.query(layer, query, scope)
            encoded = store.query_geojson(layer, query, scope)
            asked = f"{layer} {query} {scope}"
            assert (encoded.number_matched, encoded.number_returned) == (page.number_matched, len(page.features)), asked
            assert _decoded(encoded.features) == _plain(page.features), asked


def test_times_and_coordinates_read_as_written(empty_store):
    """Millisecond times come back as Python's isoformat would write them; coordinates to the last digit."""
    empty_store.bulk_load("events", [
        Feature(1, Point(100.123456789012345, 32.000000000000004), {
            "title": "t", "type": "other", "reported_at": _utc("2024-03-02T09:30:00.250Z"),
            "closed_at": _utc("2024-03-02T10:00:00Z")})])
    [f] = _decoded(empty_store.query_geojson("events", FeatureQuery(), EVERYTHING).features)
    assert f["properties"]["reported_at"] == "2024-03-02T09:30:00.250000Z"
    assert f["properties"]["closed_at"] == "2024-03-02T10:00:00Z"
    assert f["geometry"]["coordinates"] == [100.123456789012345, 32.000000000000004]


def test_the_scope_is_applied_in_the_encoded_page(store):
    encoded = store.query_geojson("events", FeatureQuery(limit=100, bbox=(WEST_BOX[0], WEST_BOX[1], EAST_BOX[2],
                                                                          EAST_BOX[3])), WEST_ONLY)
    got = _decoded(encoded.features)
    assert sorted(f["id"] for f in got) == WEST_EVENTS and encoded.number_matched == len(WEST_EVENTS)
    assert {f["properties"]["township_code"] for f in got} == {WEST}
    nothing = store.query_geojson("events", FeatureQuery(limit=100), Scope.nothing())
    assert (nothing.features, nothing.number_matched, nothing.number_returned) == (b"", 0, 0)


@pytest.mark.parametrize("crs", [EPSG_4326, EPSG_3857])
def test_other_output_crs_are_transformed_like_a_single_item(store, crs):
    encoded = store.query_geojson("buildings", FeatureQuery(limit=10), EVERYTHING, crs)
    page = store.query("buildings", FeatureQuery(limit=10), EVERYTHING)
    assert _decoded(encoded.features) == _plain(page.features, crs) != _plain(page.features)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
