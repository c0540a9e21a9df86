"""Heat maps of 1,000,000 events on PostGIS: GET /heatmap at resolution 8 and the `heatmap` tiles, beside the raw
SQL that bounds them.

Not a test. `--load` makes a bench database of its own (default `onemap_heatmap_bench` on the local server):
the sample county's townships, villages and grids (from data/sample/county.gpkg) and N synthetic events bulk
loaded through the store (binary COPY; the store computes each event's H3 cells as it writes): 70 % scattered
around the villages (about a kilometre), 30 % anywhere in the townships, two years of report times, every type,
status and priority. Then, for the operator (every township) and a township leader, the median of `--runs`:

- `layers.heatmap.heatmap` (the store's GROUP BY, the cells to hexagons) and GET /heatmap in process (the same
  plus the GeoJSON answer);
- the raw SQL floor: the same GROUP BY typed by hand, and the path not taken (reading every point and placing
  it with h3-py);
- heatmap tiles, uncached, at the county (z9, z10: resolution 7), township (z11, z12: 8) and grid (z14: 10)
  zooms over the busiest village.

    .venv/bin/python bench/heatmap/run.py --load [--events 1000000]
    .venv/bin/python bench/heatmap/run.py [--runs 7]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h3.api.basic_int as h3int
import numpy as np
import psycopg
import shapely
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from geoserver.access import Principal, Scope  # noqa: E402
from geoserver.features import Feature, FeatureQuery  # noqa: E402
from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from layers.event_types import DEFAULTS, seed_defaults  # noqa: E402
from layers.events import EVENT_SOURCES, EVENT_STATUSES, PRIORITIES  # noqa: E402
from layers.heatmap import heatmap  # noqa: E402
from tiles.cache import TileCache  # noqa: E402
from tiles.heatmap import reach_degrees, resolution_at  # noqa: E402
from tiles.service import TileService  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
SAMPLE = ROOT / "data" / "sample" / "county.gpkg"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _database(server: str, name: str) -> str:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def _events(areas: dict[str, list], n: int, seed: int = 42) -> Iterator[Feature]:
    """n synthetic events inside the townships: most around villages, the rest anywhere."""
    rng = np.random.default_rng(seed)
    townships = shapely.union_all(areas["townships"])
    shapely.prepare(townships)
    villages = np.array([shapely.get_coordinates(shapely.point_on_surface(v))[0] for v in areas["villages"]])
    weights = rng.pareto(1.5, len(villages)) + 0.2  # a few busy villages, many quiet ones
    weights /= weights.sum()
    x0, y0, x1, y1 = townships.bounds
    types = [t[0] for t in DEFAULTS]
    made = 0
    while made < n:
        k = min(50_000, n - made)
        near = rng.random(k) < 0.7
        at = villages[rng.choice(len(villages), k, p=weights)]
        xs = np.where(near, at[:, 0] + rng.normal(0, 0.012, k), rng.uniform(x0, x1, k))
        ys = np.where(near, at[:, 1] + rng.normal(0, 0.009, k), rng.uniform(y0, y1, k))
        inside = shapely.contains_xy(townships, xs, ys)
        xs, ys = xs[inside], ys[inside]
        reported = [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 2 * 365 * 24 * 60, len(xs))]
        kinds = rng.integers(0, len(types), len(xs))
        status = rng.integers(0, len(EVENT_STATUSES), len(xs))
        for i in range(len(xs)):
            yield Feature(None, shapely.Point(xs[i], ys[i]), {
                "title": "bench", "type": types[kinds[i]], "status": EVENT_STATUSES[status[i]],
                "source": EVENT_SOURCES[i % len(EVENT_SOURCES)], "priority": PRIORITIES[i % len(PRIORITIES)],
                "reported_at": reported[i]})
        made += len(xs)


def load(url: str, n: int) -> None:
    """The sample county's areas and n synthetic events, through the store's bulk load (COPY)."""
    catalog = build_catalog()
    with open_store(str(SAMPLE), catalog) as sample:
        areas = {lid: list(sample.iter_features(lid, Scope.everything())) for lid in ("townships", "villages", "grids")}
    with open_store(url, catalog) as store:
        store.initialize()
        seed_defaults(store)
        for lid, feats in areas.items():
            store.bulk_load(lid, feats, replace=True)
        started = time.perf_counter()
        count = store.bulk_load("events", _events({k: [f.geometry for f in v] for k, v in areas.items()}, n),
                                replace=True)
        print(f"loaded {count:,} events in {time.perf_counter() - started:.0f} s")
        store.put_users([UserRecord("operator", "operator", hash_password("onemap"))])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm: plans, caches, connections
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def _lonlat(x: int, y: int, z: int) -> tuple[float, float]:
    n = 2 ** z
    return x / n * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def measure(url: str, runs: int) -> None:
    """Print the medians."""
    catalog = build_catalog()
    with psycopg.connect(url, autocommit=True) as conn:
        # The store's own session settings (postgis.py): no JIT; room to hash the groups.
        conn.execute("SET jit TO off")
        conn.execute("SET work_mem TO '32MB'")
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        town, busiest = conn.execute(
            "SELECT township_code, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
        cx, cy = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM "
                              "(SELECT geom FROM events LIMIT 20000) s) q").fetchone()
        # What the store sends, typed by hand (it asks for the first 20,001 groups in order).
        raw = "SELECT substring(h3_cells from 65 for 8), count(*) FROM events GROUP BY 1 ORDER BY 1 LIMIT 20001"
        raw_leader = raw.replace("GROUP BY", "WHERE township_code = %s GROUP BY")
        print(f"{total:,} events; busiest township {town} ({busiest:,})")
        print(f"raw SQL GROUP BY, res 8, all:        {_median_ms(lambda: conn.execute(raw).fetchall(), runs):7.0f} ms")
        print(f"raw SQL GROUP BY, res 8, {town}: "
              f"{_median_ms(lambda: conn.execute(raw_leader, [town]).fetchall(), runs):7.0f} ms")

        for z in (10, 12):
            x, y = _tile_of(cx, cy, z)
            w, n = _lonlat(x, y, z)
            e, so = _lonlat(x + 1, y + 1, z)
            dx, dy = reach_degrees(resolution_at(z), n)  # the box the tile counts: grown by two hexagons
            w, so, e, n = w - dx, so - dy, e + dx, n + dy
            tile_sql = (f"SELECT substring(h3_cells from {resolution_at(z) * 8 + 1} for 8), count(*) FROM events "
                        "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) GROUP BY 1")
            ms = _median_ms(lambda q=tile_sql, b=(w, so, e, n): conn.execute(q, b).fetchall(), runs)
            print(f"raw SQL GROUP BY of tile z{z} box (&& only):  {ms:7.0f} ms")

        def by_python() -> None:  # the path not taken: read every point, place it in Python
            with conn.cursor(binary=True) as cur:
                xs, ys = cur.execute("SELECT array_agg(ST_X(geom)), array_agg(ST_Y(geom)) FROM events").fetchone()
            np.unique([h3int.latlng_to_cell(y, x, 8) for x, y in zip(xs, ys, strict=True)], return_counts=True)
        print(f"points read + h3-py in Python, res 8: {_median_ms(by_python, max(1, runs // 3)):7.0f} ms")
    operator = Principal("operator", "operator")
    leader = Principal(f"leader-{town}", "leader", townships=frozenset({town}))
    with open_store(url, catalog) as store:
        for who in (operator, leader):
            ms = _median_ms(lambda who=who: heatmap(store, catalog, who, "events", FeatureQuery(), 8), runs)
            n = len(heatmap(store, catalog, who, "events", FeatureQuery(), 8))
            print(f"layers.heatmap, res 8, {who.role:8}:     {ms:7.0f} ms ({n:,} hexagons)")
        flt = FeatureQuery(filter={"op": "=", "args": [{"property": "type"}, DEFAULTS[0][0]]},
                           datetime=(T0 + timedelta(days=365), T0 + timedelta(days=730)))
        ms = _median_ms(lambda: heatmap(store, catalog, operator, "events", flt, 8), runs)
        print(f"layers.heatmap, res 8, one type, one year: {ms:7.0f} ms")
        tiles = TileService(store, catalog, TileCache(0))
        try:
            for z in (9, 10, 11, 12, 14):
                x, y = _tile_of(cx, cy, z)

                def tile(z=z, x=x, y=y) -> bytes:
                    return tiles.render(tiles.prepare(operator, None, "WebMercatorQuad", z, x, y, heatmap=True)).content
                size = len(tile())
                print(f"heatmap tile z{z:<2} (res {resolution_at(z)}), uncached:   {_median_ms(tile, runs):7.0f} ms ({size:,} B)")
        finally:
            tiles.close()
    app = create_app(Settings(database=url, secret="bench-secret-of-at-least-thirty-two-bytes", jobs=False))
    with TestClient(app) as client:
        headers = {"Authorization": "Bearer " + client.post("/auth/token", data={
            "username": "operator", "password": "onemap"}).json()["access_token"]}

        def http() -> None:
            r = client.get("/heatmap", params={"layer": "events", "resolution": 8}, headers=headers)
            r.raise_for_status()
        print(f"GET /heatmap res 8, operator, in process: {_median_ms(http, runs):7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--database", default="onemap_heatmap_bench")
    parser.add_argument("--load", action="store_true", help="(re)load the bench database first")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    url = _database(args.server, args.database)
    if args.load:
        load(url, args.events)
    measure(url, args.runs)


if __name__ == "__main__":
    main()
