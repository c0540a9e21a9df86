"""The Store contract: what every store must answer, run against both (embedded GeoPackage and PostGIS).

A handmade county: townships 632626100 (west) and 632626200 (east) side by side, two grids in each,
a dozen events, four buildings, four patrols and three temples with known properties and places.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.cql import parse_filter
from geoserver.errors import BadInput, NotFound
from geoserver.features import Feature, FeatureQuery
from tests.geoserver.contract_county import (
    EAST,
    EAST_BOX,
    EAST_EVENTS,
    EVENT_GRID,
    EVENTS,
    EVERYTHING,
    G1,
    G2,
    G3,
    G4,
    NOTCH,
    PATROLS,
    WEST,
    WEST_BOX,
    WEST_EVENTS,
    WEST_ONLY,
    event_feature,
    ids,
    prop,
    t,
)

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


BY_TIME = [9, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]  # the events in reported_at order


def test_pages_are_stable_and_number_matched_exact(store):
    seen = []
    for offset in (0, 5, 10):
        page = store.query("events", FeatureQuery(sortby=(("reported_at", True),), limit=5, offset=offset),
                           EVERYTHING)
        assert page.number_matched == 12
        seen += [f.id for f in page.features]
    assert seen == BY_TIME
    beyond = store.query("events", FeatureQuery(limit=5, offset=50), EVERYTHING)
    assert (beyond.features, beyond.number_matched) == ([], 12)
    counted = store.query("events", FeatureQuery(limit=0), WEST_ONLY)
    assert (counted.features, counted.number_matched) == ([], 6)


@pytest.mark.parametrize(("limit", "offset"), [
    (5, 0), (5, 10), (5, 12), (5, 100), (0, 0), (0, 5), (12, 0), (13, 0), (4, 9), (1, 11),
])
def test_every_page_shape_returns_its_slice_and_the_exact_count(store, limit, offset):
    # Short pages, empty pages past the end, limit 0 and a page exactly as long as the rest: a store may
    # count from the page itself when it is short, so each shape must still give the true number.
    page = store.query("events", FeatureQuery(limit=limit, offset=offset, sortby=(("reported_at", True),)),
                       EVERYTHING)
    assert page.number_matched == 12
    assert [f.id for f in page.features] == BY_TIME[offset:offset + limit]
    west = store.query("events", FeatureQuery(limit=limit, offset=offset, sortby=(("reported_at", True),)),
                       WEST_ONLY)
    assert west.number_matched == 6
    assert [f.id for f in west.features] == [i for i in BY_TIME if i in WEST_EVENTS][offset:offset + limit]


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
