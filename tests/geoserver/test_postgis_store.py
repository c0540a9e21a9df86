"""What only the PostGIS store has: its connection errors, versions, COPY loads and one-statement pages.

The rules every store keeps (pages, keying, moves, loads, concurrent writes) are in the contract suite,
test_store_contract.py and test_store_writes.py, run against both stores.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from shapely.geometry import Point, box

from geoserver.access import Scope
from geoserver.errors import StoreUnavailable
from geoserver.features import Feature, FeatureQuery
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
             "speed": float(rng.normal()) if i % 7 else None, "accuracy": float(xs[i] * 1e-7),
             "heading": float(i % 360), "altitude": None, "battery": float(i % 100),
             "point_key": f"id:{i}" if i % 3 else None},
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
