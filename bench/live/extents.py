"""Latency of the documents that need every layer's extent: the MapLibre style and the combined TileJSON.

Not a test. For each database: one onemap server process (`python -m api.cli serve`), an operator and a
township leader, `--requests` sequential requests each after one warm-up request, p50/p95/max in ms; and,
as what every request cost before extents were kept (and the work a cold cache still does once), the time of
computing every readable layer's extent straight from the store (`Store.extent`, no HTTP).

    .venv/bin/python bench/live/extents.py --database data/sample/county.gpkg \\
        --database postgresql://postgres@127.0.0.1:5432/onemap_test [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.access import Principal, readable_layers  # noqa: E402
from geoserver.store import open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402

SECRET = "bench-secret-of-at-least-thirty-two-bytes!"
PATHS = ("/styles/onemap.json", "/tiles/WebMercatorQuad/tilejson.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(database: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ONEMAP_SECRET": SECRET, "ONEMAP_JOBS": "0"}  # leave the sample county as it is
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--database", database, "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def token(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": "onemap"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def timed(client: httpx.Client, url: str, headers: dict, n: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    client.get(url, headers=headers).raise_for_status()
    first = (time.perf_counter() - started) * 1000
    out = []
    for _ in range(n):
        started = time.perf_counter()
        client.get(url, headers=headers).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return first, out


def direct(database: str, role: str, townships: frozenset[str]) -> float:
    """Milliseconds to compute every readable layer's extent from the store, as each request did before."""
    catalog = build_catalog()
    with open_store(database, catalog) as store:
        principal = Principal("bench", role, townships)
        started = time.perf_counter()
        for layer, scope in readable_layers(principal, catalog):
            store.extent(layer.id, scope)
        return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--leader", default="leader-632626100")
    args = parser.parse_args()
    print("| database | caller | document | first ms | p50 ms | p95 ms | max ms | store extents ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for database in args.database:
        proc, base = serve(database)
        try:
            with httpx.Client(base_url=base, timeout=120) as client:
                for user, role, towns in (("operator", "operator", frozenset()),
                                          (args.leader, "leader", frozenset({args.leader.split("-", 1)[1]}))):
                    headers = token(base, user)
                    cost = direct(database, role, towns)
                    for path in PATHS:
                        first, times = timed(client, path, headers, args.requests)
                        q = statistics.quantiles(times, n=100)
                        name = "PostGIS" if database.startswith("postgresql") else Path(database).name
                        print(f"| {name} | {user} | `{path}` | {first:.0f} | {q[49]:.1f} | {q[94]:.1f} | "
                              f"{max(times):.1f} | {cost:.0f} |", flush=True)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
