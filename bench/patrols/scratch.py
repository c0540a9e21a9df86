"""Scratch databases for the patrol benchmarks: one township of `grids` grid cells, an operator, a leader and one
grid worker per grid, each with one patrol of fixes every `step_s` seconds for `hours` hours on one day.

The fixes are written with Store.bulk_load (COPY on PostGIS) straight into `track_points`, as an upload
would have stored them, and the patrols with the figures an upload computes; nothing is committed to git.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, box

from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import Store, UserRecord, open_store
from layers.catalog import build_catalog

DAY = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)  # 08:30 in the county
GRID_DEG = 0.02  # a grid cell about 1.9 km x 2.2 km, like a village's
GEOD = Geod(ellps="WGS84")


def create_postgis(server: str) -> str:
    """A new, empty PostGIS database; its URL."""
    name = f"onemap_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_postgis(url: str) -> None:
    """Drop a scratch database."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def walk(lon: float, lat: float, n: int, step_m: float, seed: int, bounds: tuple[float, ...]) -> np.ndarray:
    """n positions of a walk of step_m metres per fix, turning slowly, kept inside bounds."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 2))
    heading = float(rng.uniform(0, 360))
    for i in range(n):
        out[i] = lon, lat
        heading += float(rng.normal(0, 8))
        lon, lat, _ = GEOD.fwd(lon, lat, heading, step_m)
        if not (bounds[0] < lon < bounds[2] and bounds[1] < lat < bounds[3]):
            heading += 180
            lon, lat = out[i]
    return out


def fill(store: Store, grids: int, hours: float, step_s: float, step_m: float) -> list[int]:
    """Load the township, its grids, the accounts and one patrol per worker; returns the patrol ids."""
    side = math.ceil(math.sqrt(grids))
    cells = [(f"G{i:03d}", box(100 + (i % side) * GRID_DEG, 33 + (i // side) * GRID_DEG,
                               100 + (i % side + 1) * GRID_DEG, 33 + (i // side + 1) * GRID_DEG)) for i in range(grids)]
    store.bulk_load("townships", [Feature(None, MultiPolygon([box(100, 33, 100 + side * GRID_DEG,
                                                                  33 + side * GRID_DEG)]),
                                          {"township_code": "T", "name": "T", "kind": "township"})])
    store.bulk_load("grids", [Feature(None, MultiPolygon([g]), {"grid_code": code, "township_code": "T",
                                                                 "name": code, "grid_kind": "basic"})
                              for code, g in cells])
    h = hash_password("onemap")
    store.put_users([UserRecord("operator", "operator", h), UserRecord("leader-T", "leader", h, townships=("T",)),
                     *(UserRecord(f"worker-{code}", "worker", h, townships=("T",), grids=(code,))
                       for code, _ in cells)])
    n = int(hours * 3600 / step_s)
    t = np.array([DAY + timedelta(seconds=i * step_s) for i in range(n)])
    patrols, points = [], []
    for k, (code, cell) in enumerate(cells):
        c = cell.centroid
        xy = np.round(walk(c.x, c.y, n, step_m, k, cell.bounds), 7)  # as a phone sends them
        _, _, legs = GEOD.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])
        patrols.append(Feature(k + 1, LineString(xy), {
            "worker": f"worker-{code}", "started_at": t[0], "ended_at": t[-1], "status": "finished",
            "mode": "walking", "distance_m": float(np.abs(legs).sum()), "duration_s": int((t[-1] - t[0]).total_seconds()),
            "point_count": n, "last_fix_at": t[-1], "close_reason": "stopped", "township_code": "T", "grid_code": code}))
        points.extend(Feature(None, Point(x, y), {
            "patrol_id": k + 1, "worker": f"worker-{code}", "recorded_at": ti, "point_key": f"id:{i}",
            "accuracy": 5.0, "speed": step_m / step_s, "township_code": "T", "grid_code": code})
            for i, (ti, (x, y)) in enumerate(zip(t, xy, strict=True)))
    store.bulk_load("patrols", patrols)
    store.bulk_load("track_points", points)
    return [p.id for p in patrols]


def build(database: str, grids: int, hours: float, step_s: float, step_m: float) -> list[int]:
    """Initialise `database` (a PostGIS URL or a new .gpkg path) and fill it; returns the patrol ids."""
    with open_store(database, build_catalog()) as store:
        store.initialize()
        return fill(store, grids, hours, step_s, step_m)
