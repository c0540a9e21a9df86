"""What only the PostGIS store has: its pool, row locks, COPY loads and one-statement pages."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
import shapely
from shapely.geometry import Point, box

from geoserver.access import Scope
from geoserver.errors import BadInput, Conflict, Forbidden, PreconditionFailed, StoreUnavailable
from geoserver.features import Feature, FeatureQuery
from geoserver.store import postgis_load
from geoserver.store.postgis import PostGISStore
from geoserver.store.postgis_sql import DIALECT, LayerSQL
from geoserver.store.where import build_where
from tests.conftest import make_empty_store

EVERYTHING = Scope.everything()
WEST, EAST = "632626100", "632626200"


@pytest.fixture
def pg(catalog, tmp_path, fresh_postgis_url):
    """An empty PostGIS store with two townships side by side, each one grid."""
    store = make_empty_store("postgis", catalog, tmp_path, fresh_postgis_url)
    store.bulk_load("townships", [Feature(1, box(100.0, 32.0, 101.0, 33.0), {"township_code": WEST}),
                                  Feature(2, box(101.0, 32.0, 102.0, 33.0), {"township_code": EAST})])
    store.bulk_load("grids", [Feature(1, box(100.0, 32.0, 101.0, 33.0), {"grid_code": WEST + "001",
                                                                          "township_code": WEST}),
                              Feature(2, box(101.0, 32.0, 102.0, 33.0), {"grid_code": EAST + "001",
                                                                          "township_code": EAST})])
    yield store
    store.close()


def event(x: float, y: float, title: str = "Pothole", **props) -> Feature:
    return Feature(None, Point(x, y), {"title": title, "type": "road_damage",
                                       "reported_at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC), **props})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_reported_quickly_naming_host_and_database(catalog):
    port = closed_port()
    store = PostGISStore(f"postgresql://postgres@127.0.0.1:{port}/county", catalog)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        store.open()
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{port}/county" in str(err.value)
    assert "refused" in str(err.value).lower()


def test_health_reports_postgis_and_schema_versions(pg):
    report = pg.health()
    assert report["store"] == "postgis"
    assert report["postgis_version"].startswith("3.")
    assert report["schema_version"] >= 1


def race(store, fid: int, etag: str, names: list[str]) -> dict[str, str]:
    """Patch one event from several threads at once, all with the same If-Match; who won, who got 412."""
    barrier = threading.Barrier(len(names))
    outcomes: dict[str, str] = {}

    def write(name: str) -> None:
        barrier.wait()
        try:
            store.update("events", fid, Feature(None, None, {"assignee": name}), EVERYTHING,
                         partial=True, if_match=etag)
            outcomes[name] = "won"
        except PreconditionFailed:
            outcomes[name] = "412"

    threads = [threading.Thread(target=write, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_writers_with_the_same_etag_one_wins_the_other_gets_412(pg):
    fid = pg.insert("events", [event(100.5, 32.5)], EVERYTHING)[0].id
    for round_ in range(8):
        etag = pg.get("events", fid, EVERYTHING).etag()
        outcomes = race(pg, fid, etag, [f"worker-{round_}-a", f"worker-{round_}-b"])
        assert sorted(outcomes.values()) == ["412", "won"], outcomes
        winner = next(name for name, outcome in outcomes.items() if outcome == "won")
        assert pg.get("events", fid, EVERYTHING).properties["assignee"] == winner


def test_copy_loads_50000_points_and_gives_back_identical_values(pg):
    rng = np.random.default_rng(7)
    n = 50_000
    xs, ys = rng.uniform(100.0, 102.0, n), rng.uniform(32.0, 33.0, n)
    start = datetime(2026, 4, 1, tzinfo=UTC)
    sent = [
        Feature(
            10 * i + 3,
            Point(xs[i], ys[i]),
            {"patrol_id": i // 500, "worker": f"网格员-{i % 37}\t'\"\\ \n",
             "recorded_at": start + timedelta(seconds=i, milliseconds=i % 1000),  # stores keep ms
             "speed": float(rng.normal()) if i % 7 else None, "accuracy": float(xs[i] * 1e-7)},
        )
        for i in range(n)
    ]
    assert pg.bulk_load("track_points", iter(sent)) == n
    back = list(pg.iter_features("track_points", EVERYTHING, batch_size=7000))
    assert [f.id for f in back] == [f.id for f in sent]
    for s, b in zip(sent, back, strict=True):
        assert (b.geometry.x, b.geometry.y) == (s.geometry.x, s.geometry.y)
        keyed = {**s.properties, "township_code": WEST if s.geometry.x < 101 else EAST,
                 "grid_code": (WEST if s.geometry.x < 101 else EAST) + "001"}
        assert b.properties == keyed
        assert b.properties["recorded_at"].tzinfo is UTC
    # Ids given explicitly moved the sequence: the next insert gets a fresh id.
    new = pg.insert("track_points", [Feature(None, Point(100.5, 32.5), sent[0].properties)], EVERYTHING)
    assert new[0].id == 10 * (n - 1) + 3 + 1


def test_a_streamed_load_in_chunks_keeps_given_ids_and_numbers_the_rest_after_them(pg, monkeypatch):
    monkeypatch.setattr(postgis_load, "CHUNK_ROWS", 1000)
    props = event(0, 0).properties

    def stream():  # ids 1..2500 given, then none: the third chunk mixes both
        for i in range(5500):
            yield Feature(i + 1 if i < 2500 else None, Point(100.5, 32.5), {**props, "title": f"e{i}"})

    assert pg.bulk_load("events", stream()) == 5500
    got = {f.properties["title"]: f.id for f in pg.iter_features("events", EVERYTHING)}
    assert all(got[f"e{i}"] == i + 1 for i in range(2500))
    assert len(set(got.values())) == 5500 and min(got[f"e{i}"] for i in range(2500, 5500)) > 2500


def test_a_bad_row_deep_in_a_stream_is_named_and_nothing_is_written(pg, monkeypatch):
    monkeypatch.setattr(postgis_load, "CHUNK_ROWS", 1000)
    good = [event(100.5, 32.5, title=f"e{i}") for i in range(4321)]
    bad = event(100.5, 32.5, priority="whenever")
    with pytest.raises(BadInput) as err:
        pg.bulk_load("events", [*good, bad, *good])
    assert err.value.parameter == "priority"
    assert str(err.value).startswith("row 4321:") and "whenever" in str(err.value)
    assert pg.extent("events", EVERYTHING).count == 0


def test_a_duplicate_id_in_a_load_is_a_conflict_and_nothing_is_written(pg):
    pg.bulk_load("events", [Feature(5, Point(100.5, 32.5), event(0, 0).properties)])
    with pytest.raises(Conflict, match="5"):
        pg.bulk_load("events", [Feature(4, Point(100.5, 32.5), event(0, 0).properties),
                                Feature(5, Point(100.5, 32.5), event(0, 0).properties)])
    assert [f.id for f in pg.iter_features("events", EVERYTHING)] == [5]


def test_replace_empties_the_layer_in_the_same_transaction(pg):
    pg.bulk_load("events", [event(100.5, 32.5, title=f"old{i}") for i in range(10)])
    with pytest.raises(BadInput):
        pg.bulk_load("events", [event(100.5, 32.5), event(100.5, 32.5, type="volcano")], replace=True)
    assert pg.extent("events", EVERYTHING).count == 10  # the failed replace left the old layer
    assert pg.bulk_load("events", [event(101.5, 32.5, title="new")], replace=True) == 1
    page = pg.query("events", FeatureQuery(), EVERYTHING)
    assert [f.properties["title"] for f in page.features] == ["new"]
    assert page.features[0].id == 1  # identity restarted
    assert page.features[0].properties["township_code"] == EAST


@pytest.mark.parametrize(("limit", "offset", "returned"), [
    (10, 0, 10), (7, 21, 2), (7, 23, 0), (7, 100, 0), (0, 0, 0), (0, 5, 0), (23, 0, 23), (24, 0, 23), (5, 20, 3),
])
def test_number_matched_is_exact_for_every_page_shape(pg, limit, offset, returned):
    pg.bulk_load("events", [event(100.5, 32.5, title=f"e{i:02d}") for i in range(23)])
    page = pg.query("events", FeatureQuery(limit=limit, offset=offset, sortby=(("title", False),)), EVERYTHING)
    assert page.number_matched == 23
    assert len(page.features) == returned
    titles = [f.properties["title"] for f in page.features]
    assert titles == [f"e{i:02d}" for i in range(22 - offset, 22 - offset - returned, -1)]


def test_the_count_is_not_run_when_the_page_tells_it(pg, fresh_postgis_url):
    pg.bulk_load("events", [event(100.5, 32.5) for _ in range(3)])
    layer = pg.catalog.get("events")
    short, full = FeatureQuery(limit=10), FeatureQuery(limit=2)
    plans = []
    for query in (short, full):
        sql, params = LayerSQL(layer).page(query, build_where(DIALECT, layer, query, EVERYTHING),
                                           layer.property_names)
        with psycopg.connect(fresh_postgis_url) as conn:
            plans.append("\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)))
    assert "never executed" in plans[0]  # 3 rows on a page of 10: that is the count
    assert "never executed" not in plans[1]  # a full page: count the rest


def test_moving_a_feature_re_keys_it_and_scope_guards_the_destination(pg):
    west_only = Scope.of([WEST])
    f = pg.insert("events", [event(100.5, 32.5)], west_only)[0]
    assert f.properties["township_code"] == WEST and f.properties["grid_code"] == WEST + "001"
    with pytest.raises(Forbidden):
        pg.update("events", f.id, Feature(None, Point(101.5, 32.5), {}), west_only, partial=True)
    assert pg.get("events", f.id, EVERYTHING).geometry.equals(Point(100.5, 32.5))
    moved = pg.update("events", f.id, Feature(None, Point(101.5, 32.5), {}), EVERYTHING, partial=True)
    assert moved.properties["township_code"] == EAST


def test_polygons_and_lines_are_located_by_an_inner_point_and_the_first_vertex(pg):
    # An L-shaped building, mostly east of 101°E by area, whose centroid (101.007, 32.207) lies outside it in
    # the east; its representative point (100.91, 32.31) is inside it, in the west.
    ell = shapely.Polygon([(100.90, 32.10), (101.30, 32.10), (101.30, 32.12), (100.92, 32.12), (100.92, 32.50),
                           (100.90, 32.50)])
    assert shapely.centroid(ell).x > 101 and not ell.contains(shapely.centroid(ell))
    building = pg.insert("buildings", [Feature(None, ell, {"floors": 2})], EVERYTHING)[0]
    assert building.properties["township_code"] == WEST
    assert pg.bulk_load("buildings", [Feature(None, ell, {"floors": 3})]) == 1
    page = pg.query("buildings", FeatureQuery(sortby=(("floors", True),)), EVERYTHING)
    assert [f.properties["township_code"] for f in page.features] == [WEST, WEST]  # the COPY path agrees
    line = shapely.LineString([(101.9, 32.5), (100.1, 32.5)])
    patrol = pg.insert("patrols", [Feature(None, line, {"worker": "w", "started_at": "2026-05-01T08:00:00Z"})],
                       EVERYTHING)[0]
    assert patrol.properties["township_code"] == EAST


def test_a_point_on_a_shared_boundary_goes_to_the_smaller_code_everywhere(pg):
    assert pg.locate(101.0, 32.5).township_code == WEST
    loaded = pg.bulk_load("events", [event(101.0, 32.5)])
    inserted = pg.insert("events", [event(101.0, 32.5)], EVERYTHING)[0]
    assert loaded == 1 and inserted.properties["township_code"] == WEST
    assert {f.properties["township_code"] for f in pg.iter_features("events", EVERYTHING)} == {WEST}
