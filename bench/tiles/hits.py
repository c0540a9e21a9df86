"""Cached tiles against a bare static-bytes endpoint on the same stack, one and two workers, with wrk.

Not a test. Reproduce (wrk is Debian's `wrk`; the database must hold a sample county with its accounts):

    apt-get install -y wrk
    .venv/bin/python bench/tiles/hits.py --database postgresql://postgres@127.0.0.1:5432/onemap_test \
        [--per-zoom 40] [--seconds 15] [--connections 10]

Targets, each its own server process(es) on 127.0.0.1, measured one after another in one run:
- bare: bench/tiles/bare.py, uvicorn + Starlette answering a fixed 14 KB body on any path (the limit);
- onemap, 1 worker and 2 workers (`onemap serve --workers N`), tile cache on, every tile of the list fetched
  beforehand over fresh connections until every worker has it (each keeps its own memory cache), as admin with
  a bearer token.
wrk walks the same list of distinct tiles (buildings and events, z12-16) round robin on every connection.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.tiles.run import SECRET, free_port, start, tile_list, wrk  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers), in MB."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                      text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True, help="a PostGIS sample county: the tile list comes from it")
    p.add_argument("--serve", help="the database the servers read (default --database; e.g. a copy of the "
                                   "sample GeoPackage nobody else writes, so no edit empties the caches)")
    p.add_argument("--per-zoom", type=int, default=40)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--connections", type=int, default=10)
    args = p.parse_args()
    tiles = tile_list(args.database, args.per_zoom, seed=7)
    paths = [f"/collections/{lyr}/tiles/WebMercatorQuad/{z}/{y}/{x}" for lyr, z, x, y in tiles]
    rows = []
    port = free_port()
    bare = start([str(PYTHON), "-m", "uvicorn", "bench.tiles.bare:app", "--port", str(port), "--log-level",
                  "warning"], {"PYTHONPATH": str(ROOT)}, f"http://127.0.0.1:{port}", "/probe")
    try:
        rows.append(("bare Starlette, fixed 14 KB", 1, wrk(f"http://127.0.0.1:{port}", paths, None, args.seconds,
                                                          args.connections), rss_mb(bare.pid)))
    finally:
        bare.terminate()
        bare.wait(timeout=20)
    for workers in (1, 2):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"ONEMAP_SECRET": SECRET, "ONEMAP_TILE_CACHE_MB": "1024", "ONEMAP_JOBS": "0"}
        proc = start([str(PYTHON), "-m", "api.cli", "serve", "--no-access-log", "--database", args.serve or args.database, "--port",
                      str(port),
                      "--workers", str(workers)], env, base, "/healthz")
        try:
            token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": "onemap"}
                               ).json()["access_token"]
            # A new connection lands on either worker and each keeps its own cache: fetch every tile over
            # fresh connections often enough that each worker has had it (8 passes: 1 in 256 left per worker).
            no_reuse = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120, limits=no_reuse) as client:
                for _ in range(1 if workers == 1 else 8):
                    for path in paths:
                        client.get(base + path)
            time.sleep(1)
            result = wrk(base, paths, token, args.seconds, args.connections)
            rows.append((f"onemap cached, {workers} worker{'s' if workers > 1 else ''}", workers, result,
                         rss_mb(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    limit = rows[0][2]["req_s"]
    print(f"{len(paths)} distinct tiles, {args.connections} connections, {args.seconds} s each\n")
    print("| target | workers | req/s | × bare | p50 ms | p99 ms | non-2xx | RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, workers, r, rss in rows:
        print(f"| {name} | {workers} | {r['req_s']:.0f} | {r['req_s'] / limit:.2f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['non_2xx']} | {rss:.0f} |")


if __name__ == "__main__":
    main()
