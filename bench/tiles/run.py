"""Vector tiles/s and p50/p95: onemap (uncached, cached) vs tipg vs the raw ST_AsMVT SQL, 1 and 10 clients.

Not a test. Reproduce (tipg lives in its own venv under bench/, never in the project venv):

    python3.11 -m venv bench/.venv-tipg && bench/.venv-tipg/bin/pip install tipg uvicorn
    .venv/bin/python bench/tiles/run.py --database postgresql://postgres@127.0.0.1:5432/onemap_tiles_large \
        [--per-zoom 40] [--out bench/results/tiles.md]

The database must hold a sample county (`onemap sample --load URL`, with its accounts). Every server is
one uvicorn process on this machine, and so are the client threads: on 2 cores they compete for the CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import morecantile
import psycopg
from psycopg_pool import ConnectionPool

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.access import Scope  # noqa: E402
from geoserver.store.postgis import _configure as onemap_session  # noqa: E402
from geoserver.store.postgis_mvt import tile_sql  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from tiles.plan import TilePlan  # noqa: E402
from tiles.tms import get_tiling  # noqa: E402

ONEMAP = ROOT / ".venv" / "bin" / "onemap"
TIPG = ROOT / "bench" / ".venv-tipg" / "bin" / "uvicorn"
LAYERS = ("buildings", "events")
ZOOMS = range(12, 17)
SECRET = "bench-secret-of-at-least-thirty-two-bytes!"


def tile_list(url: str, per_zoom: int, seed: int) -> list[tuple[str, int, int, int]]:
    """A fixed random list: per layer and zoom, the tiles of `per_zoom` features picked by a seeded hash."""
    tms = morecantile.tms.get("WebMercatorQuad")
    out = []
    with psycopg.connect(url) as conn:
        for layer in LAYERS:
            rows = conn.execute(
                f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM {layer} "
                f"ORDER BY md5(fid::text || %s) LIMIT %s) s", [str(seed), per_zoom * len(ZOOMS)]).fetchall()
            for i, z in enumerate(ZOOMS):
                for lon, lat in rows[i * per_zoom:(i + 1) * per_zoom]:
                    t = tms.tile(lon, lat, z)
                    out.append((layer, z, t.x, t.y))
    random.Random(seed).shuffle(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], base: str, probe: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited")
        try:
            if httpx.get(base + probe, timeout=5).status_code < 500:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not start")


def run_clients(urls: list[str], clients: int, headers: dict[str, str]) -> dict:
    """Fetch every URL once with `clients` keep-alive threads; throughput and latency percentiles."""
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    lock = threading.Lock()
    it = iter(urls)
    local = threading.local()

    def worker() -> None:
        nonlocal errors
        local.client = httpx.Client(headers=headers, timeout=120)
        while True:
            with lock:
                url = next(it, None)
            if url is None:
                break
            t0 = time.perf_counter()
            r = local.client.get(url)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                sizes.append(len(r.content))
                errors += r.status_code not in (200, 204)
        local.client.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(worker)
    wall = time.perf_counter() - t0
    return summary(latencies, wall, sizes, errors)


def run_ab(url: str, clients: int, headers: dict[str, str], requests: int) -> dict | None:
    """One hot tile hammered by ApacheBench (keep-alive), when installed: the server's own ceiling."""
    if not shutil.which("ab"):
        return None
    cmd = ["ab", "-q", "-k", "-n", str(requests), "-c", str(clients)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.M))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    size = int(re.search(r"Document Length:\s+(\d+)", out).group(1))
    return {"tiles_s": rps, "p50": float(pct.get("50", "nan")), "p95": float(pct.get("95", "nan")),
            "kb": size / 1024, "errors": failed}


def summary(latencies: list[float], wall: float, sizes: list[int], errors: int) -> dict:
    q = statistics.quantiles(latencies, n=100)
    return {"tiles_s": len(latencies) / wall, "p50": q[49] * 1000, "p95": q[94] * 1000,
            "kb": statistics.mean(sizes) / 1024, "errors": errors}


def run_sql(url: str, tiles: list[tuple[str, int, int, int]], clients: int) -> dict:
    """The same tiles as onemap builds them, straight from PostGIS: the limit with no HTTP at all."""
    catalog = build_catalog()
    plan = TilePlan(catalog)
    tiling = get_tiling("WebMercatorQuad")
    statements = []
    for layer_id, z, x, y in tiles:
        layer = catalog.get(layer_id)
        statements.append(tile_sql(layer, plan.request(layer, tiling, z, x, y), Scope.everything()))
    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    it = iter(statements)
    # onemap's own session settings (no JIT, custom plans): without them PostgreSQL JIT-compiles the costly
    # large-sample tile queries and the "limit" came out slower than onemap sending the same SQL.
    with ConnectionPool(url, min_size=clients, max_size=clients, kwargs={"autocommit": True},
                        configure=onemap_session) as pool:
        pool.wait()

        def worker() -> None:
            while True:
                with lock:
                    st = next(it, None)
                if st is None:
                    return
                t0 = time.perf_counter()
                with pool.connection() as conn:
                    row = conn.execute(*st).fetchone()
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    sizes.append(len(row[0] or b""))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as ex:
            for _ in range(clients):
                ex.submit(worker)
        wall = time.perf_counter() - t0
    return summary(latencies, wall, sizes, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True)
    p.add_argument("--per-zoom", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clients", default="1,10")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    tiles = tile_list(args.database, args.per_zoom, args.seed)
    rows = []
    procs = []
    try:
        servers = {}
        for name, cache_mb in (("onemap", "0"), ("onemap cached", "1024")):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"ONEMAP_SECRET": SECRET, "ONEMAP_TILE_CACHE_MB": cache_mb}
            procs.append(start([str(ONEMAP), "serve", "--database", args.database, "--port", str(port)],
                               env, base, "/healthz"))
            token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": "onemap"}).json()
            servers[name] = (base, {"Authorization": f"Bearer {token['access_token']}"},
                             [f"{base}/collections/{lyr}/tiles/WebMercatorQuad/{z}/{y}/{x}" for lyr, z, x, y in tiles])
        if TIPG.exists():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"DATABASE_URL": args.database, "TIPG_DB_SCHEMAS": '["public"]'}
            procs.append(start([str(TIPG), "tipg.main:app", "--port", str(port), "--log-level", "warning"],
                               env, base, "/collections"))
            servers["tipg"] = (base, {}, [f"{base}/collections/public.{lyr}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                                          for lyr, z, x, y in tiles])
        else:
            print(f"tipg not installed at {TIPG}: skipped", file=sys.stderr)
        for _, headers, urls in servers.values():  # warm every server (and fill onemap's cache)
            run_clients(urls, 4, headers)
        for clients in (int(c) for c in args.clients.split(",")):
            for name, (_, headers, urls) in servers.items():
                rows.append((name, clients, run_clients(urls, clients, headers)))
                print(rows[-1], file=sys.stderr)
            rows.append(("raw ST_AsMVT SQL", clients, run_sql(args.database, tiles, clients)))
            print(rows[-1], file=sys.stderr)
        hot = next(i for i, t in enumerate(tiles) if t[0] == "events" and t[1] == 14)
        for clients in (int(c) for c in args.clients.split(",")):
            for name, (_, headers, urls) in servers.items():
                r = run_ab(urls[hot], clients, headers, 3000 if "cached" in name else 1000)
                if r:
                    rows.append((f"{name}, one hot tile (ab)", clients, r))
                    print(rows[-1], file=sys.stderr)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
    table = ["| target | clients | tiles/s | p50 ms | p95 ms | KB/tile | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, clients, r in rows:
        table.append(f"| {name} | {clients} | {r['tiles_s']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['kb']:.1f} | {r['errors']} |")
    text = f"{len(tiles)} tiles (buildings and events, z12-16, {args.per_zoom} per layer and zoom)\n\n" + \
        "\n".join(table) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
