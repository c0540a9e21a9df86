"""GPS fixes ingested per second into PostGIS: over HTTP, straight through the domain (no HTTP), and the raw
binary COPY of the same rows as the limit.

Not a test. A scratch PostGIS database (one township, one grid, `--patrols` grid workers). Each worker sends a
day of 1 Hz fixes (`--fixes`, 28,800 by default) of his own patrol in batches of `--batch`, in time order;
the workers send at the same time (one thread each). Prints points/s for each way, and the slowest batch.

    .venv/bin/python bench/patrols/ingest.py [--server postgresql://postgres@127.0.0.1:5432] \\
        [--fixes 28800] [--batch 1000] [--patrols 1,4] [--server-workers 2]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Point, box

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "live"))

from extents import SECRET, free_port, token  # noqa: E402

from geoserver.access import Principal  # noqa: E402
from geoserver.features import Feature  # noqa: E402
from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers import patrol_work  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402

DAY = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def scratch(server: str, workers: int) -> str:
    """A new PostGIS database: one township, one grid, `workers` grid workers."""
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
        h = hash_password("onemap")
        # One set of workers per way: a worker has one open patrol at a time.
        store.put_users([UserRecord(f"{who}-{i}", "worker", h, townships=("T",), grids=("T1",))
                         for i in range(workers) for who in ("worker", "direct")])
    return url


def day(worker: int, n: int, tag: str = "w") -> list[dict]:
    """A day of 1 Hz fixes walking a slow spiral (about 1.3 m/s)."""
    out = []
    for i in range(n):
        a = i / 600
        r = 0.002 + i * 4e-7
        out.append({"id": f"{tag}{worker}-{i}", "time": (DAY + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                    "lon": round(100.3 + worker % 10 * 0.05 + r * math.cos(a), 7), "lat": round(33.5 + r * math.sin(a), 7),
                    "accuracy": 5.0, "speed": 1.3, "heading": 90.0, "altitude": 1200.0, "battery": 80.0})
    return out


def batches(fixes: list[dict], size: int) -> list[list[dict]]:
    return [fixes[i:i + size] for i in range(0, len(fixes), size)]


def over_http(url: str, patrols: int, fixes: int, size: int, server_workers: int) -> tuple[float, float]:
    """(points/s, slowest batch in s) through `POST /patrols/{id}/points` on a server process."""
    port = free_port()
    env = {**os.environ, "ONEMAP_SECRET": SECRET, "ONEMAP_JOBS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--database", url, "--port", str(port),
                             "--workers", str(server_workers)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = [token(base, f"worker-{w}") for w in range(patrols)]
        pids = [httpx.post(f"{base}/patrols", json={"grid_code": "T1", "started_at": DAY.isoformat()},
                           headers=headers[w]).json()["id"] for w in range(patrols)]
        work = [batches(day(w, fixes), size) for w in range(patrols)]
        slowest = [0.0] * patrols

        def send(w: int) -> None:
            with httpx.Client(base_url=base, timeout=300) as client:
                for batch in work[w]:
                    started = time.perf_counter()
                    r = client.post(f"/patrols/{pids[w]}/points", json={"points": batch}, headers=headers[w])
                    r.raise_for_status()
                    assert r.json()["accepted"] == len(batch), r.text[:300]
                    slowest[w] = max(slowest[w], time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(patrols) as pool:
            list(pool.map(send, range(patrols)))
        return patrols * fixes / (time.perf_counter() - started), max(slowest)
    finally:
        proc.terminate()
        proc.wait()


def direct(url: str, patrols: int, fixes: int, size: int) -> tuple[float, float]:
    """(points/s, slowest batch in s) through `layers.patrol_work.upload` on the store, no HTTP."""
    catalog = build_catalog()
    with open_store(url, catalog) as store:
        people = [Principal(f"direct-{w}", "worker", frozenset({"T"}), frozenset({"T1"})) for w in range(patrols)]
        pids = [patrol_work.start(store, catalog, p, {"grid_code": "T1", "started_at": DAY.isoformat()}).id
                for p in people]
        work = [batches(day(w, fixes, 'd'), size) for w in range(patrols)]
        slowest = [0.0] * patrols

        def send(w: int) -> None:
            for batch in work[w]:
                started = time.perf_counter()
                result = patrol_work.upload(store, catalog, people[w], pids[w], {"points": batch})
                assert result["accepted"] == len(batch)
                slowest[w] = max(slowest[w], time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(patrols) as pool:
            list(pool.map(send, range(patrols)))
        return patrols * fixes / (time.perf_counter() - started), max(slowest)


def raw_copy(url: str, patrols: int, fixes: int, size: int) -> float:
    """Points/s of a binary COPY of the same rows into track_points, one transaction per batch (the limit)."""
    rows = [[(shapely.to_wkb(Point(f["lon"], f["lat"])), 900_000 + w, f"worker-{w}",
              datetime.fromisoformat(f["time"]), f["id"]) for f in day(w, fixes, 'c')] for w in range(patrols)]

    def send(w: int) -> None:
        with psycopg.connect(url) as conn:
            for batch in batches(rows[w], size):
                with conn.transaction(), conn.cursor() as cur, cur.copy(
                        "COPY track_points (geom, patrol_id, worker, recorded_at, point_key) FROM STDIN"
                        " (FORMAT BINARY)") as copy:
                    copy.set_types(["bytea", "int8", "text", "timestamptz", "text"])
                    for row in batch:
                        copy.write_row(row)

    started = time.perf_counter()
    with ThreadPoolExecutor(patrols) as pool:
        list(pool.map(send, range(patrols)))
    return patrols * fixes / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--fixes", type=int, default=28_800)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--patrols", default="1,4", help="comma-separated: workers sending at once")
    parser.add_argument("--server-workers", type=int, default=2)
    args = parser.parse_args()
    counts = [int(v) for v in args.patrols.split(",")]
    for n in counts:
        url = scratch(args.server, max(counts))
        try:
            rate, slow = over_http(url, n, args.fixes, args.batch, args.server_workers)
            print(f"HTTP   {n} worker(s) x {args.fixes} fixes, batches of {args.batch}: {rate:,.0f} points/s "
                  f"(slowest batch {slow * 1000:.0f} ms, {args.server_workers} server processes)", flush=True)
            rate, slow = direct(url, n, args.fixes, args.batch)
            print(f"direct {n} worker(s): {rate:,.0f} points/s (slowest batch {slow * 1000:.0f} ms)", flush=True)
            print(f"COPY   {n} worker(s): {raw_copy(url, n, args.fixes, args.batch):,.0f} points/s", flush=True)
        finally:
            with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
