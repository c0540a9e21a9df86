"""Items req/s and p95 of onemap's OGC API Features on PostGIS, side by side with its peers and raw SQL.

Usage:
    .venv/bin/python -m bench.features.run --database postgresql://postgres@127.0.0.1:5432/onemap_large \
        [--peers pygeoapi,tipg,mapserver] [--requests 200] [--item-requests 1000] [--clients 1,10] [--rounds 3]

Every server is its own process on 127.0.0.1 (see peers.py); ApacheBench (`ab`, Debian apache2-utils)
sends a bounded number of requests per case, so the load generator is not a Python thread of the server
under test. The raw SQL row is psycopg running the equivalent statement (full rows as GeoJSON) on as many
connections as there are clients: the ceiling no HTTP server can pass.
"""

from __future__ import annotations

import argparse
import os
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
RAW = "raw SQL (the limit)"


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


def _median(runs: list[tuple[tuple, tuple]]) -> tuple[tuple, tuple]:
    """The median req/s and p95 of each case over the rounds, and every round's non-2xx answers."""
    def med(case: int) -> tuple[float, float, int]:
        return (statistics.median(r[case][0] for r in runs), statistics.median(r[case][1] for r in runs),
                sum(r[case][2] for r in runs))
    return med(0), med(1)


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
    ap.add_argument("--rounds", type=int, default=1, help="measure everything this many times in turn; medians")
    args = ap.parse_args()
    started_load = tuple(round(v, 1) for v in os.getloadavg())
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
        checked: list[tuple[Server, int, str]] = []
        for server in servers:
            try:
                checked.append((server, *_check(server)))
            except Exception as exc:
                failures.append(f"{server.name}: {exc}")
        x0, y0, x1, y1 = (float(v) for v in args.bbox.split(","))
        many = ("SELECT ST_AsGeoJSON(e.*)::text FROM events e WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
                " AND type = 'garbage' ORDER BY fid LIMIT 1000")
        one = "SELECT ST_AsGeoJSON(e.*)::text FROM events e WHERE fid = %s"
        # Every round measures every server and the raw SQL once, in turn, so on a shared machine each sees
        # about the same load; the table gives the median of the rounds.
        samples: dict[tuple[str, int], list[tuple[tuple, tuple]]] = {}
        for _ in range(args.rounds):
            for server, _returned, fid in checked:
                for c in clients:
                    items = ab(f"{server.items}?{urlencode(server.params)}", server.headers, args.requests, c)
                    item = ab(f"{server.items}/{fid}", server.headers, args.item_requests, c)
                    samples.setdefault((server.name, c), []).append((items, item))
            for c in clients:
                a = sql_load(args.database, many, (x0, y0, x1, y1), args.requests, c)
                b = sql_load(args.database, one, (1,), args.item_requests, c)
                samples.setdefault((RAW, c), []).append(((*a, 0), (*b, 0)))
        rows = []
        for server, returned, _fid in checked:
            for c in clients:
                rows.append((server.name, c, returned, *_median(samples[(server.name, c)]), server.note))
        for c in clients:
            rows.append((RAW, c, 1000, *_median(samples[(RAW, c)]), "psycopg, no HTTP"))
    finally:
        for server in servers:
            server.stop()
    print("| server | clients | features | 1,000 items bbox+filter req/s | p95 ms | single item req/s | p95 ms |"
          " note |\n|---|---|---|---|---|---|---|---|")
    for name, c, returned, (ra, pa, bad_a), (rb, pb, bad_b), note in rows:
        errs = f" ({bad_a + bad_b} non-2xx)" if bad_a or bad_b else ""
        print(f"| {name} | {c} | {returned} | {ra:.1f} | {pa:.0f} | {rb:.1f} | {pb:.0f} | {note}{errs} |")
    if ("onemap", clients[0]) in samples:
        print("\nonemap / raw SQL, 1,000 items, round by round:")
        for c in clients:
            ratios = [o[0][0] / r[0][0] for o, r in zip(samples[("onemap", c)], samples[(RAW, c)], strict=True)]
            print(f"- {c} clients: " + ", ".join(f"{x:.2f}x" for x in ratios)
                  + f" (median {statistics.median(ratios):.2f}x)")
    print(f"\nload average (1, 5, 15 min): at the start {started_load}, at the end "
          f"{tuple(round(v, 1) for v in os.getloadavg())}")
    for failure in failures:
        print(f"\nnot measured: {failure}")
    print(f"\nlogs: {workdir}")


if __name__ == "__main__":
    main()
