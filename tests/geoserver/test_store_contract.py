"""The Store contract: what every store must answer, run against both (embedded GeoPackage and PostGIS).

A handmade county: townships 632626100 (west) and 632626200 (east) side by side, two grids in each,
a dozen events, four buildings, four patrols and three temples with known properties and places.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geoserver.access import Scope
from geoserver.cql import parse_filter
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature, FeatureQuery
from geoserver.store import ApiKeyRecord, UserRecord

WEST, EAST = "632626100", "632626200"
WEST_BOX, EAST_BOX = (100.60, 32.80, 100.70, 32.90), (100.70, 32.80, 100.80, 32.90)
GRIDS = {  # grid code -> (township, lon from, lon to); every grid spans lat 32.80-32.90
    "632626100001": (WEST, 100.60, 100.65), "632626100002": (WEST, 100.65, 100.70),
    "632626200001": (EAST, 100.70, 100.75), "632626200002": (EAST, 100.75, 100.80),
}
G1, G2, G3, G4 = GRIDS


def t(text: str) -> datetime:
    """An aware UTC datetime from ISO text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# id: (lon, lat, type, status, priority, reported_at, title)
EVENTS = {
    1: (100.62, 32.82, "garbage", "reported", "high", "2024-03-01T08:00:00Z", "Garbage pile by the road"),
    2: (100.63, 32.85, "road_damage", "closed", "low", "2024-03-02T09:30:00.250Z", "Pothole on G317"),
    3: (100.67, 32.86, "fire_hazard", "dispatched", "urgent", "2024-03-03T10:00:00Z", "Smoke near the monastery"),
    4: (100.68, 32.88, "dispute", "reported", "normal", "2024-03-04T11:00:00Z", "garbage dispute between herders"),
    5: (100.72, 32.82, "garbage", "in_progress", None, "2024-03-05T12:00:00Z", "Garbage bin full"),
    6: (100.74, 32.84, "water_pollution", "reported", "high", "2024-03-06T13:00:00Z", "Foam on the river"),
    7: (100.77, 32.86, "wildlife", "closed", "low", "2024-03-07T14:00:00Z", "Injured deer"),
    8: (100.79, 32.89, "livestock", "reported", None, "2024-03-08T15:00:00Z", "Yaks on the highway"),
    9: (100.61, 32.895, "other", "reported", "normal", "2024-02-29T23:59:59.999Z", "Broken street light"),
    10: (100.76, 32.81, "infrastructure", "accepted", "urgent", "2024-03-10T08:00:00Z", "Bridge crack"),
    11: (100.655, 32.83, "garbage", "reported", "low", "2024-03-11T08:00:00Z", "Plastic in the grassland"),
    12: (100.745, 32.87, "fire_hazard", "handled", "normal", "2024-03-12T08:00:00Z", "Overloaded socket"),
}
WEST_EVENTS, EAST_EVENTS = [1, 2, 3, 4, 9, 11], [5, 6, 7, 8, 10, 12]
EVENT_GRID = {1: G1, 2: G1, 9: G1, 3: G2, 4: G2, 11: G2, 5: G3, 6: G3, 12: G3, 7: G4, 8: G4, 10: G4}

# An L-shaped building: its bounding box covers the notch at NOTCH, the building does not.
L_SHAPE = Polygon([(100.76, 32.86), (100.78, 32.86), (100.78, 32.862), (100.762, 32.862), (100.762, 32.88),
                   (100.76, 32.88)])
NOTCH = (100.77, 32.87, 100.78, 32.88)
BUILDINGS = {
    1: (box(100.620, 32.820, 100.621, 32.821), {"floors": 2, "height": 6.5, "use": "residential", "is_key": False,
                                                "year_built": 1998}),
    2: (box(100.730, 32.830, 100.7312, 32.8312), {"floors": 3, "height": 9.0, "use": "public", "is_key": True}),
    3: (L_SHAPE, {"floors": 1, "height": 4.0, "use": "agricultural", "is_key": False}),
    4: (box(100.670, 32.860, 100.6712, 32.8612), {"height": 12.0, "use": "religious", "name": "Assembly hall"}),
}
# id: (line, started_at, ended_at); keyed by where the track starts.
PATROLS = {
    1: ([(100.62, 32.81), (100.68, 32.85)], "2024-03-01T08:00:00Z", "2024-03-01T10:00:00Z"),
    2: ([(100.72, 32.81), (100.78, 32.86)], "2024-03-05T08:00:00Z", None),
    3: ([(100.69, 32.82), (100.75, 32.84)], "2024-03-03T08:00:00Z", "2024-03-03T12:00:00Z"),
    4: ([(100.71, 32.89), (100.79, 32.81)], "2024-03-02T08:00:00Z", "2024-03-04T12:00:00Z"),
}
EVERYTHING = Scope.everything()
WEST_ONLY = Scope.of([WEST])


def event_feature(fid: int | None, lon: float, lat: float, **props) -> Feature:
    """An event with the required properties filled in (overridable)."""
    base = {"title": "Reported by test", "type": "other", "reported_at": t("2024-04-01T00:00:00Z")}
    return Feature(fid, Point(lon, lat), {**base, **props})


@pytest.fixture
def store(empty_store):
    """A store holding the handmade county, loaded through bulk_load (events keyed by spatial join)."""
    s = empty_store
    s.bulk_load("townships", [
        Feature(1, MultiPolygon([box(*WEST_BOX)]), {"township_code": WEST, "name": "West", "kind": "township"}),
        Feature(2, MultiPolygon([box(*EAST_BOX)]), {"township_code": EAST, "name": "East", "kind": "town"}),
    ])
    s.bulk_load("grids", [
        Feature(i, MultiPolygon([box(x0, 32.80, x1, 32.90)]), {"grid_code": code, "township_code": town})
        for i, (code, (town, x0, x1)) in enumerate(GRIDS.items(), start=1)
    ])
    s.bulk_load("events", [
        Feature(fid, Point(lon, lat), {"type": typ, "status": status, "priority": prio, "reported_at": t(at),
                                       "title": title})
        for fid, (lon, lat, typ, status, prio, at, title) in EVENTS.items()
    ])
    s.bulk_load("buildings", [Feature(fid, geom, props) for fid, (geom, props) in BUILDINGS.items()])
    s.bulk_load("patrols", [
        Feature(fid, LineString(line), {"worker": f"worker-{fid}", "started_at": t(start),
                                        "ended_at": t(end) if end else None})
        for fid, (line, start, end) in PATROLS.items()
    ])
    return s


def ids(store, layer: str, scope: Scope = EVERYTHING, **query) -> list[int]:
    """Ids of every feature the query returns, in the store's order."""
    return [f.id for f in store.query(layer, FeatureQuery(limit=1000, **query), scope).features]


def count(store, layer: str) -> int:
    return store.extent(layer, EVERYTHING).count


def prop(name: str) -> dict:
    return {"property": name}


# -- spatial join on load ---------------------------------------------------------------------------------


def test_bulk_load_keys_every_event_to_its_township_and_grid(store):
    page = store.query("events", FeatureQuery(limit=100), EVERYTHING)
    assert page.number_matched == 12
    got = {f.id: (f.properties["township_code"], f.properties["grid_code"]) for f in page.features}
    assert got == {fid: (WEST if fid in WEST_EVENTS else EAST, EVENT_GRID[fid]) for fid in EVENTS}


def test_tracks_are_keyed_where_they_start_and_buildings_where_they_stand(store):
    patrols = {f.id: f.properties["township_code"] for f in store.query("patrols", FeatureQuery(), EVERYTHING).features}
    assert patrols == {1: WEST, 2: EAST, 3: WEST, 4: EAST}
    buildings = {f.id: f.properties["grid_code"] for f in store.query("buildings", FeatureQuery(), EVERYTHING).features}
    assert buildings == {1: G1, 2: G3, 3: G4, 4: G2}


def test_locate_answers_township_and_grid_or_none_outside(store):
    where = store.locate(100.62, 32.82)
    assert (where.township_code, where.grid_code) == (WEST, G1)
    where = store.locate(100.77, 32.85)
    assert (where.township_code, where.grid_code) == (EAST, G4)
    outside = store.locate(101.5, 33.5)
    assert (outside.township_code, outside.grid_code) == (None, None)


# -- bbox --------------------------------------------------------------------------------------------------


def test_bbox_returns_exactly_the_points_inside(store):
    assert sorted(ids(store, "events", bbox=WEST_BOX[:2] + (100.699, 32.90))) == WEST_EVENTS
    assert sorted(ids(store, "events", bbox=(100.60, 32.80, 100.66, 32.86))) == [1, 2, 11]
    assert ids(store, "events", bbox=(101.0, 33.0, 101.1, 33.1)) == []


def test_bbox_edges_are_exact_to_the_centimetre(store):
    store.bulk_load("temples", [
        Feature(1, Point(100.655, 32.85), {"name": "inside"}),
        Feature(2, Point(100.66, 32.85), {"name": "on the edge"}),
        Feature(3, Point(100.66 + 2e-6, 32.85), {"name": "20 cm outside"}),
    ])
    assert sorted(ids(store, "temples", bbox=(100.65, 32.84, 100.66, 32.86))) == [1, 2]


def test_bbox_on_lines_and_areas_tests_the_shape_not_its_box(store):
    assert ids(store, "buildings", bbox=NOTCH) == []
    assert ids(store, "patrols", bbox=(100.745, 32.845, 100.755, 32.855)) == [4]  # crosses, no vertex inside
    assert ids(store, "patrols", bbox=(100.775, 32.875, 100.795, 32.895)) == []  # only P4's box reaches here


# -- scope -------------------------------------------------------------------------------------------------


def test_a_township_scope_never_shows_the_other_township(store):
    page = store.query("events", FeatureQuery(limit=100), WEST_ONLY)
    assert page.number_matched == 6
    assert sorted(f.id for f in page.features) == WEST_EVENTS
    assert {f.properties["township_code"] for f in page.features} == {WEST}
    assert ids(store, "events", WEST_ONLY, bbox=EAST_BOX) == []
    assert store.query("events", FeatureQuery(limit=100), Scope.nothing()).number_matched == 0


def test_get_outside_the_scope_is_not_found_exactly_like_a_missing_feature(store):
    assert store.get("events", 5, EVERYTHING).id == 5
    with pytest.raises(NotFound) as outside:
        store.get("events", 5, WEST_ONLY)
    with pytest.raises(NotFound) as missing:
        store.get("events", 99, WEST_ONLY)
    assert str(outside.value).replace("5", "N") == str(missing.value).replace("99", "N")
    assert outside.value.parameter == missing.value.parameter


def test_extent_counts_and_bounds_only_what_the_scope_sees(store):
    west = store.extent("events", WEST_ONLY)
    assert west.count == 6
    assert west.bbox == pytest.approx((100.61, 32.82, 100.68, 32.895), abs=1e-4)
    assert west.interval == (t(EVENTS[9][5]), t(EVENTS[11][5]))
    nothing = store.extent("events", Scope.nothing())
    assert (nothing.count, nothing.bbox, nothing.interval) == (0, None, None)
    # A running patrol's interval counts up to its start.
    assert store.extent("patrols", EVERYTHING).interval == (t(PATROLS[1][1]), t(PATROLS[2][1]))


def test_a_filter_or_cannot_widen_the_scope(store):
    widen = {"op": "or", "args": [{"op": "=", "args": [prop("township_code"), EAST]}, True]}
    page = store.query("events", FeatureQuery(filter=widen, limit=100), WEST_ONLY)
    assert page.number_matched == 6 and sorted(f.id for f in page.features) == WEST_EVENTS
    assert ids(store, "events", WEST_ONLY, ids=(1, 5)) == [1]


def test_iter_features_streams_the_scope_in_id_order(store):
    got = [f.id for f in store.iter_features("events", Scope.of([EAST]), batch_size=4)]
    assert got == EAST_EVENTS


# -- time --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval, expected", [
    (("2024-03-02T00:00:00Z", "2024-03-04T11:00:00Z"), [2, 3, 4]),  # closed: an event at the end counts
    ((None, "2024-03-01T08:00:00Z"), [1, 9]),
    (("2024-03-11T08:00:00Z", None), [11, 12]),
    ((None, None), sorted(EVENTS)),
])
def test_datetime_intervals_on_instants(store, interval, expected):
    start, end = (t(v) if v else None for v in interval)
    assert sorted(ids(store, "events", datetime=(start, end))) == expected


@pytest.mark.parametrize("interval, expected", [
    (("2024-03-04T00:00:00Z", "2024-03-06T00:00:00Z"), [2, 4]),  # a running patrol is still going
    (("2024-03-10T00:00:00Z", None), [2]),
    ((None, "2024-03-01T09:00:00Z"), [1]),
])
def test_datetime_intervals_on_patrols_use_start_and_end(store, interval, expected):
    start, end = (t(v) if v else None for v in interval)
    assert sorted(ids(store, "patrols", datetime=(start, end))) == expected


def test_a_layer_without_time_refuses_a_datetime(store):
    with pytest.raises(BadInput) as err:
        store.query("buildings", FeatureQuery(datetime=(t("2024-01-01T00:00:00Z"), None)), EVERYTHING)
    assert err.value.parameter == "datetime"


# -- CQL2-JSON ---------------------------------------------------------------------------------------------

WEST_SQUARE = {"type": "Polygon", "coordinates": [[[100.60, 32.80], [100.66, 32.80], [100.66, 32.86],
                                                   [100.60, 32.86], [100.60, 32.80]]]}


@pytest.mark.parametrize("cql, expected", [
    ({"op": "=", "args": [prop("type"), "garbage"]}, [1, 5, 11]),
    ({"op": "<>", "args": [prop("status"), "reported"]}, [2, 3, 5, 7, 10, 12]),
    ({"op": "<", "args": [prop("reported_at"), {"timestamp": "2024-03-02T00:00:00Z"}]}, [1, 9]),
    ({"op": "like", "args": [prop("title"), "Garbage%"]}, [1, 5]),  # case-sensitive, as in PostgreSQL
    ({"op": "like", "args": [prop("title"), "%o_ the %"]}, [6, 8]),
    ({"op": "in", "args": [prop("priority"), ["high", "urgent"]]}, [1, 3, 6, 10]),
    ({"op": "between", "args": [prop("reported_at"), {"timestamp": "2024-03-02T00:00:00Z"},
                                {"timestamp": "2024-03-04T23:59:59Z"}]}, [2, 3, 4]),
    ({"op": "isNull", "args": [prop("priority")]}, [5, 8]),
    ({"op": "and", "args": [{"op": "=", "args": [prop("type"), "garbage"]},
                            {"op": "=", "args": [prop("township_code"), EAST]}]}, [5]),
    ({"op": "or", "args": [{"op": "=", "args": [prop("type"), "wildlife"]},
                           {"op": "=", "args": [prop("priority"), "urgent"]}]}, [3, 7, 10]),
    ({"op": "not", "args": [{"op": "=", "args": [prop("status"), "reported"]}]}, [2, 3, 5, 7, 10, 12]),
    ({"op": "s_intersects", "args": [prop("geometry"), WEST_SQUARE]}, [1, 2, 11]),
    ({"op": "s_within", "args": [prop("geometry"), WEST_SQUARE]}, [1, 2, 11]),
    ({"op": "s_disjoint", "args": [prop("geometry"), WEST_SQUARE]}, [3, 4, 5, 6, 7, 8, 9, 10, 12]),
    ({"op": "t_intersects", "args": [prop("reported_at"),
                                     {"interval": ["2024-03-05T00:00:00Z", "2024-03-07T23:59:59Z"]}]}, [5, 6, 7]),
    ({"op": "t_intersects", "args": [prop("reported_at"), {"interval": ["2024-03-11T00:00:00Z", ".."]}]}, [11, 12]),
    ({"op": "t_before", "args": [prop("reported_at"), {"timestamp": "2024-03-01T08:00:00Z"}]}, [9]),
    ({"op": "t_after", "args": [prop("reported_at"), {"timestamp": "2024-03-10T08:00:00Z"}]}, [11, 12]),
])
def test_cql2_json_filters(store, cql, expected):
    page = store.query("events", FeatureQuery(filter=cql, limit=100), EVERYTHING)
    assert sorted(f.id for f in page.features) == expected
    assert page.number_matched == len(expected)


def test_like_escapes_wildcards_with_a_backslash_as_cql2_says(store):
    store.insert("events", [event_feature(None, 100.61, 32.81, title="Fire 100% out"),
                            event_feature(None, 100.61, 32.81, title="Fire 100 out"),
                            event_feature(None, 100.61, 32.81, title="Fire 1000 out")], EVERYTHING)
    percent = {"op": "like", "args": [prop("title"), "Fire 100\\% out"]}
    assert [f.properties["title"] for f in store.query("events", FeatureQuery(filter=percent), EVERYTHING).features] \
        == ["Fire 100% out"]
    underscore = {"op": "like", "args": [prop("title"), "Fire 100\\_out"]}
    assert store.query("events", FeatureQuery(filter=underscore), EVERYTHING).number_matched == 0


def test_spatial_filters_on_areas_and_lines(store):
    west = {"type": "Polygon", "coordinates": [[[100.60, 32.80], [100.70, 32.80], [100.70, 32.90], [100.60, 32.90],
                                                [100.60, 32.80]]]}
    within = {"op": "s_within", "args": [prop("geometry"), west]}
    assert sorted(ids(store, "buildings", filter=within)) == [1, 4]
    notch = {"op": "s_intersects", "args": [prop("geometry"), {"bbox": list(NOTCH)}]}
    assert ids(store, "buildings", filter=notch) == []
    crossing = {"type": "LineString", "coordinates": [[100.761, 32.80], [100.761, 32.90]]}
    assert ids(store, "buildings", filter={"op": "s_intersects", "args": [prop("geometry"), crossing]}) == [3]
    assert sorted(ids(store, "patrols", filter={"op": "s_crosses", "args": [prop("geometry"), crossing]})) == [2, 4]


# Geodesic distances (WGS 84) from these points, measured independently with pyproj on densified shapes:
# events from P: 1 at 0 m, 2 at 3,456, 11 at 3,460, 3 at 6,449, then 8 km and more; from Q, buildings
# 4 at 2,915, 2 at 3,498, 3 at 5,725, 1 at 8,065 and patrols 1 at 1,872, 3 at 2,751, 4 at 3,576, 2 at 4,473.
# Every threshold below stays hundreds of metres away from a distance, so no method detail can flip one.
P = {"type": "Point", "coordinates": [100.62, 32.82]}
Q = {"type": "Point", "coordinates": [100.70, 32.85]}


@pytest.mark.parametrize("layer, args, expected", [
    ("events", [P, 0, "meters"], [1]),
    ("events", [P, 3000, "meters"], [1]),
    ("events", [P, 5000, {"property": "meters"}], [1, 2, 11]),  # cql2's reading of a bare unit word
    ("events", [P, 7, "kilometers"], [1, 2, 3, 11]),
    ("events", [P, 5000], [1, 2, 11]),  # metres when no unit is given
    ("buildings", [Q, 3200, "meters"], [4]),
    ("buildings", [Q, 4500, "meters"], [2, 4]),
    ("patrols", [Q, 2300, "meters"], [1]),
    ("patrols", [Q, 3200, "meters"], [1, 3]),
    ("patrols", [Q, 4000, "meters"], [1, 3, 4]),
])
def test_s_dwithin_is_a_geodesic_distance_in_metres(store, layer, args, expected):
    cql = {"op": "s_dwithin", "args": [prop("geometry"), *args]}
    assert sorted(ids(store, layer, filter=cql)) == expected


def test_s_dwithin_from_cql2_text_stays_inside_the_scope(store):
    cql = parse_filter("S_DWITHIN(geometry, POINT(100.70 32.85), 4.3, kilometers)")  # 3-6 within 3.9 km
    assert sorted(ids(store, "events", filter=cql)) == [3, 4, 5, 6]
    assert sorted(ids(store, "events", WEST_ONLY, filter=cql)) == [3, 4]


@pytest.mark.parametrize("args", [[P, -1, "meters"], [P, 10, "furlongs"], [P, "far", "meters"], [P],
                                  [P, 2_000, "kilometers"]])
def test_a_bad_s_dwithin_is_bad_input_naming_the_filter(store, args):
    with pytest.raises(BadInput) as err:
        ids(store, "events", filter={"op": "s_dwithin", "args": [prop("geometry"), *args]})
    assert err.value.parameter == "filter"


def test_typed_filters_on_numbers_and_booleans(store):
    assert sorted(ids(store, "buildings", filter={"op": ">", "args": [prop("height"), 8]})) == [2, 4]
    assert ids(store, "buildings", filter={"op": "=", "args": [prop("is_key"), True]}) == [2]


def test_a_filter_on_an_unknown_property_is_bad_input(store):
    with pytest.raises(BadInput) as err:
        store.query("events", FeatureQuery(filter={"op": "=", "args": [prop("colour"), "red"]}), EVERYTHING)
    assert "colour" in str(err.value)


# -- order and pages ---------------------------------------------------------------------------------------


def test_sorting_puts_nulls_last_ascending_and_first_descending(store):
    assert ids(store, "events", sortby=(("priority", True),)) == [1, 6, 2, 7, 11, 4, 9, 12, 3, 10, 5, 8]
    assert ids(store, "events", sortby=(("priority", False),)) == [5, 8, 3, 10, 4, 9, 12, 2, 7, 11, 1, 6]


def test_text_sorts_bytewise_so_both_stores_agree(store):
    got = ids(store, "events", sortby=(("title", True),))
    assert got == [10, 9, 6, 5, 1, 7, 12, 11, 2, 3, 8, 4]  # capitals before lower case


def test_pages_are_stable_and_number_matched_exact(store):
    order = [9, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
    seen = []
    for offset in (0, 5, 10):
        page = store.query("events", FeatureQuery(sortby=(("reported_at", True),), limit=5, offset=offset),
                           EVERYTHING)
        assert page.number_matched == 12
        seen += [f.id for f in page.features]
    assert seen == order
    beyond = store.query("events", FeatureQuery(limit=5, offset=50), EVERYTHING)
    assert (beyond.features, beyond.number_matched) == ([], 12)
    counted = store.query("events", FeatureQuery(limit=0), WEST_ONLY)
    assert (counted.features, counted.number_matched) == ([], 6)


def test_property_selection_returns_only_those_properties(store):
    page = store.query("events", FeatureQuery(properties=("title", "status"), with_geometry=False, limit=3),
                       EVERYTHING)
    assert [set(f.properties) for f in page.features] == [{"title", "status"}] * 3
    assert all(f.geometry is None for f in page.features)


# -- values come back as they went in ---------------------------------------------------------------------


def test_a_feature_reads_back_with_every_property_typed(store):
    e2 = store.get("events", 2, EVERYTHING)
    assert e2.geometry.equals(Point(100.63, 32.85))
    assert set(e2.properties) == set(store.catalog.get("events").property_names)
    assert e2.properties["reported_at"] == t("2024-03-02T09:30:00.250Z")
    assert e2.properties["reported_at"].utcoffset() == timedelta(0)
    assert e2.properties["deadline"] is None
    b1 = store.get("buildings", 1, EVERYTHING)
    assert (b1.properties["floors"], b1.properties["height"], b1.properties["is_key"]) == (2, 6.5, False)
    assert type(b1.properties["floors"]) is int and type(b1.properties["is_key"]) is bool


def test_datetimes_and_dates_round_trip_as_aware_utc(store):
    beijing = timezone(timedelta(hours=8))
    reported = datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=beijing)
    stored = store.insert("events", [event_feature(None, 100.62, 32.84, reported_at=reported,
                                                   deadline="2024-05-02T00:00:00Z")], EVERYTHING)[0]
    back = store.get("events", stored.id, EVERYTHING)
    assert back.properties["reported_at"] == reported
    assert back.properties["reported_at"].tzinfo is not None
    assert back.properties["reported_at"].utcoffset() == timedelta(0)
    assert back.properties["deadline"] == datetime(2024, 5, 2, tzinfo=UTC)
    assert back == stored and back.etag() == stored.etag()
    site = store.insert("monitoring_sites", [Feature(None, Point(100.73, 32.83), {
        "site_code": "S-1", "kind": "air", "installed_on": "2023-06-01"})], EVERYTHING)[0]
    assert store.get("monitoring_sites", site.id, EVERYTHING).properties["installed_on"] == date(2023, 6, 1)


# -- writes ------------------------------------------------------------------------------------------------


def test_insert_fills_township_and_grid_by_spatial_join(store):
    stored = store.insert("events", [event_feature(None, 100.66, 32.87, township_code=EAST, grid_code=G4)],
                          EVERYTHING)[0]
    assert stored.id not in EVENTS  # given ids were kept on load; new ones do not collide
    assert (stored.properties["township_code"], stored.properties["grid_code"]) == (WEST, G2)
    assert store.get("events", stored.id, WEST_ONLY).properties["grid_code"] == G2
    outside = store.insert("events", [event_feature(None, 101.5, 33.5)], EVERYTHING)[0]
    assert outside.properties["township_code"] is None and outside.properties["grid_code"] is None


def test_insert_outside_the_callers_townships_is_forbidden_and_writes_nothing(store):
    with pytest.raises(Forbidden):
        store.insert("events", [event_feature(None, 100.61, 32.81), event_feature(None, 100.75, 32.85)], WEST_ONLY)
    assert count(store, "events") == 12
    assert store.insert("events", [event_feature(None, 100.61, 32.81)], WEST_ONLY)[0].properties[
        "township_code"] == WEST


BOWTIE = Polygon([(100.61, 32.81), (100.62, 32.82), (100.62, 32.81), (100.61, 32.82)])


@pytest.mark.parametrize("layer, feature, field", [
    ("buildings", Feature(None, BOWTIE, {"floors": 2}), "geometry"),
    ("buildings", Feature(None, box(100.61, 32.81, 100.611, 32.811), {"floors": "three"}), "floors"),
    ("events", event_feature(None, 100.62, 32.82, colour="red"), "colour"),
    ("events", Feature(None, Point(100.62, 32.82), {"type": "garbage", "reported_at": "2024-03-01T00:00:00Z"}),
     "title"),
    ("events", event_feature(None, 100.62, 32.82, type="meteor"), "type"),
    ("events", event_feature(None, 200.0, 32.82), "geometry"),
    ("events", Feature(None, LineString([(100.61, 32.81), (100.62, 32.82)]), {"title": "x", "type": "other",
                                                                            "reported_at": "2024-03-01"}), "geometry"),
])
def test_bad_input_names_the_field_and_writes_nothing(store, layer, feature, field):
    before = count(store, layer)
    with pytest.raises(BadInput) as err:
        store.insert(layer, [feature], EVERYTHING)
    assert err.value.parameter == field
    assert field in str(err.value) or field == "geometry"
    assert count(store, layer) == before


def test_a_batch_whose_third_feature_is_bad_writes_nothing(store):
    batch = [event_feature(None, 100.61, 32.81), event_feature(None, 100.62, 32.81),
             event_feature(None, 100.63, 32.81, reported_at="yesterday")]
    with pytest.raises(BadInput) as err:
        store.insert("events", batch, EVERYTHING)
    assert err.value.parameter == "reported_at" and re.search(r"\b2\b", str(err.value))
    assert count(store, "events") == 12
    with pytest.raises(BadInput) as err:
        store.bulk_load("events", batch)
    assert err.value.parameter == "reported_at" and re.search(r"\b2\b", str(err.value))
    assert count(store, "events") == 12


def test_bulk_load_keeps_given_ids_and_replace_empties_first(store):
    assert store.bulk_load("temples", [Feature(40, Point(100.61, 32.81), {"name": "Forty"}),
                                       Feature(41, Point(100.71, 32.81), {"name": "Forty-one"})]) == 2
    assert ids(store, "temples") == [40, 41]
    assert store.get("temples", 41, EVERYTHING).properties["township_code"] == EAST
    assert store.bulk_load("temples", [Feature(7, Point(100.61, 32.81), {"name": "Seven"})], replace=True) == 1
    assert ids(store, "temples") == [7]


def test_bulk_load_of_an_id_already_taken_is_a_conflict_and_writes_nothing(store):
    with pytest.raises(Conflict):
        store.bulk_load("events", [event_feature(None, 100.61, 32.81), event_feature(5, 100.62, 32.81)])
    assert count(store, "events") == 12
    # The spatial index still follows every write after a failed load.
    (new,) = store.insert("events", [event_feature(None, 100.611, 32.811)], EVERYTHING)
    assert ids(store, "events", bbox=(100.61, 32.81, 100.612, 32.812)) == [new.id]


def test_bulk_load_keeps_codes_a_feature_carries(store):
    store.bulk_load("pois", [Feature(None, Point(100.61, 32.81), {"name": "Hall", "category": "service_hall",
                                                                   "township_code": EAST, "grid_code": G4})])
    (poi,) = store.query("pois", FeatureQuery(), EVERYTHING).features
    assert (poi.properties["township_code"], poi.properties["grid_code"]) == (EAST, G4)


def test_update_with_the_current_etag_patches_and_a_stale_one_fails(store):
    current = store.get("events", 1, EVERYTHING)
    updated = store.update("events", 1, Feature(None, None, {"status": "accepted"}), EVERYTHING, partial=True,
                           if_match=current.etag())
    assert updated.properties["status"] == "accepted"
    assert updated.properties["title"] == EVENTS[1][6] and updated.geometry.equals(current.geometry)
    assert updated.etag() != current.etag() and store.get("events", 1, EVERYTHING).etag() == updated.etag()
    with pytest.raises(PreconditionFailed):
        store.update("events", 1, Feature(None, None, {"status": "closed"}), EVERYTHING, partial=True,
                     if_match=current.etag())
    assert store.get("events", 1, EVERYTHING).properties["status"] == "accepted"


def test_update_moves_a_feature_and_rekeys_it(store):
    moved = store.update("events", 1, event_feature(None, 100.77, 32.85, title="Moved"), EVERYTHING)
    assert (moved.properties["township_code"], moved.properties["grid_code"]) == (EAST, G4)
    assert moved.properties["status"] is None  # a full replace drops what it does not carry
    assert 1 in ids(store, "events", bbox=(100.76, 32.84, 100.78, 32.86))
    assert 1 not in ids(store, "events", bbox=(100.61, 32.81, 100.63, 32.83))


def test_update_respects_the_scope(store):
    with pytest.raises(NotFound):  # cannot see it, so cannot touch it
        store.update("events", 5, Feature(None, None, {"status": "closed"}), WEST_ONLY, partial=True)
    with pytest.raises(Forbidden):  # may not move it out of the townships it may edit
        store.update("events", 1, Feature(None, Point(100.77, 32.85), {}), WEST_ONLY, partial=True)
    assert store.get("events", 1, EVERYTHING).properties["township_code"] == WEST
    assert store.get("events", 5, EVERYTHING).properties["status"] == "in_progress"


def test_update_with_bad_input_changes_nothing(store):
    before = store.get("events", 1, EVERYTHING)
    with pytest.raises(BadInput) as err:
        store.update("events", 1, Feature(None, Point(100.62, 32.82), {"title": "no type"}), EVERYTHING)
    assert err.value.parameter in ("type", "reported_at")
    assert store.get("events", 1, EVERYTHING) == before


def test_concurrent_updates_with_one_etag_let_exactly_one_win(store):
    etag = store.get("events", 1, EVERYTHING).etag()
    outcomes: list[str] = []

    def worker(i: int) -> None:
        try:
            store.update("events", 1, Feature(None, None, {"assignee": f"w{i}"}), EVERYTHING, partial=True,
                         if_match=etag)
            outcomes.append("ok")
        except PreconditionFailed:
            outcomes.append("stale")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["ok"] + ["stale"] * 5
    assert store.get("events", 1, EVERYTHING).properties["assignee"].startswith("w")


def test_delete_removes_and_respects_scope_and_etag(store):
    store.delete("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.get("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.delete("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.delete("events", 5, WEST_ONLY)
    with pytest.raises(PreconditionFailed):
        store.delete("events", 5, EVERYTHING, if_match='"stale"')
    assert count(store, "events") == 11 and store.get("events", 5, EVERYTHING).id == 5
    assert 3 not in ids(store, "events", bbox=WEST_BOX)


# -- accounts and health -----------------------------------------------------------------------------------


def test_users_and_api_keys_round_trip(store):
    leader = UserRecord(f"leader-{WEST}", "leader", "pbkdf2$x", "Leader West", (WEST,), (G1, G2), None,
                        {"phone": "0975-123", "languages": ["bo", "zh"]})
    store.put_users([leader, UserRecord("dept-ecology", "department", "pbkdf2$y", department="ecology")])
    assert store.get_user(f"leader-{WEST}") == leader
    assert store.get_user("dept-ecology").department == "ecology"
    assert store.get_user("nobody") is None
    store.put_users([UserRecord(f"leader-{WEST}", "leader", "pbkdf2$z", "Leader West", (WEST, EAST))])
    assert store.get_user(f"leader-{WEST}").townships == (WEST, EAST)
    key = ApiKeyRecord("sha256:abc", f"leader-{WEST}", "field tablet")
    store.put_api_key(key)
    assert store.get_api_key("sha256:abc") == key
    assert store.get_api_key("sha256:nope") is None
    with pytest.raises(NotFound):
        store.put_api_key(ApiKeyRecord("sha256:def", "nobody"))


def test_health_names_the_store(store):
    assert store.health()["store"] == store.kind


def test_initialize_twice_keeps_the_data(store):
    store.initialize()
    assert count(store, "events") == 12
    assert shapely.equals(store.get("buildings", 3, EVERYTHING).geometry, L_SHAPE)
