"""Items req/s and p95 of onemap's OGC API Features on PostGIS, side by side with its peers and raw SQL.

Usage:
    .venv/bin/python -m bench.features.run --database postgresql://postgres@127.0.0.1:5432/onemap_large \
        [--peers pygeoapi,tipg,mapserver] [--requests 200] [--item-requests 1000] [--clients 1,10]

Every server is its own process on 127.0.0.1 (see peers.py); ApacheBench (`ab`, Debian apache2-utils)
sends a bounded number of requests per case, so the load generator is not a Python thread of the server
under test. The raw SQL row is psycopg running the equivalent statement (full rows as GeoJSON) on as many
connections as there are clients: the ceiling no HTTP server can pass.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg

from bench.features.peers import Server, start_mapserver, start_onemap, start_pygeoapi, start_tipg

CQL2_FILTER = "type = 'garbage'"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ab(url: str, headers: dict[str, str], requests: int, clients: int) -> tuple[float, float, int]:
    """ApacheBench: requests/s, p95 (ms) and the number of non-2xx answers."""
    cmd = ["ab", "-q", "-n", str(requests), "-c", str(clients)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    p95 = float(re.search(r"^\s*95%\s+(\d+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return rps, p95, int(bad.group(1)) if bad else 0


def sql_load(database: str, statement: str, params: tuple, requests: int, clients: int) -> tuple[float, float]:
    """Requests/s and p95 (ms) of running a statement `requests` times over `clients` connections."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client() -> None:
        with psycopg.connect(database, autocommit=True) as conn:
            for _ in range(per_client):
                t = time.perf_counter()
                conn.execute(statement, params).fetchall()
                with lock:
                    latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    return len(latencies) / wall, statistics.quantiles(latencies, n=20)[18] * 1000


def _check(server: Server) -> tuple[int, str]:
    """How many features the 1,000-feature request really returns, and the id of one of them."""
    r = httpx.get(server.items, params=server.params, headers=server.headers, timeout=120)
    r.raise_for_status()
    features = r.json()["features"]
    return len(features), str(features[0]["id"])


def main() -> None:
    """Start the servers, run every case, print a Markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True)
    ap.add_argument("--peers", default="pygeoapi,tipg,mapserver")
    ap.add_argument("--requests", type=int, default=200, help="requests per case for the 1,000-feature query")
    ap.add_argument("--item-requests", type=int, default=1000, help="requests per case for a single item")
    ap.add_argument("--clients", default="1,10")
    ap.add_argument("--bbox", default="100.0,32.0,102.0,34.0")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-features-"))
    starters: dict[str, Callable[[], Server]] = {
        "pygeoapi": lambda: start_pygeoapi(args.database, free_port(), workdir, args.bbox, CQL2_FILTER),
        "tipg": lambda: start_tipg(args.database, free_port(), workdir, args.bbox, CQL2_FILTER),
        "mapserver": lambda: start_mapserver(args.database, free_port(), workdir, args.bbox),
    }
    servers: list[Server] = []
    failures: list[str] = []
    try:
        servers.append(start_onemap(args.database, free_port(), workdir, args.bbox, CQL2_FILTER))
        for name in [p for p in args.peers.split(",") if p]:
            try:
                servers.append(starters[name]())
            except Exception as exc:  # a peer that cannot start is reported, the run goes on
                failures.append(f"{name}: {exc}")
        rows = []
        for server in servers:
            try:
                returned, fid = _check(server)
            except Exception as exc:
                failures.append(f"{server.name}: {exc}")
                continue
            for c in clients:
                items = ab(f"{server.items}?{urlencode(server.params)}", server.headers, args.requests, c)
                item = ab(f"{server.items}/{fid}", server.headers, args.item_requests, c)
                rows.append((server.name, c, returned, items, item, server.note))
        x0, y0, x1, y1 = (float(v) for v in args.bbox.split(","))
        many = ("SELECT ST_AsGeoJSON(e.*)::text FROM events e WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
                " AND type = 'garbage' ORDER BY fid LIMIT 1000")
        one = "SELECT ST_AsGeoJSON(e.*)::text FROM events e WHERE fid = %s"
        for c in clients:
            a = sql_load(args.database, many, (x0, y0, x1, y1), args.requests, c)
            b = sql_load(args.database, one, (1,), args.item_requests, c)
            rows.append(("raw SQL (the limit)", c, 1000, (*a, 0), (*b, 0), "psycopg, no HTTP"))
    finally:
        for server in servers:
            server.stop()
    print("| server | clients | features | 1,000 items bbox+filter req/s | p95 ms | single item req/s | p95 ms |"
          " note |\n|---|---|---|---|---|---|---|---|")
    for name, c, returned, (ra, pa, bad_a), (rb, pb, bad_b), note in rows:
        errs = f" ({bad_a + bad_b} non-2xx)" if bad_a or bad_b else ""
        print(f"| {name} | {c} | {returned} | {ra:.1f} | {pa:.0f} | {rb:.1f} | {pb:.0f} | {note}{errs} |")
    for failure in failures:
        print(f"\nnot measured: {failure}")
    print(f"\nlogs: {workdir}")


if __name__ == "__main__":
    main()
