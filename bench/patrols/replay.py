"""Replay of an 8-hour patrol at one fix a second (28,800 fixes) over HTTP, next to the raw SQL read.

Not a test. Builds a scratch database per store (bench/patrols/scratch.py: one grid, one worker, one patrol),
starts one onemap server process on it, and times sequential requests after a warm-up: the MF-JSON
TemporalGeometrySequence, the MF-JSON feature (`?f=mfjson`), the velocity curve, a 5-minute slider window and
the sequence revalidated by its ETag (a 304); "first" is each case's first request (the very first one of the
server process among them).
Side by side: the raw read (psycopg, the same ordered SELECT, no HTTP, no JSON) and the database building the
whole JSON itself (json_build_object over array_agg). The scratch databases are dropped at the end.

    .venv/bin/python bench/patrols/replay.py [--server postgresql://postgres@127.0.0.1:5432] [--requests 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "live"))
sys.path.insert(0, str(ROOT / "bench" / "patrols"))

import scratch  # noqa: E402
from extents import serve, token  # noqa: E402

RAW = "SELECT recorded_at, ST_X(geom), ST_Y(geom) FROM track_points WHERE patrol_id = %s ORDER BY recorded_at"
IN_DB = ("SELECT json_build_object('type', 'MovingPoint', 'datetimes', array_agg(to_char(recorded_at AT TIME ZONE "
         "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') ORDER BY recorded_at), 'coordinates', "
         "array_agg(json_build_array(ST_X(geom), ST_Y(geom)) ORDER BY recorded_at))::text "
         "FROM track_points WHERE patrol_id = %s")


def timings(call: Callable[[], object], n: int) -> tuple[float, float, object]:
    """Median and p95 (ms) of n calls after one warm-up, and the warm-up's result."""
    started = time.perf_counter()
    first = call()
    timings.first = (time.perf_counter() - started) * 1000  # type: ignore[attr-defined]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out), statistics.quantiles(out, n=20)[18], first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--hours", type=float, default=8.0)
    args = parser.parse_args()
    rows = []
    url = scratch.create_postgis(args.server)
    gpkg = str(Path(tempfile.mkdtemp(prefix="bench-replay-")) / "replay.gpkg")
    try:
        for database in (url, gpkg):
            [pid] = scratch.build(database, grids=1, hours=args.hours, step_s=1.0, step_m=1.3)
            kind = "PostGIS" if database == url else "GeoPackage"
            proc, base = serve(database)
            try:
                headers = token(base, "operator")
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    item = f"/collections/patrols/items/{pid}"
                    cases = [("tgsequence (MF-JSON, every fix)", f"{item}/tgsequence", {}),
                             ("feature ?f=mfjson (every fix)", item, {"f": "mfjson"}),
                             ("velocity curve", f"{item}/tgsequence/1/velocity", {}),
                             ("tgsequence, 5-minute window", f"{item}/tgsequence",
                              {"datetime": "2026-11-02T04:00:00Z/2026-11-02T04:05:00Z"}),
                             ("tgsequence revalidated (If-None-Match: 304)", f"{item}/tgsequence", "etag")]
                    tag = ""
                    for name, path, params in cases:
                        def get(path=path, params=params, tag=tag) -> httpx.Response:
                            if params == "etag":
                                r = client.get(path, headers={"If-None-Match": tag})
                                assert r.status_code == 304, r.status_code
                                return r
                            r = client.get(path, params=params)
                            r.raise_for_status()
                            return r
                        med, p95, first = timings(get, args.requests)
                        tag = tag or first.headers.get("etag", "")  # type: ignore[attr-defined]
                        size = len(first.content)  # type: ignore[attr-defined]
                        rows.append((kind, name, timings.first, med, p95,  # type: ignore[attr-defined]
                                     f"{size / 1e6:.2f} MB"))
            finally:
                proc.terminate()
                proc.wait()
            if database == url:
                with psycopg.connect(url, autocommit=True) as conn:
                    med, p95, got = timings(lambda p=pid: conn.execute(RAW, (p,)).fetchall(), args.requests)
                    rows.append((kind, f"raw SQL read ({len(got)} rows, psycopg, no HTTP)",  # type: ignore[arg-type]
                                 timings.first, med, p95, ""))  # type: ignore[attr-defined]
                    med, p95, got = timings(lambda p=pid: conn.execute(IN_DB, (p,)).fetchone(), args.requests)
                    rows.append((kind, "raw SQL building the JSON (json_build_object)", timings.first,  # type: ignore[attr-defined]
                                 med, p95, f"{len(got[0]) / 1e6:.2f} MB"))  # type: ignore[index]
    finally:
        scratch.drop_postgis(url)
    print("| store | request | first ms | median ms | p95 ms | body |\n|---|---|---|---|---|---|")
    for kind, name, first, med, p95, size in rows:
        print(f"| {kind} | {name} | {first:.0f} | {med:.0f} | {p95:.0f} | {size} |")


if __name__ == "__main__":
    main()
