"""Items req/s and p95 of onemap's OGC API Features on PostGIS, next to the raw SQL as the limit.

Usage: .venv/bin/python bench/features/run.py --database postgresql://... [--seconds 10]
Peers (pygeoapi's PostgreSQL provider standalone, tipg, MapServer 8) are meant to be served from a venv
under bench/.venv-peers over the same tables and added with --peer NAME=URL (their items URL templates).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx
import psycopg
import uvicorn

from api.app import create_app
from api.settings import Settings
from tests.e2e.live_server import free_port


def measure(fn, seconds: float) -> tuple[float, float]:
    """Requests per second and p95 latency (ms) of calling fn repeatedly for `seconds`."""
    lat, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    return len(lat) / sum(lat), statistics.quantiles(lat, n=20)[18] * 1000


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bbox", default="100.0,32.0,102.0,34.0")
    ap.add_argument("--filter", default="type = 'garbage'")
    ap.add_argument("--peer", action="append", default=[], help="NAME=BASEURL of a peer OGC API Features server")
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database=args.database, public_url=url))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    with httpx.Client(timeout=30) as c:
        tok = c.post(f"{url}/auth/token", data={"username": "admin", "password": "onemap"}).json()["access_token"]
        key = {"Authorization": f"Bearer {tok}"}
        rows = []
        targets = [("onemap", url), *(p.split("=", 1) for p in args.peer)]
        for name, base in targets:
            items = f"{base}/collections/events/items"
            q = {"bbox": args.bbox, "filter": args.filter, "limit": 1000}
            fid = c.get(items, params={"limit": 1}, headers=key).json()["features"][0]["id"]
            a = measure(lambda u=items, q=q: c.get(u, params=q, headers=key).raise_for_status(), args.seconds)
            b = measure(lambda u=f"{items}/{fid}": c.get(u, headers=key).raise_for_status(), args.seconds)
            rows.append((name, a, b))
    with psycopg.connect(args.database) as conn:
        x0, y0, x1, y1 = (float(v) for v in args.bbox.split(","))
        sql = ("SELECT ST_AsGeoJSON(geom), type FROM events WHERE geom && ST_MakeEnvelope(%s,%s,%s,%s,4326) "
               "AND type = 'garbage' ORDER BY fid LIMIT 1000")
        a = measure(lambda: conn.execute(sql, (x0, y0, x1, y1)).fetchall(), args.seconds)
        b = measure(lambda: conn.execute("SELECT ST_AsGeoJSON(geom) FROM events WHERE fid = 1").fetchall(),
                    args.seconds)
        rows.append(("raw SQL (limit)", a, b))
    print("| server | 1,000 items bbox+filter req/s | p95 ms | single item req/s | p95 ms |\n|---|---|---|---|---|")
    for name, (ra, pa), (rb, pb) in rows:
        print(f"| {name} | {ra:.1f} | {pa:.1f} | {rb:.1f} | {pb:.1f} |")
    srv.should_exit = True


if __name__ == "__main__":
    main()
