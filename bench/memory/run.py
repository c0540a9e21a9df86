"""Steady memory: the RSS of one `onemap serve` process under a steady mixed load, sampled over time.

Not a test. Reproduce (a sample county loaded in PostGIS with its accounts, the sample's rasters on disk):

    .venv/bin/python bench/memory/run.py --database postgresql://postgres@127.0.0.1:5432/onemap_tiles \
        --sample-dir data/sample --minutes 60 --cache-mb 0 --csv /tmp/onemap-rss.csv

The load, from `--connections` keep-alive client threads at a fixed total rate (`--rate` requests/s, so the
server is busy but not saturated): vector tiles of random distinct z/x/y over the county (single layers and
the combined tile, z10-17), OGC API items pages (bbox, CQL2 filter, offsets, several layers), imagery and
hillshade tiles. The server's RSS (and the PostgreSQL backends' total) is read from /proc every `--interval`
seconds into the CSV. At the end: RSS at start, once warm (after `--warm-minutes`), at the end, the slope of
a least-squares line over the last half (MB/hour), and the requests by kind and status. `--trace FILE` runs
the server under tracemalloc (bench/memory/traced.py) and writes what grew to FILE every minute.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import morecantile
import psycopg

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
SECRET = "bench-secret-of-at-least-thirty-two-bytes!"
TMS = morecantile.tms.get("WebMercatorQuad")
TILE_LAYERS = ("buildings", "events", "villages", "grids", "pois", "track_points", "patrols", None)  # None: combined
ITEM_LAYERS = ("events", "buildings", "pois", "monitoring_sites")
FILTERS = {"events": ["type = 'garbage'", "type IN ('livestock','dispute')", "status = 'open'"],
           "buildings": ["height > 6"], "pois": [None], "monitoring_sites": [None]}
WEIGHTS = (("tile", 0.6), ("items", 0.25), ("imagery", 0.15))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """The resident set of one process, MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def county_box(database: str) -> tuple[float, float, float, float]:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                           "(SELECT ST_Extent(ST_Transform(geom, 4326)) AS e FROM townships) s").fetchone()
    return tuple(float(v) for v in row)


def backends_mb(database: str, pids: list[int]) -> float:
    """RSS of the PostgreSQL backends serving onemap's pool (by client port of the server's process)."""
    total = 0.0
    for pid in pids:
        try:
            total += rss_mb(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def backend_pids(database: str, app_pid: int) -> list[int]:
    """The PostgreSQL backends whose client is the server process (matched through /proc's sockets)."""
    inodes = set()
    for fd in Path(f"/proc/{app_pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[9] in inodes:
                ports.add(int(parts[1].split(":")[1], 16))
    try:
        with psycopg.connect(database, autocommit=True) as conn:
            rows = conn.execute("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
                                ).fetchall()
    except psycopg.Error:
        return []
    return [pid for pid, port in rows if port in ports]


class Load:
    """Client threads at a fixed total rate, each request picked at random from the mix."""

    def __init__(self, base: str, token: str, box: tuple[float, float, float, float], connections: int,
                 rate: float, seed: int, mix: tuple[tuple[str, float], ...] = WEIGHTS) -> None:
        self.base, self.box, self.connections, self.rate, self.mix = base, box, connections, rate, mix
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.done = 0
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(connections)]

    def point(self, rnd: random.Random) -> tuple[float, float]:
        w, s, e, n = self.box
        return rnd.uniform(w, e), rnd.uniform(s, n)

    def url(self, rnd: random.Random) -> tuple[str, str]:
        r, acc = rnd.random(), 0.0
        kind = self.mix[-1][0]
        for name, weight in self.mix:
            acc += weight
            if r < acc:
                kind = name
                break
        if kind == "tile":
            layer = rnd.choice(TILE_LAYERS)
            z = rnd.randint(10, 17)
            t = TMS.tile(*self.point(rnd), z)
            path = f"/collections/{layer}/tiles" if layer else "/tiles"
            return kind, f"{path}/WebMercatorQuad/{z}/{t.y}/{t.x}"
        if kind == "items":
            layer = rnd.choice(ITEM_LAYERS)
            lon, lat = self.point(rnd)
            half = rnd.choice((0.01, 0.05, 0.2))
            params = {"bbox": f"{lon - half:.5f},{lat - half:.5f},{lon + half:.5f},{lat + half:.5f}",
                      "limit": str(rnd.choice((10, 100, 1000))), "offset": str(rnd.choice((0, 0, 50)))}
            where = rnd.choice(FILTERS[layer])
            if where:
                params["filter"] = where
            if rnd.random() < 0.3:
                params.pop("bbox")
            return f"items {layer}", f"/collections/{layer}/items?" + httpx.QueryParams(params).__str__()
        source = rnd.choice(("imagery", "imagery", "hillshade"))
        z = rnd.randint(9, 15)
        t = TMS.tile(*self.point(rnd), z)
        return kind, f"/basemaps/{source}/{z}/{t.x}/{t.y}.{rnd.choice(('png', 'webp', 'jpg'))}"

    def worker(self, i: int) -> None:
        rnd = random.Random(self.seed * 1000 + i)
        period = self.connections / self.rate
        nxt = time.monotonic()
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=120) as client:
            while not self.stop.is_set():
                kind, url = self.url(rnd)
                try:
                    status = client.get(url).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self.lock:
                    self.counts[(kind.split()[0], status)] += 1
                    self.done += 1
                nxt = max(nxt + period, time.monotonic() - period)
                delay = nxt - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)


def slope_mb_per_hour(rows: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MB per hour."""
    if len(rows) < 3:
        return math.nan
    n = len(rows)
    mt = sum(t for t, _ in rows) / n
    mr = sum(r for _, r in rows) / n
    den = sum((t - mt) ** 2 for t, _ in rows)
    return sum((t - mt) * (r - mr) for t, r in rows) / den * 3600 if den else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True)
    p.add_argument("--sample-dir", type=Path, default=ROOT / "data" / "sample", help="where dem.tif/imagery.tif are")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--warm-minutes", type=float, default=2)
    p.add_argument("--interval", type=float, default=10)
    p.add_argument("--connections", type=int, default=3)
    p.add_argument("--rate", type=float, default=25, help="requests per second, all connections together")
    p.add_argument("--cache-mb", default="0", help="ONEMAP_TILE_CACHE_MB for the server; 'default' leaves it unset")
    p.add_argument("--malloc-arena-max", help="MALLOC_ARENA_MAX for the server (glibc); unset by default")
    p.add_argument("--mix", default=",".join(f"{k}={w}" for k, w in WEIGHTS),
                   help="shares of tile, items and imagery requests")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--trace", type=Path, help="run the server under tracemalloc, growth written here")
    args = p.parse_args()

    shares = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    mix = tuple((k, v / sum(shares.values())) for k, v in shares.items())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ONEMAP_SECRET": SECRET, "ONEMAP_SAMPLE_DIR": str(args.sample_dir.resolve()),
           "PYTHONPATH": str(ROOT)}
    if args.cache_mb != "default":
        env["ONEMAP_TILE_CACHE_MB"] = args.cache_mb
    if args.malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = args.malloc_arena_max
    serve = ["serve", "--database", args.database, "--port", str(port)]
    if args.trace:
        args.trace.unlink(missing_ok=True)
        cmd = [str(PYTHON), str(ROOT / "bench" / "memory" / "traced.py"), "--out", str(args.trace), "--", *serve]
    else:
        cmd = [str(PYTHON), "-m", "api.cli", *serve]
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    log = args.csv.with_suffix(".server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + (900 if args.trace else 180)  # tracemalloc slows the start a lot
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": "onemap"}).json()
        load = Load(base, token["access_token"], county_box(args.database), args.connections, args.rate, args.seed,
                    mix)
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        with args.csv.open("w") as out:
            out.write("seconds,rss_mb,pg_backends_mb,requests,errors\n")
            for t in load.threads:
                t.start()
            while True:
                now = time.monotonic() - t0
                rss = rss_mb(proc.pid)
                pg = backends_mb(args.database, backend_pids(args.database, proc.pid))
                with load.lock:
                    done = load.done
                    errors = sum(v for (_, s), v in load.counts.items() if not isinstance(s, int) or s >= 500)
                samples.append((now, rss))
                out.write(f"{now:.0f},{rss:.1f},{pg:.1f},{done},{errors}\n")
                out.flush()
                print(f"{now:6.0f} s  RSS {rss:7.1f} MB  pg {pg:6.1f} MB  {done} requests  {errors} errors",
                      file=sys.stderr, flush=True)
                if time.monotonic() >= end:
                    break
                time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        load.stop.set()
        for t in load.threads:
            t.join(130)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    warm = next((r for t, r in samples if t >= args.warm_minutes * 60), samples[-1][1])
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    elapsed = samples[-1][0]
    print(f"\n{args.minutes:g} min, {args.connections} connections at {args.rate:g} req/s, tile cache "
          f"{args.cache_mb} MB, {load.done} requests ({load.done / elapsed:.1f}/s)")
    print(f"RSS start {samples[0][1]:.1f} MB, warm ({args.warm_minutes:g} min) {warm:.1f} MB, "
          f"end {samples[-1][1]:.1f} MB, max {max(r for _, r in samples):.1f} MB; "
          f"slope of the last half {slope_mb_per_hour(half):+.1f} MB/hour")
    # RSS at every tenth of the run, for the table in docs/benchmarks.md
    marks = [samples[min(range(len(samples)), key=lambda i: abs(samples[i][0] - elapsed * k / 10))] for k in range(11)]
    print("| minute | " + " | ".join(f"{t / 60:.0f}" for t, _ in marks) + " |")
    print("| RSS MB | " + " | ".join(f"{r:.0f}" for _, r in marks) + " |")
    for (kind, status), n in sorted(load.counts.items(), key=str):
        print(f"  {kind:8} {status}: {n}")


if __name__ == "__main__":
    main()
