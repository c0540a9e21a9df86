"""Vector tiles/s and latency: onemap (uncached, cached) vs tipg vs the raw ST_AsMVT SQL, 1 and 10 clients.

Not a test. Reproduce (tipg lives in its own venv, bench/.venv-peers, made by `make bench-peers` from
bench/peers.txt, never in the project venv; wrk is Debian's `wrk`):

    make bench-peers && apt-get install -y wrk
    .venv/bin/python bench/tiles/run.py --database postgresql://postgres@127.0.0.1:5432/onemap_tiles_large \
        [--per-zoom 40] [--seconds 20] [--out bench/results/tiles.md]

The database must hold a sample county (`onemap sample --load URL`, with its accounts). Every server is
one uvicorn process on this machine without an access log (onemap `--no-access-log`, tipg `--log-level
warning`). The HTTP client is wrk (2 threads, keep-alive, the tile list round robin on every connection;
`--client httpx` for Python threads instead); the raw SQL's client is a thread per connection over a psycopg
pool in this process. On 2 cores the clients, the servers and PostgreSQL compete for the CPU.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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
PYTHON = ROOT / ".venv" / "bin" / "python"
TIPG = ROOT / "bench" / ".venv-peers" / "bin" / "uvicorn"
LAYERS = ("buildings", "events")
ZOOMS = range(12, 17)
SECRET = "bench-secret-of-at-least-thirty-two-bytes!"


def tile_list(url: str, per_zoom: int, seed: int, layers: tuple[str, ...] = LAYERS) -> list[tuple[str, int, int, int]]:
    """A fixed random list: per layer and zoom, the tiles of `per_zoom` features picked by a seeded hash."""
    tms = morecantile.tms.get("WebMercatorQuad")
    out = []
    with psycopg.connect(url) as conn:
        for layer in layers:
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
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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


def wrk(base: str, paths: list[str], token: str | None, seconds: int, connections: int, start: int = 0) -> dict:
    """Requests/s and latency percentiles from wrk walking `paths` round robin from `start` (hits.py too)."""
    lines = ["paths = {" + ",".join(f'"{p}"' for p in paths) + "}", f"local i = {int(start) % max(len(paths), 1)}"]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    lines += ["request = function()", "  i = i % #paths + 1", '  return wrk.format("GET", paths[i])', "end",
              "done = function(summary, latency, requests)",
              "  io.write(string.format('P50 %f P95 %f P99 %f NON2XX %d\\n', latency:percentile(50) / 1000,"
              " latency:percentile(95) / 1000, latency:percentile(99) / 1000, summary.errors.status))", "end"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(lines))
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
                          "-s", f.name, base], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p95, p99, bad = re.search(r"P50 ([\d.]+) P95 ([\d.]+) P99 ([\d.]+) NON2XX (\d+)", out).groups()
    return {"req_s": rps, "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "non_2xx": int(bad)}


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its direct children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tile_statements(tiles: list[tuple[str, int, int, int]]) -> list[tuple[str, list] | None]:
    """The SQL onemap sends for each tile of the list (its own tile_sql, the admin's whole-county scope);
    None where it sends none (a layer outside its zooms, e.g. buildings at z12: onemap answers 204 at once)."""
    catalog = build_catalog()
    plan = TilePlan(catalog)
    tiling = get_tiling("WebMercatorQuad")
    out = []
    for layer_id, z, x, y in tiles:
        layer = catalog.get(layer_id)
        drawn = layer.min_zoom <= z <= layer.max_zoom
        out.append(tile_sql(layer, plan.request(layer, tiling, z, x, y), Scope.everything()) if drawn else None)
    return out


def sql_pool(url: str, clients: int) -> ConnectionPool:
    """A psycopg pool with onemap's own session settings (no JIT, custom plans): without them PostgreSQL
    JIT-compiles the costly large-sample tile queries and the "limit" came out slower than onemap."""
    pool = ConnectionPool(url, min_size=clients, max_size=clients, kwargs={"autocommit": True},
                          configure=onemap_session, open=True)
    pool.wait()
    return pool


def run_sql(pool: ConnectionPool, statements: list[tuple[str, list] | None], clients: int,
            seconds: float | None = None, start: int = 0) -> dict:
    """The same tiles as onemap builds them, straight from PostGIS: the limit with no HTTP at all.

    Once through the list, or round and round it (from `start`) for `seconds`, as wrk walks it."""
    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    ordered = statements[start:] + statements[:start]
    it = iter(ordered) if seconds is None else itertools.cycle(ordered)
    stop_at = math.inf

    def worker() -> None:
        while time.perf_counter() < stop_at:
            with lock:
                st = next(it, False)
            if st is False:
                return
            t0 = time.perf_counter()
            row = (b"",)
            if st is not None:
                with pool.connection() as conn:
                    row = conn.execute(*st).fetchone()
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                sizes.append(len(row[0] or b""))

    t0 = time.perf_counter()
    if seconds is not None:
        stop_at = t0 + seconds
    with ThreadPoolExecutor(clients) as ex:
        for _ in range(clients):
            ex.submit(worker)
    wall = time.perf_counter() - t0
    return summary(latencies, wall, sizes, 0)


def merge(slices: list[dict], seconds: list[float]) -> dict:
    """Interleaved slices of one target as one row: tiles/s over their whole time, the median slice's p50/p95."""
    total = sum(r["tiles_s"] * t for r, t in zip(slices, seconds, strict=True))
    return {"tiles_s": total / sum(seconds), "p50": statistics.median(r["p50"] for r in slices),
            "p95": statistics.median(r["p95"] for r in slices), "kb": slices[0]["kb"],
            "errors": sum(r["errors"] for r in slices)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True)
    p.add_argument("--per-zoom", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clients", default="1,10")
    p.add_argument("--seconds", type=int, default=20, help="per target and client count (wrk and the raw SQL)")
    p.add_argument("--rounds", type=int, default=4,
                   help="the seconds cut into this many slices, the targets taking turns slice by slice (on a "
                        "shared machine the load changes minute by minute: no target gets all the quiet ones)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers of the uncached onemap")
    p.add_argument("--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
    p.add_argument("--targets", default="onemap,onemap cached,tipg,raw",
                   help="comma-separated: onemap, onemap h11 (asyncio + h11, uncached), onemap cached, tipg, raw")
    p.add_argument("--layers", default=",".join(LAYERS), help="comma-separated layers of the tile list")
    p.add_argument("--no-hot", action="store_true", help="skip the one-hot-tile ApacheBench rows")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    targets = {t.strip() for t in args.targets.split(",")}
    layers = tuple(lyr.strip() for lyr in args.layers.split(","))
    tiles = tile_list(args.database, args.per_zoom, args.seed, layers)
    rows = []
    procs = []
    pids: dict[str, int] = {}
    try:
        servers = {}
        for name, cache_mb in (("onemap", "0"), ("onemap h11", "0"), ("onemap cached", "1024")):
            if name not in targets:
                continue
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"ONEMAP_SECRET": SECRET, "ONEMAP_TILE_CACHE_MB": cache_mb, "ONEMAP_JOBS": "0",
                   "PYTHONPATH": str(ROOT)}
            workers = args.workers if name == "onemap" else 1
            procs.append(start([str(PYTHON), "-m", "api.cli", "serve", "--no-access-log", "--database",
                                args.database, "--port", str(port), "--workers", str(workers),
                                "--http", "h11" if name == "onemap h11" else "fast"], env, base, "/healthz"))
            pids[name] = procs[-1].pid
            token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": "onemap"}).json()
            servers[name] = (base, token["access_token"],
                             [f"/collections/{lyr}/tiles/WebMercatorQuad/{z}/{y}/{x}" for lyr, z, x, y in tiles])
        if "tipg" in targets and TIPG.exists():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"DATABASE_URL": args.database, "TIPG_DB_SCHEMAS": '["public"]'}
            procs.append(start([str(TIPG), "tipg.main:app", "--port", str(port), "--log-level", "warning"],
                               env, base, "/collections"))
            pids["tipg"] = procs[-1].pid
            servers["tipg"] = (base, None, [f"/collections/public.{lyr}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                                            for lyr, z, x, y in tiles])
        elif "tipg" in targets:
            print(f"tipg not installed at {TIPG} (make bench-peers): skipped", file=sys.stderr)
        sizes = {}
        for name, (base, token, paths) in servers.items():  # warm every server (and fill onemap's cache)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            sizes[name] = run_clients([base + path for path in paths], 4, headers)["kb"]
        statements = tile_statements(tiles) if "raw" in targets else []
        for clients in (int(c) for c in args.clients.split(",")):
            names = [*servers, *(["raw ST_AsMVT SQL"] if "raw" in targets else [])]
            rounds = args.rounds if args.client == "wrk" else 1
            part = args.seconds / rounds
            slices: dict[str, list[dict]] = {n: [] for n in names}
            cpu: dict[str, float] = dict.fromkeys(names, 0.0)  # CPU seconds of each target's server (or SQL client)
            pool = sql_pool(args.database, clients) if "raw" in targets else None
            try:
                for k in range(rounds):
                    for name in names if k % 2 == 0 else names[::-1]:
                        c0 = time.process_time() if name == "raw ST_AsMVT SQL" else cpu_seconds(pids[name])
                        if name == "raw ST_AsMVT SQL":
                            r = run_sql(pool, statements, clients, part if args.client == "wrk" else None,
                                        start=k * len(statements) // rounds)
                        elif args.client == "wrk":
                            base, token, paths = servers[name]
                            w = wrk(base, paths, token, max(1, round(part)), clients, start=k * len(paths) // rounds)
                            r = {"tiles_s": w["req_s"], "p50": w["p50_ms"], "p95": w["p95_ms"], "kb": sizes[name],
                                 "errors": w["non_2xx"]}
                        else:
                            base, token, paths = servers[name]
                            headers = {"Authorization": f"Bearer {token}"} if token else {}
                            r = run_clients([base + path for path in paths], clients, headers)
                        cpu[name] += (time.process_time() if name == "raw ST_AsMVT SQL" else cpu_seconds(pids[name])) - c0
                        slices[name].append(r)
                        print(name, clients, k, {key: round(v, 1) for key, v in r.items()}, file=sys.stderr)
            finally:
                if pool is not None:
                    pool.close()
            for name in names:
                merged = merge(slices[name], [part] * len(slices[name]))
                merged["cpu_ms"] = 1000 * cpu[name] / max(1.0, merged["tiles_s"] * part * len(slices[name]))
                rows.append((name, clients, merged))
        hot = next((i for i, t in enumerate(tiles) if t[1] == 14 and t[0] == layers[-1]), 0)
        for clients in (int(c) for c in args.clients.split(",")) if not args.no_hot else ():
            for name, (base, token, paths) in servers.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                r = run_ab(base + paths[hot], clients, headers, 3000 if "cached" in name else 1000)
                if r:
                    rows.append((f"{name}, one hot tile (ab)", clients, r))
                    print(rows[-1], file=sys.stderr)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
    table = ["| target | clients | tiles/s | p50 ms | p95 ms | KB/tile | errors | CPU ms/tile |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, clients, r in rows:
        used = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else ""
        table.append(f"| {name} | {clients} | {r['tiles_s']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['kb']:.1f} | {r['errors']} | {used} |")
    ratios = []
    for clients in (int(c) for c in args.clients.split(",")):
        by = {name: r["tiles_s"] for name, c, r in rows if c == clients}
        if "onemap" in by and "tipg" in by:
            ratios.append(f"{clients} clients: onemap uncached / tipg = {by['onemap'] / by['tipg']:.2f}")
        if "onemap" in by and "raw ST_AsMVT SQL" in by:
            ratios.append(f"{clients} clients: onemap uncached / raw SQL = {by['onemap'] / by['raw ST_AsMVT SQL']:.2f}")
    text = (f"layers: {', '.join(layers)}\n\n"
            "CPU ms/tile: the server process's (with its workers) CPU per tile answered; for the raw SQL, its "
            "client's (this process, psycopg)\n\n"
            f"{len(tiles)} tiles (z12-16, {args.per_zoom} per layer and zoom), client "
            f"{args.client}" + (f", {args.seconds} s per row in {args.rounds} interleaved slices"
                                if args.client == "wrk" else "")
            + (f", uncached onemap with {args.workers} workers" if args.workers > 1 else "") + "\n\n"
            + "\n".join(table) + "\n\n" + "\n".join(ratios) + "\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
