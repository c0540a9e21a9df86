"""Readings ingested per second over HTTP: batches of 1,000 readings to `POST /readings` on a scratch PostGIS
database (a township, a grid and 50 smoke sensors), one onemap server process, sequential batches.

Not a test. Prints the median and the slowest batch and readings/s at the median.

    .venv/bin/python bench/alarms/ingest.py [--server postgresql://postgres@127.0.0.1:5432] [--batches 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from shapely.geometry import MultiPolygon, Point, box

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "live"))

from extents import serve, token  # noqa: E402

from geoserver.access import Scope  # noqa: E402
from geoserver.features import Feature  # noqa: E402
from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402


def scratch(server: str) -> str:
    """A new PostGIS database holding one township, one grid, 50 smoke sensors and an operator."""
    name = f"onemap_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    with open_store(url, build_catalog()) as store:
        store.initialize()
        store.bulk_load("townships", [Feature(None, MultiPolygon([box(100, 33, 101, 34)]), {
            "township_code": "T", "name": "T", "kind": "township"})])
        store.bulk_load("grids", [Feature(None, MultiPolygon([box(100, 33, 101, 34)]), {
            "grid_code": "T1", "township_code": "T", "name": "T1", "grid_kind": "basic"})])
        store.insert("monitoring_sites", [Feature(None, Point(100 + i / 100, 33.5), {
            "site_code": f"S{i}", "kind": "smoke", "status": "online"}) for i in range(50)], Scope.everything())
        store.put_users([UserRecord("operator", "operator", hash_password("onemap"))])
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    url = scratch(args.server)
    proc, base = serve(url)
    try:
        headers = token(base, "operator")
        with open_store(url, build_catalog()) as store:
            sites = [f.id for f in store.iter_features("monitoring_sites", Scope.everything())]
        times = []
        with httpx.Client(base_url=base, timeout=120) as client:
            for b in range(args.batches + 1):
                now = datetime.now(UTC)
                batch = [{"site_id": sites[i % len(sites)], "metric": "smoke_density", "value": (i % 10) / 100,
                          "unit": "%obs/m", "observed_at": (now - timedelta(seconds=i)).isoformat()}
                         for i in range(1000)]
                started = time.perf_counter()
                r = client.post("/readings", json={"readings": batch}, headers=headers)
                r.raise_for_status()
                assert r.json()["accepted"] == 1000, r.text[:300]
                if b:  # the first batch warms the server up
                    times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"{args.batches} batches of 1,000 readings on PostGIS: median {median * 1000:.0f} ms "
              f"({1000 / median:,.0f} readings/s), slowest {max(times) * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait()
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
