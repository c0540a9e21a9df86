"""Store.columns on both stores: every matching point as arrays, in the query's order (ties by id), values
exact, NULLs kept where they are, the scope applied; whatever path the store takes to read them fast."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery
from tests.geoserver.contract_county import EAST, WEST, t

START = t("2024-03-01T08:00:00Z")


def _fixes() -> list[Feature]:
    """60 fixes of patrol 1 in the west township (two at one instant, some without accuracy) and 20 of
    patrol 2 in the east, stored in shuffled order."""
    out = []
    for i in range(60):
        at = START + timedelta(seconds=10 * min(i, 30) + 10 * max(i - 31, 0), milliseconds=7 * i % 1000)
        out.append(Feature(None, Point(round(100.61 + i * 1e-4, 7), round(32.81 + i * 3e-5, 7)), {
            "patrol_id": 1, "worker": "worker-a", "recorded_at": at, "point_key": f"a{i}",
            "accuracy": None if i % 7 == 0 else 3.0 + i}))
    for i in range(20):
        out.append(Feature(None, Point(100.72 + i * 1e-4, 32.85), {
            "patrol_id": 2, "worker": "worker-b", "recorded_at": START + timedelta(seconds=15 * i),
            "point_key": f"b{i}", "accuracy": 5.0}))
    random.Random(4).shuffle(out)
    return out


def _load(store) -> None:
    store.insert("track_points", _fixes(), Scope.everything())


def _expected(store, query: FeatureQuery, scope: Scope) -> list[Feature]:
    page = store.query("track_points", FeatureQuery(filter=query.filter, datetime=query.datetime,
                                                    sortby=query.sortby, limit=10_000), scope)
    return page.features


def test_columns_come_in_time_order_with_exact_values_and_nulls_in_place(store):
    _load(store)
    query = FeatureQuery(filter={"op": "=", "args": [{"property": "patrol_id"}, 1]}, sortby=(("recorded_at", True),))
    cols = store.columns("track_points", query, Scope.everything(), ("recorded_at", "accuracy", "point_key"))
    want = _expected(store, query, Scope.everything())
    assert len(cols) == 60 and cols.ids.tolist() == [f.id for f in want]
    assert cols.lon.tolist() == [f.geometry.x for f in want] and cols.lat.tolist() == [f.geometry.y for f in want]
    assert np.round(cols.values["recorded_at"] * 1000).astype(np.int64).tolist() == [
        round(f.properties["recorded_at"].timestamp() * 1000) for f in want]
    accuracy = [None if v is None or v != v else float(v) for v in list(cols.values["accuracy"])]
    assert accuracy == [f.properties["accuracy"] for f in want]
    assert accuracy.count(None) == 9
    assert list(cols.values["point_key"]) == [f.properties["point_key"] for f in want]


def test_any_other_order_and_no_order_match_the_feature_query(store):
    _load(store)
    for sortby in ((("point_key", False),), (("accuracy", False), ("recorded_at", True)), ()):
        query = FeatureQuery(sortby=sortby)
        cols = store.columns("track_points", query, Scope.everything(), ("point_key",))
        assert cols.ids.tolist() == [f.id for f in _expected(store, query, Scope.everything())], sortby


def test_the_scope_and_the_time_window_apply_inside_the_read(store):
    _load(store)
    window = FeatureQuery(datetime=(START, START + timedelta(seconds=100)), sortby=(("recorded_at", True),))
    east = store.columns("track_points", window, Scope.of([EAST]), ("worker", "recorded_at"))
    assert set(east.values["worker"]) == {"worker-b"} and len(east) == 7
    west = store.columns("track_points", window, Scope.of([WEST]), ("worker",))
    assert set(west.values["worker"]) == {"worker-a"}
    assert len(store.columns("track_points", window, Scope.nothing(), ("worker",))) == 0
    nothing = store.columns("track_points", FeatureQuery(filter={"op": "=", "args": [{"property": "patrol_id"}, 9]}),
                            Scope.everything(), ("recorded_at", "worker"))
    assert len(nothing) == 0 and len(nothing.values["recorded_at"]) == 0 and list(nothing.values["worker"]) == []
