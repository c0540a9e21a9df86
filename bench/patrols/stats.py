"""Daily patrol statistics (`GET /stats/patrols`) for every worker, over HTTP, next to raw SQL.

Not a test. Two databases: the sample county's PostGIS (`--sample`, as `make test` loads it: 212 workers, a
week of patrols) and a scratch "large day" (bench/patrols/scratch.py: `--workers` grids with one worker each,
`--hours` of fixes every `--step` seconds, dropped at the end). One onemap server process per database, as the
operator (every worker); the first request (grid H3 cells computed) and then median / p95 of `--requests`.
Side by side: the raw read of the day's fixes and PostGIS computing mileage and duration per worker-day
itself (ST_MakeLine ... ::geography; no stops, no coverage, no roster).

    .venv/bin/python bench/patrols/stats.py --sample postgresql://postgres@127.0.0.1:5432/onemap_test \\
        [--server postgresql://postgres@127.0.0.1:5432] [--workers 1000] [--hours 2] [--step 20] [--requests 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "live"))
sys.path.insert(0, str(ROOT / "bench" / "patrols"))

import scratch  # noqa: E402
from extents import serve, token  # noqa: E402
from replay import timings  # noqa: E402

READ = ("SELECT worker, patrol_id, recorded_at, ST_X(geom), ST_Y(geom) FROM track_points "
        "WHERE recorded_at >= %s::date - interval '8 hours' AND recorded_at < %s::date + interval '16 hours'")
IN_DB = ("SELECT worker, sum(ST_Length(line::geography)), sum(seconds) FROM (SELECT worker, patrol_id, "
         "ST_MakeLine(geom ORDER BY recorded_at) AS line, extract(epoch FROM max(recorded_at) - min(recorded_at)) "
         "AS seconds FROM track_points WHERE recorded_at >= %s::date - interval '8 hours' "
         "AND recorded_at < %s::date + interval '16 hours' GROUP BY worker, patrol_id) p GROUP BY worker")


def measure(database: str, day: str, label: str, n: int, rows: list) -> None:
    """Time the HTTP cases and the SQL references on one database."""
    proc, base = serve(database)
    try:
        with httpx.Client(base_url=base, headers=token(base, "operator"), timeout=300) as client:
            for group in ("worker,day", "township_code"):
                def get(group=group) -> httpx.Response:
                    r = client.get("/stats/patrols", params={"day": day, "group_by": group})
                    r.raise_for_status()
                    return r
                started = time.perf_counter()
                body = get().json()
                first = (time.perf_counter() - started) * 1000
                med, p95, _ = timings(get, n)
                t = body["totals"]
                rows.append((label, f"/stats/patrols?day={day}&group_by={group}", med, p95,
                             f"first {first:.0f} ms; {t['workers']} workers, {t['patrolled']} patrolled, "
                             f"{t['stops']} stops, {t['cells']} grid cells"))
    finally:
        proc.terminate()
        proc.wait()
    with psycopg.connect(database, autocommit=True) as conn:
        med, p95, got = timings(lambda: conn.execute(READ, (day, day)).fetchall(), n)
        rows.append((label, f"raw SQL: read the day's fixes ({len(got)} rows)", med, p95, "psycopg, no HTTP"))  # type: ignore[arg-type]
        med, p95, got = timings(lambda: conn.execute(IN_DB, (day, day)).fetchall(), n)
        rows.append((label, "raw SQL: mileage and duration per worker in PostGIS", med, p95,
                     f"{len(got)} workers; no stops, coverage or roster"))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="postgresql://postgres@127.0.0.1:5432/onemap_test")
    parser.add_argument("--sample-day", default="2026-10-27")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--step", type=float, default=20.0)
    parser.add_argument("--hours", type=float, default=2.0, help="of fixes per worker (2 h at 20 s: 360, as the "
                        "sample's workers have a day)")
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    rows: list = []
    measure(args.sample, args.sample_day, "sample county", args.requests, rows)
    url = scratch.create_postgis(args.server)
    try:
        started = time.perf_counter()
        scratch.build(url, grids=args.workers, hours=args.hours, step_s=args.step, step_m=13.0 * args.step / 10)
        built = time.perf_counter() - started
        label = (f"large day: {args.workers} workers x {args.hours:g} h every {args.step:g} s "
                 f"(built in {built:.0f} s)")
        measure(url, scratch.DAY.date().isoformat(), label, args.requests, rows)
    finally:
        scratch.drop_postgis(url)
    print("| database | request | median ms | p95 ms | note |\n|---|---|---|---|---|")
    for label, name, med, p95, note in rows:
        print(f"| {label} | {name} | {med:.0f} | {p95:.0f} | {note} |")


if __name__ == "__main__":
    main()
